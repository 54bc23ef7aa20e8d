//! `limits:` per-key requests and tokens per minute and calls in flight: `default_rpm`,
//! `default_tpm`, `default_max_concurrent`, and per user group `groups.<name>.rpm` / `.tpm` /
//! `.max_concurrent` (left out: no limit; 0 is refused), `concurrency_lease_seconds` (how long a
//! slot outlives an instance that died holding it), and the read quotas
//! `billing_query_per_minute`, `log_query_per_minute` (0: unlimited).

use super::{ConfigError, err};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Request and token limits per API key, and per-route read quotas. Shared by every instance
/// when Redis is configured (see `ratelimit::quota` for how, and for the bound while Redis is
/// unreachable).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute of a key that sets none and whose user's group sets none (empty:
    /// unlimited).
    pub default_rpm: Option<u64>,
    /// Tokens per minute, likewise.
    pub default_tpm: Option<u64>,
    /// Calls in flight at once, likewise.
    pub default_max_concurrent: Option<u64>,
    /// A call's slot in Redis is renewed while it lasts and expires this long after its
    /// instance stopped renewing it (died, or lost Redis).
    pub concurrency_lease_seconds: u64,
    /// Per user group: the limits of its users' keys that set none of their own.
    pub groups: BTreeMap<String, GroupLimits>,
    /// `/v1/dashboard/billing/*` and `/v1/credits`, per key per minute (0: unlimited).
    pub billing_query_per_minute: u32,
    /// `/api/logs`, per key per minute (0: unlimited).
    pub log_query_per_minute: u32,
}

/// A group's limits (either may be left out: the default applies).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GroupLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_rpm: None,
            default_tpm: None,
            default_max_concurrent: None,
            concurrency_lease_seconds: 30,
            groups: BTreeMap::new(),
            billing_query_per_minute: 60,
            log_query_per_minute: 60,
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let limits = [
            ("limits.default_rpm".to_string(), self.default_rpm),
            ("limits.default_tpm".to_string(), self.default_tpm),
            (
                "limits.default_max_concurrent".to_string(),
                self.default_max_concurrent,
            ),
            (
                "limits.concurrency_lease_seconds".to_string(),
                Some(self.concurrency_lease_seconds),
            ),
        ]
        .into_iter()
        .chain(self.groups.iter().flat_map(|(g, l)| {
            [
                (format!("limits.groups.{g}.rpm"), l.rpm),
                (format!("limits.groups.{g}.tpm"), l.tpm),
                (
                    format!("limits.groups.{g}.max_concurrent"),
                    l.max_concurrent,
                ),
            ]
        }));
        for (field, value) in limits {
            if value == Some(0) {
                return Err(err(
                    &field,
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
        }
        Ok(())
    }
}
