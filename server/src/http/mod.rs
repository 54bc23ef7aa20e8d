//! The one router. Adapters here are thin: they parse, call `service`, and answer.

pub mod admin;
pub mod assets;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod openai;
pub mod openapi;
pub mod public;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes as _, file_and_error_handler_with_context, generate_route_list};
use service::Services;
use std::sync::Arc;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa_axum::router::OpenApiRouter;

/// The router's state. axum clones it for every request, so each part is one pointer to copy
/// (`LeptosOptions` itself is a dozen fields, copied only for the console's handlers).
#[derive(Clone)]
pub struct AppState {
    pub svc: Services,
    pub leptos: Arc<LeptosOptions>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        (*s.leptos).clone()
    }
}

impl FromRef<AppState> for Services {
    fn from_ref(s: &AppState) -> Self {
        s.svc.clone()
    }
}

/// Every `/v1` and `/api` route, with the OpenAPI document of them all.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .nest("/v1", openai::routes())
        .nest("/api", public::routes().nest("/admin", admin::routes()))
}

pub fn router(svc: Services, leptos: LeptosOptions) -> Router {
    let state = AppState {
        svc: svc.clone(),
        leptos: Arc::new(leptos.clone()),
    };
    let context = {
        let svc = svc.clone();
        move || {
            provide_context(svc.clone());
            provide_context(app::docs::ApiDocument(openapi::document_text()));
        }
    };
    let shell = {
        let leptos = leptos.clone();
        move || app::shell(leptos.clone())
    };
    let routes = generate_route_list(app::App);
    let max_body = svc.config.server.max_body_bytes;
    // The console's pages and server functions are compressed for browsers that accept it
    // (brotli or gzip at level 4: a drawn page shrinks some tenfold for well under a
    // millisecond); `/v1` and `/api` answers are not (streams must flow as they come), and the
    // site's files are precompressed at build.
    let console = Router::new()
        .leptos_routes_with_context(&state, routes, context.clone(), shell)
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)));
    Router::new()
        .merge(health::routes())
        .merge(api().split_for_parts().0)
        .merge(console)
        .fallback({
            let site = assets::Site::new(std::path::Path::new(leptos.site_root.as_ref()));
            let console = file_and_error_handler_with_context::<AppState, _>(context, app::shell);
            move |uri, state, req| assets::serve(site.clone(), uri, state, req, console.clone())
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn(middleware::form_posts_go_back))
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            middleware::resolve_session,
        ))
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            middleware::same_origin,
        ))
        // Outermost: every response, refusals by the layers above included, gets an id and a metric.
        .layer(axum::middleware::from_fn_with_state(
            svc,
            middleware::observe,
        ))
        .with_state(state)
}
