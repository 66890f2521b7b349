-- A certificate a user uploaded (chain and sealed key) is served as it is and never ordered;
-- `expiry_notified_for` is the end (not_after) of the certificate whose coming expiry was
-- notified, so each certificate's is notified once.
ALTER TABLE certificates ADD COLUMN uploaded BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE certificates ADD COLUMN expiry_notified_for BIGINT;
