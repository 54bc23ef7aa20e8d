//! The kinds of error every surface answers with (the console, the REST API, `/v1`), each with
//! its HTTP status, OpenAI error type and machine-readable code, and the error as a client sees
//! it. The code is what the console translates; the message is for people reading the API.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// Every kind, in declaration order (the one list; a test checks it against the enum).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Invalid,
        ErrorKind::Unauthorized,
        ErrorKind::InsufficientQuota,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::PayloadTooLarge,
        ErrorKind::Unprocessable,
        ErrorKind::RateLimited,
        ErrorKind::BadGateway,
        ErrorKind::Unavailable,
        ErrorKind::GatewayTimeout,
        ErrorKind::Internal,
        ErrorKind::Transport,
    ];

    /// The kind whose [`ErrorKind::code`] this is (`internal_error` reads as `Internal`).
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
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

/// An error as a client receives it: a kind, a message, the field at fault, a more specific
/// code, when to retry, and the request's id.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
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

impl ErrorInfo {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after_secs: None,
            request_id: None,
        }
    }

    /// The code a client matches on: the specific one, or the kind's.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or(self.kind.code())
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` holds every kind once (a kind added to the enum without it fails the match), and
    /// every code reads back as its kind.
    #[test]
    fn every_kind_is_listed_and_its_code_reads_back() {
        for (n, k) in ErrorKind::ALL.into_iter().enumerate() {
            let position = match k {
                ErrorKind::Invalid => 0,
                ErrorKind::Unauthorized => 1,
                ErrorKind::InsufficientQuota => 2,
                ErrorKind::Forbidden => 3,
                ErrorKind::NotFound => 4,
                ErrorKind::Conflict => 5,
                ErrorKind::PayloadTooLarge => 6,
                ErrorKind::Unprocessable => 7,
                ErrorKind::RateLimited => 8,
                ErrorKind::BadGateway => 9,
                ErrorKind::Unavailable => 10,
                ErrorKind::GatewayTimeout => 11,
                ErrorKind::Internal => 12,
                ErrorKind::Transport => 13,
            };
            assert_eq!(position, n, "{k:?}");
            let back = ErrorKind::from_code(k.code()).expect("a kind");
            let want = if k == ErrorKind::Transport {
                ErrorKind::Internal
            } else {
                k
            };
            assert_eq!(back, want);
        }
        assert_eq!(ErrorKind::from_code("no_such_code"), None);
    }
}
