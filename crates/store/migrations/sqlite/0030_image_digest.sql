-- The digest of a deployment's image in Helvetia's registry, when it was built on the
-- isolated builder and handed to the host engine through the registry (pulled by digest).
ALTER TABLE deployments ADD COLUMN image_digest TEXT;
