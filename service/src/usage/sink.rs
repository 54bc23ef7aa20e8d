//! The usage rows' queue and writer: one row per client request, written off the hot path in batches from a bounded
//! queue. Rows wait out a database outage in memory (the writer retries with backoff for as long
//! as the instance runs); a full queue makes further rows wait in tasks of their own, up to as
//! many again, and only beyond that is a row dropped (counted and logged). A row the database
//! refuses for its content is set apart from its batch, so it never takes good rows with it. At
//! shutdown the writer drains the queue, retrying a database that is down for at most
//! [`FINAL_RETRIES_FOR`]: a clean stop with the database up loses nothing.

//!
//! A component below the `Services` context: it takes the database, never the context.

use super::record::{BATCH, UsageRecord};
use super::repo::insert;
use crate::db::{Backend, Db};
use crate::now_ms;
use prometheus::IntCounter;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
    /// Rows waiting, each in a task of its own, for room in the full queue.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    dropped: IntCounter,
    /// When a lost row was last logged (ms since the epoch).
    last_loss_logged: Arc<AtomicI64>,
}

const LINGER: Duration = Duration::from_millis(200);
/// Retries of a failed write start this far apart and double up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At shutdown, how long the writer keeps retrying a database that is down before it gives up
/// the rows it still holds (and says how many).
pub const FINAL_RETRIES_FOR: Duration = Duration::from_secs(15);

/// The receiving end of the queue, for [`writer`].
pub struct UsageQueue {
    rx: mpsc::Receiver<UsageRecord>,
    waiting: Arc<AtomicUsize>,
    dropped: IntCounter,
}

impl UsageSink {
    /// Rows waiting for the writer: in the queue, and in tasks waiting for room in it.
    pub fn depth(&self) -> usize {
        (self.capacity - self.tx.capacity()) + self.waiting.load(Ordering::Acquire)
    }

    /// How many rows the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A sink whose queue holds `capacity` rows; `dropped` counts rows that could not be kept.
    pub fn new(capacity: usize, dropped: IntCounter) -> (UsageSink, UsageQueue) {
        let (tx, rx) = mpsc::channel(capacity);
        let waiting = Arc::new(AtomicUsize::new(0));
        let sink = UsageSink {
            tx,
            waiting: waiting.clone(),
            capacity,
            dropped: dropped.clone(),
            last_loss_logged: Arc::default(),
        };
        let queue = UsageQueue {
            rx,
            waiting,
            dropped,
        };
        (sink, queue)
    }

    /// Queues a row. Never blocks the caller: when the queue is full the row waits in a task, up
    /// to as many rows again as the queue holds; beyond that it is dropped, counted and logged.
    pub fn record(&self, r: UsageRecord) {
        let r = r.storable();
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(r)) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    self.lost(&r.request_id, "the usage queue and its overflow are full");
                    return;
                }
                let sink = self.clone();
                tokio::spawn(async move {
                    let id = r.request_id.clone();
                    let sent = sink.tx.send(r).await;
                    // Only now: a writer that sees no row waiting finds this one in the queue.
                    sink.waiting.fetch_sub(1, Ordering::AcqRel);
                    if sent.is_err() {
                        sink.lost(&id, "the writer has stopped");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(r)) => {
                self.lost(&r.request_id, "the writer has stopped");
            }
        }
    }

    /// Counts a row that could not be queued, and logs it: at most one line a second, with the
    /// total so far, so that a long overload does not also flood the logs.
    fn lost(&self, request_id: &str, why: &'static str) {
        self.dropped.inc();
        let now = now_ms();
        let last = self.last_loss_logged.load(Ordering::Relaxed);
        if now - last >= 1_000
            && self
                .last_loss_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                request_id,
                reason = why,
                dropped_total = self.dropped.get(),
                "usage log lost"
            );
        }
    }
}

/// Writes queued rows in batches until `stop` resolves, then writes what is left: the queue and
/// the rows still waiting for room in it.
pub async fn writer(db: Db, queue: UsageQueue, stop: impl Future<Output = ()>) {
    let UsageQueue {
        mut rx,
        waiting,
        dropped,
    } = queue;
    tokio::pin!(stop);
    let mut stopping = false;
    let mut closed = false;
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        if stopping {
            while batch.len() < BATCH
                && let Ok(r) = rx.try_recv()
            {
                batch.push(r);
            }
            if batch.is_empty() {
                if closed {
                    break;
                }
                if waiting.load(Ordering::Acquire) == 0 {
                    // Nothing waits for room: close, then take what arrived meanwhile.
                    rx.close();
                    closed = true;
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
        } else {
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
                () = &mut stop => { stopping = true; continue; }
            }
        }
        let lost = store(&db, batch, &mut stop, &mut stopping, &dropped).await;
        if lost > 0 {
            rx.close();
            let mut rest = 0;
            while rx.try_recv().is_ok() {
                rest += 1;
            }
            dropped.inc_by(rest);
            tracing::error!(
                rows = lost as u64 + rest,
                "usage logs lost: the database stayed unavailable through the shutdown"
            );
            return;
        }
    }
}

/// Writes `rows`, retrying while the database is unavailable (for as long as the instance runs,
/// and for at most [`FINAL_RETRIES_FOR`] once it is stopping). A piece the database refuses for
/// its content is halved until the refused row stands alone, and that row alone is dropped.
/// Returns how many rows were given up at shutdown.
async fn store<S: Future<Output = ()>>(
    db: &Db,
    rows: Vec<UsageRecord>,
    stop: &mut Pin<&mut S>,
    stopping: &mut bool,
    dropped: &IntCounter,
) -> usize {
    let mut pending = vec![rows];
    let mut backoff = FIRST_BACKOFF;
    let mut give_up_at: Option<Instant> = None;
    while let Some(mut piece) = pending.pop() {
        let e = match insert(db, &piece).await {
            Ok(()) => {
                backoff = FIRST_BACKOFF;
                continue;
            }
            Err(e) => e,
        };
        if refused_for_content(db.backend(), &e) {
            if piece.len() == 1 {
                dropped.inc();
                tracing::error!(request_id = %piece[0].request_id, error = %e, "a usage row was refused by the database and dropped");
            } else {
                let second = piece.split_off(piece.len() / 2);
                pending.push(second);
                pending.push(piece);
            }
            continue;
        }
        if *stopping {
            let at = *give_up_at.get_or_insert_with(|| Instant::now() + FINAL_RETRIES_FOR);
            if Instant::now() >= at {
                let lost = piece.len() + pending.iter().map(Vec::len).sum::<usize>();
                dropped.inc_by(lost as u64);
                return lost;
            }
        }
        tracing::warn!(rows = piece.len(), retry_in_ms = backoff.as_millis() as u64, error = %e, "writing usage logs failed; retrying");
        pending.push(piece);
        if *stopping {
            tokio::time::sleep(backoff).await;
        } else {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.as_mut() => *stopping = true,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    0
}

/// Whether the database refused the rows for what they hold (a constraint or a data exception),
/// so that retrying the same rows can never succeed, as opposed to being unavailable.
fn refused_for_content(backend: Backend, e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    if !matches!(d.kind(), sqlx::error::ErrorKind::Other) {
        return true; // unique, foreign key, not null, check
    }
    let Some(code) = d.code() else {
        return false;
    };
    match backend {
        // Class 22 (data exception) and 23 (integrity constraint violation); MySQL's CHECK
        // violation is 3819 (MariaDB's 4025 is class 23).
        Backend::Postgres | Backend::Mysql => {
            code.starts_with("22")
                || code.starts_with("23")
                || d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|m| m.number() == 3819)
        }
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT and SQLITE_MISMATCH, with their extended codes.
        Backend::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|c| (18..=20).contains(&(c & 0xff))),
    }
}
