//! The `tollgate` server: builds `Services`, one axum router for the console (Leptos SSR and
//! server functions under `/_sfn`), `/v1`, `/api`, `/metrics` and health checks, and serves it
//! with a graceful, bounded drain.

pub mod http;
pub mod site;
pub mod startup;
