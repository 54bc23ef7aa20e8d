//! `GET /api/openapi.json`: the OpenAPI document of every `/v1`, `/api` and `/api/admin` route,
//! generated from the handlers and their types (utoipa): the router that serves the routes is
//! the one that lists them, so neither can drift from the other.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

/// The document's frame: what the routes add their paths and schemas to.
pub fn base() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tollgate")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "An OpenAI-compatible AI API gateway with exact metered billing. `/v1` \
                     relays OpenAI's API (request and answer bodies are OpenAI's) with an API \
                     key; `/api` holds the public price table, redeem codes and call logs; \
                     `/api/admin` is for administrators. Money travels as USD decimal strings \
                     (integer micro-dollars underneath), except in OpenAI's legacy billing \
                     shapes, which use numbers. Errors have OpenAI's shape.",
                ))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("sk-…")
                .description(Some(
                    "An API key: `Authorization: Bearer sk-…` (or `x-api-key`)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "admin_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The configured `admin.api_token`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "tollgate_session",
            "An administrator's console session (`session.cookie_name`)",
        ))),
    );
    doc
}

/// The document, built once: axum's wildcard segments (`{*model}`) become OpenAPI parameters.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = super::api().into_openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    doc.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document could not be written");
        "{}".into()
    })
});

/// The document as JSON (built on first use).
pub fn document_text() -> &'static str {
    DOCUMENT.as_str()
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "public",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI 3.1", body = Object)
    ),
    security(())
)]
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
