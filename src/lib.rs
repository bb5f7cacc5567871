//! # sessiongate
//!
//! Secure cookie-based authentication for single-page apps, as a gateway binary and as a
//! library of axum/tower building blocks.
//!
//! The session lives server-side; the browser holds only an `HttpOnly` cookie with an opaque
//! 256-bit token, and every unsafe request is CSRF-checked in Django's wire format (`csrftoken`
//! cookie, `X-CSRFToken` header, masked 64-character tokens), so Django/axios frontends and
//! Django backends work unchanged.
//!
//! ## Building blocks
//! - [`session`]: the [`session::SessionStore`] trait, memory/SQLite stores, the
//!   [`session::SessionManager`] (rotation, sliding idle + absolute timeouts) and the loading layer.
//! - [`csrf`]: Django token masking, origin checks (pure), and the CSRF layer.
//! - [`cookies`]: cookie attributes per deployment shape.
//! - [`api`]: the JSON auth router; [`server::app`] wires everything in the documented order.
//! - [`proxy`]: the reverse proxy for `[[routes]]`; [`identity`]: the headers (and signed JWT)
//!   upstreams receive.
//! - [`config`]: the TOML schema and validation.
//!
//! Run with: `cargo run --release -- serve`, then open <http://127.0.0.1:8080>.

pub mod api;
pub mod audit;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod db;
pub mod devcert;
pub mod http;
pub mod identity;
pub mod listener;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod passkeys;
pub mod password;
pub mod proxy;
pub mod ratelimit;
pub mod secret;
pub mod server;
pub mod session;
pub mod spa;
pub mod users;
