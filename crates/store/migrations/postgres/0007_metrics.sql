-- Container metrics: the collector's raw samples and their 1-minute and 1-hour averages, in one
-- table told apart by `resolution` (the width of an average's bucket in seconds; 0 for raw
-- samples). The key leads with (resolution, at) because rolling up and expiring both read
-- time ranges of one resolution; queries of one service use the second index.
CREATE TABLE container_metrics (
    resolution BIGINT NOT NULL,
    -- A raw sample's time; an average's bucket start. Milliseconds, like every timestamp.
    at BIGINT NOT NULL,
    container TEXT NOT NULL,
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    -- No foreign key: deleting a deployment would scan this table, and a deployment is only
    -- ever deleted with its service.
    deployment_id BIGINT NOT NULL,
    -- How many raw samples the row stands for: the weight of its averages in coarser ones.
    samples BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION NOT NULL,
    cpu_limit_percent DOUBLE PRECISION NOT NULL,
    memory_bytes BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes_per_second DOUBLE PRECISION NOT NULL,
    net_tx_bytes_per_second DOUBLE PRECISION NOT NULL,
    block_read_bytes_per_second DOUBLE PRECISION NOT NULL,
    block_write_bytes_per_second DOUBLE PRECISION NOT NULL,
    pids BIGINT NOT NULL,
    restarts BIGINT NOT NULL,
    PRIMARY KEY (resolution, at, container)
);
CREATE INDEX container_metrics_by_service ON container_metrics (service_id, resolution, at);

-- How far each coarser resolution has been averaged: its buckets before `done_until` are
-- final, so a roll-up that runs again starts there and never counts a sample twice.
CREATE TABLE metric_rollups (
    resolution BIGINT PRIMARY KEY,
    done_until BIGINT NOT NULL
);
