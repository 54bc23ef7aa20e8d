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
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable("database".into())
            }
            _ => Error::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis error");
        Error::Unavailable("redis".into())
    }
}
