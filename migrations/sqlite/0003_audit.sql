-- Operations (issue 7): the audit log of authentication events (src/audit). Written in the
-- background by the gateway, read by `sessiongate audit`. Never holds a secret: names, ids,
-- addresses, user agents and short reasons only. Times are Unix milliseconds; rows older than
-- audit.retention are deleted.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id INTEGER,
    username TEXT,
    -- login_key(username): lower-cased, for case-insensitive lookups by name.
    username_key TEXT,
    ip TEXT,
    user_agent TEXT,
    -- The session's public id, never its token.
    session_id TEXT,
    request_id TEXT,
    detail TEXT
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_username ON audit_events (username_key, id);
