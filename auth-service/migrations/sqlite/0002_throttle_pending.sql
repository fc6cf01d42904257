-- Attempts admitted to the password check whose outcome is not known yet. An attempt is admitted
-- only while `failures + pending` is under the layer's limit, so a concurrent burst never has
-- more password checks in flight than failures left; further attempts wait for an outcome.
-- `pending_since` lets a count left behind by a crashed process expire (after a minute).
ALTER TABLE login_throttle ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_throttle ADD COLUMN pending_since INTEGER NOT NULL DEFAULT 0;
