//! `server:` where and how the gateway listens. Keys: `host`, `port`, `public_url` (http(s);
//! `https://` turns on `Secure` cookies), `site_root`, `max_body_bytes` (at least 1024),
//! `drain_seconds`, `trust_forwarded_for`. And `admin:` `api_token` (the Bearer token of
//! `/api/admin/*` for scripts; empty: off).

use super::{ConfigError, err};
use crate::secret::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// The URL people use to reach this gateway. `https://…` turns on `Secure` cookies, and its
    /// origin is the one cross-site checks accept. Empty: the request's own Host.
    pub public_url: String,
    /// A folder holding the compiled site (cargo-leptos output). Empty: the console the release
    /// binary carries (a development build falls back to `target/site`).
    pub site_root: PathBuf,
    pub max_body_bytes: usize,
    /// How long a graceful shutdown waits for open requests and streams.
    pub drain_seconds: u64,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted load balancer).
    pub trust_forwarded_for: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 9701,
            public_url: String::new(),
            site_root: PathBuf::new(),
            max_body_bytes: 10 * 1024 * 1024,
            drain_seconds: 30,
            trust_forwarded_for: false,
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                "server.public_url",
                "must start with http:// or https://",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(err("server.max_body_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/api/admin/*` (scripts); empty disables token access.
    pub api_token: SecretString,
}
