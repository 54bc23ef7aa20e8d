//! `gateway:` how calls are routed. `max_attempts` (first try plus fallbacks, at least 1),
//! `max_total_seconds`, `retry_after_send`, `cooldown_seconds`, `failure_threshold`,
//! `usage_queue` (at least 1), `allow_metadata_upstreams`.

use super::{ConfigError, at_least_one};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Upstream attempts per request (first try plus fallbacks).
    pub max_attempts: u32,
    /// No attempt starts this long after the call came in, and a stream's wait for its first
    /// byte ends by then (a non-stream call waits for its channel's `answer_timeout_ms`).
    pub max_total_seconds: u64,
    /// Whether a call whose request reached an upstream, which then timed out or broke before
    /// answering, is tried on the next channel. Off: the upstream may be generating (and
    /// billing) already, so the call is answered with the failure instead of paid for twice; a
    /// connection that could not be made is always tried elsewhere.
    pub retry_after_send: bool,
    /// How long a failing channel is skipped before it is probed again.
    pub cooldown_seconds: u64,
    /// Consecutive failures that open a channel's circuit.
    pub failure_threshold: u32,
    /// Usage log rows waiting to be written (bounded queue).
    pub usage_queue: usize,
    /// Allow channels whose base_url is a cloud metadata address (169.254.0.0/16,
    /// fd00:ec2::254, metadata.google.internal): off, since such an upstream would hand the
    /// instance's cloud credentials to whoever can set a channel.
    pub allow_metadata_upstreams: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_total_seconds: 120,
            retry_after_send: false,
            cooldown_seconds: 30,
            failure_threshold: 3,
            usage_queue: 10_000,
            allow_metadata_upstreams: false,
        }
    }
}

impl GatewayConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("gateway.max_attempts", self.max_attempts)?;
        at_least_one(
            "gateway.usage_queue",
            u64::try_from(self.usage_queue).unwrap_or(u64::MAX),
        )
    }
}
