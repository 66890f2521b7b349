-- Waiting for CI: a service may deploy a pushed commit only once its checks have passed. A
-- delivery waiting for them has a deadline, after which it is settled as not deployed; one
-- waiting for a diff (a restart may cut it short) has none.
ALTER TABLE service_hooks ADD COLUMN wait_for_ci BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE webhook_deliveries ADD COLUMN checks_deadline BIGINT;
CREATE INDEX webhook_deliveries_waiting ON webhook_deliveries (service_id, commit_sha)
    WHERE outcome = 'waiting';
