//! Alerts: who is told of what, and what they were told. A user watches their balance (an
//! amount) and their keys' caps (a percent spent); an administrator watches the channels (down
//! and up again) and the ledger check (drift, and agreement again). An alert is sent once per
//! crossing, by webhook and by e-mail.

use crate::Credits;
use serde::{Deserialize, Serialize};

/// Where and when a user (or the system) is told. `GET` shows it; `PUT` takes the same fields
/// (the flags that show what the server can do are ignored there).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// The address alerts are e-mailed to (`null`: none). Needs `alerts.smtp` in the config.
    #[serde(default)]
    pub email: Option<String>,
    /// An `http(s)` URL that receives each alert as a signed JSON `POST` (`null`: none).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The webhook's signing secret: write-only (16 to 256 printable characters). Left out
    /// (or `null`) on `PUT`: the one set before is kept. Never shown.
    #[serde(default, skip_serializing)]
    pub webhook_secret: Option<String>,
    /// A signing secret is set (shown, never the secret).
    #[serde(default)]
    pub webhook_secret_set: bool,
    /// A user's: tell when the balance falls below this amount (USD decimal string).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "5.00"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub balance_below: Option<Credits>,
    /// A user's: tell when a key with a spending cap has spent this percent of it (1 to 100).
    #[serde(default)]
    pub key_cap_percent: Option<u32>,
    /// The system's: tell when a channel fails its probe, and when it answers again.
    #[serde(default)]
    pub channels: bool,
    /// The system's: tell when the ledger check finds drift, and when it agrees again.
    #[serde(default)]
    pub ledger_drift: bool,
    /// The operator configured e-mail (`alerts.smtp`); without it no address is taken.
    #[serde(default)]
    pub email_available: bool,
}

/// What an alert says happened.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// A balance fell below its threshold.
    #[serde(rename = "balance.low")]
    BalanceLow,
    /// A key spent its threshold's percent of its cap.
    #[serde(rename = "key.cap")]
    KeyCap,
    /// A channel failed its probe.
    #[serde(rename = "channel.down")]
    ChannelDown,
    /// A channel that was down answered its probe again.
    #[serde(rename = "channel.up")]
    ChannelUp,
    /// The ledger check found balances or charges that differ from the ledger.
    #[serde(rename = "ledger.drift")]
    LedgerDrift,
    /// The ledger check agrees again after drift.
    #[serde(rename = "ledger.agrees")]
    LedgerAgrees,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::BalanceLow,
        AlertKind::KeyCap,
        AlertKind::ChannelDown,
        AlertKind::ChannelUp,
        AlertKind::LedgerDrift,
        AlertKind::LedgerAgrees,
    ];

    /// The name on the wire and in the database (`balance.low`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BalanceLow => "balance.low",
            AlertKind::KeyCap => "key.cap",
            AlertKind::ChannelDown => "channel.down",
            AlertKind::ChannelUp => "channel.up",
            AlertKind::LedgerDrift => "ledger.drift",
            AlertKind::LedgerAgrees => "ledger.agrees",
        }
    }

    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How an alert travels.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTarget {
    Webhook,
    Email,
}

impl AlertTarget {
    /// The name on the wire, in the database and in metrics (`webhook`, `email`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTarget::Webhook => "webhook",
            AlertTarget::Email => "email",
        }
    }
}

/// Where a delivery stands: waiting for its (next) attempt, delivered, or given up after
/// `alerts.max_attempts`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
}

/// One alert's delivery to one target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    pub target: AlertTarget,
    /// The URL or address it goes to, as set when the alert was raised.
    pub address: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// One alert, as raised (once per crossing) and delivered.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// The event's id, also sent as `X-Tollgate-Event-Id` (a receiver drops repeats by it).
    pub id: String,
    pub kind: AlertKind,
    /// The user it concerns (`null`: the system's).
    pub user_id: Option<i64>,
    /// The key's or the channel's name, for the alerts that concern one.
    pub name: Option<String>,
    /// The amount seen: a balance, a key's spending, the drift (USD decimal string).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0.90"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub amount: Option<Credits>,
    /// The threshold crossed, or a key's cap (USD decimal string).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.00"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub threshold: Option<Credits>,
    /// The message as sent (English).
    pub message: String,
    pub created_at: i64,
    pub deliveries: Vec<AlertDelivery>,
}

/// The settings and the latest alerts of a user, or of the system.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerts {
    pub settings: AlertSettings,
    /// Newest first, at most 20.
    pub recent: Vec<AlertView>,
}
