-- PostgreSQL twin of migrations/sqlite/0002_account.sql: TOTP two-factor authentication,
-- recovery codes, and one-time tokens for password resets and email verification.

-- The TOTP secret is sealed (XChaCha20-Poly1305 under a key derived from the gateway's secret
-- key, bound to the user id); NULL when the user has none. A secret whose enrollment is not
-- confirmed yet has totp_enabled = FALSE. totp_last_step is the last accepted 30-second time
-- step: a code is accepted only for a later step, so each code works once.
ALTER TABLE users ADD COLUMN totp_secret BYTEA;
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- Single-use recovery codes, stored as keyed hashes (HMAC-SHA-256), never in clear.
CREATE TABLE recovery_codes (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- One-time tokens mailed to the user (password reset, email verification): only the SHA-256 of
-- the 256-bit token is stored; used_at makes them single-use.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
