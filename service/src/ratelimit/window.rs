//! Fixed-window counters: in-process for one instance, Redis when configured so that every
//! instance sees the same counts. Every Redis call is bounded by `redis.timeout_ms`.

use crate::Error;
use crate::kv::RedisLink;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub enum Limiter {
    Local(Arc<Mutex<Windows>>),
    Redis { link: RedisLink, prefix: String },
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

/// The in-process windows, and the size at which ended ones are next swept out: doubled past
/// what a sweep left, so that many live windows are not scanned on every hit.
#[derive(Debug)]
pub struct Windows {
    map: HashMap<String, Window>,
    sweep_at: usize,
}

impl Limiter {
    pub fn local() -> Self {
        Limiter::Local(Arc::new(Mutex::new(Windows {
            map: HashMap::new(),
            sweep_at: LOCAL_SWEEP_AT,
        })))
    }

    pub fn redis(link: RedisLink, prefix: &str) -> Self {
        Limiter::Redis {
            link,
            prefix: format!("{prefix}rl:"),
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
                Ok(match map.map.get(key) {
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
            Limiter::Redis { link, prefix } => {
                let k = format!("{prefix}{key}");
                let (hits, ttl): (Option<u32>, i64) = link
                    .call(|mut conn| async move {
                        redis::pipe()
                            .get(&k)
                            .cmd("PTTL")
                            .arg(&k)
                            .query_async(&mut conn)
                            .await
                    })
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
                if map.map.len() >= map.sweep_at {
                    map.map.retain(|_, w| w.ends > now);
                    map.sweep_at = (map.map.len() * 2).max(LOCAL_SWEEP_AT);
                }
                let w = map.map.entry(key.to_string()).or_insert(Window {
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
            Limiter::Redis { link, prefix } => {
                let k = format!("{prefix}{key}");
                let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
                let (hits, _, ttl): (u32, i64, i64) = link
                    .call(|mut conn| async move {
                        redis::pipe()
                            .atomic()
                            .incr(&k, 1u32)
                            .cmd("PEXPIRE")
                            .arg(&k)
                            .arg(ms)
                            .arg("NX")
                            .cmd("PTTL")
                            .arg(&k)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                Ok(Count {
                    hits,
                    resets_in: Duration::from_millis(ttl.max(0).unsigned_abs()),
                })
            }
        }
    }

    /// Takes one hit back from `key`'s current window (an attempt that turned out legitimate).
    pub async fn forgive(&self, key: &str) -> Result<(), Error> {
        match self {
            Limiter::Local(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
                if let Some(w) = map.map.get_mut(key) {
                    w.count = w.count.saturating_sub(1);
                }
                Ok(())
            }
            Limiter::Redis { link, prefix } => {
                let k = format!("{prefix}{key}");
                // Only a live window is decremented (never below zero, never without expiry).
                let script = redis::Script::new(
                    "local n = redis.call('GET', KEYS[1]) \
                     if n and tonumber(n) > 0 then return redis.call('DECR', KEYS[1]) end \
                     return 0",
                );
                link.call(
                    |mut conn| async move { script.key(&k).invoke_async::<i64>(&mut conn).await },
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Forgets `key` (after a successful sign-in, say).
    pub async fn clear(&self, key: &str) -> Result<(), Error> {
        match self {
            Limiter::Local(map) => {
                map.lock()
                    .map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?
                    .map
                    .remove(key);
                Ok(())
            }
            Limiter::Redis { link, prefix } => {
                let k = format!("{prefix}{key}");
                link.call(|mut conn| async move {
                    redis::cmd("DEL")
                        .arg(&k)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await?;
                Ok(())
            }
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

    #[tokio::test]
    async fn many_live_windows_are_not_swept_on_every_hit() {
        let l = Limiter::local();
        for k in 0..15_000 {
            l.hit(&k.to_string(), Duration::from_secs(60))
                .await
                .expect("hit");
        }
        let Limiter::Local(w) = &l else {
            unreachable!("a local limiter")
        };
        let w = w.lock().expect("lock");
        assert_eq!(w.map.len(), 15_000, "live windows stay");
        assert!(
            w.sweep_at >= 20_000,
            "after a sweep that kept 10,000, the next waits: {}",
            w.sweep_at
        );
    }
}
