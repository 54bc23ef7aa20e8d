//! Server-side helpers shared by the server functions and the REST adapters: the request's
//! session cookie, client address, and the cookie we set.

use crate::error::{AppError, ErrorKind};
use axum::extract::ConnectInfo;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use http::request::Parts;
use leptos::prelude::use_context;
use service::Services;
use service::accounts::{self, Actor, AuthUser, ClientMeta};
use service::config::Config;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The session token of this request, if any.
pub fn session_token(config: &Config, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &config.session.cookie_name)
}

/// The client address: the peer, or the first `X-Forwarded-For` hop when configured to trust it.
pub fn client_ip(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if config.server.trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

pub fn client_meta(config: &Config, parts: &Parts) -> ClientMeta {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    ClientMeta {
        ip: client_ip(config, &parts.headers, peer),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Secure behind https.
pub fn session_cookie(config: &Config, token: &str, max_age: Duration) -> String {
    let secure = if config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        config.session.cookie_name,
        max_age.as_secs()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(config: &Config) -> String {
    let secure = if config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        config.session.cookie_name
    )
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

/// The signed-in user of this request, or `Unauthorized`.
pub async fn current_user(svc: &Services) -> Result<AuthUser, AppError> {
    let parts = parts()?;
    let token = session_token(&svc.config, &parts.headers)
        .ok_or_else(|| AppError::from(service::Error::Unauthorized("not signed in")))?;
    Ok(accounts::authenticate(svc, &token).await?)
}

/// The signed-in user as an actor of admin rules.
pub async fn current_actor(svc: &Services) -> Result<Actor, AppError> {
    Ok(Actor::User(current_user(svc).await?))
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
