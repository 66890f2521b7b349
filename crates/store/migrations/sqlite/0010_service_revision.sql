-- A service's revision: every change of its settings increments it, and a change made for a
-- revision a client read applies only while it is still current (the API's ETag, If-Match).
ALTER TABLE services ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
