//! SQL for the money: holds, charges, releases and adjustments. Each is one write transaction
//! that changes `users` (and a capped key) together with its ledger row. Prices and group
//! multipliers are in [`prices`].

mod prices;

pub use prices::{
    active_prices, deactivate_price, delete_group_multiplier, group_multipliers, price_history,
    set_group_multiplier, set_price,
};

use super::account::AccountId;
use crate::db::{Db, WriteTx, is_unique_violation};
use crate::{Error, now_ms};
use sqlx::Row as _;

#[expect(clippy::too_many_arguments, reason = "one column each")]
async fn ledger(
    tx: &mut WriteTx,
    user_id: i64,
    key_id: Option<i64>,
    kind: &str,
    amount: i64,
    hold: i64,
    balance_after: i64,
    reference: Option<&str>,
    reason: Option<&str>,
    usage_day: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        &tx.sql("INSERT INTO ledger (user_id, key_id, kind, amount, hold, balance_after, reference, reason, usage_day, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
    )
    .bind(user_id)
    .bind(key_id)
    .bind(kind)
    .bind(amount)
    .bind(hold)
    .bind(balance_after)
    .bind(reference)
    .bind(reason)
    .bind(usage_day)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The balance after `update` (an UPDATE of user `user_id`'s row written `… RETURNING
/// balance`), `None` when it matched no row.
async fn updated_balance<'q>(
    tx: &mut WriteTx,
    update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    user_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let read_back = tx.sql("SELECT balance FROM users WHERE id = $1");
    Db::update_returning(tx, update, sqlx::query(&read_back).bind(user_id))
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

/// What a hold came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    Held,
    /// The balance (or the key's cap) cannot cover it; nothing changed.
    Short,
    /// This instance's lease is gone (another instance took its grants over): nothing changed.
    Fenced,
}

/// What a charge came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charged {
    /// Charged now, or by an earlier try of the same batch.
    Done,
    /// The grant was taken over (closed) by another instance: nothing changed.
    Fenced,
}

/// Renews this instance's lease inside `tx`: false when the lease is gone (fenced).
async fn renew_in(
    tx: &mut WriteTx,
    db: &Db,
    instance: &str,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE instances SET heartbeat_at = $1, lease_until = {} + $2 WHERE id = $3",
        db.now_sql()
    );
    let n = sqlx::query(&db.sql(&sql))
        .bind(now_ms())
        .bind(lease_ms)
        .bind(instance)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Starts a lease for a new instance identity.
pub async fn register(db: &Db, instance: &str, lease_ms: i64) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO instances (id, started_at, heartbeat_at, lease_until) VALUES ($1, $2, $3, {} + $4)",
        db.now_sql()
    );
    let now = now_ms();
    db.write(
        sqlx::query(&db.sql(&sql))
            .bind(instance)
            .bind(now)
            .bind(now)
            .bind(lease_ms),
    )
    .await?;
    Ok(())
}

/// Renews this instance's lease for `lease_ms` from now by the database's clock. False when it
/// is gone: another instance took it over, and this identity may hold nothing more.
pub async fn renew(db: &Db, instance: &str, lease_ms: i64) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let alive = renew_in(&mut tx, db, instance, lease_ms).await?;
    tx.commit().await?;
    Ok(alive)
}

/// Holds `amount` more for grant `grant_id` (opening it when `existing` is false), renewing the
/// instance's lease in the same transaction: a hold proves the lease alive.
#[expect(clippy::too_many_arguments, reason = "one column each")]
pub async fn hold(
    db: &Db,
    instance: &str,
    lease_ms: i64,
    acct: AccountId,
    grant_id: &str,
    existing: bool,
    seq: u32,
    amount: i64,
) -> Result<Hold, Error> {
    let mut tx = db.begin_write().await?;
    if !renew_in(&mut tx, db, instance, lease_ms).await? {
        tx.rollback().await?;
        return Ok(Hold::Fenced);
    }
    let balance = updated_balance(
        &mut tx,
        sqlx::query(&db.sql(
            "UPDATE users SET reserved = reserved + $1 WHERE id = $2 AND status = 'active' AND balance - reserved >= $3 RETURNING balance",
        ))
        .bind(amount)
        .bind(acct.user_id)
        .bind(amount),
        acct.user_id,
    )
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        return Ok(Hold::Short);
    };
    if let Some(key) = acct.capped_key {
        let ok = sqlx::query(
            &db.sql("UPDATE api_keys SET reserved = reserved + $1 WHERE id = $2 AND spend_cap - spent - reserved >= $3"),
        )
        .bind(amount)
        .bind(key)
        .bind(amount)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ok != 1 {
            tx.rollback().await?;
            return Ok(Hold::Short);
        }
    }
    let now = now_ms();
    if existing {
        let n = sqlx::query(&db.sql(
            "UPDATE credit_grants SET amount = amount + $1, updated_at = $2 \
             WHERE id = $3 AND instance_id = $4 AND status = 'open'",
        ))
        .bind(amount)
        .bind(now)
        .bind(grant_id)
        .bind(instance)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(Hold::Fenced);
        }
    } else {
        sqlx::query(
            &db.sql("INSERT INTO credit_grants (id, user_id, key_id, instance_id, amount, used, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 'open', $6, $7)"),
        )
        .bind(grant_id)
        .bind(acct.user_id)
        .bind(acct.capped_key)
        .bind(instance)
        .bind(amount)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let reference = format!("{grant_id}:{seq}");
    ledger(
        &mut tx,
        acct.user_id,
        acct.capped_key,
        "grant",
        0,
        amount,
        balance,
        Some(&reference),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Hold::Held)
}

/// What batch `batch` charged, when an earlier try of it went through (its answer was lost).
async fn charged_already(db: &Db, batch: &str) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        &db.sql("SELECT -amount FROM ledger WHERE kind = 'charge' AND reference = $1"),
    )
    .bind(batch)
    .fetch_optional(db.pool())
    .await?)
}

/// Charges `used` units of grant `grant_id` (consuming its hold) for calls of `usage_day` (the
/// start of the UTC day their usage rows are dated). Idempotent on `batch`: a try repeated with
/// the same batch charges nothing more. The grant's open status is the fence: a
/// grant another instance took over refuses the charge.
pub async fn charge(
    db: &Db,
    acct: AccountId,
    grant_id: &str,
    used: i64,
    batch: &str,
    usage_day: i64,
) -> Result<Charged, Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(&db.sql(
        "UPDATE credit_grants SET used = used + $1, updated_at = $2 \
         WHERE id = $3 AND status = 'open' AND amount - used >= $4",
    ))
    .bind(used)
    .bind(now_ms())
    .bind(grant_id)
    .bind(used)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        tx.rollback().await?;
        return Ok(if charged_already(db, batch).await?.is_some() {
            Charged::Done
        } else {
            Charged::Fenced
        });
    }
    let balance = updated_balance(
        &mut tx,
        sqlx::query(&db.sql(
            "UPDATE users SET balance = balance - $1, reserved = reserved - $2 \
             WHERE id = $3 AND reserved >= $4 AND balance >= $5 RETURNING balance",
        ))
        .bind(used)
        .bind(used)
        .bind(acct.user_id)
        .bind(used)
        .bind(used),
        acct.user_id,
    )
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        return Err(Error::Internal(anyhow::anyhow!(
            "charge of {used} exceeds what user {} has reserved",
            acct.user_id
        )));
    };
    if let Some(key) = acct.capped_key {
        sqlx::query(
            &db.sql(
                "UPDATE api_keys SET spent = spent + $1, reserved = reserved - $2 WHERE id = $3",
            ),
        )
        .bind(used)
        .bind(used)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    }
    match ledger(
        &mut tx,
        acct.user_id,
        acct.capped_key,
        "charge",
        -used,
        -used,
        balance,
        Some(batch),
        None,
        Some(usage_day),
    )
    .await
    {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            return Ok(Charged::Done); // this batch was charged already
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Charged::Done)
}

/// What more the account could hold now: its free balance (`balance - reserved`, 0 unless the
/// user is active) and, for a capped key, the least of that and what its cap leaves.
pub async fn available(db: &Db, acct: AccountId) -> Result<i64, Error> {
    let free: i64 = sqlx::query_scalar(
        &db.sql("SELECT balance - reserved FROM users WHERE id = $1 AND status = 'active'"),
    )
    .bind(acct.user_id)
    .fetch_optional(db.pool())
    .await?
    .unwrap_or(0);
    let Some(key) = acct.capped_key else {
        return Ok(free.max(0));
    };
    let left: i64 = sqlx::query_scalar(
        &db.sql("SELECT spend_cap - spent - reserved FROM api_keys WHERE id = $1"),
    )
    .bind(key)
    .fetch_optional(db.pool())
    .await?
    .unwrap_or(0);
    Ok(free.min(left).max(0))
}

/// Charges usage that no grant covers (calls of `usage_day`) from the free balance, as far as
/// it goes; returns what it charged. Idempotent on `batch`: a repeated try returns what the first one charged.
pub async fn charge_overage(
    db: &Db,
    acct: AccountId,
    amount: i64,
    batch: &str,
    usage_day: i64,
) -> Result<i64, Error> {
    if let Some(charged) = charged_already(db, batch).await? {
        return Ok(charged);
    }
    for _ in 0..3 {
        let mut tx = db.begin_write().await?;
        let free: i64 =
            sqlx::query_scalar(&db.sql("SELECT balance - reserved FROM users WHERE id = $1"))
                .bind(acct.user_id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0);
        let charge = amount.min(free.max(0));
        if charge == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let balance = updated_balance(
            &mut tx,
            sqlx::query(&db.sql(
                "UPDATE users SET balance = balance - $1 WHERE id = $2 AND balance - reserved >= $3 RETURNING balance",
            ))
            .bind(charge)
            .bind(acct.user_id)
            .bind(charge),
            acct.user_id,
        )
        .await?;
        let Some(balance) = balance else {
            tx.rollback().await?;
            continue; // the free balance moved between the read and the update (PostgreSQL)
        };
        if let Some(key) = acct.capped_key {
            sqlx::query(&db.sql("UPDATE api_keys SET spent = spent + $1 WHERE id = $2"))
                .bind(charge)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        ledger(
            &mut tx,
            acct.user_id,
            acct.capped_key,
            "charge",
            -charge,
            0,
            balance,
            Some(batch),
            Some("usage beyond the reservation"),
            Some(usage_day),
        )
        .await?;
        tx.commit().await?;
        return Ok(charge);
    }
    Ok(0)
}

/// Closes a grant, releasing what it held and did not use (read from the grant as it stands
/// when closed). False when it was closed already (taken over by another instance).
pub async fn close_grant(db: &Db, grant_id: &str) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let closed = close_in(&mut tx, grant_id, "").await?;
    tx.commit().await?;
    Ok(closed)
}

/// Closes grant `grant_id` if it is open (and `extra`, a condition on the grant, holds) and
/// releases its unused hold, inside `tx`.
async fn close_in(tx: &mut WriteTx, grant_id: &str, extra: &str) -> Result<bool, Error> {
    let sql = format!(
        "UPDATE credit_grants SET status = 'closed', closed_at = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'open'{extra} RETURNING user_id, key_id, amount - used"
    );
    let now = now_ms();
    let sql = tx.sql(&sql);
    let read_back =
        tx.sql("SELECT user_id, key_id, amount - used FROM credit_grants WHERE id = $1");
    let row = Db::update_returning(
        tx,
        sqlx::query(&sql).bind(now).bind(now).bind(grant_id),
        sqlx::query(&read_back).bind(grant_id),
    )
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let (user_id, key_id, unused): (i64, Option<i64>, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let acct = AccountId {
        user_id,
        capped_key: key_id,
    };
    release(tx, acct, unused, &format!("{grant_id}:close")).await?;
    Ok(true)
}

async fn release(
    tx: &mut WriteTx,
    acct: AccountId,
    unused: i64,
    reference: &str,
) -> Result<(), Error> {
    let balance = updated_balance(
        tx,
        sqlx::query(
            &tx.sql("UPDATE users SET reserved = reserved - $1 WHERE id = $2 RETURNING balance"),
        )
        .bind(unused)
        .bind(acct.user_id),
        acct.user_id,
    )
    .await?
    .ok_or(sqlx::Error::RowNotFound)?;
    if let Some(key) = acct.capped_key {
        sqlx::query(&tx.sql("UPDATE api_keys SET reserved = reserved - $1 WHERE id = $2"))
            .bind(unused)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    ledger(
        tx,
        acct.user_id,
        acct.capped_key,
        "release",
        0,
        -unused,
        balance,
        Some(reference),
        None,
        None,
    )
    .await?;
    Ok(())
}

/// Ends this instance's lease at a clean stop (its grants are closed already).
pub async fn retire(db: &Db, instance: &str) -> Result<(), Error> {
    db.write(sqlx::query(&db.sql("DELETE FROM instances WHERE id = $1")).bind(instance))
        .await?;
    Ok(())
}

/// Takes over the grants of instances whose lease ended more than `margin_ms` ago by the
/// database's clock: each such instance's row is deleted (its fencing token revoked) and its
/// grants closed in one transaction, so an owner that was paused and comes back finds both gone
/// and spends nothing more from them. Grants of no instance at all (left by a stop whose last
/// report failed) are closed too. Returns how many grants were closed.
pub async fn sweep(db: &Db, me: &str, margin_ms: i64) -> Result<u64, Error> {
    let expired = format!("lease_until < {} - $2", db.now_sql());
    let stale: Vec<String> = sqlx::query_scalar(&db.sql(&format!(
        "SELECT id FROM instances WHERE id <> $1 AND {expired}"
    )))
    .bind(me)
    .bind(margin_ms)
    .fetch_all(db.pool())
    .await?;
    let mut closed = 0;
    for instance in stale {
        let mut tx = db.begin_write().await?;
        let fenced = sqlx::query(&db.sql(&format!(
            "DELETE FROM instances WHERE id = $1 AND {expired}"
        )))
        .bind(&instance)
        .bind(margin_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fenced == 1 {
            let grants: Vec<String> = sqlx::query_scalar(
                &db.sql("SELECT id FROM credit_grants WHERE instance_id = $1 AND status = 'open'"),
            )
            .bind(&instance)
            .fetch_all(&mut *tx)
            .await?;
            for g in grants {
                closed += u64::from(close_in(&mut tx, &g, "").await?);
            }
            tracing::warn!(instance = %instance, "took over the credit lease of an instance that stopped renewing it");
        }
        tx.commit().await?;
    }
    let orphans: Vec<String> = sqlx::query_scalar(&db.sql(
        "SELECT g.id FROM credit_grants g WHERE g.status = 'open' AND g.instance_id <> $1 \
         AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = g.instance_id)",
    ))
    .bind(me)
    .fetch_all(db.pool())
    .await?;
    for g in orphans {
        let mut tx = db.begin_write().await?;
        let n = close_in(
            &mut tx,
            &g,
            " AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = credit_grants.instance_id)",
        )
        .await?;
        closed += u64::from(n);
        tx.commit().await?;
    }
    Ok(closed)
}

/// Adds a signed amount to a balance with a reason; refuses to go below what is held.
pub async fn adjust(
    db: &Db,
    user_id: i64,
    amount: i64,
    kind: &str,
    reason: &str,
    reference: Option<&str>,
) -> Result<i64, Error> {
    let mut tx = db.begin_write().await?;
    // Written so that no arithmetic can leave 64 bits: the balance must stay at most
    // i64::MAX (`balance <= $4`) and at least what is held (`balance - reserved >= $5`).
    let balance = updated_balance(
        &mut tx,
        sqlx::query(&db.sql(
            "UPDATE users SET balance = balance + $1, updated_at = $2 \
             WHERE id = $3 AND balance <= $4 AND balance - reserved >= $5 RETURNING balance",
        ))
        .bind(amount)
        .bind(now_ms())
        .bind(user_id)
        .bind(i64::MAX - amount.max(0))
        .bind(amount.min(0).saturating_neg()),
        user_id,
    )
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        let current: Option<i64> =
            sqlx::query_scalar(&db.sql("SELECT balance FROM users WHERE id = $1"))
                .bind(user_id)
                .fetch_optional(db.pool())
                .await?;
        return Err(match current {
            None => Error::NotFound("user"),
            Some(b) if amount > 0 && b > i64::MAX - amount => Error::invalid(
                "amount",
                "would take the balance past the largest amount it can hold",
            ),
            Some(_) => Error::invalid(
                "amount",
                "the balance cannot go below zero (or below what is reserved)",
            ),
        });
    };
    ledger(
        &mut tx,
        user_id,
        None,
        kind,
        amount,
        0,
        balance,
        reference,
        Some(reason),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(balance)
}

/// Credits `amount` (> 0) to a user inside the caller's transaction, with its `credit` ledger
/// row. `None` when the user is gone or the balance would pass the largest amount it can hold;
/// the caller then rolls back.
pub async fn credit_in(
    tx: &mut WriteTx,
    user_id: i64,
    amount: i64,
    reference: &str,
    reason: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let balance = updated_balance(
        tx,
        sqlx::query(&tx.sql(
            "UPDATE users SET balance = balance + $1, updated_at = $2 \
             WHERE id = $3 AND balance <= $4 RETURNING balance",
        ))
        .bind(amount)
        .bind(now_ms())
        .bind(user_id)
        .bind(i64::MAX - amount.max(0)),
        user_id,
    )
    .await?;
    let Some(balance) = balance else {
        return Ok(None);
    };
    ledger(
        tx,
        user_id,
        None,
        "credit",
        amount,
        0,
        balance,
        Some(reference),
        Some(reason),
        None,
    )
    .await?;
    Ok(Some(balance))
}

/// A user's balance; `None` when there is no such user.
pub async fn balance(db: &Db, user_id: i64) -> Result<Option<i64>, Error> {
    Ok(
        sqlx::query_scalar(&db.sql("SELECT balance FROM users WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?,
    )
}
