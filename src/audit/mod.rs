//! The audit log: every authentication event as a structured log line (tracing target
//! `sessiongate::audit`), a row in `audit_events`, and optionally a signed webhook call.
//!
//! ```text
//! request ─► session layer ─► audit::layer::observe ─► CSRF ─► handler
//!                                    │  route + status + ProblemCode + optional AuditNote
//!                                    ▼
//!                 Auditor::record ── log line (at once, in the request's span: request id)
//!                                 ├─ try_send ─► [bounded queue] ─► writer task ─► audit_events
//!                                 └─ try_send ─► [bounded queue] ─► webhook task (HMAC, retries)
//! ```
//!
//! Requests never wait for the database or the webhook: events go through bounded queues
//! (`audit.queue`) to background tasks; when a queue is full the event is dropped, counted
//! (`sessiongate_audit_dropped_total`) and a warning logged (at most every 10 s). The log line is
//! written in any case, so the log stays complete.
//!
//! Anonymous noise is sampled: CSRF rejections and rate-limit refusals of requests without a
//! session cost an attacker nothing, so at most [`ANONYMOUS_PER_IP`] of them per client IP (per
//! /64) and minute are recorded (log line, row, webhook); the rest are only counted
//! (`sessiongate_audit_suppressed_total`, and a warning at most every 10 s). Events of a
//! logged-in user, and every login, signup and reset attempt, are always recorded.
//!
//! Handlers need not know about auditing: [`layer::observe`] derives the event from the route,
//! the status and the problem code. A handler that knows more (which user logged in, which
//! session was opened) attaches an [`AuditNote`] to its response.
//!
//! Never in an event: passwords, tokens, cookies, codes — only the names and ids listed on
//! [`AuditEvent`].

pub mod layer;
pub mod store;
pub mod webhook;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use store::{AuditQuery, AuditStore};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// `POST /login` (and `/login/mfa`, detail says which step).
    Login,
    Logout,
    Signup,
    PasswordChange,
    PasswordResetRequest,
    PasswordReset,
    Reauth,
    /// One session revoked (`DELETE /sessions/{id}`, `sessiongate session revoke ID`).
    SessionRevoked,
    /// Several sessions revoked (`/sessions/revoke-others`, `session revoke --user`).
    SessionsRevoked,
    MfaSetup,
    MfaEnabled,
    MfaDisabled,
    /// `POST /passkeys/register/finish`.
    PasskeyAdded,
    /// `DELETE /passkeys/{id}`, `sessiongate user passkey-remove`.
    PasskeyRemoved,
    /// `PATCH /passkeys/{id}`.
    PasskeyRenamed,
    EmailChange,
    EmailVerified,
    /// `POST /email/cancel`: pending changes voided from the old address's notice.
    EmailChangeCancelled,
    CsrfRejected,
    RateLimited,
    /// Administrative changes from the command line.
    UserCreated,
    UserPasswordSet,
    UserDisabled,
    UserEnabled,
    UserRemoved,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Login => "login",
            Event::Logout => "logout",
            Event::Signup => "signup",
            Event::PasswordChange => "password_change",
            Event::PasswordResetRequest => "password_reset_request",
            Event::PasswordReset => "password_reset",
            Event::Reauth => "reauth",
            Event::SessionRevoked => "session_revoked",
            Event::SessionsRevoked => "sessions_revoked",
            Event::MfaSetup => "mfa_setup",
            Event::MfaEnabled => "mfa_enabled",
            Event::MfaDisabled => "mfa_disabled",
            Event::EmailChange => "email_change",
            Event::EmailVerified => "email_verified",
            Event::PasskeyAdded => "passkey_added",
            Event::PasskeyRemoved => "passkey_removed",
            Event::PasskeyRenamed => "passkey_renamed",
            Event::EmailChangeCancelled => "email_change_cancelled",
            Event::CsrfRejected => "csrf_rejected",
            Event::RateLimited => "rate_limited",
            Event::UserCreated => "user_created",
            Event::UserPasswordSet => "user_password_set",
            Event::UserDisabled => "user_disabled",
            Event::UserEnabled => "user_enabled",
            Event::UserRemoved => "user_removed",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused: wrong credentials, invalid input, CSRF, rate limit…
    Failure,
    /// The server could not decide (a store down: 503, or 500).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit record. Field by field, what it may hold: names and ids, never a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub time: DateTime<Utc>,
    pub event: Event,
    pub outcome: Outcome,
    pub user_id: Option<i64>,
    /// The account's username; for failed logins, the name that was typed (up to 150 chars).
    pub username: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session's public id (the `id` of `GET /sessions`), never the cookie token.
    pub session: Option<String>,
    pub request_id: Option<String>,
    /// A short explanation: the problem code, the CSRF reason, the limited endpoint…
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(event: Event, outcome: Outcome) -> Self {
        AuditEvent {
            time: Utc::now(),
            event,
            outcome,
            user_id: None,
            username: None,
            ip: None,
            user_agent: None,
            session: None,
            request_id: None,
            detail: None,
        }
    }

    #[must_use]
    pub fn user(mut self, id: i64, username: &str) -> Self {
        self.user_id = Some(id);
        self.username = Some(username.to_owned());
        self
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The detail of a successful password step that still needs the second factor.
pub const MFA_REQUIRED: &str = "second factor required";

/// What a handler knows better than the route and status: attach it to the response
/// (`res.extensions_mut().insert(note)`, or [`AuditNote::attach`]) and [`layer::observe`]
/// merges it into the event. Every field is optional; set ones win.
#[derive(Clone, Debug, Default)]
pub struct AuditNote {
    /// Another event than the route's (e.g. a refused second factor on `/login/mfa`).
    pub event: Option<Event>,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    /// Public session id: the session opened (login, signup) or revoked.
    pub session: Option<String>,
    pub detail: Option<String>,
    /// Do not record this request at all (e.g. an anonymous logout, which changes nothing).
    pub skip: bool,
}

impl AuditNote {
    pub fn user(user: &crate::users::User) -> Self {
        AuditNote { user_id: Some(user.id), username: Some(user.username.clone()), ..Default::default() }
    }

    /// A name that was typed (a failed login), up to 150 characters; no account id.
    pub fn typed(name: &str) -> Self {
        AuditNote { username: Some(name.trim().chars().take(150).collect()), ..Default::default() }
    }

    #[must_use]
    pub fn session(mut self, public_id: &str) -> Self {
        self.session = Some(public_id.to_owned());
        self
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The response with this note attached.
    pub fn attach(self, res: impl axum::response::IntoResponse) -> axum::response::Response {
        let mut res = res.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

pub(crate) enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// Records audit events: the log line at once, the row and the webhook call in the
/// background. Cheap to clone.
#[derive(Clone)]
pub struct Auditor(Arc<Inner>);

struct Inner {
    /// The table (also read by `sessiongate audit`, purged by the housekeeping task).
    table: AuditStore,
    store: Option<mpsc::Sender<Msg>>,
    webhook: Option<mpsc::Sender<Msg>>,
    dropped: AtomicU64,
    last_warning: AtomicU64,
    /// Per client IP: anonymous CSRF and rate-limit events recorded.
    anonymous: crate::ratelimit::PerKey,
    suppressed: AtomicU64,
    last_suppressed_warning: AtomicU64,
}

/// Anonymous CSRF rejections and rate-limit refusals recorded per client IP and minute.
pub const ANONYMOUS_PER_IP: u32 = 30;
/// Client IPs the sampler tracks (digests; the least active tenth is forgotten beyond).
const ANONYMOUS_KEYS: usize = 10_000;

fn sampler() -> crate::ratelimit::PerKey {
    crate::ratelimit::PerKey::new(
        crate::config::Rate { count: ANONYMOUS_PER_IP, per: Duration::from_secs(60) },
        ANONYMOUS_KEYS,
    )
}

impl Auditor {
    /// Log lines only.
    pub fn log_only() -> Self {
        Auditor(Arc::new(Inner {
            table: AuditStore::None,
            store: None,
            webhook: None,
            dropped: AtomicU64::new(0),
            last_warning: AtomicU64::new(0),
            anonymous: sampler(),
            suppressed: AtomicU64::new(0),
            last_suppressed_warning: AtomicU64::new(0),
        }))
    }

    /// Rows go to `store` (unless it is [`AuditStore::None`] or `audit.store = false`), calls
    /// to `audit.webhook_url` when set. The background tasks start on the current tokio
    /// runtime; without one, only log lines are written.
    pub fn new(cfg: &crate::config::AuditSettings, store: AuditStore) -> Self {
        if tokio::runtime::Handle::try_current().is_err() {
            return Self::log_only();
        }
        let capacity = cfg.queue.max(1);
        let table = if cfg.store { store } else { AuditStore::None };
        let store = (!table.is_none()).then(|| {
            let (tx, rx) = mpsc::channel(capacity);
            tokio::spawn(write_rows(rx, table.clone()));
            tx
        });
        let webhook = cfg.webhook.as_ref().map(|w| {
            let (tx, rx) = mpsc::channel(capacity);
            let hook = webhook::Webhook::new(w.url.clone(), w.secret());
            tokio::spawn(hook.run(rx));
            tx
        });
        Auditor(Arc::new(Inner {
            table,
            store,
            webhook,
            dropped: AtomicU64::new(0),
            last_warning: AtomicU64::new(0),
            anonymous: sampler(),
            suppressed: AtomicU64::new(0),
            last_suppressed_warning: AtomicU64::new(0),
        }))
    }

    /// Log `e` now and queue it for the table and the webhook; never waits.
    pub fn record(&self, e: AuditEvent) {
        log(&e);
        ::metrics::counter!("sessiongate_audit_events_total", "event" => e.event.as_str(), "outcome" => e.outcome.as_str())
            .increment(1);
        match (&self.0.store, &self.0.webhook) {
            (None, None) => {}
            (Some(s), None) => self.offer(s, Msg::Event(Box::new(e)), "table"),
            (None, Some(w)) => self.offer(w, Msg::Event(Box::new(e)), "webhook"),
            (Some(s), Some(w)) => {
                self.offer(w, Msg::Event(Box::new(e.clone())), "webhook");
                self.offer(s, Msg::Event(Box::new(e)), "table");
            }
        }
    }

    /// [`record`](Self::record) an event of a request; `signed_in`: the request carried a
    /// live session. CSRF and rate-limit events of requests without one are sampled per IP.
    pub fn record_request(&self, e: AuditEvent, signed_in: bool) {
        if !signed_in && self.is_excess_noise(&e) {
            return;
        }
        self.record(e);
    }

    /// Whether `e` is a CSRF or rate-limit event beyond its IP's sample. (Whatever account a
    /// refused login names: the name is the sender's choice.)
    fn is_excess_noise(&self, e: &AuditEvent) -> bool {
        if !matches!(e.event, Event::CsrfRejected | Event::RateLimited) {
            return false;
        }
        let Some(ip) = e.ip.as_deref().and_then(|ip| ip.parse().ok()) else { return false };
        if self.0.anonymous.attempt(&crate::ratelimit::ip_key(ip)).is_ok() {
            return false;
        }
        let total = self.0.suppressed.fetch_add(1, Ordering::Relaxed) + 1;
        ::metrics::counter!("sessiongate_audit_suppressed_total", "event" => e.event.as_str()).increment(1);
        let now = unix_secs();
        let last = self.0.last_suppressed_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self.0.last_suppressed_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                target: "sessiongate::audit",
                suppressed_total = total,
                "anonymous CSRF and rate-limit events beyond {ANONYMOUS_PER_IP} per IP and minute are counted, not recorded"
            );
        }
        true
    }

    /// Anonymous CSRF and rate-limit events not recorded (beyond their IP's sample), since start.
    pub fn suppressed(&self) -> u64 {
        self.0.suppressed.load(Ordering::Relaxed)
    }

    fn offer(&self, tx: &mpsc::Sender<Msg>, msg: Msg, sink: &'static str) {
        if tx.try_send(msg).is_ok() {
            return;
        }
        let total = self.0.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        ::metrics::counter!("sessiongate_audit_dropped_total", "sink" => sink).increment(1);
        let now = unix_secs();
        let last = self.0.last_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self.0.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                target: "sessiongate::audit",
                sink,
                dropped_total = total,
                "audit queue full (audit.queue): events dropped from the {sink}; their log lines were written"
            );
        }
    }

    /// Where rows go ([`AuditStore::None`]: log lines only).
    pub fn table(&self) -> &AuditStore {
        &self.0.table
    }

    /// Events dropped because a queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Wait (at most `limit`) until everything recorded so far is written to the table.
    /// Used at shutdown and by tests; webhook calls are not waited for.
    pub async fn flush(&self, limit: Duration) -> bool {
        let Some(tx) = &self.0.store else { return true };
        let (ack, done) = oneshot::channel();
        let sent = tokio::time::timeout(limit, tx.send(Msg::Flush(ack))).await;
        matches!(sent, Ok(Ok(()))) && tokio::time::timeout(limit, done).await.is_ok_and(|r| r.is_ok())
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The structured log line of one event.
fn log(e: &AuditEvent) {
    tracing::info!(
        target: "sessiongate::audit",
        event = e.event.as_str(),
        outcome = e.outcome.as_str(),
        user_id = e.user_id,
        username = e.username.as_deref(),
        ip = e.ip.as_deref(),
        user_agent = e.user_agent.as_deref(),
        session = e.session.as_deref(),
        request_id = e.request_id.as_deref(),
        detail = e.detail.as_deref(),
        "audit {} {}",
        e.event,
        e.outcome,
    );
}

/// The table writer: batches of up to 256 events, one transaction each.
async fn write_rows(mut rx: mpsc::Receiver<Msg>, store: AuditStore) {
    let mut batch = Vec::with_capacity(256);
    let mut msgs = Vec::with_capacity(256);
    while rx.recv_many(&mut msgs, 256).await > 0 {
        let mut acks = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Event(e) => batch.push(*e),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.insert(&batch).await {
                ::metrics::counter!("sessiongate_audit_dropped_total", "sink" => "table").increment(batch.len() as u64);
                tracing::warn!(target: "sessiongate::audit", error = %e, lost = batch.len(), "audit rows could not be written; their log lines were");
            }
            batch.clear();
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: Event, ip: &str, user: Option<i64>) -> AuditEvent {
        let mut e = AuditEvent::new(event, Outcome::Failure);
        e.ip = Some(ip.into());
        e.user_id = user;
        e
    }

    /// Adversarial finding: every anonymous CSRF rejection was a row, so one client could
    /// write rows as fast as it could send requests.
    #[test]
    fn anonymous_noise_is_sampled_per_ip() {
        let a = Auditor::log_only();
        for _ in 0..100 {
            a.record_request(event(Event::CsrfRejected, "203.0.113.9", None), false);
        }
        assert_eq!(a.suppressed(), 100 - u64::from(ANONYMOUS_PER_IP));
        // The same /64 is one client.
        a.record_request(event(Event::RateLimited, "2001:db8::1", None), false);
        for _ in 0..50 {
            a.record_request(event(Event::RateLimited, "2001:db8::2", None), false);
        }
        assert_eq!(a.suppressed(), 100 - u64::from(ANONYMOUS_PER_IP) + 51 - u64::from(ANONYMOUS_PER_IP));
        // A refused login names an account of the sender's choosing: still sampled.
        let mut named = event(Event::RateLimited, "203.0.113.9", Some(7));
        named.username = Some("alice".into());
        a.record_request(named, false);
        assert_eq!(a.suppressed(), 100 - u64::from(ANONYMOUS_PER_IP) + 51 - u64::from(ANONYMOUS_PER_IP) + 1);
        // Another client, a logged-in user, and logins are always recorded.
        let before = a.suppressed();
        a.record_request(event(Event::CsrfRejected, "198.51.100.7", None), false);
        for _ in 0..50 {
            a.record_request(event(Event::CsrfRejected, "203.0.113.9", Some(42)), true);
            a.record_request(event(Event::Login, "203.0.113.9", None), false);
        }
        assert_eq!(a.suppressed(), before);
    }
}
