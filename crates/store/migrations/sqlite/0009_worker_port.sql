-- A worker's "no port" becomes NULL instead of 0. SQLite cannot drop a NOT NULL constraint in
-- place, so the column is replaced (and moves to the end of the table; queries name columns).
ALTER TABLE services ADD COLUMN listen_port INTEGER;
UPDATE services SET listen_port = NULLIF(port, 0);
ALTER TABLE services DROP COLUMN port;
ALTER TABLE services RENAME COLUMN listen_port TO port;
