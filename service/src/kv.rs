//! The Redis connection: one multiplexed connection shared by every caller, which comes back by
//! itself after any outage. A call that finds it broken fails at once (no caller waits for a
//! reconnect), and the first such call starts one reconnect loop in the background (backoff from
//! 100 ms to 1 s) that runs until Redis answers again, whatever is called meanwhile.

use crate::Error;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct RedisLink(Arc<Inner>);

struct Inner {
    client: Client,
    config: AsyncConnectionConfig,
    conn: Mutex<Option<MultiplexedConnection>>,
    reconnecting: AtomicBool,
    /// The bound of every call.
    timeout: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl RedisLink {
    /// Connects (within `connect_timeout`); every later call is bounded by `timeout`.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<RedisLink, anyhow::Error> {
        let client = Client::open(url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(connect_timeout)
            .set_response_timeout(timeout);
        let conn = tokio::time::timeout(
            connect_timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connecting to redis timed out"))??;
        Ok(RedisLink(Arc::new(Inner {
            client,
            config,
            conn: Mutex::new(Some(conn)),
            reconnecting: AtomicBool::new(false),
            timeout,
        })))
    }

    /// A link to a Redis that is not there (a closed port): every call fails at once, as after
    /// an outage. For the tests of what degrades without Redis.
    #[cfg(test)]
    pub(crate) fn unreachable(timeout: Duration) -> RedisLink {
        RedisLink(Arc::new(Inner {
            client: Client::open("redis://127.0.0.1:1").expect("a redis url"),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout),
            conn: Mutex::new(None),
            reconnecting: AtomicBool::new(false),
            timeout,
        }))
    }

    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// Runs one call on the connection, bounded by the timeout. A connection error or a
    /// timeout drops the connection and starts a reconnect.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.call_within(self.0.timeout, f).await
    }

    /// [`RedisLink::call`] bounded by `bound` when that is shorter than the timeout (a request
    /// that must not wait long on Redis).
    pub async fn call_within<T, F, Fut>(&self, bound: Duration, f: F) -> Result<T, Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(conn) = self.current() else {
            self.reconnect();
            return Err(Error::Unavailable("redis".into()));
        };
        match tokio::time::timeout(bound.min(self.0.timeout), f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                {
                    self.drop_connection();
                }
                Err(e.into())
            }
            Err(_) => {
                // A stalled server: start over on a fresh connection.
                self.drop_connection();
                Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "redis call timed out",
                ))
                .into())
            }
        }
    }

    /// Publishes `message` on `channel`, bounded like every call.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), Error> {
        let (channel, message) = (channel.to_string(), message.to_string());
        self.call(|mut conn| async move {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&message)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Calls `on_event` for every message published on `channel`, and also whenever messages
    /// may have been missed: once subscribed, and after every reconnect (the subscription has
    /// its own connection, re-established with the same backoff as calls). Runs until `stop`.
    pub async fn listen(&self, channel: &str, on_event: impl Fn(), stop: impl Future<Output = ()>) {
        use futures_util::StreamExt as _;
        tokio::pin!(stop);
        let mut backoff = BACKOFF_MIN;
        let mut was_down = false;
        loop {
            let subscribed = async {
                let mut pubsub = tokio::time::timeout(
                    self.0.timeout.max(BACKOFF_MAX),
                    self.0.client.get_async_pubsub(),
                )
                .await
                .map_err(|_| {
                    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })??;
                pubsub.subscribe(channel).await?;
                RedisResult::Ok(pubsub)
            };
            let pubsub = tokio::select! {
                r = subscribed => r,
                () = &mut stop => return,
            };
            match pubsub {
                Ok(mut pubsub) => {
                    if was_down {
                        tracing::info!(channel, "subscribed to redis again");
                    }
                    backoff = BACKOFF_MIN;
                    on_event();
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            m = messages.next() => match m {
                                Some(_) => on_event(),
                                None => break,
                            },
                            () = &mut stop => return,
                        }
                    }
                }
                Err(e) if !was_down => {
                    tracing::warn!(channel, error = %e, "redis subscription lost; retrying");
                }
                Err(_) => {}
            }
            was_down = true;
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = &mut stop => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.0
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn drop_connection(&self) {
        *self
            .0
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.reconnect();
    }

    /// Starts the reconnect loop unless one runs.
    fn reconnect(&self) {
        if self.0.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.0.clone();
        tokio::spawn(async move {
            let mut backoff = BACKOFF_MIN;
            loop {
                let attempt = tokio::time::timeout(
                    inner.timeout.max(BACKOFF_MAX),
                    inner
                        .client
                        .get_multiplexed_async_connection_with_config(&inner.config),
                )
                .await;
                if let Ok(Ok(conn)) = attempt {
                    *inner
                        .conn
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn);
                    inner.reconnecting.store(false, Ordering::Release);
                    tracing::info!("reconnected to redis");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
    }
}
