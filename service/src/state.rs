//! `Services`: the one cloneable context built in `main` and handed to every adapter (axum state,
//! Leptos context). No globals; nothing opened per request.

use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Services(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub redis: Option<ConnectionManager>,
    pub limiter: Limiter,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
}

impl Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    /// Connects to the database (migrating it) and to Redis when configured.
    pub async fn build(config: Config) -> anyhow::Result<Services> {
        let db = Db::connect(&config.database).await?;
        let timeout = Duration::from_millis(config.redis.timeout_ms);
        let redis = if config.redis.url.is_empty() {
            None
        } else {
            let client = redis::Client::open(config.redis.url.expose()).context("redis.url")?;
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(timeout.max(Duration::from_secs(1)))
                .set_response_timeout(timeout)
                .set_number_of_retries(2);
            let conn = tokio::time::timeout(
                Duration::from_secs(5),
                client.get_connection_manager_with_config(cfg),
            )
            .await
            .context("connecting to redis timed out")?
            .context("connecting to redis")?;
            Some(conn)
        };
        let limiter = match &redis {
            Some(conn) => Limiter::redis(conn.clone(), &config.redis.prefix, timeout),
            None => Limiter::local(),
        };
        let metrics = Metrics::new(config.database.max_connections);
        Ok(Services(Arc::new(Inner {
            config,
            db,
            redis,
            limiter,
            metrics,
            shutdown: Shutdown::new(),
        })))
    }

    /// Readiness of the parts this instance depends on; the error names the part that is down.
    pub async fn ready(&self) -> Result<(), String> {
        self.db
            .ping(Duration::from_secs(2))
            .await
            .map_err(|e| format!("database: {e}"))?;
        if let Some(conn) = &self.redis {
            let mut conn = conn.clone();
            let timeout =
                Duration::from_millis(self.config.redis.timeout_ms).max(Duration::from_millis(500));
            crate::ratelimit::bounded::<String>(timeout, redis::cmd("PING").query_async(&mut conn))
                .await
                .map_err(|e| format!("redis: {e}"))?;
        }
        Ok(())
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

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the value turns true.
        let _ = rx.wait_for(|v| *v).await;
    }
}
