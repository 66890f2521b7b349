-- A variable passed to builds as a build argument (`ARG NAME`): the explicit, never secret
-- kind beside `build` (a BuildKit secret mount).
ALTER TABLE env_vars ADD COLUMN build_arg BOOLEAN NOT NULL DEFAULT FALSE;
