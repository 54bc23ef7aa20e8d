//! REST errors in OpenAI's shape: `{"error":{"message","type","param","code","request_id"}}`.

use app::{AppError, ErrorKind};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub struct ApiError(pub AppError);

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut e = AppError::new(kind, message);
        e.request_id = service::telemetry::current_request_id();
        ApiError(e)
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        ApiError(AppError::from(e))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
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
                "code": e.code.clone().unwrap_or_else(|| e.kind.code().to_string()),
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
