-- Security hardening (issue 13).

-- Look-alike usernames: the UTS #39 confusable skeleton of each name, unique, so that `аdmin`
-- (Cyrillic а) cannot be created while `admin` exists. key_version 2 marks rows whose
-- username_key, email_key and username_skeleton were computed with NFKC case folding; older rows
-- are recomputed by the gateway at start (SQL cannot normalise Unicode). A row whose new key
-- would collide with another account's keeps its old key and gets no skeleton (logged).
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
ALTER TABLE users ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
CREATE INDEX users_key_version ON users (key_version);

-- Email changes are bound to the session that asked and to the password at that moment.
ALTER TABLE account_tokens ADD COLUMN session_id TEXT;
ALTER TABLE account_tokens ADD COLUMN password_fp TEXT;
