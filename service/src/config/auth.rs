//! Who may sign in, and how often they may fail. `session:` `cookie_name` (a token of letters,
//! digits, `_` or `-`), `idle_timeout_minutes`, `absolute_timeout_hours`. `auth:`
//! `allow_registration`, `max_failures_per_account`, `max_failures_per_ip`,
//! `failure_window_seconds`, `max_invalid_keys_per_ip` and `invalid_key_window_seconds` (`/v1`
//! calls with a key that does not exist, per client IP, then 429). `redeem:` `max_failures_per_user`, `max_failures_per_ip`,
//! `failure_window_seconds`, `idempotency_hours`. Every count and duration is at least 1.

use super::{ConfigError, at_least_one, err};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// A session unused this long ends.
    pub idle_timeout_minutes: u64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout_hours: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "tollgate_session".into(),
            idle_timeout_minutes: 720,
            absolute_timeout_hours: 168,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Let anyone create an account on the login page.
    pub allow_registration: bool,
    /// Failed sign-ins allowed per account within the window, then 429.
    pub max_failures_per_account: u32,
    /// Failed sign-ins allowed per client IP within the window, then 429.
    pub max_failures_per_ip: u32,
    pub failure_window_seconds: u64,
    /// `/v1` calls with a key that does not exist allowed per client IP within
    /// `invalid_key_window_seconds`; past it, 429 before the database is asked.
    pub max_invalid_keys_per_ip: u32,
    pub invalid_key_window_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            allow_registration: false,
            max_failures_per_account: 5,
            max_failures_per_ip: 30,
            failure_window_seconds: 900,
            max_invalid_keys_per_ip: 60,
            invalid_key_window_seconds: 60,
        }
    }
}

/// Redeem codes: failed attempts allowed before 429, per user and per client IP, shared by
/// every instance when Redis is configured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedeemConfig {
    pub max_failures_per_user: u32,
    pub max_failures_per_ip: u32,
    pub failure_window_seconds: u64,
    /// How long a redeem's `Idempotency-Key` answers a replay; older records are removed by the
    /// cleanup job (a replay after that is judged afresh: the code is then already used).
    pub idempotency_hours: u32,
}

impl Default for RedeemConfig {
    fn default() -> Self {
        Self {
            max_failures_per_user: 10,
            max_failures_per_ip: 30,
            failure_window_seconds: 600,
            idempotency_hours: 24,
        }
    }
}

impl SessionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.cookie_name.is_empty()
            || !self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err(
                "session.cookie_name",
                "must be a non-empty token of letters, digits, _ or -",
            ));
        }
        at_least_one("session.idle_timeout_minutes", self.idle_timeout_minutes)?;
        at_least_one(
            "session.absolute_timeout_hours",
            self.absolute_timeout_hours,
        )
    }
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_failures_per_account == 0 || self.max_failures_per_ip == 0 {
            return Err(err(
                "auth.max_failures_per_account",
                "failure limits must be at least 1",
            ));
        }
        at_least_one("auth.failure_window_seconds", self.failure_window_seconds)?;
        at_least_one(
            "auth.max_invalid_keys_per_ip",
            u64::from(self.max_invalid_keys_per_ip),
        )?;
        at_least_one(
            "auth.invalid_key_window_seconds",
            self.invalid_key_window_seconds,
        )
    }
}

impl RedeemConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("redeem.max_failures_per_user", self.max_failures_per_user)?;
        at_least_one("redeem.max_failures_per_ip", self.max_failures_per_ip)?;
        at_least_one("redeem.failure_window_seconds", self.failure_window_seconds)?;
        at_least_one("redeem.idempotency_hours", self.idempotency_hours)
    }
}
