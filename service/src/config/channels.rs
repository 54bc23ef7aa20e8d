//! `channels:` the upstreams, loaded into the database at every start (and editable at runtime
//! by administrators, who write the same [`ChannelInput`]). Keys of each: `name` (1 to 64
//! characters, unique), `kind` (`openai`, `openai-compatible`, the default, `anthropic`,
//! `azure` or `gemini`: the protocol the upstream speaks, and so which `/v1` routes it serves), `base_url`
//! (http(s) with a host, `/v1` included; for `azure` the resource's endpoint; never a cloud
//! metadata address unless `gateway.allow_metadata_upstreams`), `api_version` (`azure` only:
//! deployment URLs with this `api-version`; without it the v1 API), `max_tokens_field`
//! (`max_tokens` or `max_completion_tokens`: where a chat call's output bound goes, for servers
//! that take only one; by default `max_completion_tokens` on `openai` and `azure`, `max_tokens`
//! elsewhere), `stream_usage` (default true; false for servers that refuse
//! `stream_options.include_usage`: the gateway then counts their streams itself), `api_key`
//! (printable ASCII; write-only), `models`,
//! `priority`, `weight` (at least 1), `connect_timeout_ms`, `first_byte_timeout_ms` (a stream's
//! wait for its first byte), `answer_timeout_ms` (a non-stream call's wait for its answer to
//! begin), `idle_timeout_ms` (the longest silence between two pieces of an answer; each at least
//! 1), `enabled`, `groups` (the user groups whose keys it serves, each a group name; empty, the
//! default: every group; a group that none of a model's channels serves cannot call it).

use crate::field::{FieldError, check_group, check_text};
use crate::secret::SecretString;
use serde::Deserialize;

/// A channel as the config declares it and an administrator writes it. A missing `api_key` keeps
/// the stored one.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    pub name: String,
    #[serde(default)]
    pub kind: types::ChannelKind,
    pub base_url: String,
    /// Azure's `api-version`: requests go to the deployment URLs; without it, to the v1 API.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The field a chat call's output bound goes in (a chat kind's switch); by default the
    /// kind's.
    #[serde(default)]
    pub max_tokens_field: Option<types::BoundField>,
    /// Whether streams ask the upstream for usage (a chat kind's switch).
    #[serde(default = "yes")]
    pub stream_usage: bool,
    /// Write-only: no answer shows it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<SecretString>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default = "connect_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "first_byte_ms")]
    pub first_byte_timeout_ms: u64,
    #[serde(default = "answer_ms")]
    pub answer_timeout_ms: u64,
    #[serde(default = "idle_ms")]
    pub idle_timeout_ms: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The user groups whose keys this channel serves; empty: every group.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn one() -> u32 {
    1
}
fn connect_ms() -> u64 {
    5_000
}
fn first_byte_ms() -> u64 {
    60_000
}
fn answer_ms() -> u64 {
    600_000
}
fn idle_ms() -> u64 {
    120_000
}
fn yes() -> bool {
    true
}

impl ChannelInput {
    /// Checks every field as the routing table will read it (a wrong one is named).
    pub fn validate(&self, allow_metadata: bool) -> Result<(), FieldError> {
        check_text("name", &self.name, 64)?;
        check_base_url(&self.base_url, allow_metadata)?;
        if let Some(v) = &self.api_version {
            check_api_version(self.kind, v)?;
        }
        if !self.kind.speaks_chat() {
            if self.max_tokens_field.is_some() {
                return Err(FieldError::new(
                    "max_tokens_field",
                    "only openai, openai-compatible and azure channels take it",
                ));
            }
            if !self.stream_usage {
                return Err(FieldError::new(
                    "stream_usage",
                    "only openai, openai-compatible and azure channels take it",
                ));
            }
        }
        if let Some(key) = &self.api_key {
            check_api_key(key.expose())?;
        }
        if self.weight == 0 {
            return Err(FieldError::new("weight", "must be at least 1"));
        }
        for m in &self.models {
            check_text("models", m, 256)?;
        }
        for g in &self.groups {
            check_group("groups", g)?;
        }
        for (field, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("answer_timeout_ms", self.answer_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if v == 0 {
                return Err(FieldError::new(field, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A channel's key goes out in a header: printable ASCII (and tabs), no line break.
pub fn check_api_key(key: &str) -> Result<(), FieldError> {
    if key
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        Ok(())
    } else {
        Err(FieldError::new(
            "api_key",
            "must be printable ASCII, without line breaks",
        ))
    }
}

/// Checks a channel's address: an http(s) URL with a host (written as such: `http:///x` is not
/// read as host `x`), and not a cloud metadata address unless `allow_metadata`. Returns it
/// parsed, without a trailing `/`.
pub fn check_base_url(base_url: &str, allow_metadata: bool) -> Result<reqwest::Url, FieldError> {
    let base = base_url.trim_end_matches('/');
    let bad = || FieldError::new("base_url", "must be an http:// or https:// URL with a host");
    let authority = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .ok_or_else(bad)?;
    if authority.is_empty() || authority.starts_with(['/', '?', '#', '@', ':']) {
        return Err(bad());
    }
    let parsed = reqwest::Url::parse(base).map_err(|_| bad())?;
    if !allow_metadata && is_metadata_host(&parsed) {
        return Err(FieldError::new(
            "base_url",
            "is a cloud metadata address (set gateway.allow_metadata_upstreams to allow it)",
        ));
    }
    Ok(parsed)
}

/// The addresses where clouds serve instance credentials: an upstream there would let whoever
/// can set a channel read them through the gateway.
fn is_metadata_host(url: &reqwest::Url) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        // 169.254.0.0/16 (link-local: AWS, GCP, Azure, OpenStack) and Alibaba's address.
        Ok(IpAddr::V4(ip)) => ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200),
        Ok(IpAddr::V6(ip)) => {
            ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
        Err(_) => {
            let d = bare.trim_end_matches('.').to_ascii_lowercase();
            d == "metadata.google.internal" || d == "metadata" || d == "instance-data"
        }
    }
}

/// An Azure `api-version` (`2024-10-21`, `2025-04-01-preview`): only on `azure` channels, letters,
/// digits, dots and dashes, at most 32.
pub fn check_api_version(kind: types::ChannelKind, v: &str) -> Result<(), FieldError> {
    if kind != types::ChannelKind::Azure {
        return Err(FieldError::new(
            "api_version",
            "only azure channels take an api_version",
        ));
    }
    if v.is_empty()
        || v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(FieldError::new(
            "api_version",
            "must be an API version such as 2024-10-21 (letters, digits, dots, dashes; at most 32)",
        ));
    }
    Ok(())
}
