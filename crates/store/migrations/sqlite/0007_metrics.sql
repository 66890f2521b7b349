-- Container metrics: the collector's raw samples and their 1-minute and 1-hour averages, in one
-- table told apart by `resolution` (the width of an average's bucket in seconds; 0 for raw
-- samples). The key leads with (resolution, at) because rolling up and expiring both read
-- time ranges of one resolution; queries of one service use the second index.
CREATE TABLE container_metrics (
    resolution INTEGER NOT NULL,
    -- A raw sample's time; an average's bucket start. Milliseconds, like every timestamp.
    at INTEGER NOT NULL,
    container TEXT NOT NULL,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    -- No foreign key: deleting a deployment would scan this table, and a deployment is only
    -- ever deleted with its service.
    deployment_id INTEGER NOT NULL,
    -- How many raw samples the row stands for: the weight of its averages in coarser ones.
    samples INTEGER NOT NULL,
    cpu_percent REAL NOT NULL,
    cpu_limit_percent REAL NOT NULL,
    memory_bytes INTEGER NOT NULL,
    memory_limit_bytes INTEGER NOT NULL,
    net_rx_bytes_per_second REAL NOT NULL,
    net_tx_bytes_per_second REAL NOT NULL,
    block_read_bytes_per_second REAL NOT NULL,
    block_write_bytes_per_second REAL NOT NULL,
    pids INTEGER NOT NULL,
    restarts INTEGER NOT NULL,
    PRIMARY KEY (resolution, at, container)
) WITHOUT ROWID;
CREATE INDEX container_metrics_by_service ON container_metrics (service_id, resolution, at);

-- How far each coarser resolution has been averaged: its buckets before `done_until` are
-- final, so a roll-up that runs again starts there and never counts a sample twice.
CREATE TABLE metric_rollups (
    resolution INTEGER PRIMARY KEY,
    done_until INTEGER NOT NULL
);
