//! `Services`: the one cloneable context built in `main` and handed to every adapter (axum state,
//! Leptos context). No globals; nothing opened per request.
//!
//! It builds and holds the components (database, Redis, limiters, caches, the credit manager,
//! the usage queue) and names no domain operation: the domains take it, never the reverse. Each
//! domain starts its own background loops (`billing::start`, `usage::start`, …) into a
//! [`Background`], which the server's startup calls.

use crate::billing::credit::{CreditManager, CreditMetrics, LeaseTiming};
use crate::billing::price::PriceBook;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::db::Db;
use crate::keys::auth::KeyCache;
use crate::kv::RedisLink;
use crate::metrics::Metrics;
use crate::proxy::tokens::Tokenizer;
use crate::ratelimit::quota::Quotas;
use crate::ratelimit::window::Limiter;
use crate::routing::Routing;
use crate::storage::Store;
use crate::usage::sink::{UsageQueue, UsageSink};
use crate::usage::status::StatusCache;
use anyhow::Context as _;
use std::ops::Deref;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How soon an instance sees channel, mapping and price changes made on another instance.
pub const CATALOG_POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Services(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub redis: Option<RedisLink>,
    pub limiter: Limiter,
    /// Per-key requests and tokens per minute.
    pub quotas: Arc<Quotas>,
    /// Per-key calls in flight.
    pub concurrency: Arc<crate::ratelimit::concurrency::Concurrency>,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    /// The drain deadline passed: streams still open end now (and are settled).
    pub halt: Shutdown,
    pub keys: KeyCache,
    pub routing: Routing,
    /// Where the jobs write archives and backups (`storage`).
    pub store: Store,
    pub credit: Arc<CreditManager>,
    pub usage: UsageSink,
    /// The status page's latest readings.
    pub status: StatusCache,
    /// When this instance started: by the monotonic clock, and in unix ms.
    pub started: std::time::Instant,
    pub started_at_ms: i64,
    /// Settlements that count tokens (no upstream usage) run on one thread of their own, so the
    /// runtime never waits for a tokenizer; shutdown waits for them (`settling`).
    counter: std::sync::mpsc::Sender<CountingJob>,
    settling: watch::Sender<usize>,
    prices: RwLock<Arc<PriceBook>>,
    usage_rx: Mutex<Option<UsageQueue>>,
}

impl Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    /// Connects to the database (migrating it) and to Redis when configured. The catalog is
    /// empty until `catalog::sync_from_config` runs (the server's startup does).
    pub async fn build(config: Config) -> anyhow::Result<Services> {
        let db = Db::connect(&config.database).await?;
        let timeout = Duration::from_millis(config.redis.timeout_ms);
        let redis = if config.redis.url.is_empty() {
            None
        } else {
            let link =
                RedisLink::connect(config.redis.url.expose(), timeout, Duration::from_secs(5))
                    .await
                    .context("connecting to redis")?;
            Some(link)
        };
        let limiter = match &redis {
            Some(link) => Limiter::redis(link.clone(), &config.redis.prefix),
            None => Limiter::local(),
        };
        let metrics = Metrics::new(config.database.max_connections);
        let clock = SystemClock::shared();
        let quotas = Arc::new(Quotas::new(
            redis
                .as_ref()
                .map(|link| (link.clone(), config.redis.prefix.as_str())),
            metrics.ratelimit_degraded.clone(),
            metrics.ratelimit_refusals.clone(),
            clock.clone(),
        ));
        let concurrency = Arc::new(crate::ratelimit::concurrency::Concurrency::new(
            redis
                .as_ref()
                .map(|link| (link.clone(), config.redis.prefix.as_str())),
            quotas.clone(),
            Duration::from_secs(config.limits.concurrency_lease_seconds),
            metrics.ratelimit_refusals.clone(),
        ));
        let credit = CreditManager::new(
            db.clone(),
            LeaseTiming::new(Duration::from_secs(config.billing.sweep_after_seconds)),
            Duration::from_millis(config.billing.idle_close_ms),
            CreditMetrics {
                waits: metrics.credit_waits.clone(),
                uncollected: metrics.credit_uncollected.clone(),
            },
            clock.clone(),
        );
        credit.start().await.context("starting the credit lease")?;
        let (usage, usage_rx) = UsageSink::new(
            config.gateway.usage_queue,
            metrics.usage_rows_dropped.clone(),
        );
        let routing = Routing::new(
            Duration::from_secs(config.gateway.cooldown_seconds),
            config.gateway.failure_threshold,
            config.gateway.allow_metadata_upstreams,
        );
        let counter = spawn_counter(tokio::runtime::Handle::current())?;
        let store = Store::from_config(&config.storage);
        let svc = Services(Arc::new(Inner {
            config,
            db,
            redis,
            status: StatusCache::default(),
            limiter,
            quotas,
            concurrency,
            metrics,
            shutdown: Shutdown::new(),
            halt: Shutdown::new(),
            keys: KeyCache::default(),
            routing,
            store,
            credit,
            usage,
            started: std::time::Instant::now(),
            started_at_ms: crate::now_ms(),
            counter,
            settling: watch::channel(0).0,
            prices: RwLock::new(Arc::new(PriceBook::default())),
            usage_rx: Mutex::new(Some(usage_rx)),
        }));
        Ok(svc)
    }

    /// The current price book (an immutable snapshot).
    pub fn prices(&self) -> Arc<PriceBook> {
        self.prices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set_prices(&self, book: PriceBook) {
        *self
            .prices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(book);
    }

    /// Runs `work` (a settlement that counts tokens) on the token-counting thread;
    /// [`Services::settled`] waits for it.
    pub fn settle_off_runtime(&self, work: impl FnOnce(&Tokenizer) + Send + 'static) {
        let done = self.in_flight();
        let job: CountingJob = Box::new(move |tokenizer| {
            let _done = done;
            work(tokenizer);
        });
        if let Err(std::sync::mpsc::SendError(job)) = self.counter.send(job) {
            // The thread is gone (it only ends when this process tears down): settle here.
            job(&Tokenizer::default());
        }
    }

    /// Counts `text`'s tokens for `model` on the token-counting thread (the runtime never waits
    /// on a tokenizer table being built); by bytes if that thread is gone.
    pub async fn count_off_runtime(&self, model: String, text: String) -> u64 {
        let rough = text.len().div_ceil(4) as u64;
        self.with_tokenizer(move |t| t.count(&model, &text))
            .await
            .unwrap_or(rough)
    }

    /// Runs `work` on the token-counting thread and gives its result (`None` only if the
    /// thread dropped the work unrun).
    pub async fn with_tokenizer<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Tokenizer) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.settle_off_runtime(move |t| {
            let _ = tx.send(work(t));
        });
        rx.await.ok()
    }

    /// Work that must end before the last credit report and usage write at shutdown (a
    /// settlement, a call that goes on after its client left): [`Services::settled`] waits
    /// until every guard is dropped, however the work ends.
    pub fn in_flight(&self) -> InFlight {
        self.settling.send_modify(|n| *n += 1);
        InFlight(self.settling.clone())
    }

    /// Resolves when no settlement or other [`InFlight`] work is left.
    pub async fn settled(&self) {
        let mut rx = self.settling.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// The usage queue's receiving end, for the writer (`usage::start`); once.
    pub fn take_usage_queue(&self) -> Option<UsageQueue> {
        self.usage_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Readiness: the database must answer (the error says why not). Redis is not required:
    /// without it limits are counted locally and sign-ins are refused, but calls are served;
    /// the parts that do not answer are returned (`["redis"]`).
    pub async fn ready(&self) -> Result<Vec<&'static str>, String> {
        self.db
            .ping(Duration::from_secs(2))
            .await
            .map_err(|e| format!("database: {e}"))?;
        let mut degraded = Vec::new();
        if let Some(link) = &self.redis {
            let ping = link
                .call(|mut conn| async move {
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                })
                .await;
            if let Err(e) = ping {
                static LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
                if let Some(held) = LOG.ready() {
                    tracing::warn!(error = %e, similar_since_last = held, "readiness: redis does not answer");
                }
                degraded.push("redis");
            }
        }
        Ok(degraded)
    }
}

/// Counts a piece of in-flight work down however it ends: done, panicked, or never run.
pub struct InFlight(watch::Sender<usize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// A settlement that counts tokens, run on the token-counting thread with its tokenizer.
type CountingJob = Box<dyn FnOnce(&Tokenizer) + Send>;

/// The token-counting thread: owns the tokenizer and runs settlement jobs in order, inside the
/// runtime's context (they queue usage rows). Ends when the last sender is dropped.
fn spawn_counter(
    rt: tokio::runtime::Handle,
) -> anyhow::Result<std::sync::mpsc::Sender<CountingJob>> {
    let (tx, rx) = std::sync::mpsc::channel::<CountingJob>();
    std::thread::Builder::new()
        .name("tollgate-tokens".into())
        .spawn(move || {
            let _rt = rt.enter();
            let tokenizer = Tokenizer::default();
            while let Ok(job) = rx.recv() {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&tokenizer)))
                    .is_err()
                {
                    tracing::error!("a settlement panicked while counting tokens");
                }
            }
        })
        .context("starting the token-counting thread")?;
    Ok(tx)
}

/// The background tasks of one instance: each domain spawns its loops here (its `start`), and
/// [`Background::stop`] ends them after a final flush (after the HTTP server has drained).
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// Resolves once [`Background::stop`] is called: a loop's cue for its final flush.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Reports all credit usage, closes grants, writes queued usage logs, and waits for it.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The process-wide "we are stopping" signal: long-lived work (streams, batchers) watches it.
#[derive(Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    fn new() -> Self {
        Shutdown(watch::channel(false).0)
    }

    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver of the signal, for a loop that waits on it many times.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the value turns true.
        let _ = rx.wait_for(|v| *v).await;
    }
}
