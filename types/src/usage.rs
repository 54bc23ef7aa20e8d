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
}

impl ErrorClass {
    /// As stored (`usage_logs.error_class`): the error kind's code, or the way a stream ended.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Failed(kind) => kind.code(),
            ErrorClass::UpstreamCut => "upstream_cut",
            ErrorClass::ClientCancelled => "client_cancelled",
            ErrorClass::ServerShutdown => "server_shutdown",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorClass> {
        match text {
            "upstream_cut" => Some(ErrorClass::UpstreamCut),
            "client_cancelled" => Some(ErrorClass::ClientCancelled),
            "server_shutdown" => Some(ErrorClass::ServerShutdown),
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

/// One call, as its owner and the administrators read it in the call logs.
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
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    #[serde(with = "crate::money::usd")]
    pub cost: Credits,
    pub price_version: Option<i64>,
    pub usage_source: UsageSource,
    pub status: u16,
    pub error_class: Option<ErrorClass>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One change of a balance, as the billing page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub id: i64,
    pub user_id: i64,
    pub key_id: Option<i64>,
    /// `credit`, `grant`, `charge`, `release`, `adjustment` or `refund`.
    pub kind: String,
    /// The change of the balance.
    #[serde(with = "crate::money::usd")]
    pub amount: Credits,
    #[serde(with = "crate::money::usd")]
    pub balance_after: Credits,
    pub reference: Option<String>,
    pub reason: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
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
