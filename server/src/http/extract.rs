//! Extractors: JSON bodies with OpenAI-shaped rejections, the admin principal and the console's
//! signed-in user.

use super::error::ApiError;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use service::Services;
use service::accounts::{self, Actor, AuthUser};
use service::web::{self, CurrentUser};
use std::net::SocketAddr;
use types::ErrorKind;

/// `Json<T>` whose rejection is a 400 (or 413) in OpenAI's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(r))
                if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    "request body too large",
                ))
            }
            Err(r) => Err(ApiError::new(ErrorKind::Invalid, r.body_text())),
        }
    }
}

/// `Query<T>` whose rejection (an unknown or malformed parameter) is a 400 in OpenAI's shape.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::new(ErrorKind::Invalid, r.body_text())),
        }
    }
}

/// `Path<T>` whose rejection (an id that is not a number, say) is a 400 in OpenAI's shape.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError::new(ErrorKind::Invalid, r.body_text())),
        }
    }
}

/// Someone acting on the admin API: an administrator's session (as the session layer resolved
/// it) or the configured `admin.api_token` as a Bearer token. Everyone else is refused here,
/// once for every `/api/admin` route: 401 when signed out, 403 when not an administrator. The
/// service checks the role again.
pub struct AdminActor(pub Actor);

impl<S> FromRequestParts<S> for AdminActor
where
    Services: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let svc = <Services as axum::extract::FromRef<S>>::from_ref(state);
        if let Some(bearer) = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return if svc.config.admin.api_token.matches(bearer.trim()) {
                Ok(AdminActor(Actor::AdminToken))
            } else {
                Err(ApiError::new(
                    ErrorKind::Unauthorized,
                    "invalid admin token",
                ))
            };
        }
        let Some(user) = session_user(parts, &svc).await? else {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "sign in or present the admin token",
            ));
        };
        let actor = Actor::User(user);
        actor.require_admin()?;
        Ok(AdminActor(actor))
    }
}

/// The user of the request's console session, as the session layer resolved it; when it could
/// not (the database failed), resolved here so the answer says why.
async fn session_user(parts: &Parts, svc: &Services) -> Result<Option<AuthUser>, ApiError> {
    Ok(match parts.extensions.get::<CurrentUser>() {
        Some(CurrentUser(user)) => user.clone(),
        None => match web::session_token(&svc.config, &parts.headers) {
            Some(token) => Some(accounts::authenticate(svc, &token).await?),
            None => None,
        },
    })
}

/// A signed-in console user (`/api/me/*`): 401 without a valid session.
pub struct SessionUser(pub AuthUser);

impl<S> FromRequestParts<S> for SessionUser
where
    Services: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let svc = <Services as axum::extract::FromRef<S>>::from_ref(state);
        match session_user(parts, &svc).await? {
            Some(user) => Ok(SessionUser(user)),
            None => Err(ApiError::new(ErrorKind::Unauthorized, "sign in first")),
        }
    }
}

/// The peer address, when the server was started with connect info.
pub fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
