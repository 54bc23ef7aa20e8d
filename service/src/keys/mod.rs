//! API keys: `sk-` + 48 base62 characters (≈285 bits) from the OS CSPRNG. Stored as a SHA-256
//! digest and a display prefix; the secret is returned once, at creation. Lookups go through a
//! short-lived in-process cache that every change invalidates at once on this instance and, with
//! Redis, on every other instance (published on `<redis.prefix>revoke`); without Redis, other
//! instances see a change within `CACHE_TTL`.

pub mod auth;
mod cidr;
pub mod repo;

pub use auth::{CACHE_TTL, KeyAuth, KeyCache, digest};
pub use cidr::IpNet;
pub use types::{CreatedKey, KeyView, NewKey};

use crate::actor::Actor;
use crate::audit::snapshot;
use crate::{Error, Services, now_ms};
use rand::Rng as _;
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq as _;
use types::{Credits, UserStatus};

const SECRET_LEN: usize = 48;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
fn new_secret() -> String {
    let mut rng = rand::rng(); // ChaCha-based CSPRNG seeded and reseeded from the OS
    let mut s = String::with_capacity(3 + SECRET_LEN);
    s.push_str("sk-");
    for _ in 0..SECRET_LEN {
        s.push(BASE62[rng.random_range(0..BASE62.len())] as char);
    }
    s
}

/// The answer to a key that is not one (or not active): the same whatever the reason.
const BAD: Error = Error::Unauthorized("invalid API key");

/// Resolves a presented secret into its key, checking status, expiry, owner and client IP.
pub async fn authenticate(
    svc: &Services,
    secret: &str,
    client_ip: Option<IpAddr>,
) -> Result<Arc<KeyAuth>, Error> {
    if !secret.starts_with("sk-") || secret.len() > 200 {
        return Err(BAD);
    }
    let d = digest(secret);
    let key = match svc.keys.get(&d) {
        Some(k) => k,
        None => {
            // A key that is not cached costs a database lookup, unless its client sent too
            // many keys that do not exist lately (and this is not a key found lately), or this
            // one was looked up in vain just now.
            if let Some(retry_after) = client_ip.and_then(|ip| svc.keys.blocked(ip))
                && !svc.keys.was_good(&d)
            {
                return Err(Error::RateLimited { retry_after });
            }
            if svc.keys.is_unknown(&d) {
                return Err(BAD);
            }
            let found = repo::find_auth(&svc.db, &hex::encode(d)).await?;
            svc.metrics
                .key_lookups
                .with_label_values(&[if found.is_some() { "found" } else { "unknown" }])
                .inc();
            let Some(mut k) = found else {
                svc.keys.put_unknown(d);
                return Err(invalid_key_from(svc, client_ip).await);
            };
            k.limits = crate::ratelimit::quota::Limits::resolve(
                k.limits,
                &k.user_group,
                &svc.config.limits,
            );
            let k = Arc::new(k);
            svc.keys.put(k.clone());
            k
        }
    };
    if !bool::from(key.digest.ct_eq(&d)) || !key.active {
        return Err(BAD);
    }
    if key.expires_at.is_some_and(|t| t <= now_ms()) {
        return Err(Error::Unauthorized("API key expired"));
    }
    if !key.allowed_ips.is_empty()
        && !client_ip.is_some_and(|ip| key.allowed_ips.iter().any(|n| n.contains(ip)))
    {
        return Err(Error::Forbidden("client IP not allowed for this key"));
    }
    Ok(key)
}

/// The answer to a key that does not exist: 401, counted against its client's IP (shared by
/// every instance through the limiter); past `auth.max_invalid_keys_per_ip` in the window, the
/// IP is refused with 429 on this instance without a lookup until the window ends.
async fn invalid_key_from(svc: &Services, client_ip: Option<IpAddr>) -> Error {
    let Some(ip) = client_ip else {
        return BAD;
    };
    let auth = &svc.config.auth;
    let window = std::time::Duration::from_secs(auth.invalid_key_window_seconds);
    // The limiter unreachable: the key is refused all the same.
    let Ok(count) = svc.limiter.hit(&format!("badkey:ip:{ip}"), window).await else {
        return BAD;
    };
    if count.hits >= auth.max_invalid_keys_per_ip {
        svc.keys.block(ip, count.resets_in);
    }
    if count.hits > auth.max_invalid_keys_per_ip {
        tracing::warn!(client.ip = %ip, "too many calls with keys that do not exist");
        return Error::RateLimited {
            retry_after: count.resets_in,
        };
    }
    BAD
}

/// Which of `user_id`'s keys `secret` is (whatever its status), found by its digest as
/// [`authenticate`] finds it: for a page that shows a secret it did not make in this request
/// (the keys page, after a form posted without JavaScript). `None` for anything else.
pub async fn own_key_id(svc: &Services, user_id: i64, secret: &str) -> Result<Option<i64>, Error> {
    if !secret.starts_with("sk-") || secret.len() > 200 {
        return Ok(None);
    }
    Ok(repo::find_auth(&svc.db, &hex::encode(digest(secret)))
        .await?
        .filter(|k| k.user_id == user_id)
        .map(|k| k.id))
}

/// The Redis channel on which a change of keys or users is announced to every instance.
fn revocations(svc: &Services) -> String {
    format!("{}revoke", svc.config.redis.prefix)
}

/// After any change to keys or users: forgets every cached key here at once and, with Redis,
/// tells every other instance to (a failed announcement leaves them the cache's 5 s).
pub async fn changed(svc: &Services) {
    svc.keys.clear();
    if let Some(link) = &svc.redis
        && let Err(e) = link.publish(&revocations(svc), "keys").await
    {
        static LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
        if let Some(held) = LOG.ready() {
            tracing::warn!(error = %e, similar_since_last = held, "announcing a key change failed; other instances see it within 5 s");
        }
    }
}

/// Starts following other instances' key changes (with Redis; see [`follow_changes`]).
pub fn start(svc: &Services, bg: &mut crate::state::Background) {
    bg.spawn(follow_changes(svc.clone()));
}

/// Clears the key cache whenever another instance announces a change (and whenever the
/// subscription was interrupted, as an announcement may have been missed). Runs until shutdown;
/// does nothing without Redis.
async fn follow_changes(svc: Services) {
    let Some(link) = svc.redis.clone() else {
        return;
    };
    link.listen(&revocations(&svc), || svc.keys.clear(), svc.shutdown.wait())
        .await;
}

/// Creates a key for `new.user_id`: an administrator for anyone, a user for themselves (with
/// limits of its own no higher than their group's or the default, when those are set).
pub async fn create(svc: &Services, actor: &Actor, new: NewKey) -> Result<CreatedKey, Error> {
    actor.may_act_for(new.user_id)?;
    let name = new.name.trim();
    Error::check_text("name", name, 64)?;
    let user = crate::accounts::repo::get(&svc.db, new.user_id)
        .await?
        .ok_or(Error::invalid("user_id", "no such user"))?;
    if user.status != UserStatus::Active {
        return Err(Error::invalid("user_id", "user is disabled"));
    }
    let ips = parse_ips(&new.allowed_ips)?;
    let cap = parse_cap(new.spend_cap.as_deref())?;
    check_limit("rpm", new.rpm)?;
    check_limit("tpm", new.tpm)?;
    check_limit("max_concurrent", new.max_concurrent)?;
    if !actor.is_admin() {
        let ceiling = crate::ratelimit::quota::Limits::resolve(
            Default::default(),
            &user.group,
            &svc.config.limits,
        );
        for (field, asked, max) in [
            ("rpm", new.rpm, ceiling.rpm),
            ("tpm", new.tpm, ceiling.tpm),
            ("max_concurrent", new.max_concurrent, ceiling.concurrent),
        ] {
            if let (Some(a), Some(m)) = (asked, max)
                && u64::try_from(a).unwrap_or(0) > m
            {
                return Err(Error::invalid(
                    field,
                    format!("at most {m}, your account's limit"),
                ));
            }
        }
    }
    check_models(&new.allowed_models)?;
    let secret = new_secret();
    let prefix = format!("{}…", &secret[..9]);
    let id = repo::insert(
        &svc.db,
        &repo::InsertKey {
            user_id: user.id,
            name,
            digest_hex: &hex::encode(digest(&secret)),
            prefix: &prefix,
            expires_at: new.expires_at,
            allowed_models: &new.allowed_models,
            allowed_ips: &ips,
            spend_cap: cap,
            rpm: new.rpm,
            tpm: new.tpm,
            max_concurrent: new.max_concurrent,
            now: now_ms(),
        },
    )
    .await?;
    let view = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("key"))?;
    tracing::info!(key.id = id, key.prefix = %prefix, user.id = user.id, "API key created");
    if actor.is_admin() {
        crate::audit::record(
            &svc.db,
            actor,
            "key.create",
            format!("key:{id}"),
            None,
            snapshot(&view),
        )
        .await;
    }
    Ok(CreatedKey { view, key: secret })
}

/// Addresses or CIDR ranges, written back in canonical form.
fn parse_ips(ips: &[String]) -> Result<Vec<String>, Error> {
    ips.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .map(|n| n.to_string())
                .map_err(|e| Error::invalid("allowed_ips", format!("{s:?}: {e}")))
        })
        .collect()
}

fn parse_cap(cap: Option<&str>) -> Result<Option<i64>, Error> {
    let Some(t) = cap else { return Ok(None) };
    let c = Credits::parse_usd(t).map_err(|e| Error::invalid("spend_cap", e.to_string()))?;
    if c.units() < 0 {
        return Err(Error::invalid("spend_cap", "must not be negative"));
    }
    Ok(Some(c.units()))
}

fn check_limit(field: &'static str, v: Option<i64>) -> Result<(), Error> {
    if v.is_some_and(|v| v <= 0) {
        return Err(Error::invalid(field, "must be positive"));
    }
    Ok(())
}

fn check_models(models: &[String]) -> Result<(), Error> {
    if models.iter().any(|m| m.trim().is_empty()) {
        return Err(Error::invalid(
            "allowed_models",
            "model names must not be empty",
        ));
    }
    Ok(())
}

/// Changes what a key may do. Applies at once on this instance and, with Redis, within a
/// second on every other. A new spend cap binds the key's next credit grant: what an instance
/// holds already (sized to about a second of the key's spend) may still be spent.
pub async fn update(
    svc: &Services,
    actor: &Actor,
    id: i64,
    patch: types::KeyPatch,
) -> Result<KeyView, Error> {
    use crate::db::Bind;
    actor.require_admin()?;
    let int = |v: Option<i64>| v.map_or(Bind::Null, Bind::Int);
    let json = |v: &[String]| {
        serde_json::to_string(v)
            .map(Bind::Text)
            .map_err(|e| Error::from(anyhow::Error::from(e)))
    };
    let mut sets: Vec<(&'static str, Bind)> = Vec::new();
    if let Some(name) = &patch.name {
        let name = name.trim();
        Error::check_text("name", name, 64)?;
        sets.push(("name", Bind::Text(name.to_string())));
    }
    if let Some(at) = patch.expires_at {
        sets.push(("expires_at", int(at)));
    }
    if let Some(models) = &patch.allowed_models {
        check_models(models)?;
        sets.push(("allowed_models", json(models)?));
    }
    if let Some(ips) = &patch.allowed_ips {
        sets.push(("allowed_ips", json(&parse_ips(ips)?)?));
    }
    if let Some(cap) = &patch.spend_cap {
        sets.push(("spend_cap", int(parse_cap(cap.as_deref())?)));
    }
    for (field, v) in [
        ("rpm", patch.rpm),
        ("tpm", patch.tpm),
        ("max_concurrent", patch.max_concurrent),
    ] {
        if let Some(v) = v {
            check_limit(field, v)?;
            sets.push((field, int(v)));
        }
    }
    if sets.is_empty() {
        return Err(Error::invalid("body", "nothing to change"));
    }
    let fields = sets.iter().map(|(f, _)| *f).collect::<Vec<_>>();
    let before = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("key"))?;
    if !repo::update(&svc.db, id, sets).await? {
        return Err(Error::NotFound("key"));
    }
    changed(svc).await;
    tracing::info!(key.id = id, ?fields, "API key updated");
    let after = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("key"))?;
    crate::audit::record(
        &svc.db,
        actor,
        "key.update",
        format!("key:{id}"),
        snapshot(&before),
        snapshot(&after),
    )
    .await;
    Ok(after)
}

/// Keys of `user_id` (every key for an administrator who names nobody: the call log's key
/// filter), oldest first; a user sees only their own. The admin list pages with [`page`].
pub async fn list(
    svc: &Services,
    actor: &Actor,
    user_id: Option<i64>,
) -> Result<Vec<KeyView>, Error> {
    match user_id {
        Some(id) => actor.may_act_for(id)?,
        None => actor.require_admin()?,
    }
    repo::list(&svc.db, user_id).await
}

/// An administrator's page of every user's keys, newest first, filtered by owner and status.
pub async fn page(
    svc: &Services,
    actor: &Actor,
    q: &types::KeysQuery,
) -> Result<types::Slice<KeyView>, Error> {
    actor.require_admin()?;
    let before = crate::paging::parse_id_cursor(q.cursor.as_deref())?;
    let limit = crate::paging::parse_limit(q.limit.as_deref())?;
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some("active") => Some("active"),
        Some("disabled") => Some("disabled"),
        Some("expiring") => Some("expiring"),
        Some(_) => {
            return Err(Error::invalid(
                "status",
                "must be active, disabled or expiring",
            ));
        }
    };
    let filter = repo::Filter {
        user_id: q.user_id,
        status,
        before: before.unwrap_or(i64::MAX),
        now: now_ms(),
    };
    let rows = repo::page(&svc.db, &filter, limit + 1).await?;
    Ok(crate::paging::slice(rows, limit, |k| k.id.to_string()))
}

/// The key `id` if the actor may act for its owner; a key of someone else is "not found".
async fn own_key(svc: &Services, actor: &Actor, id: i64) -> Result<KeyView, Error> {
    repo::get(&svc.db, id)
        .await?
        .filter(|k| actor.may_act_for(k.user_id).is_ok())
        .ok_or(Error::NotFound("key"))
}

pub async fn set_status(
    svc: &Services,
    actor: &Actor,
    id: i64,
    active: bool,
) -> Result<KeyView, Error> {
    let before = own_key(svc, actor, id).await?;
    if !repo::set_status(&svc.db, id, if active { "active" } else { "disabled" }).await? {
        return Err(Error::NotFound("key"));
    }
    changed(svc).await;
    let after = repo::get(&svc.db, id)
        .await?
        .ok_or(Error::NotFound("key"))?;
    if actor.is_admin() {
        crate::audit::record(
            &svc.db,
            actor,
            "key.status",
            format!("key:{id}"),
            snapshot(&before),
            snapshot(&after),
        )
        .await;
    }
    Ok(after)
}

pub async fn delete(svc: &Services, actor: &Actor, id: i64) -> Result<(), Error> {
    let before = own_key(svc, actor, id).await?;
    if !repo::delete(&svc.db, id).await? {
        return Err(Error::NotFound("key"));
    }
    changed(svc).await;
    if actor.is_admin() {
        crate::audit::record(
            &svc.db,
            actor,
            "key.delete",
            format!("key:{id}"),
            snapshot(&before),
            None,
        )
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_base62() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with("sk-") && a.len() == 3 + SECRET_LEN);
        assert!(a[3..].bytes().all(|c| BASE62.contains(&c)));
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
    }
}
