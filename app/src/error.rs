//! The error every server function and REST route answers with. The service error's meaning is
//! mapped to a kind, and the kind to an HTTP status and an OpenAI error type, here and only here.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Invalid,
    Unauthorized,
    InsufficientQuota,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    Unprocessable,
    RateLimited,
    BadGateway,
    Unavailable,
    GatewayTimeout,
    Internal,
    /// The call did not reach the server or its answer was unreadable (client side only).
    Transport,
}

impl ErrorKind {
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::InsufficientQuota => 402,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unprocessable => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::BadGateway => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::GatewayTimeout => 504,
            ErrorKind::Internal | ErrorKind::Transport => 500,
        }
    }

    /// The kind of an HTTP error status, for errors that did not come from the service (a
    /// framework rejection, an unknown route). Statuses without a kind of their own map to
    /// `Invalid` (4xx) or `Internal` (5xx); the caller keeps the original status.
    pub const fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Unauthorized,
            402 => ErrorKind::InsufficientQuota,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            422 => ErrorKind::Unprocessable,
            429 => ErrorKind::RateLimited,
            502 => ErrorKind::BadGateway,
            503 => ErrorKind::Unavailable,
            504 => ErrorKind::GatewayTimeout,
            500..=599 => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        }
    }

    /// OpenAI's `error.type` for this kind.
    pub const fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::Invalid
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::PayloadTooLarge
            | ErrorKind::Unprocessable => "invalid_request_error",
            ErrorKind::Unauthorized => "authentication_error",
            ErrorKind::InsufficientQuota => "insufficient_quota",
            ErrorKind::Forbidden => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::BadGateway
            | ErrorKind::Unavailable
            | ErrorKind::GatewayTimeout
            | ErrorKind::Internal
            | ErrorKind::Transport => "server_error",
        }
    }

    /// OpenAI's `error.code` for this kind.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::InsufficientQuota => "insufficient_quota",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unprocessable => "unprocessable_entity",
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::Unavailable => "service_unavailable",
            ErrorKind::GatewayTimeout => "gateway_timeout",
            ErrorKind::Internal | ErrorKind::Transport => "internal_error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    /// The field at fault, for `Invalid`.
    pub param: Option<String>,
    /// A more specific OpenAI `error.code` than the kind's (e.g. `model_not_found`).
    #[serde(default)]
    pub code: Option<String>,
    pub retry_after_secs: Option<u64>,
    pub request_id: Option<String>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after_secs: None,
            request_id: None,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let kind = match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => ErrorKind::Invalid,
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Deserialization(_) => {
                ErrorKind::Transport
            }
            _ => ErrorKind::Internal,
        };
        AppError::new(kind, value.to_string())
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use service::Error;

    impl From<Error> for AppError {
        /// The one mapping from a service error's meaning to what a client is told. Internal
        /// causes are logged here, once, and never sent. Inside a server function the response
        /// status is set to match.
        fn from(e: Error) -> Self {
            let mut code = None;
            let (kind, message, param, retry) = match e {
                Error::NotFound("model") => {
                    code = Some("model_not_found".to_string());
                    let m = "the model does not exist or is not available".to_string();
                    (ErrorKind::NotFound, m, Some("model".to_string()), None)
                }
                Error::NotFound(what) => {
                    (ErrorKind::NotFound, format!("{what} not found"), None, None)
                }
                Error::Unauthorized(m) => (ErrorKind::Unauthorized, m.to_string(), None, None),
                Error::Forbidden(m) => (ErrorKind::Forbidden, m.to_string(), None, None),
                Error::Invalid { field, reason } => (
                    ErrorKind::Invalid,
                    format!("invalid {field}: {reason}"),
                    Some(field.to_string()),
                    None,
                ),
                Error::Conflict(what) => (
                    ErrorKind::Conflict,
                    format!("{what} already exists"),
                    None,
                    None,
                ),
                e @ Error::RateLimited { retry_after } => (
                    ErrorKind::RateLimited,
                    e.to_string(),
                    None,
                    Some(retry_after.as_secs().max(1)),
                ),
                Error::InsufficientBalance => (
                    ErrorKind::InsufficientQuota,
                    "insufficient balance".to_string(),
                    None,
                    None,
                ),
                Error::Upstream { failure, message } => {
                    use service::proxy::UpstreamFailure as F;
                    let kind = match failure {
                        F::Rejected(404) => ErrorKind::NotFound,
                        F::Rejected(413) => ErrorKind::PayloadTooLarge,
                        F::Rejected(422) => ErrorKind::Unprocessable,
                        F::Rejected(_) => ErrorKind::Invalid,
                        F::BadGateway => ErrorKind::BadGateway,
                        F::Unavailable => ErrorKind::Unavailable,
                        F::Timeout => ErrorKind::GatewayTimeout,
                    };
                    (kind, message, None, None)
                }
                Error::Unavailable(what) => {
                    static LOG: service::telemetry::Throttle =
                        service::telemetry::Throttle::per_second();
                    if let Some(held) = LOG.ready() {
                        tracing::warn!(part = %what, similar_since_last = held, "dependency unavailable");
                    }
                    (
                        ErrorKind::Unavailable,
                        "service temporarily unavailable".to_string(),
                        None,
                        Some(1),
                    )
                }
                Error::Internal(cause) => {
                    tracing::error!(error = ?cause, "internal error");
                    (
                        ErrorKind::Internal,
                        "internal error".to_string(),
                        None,
                        None,
                    )
                }
            };
            let err = AppError {
                kind,
                message,
                param,
                code,
                retry_after_secs: retry,
                request_id: service::telemetry::current_request_id(),
            };
            if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                if let Ok(status) = http::StatusCode::from_u16(kind.status()) {
                    res.set_status(status);
                }
                if let Some(secs) = err.retry_after_secs {
                    res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
                }
            }
            err
        }
    }
}
