//! `database:` `url` (`sqlite://PATH` or `postgres://…`), `max_connections` (at least 1),
//! `acquire_timeout_seconds`. `redis:` `url` (empty: in-process limiter and caches, one instance;
//! `redis://` or `rediss://`: shared by every instance), `prefix` (of every key written),
//! `timeout_ms` (the bound of any one Redis call, at least 1).

use super::{ConfigError, at_least_one, err};
use crate::secret::SecretString;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::new("sqlite://data/tollgate.db"),
            max_connections: 16,
            acquire_timeout_seconds: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Empty: in-process limiter and caches (one instance). `redis://…`: shared by all instances.
    pub url: SecretString,
    /// Prefix of every key this instance writes.
    pub prefix: String,
    /// Upper bound of any one Redis call.
    pub timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretString::default(),
            prefix: "tollgate:".into(),
            timeout_ms: 250,
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let db = self.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("mysql://")
            || db.starts_with("mariadb://"))
        {
            return Err(err(
                "database.url",
                "must start with sqlite:, postgres:// or mysql://",
            ));
        }
        at_least_one("database.max_connections", self.max_connections)
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let redis = self.url.expose();
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return Err(err(
                "redis.url",
                "must be empty or start with redis:// or rediss://",
            ));
        }
        at_least_one("redis.timeout_ms", self.timeout_ms)
    }
}
