//! What every web entry point reads from a request the same way, whichever adapter serves it
//! (the `/v1` and `/api` routes, the console's server functions): the session cookie, the
//! client's address, and the cookies the console sets. No status codes here.

use crate::actor::{AuthUser, ClientMeta};
use crate::config::Config;
use http::HeaderMap;
use http::header::{COOKIE, USER_AGENT};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The signed-in user of a request, resolved once by the server's session layer and kept in
/// the request's extensions: `None` for a visitor without a valid session.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub Option<AuthUser>);

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

/// Whether a request asks for HTML: a form the browser posted itself, without JavaScript (a
/// script's request asks for JSON). Such a post is sent back to its page with the outcome.
pub fn asks_for_html(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The session token of a request, if any.
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

/// The client's address and user agent, for sign-in throttling and the session record.
pub fn client_meta(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientMeta {
    ClientMeta {
        ip: client_ip(config, headers, peer),
        user_agent: headers
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
