//! HTTP-level tests of the auth API against an in-process gateway on a real port with a real
//! SQLite file. One test binary (modules below) keeps link time down.

mod cors;
mod csrf;
mod email;
mod expiry;
mod flow;
mod hardening;
mod harness;
mod input;
mod limits;
mod mfa;
mod passkeys;
mod password;
mod reset;
mod smtp;
mod spa;
#[path = "../support/mod.rs"]
mod support;
