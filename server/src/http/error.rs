//! REST errors in OpenAI's shape: `{"error":{"message","type","param","code","request_id"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use types::{ErrorInfo, ErrorKind};

pub struct ApiError(pub ErrorInfo);

/// Every error answer of `/v1` and `/api`: OpenAI's shape.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, …
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The field at fault, when one is.
    pub param: Option<String>,
    /// A stable code the console translates.
    pub code: String,
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut e = ErrorInfo::new(kind, message);
        e.request_id = service::telemetry::current_request_id();
        ApiError(e)
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        ApiError(e.into_info())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status =
            StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code().to_string(),
                kind: e.kind.openai_type(),
                message: e.message,
                param: e.param,
                request_id: e.request_id.or_else(service::telemetry::current_request_id),
            },
        };
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = e.retry_after_secs {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
