//! A call and a ledger entry as the console shows them (the call logs and the billing pages),
//! and the closed vocabularies of a call's outcome.

use crate::Credits;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a row's token counts come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsageSource {
    /// Reported by the upstream.
    Upstream,
    /// Counted by the gateway (the upstream reported none) for a complete answer.
    Estimated,
    /// Counted by the gateway for an answer that ended early.
    Partial,
    /// No answer: nothing to count.
    #[default]
    Absent,
}

impl UsageSource {
    pub const ALL: [UsageSource; 4] = [
        UsageSource::Upstream,
        UsageSource::Estimated,
        UsageSource::Partial,
        UsageSource::Absent,
    ];

    /// As stored (`usage_logs.usage_source`).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Upstream => "upstream",
            UsageSource::Estimated => "estimated",
            UsageSource::Partial => "partial",
            UsageSource::Absent => "none",
        }
    }

    pub fn parse(text: &str) -> Option<UsageSource> {
        UsageSource::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a call did not end as a complete answer: the kind of error it was answered with, or how
/// its stream ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Failed(crate::ErrorKind),
    UpstreamCut,
    ClientCancelled,
    ServerShutdown,
    /// The upstream produced more than the output bound it was sent: the stream was ended at
    /// the bound (or the answer's count capped at it), and only the bound was charged.
    UpstreamOverBound,
}

impl ErrorClass {
    /// As stored (`usage_logs.error_class`): the error kind's code, or the way a stream ended.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Failed(kind) => kind.code(),
            ErrorClass::UpstreamCut => "upstream_cut",
            ErrorClass::ClientCancelled => "client_cancelled",
            ErrorClass::ServerShutdown => "server_shutdown",
            ErrorClass::UpstreamOverBound => "upstream_over_bound",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorClass> {
        match text {
            "upstream_cut" => Some(ErrorClass::UpstreamCut),
            "client_cancelled" => Some(ErrorClass::ClientCancelled),
            "server_shutdown" => Some(ErrorClass::ServerShutdown),
            "upstream_over_bound" => Some(ErrorClass::UpstreamOverBound),
            code => crate::ErrorKind::from_code(code).map(ErrorClass::Failed),
        }
    }
}

macro_rules! as_text {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$t>::parse(&text)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown {}: {text}", $what)))
            }
        }
    };
}

as_text!(UsageSource, "usage source");
as_text!(ErrorClass, "error class");

/// Of a call's tokens, the kinds a provider reports apart: each a part of the input count
/// (cache writes, image and audio input) or of the output count (reasoning, image and audio
/// output), resolved once per provider by its adapter. 0 where the provider says nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenDetail {
    /// Input written to the upstream's prompt cache with a 5-minute lifetime.
    pub cache_write_5m: u64,
    /// Input written to the upstream's prompt cache with a 1-hour lifetime.
    pub cache_write_1h: u64,
    /// Output spent reasoning (thinking).
    pub reasoning: u64,
    pub image_input: u64,
    pub image_output: u64,
    pub audio_input: u64,
    pub audio_output: u64,
}

impl UsageRow {
    /// The kinds of tokens reported apart, together.
    pub fn detail(&self) -> TokenDetail {
        TokenDetail {
            cache_write_5m: self.cache_write_5m_tokens,
            cache_write_1h: self.cache_write_1h_tokens,
            reasoning: self.reasoning_tokens,
            image_input: self.image_input_tokens,
            image_output: self.image_output_tokens,
            audio_input: self.audio_input_tokens,
            audio_output: self.audio_output_tokens,
        }
    }
}

impl TokenDetail {
    /// Each count, in the order of their columns (`cache_write_5m_tokens`,
    /// `cache_write_1h_tokens`, `reasoning_tokens`, `image_input_tokens`, `image_output_tokens`,
    /// `audio_input_tokens`, `audio_output_tokens`), as the usage rows and the CSV hold them.
    pub fn counts(&self) -> [u64; 7] {
        [
            self.cache_write_5m,
            self.cache_write_1h,
            self.reasoning,
            self.image_input,
            self.image_output,
            self.audio_input,
            self.audio_output,
        ]
    }

    /// Both cache-write lifetimes together.
    pub fn cache_write(&self) -> u64 {
        self.cache_write_5m.saturating_add(self.cache_write_1h)
    }
}

/// One call, as its owner and the administrators read it in the call logs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub id: i64,
    pub request_id: String,
    pub user_id: i64,
    pub key_id: Option<i64>,
    pub key_prefix: Option<String>,
    /// The model asked for, and the upstream model that served it.
    pub model: String,
    pub served_model: Option<String>,
    pub channel_id: Option<i64>,
    pub attempts: u32,
    pub stream: bool,
    /// Input tokens, cache reads and writes included; of them, `cached_tokens` were read from
    /// the upstream's cache.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// The kinds of tokens the provider reported apart (0 when it did not): parts of the input
    /// (cache writes by lifetime, image, audio) and of the output (reasoning, image, audio).
    #[serde(default)]
    pub cache_write_5m_tokens: u64,
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[serde(default)]
    pub image_input_tokens: u64,
    #[serde(default)]
    pub image_output_tokens: u64,
    #[serde(default)]
    pub audio_input_tokens: u64,
    #[serde(default)]
    pub audio_output_tokens: u64,
    /// The route the client called: `chat`, `completions`, `embeddings`, `messages` or
    /// `responses`.
    pub surface: String,
    /// The kind of the channel that answered (`openai`, `openai-compatible`, `anthropic`…).
    pub upstream_kind: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub cost: Credits,
    pub price_version: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub usage_source: UsageSource,
    pub status: u16,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub error_class: Option<ErrorClass>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One change of a balance, as the billing page shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub id: i64,
    pub user_id: i64,
    pub key_id: Option<i64>,
    /// `credit`, `grant`, `charge`, `release`, `adjustment`, `refund` or `import` (a balance
    /// moved in by `tollgate import`).
    pub kind: String,
    /// The change of the balance.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub amount: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub balance_after: Credits,
    pub reference: Option<String>,
    pub reason: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The filters and the page of a call-log read, as the query string or a server function sends
/// them: text, parsed by the service, which names the field it refuses. `from` and `to` are unix
/// seconds (from inclusive, to exclusive); `status` is `success`, `error` or an HTTP status.
/// Keyset paging: `cursor` is the `next_cursor` of the page before, `limit` at most 100.
/// `user_id` is for administrators only.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// `/api/logs`: the same filters, paged by number (`page` from 1, `page_size` at most 100).
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub key_id: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

/// A ledger read, keyset-paged.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// Daily usage: `from` and `to` are days (`YYYY-MM-DD`, both included), `by` is `model` or
/// `key`, and days start at UTC plus `utc_offset_minutes` (a whole number of hours).
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
    pub utc_offset_minutes: Option<String>,
}

/// A numbered page, in the shape the seed's `/api/logs` answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    pub current_page: u64,
    pub page_size: u64,
    pub total: u64,
    pub total_pages: u64,
}

/// A keyset page: the rows, and the cursor of the next page (none after the last).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// One day's usage of one model (or one key).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePoint {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Set when grouped by model.
    pub model: Option<String>,
    /// Set when grouped by key (0: calls made without a key).
    pub key_id: Option<i64>,
    pub requests: u64,
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Input written to the upstream's cache (both lifetimes), and output spent reasoning.
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub cost: Credits,
}

/// One user as an administrator sees them (`/admin/users/{id}`), read in one round trip: the
/// account, its keys, the last 30 UTC days of usage by model, and a page of its ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user: crate::UserInfo,
    pub keys: Vec<crate::KeyView>,
    /// The last day of the usage range (`YYYY-MM-DD`, UTC).
    pub today: String,
    pub usage: Vec<UsagePoint>,
    pub ledger: Slice<LedgerRow>,
}

/// What the console's dashboard shows, read in one round trip: the account as it is now, its
/// spend today and over the last 7 and 30 UTC days, and the rest of the page drawn as HTML by
/// the server in the reader's language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub user: crate::UserInfo,
    pub spent_today: Credits,
    pub calls_today: u64,
    pub spent_7: Credits,
    pub spent_30: Credits,
    pub calls_30: u64,
    /// The spend chart by day and model, over 7 and over 30 days (HTML); none before the first
    /// call.
    pub chart: Option<String>,
    /// HTML: the first-call guide before the first call, else the spend by model and by key;
    /// then the latest failed calls.
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_travel_as_their_stored_text() {
        for s in UsageSource::ALL {
            let text = serde_json::to_string(&s).expect("json");
            assert_eq!(text, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<UsageSource>(&text).expect("back"), s);
        }
        for c in [
            ErrorClass::Failed(crate::ErrorKind::Unavailable),
            ErrorClass::UpstreamCut,
            ErrorClass::ClientCancelled,
            ErrorClass::ServerShutdown,
        ] {
            let text = serde_json::to_string(&c).expect("json");
            assert_eq!(serde_json::from_str::<ErrorClass>(&text).expect("back"), c);
        }
        assert_eq!(
            serde_json::to_string(&ErrorClass::Failed(crate::ErrorKind::InsufficientQuota))
                .expect("json"),
            "\"insufficient_quota\""
        );
        assert!(serde_json::from_str::<UsageSource>("\"bogus\"").is_err());
    }
}
