-- PostgreSQL twin of migrations/sqlite/0006_passkeys.sql.
CREATE TABLE passkeys (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    user_handle BYTEA NOT NULL,
    passkey TEXT NOT NULL,
    name TEXT NOT NULL,
    transports TEXT,
    discoverable BOOLEAN,
    -- The last accepted signature counter, so that of two assertions with one counter only the
    -- first is accepted (0: the authenticator does not count, as synced passkeys).
    sign_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX passkeys_user ON passkeys (user_id);
