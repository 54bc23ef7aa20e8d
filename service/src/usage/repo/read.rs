//! The reads of usage rows and their aggregates: call logs (filtered, keyset-paged, counted),
//! daily usage, spend, and the ledger.

use super::hour_of;
use crate::db::{Bind, Db, Where};

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
    attempts, stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_5m_tokens, \
    cache_write_1h_tokens, reasoning_tokens, image_input_tokens, image_output_tokens, \
    audio_input_tokens, audio_output_tokens, surface, upstream_kind, cost, price_version, \
    usage_source, status, error_class, latency_ms, ttft_ms, created_at";

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
        cache_write_5m_tokens: u(r.try_get("cache_write_5m_tokens")?),
        cache_write_1h_tokens: u(r.try_get("cache_write_1h_tokens")?),
        reasoning_tokens: u(r.try_get("reasoning_tokens")?),
        image_input_tokens: u(r.try_get("image_input_tokens")?),
        image_output_tokens: u(r.try_get("image_output_tokens")?),
        audio_input_tokens: u(r.try_get("audio_input_tokens")?),
        audio_output_tokens: u(r.try_get("audio_output_tokens")?),
        surface: r.try_get("surface")?,
        upstream_kind: r.try_get("upstream_kind")?,
        cost: types::Credits::from_units(r.try_get("cost")?),
        price_version: r.try_get("price_version")?,
        usage_source: types::UsageSource::parse(&source).unwrap_or_default(),
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        error_class: class.as_deref().and_then(types::ErrorClass::parse),
        latency_ms: u(r.try_get("latency_ms")?),
        ttft_ms: r.try_get::<Option<i64>, _>("ttft_ms")?.map(u),
        created_at: r.try_get("created_at")?,
    })
}

/// On MySQL and MariaDB, the index that reads a page of calls in their order, where one does:
/// their cost model takes `ref` on `user_id` alone over the range on `(user_id, created_at,
/// id)` and then reads every newer row of the user to skip it, so that each page of an export
/// cost more than the one before (60 to 100 ms a page at 200,000 rows against 11 ms). A status
/// filter is left to the planner (its indexes there have the status before the time).
fn order_index(db: &Db, scope: Scope, f: &Filter) -> &'static str {
    if db.backend() != crate::db::Backend::Mysql || f.status.is_some() {
        return "";
    }
    match (scope, &f.model) {
        (Scope::User(_), None) => " FORCE INDEX (usage_logs_user_time)",
        (Scope::User(_), Some(_)) => " FORCE INDEX (usage_logs_user_model)",
        (Scope::Everyone, _) => " FORCE INDEX (usage_logs_time)",
    }
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
        // Not the row comparison `(created_at, id) < (t, id)`: MySQL and MariaDB scan the
        // index from its start for that, which makes a long export quadratic. `created_at <= t`
        // is a range on every engine; only the rows of that one millisecond are filtered.
        let upto = w.param(Bind::Int(t));
        let before = w.param(Bind::Int(t));
        let pid = w.param(Bind::Int(id));
        w.raw(&format!(
            "created_at <= {upto} AND (created_at < {before} OR id < {pid})"
        ));
    }
    let pl = w.param(Bind::Int(limit));
    let po = w.param(Bind::Int(offset));
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM usage_logs{}{} ORDER BY created_at DESC, id DESC LIMIT {pl} OFFSET {po}",
        order_index(db, scope, f),
        w.sql()
    );
    let rows = sqlx::query_with(&db.sql(&sql), w.args()?)
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
    sqlx::query_scalar_with(&db.sql(&sql), w.args()?)
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
    let mut total: i64 = sqlx::query_scalar_with(&db.sql(&sql), w.args()?)
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
        "SELECT shifted - (shifted % 86400000) AS day, grp, \
         CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(failures) AS BIGINT) AS failures, \
         CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
         CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens, \
         CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
         CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens, \
         CAST(SUM(cost) AS BIGINT) AS cost \
         FROM (SELECT hour + $1 AS shifted, {group} AS grp, requests, failures, prompt_tokens, \
         completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost \
         FROM usage_hourly WHERE user_id = $2 AND hour >= $3 AND hour < $4) t \
         GROUP BY shifted - (shifted % 86400000), grp ORDER BY day, grp"
    );
    let rows = sqlx::query(&db.sql(&sql))
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
            cache_write_tokens: u(r.try_get("cache_write_tokens")?),
            reasoning_tokens: u(r.try_get("reasoning_tokens")?),
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
    sqlx::query_scalar_with(&db.sql(&sql), w.args()?)
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
    sqlx::query_as_with(&db.sql(&sql), w.args()?)
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
    let rows = sqlx::query(&db.sql(
        "SELECT id, user_id, key_id, kind, amount, balance_after, reference, reason, created_at \
         FROM ledger WHERE user_id = $1 AND id < $2 AND amount <> 0 ORDER BY id DESC LIMIT $3",
    ))
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
