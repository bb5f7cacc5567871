-- PostgreSQL twin of migrations/sqlite/0001_init.sql. Times are timestamptz (microseconds).

-- Users of the native store. Usernames and emails are unique case-insensitively through the
-- *_key columns (lower-cased by the application, which handles Unicode the same way on every
-- backend). The constraint names are what the store maps to UsernameTaken / EmailTaken.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,
    email TEXT,
    email_key TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    last_login TIMESTAMPTZ,
    CONSTRAINT users_username_key_unique UNIQUE (username_key),
    CONSTRAINT users_email_key_unique UNIQUE (email_key)
);

-- Sessions keyed by the SHA-256 of the cookie token. No foreign key to users: the user store may
-- live elsewhere (another database, a Django table); revocation deletes sessions explicitly.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    csrf_secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    idle_expires_at TIMESTAMPTZ NOT NULL,
    absolute_expires_at TIMESTAMPTZ NOT NULL,
    authenticated_at TIMESTAMPTZ NOT NULL,
    ip TEXT,
    user_agent TEXT,
    remember BOOLEAN NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
-- The moment a session ends, for gc and the live filter of admin listings.
CREATE INDEX sessions_expires ON sessions (LEAST(idle_expires_at, absolute_expires_at));
