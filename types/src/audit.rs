//! The audit log: every administrator's action as the admin API and console show it.

use serde::{Deserialize, Serialize};

/// One action: who, what, to what, when, and the thing before and after (JSON text).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// The acting user; absent for the admin API token.
    pub actor_id: Option<i64>,
    /// The acting user's name, or `admin-token`.
    pub actor: String,
    /// What was done, `thing.verb`: `user.create`, `balance.adjust`, `price.set`, ...
    pub action: String,
    /// What it was done to, `thing:id`: `user:7`, `price:gpt-4o`, ...
    pub target: String,
    /// The thing before, as JSON; absent for a creation.
    pub before: Option<String>,
    /// The thing after, as JSON; absent for a deletion.
    pub after: Option<String>,
}

/// Filters of the audit log (each exact), and its keyset paging.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An action (`user.create`) or a kind of thing (`user`).
    pub action: Option<String>,
    /// The acting user's name, or `admin-token`.
    pub actor: Option<String>,
    /// A target, `thing:id`.
    pub target: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}
