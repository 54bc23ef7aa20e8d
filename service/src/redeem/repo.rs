//! SQL for redeem codes.

use super::Code;
use crate::billing::repo::credit_in;
use crate::db::{Backend, Bind, Db, Where};
use crate::{Error, now_ms};
use sqlx::Row as _;
use types::{Credits, RedeemBatch, RedeemCodeView, RedeemStatus, Redeemed};

pub(super) struct NewBatch<'a> {
    pub label: Option<&'a str>,
    pub value: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// Codes per insert statement (7 parameters each, well under SQLite's 32,766).
const CODES_PER_INSERT: usize = 1024;

/// Inserts a batch and its codes in one transaction.
pub(super) async fn insert_batch(
    db: &Db,
    b: &NewBatch<'_>,
    codes: &[Code],
) -> Result<RedeemBatch, Error> {
    let mut tx = db.begin_write().await?;
    let count = i64::try_from(codes.len()).unwrap_or(i64::MAX);
    let id = Db::insert_id(
        db.backend(),
        sqlx::query(&db.sql(
            "INSERT INTO redeem_batches (label, value, count, expires_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        ))
        .bind(b.label)
        .bind(b.value)
        .bind(count)
        .bind(b.expires_at)
        .bind(b.created_by)
        .bind(b.created_at),
        &mut *tx,
    )
    .await?;
    for chunk in crate::db::pow2_chunks(codes, CODES_PER_INSERT) {
        let sql = format!(
            "INSERT INTO redeem_codes (batch_id, code_hash, prefix, value, status, expires_at, created_at) VALUES {}",
            db.placeholders(chunk.len(), 7, 0)
        );
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = q
                .bind(id)
                .bind(c.digest())
                .bind(c.prefix())
                .bind(b.value)
                .bind("unused")
                .bind(b.expires_at)
                .bind(b.created_at);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(RedeemBatch {
        id,
        label: b.label.map(str::to_string),
        value: Credits::from_units(b.value),
        count,
        unused: count,
        used: 0,
        voided: 0,
        expired: 0,
        expires_at: b.expires_at,
        created_by: b.created_by,
        created_at: b.created_at,
    })
}

/// The status a row shows: an unused code past its expiry is expired.
fn status_of(stored: &str, expires_at: Option<i64>, now_s: i64) -> RedeemStatus {
    match stored {
        "used" => RedeemStatus::Used,
        "voided" => RedeemStatus::Voided,
        _ if expires_at.is_some_and(|t| t <= now_s) => RedeemStatus::Expired,
        _ => RedeemStatus::Unused,
    }
}

pub(super) async fn list_codes(
    db: &Db,
    batch: Option<i64>,
    status: Option<RedeemStatus>,
    before: Option<i64>,
    limit: i64,
    now: i64,
) -> Result<Vec<RedeemCodeView>, Error> {
    let now_s = now / 1000;
    let mut w = Where::new(db);
    if let Some(b) = batch {
        w.and("c.batch_id", "=", Bind::Int(b));
    }
    w.and("c.id", "<", Bind::Int(before.unwrap_or(i64::MAX)));
    match status {
        None => {}
        Some(RedeemStatus::Used) => w.raw("c.status = 'used'"),
        Some(RedeemStatus::Voided) => w.raw("c.status = 'voided'"),
        Some(RedeemStatus::Unused) => {
            let t = w.param(Bind::Int(now_s));
            w.raw(&format!(
                "c.status = 'unused' AND (c.expires_at IS NULL OR c.expires_at > {t})"
            ));
        }
        Some(RedeemStatus::Expired) => {
            w.raw("c.status = 'unused' AND c.expires_at IS NOT NULL");
            w.and("c.expires_at", "<=", Bind::Int(now_s));
        }
    }
    let limit = w.param(Bind::Int(limit + 1));
    let sql = format!(
        "SELECT c.id, c.batch_id, c.prefix, c.value, c.status, c.expires_at, c.used_by, u.username, \
         c.used_at, c.voided_at, c.created_at FROM redeem_codes c LEFT JOIN users u ON u.id = c.used_by{} \
         ORDER BY c.id DESC LIMIT {limit}",
        w.sql()
    );
    let rows = sqlx::query_with(&db.sql(&sql), w.args()?)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let stored: String = r.try_get("status")?;
        let expires_at: Option<i64> = r.try_get("expires_at")?;
        out.push(RedeemCodeView {
            id: r.try_get("id")?,
            batch_id: r.try_get("batch_id")?,
            prefix: r.try_get("prefix")?,
            value: Credits::from_units(r.try_get("value")?),
            status: status_of(&stored, expires_at, now_s),
            expires_at,
            used_by: r.try_get("used_by")?,
            used_by_name: r.try_get("username")?,
            used_at: r.try_get("used_at")?,
            voided_at: r.try_get("voided_at")?,
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

pub(super) async fn list_batches(
    db: &Db,
    before: Option<i64>,
    limit: i64,
    now: i64,
) -> Result<Vec<RedeemBatch>, Error> {
    let rows = sqlx::query(
        &db.sql("SELECT b.id, b.label, b.value, b.count, b.expires_at, b.created_by, b.created_at, \
         CAST(COALESCE(SUM(CASE WHEN c.status = 'unused' AND (c.expires_at IS NULL OR c.expires_at > $1) THEN 1 ELSE 0 END), 0) AS BIGINT) AS unused, \
         CAST(COALESCE(SUM(CASE WHEN c.status = 'used' THEN 1 ELSE 0 END), 0) AS BIGINT) AS used, \
         CAST(COALESCE(SUM(CASE WHEN c.status = 'voided' THEN 1 ELSE 0 END), 0) AS BIGINT) AS voided, \
         CAST(COALESCE(SUM(CASE WHEN c.status = 'unused' AND c.expires_at <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired \
         FROM redeem_batches b LEFT JOIN redeem_codes c ON c.batch_id = b.id \
         WHERE b.id < $3 GROUP BY b.id, b.label, b.value, b.count, b.expires_at, b.created_by, b.created_at \
         ORDER BY b.id DESC LIMIT $4"),
    )
    .bind(now / 1000)
    .bind(now / 1000)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(RedeemBatch {
            id: r.try_get("id")?,
            label: r.try_get("label")?,
            value: Credits::from_units(r.try_get("value")?),
            count: r.try_get("count")?,
            unused: r.try_get("unused")?,
            used: r.try_get("used")?,
            voided: r.try_get("voided")?,
            expired: r.try_get("expired")?,
            expires_at: r.try_get("expires_at")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

pub(super) enum Voided {
    Done,
    Missing,
    NotUnused,
}

pub(super) async fn void_code(db: &Db, id: i64, now: i64) -> Result<Voided, Error> {
    let n = db
        .write(
            sqlx::query(
                &db.sql("UPDATE redeem_codes SET status = 'voided', voided_at = $1 WHERE id = $2 AND status = 'unused'"),
            )
            .bind(now)
            .bind(id),
        )
        .await?;
    if n == 1 {
        return Ok(Voided::Done);
    }
    let exists: Option<i64> =
        sqlx::query_scalar(&db.sql("SELECT id FROM redeem_codes WHERE id = $1"))
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    Ok(if exists.is_some() {
        Voided::NotUnused
    } else {
        Voided::Missing
    })
}

/// Voids a batch's unused codes; `None` when there is no such batch.
pub(super) async fn void_batch(db: &Db, batch_id: i64, now: i64) -> Result<Option<u64>, Error> {
    let mut tx = db.begin_write().await?;
    let exists: Option<i64> =
        sqlx::query_scalar(&db.sql("SELECT id FROM redeem_batches WHERE id = $1"))
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        tx.rollback().await?;
        return Ok(None);
    }
    let n = sqlx::query(
        &db.sql("UPDATE redeem_codes SET status = 'voided', voided_at = $1 WHERE batch_id = $2 AND status = 'unused'"),
    )
    .bind(now)
    .bind(batch_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Some(n))
}

/// A code's value and expiry when it can be redeemed now.
pub(super) async fn redeemable(
    db: &Db,
    code: &Code,
    now: i64,
) -> Result<Option<(i64, Option<i64>)>, Error> {
    Ok(sqlx::query_as(&db.sql(
        "SELECT value, expires_at FROM redeem_codes WHERE code_hash = $1 AND status = 'unused' \
         AND (expires_at IS NULL OR expires_at > $2)",
    ))
    .bind(code.digest())
    .bind(now / 1000)
    .fetch_optional(db.pool())
    .await?)
}

pub(super) enum Redeem {
    Credited(Redeemed),
    /// The idempotency key's first answer.
    Replayed(Redeemed),
    /// The idempotency key was used with another code.
    KeyReused,
    NotRedeemable,
    /// The balance cannot hold the value on top of what it has.
    BalanceFull,
}

/// The first answer stored under `(user, idempotency key)`, if any: the code it was for and what
/// it credited.
async fn first_answer(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    user_id: i64,
    key: &str,
) -> Result<Option<(String, Redeemed)>, sqlx::Error> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        &backend.sql("SELECT code_hash, amount, balance_after FROM redeem_requests WHERE user_id = $1 AND idempotency_key = $2"),
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(hash, amount, balance)| {
        (
            hash,
            Redeemed {
                amount: Credits::from_units(amount),
                balance: Credits::from_units(balance),
            },
        )
    }))
}

fn replay(first: Option<(String, Redeemed)>, digest: &str) -> Option<Redeem> {
    first.map(|(hash, r)| {
        if hash == digest {
            Redeem::Replayed(r)
        } else {
            Redeem::KeyReused
        }
    })
}

/// Redeems a code for a user in one transaction: the conditional update from unused to used,
/// the credit with its ledger row, and the idempotency record.
pub(super) async fn redeem(
    db: &Db,
    user_id: i64,
    code: &Code,
    idempotency_key: Option<&str>,
    now: i64,
) -> Result<Redeem, Error> {
    let digest = code.digest();
    let mut tx = db.begin_write().await?;
    if let Some(k) = idempotency_key
        && let Some(answer) = replay(
            first_answer(&mut tx, db.backend(), user_id, k).await?,
            &digest,
        )
    {
        tx.rollback().await?;
        return Ok(answer);
    }
    let used = Db::update_returning(
        &mut tx,
        sqlx::query(&db.sql(
            "UPDATE redeem_codes SET status = 'used', used_by = $1, used_at = $2 \
             WHERE code_hash = $3 AND status = 'unused' AND (expires_at IS NULL OR expires_at > $4) \
             RETURNING id, value",
        ))
        .bind(user_id)
        .bind(now)
        .bind(&digest)
        .bind(now / 1000),
        sqlx::query(&db.sql("SELECT id, value FROM redeem_codes WHERE code_hash = $1")).bind(&digest),
    )
    .await?
    .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
    .transpose()?;
    let Some((code_id, value)) = used else {
        tx.rollback().await?;
        // A concurrent request with the same idempotency key may have been the one to use it.
        if let Some(k) = idempotency_key {
            let mut conn = db.pool().acquire().await?;
            if let Some(answer) = replay(
                first_answer(&mut conn, db.backend(), user_id, k).await?,
                &digest,
            ) {
                return Ok(answer);
            }
        }
        return Ok(Redeem::NotRedeemable);
    };
    let reason = format!("redeem code {}", code.prefix());
    let Some(balance) = credit_in(
        &mut tx,
        user_id,
        value,
        &format!("redeem:{code_id}"),
        &reason,
    )
    .await?
    else {
        tx.rollback().await?;
        return Ok(Redeem::BalanceFull);
    };
    let redeemed = Redeemed {
        amount: Credits::from_units(value),
        balance: Credits::from_units(balance),
    };
    if let Some(k) = idempotency_key {
        let stored = sqlx::query(
            &db.sql("INSERT INTO redeem_requests (user_id, idempotency_key, code_hash, code_id, amount, balance_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        )
        .bind(user_id)
        .bind(k)
        .bind(&digest)
        .bind(code_id)
        .bind(value)
        .bind(balance)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = stored {
            tx.rollback().await?;
            if crate::db::is_unique_violation(&e) {
                // The same key, committed meanwhile with another code (this code stays unused).
                return Ok(Redeem::KeyReused);
            }
            return Err(e.into());
        }
    }
    tx.commit().await?;
    Ok(Redeem::Credited(redeemed))
}

/// Idempotency records stored before `before` (unix ms).
pub async fn purge_requests(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    db.write(sqlx::query(&db.sql("DELETE FROM redeem_requests WHERE created_at < $1")).bind(before))
        .await
}
