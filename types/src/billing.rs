//! OpenAI's legacy billing shapes, which chat clients read to show a balance, and the price
//! table `/api/pricing` publishes. Amounts here are JSON numbers in USD (and cents), as those
//! clients expect; they are computed from integer units and only rounded for display.

use crate::Credits;
use serde::{Deserialize, Serialize};

/// `GET /v1/dashboard/billing/subscription`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillingSubscription {
    pub object: String,
    pub has_payment_method: bool,
    /// What remains plus what the window's usage spent: `hard_limit_usd - total_usage / 100`
    /// (the usage endpoint, same window) is what remains.
    pub hard_limit_usd: f64,
    pub soft_limit_usd: f64,
    pub system_hard_limit_usd: f64,
    /// The key's expiry in unix seconds; 0 when it has none.
    pub access_until: i64,
}

/// `GET /v1/dashboard/billing/usage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillingUsage {
    pub object: String,
    /// In cents.
    pub total_usage: f64,
    pub daily_costs: Vec<DailyCost>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyCost {
    /// The day's start, unix seconds (UTC).
    pub timestamp: f64,
    pub line_items: Vec<LineItem>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub name: String,
    /// In cents.
    pub cost: f64,
}

/// `GET /v1/credits`: credited, used and remaining, in USD.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditSummary {
    pub object: String,
    pub total_granted: f64,
    pub total_used: f64,
    pub total_available: f64,
}

/// A model's price as `/api/pricing` lists it: per 1M tokens of each kind (and per request),
/// in USD decimal strings, every rate as charged (fallbacks resolved), with the group multiplier
/// applied (rounded up to a unit, as charges are).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub model: String,
    #[serde(flatten)]
    pub rates: crate::PriceRates,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub per_request: Credits,
    /// The most output tokens a request that sets no bound is sent with.
    pub max_output_tokens: u64,
    /// Long-context tiers, ascending: above `above_tokens` of context the whole request is
    /// charged at the tier's rates.
    #[serde(default)]
    pub tiers: Vec<crate::PriceTier>,
    /// The price version charges record.
    pub version: i64,
}

/// `GET /api/pricing`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    /// The caller's group (`default` without a key) and its multiplier, a decimal string.
    pub group: String,
    pub multiplier: String,
    pub data: Vec<ModelPrice>,
}

/// A user group's price multiplier.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub name: String,
    /// A decimal string, `"1.5"`.
    pub multiplier: String,
    /// Where it comes from: `database` (set through the API) or `config`.
    pub source: String,
}

/// `GET /api/about`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    pub name: String,
    pub version: String,
    pub build: String,
    pub uptime_seconds: u64,
    /// Unix seconds.
    pub started_at: i64,
    pub docs: DocsLinks,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocsLinks {
    /// The OpenAPI document of every route.
    pub openapi: String,
    /// The console's page that renders it.
    pub console: String,
}
