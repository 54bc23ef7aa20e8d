//! One typed configuration: `config/config.yaml` (or `--config PATH`), `${ENV}` interpolation in
//! the file's strings, then `TOLLGATE__SECTION__KEY` environment overrides. Unknown keys and bad
//! values stop startup with an error that names the key (and the variable it came from).
//!
//! The ground floor: it names nothing above it. One file per concern, each documenting its keys
//! at its top and checking them: `server`, `database` (and `redis`), `log`, `auth` (sessions,
//! sign-in and redeem throttles), `storage`, `jobs` (schedules, retention, backups), `gateway`,
//! `limits`, `billing` (and `pricing`), `channels`, `alerts`.

pub mod alerts;
pub mod auth;
pub mod billing;
pub mod channels;
pub mod database;
pub mod gateway;
pub mod jobs;
pub mod limits;
pub mod log;
pub mod server;
mod source;
pub mod storage;

pub use alerts::{AlertsConfig, SmtpConfig, SmtpTls};
pub use auth::{AuthConfig, RedeemConfig, SessionConfig};
pub use billing::{
    BillingConfig, Charged, Multiplier, ParsedPrice, PriceConfig, Rates, Tier, parse_multiplier,
};
pub use channels::ChannelInput as ChannelConfig;
pub use database::{DatabaseConfig, RedisConfig};
pub use gateway::GatewayConfig;
pub use jobs::{BackupConfig, JobConfig, JobsConfig, RetentionConfig, Schedule};
pub use limits::{GroupLimits, LimitsConfig};
pub use log::{LogConfig, LogFormat};
pub use server::{AdminConfig, ServerConfig};
pub use storage::{S3Config, StorageConfig, StorageKind};

use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub session: SessionConfig,
    pub auth: AuthConfig,
    pub redeem: RedeemConfig,
    pub storage: StorageConfig,
    pub jobs: JobsConfig,
    pub retention: RetentionConfig,
    pub backup: BackupConfig,
    pub admin: AdminConfig,
    pub gateway: GatewayConfig,
    pub limits: LimitsConfig,
    pub billing: BillingConfig,
    pub alerts: AlertsConfig,
    /// Upstream endpoints, loaded into the database at startup (editable at runtime).
    pub channels: Vec<ChannelConfig>,
    /// Public model name -> ordered fallback list of upstream model names.
    pub model_mapping: BTreeMap<String, Vec<String>>,
    /// Model -> prices in USD per 1M tokens, as decimal strings.
    pub pricing: BTreeMap<String, PriceConfig>,
    /// `pricing`, parsed once (when the config is validated, or on first use).
    #[serde(skip)]
    parsed_pricing: std::sync::OnceLock<BTreeMap<String, ParsedPrice>>,
}

/// A configuration that cannot be used; names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "config: {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// A count or duration that must be at least 1.
fn at_least_one(key: &str, value: impl Into<u64>) -> Result<(), ConfigError> {
    if value.into() == 0 {
        return Err(err(key, "must be at least 1"));
    }
    Ok(())
}

impl Config {
    /// Loads the file (when given or when `config/config.yaml` exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let default_path = Path::new("config/config.yaml");
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| err("", format!("cannot read {}: {e}", p.display())))?,
            ),
            None if default_path.exists() => Some(
                std::fs::read_to_string(default_path)
                    .map_err(|e| err("", format!("cannot read {}: {e}", default_path.display())))?,
            ),
            None => None,
        };
        Self::from_sources(text.as_deref(), std::env::vars(), |name| {
            std::env::var(name).ok()
        })
    }

    /// Builds a config from YAML text, override variables and a lookup for `${NAME}`.
    pub fn from_sources(
        yaml: Option<&str>,
        overrides: impl IntoIterator<Item = (String, String)>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut root = match yaml {
            Some(text) => serde_norway::from_str::<Value>(text)
                .map_err(|e| err("", format!("invalid YAML: {e}")))?,
            None => Value::Mapping(Mapping::new()),
        };
        if root.is_null() {
            root = Value::Mapping(Mapping::new());
        }
        source::interpolate(&mut root, "", &lookup)?;
        let mut from_env = Vec::new();
        for (name, value) in overrides {
            let Some(rest) = name.strip_prefix(source::ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                return Err(err(name.clone(), "malformed override name"));
            }
            source::set_path(&mut root, &path, source::scalar(&value))
                .map_err(|m| err(path.join("."), format!("{m} (from {name})")))?;
            from_env.push((path.join("."), name));
        }
        let config: Config = serde_path_to_error::deserialize(root).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let mut message = e.inner().to_string();
            if let Some((_, var)) = from_env
                .iter()
                .find(|(p, _)| key.starts_with(p.as_str()) || p.starts_with(&key))
                && !key.is_empty()
            {
                message.push_str(&format!(" (from {var})"));
            }
            err(key, message)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The prices of `pricing` in integer units, parsed once; the error names the key.
    pub fn prices(&self) -> Result<&BTreeMap<String, ParsedPrice>, ConfigError> {
        if let Some(parsed) = self.parsed_pricing.get() {
            return Ok(parsed);
        }
        let mut parsed = BTreeMap::new();
        for (model, price) in &self.pricing {
            parsed.insert(model.clone(), price.parse(model)?);
        }
        Ok(self.parsed_pricing.get_or_init(|| parsed))
    }

    /// Checks what serde cannot: each section checks its own keys (in its file), then what
    /// ties sections together (channel names, mappings, prices).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.database.validate()?;
        self.redis.validate()?;
        self.log.validate()?;
        self.session.validate()?;
        self.auth.validate()?;
        self.limits.validate()?;
        self.redeem.validate()?;
        self.storage.validate()?;
        self.retention.validate()?;
        self.backup.validate()?;
        self.gateway.validate()?;
        self.billing.validate()?;
        self.alerts.validate()?;
        let mut names = std::collections::HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            ch.validate(self.gateway.allow_metadata_upstreams)
                .map_err(|e| err(format!("channels[{i}].{}", e.field), e.reason))?;
            if !names.insert(ch.name.as_str()) {
                return Err(err(
                    format!("channels[{i}].name"),
                    format!("duplicate channel {:?}", ch.name),
                ));
            }
        }
        for (model, targets) in &self.model_mapping {
            if targets.is_empty() {
                return Err(err(
                    format!("model_mapping.{model}"),
                    "needs at least one upstream model",
                ));
            }
        }
        self.prices()?;
        Ok(())
    }

    /// True when cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests;
