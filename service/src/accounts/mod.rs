//! Accounts: users, roles, sign-in, console sessions. Every rule about who may do what to an
//! account lives here; adapters only call in.

pub mod password;
pub mod repo;

use crate::audit::snapshot;
use crate::{Error, Services, now_ms};
use rand::RngCore as _;
use rand::distr::{Alphanumeric, SampleString as _};
use sha2::{Digest, Sha256};
use std::time::Duration;
use types::{NewUser, Role, UserInfo, UserStatus};

pub use crate::actor::{Actor, AuthUser, ClientMeta};

/// A fresh session: the cookie token (shown to the browser only) and its lifetime.
pub struct SignedIn {
    pub token: String,
    pub user: UserInfo,
    pub max_age: Duration,
}

const UNAUTHORIZED_LOGIN: &str = "invalid username or password";
const SESSION_TOUCH_EVERY_MS: i64 = 60_000;
const REGISTRATIONS_PER_IP_PER_HOUR: u32 = 10;

/// Usernames are 3 to 32 of `a-z 0-9 _ . -`, compared case-insensitively.
pub fn normalize_username(raw: &str) -> Result<String, Error> {
    let name = raw.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err(Error::invalid("username", "must be 3 to 32 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(Error::invalid(
            "username",
            "may contain only letters, digits, _, . and -",
        ));
    }
    Ok(name)
}

fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The limiter's key of an account's failed sign-ins (by its normalized name).
fn sign_in_key(username: &str) -> String {
    format!("login:acct:{username}")
}

/// Signs a user in: throttled per account and per client IP, the same answer for an unknown
/// user and a wrong password, and a new session id every time (the previous one is ended).
pub async fn login(
    svc: &Services,
    username: &str,
    password: String,
    client: &ClientMeta,
    previous_token: Option<&str>,
) -> Result<SignedIn, Error> {
    let auth = &svc.config.auth;
    let window = Duration::from_secs(auth.failure_window_seconds);
    let name = normalize_username(username).unwrap_or_default();
    let account_key = sign_in_key(&name);
    let ip_key = client.ip.map(|ip| format!("login:ip:{ip}"));

    // Every attempt is counted before its password is checked, so that concurrent guesses
    // cannot all pass a check made before any of them was counted; a success takes its own
    // attempt back.
    let acct = svc.limiter.hit(&account_key, window).await?;
    if acct.hits > auth.max_failures_per_account {
        return Err(Error::RateLimited {
            retry_after: acct.resets_in,
        });
    }
    if let Some(k) = &ip_key {
        let ip = svc.limiter.hit(k, window).await?;
        if ip.hits > auth.max_failures_per_ip {
            return Err(Error::RateLimited {
                retry_after: ip.resets_in,
            });
        }
    }

    let row = if name.is_empty() {
        None
    } else {
        repo::find_by_username(&svc.db, &name).await?
    };
    let (stored, info) = match row {
        Some(r) => (Some(r.password_hash), Some(r.info)),
        None => (None, None),
    };
    let legacy = stored.as_deref().is_some_and(password::is_legacy);
    let again = legacy.then(|| password.clone());
    let ok = password::verify(password, stored).await?;
    // A deleted account answers as an unknown one.
    let Some(info) = info.filter(|i| ok && i.deleted_at.is_none()) else {
        tracing::info!(user.name = %name, client.ip = ?client.ip, "sign-in refused");
        return Err(Error::Unauthorized(UNAUTHORIZED_LOGIN));
    };
    if info.status != UserStatus::Active {
        return Err(Error::Forbidden("this account is disabled"));
    }
    svc.limiter.clear(&account_key).await?;
    if let Some(k) = &ip_key {
        svc.limiter.forgive(k).await?;
    }
    // An imported bcrypt hash gives way to Tollgate's own at its first sign-in.
    if let Some(password) = again {
        let hash = password::hash(password).await?;
        repo::rehash_password(&svc.db, info.id, &hash, now_ms()).await?;
        tracing::info!(
            user.id = info.id,
            "an imported password hash was replaced by argon2id"
        );
    }
    if let Some(old) = previous_token {
        repo::delete_session(&svc.db, &session_id(old)).await?;
    }
    let token = new_token();
    let now = now_ms();
    let max_age = Duration::from_secs(svc.config.session.absolute_timeout_hours * 3600);
    let expires_at = now + i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX / 2);
    let ip = client.ip.map(|ip| ip.to_string());
    let ua: Option<String> = client
        .user_agent
        .as_deref()
        .map(|s| s.chars().take(256).collect());
    repo::insert_session(
        &svc.db,
        &session_id(&token),
        info.id,
        now,
        expires_at,
        ip.as_deref(),
        ua.as_deref(),
    )
    .await?;
    tracing::info!(user.id = info.id, client.ip = ?client.ip, "signed in");
    Ok(SignedIn {
        token,
        user: info,
        max_age,
    })
}

/// Ends the session behind a cookie token (if any).
pub async fn logout(svc: &Services, token: &str) -> Result<(), Error> {
    repo::delete_session(&svc.db, &session_id(token)).await
}

/// Changes a signed-in user's password. The current one is required, and wrong guesses are
/// throttled per account like sign-ins (counted before the check); every other session of the
/// user ends in the same transaction, the one in use (`token`) stays.
pub async fn change_password(
    svc: &Services,
    user: &AuthUser,
    token: &str,
    current: String,
    new: String,
) -> Result<(), Error> {
    password::validate(&new).map_err(|e| match e {
        Error::Invalid { reason, .. } => Error::invalid("new_password", reason),
        other => other,
    })?;
    let auth = &svc.config.auth;
    let key = format!("password:acct:{}", user.id);
    let tries = svc
        .limiter
        .hit(&key, Duration::from_secs(auth.failure_window_seconds))
        .await?;
    if tries.hits > auth.max_failures_per_account {
        return Err(Error::RateLimited {
            retry_after: tries.resets_in,
        });
    }
    let stored = repo::find_by_username(&svc.db, &user.username)
        .await?
        .filter(|r| r.info.id == user.id)
        .map(|r| r.password_hash);
    if !password::verify(current, stored).await? {
        tracing::info!(
            user.id = user.id,
            "password change refused: wrong current password"
        );
        return Err(Error::invalid(
            "current_password",
            "is not the current password",
        ));
    }
    svc.limiter.clear(&key).await?;
    let hash = password::hash(new).await?;
    repo::set_password(&svc.db, user.id, &hash, &session_id(token), now_ms()).await?;
    tracing::info!(
        user.id = user.id,
        "password changed; the user's other sessions ended"
    );
    Ok(())
}

/// Ends every session of the user, the one in use included; how many there were.
pub async fn sign_out_everywhere(svc: &Services, user: &AuthUser) -> Result<u64, Error> {
    let n = repo::delete_user_sessions(&svc.db, user.id).await?;
    tracing::info!(user.id = user.id, sessions = n, "signed out everywhere");
    Ok(n)
}

/// Resolves a session cookie token into the signed-in user, enforcing idle and absolute expiry.
pub async fn authenticate(svc: &Services, token: &str) -> Result<AuthUser, Error> {
    let id = session_id(token);
    let Some(s) = repo::find_session(&svc.db, &id).await? else {
        return Err(Error::Unauthorized("not signed in"));
    };
    let now = now_ms();
    let idle_ms = i64::try_from(
        svc.config
            .session
            .idle_timeout_minutes
            .saturating_mul(60_000),
    )
    .unwrap_or(i64::MAX);
    if now >= s.expires_at
        || now.saturating_sub(s.last_seen_at) > idle_ms
        || s.user.status != UserStatus::Active
    {
        repo::delete_session(&svc.db, &id).await?;
        return Err(Error::Unauthorized("session expired"));
    }
    debug_assert!(s.created_at <= now);
    if now - s.last_seen_at > SESSION_TOUCH_EVERY_MS {
        repo::touch_session(&svc.db, &id, now).await?;
    }
    Ok(AuthUser {
        id: s.user.id,
        username: s.user.username,
        role: s.user.role,
    })
}

/// The signed-in user's own account.
pub async fn me(svc: &Services, user: &AuthUser) -> Result<UserInfo, Error> {
    repo::get(&svc.db, user.id)
        .await?
        .ok_or(Error::NotFound("user"))
}

async fn insert(svc: &Services, new: NewUser) -> Result<UserInfo, Error> {
    let username = normalize_username(&new.username)?;
    password::validate(&new.password)?;
    let hash = password::hash(new.password).await?;
    let id = repo::insert_user(&svc.db, &username, &hash, new.role, now_ms()).await?;
    repo::get(&svc.db, id).await?.ok_or(Error::NotFound("user"))
}

/// An administrator creates an account of either role.
pub async fn create_user(svc: &Services, actor: &Actor, new: NewUser) -> Result<UserInfo, Error> {
    actor.require_admin()?;
    let user = insert(svc, new).await?;
    tracing::info!(actor.id = ?actor.user_id(), user.id = user.id, role = %user.role, "user created");
    crate::audit::record(
        &svc.db,
        actor,
        "user.create",
        format!("user:{}", user.id),
        None,
        snapshot(&user),
    )
    .await;
    Ok(user)
}

/// Self sign-up, when `auth.allow_registration` is on; always the `user` role.
pub async fn register(
    svc: &Services,
    username: &str,
    password: String,
    client: &ClientMeta,
) -> Result<UserInfo, Error> {
    if !svc.config.auth.allow_registration {
        return Err(Error::Forbidden("registration is disabled"));
    }
    if let Some(ip) = client.ip {
        let c = svc
            .limiter
            .hit(&format!("register:ip:{ip}"), Duration::from_secs(3600))
            .await?;
        if c.hits > REGISTRATIONS_PER_IP_PER_HOUR {
            return Err(Error::RateLimited {
                retry_after: c.resets_in,
            });
        }
    }
    insert(
        svc,
        NewUser {
            username: username.to_string(),
            password,
            role: Role::User,
        },
    )
    .await
}

pub async fn list_users(
    svc: &Services,
    actor: &Actor,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserInfo>, Error> {
    actor.require_admin()?;
    repo::list(&svc.db, limit.clamp(1, 500), offset.max(0)).await
}

/// The user `id` for a change: a deleted account takes none.
async fn live_user(svc: &Services, id: i64) -> Result<UserInfo, Error> {
    let user = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if user.deleted_at.is_some() {
        return Err(Error::Conflict("this user is deleted"));
    }
    Ok(user)
}

pub async fn get_user(svc: &Services, actor: &Actor, id: i64) -> Result<UserInfo, Error> {
    actor.require_admin()?;
    repo::get(&svc.db, id).await?.ok_or(Error::NotFound("user"))
}

/// Enables or disables an account. Disabling ends its sessions; nobody can disable themselves,
/// and the last active administrator stays.
pub async fn set_user_status(
    svc: &Services,
    actor: &Actor,
    id: i64,
    status: UserStatus,
) -> Result<UserInfo, Error> {
    actor.require_admin()?;
    let target = live_user(svc, id).await?;
    if status == UserStatus::Disabled {
        if actor.user_id() == Some(id) {
            return Err(Error::invalid(
                "status",
                "you cannot disable your own account",
            ));
        }
        if target.role == Role::Admin && repo::count_active_admins(&svc.db).await? <= 1 {
            return Err(Error::invalid(
                "status",
                "the last active administrator cannot be disabled",
            ));
        }
    }
    repo::set_status(&svc.db, id, status, now_ms()).await?;
    tracing::info!(actor.id = ?actor.user_id(), user.id = id, status = status.as_str(), "user status changed");
    audited(svc, actor, "user.status", &target).await
}

/// After a change to `target`: the user's keys answer for the user (status, group), so none may
/// work from the key caches of any instance; the change goes to the audit log, before and
/// after; the user as they are now.
async fn audited(
    svc: &Services,
    actor: &Actor,
    action: &str,
    target: &UserInfo,
) -> Result<UserInfo, Error> {
    crate::keys::changed(svc).await;
    let after = repo::get(&svc.db, target.id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    crate::audit::record(
        &svc.db,
        actor,
        action,
        format!("user:{}", target.id),
        snapshot(target),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

/// Changes a user's role or price group. Nobody demotes themselves, and the last active
/// administrator stays one. The user's keys are charged with the new group from their next
/// request (the key cache is cleared here; other instances read it within the cache's life).
pub async fn update_user(
    svc: &Services,
    actor: &Actor,
    id: i64,
    patch: types::UserPatch,
) -> Result<UserInfo, Error> {
    actor.require_admin()?;
    if patch.role.is_none() && patch.group.is_none() {
        return Err(Error::invalid(
            "role",
            "nothing to change: give role, group or both",
        ));
    }
    let target = live_user(svc, id).await?;
    let group = patch.group.as_deref().map(str::trim);
    if let Some(g) = group {
        crate::billing::price::check_group(g)?;
    }
    if patch.role == Some(Role::User) && target.role == Role::Admin {
        if actor.user_id() == Some(id) {
            return Err(Error::invalid("role", "you cannot demote yourself"));
        }
        if target.status == UserStatus::Active && repo::count_active_admins(&svc.db).await? <= 1 {
            return Err(Error::invalid(
                "role",
                "the last active administrator cannot be demoted",
            ));
        }
    }
    repo::update(&svc.db, id, patch.role, group, now_ms()).await?;
    tracing::info!(actor.id = ?actor.user_id(), user.id = id, role = ?patch.role, group = ?group, "user updated");
    audited(svc, actor, "user.update", &target).await
}

/// An administrator sets a user's password: the one given, or a new one made here and returned
/// to be shown once. Every session of the user ends in the same transaction (an administrator
/// resetting their own password keeps none either), failed sign-ins counted against the account
/// are forgiven, and the audit log records that it happened, never the password.
pub async fn reset_password(
    svc: &Services,
    actor: &Actor,
    id: i64,
    reset: types::PasswordReset,
) -> Result<types::PasswordWasReset, Error> {
    actor.require_admin()?;
    let target = live_user(svc, id).await?;
    let (password, generated) = match reset.password {
        Some(p) => {
            password::validate(&p)?;
            (p, false)
        }
        None => (Alphanumeric.sample_string(&mut rand::rng(), 20), true),
    };
    let hash = password::hash(password.clone()).await?;
    let sessions_ended = repo::set_password(&svc.db, id, &hash, "", now_ms()).await?;
    svc.limiter.clear(&sign_in_key(&target.username)).await?;
    tracing::info!(actor.id = ?actor.user_id(), user.id = id, sessions_ended, "password reset");
    crate::audit::record(
        &svc.db,
        actor,
        "user.password_reset",
        format!("user:{id}"),
        None,
        snapshot(&serde_json::json!({
            "generated": generated,
            "sessions_ended": sessions_ended,
        })),
    )
    .await;
    Ok(types::PasswordWasReset {
        generated_password: generated.then_some(password),
        sessions_ended,
    })
}

/// Deletes a user. The row stays, disabled for good with its deletion time, so that their
/// ledger, call logs and usage keep their owner and still add up; their keys are disabled and
/// stop at once (the key caches of every instance are cleared), their sessions end, and their
/// name is not given to anyone else. Nobody deletes themselves, and the last active
/// administrator stays. A deleted user cannot be changed again (409).
pub async fn delete_user(svc: &Services, actor: &Actor, id: i64) -> Result<UserInfo, Error> {
    actor.require_admin()?;
    let target = live_user(svc, id).await?;
    if actor.user_id() == Some(id) {
        return Err(Error::invalid("id", "you cannot delete your own account"));
    }
    if target.role == Role::Admin
        && target.status == UserStatus::Active
        && repo::count_active_admins(&svc.db).await? <= 1
    {
        return Err(Error::invalid(
            "id",
            "the last active administrator cannot be deleted",
        ));
    }
    if !repo::mark_deleted(&svc.db, id, now_ms()).await? {
        return Err(Error::Conflict("this user is deleted"));
    }
    tracing::info!(actor.id = ?actor.user_id(), user.id = id, "user deleted");
    audited(svc, actor, "user.delete", &target).await
}

/// First start: when no active administrator exists, creates `admin` with the given password or
/// a generated one, which is returned so that it can be shown once.
pub async fn bootstrap_admin(
    svc: &Services,
    password: Option<String>,
) -> Result<Option<String>, Error> {
    if repo::count_active_admins(&svc.db).await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (Alphanumeric.sample_string(&mut rand::rng(), 20), true),
    };
    match insert(
        svc,
        NewUser {
            username: "admin".into(),
            password: password.clone(),
            role: Role::Admin,
        },
    )
    .await
    {
        Ok(_) => Ok(generated.then_some(password)),
        Err(Error::Conflict(_)) => {
            tracing::warn!(
                "no active administrator, and a user named admin exists: enable it with the admin API"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Deletes expired and idle sessions; returns how many.
pub async fn purge_expired_sessions(svc: &Services) -> Result<u64, Error> {
    let now = now_ms();
    let idle_ms = i64::try_from(
        svc.config
            .session
            .idle_timeout_minutes
            .saturating_mul(60_000),
    )
    .unwrap_or(i64::MAX);
    repo::purge_sessions(&svc.db, now, now.saturating_sub(idle_ms)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalized_and_checked() {
        assert_eq!(
            normalize_username("  Alice_01 ").expect("valid"),
            "alice_01"
        );
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username("has space").is_err());
        assert!(normalize_username("<script>").is_err());
        assert!(normalize_username(&"a".repeat(33)).is_err());
    }

    #[test]
    fn session_ids_are_digests_of_tokens() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        let id = session_id(&t);
        assert_eq!(id.len(), 64);
        assert_ne!(id, t);
        assert_ne!(new_token(), t);
    }
}
