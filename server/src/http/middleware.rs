//! Cross-cutting HTTP behaviour: request ids, metrics and access logs (`observe`), refusing
//! cross-site requests that would act with a session cookie (`same_origin`), and sending a form
//! the browser posted itself back to its page (`form_posts_go_back`).

use super::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service::Services;
use service::telemetry::REQUEST_ID;
use std::time::{Duration, Instant};
use tracing::Instrument as _;
use types::ErrorKind;

const REQUEST_ID_HEADER: &str = "x-request-id";

/// A caller's request id is kept when it is short and plain; otherwise a new one is made (from
/// the thread's random generator: a v4 UUID asked the kernel for every id).
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(service::random_id)
}

/// Route label: the matched template, never the raw path (bounded cardinality).
fn route_label(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<MatchedPath>() {
        return p.as_str().to_string();
    }
    let path = req.uri().path();
    if path.starts_with("/pkg/") {
        "/pkg/{file}".into()
    } else {
        "unmatched".into()
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Set on a response served by an upstream: how long the request waited on upstreams. The
/// rest of its time until the response head is the gateway's own overhead.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamTime(pub Duration);

pub async fn observe(State(svc): State<Services>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let route = route_label(&req);
    let method = method_label(req.method());
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let api = path.starts_with("/v1/") || path.starts_with("/api/");
    let http1_body = req.version() <= Version::HTTP_11 && has_body(&req);
    // One span per request: every line logged while serving it carries its id (and, on `/v1`,
    // the key and model, recorded when known). Error level, so that it exists at any log level.
    let span = tracing::error_span!(
        "request",
        request.id = %id,
        key.id = tracing::field::Empty,
        model = tracing::field::Empty,
    );
    let mut res = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    // API clients always get errors in OpenAI's shape, also from framework rejections (a path or
    // query that does not parse, a body limit, a wrong method, an unknown route).
    if api && (res.status().is_client_error() || res.status().is_server_error()) && !is_json(&res) {
        res = REQUEST_ID.scope(id.clone(), as_api_error(res)).await;
    }
    // The Anthropic surface answers every error in Anthropic's shape, with the same status.
    if path.starts_with("/v1/messages")
        && (res.status().is_client_error() || res.status().is_server_error())
    {
        res = as_anthropic_error(res, &id).await;
    }
    let elapsed = started.elapsed();
    let status = res.status();
    if let Some(UpstreamTime(upstream)) = res.extensions().get::<UpstreamTime>() {
        svc.metrics
            .gateway_overhead
            .with_label_values(&[route.as_str()])
            .observe(elapsed.saturating_sub(*upstream).as_secs_f64());
    }
    svc.metrics
        .http_requests
        .with_label_values(&[route.as_str(), method, status.as_str()])
        .inc();
    svc.metrics
        .http_duration
        .with_label_values(&[route.as_str(), method])
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    // No page of ours is framed, and no answer is sniffed into another type.
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // A request refused before its body was read (too large, or by the key or admin check, which
    // run first) leaves the body unread, and the server then closes the connection after the
    // answer; saying so keeps a client from sending its next request down a closing connection.
    if http1_body
        && matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        )
    {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(request_id = %id, %method, %path, status = status.as_u16(), duration_ms = ms, "request failed");
    } else if status.is_client_error() {
        tracing::info!(request_id = %id, %method, %path, status = status.as_u16(), duration_ms = ms, "request refused");
    } else {
        tracing::debug!(request_id = %id, %method, %path, status = status.as_u16(), duration_ms = ms, "request");
    }
    res
}

fn has_body(req: &Request) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// Rewrites a plain error response as an OpenAI-shaped one with the same status.
async fn as_api_error(res: Response) -> Response {
    let status = res.status();
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let text = if plain {
        axum::body::to_bytes(res.into_body(), 1024)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|t| !t.is_empty())
    } else {
        None
    };
    let message = text.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    });
    let mut out = ApiError::new(ErrorKind::from_status(status.as_u16()), message).into_response();
    *out.status_mut() = status;
    out
}

/// Rewrites an OpenAI-shaped error (every `/v1` error is one by now) in Anthropic's shape:
/// `{"type":"error","error":{"type","message"},"request_id"}`; the status and the headers
/// (`retry-after`, the rate-limit headers) stay.
async fn as_anthropic_error(res: Response, request_id: &str) -> Response {
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            parts
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        });
    let body = service::proxy::anthropic::error_body(
        ErrorKind::from_status(parts.status.as_u16()),
        &message,
        Some(request_id),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// The origin (`scheme://host[:port]`) part of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Resolves the request's session once, into its extensions (`service::web::CurrentUser`), for
/// the admin routes, the console's pages and its server functions. The `/v1` API and the
/// compiled assets carry no session and skip it. When the database cannot answer, nothing is
/// stored and the handler that needs the user resolves it itself, to report the failure.
pub async fn resolve_session(
    State(svc): State<Services>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if !(path.starts_with("/v1/") || path.starts_with("/pkg/")) {
        let user = match service::web::session_token(&svc.config, req.headers()) {
            None => Some(None),
            Some(token) => match service::accounts::authenticate(&svc, &token).await {
                Ok(user) => Some(Some(user)),
                Err(service::Error::Unauthorized(_)) => Some(None),
                Err(_) => None,
            },
        };
        if let Some(user) = user {
            req.extensions_mut().insert(service::web::CurrentUser(user));
        }
    }
    next.run(req).await
}

/// Refuses state-changing requests that a browser sent from another site: every server
/// function, and any unsafe method that carries the session cookie. Browsers always send
/// `Sec-Fetch-Site` or `Origin` on such requests; clients that send neither are not browsers
/// and carry no ambient credentials.
pub async fn same_origin(State(svc): State<Services>, req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    // Safe methods and the Bearer-authenticated `/v1` API skip the check without parsing cookies.
    let applies = unsafe_method
        && !path.starts_with("/v1/")
        && (path.starts_with("/_sfn/")
            || service::web::session_token(&svc.config, req.headers()).is_some());
    if applies {
        let headers = req.headers();
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let allowed = match (site, origin) {
            (Some(site), _) if !matches!(site, "same-origin" | "none") => false,
            (_, Some(origin)) => {
                let public = &svc.config.server.public_url;
                (!public.is_empty() && origin_of(public).eq_ignore_ascii_case(origin))
                    || host.is_some_and(|h| {
                        origin
                            .split_once("://")
                            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
                    })
            }
            _ => true,
        };
        if !allowed {
            tracing::info!(%path, ?origin, ?site, "cross-site request refused");
            return ApiError::new(ErrorKind::Forbidden, "cross-site request refused")
                .into_response();
        }
    }
    next.run(req).await
}

/// A form the browser posted itself (no JavaScript: it asks for HTML) is answered with the way
/// back to its page, which Leptos builds (the `Referer`, with the error in its query when the
/// call failed), so the browser shows the page again with the outcome. A server function sets
/// its error's own status (401, 400...) on the response, and Leptos applies it after building
/// that redirect; the browser would then show the error's JSON instead of following it.
pub async fn form_posts_go_back(req: Request, next: Next) -> Response {
    let form_post = req.method() == Method::POST
        && req.uri().path().starts_with("/_sfn/")
        && service::web::asks_for_html(req.headers());
    let mut res = next.run(req).await;
    if form_post && res.headers().contains_key(header::LOCATION) && !res.status().is_redirection() {
        *res.status_mut() = StatusCode::SEE_OTHER;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(
            origin_of("https://gw.example.com/console"),
            "https://gw.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:9701"), "http://127.0.0.1:9701");
    }
}
