//! One typed configuration: `config/config.yaml` (or `--config PATH`), `${ENV}` interpolation in
//! the file's strings, then `TOLLGATE__SECTION__KEY` environment overrides. Unknown keys and bad
//! values stop startup with an error that names the key.

use crate::secret::SecretString;
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use types::Credits;

const ENV_PREFIX: &str = "TOLLGATE__";

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

/// A channel as the config (and the admin API) declare it.
pub use crate::routing::ChannelInput as ChannelConfig;

/// A price in USD decimal strings: per 1M input, output and cached input tokens, and per request.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input_per_1m: String,
    pub output_per_1m: String,
    #[serde(default)]
    pub cached_input_per_1m: Option<String>,
    /// A flat price per request, in USD.
    #[serde(default)]
    pub per_request: Option<String>,
}

/// A price in integer units, parsed exactly from the config's decimal strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedPrice {
    pub input_per_1m: i64,
    pub output_per_1m: i64,
    pub cached_input_per_1m: i64,
    pub per_request: i64,
}

impl PriceConfig {
    pub fn parse(&self, model: &str) -> Result<ParsedPrice, ConfigError> {
        let field = |name: &str, text: &str| {
            Credits::parse_usd(text)
                .map_err(|e| err(format!("pricing.{model}.{name}"), e.to_string()))
                .and_then(|c| {
                    if c.units() < 0 {
                        Err(err(
                            format!("pricing.{model}.{name}"),
                            "must not be negative",
                        ))
                    } else {
                        Ok(c.units())
                    }
                })
        };
        let input = field("input_per_1m", &self.input_per_1m)?;
        Ok(ParsedPrice {
            input_per_1m: input,
            output_per_1m: field("output_per_1m", &self.output_per_1m)?,
            cached_input_per_1m: match &self.cached_input_per_1m {
                Some(t) => field("cached_input_per_1m", t)?,
                None => input,
            },
            per_request: match &self.per_request {
                Some(t) => field("per_request", t)?,
                None => 0,
            },
        })
    }
}

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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_rpm: None,
            default_tpm: None,
            groups: BTreeMap::new(),
            billing_query_per_minute: 60,
            log_query_per_minute: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Upstream attempts per request (first try plus fallbacks).
    pub max_attempts: u32,
    /// Upper bound of all attempts together, before the first byte reaches the client.
    pub max_total_seconds: u64,
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
            cooldown_seconds: 30,
            failure_threshold: 3,
            usage_queue: 10_000,
            allow_metadata_upstreams: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Output tokens reserved for a request that does not set `max_tokens`.
    pub default_max_tokens: u32,
    /// How often used units are reported to the database.
    pub report_interval_ms: u64,
    /// A grant unused this long is reported and closed.
    pub idle_close_ms: u64,
    /// The credit lease: an instance that could not renew its lease for this long stops
    /// spending from its grants; other instances take them over after this plus a quarter
    /// (at least a second more).
    pub sweep_after_seconds: u64,
    /// User group -> price multiplier as a decimal string ("1.5").
    pub group_multipliers: BTreeMap<String, String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            default_max_tokens: 4096,
            report_interval_ms: 1000,
            idle_close_ms: 2000,
            sweep_after_seconds: 15,
            group_multipliers: BTreeMap::new(),
        }
    }
}

/// A multiplier in thousandths, parsed exactly: "1.5" -> 1500.
pub fn parse_multiplier(key: &str, text: &str) -> Result<i64, ConfigError> {
    let c = Credits::parse_usd(text).map_err(|e| err(key, e.to_string()))?;
    if c.units() < 0 || c.units() % 1000 != 0 {
        return Err(err(
            key,
            "must be a non-negative decimal with at most 3 decimal places",
        ));
    }
    Ok(c.units() / 1000)
}

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `info,sqlx=warn`, …
    pub level: String,
    pub format: LogFormat,
    /// Directory of the daily-rotated log files; empty: stdout only.
    pub dir: String,
    /// Rotated files older than this are removed.
    pub retention_days: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Pretty,
            dir: "logs".into(),
            retention_days: 14,
        }
    }
}

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
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            allow_registration: false,
            max_failures_per_account: 5,
            max_failures_per_ip: 30,
            failure_window_seconds: 900,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    S3,
}

/// Object storage for log archives (used by the operations jobs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    pub local_dir: PathBuf,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Local,
            local_dir: PathBuf::from("data/objects"),
            s3: S3Config::default(),
        }
    }
}

/// An S3-compatible store: AWS S3, MinIO, Aliyun OSS (its S3 endpoint), Cloudflare R2, …
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint for S3-compatible stores (`http://127.0.0.1:9000`, …); empty: AWS.
    pub endpoint: String,
    /// Keys are written under this prefix (e.g. `tollgate/`).
    pub prefix: String,
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO needs it).
    pub path_style: bool,
    /// Per request, including retries by the SDK.
    pub timeout_seconds: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            prefix: String::new(),
            access_key_id: SecretString::default(),
            secret_access_key: SecretString::default(),
            path_style: false,
            timeout_seconds: 60,
        }
    }
}

/// One scheduled job: a cron expression in UTC, with an optional leading seconds field
/// (`sec min hour day month weekday`, or the five classic fields), and a switch. Either may be
/// left out: a job is on by default, at its default schedule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(skip)]
    default_schedule: &'static str,
}

fn yes() -> bool {
    true
}

impl JobConfig {
    fn new(schedule: &'static str) -> Self {
        Self {
            enabled: true,
            schedule: None,
            default_schedule: schedule,
        }
    }

    /// The configured schedule, or the job's default.
    pub fn schedule(&self) -> &str {
        self.schedule.as_deref().unwrap_or(self.default_schedule)
    }

    pub fn set_schedule(&mut self, schedule: impl Into<String>) {
        self.schedule = Some(schedule.into());
    }
}

/// The scheduled jobs. With several instances on one database, each scheduled time runs once.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Archive usage rows past `retention.usage_days` to object storage, then delete them.
    pub retention: JobConfig,
    /// Expired sessions, idempotency records, old health minutes, finished job runs, log files.
    pub cleanup: JobConfig,
    /// A tiny live request through every enabled channel; opens or closes its circuit.
    pub channel_probe: JobConfig,
    /// SQLite only: an online copy of the database to object storage.
    pub backup: JobConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention: JobConfig::new("0 30 3 * * *"),
            cleanup: JobConfig::new("0 */15 * * * *"),
            channel_probe: JobConfig::new("0 */5 * * * *"),
            backup: JobConfig::new("0 0 4 * * *"),
        }
    }
}

impl<'de> Deserialize<'de> for JobsConfig {
    /// Each job's section is optional, and so is each field of it (see [`JobConfig`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            retention: Option<JobConfig>,
            cleanup: Option<JobConfig>,
            channel_probe: Option<JobConfig>,
            backup: Option<JobConfig>,
        }
        let raw = Raw::deserialize(d)?;
        let mut jobs = JobsConfig::default();
        for (slot, given) in [
            (&mut jobs.retention, raw.retention),
            (&mut jobs.cleanup, raw.cleanup),
            (&mut jobs.channel_probe, raw.channel_probe),
            (&mut jobs.backup, raw.backup),
        ] {
            if let Some(g) = given {
                slot.enabled = g.enabled;
                slot.schedule = g.schedule;
            }
        }
        Ok(jobs)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Usage rows (call logs) older than this many days are archived and deleted; the hourly
    /// aggregates (dashboards, billing reads) are kept forever.
    pub usage_days: u32,
    /// Rows deleted per statement, so that no delete holds the table for long.
    pub batch_rows: u32,
    /// Finished job runs older than this are removed by the cleanup job.
    pub job_runs_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            usage_days: 90,
            batch_rows: 1000,
            job_runs_days: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Backups kept in object storage; older ones are deleted after a successful backup.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { keep: 7 }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/api/admin/*` (scripts); empty disables token access.
    pub api_token: SecretString,
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
        interpolate(&mut root, "", &lookup)?;
        let mut from_env = Vec::new();
        for (name, value) in overrides {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                return Err(err(name.clone(), "malformed override name"));
            }
            set_path(&mut root, &path, scalar(&value))
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

    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                "server.public_url",
                "must start with http:// or https://",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(err("server.max_body_bytes", "must be at least 1024"));
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(err(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(err("database.max_connections", "must be at least 1"));
        }
        let redis = self.redis.url.expose();
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return Err(err(
                "redis.url",
                "must be empty or start with redis:// or rediss://",
            ));
        }
        if self.redis.timeout_ms == 0 {
            return Err(err("redis.timeout_ms", "must be at least 1"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(err(
                "log.level",
                format!("not a log filter: {:?}", self.log.level),
            ));
        }
        if self.log.retention_days == 0 {
            return Err(err("log.retention_days", "must be at least 1"));
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err(
                "session.cookie_name",
                "must be a non-empty token of letters, digits, _ or -",
            ));
        }
        if self.session.idle_timeout_minutes == 0 {
            return Err(err("session.idle_timeout_minutes", "must be at least 1"));
        }
        if self.session.absolute_timeout_hours == 0 {
            return Err(err("session.absolute_timeout_hours", "must be at least 1"));
        }
        if self.auth.max_failures_per_account == 0 || self.auth.max_failures_per_ip == 0 {
            return Err(err(
                "auth.max_failures_per_account",
                "failure limits must be at least 1",
            ));
        }
        if self.auth.failure_window_seconds == 0 {
            return Err(err("auth.failure_window_seconds", "must be at least 1"));
        }
        let limits = std::iter::once(("limits.default_rpm".to_string(), self.limits.default_rpm))
            .chain(std::iter::once((
                "limits.default_tpm".to_string(),
                self.limits.default_tpm,
            )))
            .chain(self.limits.groups.iter().flat_map(|(g, l)| {
                [
                    (format!("limits.groups.{g}.rpm"), l.rpm),
                    (format!("limits.groups.{g}.tpm"), l.tpm),
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
        if self.redeem.max_failures_per_user == 0 {
            return Err(err("redeem.max_failures_per_user", "must be at least 1"));
        }
        if self.redeem.max_failures_per_ip == 0 {
            return Err(err("redeem.max_failures_per_ip", "must be at least 1"));
        }
        if self.redeem.failure_window_seconds == 0 {
            return Err(err("redeem.failure_window_seconds", "must be at least 1"));
        }
        if self.redeem.idempotency_hours == 0 {
            return Err(err("redeem.idempotency_hours", "must be at least 1"));
        }
        if self.storage.kind == StorageKind::S3 {
            let s3 = &self.storage.s3;
            if s3.bucket.is_empty() {
                return Err(err("storage.s3.bucket", "required when storage.kind is s3"));
            }
            if s3.region.is_empty() {
                return Err(err("storage.s3.region", "required when storage.kind is s3"));
            }
            if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
                return Err(err(
                    "storage.s3.access_key_id",
                    "access_key_id and secret_access_key are required when storage.kind is s3",
                ));
            }
            if !(s3.endpoint.is_empty()
                || s3.endpoint.starts_with("http://")
                || s3.endpoint.starts_with("https://"))
            {
                return Err(err(
                    "storage.s3.endpoint",
                    "must be empty (AWS) or start with http:// or https://",
                ));
            }
            if s3.timeout_seconds == 0 {
                return Err(err("storage.s3.timeout_seconds", "must be at least 1"));
            }
        }
        for (name, job) in [
            ("retention", &self.jobs.retention),
            ("cleanup", &self.jobs.cleanup),
            ("channel_probe", &self.jobs.channel_probe),
            ("backup", &self.jobs.backup),
        ] {
            if let Err(e) = crate::jobs::Schedule::parse(job.schedule()) {
                return Err(err(format!("jobs.{name}.schedule"), e));
            }
        }
        if self.retention.usage_days == 0 {
            return Err(err("retention.usage_days", "must be at least 1"));
        }
        if self.retention.batch_rows == 0 || self.retention.batch_rows > 10_000 {
            return Err(err("retention.batch_rows", "must be between 1 and 10000"));
        }
        if self.retention.job_runs_days == 0 {
            return Err(err("retention.job_runs_days", "must be at least 1"));
        }
        if self.backup.keep == 0 {
            return Err(err("backup.keep", "must be at least 1"));
        }
        if self.gateway.max_attempts == 0 {
            return Err(err("gateway.max_attempts", "must be at least 1"));
        }
        if self.gateway.usage_queue == 0 {
            return Err(err("gateway.usage_queue", "must be at least 1"));
        }
        if self.billing.report_interval_ms == 0 {
            return Err(err("billing.report_interval_ms", "must be at least 1"));
        }
        if self.billing.sweep_after_seconds == 0 {
            return Err(err("billing.sweep_after_seconds", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            ch.validate(self.gateway.allow_metadata_upstreams)
                .map_err(|e| match e {
                    crate::Error::Invalid { field, reason } => {
                        err(format!("channels[{i}].{field}"), reason)
                    }
                    other => err(format!("channels[{i}]"), other.to_string()),
                })?;
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
        for (group, text) in &self.billing.group_multipliers {
            parse_multiplier(&format!("billing.group_multipliers.{group}"), text)?;
        }
        Ok(())
    }

    /// True when cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

/// An override's text as YAML: numbers and booleans become typed, lists stay lists, and anything
/// else (including text that happens to look like a mapping) stays a string.
fn scalar(text: &str) -> Value {
    if text.is_empty() {
        return Value::String(String::new());
    }
    match serde_norway::from_str::<Value>(text) {
        Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::Sequence(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

fn set_path(root: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = root;
    for (i, key) in path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!("{} is not a section", path[..i].join(".")));
        };
        let k = Value::String(key.clone());
        if i + 1 == path.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

/// Replaces `${NAME}` in every string of the file with the environment variable NAME.
fn interpolate(
    node: &mut Value,
    at: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match node {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after.find('}').ok_or_else(|| err(at, "unclosed ${"))?;
                let name = &after[..end];
                let value = lookup(name)
                    .ok_or_else(|| err(at, format!("environment variable {name} is not set")))?;
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let path = if at.is_empty() {
                    key.to_string()
                } else {
                    format!("{at}.{key}")
                };
                interpolate(v, &path, lookup)?;
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                interpolate(v, &format!("{at}[{i}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_of_zero_seconds_is_refused() {
        let e = load("billing:\n  sweep_after_seconds: 0\n", &[]).expect_err("zero lease");
        assert_eq!(e.key, "billing.sweep_after_seconds");
        let e = load("gateway:\n  allow_metadata_upstreams: maybe\n", &[]).expect_err("a bool");
        assert_eq!(e.key, "gateway.allow_metadata_upstreams");
    }

    #[test]
    fn prices_are_parsed_once_and_kept() {
        let c = load(
            "pricing:\n  m: { input_per_1m: \"0.15\", output_per_1m: \"0.6\" }\n",
            &[],
        )
        .expect("valid");
        let first: *const _ = c.prices().expect("prices");
        let again: *const _ = c.prices().expect("prices");
        assert_eq!(first, again, "the parse made at validation is reused");
        assert_eq!(c.prices().expect("prices")["m"].input_per_1m, 150_000);
    }

    /// The config files the repository ships load as they are (with their `${…}` set).
    #[test]
    fn the_shipped_config_files_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for file in ["config.yaml", "config.prd.yaml"] {
            let text = std::fs::read_to_string(dir.join(file)).expect("shipped config");
            let c = Config::from_sources(Some(&text), Vec::new(), |name| {
                Some(match name {
                    "TOLLGATE_DATABASE_URL" => "postgres://u@db/tollgate".to_string(),
                    "TOLLGATE_REDIS_URL" => "redis://redis:6379".to_string(),
                    _ => format!("value-of-{name}"),
                })
            })
            .unwrap_or_else(|e| panic!("{file}: {}: {}", e.key, e.message));
            assert!(!c.gateway.allow_metadata_upstreams, "{file}");
            assert_eq!(c.billing.sweep_after_seconds, 15, "{file}");
        }
    }

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Config::from_sources(Some(yaml), vars.clone(), lookup)
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_sources(None, Vec::new(), |_| None).expect("defaults are valid");
        assert_eq!(c.server.port, 9701);
        assert_eq!(c.database.url.expose(), "sqlite://data/tollgate.db");
        assert!(c.redis.url.is_empty());
        assert!(!c.auth.allow_registration);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "server:\n  port: 9000\n",
            &[
                ("TOLLGATE__SERVER__PORT", "9801"),
                ("TOLLGATE__LOG__FORMAT", "json"),
            ],
        )
        .expect("valid");
        assert_eq!(c.server.port, 9801);
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn limits_are_read_from_the_file_and_the_environment_and_checked() {
        let c = load(
            "limits:\n  default_tpm: 50000\n  groups:\n    vip: { rpm: 600 }\n",
            &[("TOLLGATE__LIMITS__DEFAULT_RPM", "60")],
        )
        .expect("valid");
        assert_eq!(c.limits.default_rpm, Some(60));
        assert_eq!(c.limits.default_tpm, Some(50_000));
        assert_eq!(c.limits.groups["vip"].rpm, Some(600));
        assert_eq!(c.limits.groups["vip"].tpm, None);
        let e = load("limits:\n  groups:\n    vip: { tpm: 0 }\n", &[]).expect_err("zero");
        assert_eq!(e.key, "limits.groups.vip.tpm");
        let e = load("limits:\n  default_rpm: 0\n", &[]).expect_err("zero");
        assert_eq!(e.key, "limits.default_rpm");
        let e = load("limits:\n  groups:\n    vip: { burst: 5 }\n", &[]).expect_err("unknown");
        assert!(
            e.key.contains("burst") || e.message.contains("burst"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load("server:\n  prot: 1\n", &[]).expect_err("unknown key");
        assert!(e.to_string().contains("prot"), "{e}");
        let e = load("", &[("TOLLGATE__SERVER__BOGUS", "1")]).expect_err("unknown env key");
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = load("server:\n  port: high\n", &[]).expect_err("bad value");
        assert_eq!(e.key, "server.port");
        let e = load("", &[("TOLLGATE__SERVER__PORT", "99999")]).expect_err("out of range");
        assert_eq!(e.key, "server.port");
        let e = load("database:\n  url: mysql://x\n", &[]).expect_err("scheme");
        assert_eq!(e.key, "database.url");
    }

    #[test]
    fn jobs_storage_and_retention_are_read_and_checked() {
        let c = load(
            "jobs:\n  cleanup: { enabled: false }\n  retention: { schedule: \"0 0 1 * * *\" }\n",
            &[("TOLLGATE__JOBS__BACKUP__ENABLED", "false")],
        )
        .expect("valid");
        assert!(!c.jobs.cleanup.enabled);
        assert_eq!(
            c.jobs.cleanup.schedule(),
            "0 */15 * * * *",
            "the default stays"
        );
        assert!(c.jobs.retention.enabled);
        assert_eq!(c.jobs.retention.schedule(), "0 0 1 * * *");
        assert!(!c.jobs.backup.enabled);
        assert_eq!(c.jobs.channel_probe.schedule(), "0 */5 * * * *");
        let e = load("jobs:\n  cleanup: { schedule: \"every hour\" }\n", &[]).expect_err("cron");
        assert_eq!(e.key, "jobs.cleanup.schedule");
        let e =
            load("jobs:\n  nightly: { schedule: \"* * * * *\" }\n", &[]).expect_err("unknown job");
        assert!(e.key.starts_with("jobs"), "{}", e.key);
        let e = load("storage:\n  kind: s3\n  s3: { bucket: b }\n", &[]).expect_err("credentials");
        assert_eq!(e.key, "storage.s3.access_key_id");
        let e = load(
            "storage:\n  kind: s3\n  s3: { bucket: b, access_key_id: a, secret_access_key: s, endpoint: \"ftp://x\" }\n",
            &[],
        )
        .expect_err("endpoint");
        assert_eq!(e.key, "storage.s3.endpoint");
        for (text, key) in [
            ("retention:\n  usage_days: 0\n", "retention.usage_days"),
            ("retention:\n  batch_rows: 20000\n", "retention.batch_rows"),
            (
                "retention:\n  job_runs_days: 0\n",
                "retention.job_runs_days",
            ),
            ("backup:\n  keep: 0\n", "backup.keep"),
            (
                "redeem:\n  idempotency_hours: 0\n",
                "redeem.idempotency_hours",
            ),
        ] {
            assert_eq!(load(text, &[]).expect_err(text).key, key);
        }
    }

    #[test]
    fn interpolates_environment_into_strings() {
        let c = load("admin:\n  api_token: \"${TOKEN}\"\n", &[("TOKEN", "t-123")]).expect("valid");
        assert!(c.admin.api_token.matches("t-123"));
        let e = load("admin:\n  api_token: \"${MISSING}\"\n", &[]).expect_err("missing var");
        assert_eq!(e.key, "admin.api_token");
    }

    #[test]
    fn gateway_sections_follow_the_contract() {
        let yaml = r#"
channels:
  - { name: openai-main, base_url: "https://api.example.com/v1", api_key: "${OPENAI_KEY}",
      models: [gpt-4o-mini, text-embedding-3-small], priority: 0, weight: 1 }
model_mapping:
  deepseek-chat: [deepseek-chat, hs-deepseek-v3-250324]
pricing:
  gpt-4o-mini: { input_per_1m: "0.15", output_per_1m: "0.60", cached_input_per_1m: "0.075" }
admin:
  api_token: "${TOLLGATE_ADMIN_TOKEN}"
"#;
        let c = load(
            yaml,
            &[("OPENAI_KEY", "sk-up"), ("TOLLGATE_ADMIN_TOKEN", "adm")],
        )
        .expect("valid");
        assert_eq!(
            c.channels[0].api_key.as_ref().map(SecretString::expose),
            Some("sk-up")
        );
        assert_eq!(
            c.channels[0].models,
            ["gpt-4o-mini", "text-embedding-3-small"]
        );
        assert_eq!(
            c.model_mapping["deepseek-chat"],
            ["deepseek-chat", "hs-deepseek-v3-250324"]
        );
        let p = c.pricing["gpt-4o-mini"]
            .parse("gpt-4o-mini")
            .expect("price");
        assert_eq!(
            (p.input_per_1m, p.output_per_1m, p.cached_input_per_1m),
            (150_000, 600_000, 75_000)
        );
    }

    #[test]
    fn bad_prices_and_channels_are_named() {
        let e = load(
            "pricing:\n  m: { input_per_1m: \"0.1234567\", output_per_1m: \"1\" }\n",
            &[],
        )
        .expect_err("precision");
        assert_eq!(e.key, "pricing.m.input_per_1m");
        let e =
            load("channels:\n  - { name: a, base_url: \"ftp://x\" }\n", &[]).expect_err("scheme");
        assert_eq!(e.key, "channels[0].base_url");
        assert_eq!(parse_multiplier("k", "1.5"), Ok(1500));
        assert!(parse_multiplier("k", "1.0005").is_err());
    }

    #[test]
    fn override_text_that_looks_like_yaml_stays_a_string() {
        let c = load("", &[("TOLLGATE__SERVER__HOST", "a: b")]).expect("valid");
        assert_eq!(c.server.host, "a: b");
    }
}
