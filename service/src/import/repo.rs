//! The import's SQL: reading a one-api / new-api database (read-only, in its own engine's
//! dialect) and writing Tollgate's rows, all in the one transaction the import runs in.

use crate::db::{Backend, Db, Text, WriteTx};
use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor as _, Row as _};
use std::collections::HashSet;

/// The source database, opened read-only.
pub struct Source {
    pool: AnyPool,
    backend: Backend,
}

impl Source {
    pub async fn open(url: &str) -> anyhow::Result<Source> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).context(
            "--from: a sqlite:, postgres:// or mysql:// URL of the one-api/new-api database",
        )?;
        let url = match backend {
            // Read-only: the file is never written, nor created when it is missing.
            Backend::Sqlite => {
                let path = crate::db::sqlite_path(url).context("--from: a sqlite: URL")?;
                anyhow::ensure!(path.exists(), "--from: no such file: {}", path.display());
                format!("sqlite://{}?mode=ro", path.display())
            }
            Backend::Postgres | Backend::Mysql => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        Backend::Postgres => {
                            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                                .await?;
                        }
                        Backend::Mysql => {
                            conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                        }
                        Backend::Sqlite => {}
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("connecting to the source database")?;
        Ok(Source { pool, backend })
    }

    /// A column or table name as this engine quotes it (`key` and `group` are reserved).
    pub fn name(&self, n: &str) -> String {
        match self.backend {
            Backend::Mysql => format!("`{n}`"),
            Backend::Sqlite | Backend::Postgres => format!("\"{n}\""),
        }
    }

    /// The columns of `table`, `None` when there is no such table.
    pub async fn columns(&self, table: &str) -> Option<HashSet<String>> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM pragma_table_info(?)",
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
            Backend::Mysql => {
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
        };
        let names: Vec<Text> = sqlx::query_scalar(sql)
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .ok()?;
        let names: HashSet<String> = names
            .into_iter()
            .map(|t| t.0.to_ascii_lowercase())
            .collect();
        (!names.is_empty()).then_some(names)
    }

    /// A text column, read as text whatever the engine stored (PostgreSQL's `char(n)` included).
    pub fn text(&self, col: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("CAST({} AS TEXT)", self.name(col)),
            Backend::Sqlite | Backend::Mysql => self.name(col),
        }
    }

    /// An integer column, read as one whatever the engine stored (a MySQL or PostgreSQL
    /// boolean included).
    pub fn int(&self, col: &str) -> String {
        match self.backend {
            Backend::Mysql => format!("CAST({} AS SIGNED)", self.name(col)),
            Backend::Sqlite | Backend::Postgres => format!("CAST({} AS BIGINT)", self.name(col)),
        }
    }

    /// A boolean column as 0 or 1.
    pub fn flag(&self, col: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("CASE WHEN {} THEN 1 ELSE 0 END", self.name(col)),
            Backend::Sqlite | Backend::Mysql => {
                format!("CASE WHEN {} <> 0 THEN 1 ELSE 0 END", self.name(col))
            }
        }
    }

    /// 1 when a (nullable) column holds a value, else 0: a soft-deleted row's time, whatever
    /// type the engine gave it.
    pub fn present(&self, col: &str) -> String {
        format!("CASE WHEN {} IS NULL THEN 0 ELSE 1 END", self.name(col))
    }

    /// Every row of `SELECT <exprs> FROM <table> [<tail>]`.
    pub async fn rows(
        &self,
        exprs: &[String],
        table: &str,
        tail: &str,
    ) -> anyhow::Result<Vec<AnyRow>> {
        let sql = format!(
            "SELECT {} FROM {} {tail}",
            exprs.join(", "),
            self.name(table)
        );
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("reading {table}"))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Text of column `i` (`None` for NULL).
pub fn text(r: &AnyRow, i: usize) -> anyhow::Result<Option<String>> {
    Ok(r.try_get::<Option<Text>, _>(i)?.map(|t| t.0))
}

/// Integer of column `i` (`None` for NULL).
pub fn int(r: &AnyRow, i: usize) -> anyhow::Result<Option<i64>> {
    Ok(r.try_get::<Option<i64>, _>(i)?)
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub status: &'a str,
    pub group: &'a str,
    pub balance: i64,
    pub reference: &'a str,
    pub now: i64,
}

/// A Tollgate user by name, and whether the import made it (its marker in the ledger).
pub async fn user_by_name(
    tx: &mut WriteTx,
    name: &str,
    reference: &str,
) -> anyhow::Result<Option<(i64, bool)>> {
    let id: Option<i64> = sqlx::query_scalar(&tx.sql("SELECT id FROM users WHERE username = $1"))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(id) = id else { return Ok(None) };
    let ours: Option<i64> = sqlx::query_scalar(
        &tx.sql("SELECT id FROM ledger WHERE kind = 'import' AND reference = $1 AND user_id = $2"),
    )
    .bind(reference)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(Some((id, ours.is_some())))
}

/// A user with their balance and its ledger row (the import's marker, also when it is 0).
pub async fn insert_user(tx: &mut WriteTx, u: &NewUser<'_>) -> anyhow::Result<i64> {
    let backend = tx.backend();
    let sql = tx.sql(
        "INSERT INTO users (username, password_hash, role, status, user_group, balance, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    );
    let q = sqlx::query(&sql)
        .bind(u.username)
        .bind(u.password_hash)
        .bind(u.role)
        .bind(u.status)
        .bind(u.group)
        .bind(u.balance)
        .bind(u.now)
        .bind(u.now);
    let id = Db::insert_id(backend, q, &mut **tx).await?;
    sqlx::query(&tx.sql(
        "INSERT INTO ledger (user_id, key_id, kind, amount, hold, balance_after, reference, reason, created_at) \
         VALUES ($1, NULL, 'import', $2, 0, $3, $4, 'imported from one-api/new-api', $5)",
    ))
    .bind(id)
    .bind(u.balance)
    .bind(u.balance)
    .bind(u.reference)
    .bind(u.now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// The user's e-mail, as the address their alerts would go to (no alert is set).
pub async fn set_email(
    tx: &mut WriteTx,
    user_id: i64,
    email: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(&tx.sql(
        "INSERT INTO alert_settings (scope, user_id, email, channels, ledger_drift, updated_at) \
         VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (scope) DO NOTHING",
    ))
    .bind(format!("user:{user_id}"))
    .bind(user_id)
    .bind(email)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The owner of a stored key digest, if Tollgate has it.
pub async fn key_owner(tx: &mut WriteTx, digest_hex: &str) -> anyhow::Result<Option<i64>> {
    Ok(
        sqlx::query_scalar(&tx.sql("SELECT user_id FROM api_keys WHERE key_hash = $1"))
            .bind(digest_hex)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

pub struct NewKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub digest_hex: &'a str,
    pub prefix: &'a str,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub allowed_models: &'a [String],
    pub allowed_ips: &'a [String],
    pub spend_cap: Option<i64>,
    pub now: i64,
}

pub async fn insert_key(tx: &mut WriteTx, k: &NewKey<'_>) -> anyhow::Result<()> {
    sqlx::query(&tx.sql(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix, status, expires_at, allowed_models, \
         allowed_ips, spend_cap, spent, reserved, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10)",
    ))
    .bind(k.user_id)
    .bind(k.name)
    .bind(k.digest_hex)
    .bind(k.prefix)
    .bind(if k.active { "active" } else { "disabled" })
    .bind(k.expires_at)
    .bind(serde_json::to_string(k.allowed_models)?)
    .bind(serde_json::to_string(k.allowed_ips)?)
    .bind(k.spend_cap)
    .bind(k.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn channel_id(tx: &mut WriteTx, name: &str) -> anyhow::Result<Option<i64>> {
    Ok(
        sqlx::query_scalar(&tx.sql("SELECT id FROM channels WHERE name = $1"))
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

pub struct NewChannel<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub base_url: &'a str,
    pub api_version: Option<&'a str>,
    pub api_key: &'a str,
    pub models: &'a [String],
    /// The user groups it serves (empty: every group).
    pub groups: &'a [String],
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    pub now: i64,
}

pub async fn insert_channel(tx: &mut WriteTx, c: &NewChannel<'_>) -> anyhow::Result<()> {
    sqlx::query(&tx.sql(
        "INSERT INTO channels (name, kind, base_url, api_version, api_key, models, user_groups, \
         priority, weight, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12)",
    ))
    .bind(c.name)
    .bind(c.kind)
    .bind(c.base_url)
    .bind(c.api_version)
    .bind(c.api_key)
    .bind(serde_json::to_string(c.models)?)
    .bind(serde_json::to_string(c.groups)?)
    .bind(c.priority)
    .bind(c.weight)
    .bind(i64::from(c.enabled))
    .bind(c.now)
    .bind(c.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The mapping of `model`, if any.
pub async fn mapping(tx: &mut WriteTx, model: &str) -> anyhow::Result<Option<Vec<String>>> {
    let t: Option<Text> =
        sqlx::query_scalar(&tx.sql("SELECT targets FROM model_mappings WHERE model = $1"))
            .bind(model)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(t.map(|t| serde_json::from_str(&t.0).unwrap_or_default()))
}

pub async fn insert_mapping(
    tx: &mut WriteTx,
    model: &str,
    targets: &[String],
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        &tx.sql("INSERT INTO model_mappings (model, targets, updated_at) VALUES ($1, $2, $3)"),
    )
    .bind(model)
    .bind(serde_json::to_string(targets)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The active price of `model` as (input, output, cached input, per request) units.
pub async fn active_price(tx: &mut WriteTx, model: &str) -> anyhow::Result<Option<[i64; 4]>> {
    let r = sqlx::query(&tx.sql(
        "SELECT input_per_1m, output_per_1m, cached_input_per_1m, per_request FROM prices \
         WHERE model = $1 AND active = 1",
    ))
    .bind(model)
    .fetch_optional(&mut **tx)
    .await?;
    r.map(|r| Ok([r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?]))
        .transpose()
}

/// A first price version of a model that has none active.
pub async fn insert_price(
    tx: &mut WriteTx,
    model: &str,
    p: [i64; 4],
    now: i64,
) -> anyhow::Result<()> {
    let version: i64 =
        sqlx::query_scalar(&tx.sql(
            "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM prices WHERE model = $1",
        ))
        .bind(model)
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(&tx.sql(
        "INSERT INTO prices (model, version, input_per_1m, output_per_1m, cached_input_per_1m, \
         per_request, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
    ))
    .bind(model)
    .bind(version)
    .bind(p[0])
    .bind(p[1])
    .bind(p[2])
    .bind(p[3])
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn group_multiplier(tx: &mut WriteTx, group: &str) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        &tx.sql("SELECT multiplier_milli FROM group_multipliers WHERE user_group = $1"),
    )
    .bind(group)
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn insert_group_multiplier(
    tx: &mut WriteTx,
    group: &str,
    milli: i64,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(&tx.sql(
        "INSERT INTO group_multipliers (user_group, multiplier_milli, updated_at) VALUES ($1, $2, $3)",
    ))
    .bind(group)
    .bind(milli)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn code_exists(tx: &mut WriteTx, digest_hex: &str) -> anyhow::Result<bool> {
    let id: Option<i64> =
        sqlx::query_scalar(&tx.sql("SELECT id FROM redeem_codes WHERE code_hash = $1"))
            .bind(digest_hex)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(id.is_some())
}

/// A batch of imported codes sharing a label, a value and an expiry (unix s).
pub async fn insert_codes(
    tx: &mut WriteTx,
    label: &str,
    value: i64,
    expires_at: Option<i64>,
    codes: &[(String, String)],
    now: i64,
) -> anyhow::Result<()> {
    let backend = tx.backend();
    let sql = tx.sql(
        "INSERT INTO redeem_batches (label, value, count, expires_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5) RETURNING id",
    );
    let q = sqlx::query(&sql)
        .bind(label)
        .bind(value)
        .bind(i64::try_from(codes.len())?)
        .bind(expires_at)
        .bind(now);
    let batch = Db::insert_id(backend, q, &mut **tx).await?;
    for (digest, prefix) in codes {
        sqlx::query(&tx.sql(
            "INSERT INTO redeem_codes (batch_id, code_hash, prefix, value, status, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, 'unused', $5, $6)",
        ))
        .bind(batch)
        .bind(digest)
        .bind(prefix)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn usage_exists(tx: &mut WriteTx, request_id: &str) -> anyhow::Result<bool> {
    let id: Option<i64> =
        sqlx::query_scalar(&tx.sql("SELECT id FROM usage_logs WHERE request_id = $1"))
            .bind(request_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(id.is_some())
}

pub struct ImportedCall<'a> {
    pub request_id: &'a str,
    pub user_id: i64,
    pub model: &'a str,
    pub channel_id: Option<i64>,
    pub stream: bool,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: i64,
    pub latency_ms: i64,
    pub created_at: i64,
}

/// A call from the source's log, with its hour's aggregate (key 0: the source's key is not
/// carried), marked by its kind `imported`.
pub async fn insert_call(tx: &mut WriteTx, c: &ImportedCall<'_>) -> anyhow::Result<()> {
    sqlx::query(&tx.sql(
        "INSERT INTO usage_logs (request_id, user_id, model, served_model, channel_id, attempts, stream, \
         prompt_tokens, completion_tokens, cost, usage_source, status, latency_ms, surface, upstream_kind, created_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, 'upstream', 200, $10, 'chat', 'imported', $11)",
    ))
    .bind(c.request_id)
    .bind(c.user_id)
    .bind(c.model)
    .bind(c.model)
    .bind(c.channel_id)
    .bind(i64::from(c.stream))
    .bind(c.prompt_tokens)
    .bind(c.completion_tokens)
    .bind(c.cost)
    .bind(c.latency_ms)
    .bind(c.created_at)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&tx.sql(
        "INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, prompt_tokens, \
         completion_tokens, cached_tokens, cost) VALUES ($1, $2, 0, $3, 1, 0, $4, $5, 0, $6) \
         ON CONFLICT (user_id, hour, key_id, model) DO UPDATE SET \
         requests = usage_hourly.requests + excluded.requests, \
         prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
         cost = usage_hourly.cost + excluded.cost",
    ))
    .bind(c.user_id)
    .bind(c.created_at - c.created_at % 3_600_000)
    .bind(c.model)
    .bind(c.prompt_tokens)
    .bind(c.completion_tokens)
    .bind(c.cost)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
