//! `/v1/*`: the OpenAI-compatible surface. Thin adapters over `service::proxy`.

use super::AppState;
use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use service::Services;
use service::keys::{self, KeyAuth};
use service::proxy::{self, CallContext, Endpoint, ProxyBody};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat/completions", post(chat))
        .route("/completions", post(completions))
        .route("/embeddings", post(embeddings))
        .route("/models", get(list_models))
        .route("/models/{*model}", get(get_model))
        .fallback(unknown_endpoint)
}

/// Unknown `/v1` paths answer in OpenAI's shape, not with the console's 404 page.
async fn unknown_endpoint() -> ApiError {
    ApiError::new(types::ErrorKind::NotFound, "unknown endpoint")
}

/// The API key of a `/v1` request (`Authorization: Bearer sk-…` or `x-api-key`), checked.
pub struct ApiKey {
    pub key: Arc<KeyAuth>,
    pub client_ip: Option<IpAddr>,
}

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let svc = &state.svc;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client_ip = service::web::client_ip(&svc.config, &parts.headers, peer);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let secret = bearer.or_else(|| {
            parts
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        });
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return Err(ApiError::from(service::Error::Unauthorized(
                "missing API key: send Authorization: Bearer sk-…",
            )));
        };
        let key = keys::authenticate(svc, secret, client_ip).await?;
        tracing::Span::current().record("key.id", key.id);
        Ok(ApiKey { key, client_ip })
    }
}

/// Relays a call on a task of its own: a client that leaves does not cancel it. A non-stream
/// answer is read to its end and charged (the upstream bills for it either way), a stream whose
/// client left before its first byte is cancelled and charged as partial, and every call that
/// reached an upstream leaves its usage row. Shutdown waits for these tasks (`in_flight`).
async fn relay(svc: Services, key: ApiKey, endpoint: Endpoint, body: Bytes) -> Response {
    let request_id = service::telemetry::current_request_id().unwrap_or_default();
    let ctx = CallContext {
        key: key.key,
        request_id: request_id.clone(),
        client_ip: key.client_ip,
        started: Instant::now(),
    };
    let in_flight = svc.in_flight();
    let call = async move {
        let _in_flight = in_flight;
        respond(&svc, &ctx, endpoint, body).await
    };
    let task = tokio::spawn(
        service::telemetry::REQUEST_ID
            .scope(request_id, call)
            .instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a relay task failed");
            ApiError::new(types::ErrorKind::Internal, "internal error").into_response()
        }
    }
}

async fn respond(svc: &Services, ctx: &CallContext, endpoint: Endpoint, body: Bytes) -> Response {
    match proxy::relay(svc, ctx, endpoint, body).await {
        Ok(res) => {
            let mut response = match res.body {
                ProxyBody::Json(bytes) => (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    bytes,
                )
                    .into_response(),
                ProxyBody::Events(stream) => Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .header(header::CACHE_CONTROL, "no-cache")
                    .header("x-accel-buffering", "no")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| {
                        ApiError::new(types::ErrorKind::Internal, "response").into_response()
                    }),
            };
            response
                .extensions_mut()
                .insert(super::middleware::UpstreamTime(res.upstream));
            response
        }
        // The proxy logged the failure with the status given here.
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn chat(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Chat, body).await
}

async fn completions(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Completions, body).await
}

async fn embeddings(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Embeddings, body).await
}

async fn list_models(State(svc): State<Services>, key: ApiKey) -> Json<serde_json::Value> {
    Json(json!({ "object": "list", "data": proxy::models(&svc, &key.key) }))
}

async fn get_model(
    State(svc): State<Services>,
    key: ApiKey,
    Path(model): Path<String>,
) -> Result<Json<proxy::ModelInfo>, ApiError> {
    Ok(Json(proxy::model(&svc, &key.key, &model)?))
}
