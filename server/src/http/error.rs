//! REST errors in OpenAI's shape: `{"error":{"message","type","param","code","request_id"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use types::{ErrorInfo, ErrorKind};

pub struct ApiError(pub ErrorInfo);

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
        let body = json!({
            "error": {
                "message": e.message,
                "type": e.kind.openai_type(),
                "param": e.param,
                "code": e.code(),
                "request_id": e.request_id.or_else(service::telemetry::current_request_id),
            }
        });
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = e.retry_after_secs {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
