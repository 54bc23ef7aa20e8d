//! Fixed-window counters: in-process for one instance, Redis when configured so that every
//! instance sees the same counts. Every Redis call is bounded by `redis.timeout_ms`.

use crate::Error;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub enum Limiter {
    Local(Arc<Mutex<HashMap<String, Window>>>),
    Redis {
        conn: ConnectionManager,
        prefix: String,
        timeout: Duration,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Window {
    count: u32,
    ends: Instant,
}

/// A counter's state: how many hits in the current window, and when the window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub hits: u32,
    pub resets_in: Duration,
}

const LOCAL_SWEEP_AT: usize = 10_000;

impl Limiter {
    pub fn local() -> Self {
        Limiter::Local(Arc::new(Mutex::new(HashMap::new())))
    }

    pub fn redis(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        Limiter::Redis {
            conn,
            prefix: format!("{prefix}rl:"),
            timeout,
        }
    }

    /// The hits counted so far in `key`'s current window.
    pub async fn count(&self, key: &str) -> Result<Count, Error> {
        match self {
            Limiter::Local(map) => {
                let map = map
                    .lock()
                    .map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
                let now = Instant::now();
                Ok(match map.get(key) {
                    Some(w) if w.ends > now => Count {
                        hits: w.count,
                        resets_in: w.ends - now,
                    },
                    _ => Count {
                        hits: 0,
                        resets_in: Duration::ZERO,
                    },
                })
            }
            Limiter::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let mut conn = conn.clone();
                let k = format!("{prefix}{key}");
                let (hits, ttl): (Option<u32>, i64) = bounded(
                    *timeout,
                    redis::pipe()
                        .get(&k)
                        .cmd("PTTL")
                        .arg(&k)
                        .query_async(&mut conn),
                )
                .await?;
                Ok(Count {
                    hits: hits.unwrap_or(0),
                    resets_in: Duration::from_millis(ttl.max(0).unsigned_abs()),
                })
            }
        }
    }

    /// Counts one hit in `key`; a new window of length `window` starts when none is open.
    pub async fn hit(&self, key: &str, window: Duration) -> Result<Count, Error> {
        match self {
            Limiter::Local(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
                let now = Instant::now();
                if map.len() >= LOCAL_SWEEP_AT {
                    map.retain(|_, w| w.ends > now);
                }
                let w = map.entry(key.to_string()).or_insert(Window {
                    count: 0,
                    ends: now + window,
                });
                if w.ends <= now {
                    *w = Window {
                        count: 0,
                        ends: now + window,
                    };
                }
                w.count = w.count.saturating_add(1);
                Ok(Count {
                    hits: w.count,
                    resets_in: w.ends - now,
                })
            }
            Limiter::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let mut conn = conn.clone();
                let k = format!("{prefix}{key}");
                let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
                let (hits, _, ttl): (u32, i64, i64) = bounded(
                    *timeout,
                    redis::pipe()
                        .atomic()
                        .incr(&k, 1u32)
                        .cmd("PEXPIRE")
                        .arg(&k)
                        .arg(ms)
                        .arg("NX")
                        .cmd("PTTL")
                        .arg(&k)
                        .query_async(&mut conn),
                )
                .await?;
                Ok(Count {
                    hits,
                    resets_in: Duration::from_millis(ttl.max(0).unsigned_abs()),
                })
            }
        }
    }

    /// Forgets `key` (after a successful sign-in, say).
    pub async fn clear(&self, key: &str) -> Result<(), Error> {
        match self {
            Limiter::Local(map) => {
                map.lock()
                    .map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?
                    .remove(key);
                Ok(())
            }
            Limiter::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let mut conn = conn.clone();
                let k = format!("{prefix}{key}");
                bounded::<i64>(*timeout, redis::cmd("DEL").arg(&k).query_async(&mut conn)).await?;
                Ok(())
            }
        }
    }
}

/// Runs one Redis call with an upper bound on its time.
pub async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => Ok(r?),
        Err(_) => {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "redis call timed out"
            );
            Err(Error::Unavailable("redis".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_window_counts_and_expires() {
        let l = Limiter::local();
        let w = Duration::from_millis(50);
        assert_eq!(l.hit("k", w).await.expect("hit").hits, 1);
        assert_eq!(l.hit("k", w).await.expect("hit").hits, 2);
        assert_eq!(l.count("k").await.expect("count").hits, 2);
        assert_eq!(l.count("other").await.expect("count").hits, 0);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(l.count("k").await.expect("count").hits, 0);
        assert_eq!(l.hit("k", w).await.expect("hit").hits, 1);
        l.clear("k").await.expect("clear");
        assert_eq!(l.count("k").await.expect("count").hits, 0);
    }
}
