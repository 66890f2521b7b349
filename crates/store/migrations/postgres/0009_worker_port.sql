-- A worker's "no port" becomes NULL instead of 0.
ALTER TABLE services ALTER COLUMN port DROP NOT NULL;
UPDATE services SET port = NULL WHERE port = 0;
