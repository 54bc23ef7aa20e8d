//! `alerts:` how alerts are delivered (what each user or the system watches is set in the
//! console or the API, not here): `webhook_timeout_seconds` (per attempt), `max_attempts` (a
//! delivery is given up after this many), `retry_base_seconds` (the wait after the first failed
//! attempt; it doubles after each, at most an hour), `allow_private_webhooks` (let users send to
//! loopback and private addresses; cloud metadata addresses are always refused), and `smtp:`
//! `host`, `port`, `tls` (`starttls`, the default; `tls`, implicit TLS; `none`, only for a relay
//! on a trusted network), `username`, `password`, `from`. Without `smtp.host`, alerts go by
//! webhook only and no e-mail address is taken. The job `jobs.alerts` checks the thresholds and
//! sends what is due.

use super::{ConfigError, at_least_one, err};
use crate::secret::SecretString;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// One webhook attempt's limit, connection included.
    pub webhook_timeout_seconds: u64,
    /// Attempts per delivery (webhook or e-mail) before it is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each further one (at most 1 h).
    pub retry_base_seconds: u64,
    /// Webhooks to loopback and private (RFC 1918, unique local) addresses: refused unless
    /// set, so that a user cannot make the gateway call its own network.
    pub allow_private_webhooks: bool,
    pub smtp: SmtpConfig,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_timeout_seconds: 10,
            max_attempts: 8,
            retry_base_seconds: 30,
            allow_private_webhooks: false,
            smtp: SmtpConfig::default(),
        }
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on a trusted network.
    None,
}

/// The mail server alerts are sent through.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Empty: no e-mail.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub username: String,
    pub password: SecretString,
    /// The sender, `Tollgate <alerts@example.com>` or a bare address.
    pub from: String,
    /// One message's limit, connection included.
    pub timeout_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: SecretString::default(),
            from: String::new(),
            timeout_seconds: 30,
        }
    }
}

impl SmtpConfig {
    /// E-mail is configured.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }
}

impl AlertsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one(
            "alerts.webhook_timeout_seconds",
            self.webhook_timeout_seconds,
        )?;
        at_least_one("alerts.max_attempts", self.max_attempts)?;
        if self.max_attempts > 50 {
            return Err(err("alerts.max_attempts", "must be at most 50"));
        }
        at_least_one("alerts.retry_base_seconds", self.retry_base_seconds)?;
        let smtp = &self.smtp;
        if !smtp.enabled() {
            return Ok(());
        }
        at_least_one("alerts.smtp.port", smtp.port)?;
        at_least_one("alerts.smtp.timeout_seconds", smtp.timeout_seconds)?;
        if smtp.from.trim().is_empty() {
            return Err(err(
                "alerts.smtp.from",
                "required when alerts.smtp.host is set",
            ));
        }
        if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "alerts.smtp.from",
                "must be an address (alerts@example.com) or a name and one (Tollgate <alerts@example.com>)",
            ));
        }
        if smtp.username.is_empty() != smtp.password.is_empty() {
            return Err(err(
                "alerts.smtp.username",
                "username and password go together: set both or neither",
            ));
        }
        Ok(())
    }
}
