//! HTTP plumbing shared by the API, proxy and SPA: problem responses, client IPs, security
//! headers and the JSON body extractor.

pub mod client;
pub mod client_ip;
pub mod headers;
pub mod json;
pub mod origin;
pub mod overrides;
pub mod path;
pub mod problem;
pub mod route;

pub use client_ip::client_ip;
pub use json::ApiJson;
pub use path::ApiPath;
pub use problem::Problem;
