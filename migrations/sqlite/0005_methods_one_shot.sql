-- How each session's user logged in (space-separated method names; '' for older sessions).
ALTER TABLE sessions ADD COLUMN auth_methods TEXT NOT NULL DEFAULT '';

-- Single-use values (passkey ceremonies): taken once with DELETE … RETURNING, purged by gc.
CREATE TABLE one_shot (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX one_shot_expires ON one_shot (expires_at);
