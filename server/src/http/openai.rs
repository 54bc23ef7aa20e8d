//! `/v1/*`: the OpenAI-compatible surface. Thin adapters over `service::proxy`.

use super::AppState;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::ApiQuery;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service::Services;
use service::billing::statement;
use service::keys::{self, KeyAuth};
use service::proxy::ModelInfo;
use service::proxy::{self, CallContext, Endpoint, ProxyBody};
use service::ratelimit::quota::{self, Quotas};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tracing::Instrument as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat))
        .routes(routes!(completions))
        .routes(routes!(embeddings))
        .routes(routes!(responses))
        .routes(routes!(messages))
        .routes(routes!(count_tokens))
        .routes(routes!(list_models))
        .routes(routes!(get_model))
        .routes(routes!(subscription))
        .routes(routes!(billing_usage))
        .routes(routes!(credits))
        .fallback(unknown_endpoint)
        .layer(axum::middleware::from_fn(rate_headers))
}

/// Where the key extractor leaves a `/v1` request's key, for [`rate_headers`].
#[derive(Clone, Default)]
struct RateSlot(Arc<OnceLock<(Arc<KeyAuth>, Arc<Quotas>)>>);

/// Every `/v1` answer to a request with a valid key carries the key's limits as OpenAI sends
/// them (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`), for each limit it has.
async fn rate_headers(mut req: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    if let Some((key, quotas)) = slot.0.get() {
        let view = quotas.view(key.id, key.limits);
        let headers = res.headers_mut();
        for (names, limit) in [
            (&RATE_HEADERS[0], view.requests),
            (&RATE_HEADERS[1], view.tokens),
        ] {
            let Some(l) = limit else { continue };
            let [limit, remaining, reset] = names;
            headers.insert(limit.clone(), HeaderValue::from(l.limit));
            headers.insert(remaining.clone(), HeaderValue::from(l.remaining));
            if let Ok(v) = HeaderValue::try_from(quota::reset_text(l.reset)) {
                headers.insert(reset.clone(), v);
            }
        }
    }
    res
}

/// The names of the rate headers, of requests and of tokens: made once (a name built per
/// answer was an allocation and a validation each, six times per call of a limited key).
static RATE_HEADERS: [[HeaderName; 3]; 2] = [
    [
        HeaderName::from_static("x-ratelimit-limit-requests"),
        HeaderName::from_static("x-ratelimit-remaining-requests"),
        HeaderName::from_static("x-ratelimit-reset-requests"),
    ],
    [
        HeaderName::from_static("x-ratelimit-limit-tokens"),
        HeaderName::from_static("x-ratelimit-remaining-tokens"),
        HeaderName::from_static("x-ratelimit-reset-tokens"),
    ],
];

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
        if let Some(slot) = parts.extensions.get::<RateSlot>() {
            let _ = slot.0.set((key.clone(), svc.quotas.clone()));
        }
        tracing::Span::current().record("key.id", key.id);
        Ok(ApiKey { key, client_ip })
    }
}

/// Relays a call on a task of its own: a client that leaves does not cancel it. A non-stream
/// answer is read to its end and charged (the upstream bills for it either way), a stream whose
/// client left before its first byte is cancelled and charged as partial, and every call that
/// reached an upstream leaves its usage row. Shutdown waits for these tasks (`in_flight`).
async fn relay(
    svc: Services,
    key: ApiKey,
    endpoint: Endpoint,
    body: Bytes,
    forward: HeaderMap,
) -> Response {
    let request_id = service::telemetry::current_request_id().unwrap_or_default();
    let ctx = CallContext {
        key: key.key,
        request_id: request_id.clone(),
        client_ip: key.client_ip,
        started: Instant::now(),
        forward,
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

/// Names the output bound sent upstream when the balance (or the key's cap) lowered the request's.
pub const LOWERED_HEADER: &str = "x-tollgate-max-tokens-lowered";

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
            if let Some(bound) = res.lowered {
                // The balance covered less than the request's own bound: this one was sent.
                response
                    .headers_mut()
                    .insert(LOWERED_HEADER, HeaderValue::from(bound));
            }
            response
                .extensions_mut()
                .insert(super::middleware::UpstreamTime(res.upstream));
            response
        }
        // The proxy logged the failure with the status given here.
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/chat/completions",
    tag = "openai",
    summary = "Chat completion (streams with `stream: true`)",
    request_body = Object,
    responses(
        (status = 200, description = "The upstream's answer: JSON, or server-sent events when `stream` is true", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 402, description = "The balance (or the key's cap) cannot cover the request", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 502, description = "The upstream failed", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody),
        (status = 504, description = "The upstream timed out", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn chat(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Chat, body, Default::default()).await
}

#[utoipa::path(
    post,
    path = "/completions",
    tag = "openai",
    summary = "Text completion (legacy)",
    request_body = Object,
    responses(
        (status = 200, description = "The upstream's answer: JSON, or server-sent events when `stream` is true", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 402, description = "The balance (or the key's cap) cannot cover the request", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 502, description = "The upstream failed", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody),
        (status = 504, description = "The upstream timed out", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn completions(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Completions, body, Default::default()).await
}

#[utoipa::path(
    post,
    path = "/embeddings",
    tag = "openai",
    summary = "Embeddings",
    request_body = Object,
    responses(
        (status = 200, description = "The upstream's answer", body = Object),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 402, description = "The balance (or the key's cap) cannot cover the request", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 502, description = "The upstream failed", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody),
        (status = 504, description = "The upstream timed out", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn embeddings(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Embeddings, body, Default::default()).await
}

#[utoipa::path(
    post,
    path = "/responses",
    tag = "openai",
    summary = "OpenAI Responses API (streams with `stream: true`): Codex's API",
    description = "Served by `openai` channels as is, and by OpenAI-compatible channels through a conversion to chat (function tools, function calls and their outputs, reasoning summaries, `instructions`, `max_output_tokens`). Nothing is stored on the gateway: a request that continues a response stored upstream (`previous_response_id`, `conversation`) is served only by channels that store responses (`openai`, `azure`), with `billing.stored_input_hold_tokens` more input tokens held, and refused with a 400 naming the field where the model has none.",
    request_body = Object,
    responses(
        (status = 200, description = "The response: JSON, or the Responses API's server-sent events when `stream` is true", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 402, description = "The balance (or the key's cap) cannot cover the request", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody),
        (status = 502, description = "The upstream failed", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; see `Retry-After`", body = ErrorBody),
        (status = 504, description = "The upstream timed out", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn responses(State(svc): State<Services>, key: ApiKey, body: Bytes) -> Response {
    relay(svc, key, Endpoint::Responses, body, HeaderMap::new()).await
}

/// The client's Anthropic headers, passed on to an Anthropic upstream (`anthropic-version` in
/// place of the gateway's default).
fn anthropic_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in ["anthropic-version", "anthropic-beta"] {
        for v in headers.get_all(name) {
            out.append(HeaderName::from_static(name), v.clone());
        }
    }
    out
}

#[utoipa::path(
    post,
    path = "/messages",
    tag = "anthropic",
    summary = "Anthropic Messages (streams with `stream: true`): Claude Code's API",
    description = "Served by Anthropic channels as is, and by OpenAI-compatible channels through a conversion. The key goes in `x-api-key` or as a Bearer token; errors take Anthropic's shape, `{\"type\":\"error\",\"error\":{\"type\",\"message\"}}`.",
    request_body = Object,
    responses(
        (status = 200, description = "The message: JSON, or Anthropic's server-sent events when `stream` is true", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad input (`invalid_request_error`)", body = Object),
        (status = 401, description = "No credentials, or bad ones (`authentication_error`)", body = Object),
        (status = 402, description = "The balance (or the key's cap) cannot cover the request (`billing_error`)", body = Object),
        (status = 403, description = "Not allowed (`permission_error`)", body = Object),
        (status = 404, description = "Not found (`not_found_error`)", body = Object),
        (status = 413, description = "Too large (`request_too_large`)", body = Object),
        (status = 429, description = "Throttled; see `Retry-After` (`rate_limit_error`)", body = Object),
        (status = 502, description = "The upstream failed (`api_error`)", body = Object),
        (status = 503, description = "No upstream available (`overloaded_error`)", body = Object),
        (status = 504, description = "The upstream timed out (`timeout_error`)", body = Object)
    ),
    security(("api_key" = []))
)]
async fn messages(
    State(svc): State<Services>,
    key: ApiKey,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let forward = anthropic_headers(&headers);
    relay(svc, key, Endpoint::Messages, body, forward).await
}

#[utoipa::path(
    post,
    path = "/messages/count_tokens",
    tag = "anthropic",
    summary = "Anthropic token counting: exact through an Anthropic channel, else estimated",
    description = "Free. The answer's `x-tollgate-token-count` header says `exact` (an Anthropic channel counted) or `estimate` (the gateway's own count).",
    request_body = Object,
    responses(
        (status = 200, description = "`{\"input_tokens\": N}`", body = Object),
        (status = 400, description = "Bad input (`invalid_request_error`)", body = Object),
        (status = 401, description = "No credentials, or bad ones (`authentication_error`)", body = Object),
        (status = 403, description = "Not allowed (`permission_error`)", body = Object),
        (status = 404, description = "Not found (`not_found_error`)", body = Object)
    ),
    security(("api_key" = []))
)]
async fn count_tokens(
    State(svc): State<Services>,
    key: ApiKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ctx = CallContext {
        key: key.key,
        request_id: service::telemetry::current_request_id().unwrap_or_default(),
        client_ip: key.client_ip,
        started: Instant::now(),
        forward: anthropic_headers(&headers),
    };
    let count = proxy::count_tokens(&svc, &ctx, body).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                HeaderName::from_static("x-tollgate-token-count"),
                HeaderValue::from_static(if count.exact { "exact" } else { "estimate" }),
            ),
        ],
        count.body,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/models",
    tag = "openai",
    summary = "The models this key can call",
    responses(
        (status = 200, description = "Models routed and priced that the key may use", body = ModelList),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn list_models(State(svc): State<Services>, key: ApiKey) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: proxy::models(&svc, &key.key),
    })
}

/// `GET /v1/models`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ModelList {
    object: &'static str,
    data: Vec<ModelInfo>,
}

#[utoipa::path(
    get,
    path = "/models/{*model}",
    tag = "openai",
    summary = "One model the key can call",
    params(("model" = String, Path, description = "A model name")),
    responses(
        (status = 200, description = "The model", body = ModelInfo),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn get_model(
    State(svc): State<Services>,
    key: ApiKey,
    Path(model): Path<String>,
) -> Result<Json<proxy::ModelInfo>, ApiError> {
    Ok(Json(proxy::model(&svc, &key.key, &model)?))
}

/// A billing window: `start_date` (inclusive) and `end_date` (exclusive), `YYYY-MM-DD`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BillingWindow {
    /// `YYYY-MM-DD`, UTC, inclusive.
    start_date: Option<String>,
    /// `YYYY-MM-DD`, UTC, exclusive.
    end_date: Option<String>,
}

impl BillingWindow {
    fn parse(&self) -> Result<Option<(i64, i64)>, ApiError> {
        Ok(statement::window(
            self.start_date.as_deref(),
            self.end_date.as_deref(),
        )?)
    }
}

#[utoipa::path(
    get,
    path = "/dashboard/billing/subscription",
    tag = "billing",
    summary = "OpenAI's legacy subscription: the hard limit is what remains plus the window's usage",
    params(BillingWindow),
    responses(
        (status = 200, description = "The subscription", body = types::BillingSubscription),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn subscription(
    State(svc): State<Services>,
    key: ApiKey,
    ApiQuery(w): ApiQuery<BillingWindow>,
) -> Result<Json<types::BillingSubscription>, ApiError> {
    Ok(Json(
        statement::subscription(&svc, &key.key, w.parse()?).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/dashboard/billing/usage",
    tag = "billing",
    summary = "OpenAI's legacy usage, in cents, per day and model (lifetime total without dates)",
    params(BillingWindow),
    responses(
        (status = 200, description = "The usage", body = types::BillingUsage),
        (status = 400, description = "Bad input: the field at fault is in `param`", body = ErrorBody),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn billing_usage(
    State(svc): State<Services>,
    key: ApiKey,
    ApiQuery(w): ApiQuery<BillingWindow>,
) -> Result<Json<types::BillingUsage>, ApiError> {
    Ok(Json(statement::usage(&svc, &key.key, w.parse()?).await?))
}

#[utoipa::path(
    get,
    path = "/credits",
    tag = "billing",
    summary = "Credited, used and remaining, in USD",
    responses(
        (status = 200, description = "The credit summary", body = types::CreditSummary),
        (status = 401, description = "No credentials, or bad ones", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
async fn credits(
    State(svc): State<Services>,
    key: ApiKey,
) -> Result<Json<types::CreditSummary>, ApiError> {
    Ok(Json(statement::credits(&svc, &key.key).await?))
}
