//! Redeem codes (prepaid vouchers): administrators create them in batches, people redeem them
//! for credit. A code credits exactly once whatever the concurrency: redeeming is one conditional
//! update from unused to used together with the `credit` ledger row, in one transaction. Failed
//! attempts are counted (before the code is looked at) per user and per client IP, shared by
//! every instance when Redis is configured; an unknown, used, voided and expired code look alike.

mod code;
mod repo;

pub use code::Code;

use crate::actor::Actor;
use crate::audit::snapshot;
use crate::paging::{parse_id_cursor, parse_limit, slice};
use crate::{Error, Services, now_ms};
use std::net::IpAddr;
use std::time::Duration;
use types::{
    CreatedRedeemBatch, Credits, NewRedeemBatch, RedeemBatch, RedeemCheck, RedeemCodeView,
    RedeemStatus, Redeemed, Slice,
};

/// The most codes in one batch.
pub const MAX_BATCH: u32 = 10_000;

/// The one answer for a code that cannot be redeemed, whatever the reason.
const NOT_REDEEMABLE: &str = "this code is invalid, used, voided or expired";

/// Creates `count` codes of one value; their texts are returned this once.
pub async fn create_batch(
    svc: &Services,
    actor: &Actor,
    new: NewRedeemBatch,
) -> Result<CreatedRedeemBatch, Error> {
    actor.require_admin()?;
    if !(1..=MAX_BATCH).contains(&new.count) {
        return Err(Error::invalid("count", format!("must be 1 to {MAX_BATCH}")));
    }
    let value =
        Credits::parse_usd(&new.value).map_err(|e| Error::invalid("value", e.to_string()))?;
    if value.units() <= 0 {
        return Err(Error::invalid("value", "must be a positive amount"));
    }
    let now = now_ms();
    if let Some(t) = new.expires_at
        && t.checked_mul(1000).is_none_or(|ms| ms <= now)
    {
        return Err(Error::invalid(
            "expires_at",
            "must be a time in the future (unix seconds)",
        ));
    }
    let label = match new.batch.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() => {
            Error::check_text("batch", l, 100)?;
            Some(l.to_string())
        }
        _ => None,
    };
    let mut codes = Vec::with_capacity(new.count as usize);
    for _ in 0..new.count {
        codes.push(
            Code::generate().map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?,
        );
    }
    let created_by = match actor {
        Actor::User(u) => Some(u.id),
        Actor::AdminToken => None,
    };
    let batch = repo::insert_batch(
        &svc.db,
        &repo::NewBatch {
            label: label.as_deref(),
            value: value.units(),
            expires_at: new.expires_at,
            created_by,
            created_at: now,
        },
        &codes,
    )
    .await?;
    tracing::info!(
        batch.id = batch.id,
        count = new.count,
        value = value.units(),
        "redeem codes created"
    );
    crate::audit::record(
        &svc.db,
        actor,
        "redeem_batch.create",
        format!("redeem_batch:{}", batch.id),
        None,
        snapshot(&batch),
    )
    .await;
    Ok(CreatedRedeemBatch {
        batch,
        codes: codes.iter().map(Code::display).collect(),
    })
}

/// A keyset page of codes, newest first, optionally of one batch and one status.
pub async fn list_codes(
    svc: &Services,
    actor: &Actor,
    batch: Option<&str>,
    status: Option<&str>,
    cursor: Option<&str>,
    limit: Option<&str>,
) -> Result<Slice<RedeemCodeView>, Error> {
    actor.require_admin()?;
    let batch = batch
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| Error::invalid("batch", "must be a batch id"))
        })
        .transpose()?;
    let status = status
        .filter(|s| !s.is_empty())
        .map(|s| {
            RedeemStatus::parse(s)
                .ok_or_else(|| Error::invalid("status", "must be unused, used, expired or voided"))
        })
        .transpose()?;
    let before = parse_id_cursor(cursor)?;
    let limit = parse_limit(limit)?;
    let data = repo::list_codes(&svc.db, batch, status, before, limit, now_ms()).await?;
    Ok(slice(data, limit, |c| c.id.to_string()))
}

/// A keyset page of batches with their counts, newest first.
pub async fn list_batches(
    svc: &Services,
    actor: &Actor,
    cursor: Option<&str>,
    limit: Option<&str>,
) -> Result<Slice<RedeemBatch>, Error> {
    actor.require_admin()?;
    let before = parse_id_cursor(cursor)?;
    let limit = parse_limit(limit)?;
    let data = repo::list_batches(&svc.db, before, limit, now_ms()).await?;
    Ok(slice(data, limit, |b| b.id.to_string()))
}

/// Voids one unused code. A used or voided code is a conflict; an unknown one, not found.
pub async fn void_code(svc: &Services, actor: &Actor, id: i64) -> Result<(), Error> {
    actor.require_admin()?;
    match repo::void_code(&svc.db, id, now_ms()).await? {
        repo::Voided::Done => {
            tracing::info!(code.id = id, "redeem code voided");
            crate::audit::record(
                &svc.db,
                actor,
                "redeem_code.void",
                format!("redeem_code:{id}"),
                None,
                None,
            )
            .await;
            Ok(())
        }
        repo::Voided::Missing => Err(Error::NotFound("redeem code")),
        repo::Voided::NotUnused => Err(Error::Conflict("only an unused code can be voided")),
    }
}

/// Voids every unused code of a batch; returns how many.
pub async fn void_batch(svc: &Services, actor: &Actor, batch_id: i64) -> Result<u64, Error> {
    actor.require_admin()?;
    let n = repo::void_batch(&svc.db, batch_id, now_ms())
        .await?
        .ok_or(Error::NotFound("redeem batch"))?;
    tracing::info!(batch.id = batch_id, codes = n, "redeem batch voided");
    crate::audit::record(
        &svc.db,
        actor,
        "redeem_batch.void",
        format!("redeem_batch:{batch_id}"),
        None,
        snapshot(&serde_json::json!({ "voided": n })),
    )
    .await;
    Ok(n)
}

/// Counts an attempt of `user` (and of the client's IP) before the code is looked at; refuses
/// with 429 past the configured number of failures. Returns the keys to forgive on success.
async fn count_attempt(
    svc: &Services,
    user_id: i64,
    ip: Option<IpAddr>,
) -> Result<Vec<String>, Error> {
    let cfg = &svc.config.redeem;
    let window = Duration::from_secs(cfg.failure_window_seconds);
    let mut keys = Vec::with_capacity(2);
    for (key, max) in [
        (
            Some(format!("redeem:user:{user_id}")),
            cfg.max_failures_per_user,
        ),
        (
            ip.map(|ip| format!("redeem:ip:{ip}")),
            cfg.max_failures_per_ip,
        ),
    ] {
        let Some(key) = key else { continue };
        let count = svc.limiter.hit(&key, window).await?;
        keys.push(key);
        if count.hits > max {
            return Err(Error::RateLimited {
                retry_after: count.resets_in,
            });
        }
    }
    Ok(keys)
}

async fn forgive(svc: &Services, keys: &[String]) -> Result<(), Error> {
    for k in keys {
        svc.limiter.forgive(k).await?;
    }
    Ok(())
}

/// Credits a code's value to `user_id` (the signed-in user, or an API key's owner). With an
/// idempotency key, a replay returns the first answer, and the same key with another code is a
/// conflict.
pub async fn redeem(
    svc: &Services,
    user_id: i64,
    code: &str,
    idempotency_key: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Redeemed, Error> {
    let idempotency_key = idempotency_key.map(str::trim);
    if let Some(k) = idempotency_key
        && (k.is_empty() || k.len() > 200 || k.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "Idempotency-Key",
            "must be 1 to 200 printable characters",
        ));
    }
    let counted = count_attempt(svc, user_id, ip).await?;
    let Some(code) = Code::parse(code) else {
        return Err(Error::invalid("code", NOT_REDEEMABLE));
    };
    let outcome = repo::redeem(&svc.db, user_id, &code, idempotency_key, now_ms()).await?;
    let redeemed = match outcome {
        repo::Redeem::Credited(r) => {
            tracing::info!(
                user.id = user_id,
                amount = r.amount.units(),
                "redeem code used"
            );
            r
        }
        repo::Redeem::Replayed(r) => r,
        repo::Redeem::KeyReused => {
            return Err(Error::Conflict(
                "this Idempotency-Key was already used with another code",
            ));
        }
        repo::Redeem::NotRedeemable => return Err(Error::invalid("code", NOT_REDEEMABLE)),
        repo::Redeem::BalanceFull => {
            return Err(Error::invalid(
                "code",
                "the balance cannot hold this amount on top of what it has",
            ));
        }
    };
    forgive(svc, &counted).await?;
    Ok(redeemed)
}

/// What a code is worth and whether it can be redeemed now. Counted like a failed redeem unless
/// the code is redeemable, so that checking is no way around the throttle.
/// Removes the idempotency records stored before `before` (unix ms): the cleanup job, once
/// they are past `redeem.idempotency_hours`.
pub async fn purge_requests(svc: &Services, before: i64) -> Result<u64, Error> {
    Ok(repo::purge_requests(&svc.db, before).await?)
}

pub async fn check(
    svc: &Services,
    user_id: i64,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<RedeemCheck, Error> {
    let counted = count_attempt(svc, user_id, ip).await?;
    let found = match Code::parse(code) {
        Some(code) => repo::redeemable(&svc.db, &code, now_ms()).await?,
        None => None,
    };
    Ok(match found {
        Some((value, expires_at)) => {
            forgive(svc, &counted).await?;
            RedeemCheck {
                redeemable: true,
                value: Some(Credits::from_units(value)),
                expires_at,
            }
        }
        None => RedeemCheck {
            redeemable: false,
            value: None,
            expires_at: None,
        },
    })
}
