//! SQL for usage rows: one batch per transaction, together with the hourly aggregates it adds
//! to and the keys' `last_used_at`; and the reads of the call logs and usage.

use super::{BATCH, UsageRecord};
use crate::db::{Backend, Bind, Db, Where};
use crate::now_ms;
use std::collections::BTreeMap;
use std::sync::LazyLock;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns of a usage row, in the order [`Row`] serializes them and SQLite binds them;
/// `true` marks an integer.
const COLUMNS: [(&str, bool); 21] = [
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
            cost: r.cost,
            price_version: r.price_version,
            usage_source: r.usage_source.as_str(),
            status: i64::from(r.status),
            error_class: r.error_class.map(super::ErrorClass::as_str),
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
        Backend::Sqlite => {
            for chunk in crate::db::pow2_chunks(rows, BATCH) {
                let sql = format!(
                    "INSERT INTO usage_logs ({}) VALUES {}",
                    column_list(),
                    db.placeholders(chunk.len(), COLUMNS.len(), 0)
                );
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
                        .bind(r.cached_tokens)
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
        s.cost = s.cost.saturating_add(r.cost);
    }
    let groups: Vec<_> = groups.into_iter().collect();
    for chunk in crate::db::pow2_chunks(&groups, BATCH) {
        let sql = format!(
            "INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, \
             prompt_tokens, completion_tokens, cached_tokens, cost) VALUES {} \
             ON CONFLICT (user_id, hour, key_id, model) DO UPDATE SET \
             requests = usage_hourly.requests + excluded.requests, \
             failures = usage_hourly.failures + excluded.failures, \
             prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
             cached_tokens = usage_hourly.cached_tokens + excluded.cached_tokens, \
             cost = usage_hourly.cost + excluded.cost",
            db.placeholders(chunk.len(), 10, 0)
        );
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
                .bind(s.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How a call counts for its model's health: `None` when it says nothing about the model
/// (refused for the client's own fault, or ended by the client or a shutdown), else whether
/// it failed on the upstream side (a 5xx answer, or a stream the upstream cut).
pub(crate) fn health_outcome(status: u16, class: Option<super::ErrorClass>) -> Option<bool> {
    use super::ErrorClass;
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
    let rows = sqlx::query(&sql)
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
    Ok(sqlx::query("DELETE FROM model_health WHERE minute < $1")
        .bind(before)
        .execute(db.pool())
        .await?
        .rows_affected())
}

/// Whose calls a read covers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope {
    User(i64),
    Everyone,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum StatusFilter {
    /// Answered below 400.
    Success,
    /// Answered 400 or above.
    Error,
    Code(i64),
}

/// A call-log filter, parsed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub model: Option<String>,
    pub status: Option<StatusFilter>,
    /// Unix ms, from inclusive, to exclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub key_id: Option<i64>,
}

/// Limits a WHERE clause to one user's rows, or none.
fn limit_to(w: &mut Where<'_>, scope: Scope) {
    if let Scope::User(u) = scope {
        w.and("user_id", "=", Bind::Int(u));
    }
}

/// The raw rows' conditions of a filter (model, key, status, time).
fn raw_conditions(w: &mut Where<'_>, scope: Scope, f: &Filter, from: Option<i64>, to: Option<i64>) {
    limit_to(w, scope);
    if let Some(m) = &f.model {
        w.and("model", "=", Bind::Text(m.clone()));
    }
    if let Some(k) = f.key_id {
        w.and("key_id", "=", Bind::Int(k));
    }
    match f.status {
        None => {}
        Some(StatusFilter::Success) => w.raw("status < 400"),
        Some(StatusFilter::Error) => w.raw("status >= 400"),
        Some(StatusFilter::Code(c)) => w.and("status", "=", Bind::Int(c)),
    }
    if let Some(t) = from {
        w.and("created_at", ">=", Bind::Int(t));
    }
    if let Some(t) = to {
        w.and("created_at", "<", Bind::Int(t));
    }
}

const CALL_COLUMNS: &str = "id, request_id, user_id, key_id, key_prefix, model, served_model, channel_id, \
    attempts, stream, prompt_tokens, completion_tokens, cached_tokens, cost, price_version, usage_source, \
    status, error_class, latency_ms, ttft_ms, created_at";

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn call_row(r: &sqlx::any::AnyRow) -> Result<types::UsageRow, sqlx::Error> {
    use sqlx::Row as _;
    let source: String = r.try_get("usage_source")?;
    let class: Option<String> = r.try_get("error_class")?;
    Ok(types::UsageRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        user_id: r.try_get("user_id")?,
        key_id: r.try_get("key_id")?,
        key_prefix: r.try_get("key_prefix")?,
        model: r.try_get("model")?,
        served_model: r.try_get("served_model")?,
        channel_id: r.try_get("channel_id")?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        stream: r.try_get::<i64, _>("stream")? != 0,
        prompt_tokens: u(r.try_get("prompt_tokens")?),
        completion_tokens: u(r.try_get("completion_tokens")?),
        cached_tokens: u(r.try_get("cached_tokens")?),
        cost: types::Credits::from_units(r.try_get("cost")?),
        price_version: r.try_get("price_version")?,
        usage_source: super::UsageSource::parse(&source).unwrap_or_default(),
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        error_class: class.as_deref().and_then(super::ErrorClass::parse),
        latency_ms: u(r.try_get("latency_ms")?),
        ttft_ms: r.try_get::<Option<i64>, _>("ttft_ms")?.map(u),
        created_at: r.try_get("created_at")?,
    })
}

/// Calls newest first (by time, then id): after the keyset position `after` when given, else
/// skipping `offset`.
pub(crate) async fn calls(
    db: &Db,
    scope: Scope,
    f: &Filter,
    after: Option<(i64, i64)>,
    limit: i64,
    offset: i64,
) -> Result<Vec<types::UsageRow>, sqlx::Error> {
    let mut w = Where::new(db);
    raw_conditions(&mut w, scope, f, f.from_ms, f.to_ms);
    if let Some((t, id)) = after {
        let pt = w.param(Bind::Int(t));
        let pid = w.param(Bind::Int(id));
        w.raw(&format!("(created_at, id) < ({pt}, {pid})"));
    }
    let pl = w.param(Bind::Int(limit));
    let po = w.param(Bind::Int(offset));
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM usage_logs{} ORDER BY created_at DESC, id DESC LIMIT {pl} OFFSET {po}",
        w.sql()
    );
    let rows = sqlx::query_with(&sql, w.args()?)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(call_row).collect()
}

async fn count_raw(
    db: &Db,
    scope: Scope,
    f: &Filter,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let mut w = Where::new(db);
    raw_conditions(&mut w, scope, f, from, to);
    let sql = format!("SELECT COUNT(*) FROM usage_logs{}", w.sql());
    sqlx::query_scalar_with(&sql, w.args()?)
        .fetch_one(db.pool())
        .await
}

/// How many calls a filter matches. Whole hours are read from the hourly aggregates (exact:
/// they are written with the rows), and only the partial hours at the edges of a time range
/// from the rows, so the count stays fast however many rows there are. A filter on one status
/// code counts rows.
pub(crate) async fn count_calls(db: &Db, scope: Scope, f: &Filter) -> Result<u64, sqlx::Error> {
    let column = match f.status {
        Some(StatusFilter::Code(_)) => {
            return count_raw(db, scope, f, f.from_ms, f.to_ms).await.map(u);
        }
        None => "requests",
        Some(StatusFilter::Success) => "requests - failures",
        Some(StatusFilter::Error) => "failures",
    };
    let ceil_hour = |t: i64| hour_of(t + 3_599_999);
    let first = f.from_ms.map(ceil_hour);
    let last = f.to_ms.map(hour_of);
    if let (Some(a), Some(b)) = (first, last)
        && a >= b
    {
        return count_raw(db, scope, f, f.from_ms, f.to_ms).await.map(u);
    }
    let mut w = Where::new(db);
    limit_to(&mut w, scope);
    if let Some(m) = &f.model {
        w.and("model", "=", Bind::Text(m.clone()));
    }
    if let Some(k) = f.key_id {
        w.and("key_id", "=", Bind::Int(k));
    }
    if let Some(a) = first {
        w.and("hour", ">=", Bind::Int(a));
    }
    if let Some(b) = last {
        w.and("hour", "<", Bind::Int(b));
    }
    let sql = format!(
        "SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM usage_hourly{}",
        w.sql()
    );
    let mut total: i64 = sqlx::query_scalar_with(&sql, w.args()?)
        .fetch_one(db.pool())
        .await?;
    if let (Some(from), Some(a)) = (f.from_ms, first)
        && from < a
    {
        total += count_raw(db, scope, f, Some(from), Some(a)).await?;
    }
    if let (Some(to), Some(b)) = (f.to_ms, last)
        && b < to
    {
        total += count_raw(db, scope, f, Some(b), Some(to)).await?;
    }
    Ok(u(total))
}

/// A user's usage per day (days start at UTC + `offset_ms`) and model or key, over
/// `[from, to)` (unix ms of hours).
pub(crate) async fn daily(
    db: &Db,
    user_id: i64,
    from: i64,
    to: i64,
    offset_ms: i64,
    by_key: bool,
) -> Result<Vec<types::UsagePoint>, sqlx::Error> {
    use sqlx::Row as _;
    let group = if by_key { "key_id" } else { "model" };
    let sql = format!(
        "SELECT (hour + $1) - ((hour + $1) % 86400000) AS day, {group} AS grp, \
         CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(failures) AS BIGINT) AS failures, \
         CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
         CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens, CAST(SUM(cost) AS BIGINT) AS cost \
         FROM usage_hourly WHERE user_id = $2 AND hour >= $3 AND hour < $4 \
         GROUP BY (hour + $1) - ((hour + $1) % 86400000), {group} ORDER BY day, grp"
    );
    let rows = sqlx::query(&sql)
        .bind(offset_ms)
        .bind(user_id)
        .bind(from)
        .bind(to)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let day: i64 = r.try_get("day")?;
        let (model, key_id) = if by_key {
            (None, Some(r.try_get::<i64, _>("grp")?))
        } else {
            (Some(r.try_get::<String, _>("grp")?), None)
        };
        out.push(types::UsagePoint {
            day: types::date::format_day(day.div_euclid(86_400_000)),
            model,
            key_id,
            requests: u(r.try_get("requests")?),
            failures: u(r.try_get("failures")?),
            prompt_tokens: u(r.try_get("prompt_tokens")?),
            completion_tokens: u(r.try_get("completion_tokens")?),
            cached_tokens: u(r.try_get("cached_tokens")?),
            cost: types::Credits::from_units(r.try_get("cost")?),
        });
    }
    Ok(out)
}

/// What a user (or one of their keys) spent over `[from, to)` (unix ms, hour-aligned; open
/// ends when `None`), from the aggregates.
pub(crate) async fn spent(
    db: &Db,
    user_id: i64,
    key_id: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let mut w = Where::new(db);
    limit_to(&mut w, Scope::User(user_id));
    if let Some(k) = key_id {
        w.and("key_id", "=", Bind::Int(k));
    }
    if let Some(a) = from {
        w.and("hour", ">=", Bind::Int(a));
    }
    if let Some(b) = to {
        w.and("hour", "<", Bind::Int(b));
    }
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_hourly{}",
        w.sql()
    );
    sqlx::query_scalar_with(&sql, w.args()?)
        .fetch_one(db.pool())
        .await
}

/// Cost per UTC day and model over `[from, to)`, for the billing usage endpoint.
pub(crate) async fn daily_costs(
    db: &Db,
    user_id: i64,
    key_id: Option<i64>,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let mut w = Where::new(db);
    limit_to(&mut w, Scope::User(user_id));
    if let Some(k) = key_id {
        w.and("key_id", "=", Bind::Int(k));
    }
    w.and("hour", ">=", Bind::Int(from));
    w.and("hour", "<", Bind::Int(to));
    let sql = format!(
        "SELECT hour - (hour % 86400000) AS day, model, CAST(SUM(cost) AS BIGINT) AS cost \
         FROM usage_hourly{} GROUP BY hour - (hour % 86400000), model ORDER BY day, model",
        w.sql()
    );
    sqlx::query_as_with(&sql, w.args()?)
        .fetch_all(db.pool())
        .await
}

/// A user's ledger rows below id `before`, newest first.
pub(crate) async fn ledger(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<types::LedgerRow>, sqlx::Error> {
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT id, user_id, key_id, kind, amount, balance_after, reference, reason, created_at \
         FROM ledger WHERE user_id = $1 AND id < $2 AND amount <> 0 ORDER BY id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(types::LedgerRow {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            key_id: r.try_get("key_id")?,
            kind: r.try_get("kind")?,
            amount: types::Credits::from_units(r.try_get("amount")?),
            balance_after: types::Credits::from_units(r.try_get("balance_after")?),
            reference: r.try_get("reference")?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::ErrorClass;
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
