//! `billing:` `default_max_tokens` (reserved for a request that sets no bound),
//! `min_lowered_max_tokens` (the least bound a request is lowered to when the balance or the
//! key's cap cannot cover its own; at least 1), `stored_input_hold_tokens` (input tokens held for
//! the stored conversation a Responses request continues by `previous_response_id` or
//! `conversation`; at least 1),
//! `report_interval_ms`, `idle_close_ms`, `sweep_after_seconds` (the credit lease; each at least
//! 1), `group_multipliers` (group -> a decimal with at most 3 places, parsed exactly). And
//! `pricing:` model -> `input_per_1m`, `output_per_1m`, `cached_input_per_1m` (default: the
//! input price), `per_request` (default 0), USD decimal strings parsed into exact units.

use super::{ConfigError, at_least_one, err};
use serde::Deserialize;
use std::collections::BTreeMap;
use types::Credits;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Output tokens reserved for a request that does not set `max_tokens`.
    pub default_max_tokens: u32,
    /// A request whose bound the free balance (or its key's cap) cannot cover is served with the
    /// bound it can cover, down to this many output tokens; below it, refused with a 402.
    pub min_lowered_max_tokens: u32,
    /// Input tokens held, beyond the request's own body, for a Responses request that continues
    /// a response stored upstream (`previous_response_id`, `conversation`): the stored input is
    /// charged as the upstream reports it, and what it costs beyond the hold is taken from the
    /// free balance, as any usage beyond a hold is.
    pub stored_input_hold_tokens: u32,
    /// How often used units are reported to the database.
    pub report_interval_ms: u64,
    /// A grant unused this long is reported and closed.
    pub idle_close_ms: u64,
    /// The credit lease: an instance that could not renew its lease for this long stops
    /// spending from its grants; other instances take them over after this plus a quarter
    /// (at least a second more).
    pub sweep_after_seconds: u64,
    /// User group -> price multiplier as a decimal string ("1.5").
    pub group_multipliers: BTreeMap<String, Multiplier>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            default_max_tokens: 4096,
            min_lowered_max_tokens: 256,
            stored_input_hold_tokens: 32_768,
            report_interval_ms: 1000,
            idle_close_ms: 2000,
            sweep_after_seconds: 15,
            group_multipliers: BTreeMap::new(),
        }
    }
}

/// A price multiplier in thousandths, parsed exactly from its decimal text when the config
/// loads ("1.5" -> 1500): a wrong one stops startup naming its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multiplier(i64);

impl Multiplier {
    pub fn milli(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Multiplier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_multiplier("", &text)
            .map(Multiplier)
            .map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A multiplier in thousandths, parsed exactly: "1.5" -> 1500.
pub fn parse_multiplier(key: &str, text: &str) -> Result<i64, ConfigError> {
    let c = Credits::parse_usd(text).map_err(|e| err(key, e.to_string()))?;
    if c.units() < 0 || c.units() % 1000 != 0 {
        return Err(err(
            key,
            "must be a non-negative decimal with at most 3 decimal places",
        ));
    }
    Ok(c.units() / 1000)
}

impl BillingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("billing.report_interval_ms", self.report_interval_ms)?;
        at_least_one(
            "billing.min_lowered_max_tokens",
            self.min_lowered_max_tokens,
        )?;
        at_least_one("billing.sweep_after_seconds", self.sweep_after_seconds)?;
        at_least_one(
            "billing.stored_input_hold_tokens",
            self.stored_input_hold_tokens,
        )?;
        Ok(())
    }
}

/// A price in USD decimal strings: per 1M input, output and cached input tokens, and per request.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input_per_1m: String,
    pub output_per_1m: String,
    #[serde(default)]
    pub cached_input_per_1m: Option<String>,
    /// A flat price per request, in USD.
    #[serde(default)]
    pub per_request: Option<String>,
}

/// A price in integer units, parsed exactly from the config's decimal strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedPrice {
    pub input_per_1m: i64,
    pub output_per_1m: i64,
    pub cached_input_per_1m: i64,
    pub per_request: i64,
}

impl PriceConfig {
    pub fn parse(&self, model: &str) -> Result<ParsedPrice, ConfigError> {
        let field = |name: &str, text: &str| {
            Credits::parse_usd(text)
                .map_err(|e| err(format!("pricing.{model}.{name}"), e.to_string()))
                .and_then(|c| {
                    if c.units() < 0 {
                        Err(err(
                            format!("pricing.{model}.{name}"),
                            "must not be negative",
                        ))
                    } else {
                        Ok(c.units())
                    }
                })
        };
        let input = field("input_per_1m", &self.input_per_1m)?;
        Ok(ParsedPrice {
            input_per_1m: input,
            output_per_1m: field("output_per_1m", &self.output_per_1m)?,
            cached_input_per_1m: match &self.cached_input_per_1m {
                Some(t) => field("cached_input_per_1m", t)?,
                None => input,
            },
            per_request: match &self.per_request {
                Some(t) => field("per_request", t)?,
                None => 0,
            },
        })
    }
}
