//! The admin console's overview: the gateway at a glance.

use crate::{AuditEntry, ChannelHealth, Credits};
use serde::{Deserialize, Serialize};

/// One minute of calls (every model): how many, and how many failed on the upstream side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// Unix milliseconds at the minute's start.
    pub minute: i64,
    pub requests: u64,
    pub failures: u64,
}

/// A model or a user among today's biggest spenders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopItem {
    pub name: String,
    #[serde(with = "crate::money::usd")]
    pub cost: Credits,
    pub requests: u64,
}

/// A channel at a glance: its name, whether it is on, and its health on this instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGlance {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub health: ChannelHealth,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOverview {
    /// The last 60 minutes, oldest first, every minute present.
    pub minutes: Vec<MinutePoint>,
    /// Today (UTC): spend and calls.
    #[serde(with = "crate::money::usd")]
    pub spend_today: Credits,
    pub requests_today: u64,
    pub top_models: Vec<TopItem>,
    pub top_users: Vec<TopItem>,
    pub channels: Vec<ChannelGlance>,
    /// The latest administrators' actions.
    pub recent: Vec<AuditEntry>,
}
