-- Passkeys (WebAuthn credentials) of native users. credential_id is base64url (the browser's
-- credential.id), unique across accounts; passkey is webauthn-rs's JSON of the credential
-- (public key, sign count, flags); user_handle is the account's 16-byte WebAuthn user id.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    user_handle BLOB NOT NULL,
    passkey TEXT NOT NULL,
    name TEXT NOT NULL,
    transports TEXT,
    discoverable INTEGER,
    -- The last accepted signature counter, so that of two assertions with one counter only the
    -- first is accepted (0: the authenticator does not count, as synced passkeys).
    sign_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);
