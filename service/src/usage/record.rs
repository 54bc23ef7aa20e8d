//! A usage row as the proxy makes it: one per client request.

use types::{ErrorClass, UsageSource};

/// Rows per insert: small enough that encoding one batch never stalls the runtime for long.
pub(super) const BATCH: usize = 128;
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRecord {
    pub request_id: String,
    pub user_id: i64,
    pub key_id: Option<i64>,
    pub key_prefix: Option<String>,
    pub model: String,
    pub served_model: Option<String>,
    pub channel_id: Option<i64>,
    pub attempts: u32,
    pub stream: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub detail: types::TokenDetail,
    /// The route called ([`crate::routing::Endpoint::surface`]).
    pub surface: &'static str,
    /// The kind of the channel that answered (or was tried last).
    pub upstream_kind: Option<types::ChannelKind>,
    pub cost: i64,
    pub price_version: Option<i64>,
    pub usage_source: UsageSource,
    pub status: u16,
    pub error_class: Option<ErrorClass>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub client_ip: Option<String>,
    pub created_at: i64,
}

impl UsageRecord {
    /// Text a database can store: a NUL (which a client can put in a model name) becomes U+FFFD,
    /// since PostgreSQL's text has no room for it and would refuse the row.
    pub(super) fn storable(mut self) -> Self {
        for s in [
            Some(&mut self.request_id),
            self.key_prefix.as_mut(),
            Some(&mut self.model),
            self.served_model.as_mut(),
            self.client_ip.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if s.contains('\0') {
                *s = s.replace('\0', "\u{FFFD}");
            }
        }
        self
    }
}
