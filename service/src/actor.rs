//! Who is asking: the ground floor's one notion of a caller, named by every domain that checks
//! a right. It names no domain itself.

use crate::Error;
use std::net::IpAddr;
use types::Role;

/// A signed-in person, as resolved from a session cookie.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// Who is asking: a signed-in user, or a script holding `admin.api_token`.
#[derive(Clone, Debug)]
pub enum Actor {
    User(AuthUser),
    AdminToken,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        match self {
            Actor::User(u) => u.role == Role::Admin,
            Actor::AdminToken => true,
        }
    }

    /// The check every administrators' service function starts with: 403 for anyone else.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden("administrators only"))
        }
    }

    /// The check of a user's own things (their keys): an administrator may act for anyone, a
    /// user only for themselves; 403 otherwise.
    pub fn may_act_for(&self, user_id: i64) -> Result<(), Error> {
        if self.is_admin() || self.user_id() == Some(user_id) {
            Ok(())
        } else {
            Err(Error::Forbidden("not your account"))
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User(u) => Some(u.id),
            Actor::AdminToken => None,
        }
    }
}

/// What we know of the client making a request.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}
