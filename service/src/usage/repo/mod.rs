//! SQL for usage rows: one batch per transaction, together with the hourly aggregates it adds
//! to and the keys' `last_used_at`, and the model health minutes; the reads of the call logs
//! and usage are in [`read`].

mod read;

pub(crate) use read::{
    Filter, Scope, StatusFilter, calls, count_calls, daily, daily_costs, ledger, spent,
};

use super::record::{BATCH, UsageRecord};
use crate::db::{Backend, Db};
use crate::now_ms;
use std::collections::BTreeMap;
use std::sync::LazyLock;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns of a usage row, in the order [`Row`] serializes them and SQLite binds them;
/// `true` marks an integer.
const COLUMNS: [(&str, bool); 30] = [
    ("request_id", false),
    ("user_id", true),
    ("key_id", true),
    ("key_prefix", false),
    ("model", false),
    ("served_model", false),
    ("channel_id", true),
    ("attempts", true),
    ("stream", true),
    ("prompt_tokens", true),
    ("completion_tokens", true),
    ("cached_tokens", true),
    ("cache_write_5m_tokens", true),
    ("cache_write_1h_tokens", true),
    ("reasoning_tokens", true),
    ("image_input_tokens", true),
    ("image_output_tokens", true),
    ("audio_input_tokens", true),
    ("audio_output_tokens", true),
    ("surface", false),
    ("upstream_kind", false),
    ("cost", true),
    ("price_version", true),
    ("usage_source", false),
    ("status", true),
    ("error_class", false),
    ("latency_ms", true),
    ("ttft_ms", true),
    ("client_ip", false),
    ("created_at", true),
];

/// One row as stored: each field a column of [`COLUMNS`], in that order.
struct Row<'a> {
    request_id: &'a str,
    user_id: i64,
    key_id: Option<i64>,
    key_prefix: Option<&'a str>,
    model: &'a str,
    served_model: Option<&'a str>,
    channel_id: Option<i64>,
    attempts: i64,
    stream: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    detail: [i64; 7],
    surface: &'a str,
    upstream_kind: Option<&'static str>,
    cost: i64,
    price_version: Option<i64>,
    usage_source: &'a str,
    status: i64,
    error_class: Option<&'static str>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    client_ip: Option<&'a str>,
    created_at: i64,
}

/// For PostgreSQL a row travels as a JSON array in [`COLUMNS`] order (half the bytes of an
/// object, serialized on the gateway's event loop); the statement reads it by position.
impl serde::Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple as _;
        let mut t = s.serialize_tuple(COLUMNS.len())?;
        t.serialize_element(self.request_id)?;
        t.serialize_element(&self.user_id)?;
        t.serialize_element(&self.key_id)?;
        t.serialize_element(&self.key_prefix)?;
        t.serialize_element(self.model)?;
        t.serialize_element(&self.served_model)?;
        t.serialize_element(&self.channel_id)?;
        t.serialize_element(&self.attempts)?;
        t.serialize_element(&self.stream)?;
        t.serialize_element(&self.prompt_tokens)?;
        t.serialize_element(&self.completion_tokens)?;
        t.serialize_element(&self.cached_tokens)?;
        for n in &self.detail {
            t.serialize_element(n)?;
        }
        t.serialize_element(self.surface)?;
        t.serialize_element(&self.upstream_kind)?;
        t.serialize_element(&self.cost)?;
        t.serialize_element(&self.price_version)?;
        t.serialize_element(self.usage_source)?;
        t.serialize_element(&self.status)?;
        t.serialize_element(&self.error_class)?;
        t.serialize_element(&self.latency_ms)?;
        t.serialize_element(&self.ttft_ms)?;
        t.serialize_element(&self.client_ip)?;
        t.serialize_element(&self.created_at)?;
        t.end()
    }
}

impl<'a> From<&'a UsageRecord> for Row<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        Row {
            request_id: &r.request_id,
            user_id: r.user_id,
            key_id: r.key_id,
            key_prefix: r.key_prefix.as_deref(),
            model: &r.model,
            served_model: r.served_model.as_deref(),
            channel_id: r.channel_id,
            attempts: i64::from(r.attempts),
            stream: i64::from(r.stream),
            prompt_tokens: i(r.prompt_tokens),
            completion_tokens: i(r.completion_tokens),
            cached_tokens: i(r.cached_tokens),
            detail: r.detail.counts().map(i),
            surface: r.surface,
            upstream_kind: r.upstream_kind.map(types::ChannelKind::as_str),
            cost: r.cost,
            price_version: r.price_version,
            usage_source: r.usage_source.as_str(),
            status: i64::from(r.status),
            error_class: r.error_class.map(types::ErrorClass::as_str),
            latency_ms: i(r.latency_ms),
            ttft_ms: r.ttft_ms.map(i),
            client_ip: r.client_ip.as_deref(),
            created_at: r.created_at,
        }
    }
}

/// The columns' names, comma-separated.
fn column_list() -> String {
    COLUMNS.map(|(name, _)| name).join(", ")
}

/// PostgreSQL's batch insert: the rows travel as one JSON array of arrays in one parameter,
/// which the server unpacks. Encoding a batch as thousands of bound values kept the gateway's
/// event loop busy for about 0.6 ms per batch (up to 5 ms), delaying every request on that
/// core; serializing it is a quarter of that. One statement for any batch size, prepared once.
/// The parameter is read as `jsonb`, parsed once: as `json`, each of a row's 21 `->>` parsed the
/// row's text again, and PostgreSQL spent about 40% more CPU per request.
static POSTGRES_INSERT: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(n, (_, integer))| {
            if *integer {
                format!("(e->>{n})::bigint")
            } else {
                format!("e->>{n}")
            }
        })
        .collect();
    format!(
        "INSERT INTO usage_logs ({}) SELECT {} FROM jsonb_array_elements($1::jsonb) AS e",
        column_list(),
        values.join(", ")
    )
});

/// Inserts the rows and marks their keys used, in one transaction: a retry after a failure
/// never writes a row twice.
pub(super) async fn insert(db: &Db, rows: &[UsageRecord]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    match db.backend() {
        Backend::Postgres => {
            let json = serde_json::to_string(&rows.iter().map(Row::from).collect::<Vec<_>>())
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(&POSTGRES_INSERT)
                .bind(json)
                .execute(&mut *tx)
                .await?;
        }
        // SQLite binds values natively on its own thread, which is cheaper than unpacking JSON
        // there (its ->> parses the row again for every column).
        // Statements of a few sizes only (powers of two): each pooled connection caches the
        // statements it prepared, and one per batch size grew memory under load.
        // MySQL: the same, its placeholders anonymous too.
        Backend::Sqlite | Backend::Mysql => {
            for chunk in crate::db::pow2_chunks(rows, BATCH) {
                let sql = format!(
                    "INSERT INTO usage_logs ({}) VALUES {}",
                    column_list(),
                    db.placeholders(chunk.len(), COLUMNS.len(), 0)
                );
                let sql = db.sql(&sql);
                let mut q = sqlx::query(&sql);
                for r in chunk.iter().map(Row::from) {
                    q = q
                        .bind(r.request_id)
                        .bind(r.user_id)
                        .bind(r.key_id)
                        .bind(r.key_prefix)
                        .bind(r.model)
                        .bind(r.served_model)
                        .bind(r.channel_id)
                        .bind(r.attempts)
                        .bind(r.stream)
                        .bind(r.prompt_tokens)
                        .bind(r.completion_tokens)
                        .bind(r.cached_tokens);
                    for n in r.detail {
                        q = q.bind(n);
                    }
                    q = q
                        .bind(r.surface)
                        .bind(r.upstream_kind)
                        .bind(r.cost)
                        .bind(r.price_version)
                        .bind(r.usage_source)
                        .bind(r.status)
                        .bind(r.error_class)
                        .bind(r.latency_ms)
                        .bind(r.ttft_ms)
                        .bind(r.client_ip)
                        .bind(r.created_at);
                }
                q.execute(&mut *tx).await?;
            }
        }
    }
    add_to_hourly(db, &mut tx, rows).await?;
    add_to_health(db, &mut tx, rows).await?;
    let mut keys: Vec<i64> = rows.iter().filter_map(|r| r.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    crate::keys::repo::touch(db, &mut tx, &keys, now_ms()).await?;
    tx.commit().await
}

/// An hour's sums for one user, key and model.
#[derive(Default)]
struct Sums {
    requests: i64,
    failures: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost: i64,
}

/// The unix ms at which the hour holding `ms` starts.
pub(super) fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(3_600_000)
}

/// Adds a batch to `usage_hourly`, in the batch's transaction. The groups go in key order, so
/// that two instances adding to the same rows lock them in one order (no deadlock).
async fn add_to_hourly(
    db: &Db,
    tx: &mut crate::db::WriteTx,
    rows: &[UsageRecord],
) -> Result<(), sqlx::Error> {
    let mut groups: BTreeMap<(i64, i64, i64, &str), Sums> = BTreeMap::new();
    for r in rows {
        let s = groups
            .entry((
                r.user_id,
                hour_of(r.created_at),
                r.key_id.unwrap_or(0),
                &r.model,
            ))
            .or_default();
        s.requests += 1;
        s.failures += i64::from(r.status >= 400);
        s.prompt_tokens = s.prompt_tokens.saturating_add(i(r.prompt_tokens));
        s.completion_tokens = s.completion_tokens.saturating_add(i(r.completion_tokens));
        s.cached_tokens = s.cached_tokens.saturating_add(i(r.cached_tokens));
        s.cache_write_tokens = s
            .cache_write_tokens
            .saturating_add(i(r.detail.cache_write()));
        s.reasoning_tokens = s.reasoning_tokens.saturating_add(i(r.detail.reasoning));
        s.cost = s.cost.saturating_add(r.cost);
    }
    let groups: Vec<_> = groups.into_iter().collect();
    for chunk in crate::db::pow2_chunks(&groups, BATCH) {
        let sql = format!(
            "INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, \
             prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, \
             reasoning_tokens, cost) VALUES {} \
             ON CONFLICT (user_id, hour, key_id, model) DO UPDATE SET \
             requests = usage_hourly.requests + excluded.requests, \
             failures = usage_hourly.failures + excluded.failures, \
             prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
             cached_tokens = usage_hourly.cached_tokens + excluded.cached_tokens, \
             cache_write_tokens = usage_hourly.cache_write_tokens + excluded.cache_write_tokens, \
             reasoning_tokens = usage_hourly.reasoning_tokens + excluded.reasoning_tokens, \
             cost = usage_hourly.cost + excluded.cost",
            db.placeholders(chunk.len(), 12, 0)
        );
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql);
        for ((user, hour, key, model), s) in chunk {
            q = q
                .bind(*user)
                .bind(*hour)
                .bind(*key)
                .bind(*model)
                .bind(s.requests)
                .bind(s.failures)
                .bind(s.prompt_tokens)
                .bind(s.completion_tokens)
                .bind(s.cached_tokens)
                .bind(s.cache_write_tokens)
                .bind(s.reasoning_tokens)
                .bind(s.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How a call counts for its model's health: `None` when it says nothing about the model
/// (refused for the client's own fault, or ended by the client or a shutdown), else whether
/// it failed on the upstream side (a 5xx answer, or a stream the upstream cut).
pub(crate) fn health_outcome(status: u16, class: Option<types::ErrorClass>) -> Option<bool> {
    use types::ErrorClass;
    match class {
        Some(ErrorClass::ClientCancelled | ErrorClass::ServerShutdown) => None,
        Some(ErrorClass::UpstreamCut) => Some(true),
        _ if (400..500).contains(&status) => None,
        _ => Some(status >= 500),
    }
}

/// A minute's sums for one model.
#[derive(Default)]
struct Health {
    requests: i64,
    failures: i64,
    latency_ms: i64,
    ttft_ms: i64,
    ttft_count: i64,
}

/// The unix ms at which the minute holding `ms` starts.
pub(crate) fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

/// Adds a batch to `model_health`, in the batch's transaction, in key order (see
/// [`add_to_hourly`]). Latency sums cover the calls that did not fail.
async fn add_to_health(
    db: &Db,
    tx: &mut crate::db::WriteTx,
    rows: &[UsageRecord],
) -> Result<(), sqlx::Error> {
    let mut groups: BTreeMap<(&str, i64), Health> = BTreeMap::new();
    for r in rows {
        let Some(failed) = health_outcome(r.status, r.error_class) else {
            continue;
        };
        let h = groups
            .entry((&r.model, minute_of(r.created_at)))
            .or_default();
        h.requests += 1;
        if failed {
            h.failures += 1;
            continue;
        }
        h.latency_ms = h.latency_ms.saturating_add(i(r.latency_ms));
        if let Some(t) = r.ttft_ms {
            h.ttft_ms = h.ttft_ms.saturating_add(i(t));
            h.ttft_count += 1;
        }
    }
    let groups: Vec<_> = groups.into_iter().collect();
    for chunk in crate::db::pow2_chunks(&groups, BATCH) {
        let sql = format!(
            "INSERT INTO model_health (model, minute, requests, failures, latency_ms, ttft_ms, \
             ttft_count) VALUES {} ON CONFLICT (model, minute) DO UPDATE SET \
             requests = model_health.requests + excluded.requests, \
             failures = model_health.failures + excluded.failures, \
             latency_ms = model_health.latency_ms + excluded.latency_ms, \
             ttft_ms = model_health.ttft_ms + excluded.ttft_ms, \
             ttft_count = model_health.ttft_count + excluded.ttft_count",
            db.placeholders(chunk.len(), 7, 0)
        );
        let sql = db.sql(&sql);
        let mut q = sqlx::query(&sql);
        for ((model, minute), h) in chunk {
            q = q
                .bind(*model)
                .bind(*minute)
                .bind(h.requests)
                .bind(h.failures)
                .bind(h.latency_ms)
                .bind(h.ttft_ms)
                .bind(h.ttft_count);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A model's health sums over `[from, to)`, bucketed by `bucket_ms`, oldest first.
pub(crate) async fn health(
    db: &Db,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> Result<Vec<(String, i64, [i64; 5])>, sqlx::Error> {
    use sqlx::Row as _;
    let sql = String::from(
        "SELECT model, minute - minute % $1 AS bucket, CAST(SUM(requests) AS BIGINT) AS requests, \
         CAST(SUM(failures) AS BIGINT) AS failures, CAST(SUM(latency_ms) AS BIGINT) AS latency_ms, \
         CAST(SUM(ttft_ms) AS BIGINT) AS ttft_ms, CAST(SUM(ttft_count) AS BIGINT) AS ttft_count \
         FROM model_health WHERE minute >= $2 AND minute < $3 \
         GROUP BY model, bucket ORDER BY model, bucket",
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(bucket_ms)
        .bind(from)
        .bind(to)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("model")?,
                r.try_get("bucket")?,
                [
                    r.try_get("requests")?,
                    r.try_get("failures")?,
                    r.try_get("latency_ms")?,
                    r.try_get("ttft_ms")?,
                    r.try_get("ttft_count")?,
                ],
            ))
        })
        .collect()
}

/// Removes the health minutes older than `before`; how many went.
pub(crate) async fn purge_health(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM model_health WHERE minute < $1"))
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use types::ErrorClass;
    use types::ErrorKind;

    #[test]
    fn a_calls_health_outcome_blames_the_upstream_only() {
        assert_eq!(health_outcome(200, None), Some(false));
        assert_eq!(
            health_outcome(200, Some(ErrorClass::UpstreamCut)),
            Some(true)
        );
        assert_eq!(
            health_outcome(502, Some(ErrorClass::Failed(ErrorKind::BadGateway))),
            Some(true)
        );
        assert_eq!(health_outcome(503, None), Some(true));
        assert_eq!(
            health_outcome(400, Some(ErrorClass::Failed(ErrorKind::Invalid))),
            None
        );
        assert_eq!(health_outcome(429, None), None);
        assert_eq!(health_outcome(200, Some(ErrorClass::ClientCancelled)), None);
        assert_eq!(health_outcome(200, Some(ErrorClass::ServerShutdown)), None);
        assert_eq!(minute_of(119_999), 60_000);
        assert_eq!(minute_of(-1), -60_000);
    }
}
