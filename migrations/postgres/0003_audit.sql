-- PostgreSQL twin of migrations/sqlite/0003_audit.sql: the audit log of authentication events.
-- Never holds a secret. No foreign key to users: failed logins name accounts that may not exist,
-- and the history outlives removed users.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    time TIMESTAMPTZ NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id BIGINT,
    username TEXT,
    username_key TEXT,
    ip TEXT,
    user_agent TEXT,
    session_id TEXT,
    request_id TEXT,
    detail TEXT
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_username ON audit_events (username_key, id);
