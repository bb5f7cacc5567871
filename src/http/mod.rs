//! HTTP plumbing shared by the API, proxy and SPA: problem responses, client IPs, security
//! headers and the JSON body extractor.

pub mod client_ip;
pub mod headers;
pub mod json;
pub mod problem;
pub mod route;

pub use client_ip::client_ip;
pub use json::ApiJson;
pub use problem::Problem;
