-- PostgreSQL twin of migrations/sqlite/0004_hardening.sql.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
ALTER TABLE users ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD CONSTRAINT users_username_skeleton_unique UNIQUE (username_skeleton);
CREATE INDEX users_key_version ON users (key_version);

ALTER TABLE account_tokens ADD COLUMN session_id TEXT;
ALTER TABLE account_tokens ADD COLUMN password_fp TEXT;
