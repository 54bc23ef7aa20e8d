//! `log:` `level` (a tracing filter: `info`, `info,sqlx=warn`, …), `format` (`pretty` or
//! `json`), `dir` (daily-rotated files; empty: stdout only), `retention_days` (at least 1).

use super::{ConfigError, at_least_one, err};
use serde::Deserialize;

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

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            return Err(err(
                "log.level",
                format!("not a log filter: {:?}", self.level),
            ));
        }
        at_least_one("log.retention_days", self.retention_days)
    }
}
