-- Account lifecycle (issue 5): TOTP two-factor authentication, recovery codes, and one-time
-- tokens for password resets and email verification.

-- The TOTP secret is sealed (XChaCha20-Poly1305 under a key derived from the gateway's secret
-- key, bound to the user id); NULL when the user has none. A secret whose enrollment is not
-- confirmed yet has totp_enabled = 0. totp_last_step is the last accepted 30-second time step:
-- a code is accepted only for a later step, so each code works once.
ALTER TABLE users ADD COLUMN totp_secret BLOB;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

-- Single-use recovery codes, stored as keyed hashes (HMAC-SHA-256), never in clear.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at INTEGER
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- One-time tokens mailed to the user (password reset, email verification): only the SHA-256 of
-- the 256-bit token is stored. Times are Unix milliseconds; used_at makes them single-use.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
