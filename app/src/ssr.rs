//! Server-side helpers of the server functions: the services, the request, its signed-in user
//! (as the server's session layer resolved it) and the cookies they set. What the REST routes
//! share with them lives in `service::web`.

use crate::error::{AppError, ErrorKind};
use axum::extract::ConnectInfo;
use http::header::SET_COOKIE;
use http::request::Parts;
use leptos::prelude::use_context;
use service::Services;
use service::accounts::{self, Actor, AuthUser, ClientMeta};
use service::config::Config;
use service::web::CurrentUser;
use std::net::SocketAddr;

/// What a server function starts from: the services and who is asking, resolved in one call
/// (`Ctx::user()` for a signed-in person, `Ctx::admin()` for an administrator).
pub struct Ctx<W> {
    pub svc: Services,
    pub who: W,
}

impl Ctx<AuthUser> {
    /// The services and the signed-in user, or `Unauthorized`.
    pub async fn user() -> Result<Self, AppError> {
        let svc = services()?;
        let who = current_user(&svc).await?;
        Ok(Ctx { svc, who })
    }
}

impl Ctx<Actor> {
    /// The services and the signed-in administrator: `Unauthorized` when nobody is signed in,
    /// `Forbidden` for anyone else (and the service checks again).
    pub async fn admin() -> Result<Self, AppError> {
        let svc = services()?;
        let who = current_admin(&svc).await?;
        Ok(Ctx { svc, who })
    }
}

/// The services, as provided to every server function.
pub fn services() -> Result<Services, AppError> {
    use_context::<Services>()
        .ok_or_else(|| AppError::new(ErrorKind::Internal, "services missing from context"))
}

/// The request being served.
pub fn parts() -> Result<Parts, AppError> {
    use_context::<Parts>()
        .ok_or_else(|| AppError::new(ErrorKind::Internal, "request missing from context"))
}

pub use service::web::{clear_session_cookie, session_cookie, session_token};

/// Where clients reach this gateway: `server.public_url` when set, else the request's host
/// (no trailing slash; the OpenAI base URL is this with `/v1`).
pub fn site_url(svc: &Services) -> Result<String, AppError> {
    if !svc.config.server.public_url.is_empty() {
        return Ok(svc
            .config
            .server
            .public_url
            .trim_end_matches('/')
            .to_string());
    }
    let parts = parts()?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9701");
    Ok(format!("http://{host}"))
}

/// The client's address and user agent of the request being served.
pub fn client_meta(config: &Config, parts: &Parts) -> ClientMeta {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    service::web::client_meta(config, &parts.headers, peer)
}

/// The client's address of the request being served.
pub fn client_ip(svc: &Services) -> Result<Option<std::net::IpAddr>, AppError> {
    Ok(client_meta(&svc.config, &parts()?).ip)
}

/// Adds a `Set-Cookie` to the server function's response.
pub fn set_cookie(value: &str) {
    if let (Some(res), Ok(v)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(value),
    ) {
        res.append_header(SET_COOKIE, v);
    }
}

/// A cookie of the request being served.
pub fn cookie(name: &str) -> Option<String> {
    service::web::cookie(&use_context::<Parts>()?.headers, name)
}

/// Whether the browser posted a form itself (no JavaScript: it asks for HTML), so it will be
/// sent back to its page rather than read this answer (see the server's `form_posts_go_back`).
pub fn posted_without_script() -> bool {
    use_context::<Parts>().is_some_and(|p| service::web::asks_for_html(&p.headers))
}

/// Keeps this response out of every cache (it shows a secret).
pub fn no_store() {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
    }
}

/// The signed-in user of this request, if any: as the server's session layer resolved it (once
/// per request), or resolved here when no layer ran.
pub async fn signed_in(svc: &Services) -> Result<Option<AuthUser>, AppError> {
    let parts = parts()?;
    if let Some(CurrentUser(user)) = parts.extensions.get::<CurrentUser>() {
        return Ok(user.clone());
    }
    let Some(token) = session_token(&svc.config, &parts.headers) else {
        return Ok(None);
    };
    match accounts::authenticate(svc, &token).await {
        Ok(user) => Ok(Some(user)),
        Err(service::Error::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The signed-in user of this request, or `Unauthorized`.
pub async fn current_user(svc: &Services) -> Result<AuthUser, AppError> {
    signed_in(svc)
        .await?
        .ok_or_else(|| AppError::from(service::Error::Unauthorized("not signed in")))
}

/// The signed-in administrator of this request: `Unauthorized` when nobody is signed in,
/// `Forbidden` for anyone else. Every admin server function starts here (and the service checks
/// again).
pub async fn current_admin(svc: &Services) -> Result<Actor, AppError> {
    let actor = Actor::User(current_user(svc).await?);
    actor.require_admin()?;
    Ok(actor)
}
/// The page's Content-Security-Policy: scripts only from this origin and the inline hydration
/// script that carries this response's nonce (WebAssembly compiled by it), no framing, no
/// plugins, forms only to this origin.
pub fn content_security_policy() {
    let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    );
    if let Ok(v) = http::HeaderValue::from_str(&policy) {
        res.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The language of the page this request asks for: the language cookie, else
/// `Accept-Language`, else English.
pub fn request_lang() -> crate::i18n::Lang {
    let Some(parts) = use_context::<Parts>() else {
        return crate::i18n::Lang::default();
    };
    let cookie = service::web::cookie(&parts.headers, crate::i18n::COOKIE);
    let accept = parts
        .headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    crate::i18n::Lang::negotiate(cookie.as_deref(), accept)
}

/// `view` rendered to HTML on the server in `lang` (text and attributes escaped by Leptos),
/// for a part of a page the browser shows as it is ([`crate::components::Drawn`]): its code is
/// then only in the server.
pub fn html<V: leptos::tachys::view::RenderHtml>(
    lang: crate::i18n::Lang,
    view: impl FnOnce() -> V,
) -> String {
    let owner = leptos::prelude::Owner::new();
    owner.with(|| {
        leptos::prelude::provide_context(lang);
        view().to_html()
    })
}
