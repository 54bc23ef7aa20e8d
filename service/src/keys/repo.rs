//! SQL for API keys.

use super::auth::KeyAuth;
use super::cidr::IpNet;
use crate::Error;
use crate::db::{Bind, Db, Text, Where};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use types::Credits;
use types::KeyView;

pub struct InsertKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub digest_hex: &'a str,
    pub prefix: &'a str,
    pub expires_at: Option<i64>,
    pub allowed_models: &'a [String],
    pub allowed_ips: &'a [String],
    pub spend_cap: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub now: i64,
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

pub async fn insert(db: &Db, k: &InsertKey<'_>) -> Result<i64, Error> {
    let mut tx = db.begin_write().await?;
    let sql = db.sql(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix, status, expires_at, allowed_models, allowed_ips, \
         spend_cap, spent, reserved, rpm, tpm, max_concurrent, created_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, 0, 0, $9, $10, $11, $12) RETURNING id",
    );
    let q = sqlx::query(&sql)
        .bind(k.user_id)
        .bind(k.name)
        .bind(k.digest_hex)
        .bind(k.prefix)
        .bind(k.expires_at)
        .bind(serde_json::to_string(k.allowed_models).map_err(anyhow::Error::from)?)
        .bind(serde_json::to_string(k.allowed_ips).map_err(anyhow::Error::from)?)
        .bind(k.spend_cap)
        .bind(k.rpm)
        .bind(k.tpm)
        .bind(k.max_concurrent)
        .bind(k.now);
    let id = Db::insert_id(db.backend(), q, &mut *tx).await?;
    tx.commit().await?;
    Ok(id)
}

const VIEW_COLUMNS: &str = "id, user_id, name, prefix, status, expires_at, allowed_models, allowed_ips, spend_cap, \
                            spent, rpm, tpm, max_concurrent, created_at, last_used_at";

fn view(row: &AnyRow) -> Result<KeyView, Error> {
    let cap: Option<i64> = row.try_get("spend_cap")?;
    let spent: i64 = row.try_get("spent")?;
    Ok(KeyView {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        status: row.try_get("status")?,
        expires_at: row.try_get("expires_at")?,
        allowed_models: json_list(&row.try_get::<Text, _>("allowed_models")?.0),
        allowed_ips: json_list(&row.try_get::<Text, _>("allowed_ips")?.0),
        spend_cap: cap.map(Credits::from_units),
        spent: Credits::from_units(spent),
        rpm: row.try_get("rpm")?,
        tpm: row.try_get("tpm")?,
        max_concurrent: row.try_get("max_concurrent")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

pub async fn get(db: &Db, id: i64) -> Result<Option<KeyView>, Error> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM api_keys WHERE id = $1");
    let row = sqlx::query(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(view).transpose()
}

pub async fn list(db: &Db, user_id: Option<i64>) -> Result<Vec<KeyView>, Error> {
    let rows = match user_id {
        Some(u) => {
            let sql = format!("SELECT {VIEW_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id");
            sqlx::query(&db.sql(&sql))
                .bind(u)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            let sql = format!("SELECT {VIEW_COLUMNS} FROM api_keys ORDER BY id");
            sqlx::query(&db.sql(&sql)).fetch_all(db.pool()).await?
        }
    };
    rows.iter().map(view).collect()
}

/// What a page of the admin list is filtered by (already checked).
pub struct Filter {
    pub user_id: Option<i64>,
    /// `active`, `disabled` or `expiring`.
    pub status: Option<&'static str>,
    /// Keys with a smaller id only.
    pub before: i64,
    pub now: i64,
}

/// How far ahead a key counts as expiring.
pub const EXPIRING_WITHIN_MS: i64 = 7 * 86_400_000;

/// Up to `limit` keys, newest first.
pub async fn page(db: &Db, f: &Filter, limit: i64) -> Result<Vec<KeyView>, Error> {
    let mut w = Where::new(db);
    if let Some(u) = f.user_id {
        w.and("user_id", "=", Bind::Int(u));
    }
    match f.status {
        Some("expiring") => {
            w.and("status", "=", Bind::Text("active".into()));
            w.and("expires_at", ">", Bind::Int(f.now));
            w.and(
                "expires_at",
                "<=",
                Bind::Int(f.now.saturating_add(EXPIRING_WITHIN_MS)),
            );
        }
        Some(s) => w.and("status", "=", Bind::Text(s.into())),
        None => {}
    }
    w.and("id", "<", Bind::Int(f.before));
    let lim = w.param(Bind::Int(limit));
    let sql = format!(
        "SELECT {VIEW_COLUMNS} FROM api_keys{} ORDER BY id DESC LIMIT {lim}",
        w.sql()
    );
    let rows = sqlx::query_with(&db.sql(&sql), w.args()?)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(view).collect()
}

/// A stored limit (positive when set).
fn limit(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0)
}

pub async fn find_auth(db: &Db, digest_hex: &str) -> Result<Option<KeyAuth>, Error> {
    let row = sqlx::query(
        &db.sql("SELECT k.id, k.user_id, k.prefix, k.key_hash, k.status, k.expires_at, k.allowed_models, k.allowed_ips, \
         k.spend_cap, k.rpm, k.tpm, k.max_concurrent, u.user_group, u.status AS user_status \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"),
    )
    .bind(digest_hex)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("key_hash")?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&hash, &mut digest)
        .map_err(|e| anyhow::anyhow!("stored key digest unreadable: {e}"))?;
    let status: String = row.try_get("status")?;
    let user_status: String = row.try_get("user_status")?;
    Ok(Some(KeyAuth {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_group: row.try_get("user_group")?,
        prefix: row.try_get("prefix")?,
        digest,
        active: status == "active" && user_status == "active",
        expires_at: row.try_get("expires_at")?,
        allowed_models: json_list(&row.try_get::<Text, _>("allowed_models")?.0),
        allowed_ips: json_list(&row.try_get::<Text, _>("allowed_ips")?.0)
            .iter()
            .filter_map(|s| s.parse::<IpNet>().ok())
            .collect(),
        spend_cap: row.try_get("spend_cap")?,
        limits: crate::ratelimit::quota::Limits {
            rpm: limit(row.try_get("rpm")?),
            tpm: limit(row.try_get("tpm")?),
            concurrent: limit(row.try_get("max_concurrent")?),
        },
    }))
}

/// Sets the given columns of a key; false when there is no such key.
pub async fn update(db: &Db, id: i64, sets: Vec<(&'static str, Bind)>) -> Result<bool, Error> {
    let mut w = Where::new(db);
    let assignments = sets
        .into_iter()
        .map(|(column, v)| format!("{column} = {}", w.param(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let id = w.param(Bind::Int(id));
    let sql = format!("UPDATE api_keys SET {assignments} WHERE id = {id}");
    Ok(db.write(sqlx::query_with(&db.sql(&sql), w.args()?)).await? == 1)
}

pub async fn set_status(db: &Db, id: i64, status: &str) -> Result<bool, Error> {
    Ok(db
        .write(
            sqlx::query(&db.sql("UPDATE api_keys SET status = $1 WHERE id = $2"))
                .bind(status)
                .bind(id),
        )
        .await?
        == 1)
}

/// Deletes a key that holds no reservation (open grants keep it until they close).
pub async fn delete(db: &Db, id: i64) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(&db.sql("DELETE FROM api_keys WHERE id = $1 AND reserved = 0"))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        // Either no such key, or one still reserved: disable it instead so that it stops working.
        let m = sqlx::query(&db.sql("UPDATE api_keys SET status = 'disabled' WHERE id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        return Ok(m == 1);
    }
    tx.commit().await?;
    Ok(true)
}

/// Records when keys were last used (batched by the usage writer, inside its transaction).
pub async fn touch(
    db: &Db,
    tx: &mut crate::db::WriteTx,
    ids: &[i64],
    now: i64,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    // Lists of a few lengths only (powers of two), so that each connection caches few shapes.
    for chunk in crate::db::pow2_chunks(ids, 64) {
        let list = db.placeholders(1, chunk.len(), 1);
        let sql = format!(
            "UPDATE api_keys SET last_used_at = {} WHERE id IN {list}",
            db.param(1)
        );
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
