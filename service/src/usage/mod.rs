//! Usage logs: one row per client request, written off the hot path in batches from a bounded
//! queue. A full queue makes the writer's callers wait rather than drop a row; the writer drains
//! the queue at shutdown, so a clean stop loses nothing.

use crate::db::{Backend, Db};
use crate::{Error, now_ms};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRecord {
    pub request_id: String,
    pub user_id: i64,
    pub key_id: Option<i64>,
    pub key_prefix: Option<String>,
    pub model: String,
    pub served_model: Option<String>,
    pub channel_id: Option<i64>,
    pub attempts: u32,
    pub stream: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost: i64,
    pub price_version: Option<i64>,
    /// `upstream`, `estimated`, `partial` or `none`.
    pub usage_source: &'static str,
    pub status: u16,
    pub error_class: Option<String>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub client_ip: Option<String>,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
}

/// Rows per insert: small enough that encoding one batch never stalls the runtime for long.
const BATCH: usize = 128;
const LINGER: Duration = Duration::from_millis(200);

impl UsageSink {
    pub fn new(capacity: usize) -> (UsageSink, mpsc::Receiver<UsageRecord>) {
        let (tx, rx) = mpsc::channel(capacity);
        (UsageSink { tx }, rx)
    }

    /// Queues a row. Never blocks the caller: when the queue is full the row waits in a task.
    pub fn record(&self, r: UsageRecord) {
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(r)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(r).await.is_err() {
                        tracing::error!("usage log lost: the writer has stopped");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(r)) => {
                tracing::error!(request_id = %r.request_id, "usage log lost: the writer has stopped");
            }
        }
    }
}

/// Writes queued rows in batches until `stop` resolves, then drains what is left.
pub async fn writer(
    db: Db,
    mut rx: mpsc::Receiver<UsageRecord>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut batch = Vec::with_capacity(BATCH);
    let mut stopping = false;
    loop {
        if !stopping {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 { break; }
                    // Linger briefly so that a burst becomes one insert.
                    if batch.len() < BATCH {
                        let deadline = tokio::time::sleep(LINGER);
                        tokio::pin!(deadline);
                        while batch.len() < BATCH {
                            let room = BATCH - batch.len();
                            tokio::select! {
                                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                                () = &mut deadline => break,
                            }
                        }
                    }
                }
                () = &mut stop => { stopping = true; rx.close(); continue; }
            }
        } else if rx.recv_many(&mut batch, BATCH).await == 0 {
            break;
        }
        write_with_retry(&db, &mut batch).await;
    }
    write_with_retry(&db, &mut batch).await;
}

async fn write_with_retry(db: &Db, batch: &mut Vec<UsageRecord>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 0..5u32 {
        match insert(db, batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(attempt, rows = batch.len(), error = %e, "writing usage logs failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
        }
    }
    tracing::error!(rows = batch.len(), "usage logs could not be written");
    batch.clear();
}

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

/// One row's values in [`COLUMNS`] order: serialized as a JSON array for PostgreSQL, bound one
/// by one for SQLite.
#[derive(serde::Serialize)]
struct Row<'a>(
    &'a str,
    i64,
    Option<i64>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    &'a str,
    i64,
    Option<&'a str>,
    i64,
    Option<i64>,
    Option<&'a str>,
    i64,
);

impl<'a> From<&'a UsageRecord> for Row<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        Row(
            &r.request_id,
            r.user_id,
            r.key_id,
            r.key_prefix.as_deref(),
            &r.model,
            r.served_model.as_deref(),
            r.channel_id,
            i64::from(r.attempts),
            i64::from(r.stream),
            i(r.prompt_tokens),
            i(r.completion_tokens),
            i(r.cached_tokens),
            r.cost,
            r.price_version,
            r.usage_source,
            i64::from(r.status),
            r.error_class.as_deref(),
            i(r.latency_ms),
            r.ttft_ms.map(i),
            r.client_ip.as_deref(),
            r.created_at,
        )
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
        "INSERT INTO usage_logs ({}) SELECT {} FROM json_array_elements($1::json) AS e",
        column_list(),
        values.join(", ")
    )
});

async fn insert(db: &Db, rows: &[UsageRecord]) -> Result<(), Error> {
    match db.backend() {
        Backend::Postgres => {
            let json = serde_json::to_string(&rows.iter().map(Row::from).collect::<Vec<_>>())
                .map_err(|e| {
                    Error::Internal(anyhow::Error::new(e).context("serializing usage rows"))
                })?;
            db.write(sqlx::query(&POSTGRES_INSERT).bind(json)).await?;
        }
        // SQLite binds values natively on its own thread, which is cheaper than unpacking JSON
        // there (its ->> parses the row again for every column).
        Backend::Sqlite => {
            let sql = format!(
                "INSERT INTO usage_logs ({}) VALUES {}",
                column_list(),
                db.placeholders(rows.len(), COLUMNS.len(), 0)
            );
            let mut q = sqlx::query(&sql);
            for r in rows.iter().map(Row::from) {
                q = q
                    .bind(r.0)
                    .bind(r.1)
                    .bind(r.2)
                    .bind(r.3)
                    .bind(r.4)
                    .bind(r.5)
                    .bind(r.6)
                    .bind(r.7)
                    .bind(r.8)
                    .bind(r.9)
                    .bind(r.10)
                    .bind(r.11)
                    .bind(r.12)
                    .bind(r.13)
                    .bind(r.14)
                    .bind(r.15)
                    .bind(r.16)
                    .bind(r.17)
                    .bind(r.18)
                    .bind(r.19)
                    .bind(r.20);
            }
            db.write(q).await?;
        }
    }
    let mut keys: Vec<i64> = rows.iter().filter_map(|r| r.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    crate::keys::repo::touch(db, &keys, now_ms()).await?;
    Ok(())
}
