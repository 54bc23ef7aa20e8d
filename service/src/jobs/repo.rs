//! The jobs' SQL: leases and runs (judged by the database's clock, like the credit leases),
//! the usage rows retention archives and deletes, and the SQLite copy.

use crate::db::{Db, Text};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use types::{JobOutcome, JobRun};

/// One lease row per job (idempotent).
pub async fn seed(db: &Db, jobs: &[&str]) -> Result<(), sqlx::Error> {
    for job in jobs {
        db.write(
            sqlx::query(
                &db.sql("INSERT INTO job_leases (job) VALUES ($1) ON CONFLICT (job) DO NOTHING"),
            )
            .bind(*job),
        )
        .await?;
    }
    Ok(())
}

/// Takes the job's lease for `holder` when nobody holds it (or the holder's lease expired) and,
/// for a scheduled run, when `tick` is later than the last tick run; advances `last_tick`.
pub async fn claim(
    db: &Db,
    job: &str,
    holder: &str,
    tick: i64,
    manual: bool,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let now = db.now_sql();
    let tick_rule = if manual { "" } else { "AND last_tick < $6" };
    let sql = format!(
        "UPDATE job_leases SET holder = $1, expires_at = {now} + $2, \
         last_tick = CASE WHEN last_tick < $3 THEN $4 ELSE last_tick END \
         WHERE job = $5 {tick_rule} AND (holder IS NULL OR expires_at < {now})"
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql)
        .bind(holder)
        .bind(lease_ms)
        .bind(tick)
        .bind(tick)
        .bind(job);
    if !manual {
        q = q.bind(tick);
    }
    let n = db.write(q).await?;
    Ok(n == 1)
}

/// Extends the lease if `holder` still has it.
pub async fn renew(db: &Db, job: &str, holder: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE job_leases SET expires_at = {} + $1 WHERE job = $2 AND holder = $3",
        db.now_sql()
    );
    Ok(db
        .write(
            sqlx::query(&db.sql(&sql))
                .bind(lease_ms)
                .bind(job)
                .bind(holder),
        )
        .await?
        == 1)
}

pub async fn release(db: &Db, job: &str, holder: &str) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(&db.sql(
            "UPDATE job_leases SET holder = NULL, expires_at = 0 WHERE job = $1 AND holder = $2",
        ))
        .bind(job)
        .bind(holder),
    )
    .await?;
    Ok(())
}

pub async fn start_run(
    db: &Db,
    job: &str,
    tick: i64,
    manual: bool,
    instance: &str,
    started_at: i64,
) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let id = Db::insert_id(
        db.backend(),
        sqlx::query(&db.sql(
            "INSERT INTO job_runs (job, tick, manual, instance, started_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
        ))
        .bind(job)
        .bind(tick)
        .bind(i64::from(manual))
        .bind(instance)
        .bind(started_at),
        &mut *tx,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn finish_run(
    db: &Db,
    id: i64,
    finished_at: i64,
    outcome: JobOutcome,
    detail: Option<&str>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(
            &db.sql("UPDATE job_runs SET finished_at = $1, outcome = $2, detail = $3, error = $4 WHERE id = $5"),
        )
        .bind(finished_at)
        .bind(outcome_text(outcome))
        .bind(detail)
        .bind(error)
        .bind(id),
    )
    .await?;
    Ok(())
}

fn outcome_text(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Running => "running",
        JobOutcome::Ok => "ok",
        JobOutcome::Failed => "failed",
    }
}

pub async fn runs(
    db: &Db,
    job: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRun>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(
        "SELECT id, job, tick, manual, instance, started_at, finished_at, outcome, detail, error \
         FROM job_runs WHERE job = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    ))
    .bind(job)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let outcome: String = r.try_get("outcome")?;
            Ok(JobRun {
                id: r.try_get("id")?,
                job: r.try_get("job")?,
                tick: r.try_get("tick")?,
                manual: r.try_get::<i64, _>("manual")? != 0,
                instance: r.try_get("instance")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: match outcome.as_str() {
                    "ok" => JobOutcome::Ok,
                    "failed" => JobOutcome::Failed,
                    _ => JobOutcome::Running,
                },
                detail: r.try_get::<Option<Text>, _>("detail")?.map(|t| t.0),
                error: r.try_get::<Option<Text>, _>("error")?.map(|t| t.0),
            })
        })
        .collect()
}

pub async fn last_success(db: &Db, job: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(&db.sql("SELECT MAX(finished_at) FROM job_runs WHERE job = $1 AND outcome = 'ok'"))
        .bind(job)
        .fetch_one(db.pool())
        .await?
        .try_get(0)
}

/// Finished runs that ended before `before` (unix ms).
pub async fn purge_runs(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    db.write(
        sqlx::query(
            &db.sql("DELETE FROM job_runs WHERE finished_at IS NOT NULL AND finished_at < $1"),
        )
        .bind(before),
    )
    .await
}

/// A usage row as archived: every column, by name, as stored (not `types::UsageRow`, which
/// leaves out the client IP and reads unknown texts as defaults: an archive must give back
/// exactly what it deleted).
#[derive(Debug, Serialize, Deserialize)]
pub struct ArchivedUsage {
    pub id: i64,
    pub request_id: String,
    pub user_id: i64,
    pub key_id: Option<i64>,
    pub key_prefix: Option<String>,
    pub model: String,
    pub served_model: Option<String>,
    pub channel_id: Option<i64>,
    pub attempts: i64,
    pub stream: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    // Columns added since the first archives: an older archive's lines read as the migration
    // filled its rows (0, `chat`, no kind).
    #[serde(default)]
    pub cache_write_5m_tokens: i64,
    #[serde(default)]
    pub cache_write_1h_tokens: i64,
    #[serde(default)]
    pub reasoning_tokens: i64,
    #[serde(default)]
    pub image_input_tokens: i64,
    #[serde(default)]
    pub image_output_tokens: i64,
    #[serde(default)]
    pub audio_input_tokens: i64,
    #[serde(default)]
    pub audio_output_tokens: i64,
    #[serde(default = "chat")]
    pub surface: String,
    #[serde(default)]
    pub upstream_kind: Option<String>,
    pub cost: i64,
    pub price_version: Option<i64>,
    pub usage_source: String,
    pub status: i64,
    pub error_class: Option<String>,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub client_ip: Option<String>,
    pub created_at: i64,
}

fn chat() -> String {
    "chat".to_string()
}

const USAGE_COLUMNS: &str = "id, request_id, user_id, key_id, key_prefix, model, served_model, \
    channel_id, attempts, stream, prompt_tokens, completion_tokens, cached_tokens, \
    cache_write_5m_tokens, cache_write_1h_tokens, reasoning_tokens, image_input_tokens, \
    image_output_tokens, audio_input_tokens, audio_output_tokens, surface, upstream_kind, cost, \
    price_version, usage_source, status, error_class, latency_ms, ttft_ms, client_ip, created_at";

fn archived(r: &sqlx::any::AnyRow) -> Result<ArchivedUsage, sqlx::Error> {
    Ok(ArchivedUsage {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        user_id: r.try_get("user_id")?,
        key_id: r.try_get("key_id")?,
        key_prefix: r.try_get("key_prefix")?,
        model: r.try_get("model")?,
        served_model: r.try_get("served_model")?,
        channel_id: r.try_get("channel_id")?,
        attempts: r.try_get("attempts")?,
        stream: r.try_get("stream")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        completion_tokens: r.try_get("completion_tokens")?,
        cached_tokens: r.try_get("cached_tokens")?,
        cache_write_5m_tokens: r.try_get("cache_write_5m_tokens")?,
        cache_write_1h_tokens: r.try_get("cache_write_1h_tokens")?,
        reasoning_tokens: r.try_get("reasoning_tokens")?,
        image_input_tokens: r.try_get("image_input_tokens")?,
        image_output_tokens: r.try_get("image_output_tokens")?,
        audio_input_tokens: r.try_get("audio_input_tokens")?,
        audio_output_tokens: r.try_get("audio_output_tokens")?,
        surface: r.try_get("surface")?,
        upstream_kind: r.try_get("upstream_kind")?,
        cost: r.try_get("cost")?,
        price_version: r.try_get("price_version")?,
        usage_source: r.try_get("usage_source")?,
        status: r.try_get("status")?,
        error_class: r.try_get("error_class")?,
        latency_ms: r.try_get("latency_ms")?,
        ttft_ms: r.try_get("ttft_ms")?,
        client_ip: r.try_get("client_ip")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The oldest usage row's time before `cutoff`, if any (retention).
pub async fn oldest_usage_before(db: &Db, cutoff: i64) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(&db.sql("SELECT MIN(created_at) FROM usage_logs WHERE created_at < $1"))
        .bind(cutoff)
        .fetch_one(db.pool())
        .await?;
    row.try_get::<Option<i64>, _>(0)
}

/// Usage rows made in `[from, to)` with an id after `after`, by id, at most `limit`.
pub async fn usage_page(
    db: &Db,
    from: i64,
    to: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<ArchivedUsage>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(&format!(
        "SELECT {USAGE_COLUMNS} FROM usage_logs WHERE created_at >= $1 AND created_at < $2 \
         AND id > $3 ORDER BY id LIMIT $4"
    )))
    .bind(from)
    .bind(to)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(archived).collect()
}

/// Deletes usage rows by id in one statement; returns how many went.
pub async fn delete_usage(db: &Db, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM usage_logs WHERE id IN ({})",
        (1..=ids.len())
            .map(|n| db.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let sql = db.sql(&sql);
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    db.write(q).await
}

/// SQLite's integrity check of a database file, opened read-only: `ok`, or what is wrong.
pub async fn sqlite_integrity(file: &std::path::Path) -> Result<String, sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", file.display())).await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(check)
}

/// An online, consistent copy of the SQLite database into a new file (`VACUUM INTO`).
pub async fn copy_sqlite(db: &Db, to: &std::path::Path) -> Result<(), sqlx::Error> {
    sqlx::query(&db.sql("VACUUM INTO $1"))
        .bind(to.to_string_lossy().into_owned())
        .execute(db.pool())
        .await
        .map(|_| ())
}
