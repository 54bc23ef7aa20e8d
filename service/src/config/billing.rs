//! `billing:` `default_max_tokens` (reserved for a request that sets no bound),
//! `min_lowered_max_tokens` (the least bound a request is lowered to when the balance or the
//! key's cap cannot cover its own; at least 1), `stored_input_hold_tokens` (input tokens held for
//! the stored conversation a Responses request continues by `previous_response_id` or
//! `conversation`; at least 1),
//! `report_interval_ms`, `idle_close_ms`, `sweep_after_seconds` (the credit lease; each at least
//! 1), `group_multipliers` (group -> a decimal with at most 3 places, parsed exactly). And
//! `pricing:` model -> `input_per_1m`, `output_per_1m`, `cached_input_per_1m` (cache reads),
//! `cache_write_5m_per_1m`, `cache_write_1h_per_1m`, `reasoning_per_1m`, `image_input_per_1m`,
//! `image_output_per_1m`, `audio_input_per_1m`, `audio_output_per_1m` (each falling back to the
//! input or the output rate), `per_request` (default 0), `max_output_tokens`, and `tiers` (each
//! `above_tokens` and its own rates): USD decimal strings parsed into exact units
//! ([`PriceConfig`]).

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

/// The most long-context tiers one price may have.
pub const MAX_TIERS: usize = 8;

/// A price in USD decimal strings per 1M tokens of each kind, and per request; with the model's
/// most output tokens and its long-context tiers. The admin API takes the same body.
///
/// Unset rates fall back, never to zero: `cached_input_per_1m` (cache reads), the cache writes
/// and image and audio input to the input rate; reasoning, image and audio output to the
/// output rate. A tier (`above_tokens`, its own rates, the same fallbacks within it) prices the
/// whole request when its context (input tokens, cache reads and writes included) is above
/// `above_tokens`; the highest such tier applies. A tier names no `per_request`,
/// `max_output_tokens` or `tiers`.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// In a tier only: the context size (in tokens) above which the tier's rates apply.
    #[serde(default)]
    pub above_tokens: Option<u64>,
    pub input_per_1m: String,
    pub output_per_1m: String,
    /// Cache reads (default: the input rate).
    #[serde(default)]
    pub cached_input_per_1m: Option<String>,
    /// Cache writes with a 5-minute lifetime (default: the input rate).
    #[serde(default)]
    pub cache_write_5m_per_1m: Option<String>,
    /// Cache writes with a 1-hour lifetime (default: the input rate).
    #[serde(default)]
    pub cache_write_1h_per_1m: Option<String>,
    /// Reasoning (thinking) output (default: the output rate).
    #[serde(default)]
    pub reasoning_per_1m: Option<String>,
    #[serde(default)]
    pub image_input_per_1m: Option<String>,
    #[serde(default)]
    pub image_output_per_1m: Option<String>,
    #[serde(default)]
    pub audio_input_per_1m: Option<String>,
    #[serde(default)]
    pub audio_output_per_1m: Option<String>,
    /// A flat price per request, in USD.
    #[serde(default)]
    pub per_request: Option<String>,
    /// The model's most output tokens: what a request that sets no bound reserves and is sent
    /// with (else `billing.default_max_tokens`).
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Long-context tiers, each above a larger context than the one before.
    #[serde(default)]
    #[schema(no_recursion)]
    pub tiers: Vec<PriceConfig>,
}

/// Rates in integer units per 1M tokens, parsed exactly; `None` where the price falls back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub input_per_1m: i64,
    pub output_per_1m: i64,
    /// Resolved when parsed: the input rate when unset.
    pub cached_input_per_1m: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_5m_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_input_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_output_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_input_per_1m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_output_per_1m: Option<i64>,
}

/// Every rate of [`Rates`] with the fallbacks applied, as charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charged {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_write_5m: i64,
    pub cache_write_1h: i64,
    pub reasoning: i64,
    pub image_input: i64,
    pub image_output: i64,
    pub audio_input: i64,
    pub audio_output: i64,
}

impl Rates {
    /// The fallbacks, in this one place: input kinds at the input rate, output kinds at the
    /// output rate.
    pub fn charged(&self) -> Charged {
        let (i, o) = (self.input_per_1m, self.output_per_1m);
        Charged {
            input: i,
            output: o,
            cache_read: self.cached_input_per_1m,
            cache_write_5m: self.cache_write_5m_per_1m.unwrap_or(i),
            cache_write_1h: self.cache_write_1h_per_1m.unwrap_or(i),
            reasoning: self.reasoning_per_1m.unwrap_or(o),
            image_input: self.image_input_per_1m.unwrap_or(i),
            image_output: self.image_output_per_1m.unwrap_or(o),
            audio_input: self.audio_input_per_1m.unwrap_or(i),
            audio_output: self.audio_output_per_1m.unwrap_or(o),
        }
    }
}

/// A long-context tier in integer units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub above_tokens: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

/// A price in integer units, parsed exactly from the config's decimal strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedPrice {
    pub rates: Rates,
    pub per_request: i64,
    pub max_output_tokens: Option<u64>,
    /// Ascending by `above_tokens`.
    pub tiers: Vec<Tier>,
}

impl ParsedPrice {
    /// The rates a request with `context` input tokens is charged at: the highest tier it is
    /// above, else the base rates.
    pub fn rates_for(&self, context: u64) -> &Rates {
        self.tiers
            .iter()
            .rev()
            .find(|t| context > t.above_tokens)
            .map_or(&self.rates, |t| &t.rates)
    }
}

impl PriceConfig {
    pub fn parse(&self, model: &str) -> Result<ParsedPrice, ConfigError> {
        let key = format!("pricing.{model}");
        if self.above_tokens.is_some() {
            return Err(err(
                format!("{key}.above_tokens"),
                "belongs in a tier (`tiers`)",
            ));
        }
        let rates = self.rates(&key)?;
        if self.tiers.len() > MAX_TIERS {
            return Err(err(
                format!("{key}.tiers"),
                format!("at most {MAX_TIERS} tiers"),
            ));
        }
        let mut tiers: Vec<Tier> = Vec::with_capacity(self.tiers.len());
        for (n, t) in self.tiers.iter().enumerate() {
            let at = format!("{key}.tiers[{n}]");
            let only_base = [
                ("per_request", t.per_request.is_some()),
                ("max_output_tokens", t.max_output_tokens.is_some()),
                ("tiers", !t.tiers.is_empty()),
            ];
            if let Some((name, _)) = only_base.iter().find(|(_, set)| *set) {
                return Err(err(
                    format!("{at}.{name}"),
                    "belongs to the price, not to a tier",
                ));
            }
            let above = match t.above_tokens {
                Some(a) if a >= 1 => a,
                _ => return Err(err(format!("{at}.above_tokens"), "must be at least 1")),
            };
            if tiers.last().is_some_and(|prev| prev.above_tokens >= above) {
                return Err(err(
                    format!("{at}.above_tokens"),
                    "must be above the tier before it",
                ));
            }
            tiers.push(Tier {
                above_tokens: above,
                rates: t.rates(&at)?,
            });
        }
        if self.max_output_tokens == Some(0) {
            return Err(err(
                format!("{key}.max_output_tokens"),
                "must be at least 1",
            ));
        }
        Ok(ParsedPrice {
            rates,
            per_request: match &self.per_request {
                Some(t) => usd(&key, "per_request", t)?,
                None => 0,
            },
            max_output_tokens: self.max_output_tokens,
            tiers,
        })
    }

    fn rates(&self, key: &str) -> Result<Rates, ConfigError> {
        let opt = |name: &str, text: &Option<String>| {
            text.as_deref().map(|t| usd(key, name, t)).transpose()
        };
        let input = usd(key, "input_per_1m", &self.input_per_1m)?;
        Ok(Rates {
            input_per_1m: input,
            output_per_1m: usd(key, "output_per_1m", &self.output_per_1m)?,
            cached_input_per_1m: opt("cached_input_per_1m", &self.cached_input_per_1m)?
                .unwrap_or(input),
            cache_write_5m_per_1m: opt("cache_write_5m_per_1m", &self.cache_write_5m_per_1m)?,
            cache_write_1h_per_1m: opt("cache_write_1h_per_1m", &self.cache_write_1h_per_1m)?,
            reasoning_per_1m: opt("reasoning_per_1m", &self.reasoning_per_1m)?,
            image_input_per_1m: opt("image_input_per_1m", &self.image_input_per_1m)?,
            image_output_per_1m: opt("image_output_per_1m", &self.image_output_per_1m)?,
            audio_input_per_1m: opt("audio_input_per_1m", &self.audio_input_per_1m)?,
            audio_output_per_1m: opt("audio_output_per_1m", &self.audio_output_per_1m)?,
        })
    }
}

/// A non-negative USD decimal string in exact units; the error names `key.name`.
fn usd(key: &str, name: &str, text: &str) -> Result<i64, ConfigError> {
    let c = Credits::parse_usd(text).map_err(|e| err(format!("{key}.{name}"), e.to_string()))?;
    if c.units() < 0 {
        return Err(err(format!("{key}.{name}"), "must not be negative"));
    }
    Ok(c.units())
}
