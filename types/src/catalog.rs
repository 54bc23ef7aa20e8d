//! What the console and the admin API show of keys, channels, mappings and prices: one
//! definition each, shared by the server, the REST API and the WebAssembly console. Money is
//! [`Credits`] (integer units), written on the wire as USD decimal strings.

use crate::Credits;
use serde::{Deserialize, Serialize};

/// A key as the admin API shows it: never the secret or its digest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyView {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub status: String,
    pub expires_at: Option<i64>,
    pub allowed_models: Vec<String>,
    pub allowed_ips: Vec<String>,
    /// When capped; on the wire as a USD decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(with = "crate::money::usd::option")]
    pub spend_cap: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub spent: Credits,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    /// Calls in flight at once, when the key sets its own.
    #[serde(default)]
    pub max_concurrent: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The admin list of keys: filters (each optional) and keyset paging, newest first.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// The owner's id.
    pub user_id: Option<i64>,
    /// `active`, `disabled`, or `expiring` (active, not yet expired, expiring within 7 days).
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100 (50 when absent).
    pub limit: Option<String>,
}

/// A newly created key: the view plus the secret, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    pub key: String,
}

/// A key the console just made for its owner: its name and its secret, shown this once (the
/// console's table of keys, drawn again, shows the rest).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeySecret {
    pub name: String,
    pub key: String,
}

/// What an administrator (or, later, the key's owner) supplies to create a key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub user_id: i64,
    pub name: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// USD decimal string.
    #[serde(default)]
    pub spend_cap: Option<String>,
    #[serde(default)]
    pub rpm: Option<i64>,
    #[serde(default)]
    pub tpm: Option<i64>,
    /// Calls in flight at once (none: the group's, else the default).
    #[serde(default)]
    pub max_concurrent: Option<i64>,
}

/// What an administrator changes of a key: every field left out stays; `null` clears a
/// nullable one (no expiry, no cap, no limit of its own).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Milliseconds since the epoch; `null`: never expires.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<i64>>,
    /// Empty: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    /// Addresses or CIDR ranges; empty: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    /// USD decimal string; `null`: no cap.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "5.00"))]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub spend_cap: Option<Option<String>>,
    /// Requests per minute; `null`: the group's or the default.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub rpm: Option<Option<i64>>,
    /// Tokens per minute; `null`: the group's or the default.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tpm: Option<Option<i64>>,
    /// Calls in flight at once; `null`: the group's or the default.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrent: Option<Option<i64>>,
}

/// A PATCH field that can be cleared: present (`null` included) is `Some`, absent is `None`
/// (through `#[serde(default)]`).
fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What protocol a channel's upstream speaks, and so what it can serve: a closed set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// OpenAI itself: chat, completions, embeddings and the Responses API natively
    /// (`max_completion_tokens`).
    #[serde(rename = "openai")]
    OpenAi,
    /// A server with OpenAI's chat, completions and embeddings routes (`max_tokens`); Messages
    /// and Responses calls reach it converted to chat.
    #[default]
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// Anthropic's Messages API (`x-api-key`, `anthropic-version`).
    Anthropic,
    /// Azure OpenAI (`api-key`): chat, completions, embeddings and the Responses API natively;
    /// `base_url` is the resource's endpoint. Without `api_version`, the v1 API
    /// (`/openai/v1/…`, the deployment named as the model); with it, the deployment URLs
    /// (`/openai/deployments/{model}/…?api-version=…`).
    Azure,
    /// Google's Gemini API (`x-goog-api-key`; `generateContent`, `streamGenerateContent`):
    /// chat, and Messages and Responses calls over chat, converted to Gemini's protocol and
    /// back; `base_url` e.g. `https://generativelanguage.googleapis.com/v1beta`.
    Gemini,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::OpenAi,
        ChannelKind::OpenAiCompatible,
        ChannelKind::Anthropic,
        ChannelKind::Azure,
        ChannelKind::Gemini,
    ];

    /// The name the config, the API and the database use.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::OpenAi => "openai",
            ChannelKind::OpenAiCompatible => "openai-compatible",
            ChannelKind::Anthropic => "anthropic",
            ChannelKind::Azure => "azure",
            ChannelKind::Gemini => "gemini",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The field a chat channel's upstream takes the output bound in: OpenAI's reasoning models
/// refuse `max_tokens`, many compatible servers refuse `max_completion_tokens`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BoundField {
    MaxTokens,
    MaxCompletionTokens,
}

impl BoundField {
    pub const fn as_str(self) -> &'static str {
        match self {
            BoundField::MaxTokens => "max_tokens",
            BoundField::MaxCompletionTokens => "max_completion_tokens",
        }
    }

    pub fn parse(text: &str) -> Option<BoundField> {
        [BoundField::MaxTokens, BoundField::MaxCompletionTokens]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

impl ChannelKind {
    /// Whether the kind's upstream speaks OpenAI's chat protocol (and so takes the chat
    /// switches: the bound's field, usage in streams).
    pub const fn speaks_chat(self) -> bool {
        matches!(
            self,
            ChannelKind::OpenAi | ChannelKind::OpenAiCompatible | ChannelKind::Azure
        )
    }

    /// The field the kind's chat route takes the output bound in, unless the channel says.
    pub const fn bound_field(self) -> BoundField {
        match self {
            ChannelKind::OpenAi | ChannelKind::Azure => BoundField::MaxCompletionTokens,
            _ => BoundField::MaxTokens,
        }
    }
}

/// A channel as the admin API shows it: the upstream key is write-only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelView {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub base_url: String,
    /// Azure's `api-version` (deployment URLs); none elsewhere.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The chat bound's field, when the channel overrides its kind's.
    #[serde(default)]
    pub max_tokens_field: Option<BoundField>,
    /// Whether streams ask the upstream for usage (`stream_options.include_usage`).
    #[serde(default = "yes")]
    pub stream_usage: bool,
    pub models: Vec<String>,
    pub priority: i64,
    pub weight: u32,
    pub connect_timeout_ms: u64,
    /// A stream's wait for the upstream's first byte.
    pub first_byte_timeout_ms: u64,
    /// A non-stream call's wait for its answer to begin.
    #[serde(default = "answer_ms")]
    pub answer_timeout_ms: u64,
    /// The longest silence between two pieces of an answer.
    pub idle_timeout_ms: u64,
    pub enabled: bool,
    pub has_api_key: bool,
    /// The user groups whose keys the channel serves; empty: every group.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A public model and its ordered fallback list of upstream model names.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mapping {
    pub model: String,
    pub targets: Vec<String>,
}

/// A price's rates per 1M tokens of each kind, in USD decimal strings. In the admin API an
/// unset rate is `null` and charged at its fallback (cache writes, image and audio input at
/// `input_per_1m`; reasoning, image and audio output at `output_per_1m`); `/api/pricing` shows
/// every rate as it is charged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PriceRates {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub input_per_1m: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub output_per_1m: Credits,
    /// Cache reads.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub cached_input_per_1m: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub cache_write_5m_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub cache_write_1h_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub reasoning_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub image_input_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub image_output_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub audio_input_per_1m: Option<Credits>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(default, with = "crate::money::usd::option")]
    pub audio_output_per_1m: Option<Credits>,
}

impl PriceRates {
    /// Each rate with its name as the API spells it (`input_per_1m`…), in the order of the
    /// fields; `None` where the rate falls back.
    pub fn named(&self) -> [(&'static str, Option<Credits>); 10] {
        [
            ("input_per_1m", Some(self.input_per_1m)),
            ("output_per_1m", Some(self.output_per_1m)),
            ("cached_input_per_1m", Some(self.cached_input_per_1m)),
            ("cache_write_5m_per_1m", self.cache_write_5m_per_1m),
            ("cache_write_1h_per_1m", self.cache_write_1h_per_1m),
            ("reasoning_per_1m", self.reasoning_per_1m),
            ("image_input_per_1m", self.image_input_per_1m),
            ("image_output_per_1m", self.image_output_per_1m),
            ("audio_input_per_1m", self.audio_input_per_1m),
            ("audio_output_per_1m", self.audio_output_per_1m),
        ]
    }
}

/// A long-context tier: above `above_tokens` of context (input, cache reads and writes
/// included), the whole request is charged at these rates.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PriceTier {
    pub above_tokens: u64,
    #[serde(flatten)]
    pub rates: PriceRates,
}

/// A price as the admin API shows it: USD decimal strings per 1M tokens of each kind.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PriceView {
    pub model: String,
    pub version: i64,
    #[serde(flatten)]
    pub rates: PriceRates,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub per_request: Credits,
    /// The model's most output tokens (`null`: `billing.default_max_tokens` for a request that
    /// sets none).
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Ascending by `above_tokens`.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
}

/// One version of a model's price, as the history shows it: the price, whether the gateway
/// charges it now (at most one version is active), and when it was set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceVersion {
    #[serde(flatten)]
    pub price: PriceView,
    pub active: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_patch_tells_absent_from_null() {
        let p: KeyPatch = serde_json::from_str(r#"{"rpm": null, "tpm": 5}"#).expect("patch");
        assert_eq!(p.rpm, Some(None), "null clears");
        assert_eq!(p.tpm, Some(Some(5)));
        assert_eq!(p.spend_cap, None, "absent stays");
        assert!(serde_json::from_str::<KeyPatch>(r#"{"bogus": 1}"#).is_err());
    }
}

/// A channel's health as this instance has seen it: the last hour's attempts (requests, the
/// failed ones, the mean time to the answer's headers) and its circuit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelHealth {
    pub channel_id: i64,
    pub requests: u64,
    pub failures: u64,
    pub mean_latency_ms: Option<u64>,
    /// Failures in a row; the circuit opens at `gateway.failure_threshold`.
    pub failures_in_a_row: u32,
    /// How long the circuit stays open (the channel tried last); 0 when closed.
    pub cooldown_ms: u64,
    /// The latest scheduled probe, from whichever instance ran it.
    pub last_probe: Option<ChannelProbe>,
}

/// The latest scheduled probe of a channel (shared by every instance through the database).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelProbe {
    /// Unix ms.
    pub at: i64,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// Failed probes in a row.
    pub failures: u32,
}

/// What a live test of a channel saw: a tiny chat request (`max_tokens: 1`) to its first model.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelTest {
    pub channel_id: i64,
    /// The upstream model asked.
    pub model: String,
    pub ok: bool,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The upstream's error text (at most 500 characters), or why it could not be reached.
    pub error: Option<String>,
}

fn yes() -> bool {
    true
}

fn answer_ms() -> u64 {
    600_000
}
