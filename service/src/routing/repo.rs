//! SQL for channels, model mappings and the channels' latest probes.

use super::{Channel, ChannelInput, ChannelView, Routing, Table, Upstream, client};
use crate::db::{Db, Text, is_unique_violation};
use crate::secret::SecretString;
use crate::{Error, now_ms};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use types::ChannelKind;

const COLUMNS: &str = "id, name, kind, base_url, api_version, max_tokens_field, stream_usage, api_key, models, priority, weight, connect_timeout_ms, \
                       first_byte_timeout_ms, answer_timeout_ms, idle_timeout_ms, enabled, user_groups";

struct Row {
    view: ChannelView,
    api_key: String,
    /// The stored kind is one this version knows.
    known_kind: bool,
}

fn row(r: &AnyRow) -> Result<Row, Error> {
    let Text(models) = r.try_get("models")?;
    let Text(groups) = r.try_get("user_groups")?;
    let api_key: String = r.try_get("api_key")?;
    let ms = |name: &str| -> Result<u64, Error> {
        Ok(u64::try_from(r.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    let kind: String = r.try_get("kind")?;
    Ok(Row {
        view: ChannelView {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            // Written only from the closed set; a kind this version does not know (a newer
            // version wrote it) is read as the default and left out of routing by `load`.
            kind: ChannelKind::parse(&kind).unwrap_or_default(),
            base_url: r.try_get("base_url")?,
            api_version: r.try_get("api_version")?,
            max_tokens_field: r
                .try_get::<Option<String>, _>("max_tokens_field")?
                .as_deref()
                .and_then(types::BoundField::parse),
            stream_usage: r.try_get::<i64, _>("stream_usage")? != 0,
            models: serde_json::from_str(&models).unwrap_or_default(),
            priority: r.try_get("priority")?,
            weight: u32::try_from(r.try_get::<i64, _>("weight")?)
                .unwrap_or(1)
                .max(1),
            connect_timeout_ms: ms("connect_timeout_ms")?,
            first_byte_timeout_ms: ms("first_byte_timeout_ms")?,
            answer_timeout_ms: ms("answer_timeout_ms")?,
            idle_timeout_ms: ms("idle_timeout_ms")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            has_api_key: !api_key.is_empty(),
            groups: serde_json::from_str(&groups).unwrap_or_default(),
        },
        api_key,
        known_kind: ChannelKind::parse(&kind).is_some(),
    })
}

/// Loads channels and mappings into a fresh routing table.
pub async fn load(db: &Db, routing: &Routing) -> Result<(), Error> {
    let sql = format!("SELECT {COLUMNS} FROM channels ORDER BY id");
    let rows = sqlx::query(&db.sql(&sql)).fetch_all(db.pool()).await?;
    let mut channels = Vec::with_capacity(rows.len());
    for r in &rows {
        let Row {
            view,
            api_key,
            known_kind,
        } = row(r)?;
        if !known_kind {
            tracing::error!(channel = %view.name, "channel not routed: its stored kind is unknown to this version");
            continue;
        }
        // Rows are checked when written; one that is not valid now (written by an older
        // version) is left out of routing, and says so.
        let upstream = match Upstream::new(
            view.kind,
            &view.base_url,
            &api_key,
            view.api_version.as_deref(),
            routing.allow_metadata,
        ) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(channel = %view.name, error = %e, "channel not routed: its stored address or key is invalid");
                continue;
            }
        };
        channels.push(Arc::new(Channel {
            id: view.id,
            name: view.name,
            kind: view.kind,
            wire: super::Wire {
                chat_bound: view
                    .max_tokens_field
                    .unwrap_or(view.kind.bound_field())
                    .as_str(),
                stream_usage: view.stream_usage,
            },
            upstream,
            models: view.models,
            groups: view.groups,
            priority: view.priority,
            weight: view.weight,
            first_byte_timeout: Duration::from_millis(view.first_byte_timeout_ms),
            answer_timeout: Duration::from_millis(view.answer_timeout_ms),
            idle_timeout: Duration::from_millis(view.idle_timeout_ms),
            enabled: view.enabled,
            client: client(Duration::from_millis(view.connect_timeout_ms))?,
            health: routing.health_of(view.id),
        }));
    }
    let mappings: Vec<(String, Text)> =
        sqlx::query_as(&db.sql("SELECT model, targets FROM model_mappings"))
            .fetch_all(db.pool())
            .await?;
    let mappings: HashMap<String, Vec<String>> = mappings
        .into_iter()
        .map(|(m, t)| (m, serde_json::from_str(&t.0).unwrap_or_default()))
        .collect();
    routing.install(Table { channels, mappings });
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<ChannelView>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM channels ORDER BY id");
    let rows = sqlx::query(&db.sql(&sql)).fetch_all(db.pool()).await?;
    rows.iter().map(|r| row(r).map(|r| r.view)).collect()
}

pub async fn get(db: &Db, id: i64) -> Result<Option<ChannelView>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM channels WHERE id = $1");
    let r = sqlx::query(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(r.as_ref().map(row).transpose()?.map(|r| r.view))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Creates a channel, or updates the one with the same name (`id` given: that one).
pub async fn upsert(db: &Db, id: Option<i64>, c: &ChannelInput) -> Result<i64, Error> {
    let now = now_ms();
    let models = serde_json::to_string(&c.models).map_err(anyhow::Error::from)?;
    let mut groups = c.groups.clone();
    groups.sort();
    groups.dedup();
    let groups = serde_json::to_string(&groups).map_err(anyhow::Error::from)?;
    let mut tx = db.begin_write().await?;
    let existing: Option<i64> = match id {
        Some(id) => {
            sqlx::query_scalar(&db.sql("SELECT id FROM channels WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => {
            sqlx::query_scalar(&db.sql("SELECT id FROM channels WHERE name = $1"))
                .bind(&c.name)
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    if id.is_some() && existing.is_none() {
        tx.rollback().await?;
        return Err(Error::NotFound("channel"));
    }
    // Both statements take the same parameters $1..$17; the update adds the id as $18, the
    // insert the time again (updated_at).
    let sql = match existing {
        Some(_) => {
            "UPDATE channels SET name = $1, base_url = $2, api_key = COALESCE($3, api_key), models = $4, \
             priority = $5, weight = $6, connect_timeout_ms = $7, first_byte_timeout_ms = $8, \
             idle_timeout_ms = $9, enabled = $10, updated_at = $11, kind = $12, api_version = $13, \
             max_tokens_field = $14, stream_usage = $15, answer_timeout_ms = $16, user_groups = $17 \
             WHERE id = $18"
        }
        None => {
            "INSERT INTO channels (name, base_url, api_key, models, priority, weight, connect_timeout_ms, \
             first_byte_timeout_ms, idle_timeout_ms, enabled, created_at, kind, api_version, \
             max_tokens_field, stream_usage, answer_timeout_ms, user_groups, updated_at) VALUES ($1, $2, \
             COALESCE($3, ''), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             RETURNING id"
        }
    };
    let sql = db.sql(sql);
    let q = sqlx::query(&sql)
        .bind(&c.name)
        .bind(&c.base_url)
        .bind(c.api_key.as_ref().map(SecretString::expose))
        .bind(&models)
        .bind(c.priority)
        .bind(i64::from(c.weight))
        .bind(to_i64(c.connect_timeout_ms))
        .bind(to_i64(c.first_byte_timeout_ms))
        .bind(to_i64(c.idle_timeout_ms))
        .bind(i64::from(c.enabled))
        .bind(now)
        .bind(c.kind.as_str())
        .bind(c.api_version.as_deref())
        .bind(c.max_tokens_field.map(types::BoundField::as_str))
        .bind(i64::from(c.stream_usage))
        .bind(to_i64(c.answer_timeout_ms))
        .bind(groups);
    let result = match existing {
        Some(id) => q.bind(id).execute(&mut *tx).await.map(|_| id),
        None => Db::insert_id(db.backend(), q.bind(now), &mut *tx).await,
    };
    let id = result.map_err(|e| {
        if is_unique_violation(&e) {
            Error::Conflict("channel name already exists")
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(id)
}

pub async fn delete(db: &Db, id: i64) -> Result<bool, Error> {
    Ok(db
        .write(sqlx::query(&db.sql("DELETE FROM channels WHERE id = $1")).bind(id))
        .await?
        == 1)
}

pub async fn mappings(db: &Db) -> Result<Vec<(String, Vec<String>)>, Error> {
    let rows: Vec<(String, Text)> =
        sqlx::query_as(&db.sql("SELECT model, targets FROM model_mappings ORDER BY model"))
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(m, t)| (m, serde_json::from_str(&t.0).unwrap_or_default()))
        .collect())
}

pub async fn set_mapping(db: &Db, model: &str, targets: &[String]) -> Result<(), Error> {
    let targets = serde_json::to_string(targets).map_err(anyhow::Error::from)?;
    db.write(
        sqlx::query(
            &db.sql("INSERT INTO model_mappings (model, targets, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (model) DO UPDATE SET targets = excluded.targets, updated_at = excluded.updated_at"),
        )
        .bind(model)
        .bind(targets)
        .bind(now_ms()),
    )
    .await?;
    Ok(())
}

pub async fn delete_mapping(db: &Db, model: &str) -> Result<bool, Error> {
    Ok(db
        .write(sqlx::query(&db.sql("DELETE FROM model_mappings WHERE model = $1")).bind(model))
        .await?
        == 1)
}

/// A cheap summary of channels, mappings and active prices: it changes whenever a row is added,
/// changed or removed (instances poll it to follow each other's admin changes). The sum of the
/// update times, not their maximum: a change written by an instance whose clock is behind still
/// moves it.
pub async fn fingerprint(db: &Db) -> Result<Vec<i64>, Error> {
    let mut out = Vec::with_capacity(6);
    for sql in [
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT), COUNT(*) FROM channels",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT), COUNT(*) FROM model_mappings",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT), COUNT(*) FROM group_multipliers",
        "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT), COUNT(*) FROM prices WHERE active = 1",
    ] {
        let (a, b): (i64, i64) = sqlx::query_as(&db.sql(sql)).fetch_one(db.pool()).await?;
        out.extend([a, b]);
    }
    Ok(out)
}

/// Stores a probe's verdict as the channel's latest, counting failures in a row.
pub async fn record_probe(db: &Db, t: &types::ChannelTest, at: i64) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(&db.sql(
            "INSERT INTO channel_probes (channel_id, at, ok, status, latency_ms, error, failures) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (channel_id) DO UPDATE SET at = excluded.at, ok = excluded.ok, \
             status = excluded.status, latency_ms = excluded.latency_ms, error = excluded.error, \
             failures = CASE WHEN excluded.ok = 1 THEN 0 ELSE channel_probes.failures + 1 END",
        ))
        .bind(t.channel_id)
        .bind(at)
        .bind(i64::from(t.ok))
        .bind(t.status.map(i64::from))
        .bind(i64::try_from(t.latency_ms).unwrap_or(i64::MAX))
        .bind(t.error.as_deref())
        .bind(i64::from(!t.ok)),
    )
    .await?;
    Ok(())
}

/// Probes stored after `after` (unix ms), by channel.
pub async fn probes(db: &Db, after: i64) -> Result<Vec<(i64, types::ChannelProbe)>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(
        "SELECT channel_id, at, ok, status, latency_ms, error, failures FROM channel_probes \
         WHERE at > $1",
    ))
    .bind(after)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("channel_id")?,
                types::ChannelProbe {
                    at: r.try_get("at")?,
                    ok: r.try_get::<i64, _>("ok")? != 0,
                    status: r
                        .try_get::<Option<i64>, _>("status")?
                        .and_then(|s| u16::try_from(s).ok()),
                    latency_ms: u64::try_from(r.try_get::<i64, _>("latency_ms")?).unwrap_or(0),
                    error: r.try_get("error")?,
                    failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                },
            ))
        })
        .collect()
}
