//! What can go wrong in the service layer, by meaning. Adapters map each variant to a status in
//! one place (server/src/http/error.rs, app/src/error.rs).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("too many requests; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("upstream: {message}")]
    Upstream {
        failure: crate::proxy::UpstreamFailure,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Checks a name or note as people type it: 1 to `max` characters, not all blank, and no
    /// control character (PostgreSQL's text cannot hold a NUL; a line break in a name misleads).
    pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), Error> {
        if text.trim().is_empty() || text.chars().count() > max {
            return Err(Error::invalid(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::invalid(field, "must not contain control characters"));
        }
        Ok(())
    }
}

/// The database's own words on an outage, logged at most once a second.
static DB_DOWN_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
static REDIS_DOWN_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            if let Some(held) = DB_DOWN_LOG.ready() {
                tracing::warn!(error = %e, similar_since_last = held, "database unavailable");
            }
            return Error::Unavailable("database".into());
        }
        Error::Internal(anyhow::Error::new(e))
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if let Some(held) = REDIS_DOWN_LOG.ready() {
            tracing::warn!(error = %e, similar_since_last = held, "redis unavailable");
        }
        Error::Unavailable("redis".into())
    }
}
