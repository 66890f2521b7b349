-- A service run from a registry image instead of a repository (issue 20): `image` is its
-- reference (`registry[:port]/path:tag` or `…@sha256:…`); such a service keeps `repo` empty.
-- The registry login it is pulled with: the user in the clear, the password sealed by the
-- vault (bound to the service's id), never returned.
ALTER TABLE services ADD COLUMN image TEXT;
ALTER TABLE services ADD COLUMN registry_user TEXT;
ALTER TABLE services ADD COLUMN registry_password TEXT;
