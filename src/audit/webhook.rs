//! `audit.webhook_url`: every audit event POSTed as JSON (the [`AuditEvent`] fields, camelCase),
//! signed so the receiver can tell it came from this gateway:
//!
//! ```text
//! POST /hook HTTP/1.1
//! Content-Type: application/json
//! X-Sessiongate-Event: login
//! X-Sessiongate-Signature: sha256=<hex HMAC-SHA256 of the body, key audit.webhook_secret>
//!
//! {"time":"2026-11-29T10:00:00Z","event":"login","outcome":"failure","userId":null,...}
//! ```
//!
//! Verify by recomputing the HMAC over the raw body and comparing in constant time; the `time`
//! field lets the receiver refuse replays. Calls run in one background task, one event at a
//! time, each with a 5 s timeout and at most [`ATTEMPTS`] tries (0.5 s, 1 s, 2 s apart) until a
//! 2xx answer; events still undelivered then are dropped (counted, warned). A receiver that is
//! down therefore never slows requests: the queue in front of this task is bounded.

use std::time::Duration;

use axum::body::Body;
use hmac::{Hmac, Mac};
use http::{HeaderValue, Method, Request, Uri, header};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::{AuditEvent, Msg};

/// Tries per event.
pub const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Webhook {
    url: Uri,
    key: Vec<u8>,
    client: crate::http::client::Upstream,
}

/// The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256 under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub fn new(url: Uri, key: &[u8]) -> Self {
        Webhook { url, key: key.to_vec(), client: crate::http::client::build() }
    }

    pub(super) async fn run(self, mut rx: mpsc::Receiver<Msg>) {
        let url = self.url.clone();
        while let Some(msg) = rx.recv().await {
            let Msg::Event(e) = msg else { continue };
            if let Err(why) = self.deliver(&url, &e).await {
                ::metrics::counter!("sessiongate_audit_dropped_total", "sink" => "webhook").increment(1);
                tracing::warn!(target: "sessiongate::audit", event = e.event.as_str(), error = %why, "audit webhook gave up on an event after {ATTEMPTS} tries");
            }
        }
    }

    async fn deliver(&self, url: &Uri, e: &AuditEvent) -> Result<(), String> {
        let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
        let signature = HeaderValue::from_str(&signature(&self.key, &body)).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << (attempt - 1))).await;
            }
            let req = Request::builder()
                .method(Method::POST)
                .uri(url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::USER_AGENT, concat!("sessiongate/", env!("CARGO_PKG_VERSION")))
                .header("x-sessiongate-event", e.event.as_str())
                .header("x-sessiongate-signature", signature.clone())
                .body(Body::from(body.clone()))
                .map_err(|e| e.to_string())?;
            match tokio::time::timeout(TIMEOUT, self.client.request(req)).await {
                Ok(Ok(res)) if res.status().is_success() => return Ok(()),
                Ok(Ok(res)) => last = format!("answered {}", res.status()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {TIMEOUT:?}"),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
