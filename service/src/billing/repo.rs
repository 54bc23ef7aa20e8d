//! SQL for the money: holds, charges, releases and adjustments. Each is one write transaction
//! that changes `users` (and a capped key) together with its ledger row.

use super::credit::AccountId;
use crate::db::{Db, WriteTx, is_unique_violation};
use crate::{Error, now_ms};
use std::time::Duration;

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
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger (user_id, key_id, kind, amount, hold, balance_after, reference, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user_id)
    .bind(key_id)
    .bind(kind)
    .bind(amount)
    .bind(hold)
    .bind(balance_after)
    .bind(reference)
    .bind(reason)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Holds `amount` more for grant `grant_id` (creating it on first use). False when the balance
/// (or the key's cap) cannot cover it; then nothing changed.
pub async fn hold(
    db: &Db,
    instance: &str,
    acct: AccountId,
    grant_id: &str,
    seq: u32,
    amount: i64,
) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET reserved = reserved + $1 WHERE id = $2 AND status = 'active' AND balance - reserved >= $1 RETURNING balance",
    )
    .bind(amount)
    .bind(acct.user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        return Ok(false);
    };
    if let Some(key) = acct.capped_key {
        let ok = sqlx::query(
            "UPDATE api_keys SET reserved = reserved + $1 WHERE id = $2 AND spend_cap - spent - reserved >= $1",
        )
        .bind(amount)
        .bind(key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ok != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    let now = now_ms();
    let n = sqlx::query("UPDATE credit_grants SET amount = amount + $1, updated_at = $2 WHERE id = $3 AND status = 'open'")
        .bind(amount)
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        sqlx::query(
            "INSERT INTO credit_grants (id, user_id, key_id, instance_id, amount, used, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 'open', $6, $6)",
        )
        .bind(grant_id)
        .bind(acct.user_id)
        .bind(acct.capped_key)
        .bind(instance)
        .bind(amount)
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
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Charges `used` units of grant `grant_id` (consuming its hold). Idempotent on `batch`.
pub async fn charge(
    db: &Db,
    acct: AccountId,
    grant_id: &str,
    used: i64,
    batch: &str,
) -> Result<(), Error> {
    let mut tx = db.begin_write().await?;
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET balance = balance - $1, reserved = reserved - $1 \
         WHERE id = $2 AND reserved >= $1 AND balance >= $1 RETURNING balance",
    )
    .bind(used)
    .bind(acct.user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        return Err(Error::Internal(anyhow::anyhow!(
            "charge of {used} exceeds the hold of user {}",
            acct.user_id
        )));
    };
    if let Some(key) = acct.capped_key {
        sqlx::query(
            "UPDATE api_keys SET spent = spent + $1, reserved = reserved - $1 WHERE id = $2",
        )
        .bind(used)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE credit_grants SET used = used + $1, updated_at = $2 WHERE id = $3")
        .bind(used)
        .bind(now_ms())
        .bind(grant_id)
        .execute(&mut *tx)
        .await?;
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
    )
    .await
    {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            return Ok(()); // this batch was charged already
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(())
}

/// Charges usage beyond a grant from the free balance, as far as it goes; returns what it charged.
pub async fn charge_overage(
    db: &Db,
    acct: AccountId,
    amount: i64,
    batch: &str,
) -> Result<i64, Error> {
    for _ in 0..3 {
        let mut tx = db.begin_write().await?;
        let free: i64 = sqlx::query_scalar("SELECT balance - reserved FROM users WHERE id = $1")
            .bind(acct.user_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
        let charge = amount.min(free.max(0));
        if charge == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET balance = balance - $1 WHERE id = $2 AND balance - reserved >= $1 RETURNING balance",
        )
        .bind(charge)
        .bind(acct.user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(balance) = balance else {
            tx.rollback().await?;
            continue; // the free balance moved between the read and the update (PostgreSQL)
        };
        if let Some(key) = acct.capped_key {
            sqlx::query("UPDATE api_keys SET spent = spent + $1 WHERE id = $2")
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
        )
        .await?;
        tx.commit().await?;
        return Ok(charge);
    }
    Ok(0)
}

/// Closes a grant, releasing its unused hold.
pub async fn close_grant(
    db: &Db,
    acct: AccountId,
    grant_id: &str,
    unused: i64,
) -> Result<(), Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query("UPDATE credit_grants SET status = 'closed', closed_at = $1, updated_at = $1 WHERE id = $2 AND status = 'open'")
        .bind(now_ms())
        .bind(grant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        tx.rollback().await?;
        return Ok(()); // closed already (by the sweeper, say)
    }
    release(&mut tx, acct, unused, &format!("{grant_id}:close")).await?;
    tx.commit().await?;
    Ok(())
}

async fn release(
    tx: &mut WriteTx,
    acct: AccountId,
    unused: i64,
    reference: &str,
) -> Result<(), Error> {
    let balance: i64 = sqlx::query_scalar(
        "UPDATE users SET reserved = reserved - $1 WHERE id = $2 RETURNING balance",
    )
    .bind(unused)
    .bind(acct.user_id)
    .fetch_one(&mut **tx)
    .await?;
    if let Some(key) = acct.capped_key {
        sqlx::query("UPDATE api_keys SET reserved = reserved - $1 WHERE id = $2")
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
    )
    .await?;
    Ok(())
}

pub async fn heartbeat(db: &Db, instance: &str) -> Result<(), Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let n = sqlx::query("UPDATE instances SET heartbeat_at = $1 WHERE id = $2")
        .bind(now)
        .bind(instance)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        sqlx::query("INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)")
            .bind(instance)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn retire(db: &Db, instance: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(instance)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Closes open grants of instances that stopped heartbeating; returns how many.
pub async fn sweep(db: &Db, me: &str, after: Duration) -> Result<u64, Error> {
    let cutoff = now_ms() - i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
    let rows: Vec<(String, i64, Option<i64>, i64, i64)> = sqlx::query_as(
        "SELECT g.id, g.user_id, g.key_id, g.amount, g.used FROM credit_grants g \
         LEFT JOIN instances i ON i.id = g.instance_id \
         WHERE g.status = 'open' AND g.instance_id <> $1 AND (i.id IS NULL OR i.heartbeat_at < $2)",
    )
    .bind(me)
    .bind(cutoff)
    .fetch_all(db.pool())
    .await?;
    let mut closed = 0;
    for (id, user_id, key_id, amount, used) in rows {
        close_grant(
            db,
            AccountId {
                user_id,
                capped_key: key_id,
            },
            &id,
            amount - used,
        )
        .await?;
        closed += 1;
    }
    sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
        .bind(cutoff)
        .execute(db.pool())
        .await?;
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
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET balance = balance + $1, updated_at = $2 WHERE id = $3 AND balance + $1 >= reserved RETURNING balance",
    )
    .bind(amount)
    .bind(now_ms())
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(balance) = balance else {
        tx.rollback().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
        return Err(if exists.is_some() {
            Error::invalid(
                "amount",
                "the balance cannot go below zero (or below what is reserved)",
            )
        } else {
            Error::NotFound("user")
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
    )
    .await?;
    tx.commit().await?;
    Ok(balance)
}

/// Retires a model's active price (its versions stay for the records). False when it had none.
pub async fn deactivate_price(db: &Db, model: &str) -> Result<bool, Error> {
    Ok(db
        .write(
            sqlx::query("UPDATE prices SET active = 0 WHERE model = $1 AND active = 1").bind(model),
        )
        .await?
        > 0)
}
