//! The `audit_events` table (migrations `0003_audit`), in the SQL database the user store uses —
//! or the session store's when the users live elsewhere (a Django table); with no SQL database
//! at all (memory or Redis sessions with Django users) there is no table: log lines only.

use chrono::{DateTime, TimeZone, Utc};
#[cfg(feature = "postgres")]
use sqlx::PgPool;
use sqlx::{QueryBuilder, Row, SqlitePool};

use super::{AuditEvent, Event, Outcome};
#[cfg(feature = "postgres")]
use crate::db::Deadline;

/// Where audit rows go.
#[derive(Clone, Debug, Default)]
pub enum AuditStore {
    #[default]
    None,
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// What `sessiongate audit` asks for.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Events naming this username (case-insensitive) or this user id.
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    /// The most recent `limit` events (returned oldest first).
    pub limit: i64,
}

/// Longest text kept per column: user agents and details are truncated, not refused.
const MAX_TEXT: usize = 512;

fn clip(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| if s.len() <= MAX_TEXT { s.clone() } else { s.chars().take(MAX_TEXT / 4).collect() })
}

fn key(s: &Option<String>) -> Option<String> {
    s.as_deref().map(crate::users::login_key)
}

impl AuditStore {
    pub fn is_none(&self) -> bool {
        matches!(self, AuditStore::None)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            AuditStore::None => "log only",
            AuditStore::Sqlite(_) => "SQLite",
            #[cfg(feature = "postgres")]
            AuditStore::Postgres(_) => "PostgreSQL",
        }
    }

    /// Insert a batch in one statement.
    pub async fn insert(&self, events: &[AuditEvent]) -> Result<(), sqlx::Error> {
        if events.is_empty() {
            return Ok(());
        }
        const COLUMNS: &str = "INSERT INTO audit_events (time, event, outcome, user_id, username, username_key, ip, user_agent, session_id, request_id, detail) ";
        match self {
            AuditStore::None => Ok(()),
            AuditStore::Sqlite(pool) => {
                let mut q = QueryBuilder::<sqlx::Sqlite>::new(COLUMNS);
                push_events(&mut q, events, |t| t.timestamp_millis());
                q.build().execute(pool).await.map(|_| ())
            }
            #[cfg(feature = "postgres")]
            AuditStore::Postgres(pool) => {
                let mut q = QueryBuilder::<sqlx::Postgres>::new(COLUMNS);
                push_events(&mut q, events, |t| t);
                q.build().execute(pool).within(crate::db::PG_OP_TIMEOUT).await.map(|_| ())
            }
        }
    }

    /// The newest `q.limit` matching events, oldest first.
    pub async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, sqlx::Error> {
        const SELECT: &str = "SELECT time, event, outcome, user_id, username, ip, user_agent, session_id, request_id, detail FROM audit_events WHERE 1 = 1";
        let username = q.username.as_deref().map(crate::users::login_key);
        let mut out = match self {
            AuditStore::None => Vec::new(),
            AuditStore::Sqlite(pool) => {
                let mut b = QueryBuilder::<sqlx::Sqlite>::new(SELECT);
                if let Some(t) = q.since {
                    b.push(" AND time >= ").push_bind(t.timestamp_millis());
                }
                who_and_limit(&mut b, username.clone(), q);
                let rows = b.build().fetch_all(pool).await?;
                rows.iter()
                    .map(|r| {
                        let ms: i64 = r.try_get("time")?;
                        row(r, Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            #[cfg(feature = "postgres")]
            AuditStore::Postgres(pool) => {
                let mut b = QueryBuilder::<sqlx::Postgres>::new(SELECT);
                if let Some(t) = q.since {
                    b.push(" AND time >= ").push_bind(t);
                }
                who_and_limit(&mut b, username.clone(), q);
                let rows = b.build().fetch_all(pool).within(crate::db::PG_SCAN_TIMEOUT).await?;
                rows.iter()
                    .map(|r| {
                        let t: DateTime<Utc> = r.try_get("time")?;
                        row(r, t)
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        };
        out.reverse();
        Ok(out)
    }

    /// Delete rows older than `before`; returns how many.
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        match self {
            AuditStore::None => Ok(0),
            AuditStore::Sqlite(pool) => Ok(sqlx::query("DELETE FROM audit_events WHERE time < ?")
                .bind(before.timestamp_millis())
                .execute(pool)
                .await?
                .rows_affected()),
            #[cfg(feature = "postgres")]
            AuditStore::Postgres(pool) => Ok(sqlx::query("DELETE FROM audit_events WHERE time < $1")
                .bind(before)
                .execute(pool)
                .within(crate::db::PG_SCAN_TIMEOUT)
                .await?
                .rows_affected()),
        }
    }
}

fn row<R: Row>(r: &R, time: DateTime<Utc>) -> Result<AuditEvent, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let event: String = r.try_get("event")?;
    let outcome: String = r.try_get("outcome")?;
    let bad = |what: &str, v: &str| sqlx::Error::Decode(format!("unknown audit {what} `{v}`").into());
    Ok(AuditEvent {
        time,
        event: Event::parse(&event).ok_or_else(|| bad("event", &event))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| bad("outcome", &outcome))?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        session: r.try_get("session_id")?,
        request_id: r.try_get("request_id")?,
        detail: r.try_get("detail")?,
    })
}

/// The `VALUES` of a batch, the same for every SQL backend but for how a time is stored.
fn push_events<'a, DB: sqlx::Database, T>(
    q: &mut QueryBuilder<'a, DB>,
    events: &[AuditEvent],
    time: impl Fn(DateTime<Utc>) -> T,
) where
    T: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_values(events, |mut b, e| {
        b.push_bind(time(e.time))
            .push_bind(e.event.as_str())
            .push_bind(e.outcome.as_str())
            .push_bind(e.user_id)
            .push_bind(clip(&e.username))
            .push_bind(key(&e.username))
            .push_bind(clip(&e.ip))
            .push_bind(clip(&e.user_agent))
            .push_bind(clip(&e.session))
            .push_bind(clip(&e.request_id))
            .push_bind(clip(&e.detail));
    });
}

/// The `WHERE` tail naming the user (by login key or id; either matches when both are given)
/// and the `LIMIT`, the same for every SQL backend.
fn who_and_limit<'a, DB: sqlx::Database>(b: &mut QueryBuilder<'a, DB>, username: Option<String>, q: &AuditQuery)
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    match (username, q.user_id) {
        (Some(u), Some(id)) => {
            b.push(" AND (username_key = ").push_bind(u).push(" OR user_id = ").push_bind(id).push(")");
        }
        (Some(u), None) => {
            b.push(" AND username_key = ").push_bind(u);
        }
        (None, Some(id)) => {
            b.push(" AND user_id = ").push_bind(id);
        }
        (None, None) => {}
    }
    b.push(" ORDER BY id DESC LIMIT ").push_bind(q.limit.max(1));
}
