//! Tollgate's one service layer: every business rule lives here, once. The HTTP routes, the
//! OpenAI-compatible proxy and the console's server functions are thin adapters over it.
//! Nothing here knows about Leptos or HTTP status codes.

pub mod accounts;
pub mod actor;
pub mod alerts;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod field;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod kv;
pub mod metrics;
pub mod paging;
pub mod proxy;
pub mod ratelimit;
pub mod redeem;
pub mod routing;
pub mod secret;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod usage;
pub mod views;
pub mod web;

pub use error::Error;
pub use state::Services;

/// Milliseconds since the Unix epoch: the one clock of the service layer.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A random 128-bit id in hex (request ids, grant and batch ids), from the thread's generator:
/// no system call per id.
pub fn random_id() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// `GET /api/about`: what this instance is and how long it has run. `build` is the binary's
/// build id (its commit), which the binary knows and the library does not.
pub fn about(svc: &Services, build: &str) -> types::About {
    types::About {
        name: "Tollgate".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        build: build.into(),
        uptime_seconds: svc.started.elapsed().as_secs(),
        started_at: svc.started_at_ms / 1000,
        docs: types::DocsLinks {
            openapi: "/api/openapi.json".into(),
            console: "/docs".into(),
        },
    }
}
