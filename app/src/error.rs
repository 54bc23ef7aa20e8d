//! The error every server function answers with. The kinds and their statuses live in `types`,
//! the mapping from the service's meanings in `service::Error`.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;
pub use types::{ErrorInfo, ErrorKind};

/// The error every server function answers with: the client's view of an error
/// ([`types::ErrorInfo`]), which leptos carries as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppError(pub ErrorInfo);

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError(ErrorInfo::new(kind, message))
    }
}

impl std::ops::Deref for AppError {
    type Target = ErrorInfo;
    fn deref(&self) -> &ErrorInfo {
        &self.0
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
        // On the server (arguments that do not parse): the status that says so, not a 500.
        #[cfg(feature = "ssr")]
        if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
            && let Ok(status) = http::StatusCode::from_u16(kind.status())
        {
            res.set_status(status);
        }
        AppError::new(kind, value.to_string())
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;

    impl From<service::Error> for AppError {
        /// The service's mapping, and inside a server function the response status to match.
        fn from(e: service::Error) -> Self {
            let info = e.into_info();
            if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                if let Ok(status) = http::StatusCode::from_u16(info.kind.status()) {
                    res.set_status(status);
                }
                if let Some(secs) = info.retry_after_secs {
                    res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
                }
            }
            AppError(info)
        }
    }
}
