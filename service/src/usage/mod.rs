//! Usage logs: one row per client request, written off the hot path in batches from a bounded
//! queue. A full queue makes the writer's callers wait rather than drop a row; the writer drains
//! the queue at shutdown, so a clean stop loses nothing.

use crate::db::Db;
use crate::{Error, now_ms};
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

async fn insert(db: &Db, rows: &[UsageRecord]) -> Result<(), Error> {
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "INSERT INTO usage_logs (request_id, user_id, key_id, key_prefix, model, served_model, channel_id, attempts, \
         stream, prompt_tokens, completion_tokens, cached_tokens, cost, price_version, usage_source, status, \
         error_class, latency_ms, ttft_ms, client_ip, created_at) VALUES {}",
        db.placeholders(rows.len(), 21, 0)
    );
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(r.request_id.clone())
            .bind(r.user_id)
            .bind(r.key_id)
            .bind(r.key_prefix.clone())
            .bind(r.model.clone())
            .bind(r.served_model.clone())
            .bind(r.channel_id)
            .bind(i64::from(r.attempts))
            .bind(i64::from(r.stream))
            .bind(i(r.prompt_tokens))
            .bind(i(r.completion_tokens))
            .bind(i(r.cached_tokens))
            .bind(r.cost)
            .bind(r.price_version)
            .bind(r.usage_source)
            .bind(i64::from(r.status))
            .bind(r.error_class.clone())
            .bind(i(r.latency_ms))
            .bind(r.ttft_ms.map(i))
            .bind(r.client_ip.clone())
            .bind(r.created_at);
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    let mut keys: Vec<i64> = rows.iter().filter_map(|r| r.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    crate::keys::repo::touch(db, &keys, now_ms()).await?;
    Ok(())
}
