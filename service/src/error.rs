//! What can go wrong in the service layer, by meaning. [`Error::kind`] and [`Error::into_info`]
//! are the one mapping to what a client is told; the adapters only render it.

use std::time::Duration;
use types::{ErrorInfo, ErrorKind};

/// Why an upstream call failed, for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The upstream refused the request itself (400/404/413/422): the client's to fix.
    Rejected(u16),
    /// The upstream answered with something unusable, or refused our credentials.
    BadGateway,
    /// No upstream could serve the request.
    Unavailable,
    /// The upstream did not answer in time.
    Timeout,
}

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
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many requests; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("this key already has {limit} calls in flight, its limit; retry when one ends")]
    TooManyInFlight { limit: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("upstream: {message}")]
    Upstream {
        failure: UpstreamFailure,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// What kind of error this is for a client: the one place a meaning becomes a kind (and so
    /// an HTTP status, an OpenAI type and a code, in `types::ErrorKind`).
    pub fn kind(&self) -> ErrorKind {
        use UpstreamFailure as F;
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::RateLimited { .. } | Error::TooManyInFlight { .. } => ErrorKind::RateLimited,
            Error::InsufficientBalance => ErrorKind::InsufficientQuota,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Upstream { failure, .. } => match failure {
                F::Rejected(404) => ErrorKind::NotFound,
                F::Rejected(413) => ErrorKind::PayloadTooLarge,
                F::Rejected(422) => ErrorKind::Unprocessable,
                F::Rejected(_) => ErrorKind::Invalid,
                F::BadGateway => ErrorKind::BadGateway,
                F::Unavailable => ErrorKind::Unavailable,
                F::Timeout => ErrorKind::GatewayTimeout,
            },
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The error as a client is told it. Internal causes are logged here, once, and never
    /// sent; a dependency that is down is logged at most once a second.
    pub fn into_info(self) -> ErrorInfo {
        let kind = self.kind();
        let mut info = ErrorInfo::new(kind, String::new());
        info.request_id = crate::telemetry::current_request_id();
        info.message = match self {
            Error::NotFound("model") => {
                info.code = Some("model_not_found".into());
                info.param = Some("model".into());
                "the model does not exist or is not available".into()
            }
            Error::Invalid { field, reason } => {
                info.param = Some(field.to_string());
                format!("invalid {field}: {reason}")
            }
            e @ Error::RateLimited { retry_after } => {
                info.retry_after_secs = Some(retry_after.as_secs().max(1));
                e.to_string()
            }
            e @ Error::TooManyInFlight { .. } => {
                info.code = Some("concurrency_limit_exceeded".into());
                info.retry_after_secs = Some(1);
                e.to_string()
            }
            Error::Upstream { message, .. } => message,
            Error::Unavailable(what) => {
                static LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
                if let Some(held) = LOG.ready() {
                    tracing::warn!(part = %what, similar_since_last = held, "dependency unavailable");
                }
                info.retry_after_secs = Some(1);
                "service temporarily unavailable".into()
            }
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "internal error".into()
            }
            e => e.to_string(),
        };
        info
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Checks a name or note as people type it (see [`crate::field::check_text`]).
    pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), Error> {
        Ok(crate::field::check_text(field, text, max)?)
    }
}

impl From<crate::field::FieldError> for Error {
    fn from(e: crate::field::FieldError) -> Self {
        Error::Invalid {
            field: e.field,
            reason: e.reason,
        }
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
