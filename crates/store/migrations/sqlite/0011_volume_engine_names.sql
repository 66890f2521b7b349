-- A volume's engine name is recorded, not derived: names now carry the installation's id, but
-- a volume made before keeps the name it has (volumes cannot be renamed, and its data is in
-- it). Existing volumes get the name they were created with.
ALTER TABLE volumes ADD COLUMN engine_name TEXT NOT NULL DEFAULT '';
UPDATE volumes SET engine_name = (
    SELECT 'helvetia-' || p.name || '-' || s.name || '-' || volumes.name || '-' || s.id
    FROM services s JOIN projects p ON p.id = s.project_id
    WHERE s.id = volumes.service_id
);
CREATE UNIQUE INDEX volumes_engine_name ON volumes (engine_name);
