//! Per-key limits: requests per minute and tokens per minute.
//!
//! By job: [`window`] (a window's count, and the local share), [`slice`] (slices of a window
//! shared through Redis), [`degraded`] (the share while Redis is away, and the beat that counts
//! instances); here the limiter itself, its token holds and its view. Time is read from the
//! limiter's [`Clock`](crate::clock::Clock).
//!
//! A key's window is a minute that opens at its first request. Without Redis it is counted in
//! this process. With `redis.url` set it lives in Redis and is shared by every instance, but an
//! instance does not go to Redis for every request: it takes a *slice* of the window (one
//! atomic script checks what the window has left and sets part of it aside for this instance)
//! and admits requests from the slice in memory, taking another when it runs out. A slice is a
//! twentieth of the limit and never more than a quarter of what the window has left (but at
//! least what the request needs), so a shared window never admits more than its limit, however
//! many instances share it, and little of it is left stranded in other instances' slices when
//! it fills.
//!
//! Tokens are reserved like credit: a request reserves its estimate (a quarter of its body's
//! bytes plus `max_tokens`, or the default) and is settled to the real count; what it did not
//! use goes back to the slice, what it used beyond its estimate is added to the window (at the
//! next take), so only requests already admitted can carry a window past its limit.
//!
//! When Redis cannot be reached within [`REDIS_WAIT`] (killed, stalled, refusing) the instance
//! is *degraded*: it counts each key's window in memory and admits at most its share of the
//! limit, ⌈limit / N⌉, N being the number of instances alive at its last contact with Redis
//! (each announces itself every [`BEAT`]). No request waits on Redis while degraded; a probe
//! once a second notices its return. `tollgate_ratelimit_degraded` is 1 meanwhile.

mod degraded;
mod slice;
mod window;

use self::slice::{BEAT_SCRIPT, Shared, TAKE};
use self::window::{Dim, KeyState};
use crate::Error;
use crate::clock::SharedClock;
use crate::config::LimitsConfig;
use crate::kv::RedisLink;
use prometheus::{IntCounterVec, IntGauge};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The length of a window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest a request waits on Redis before it is admitted locally.
pub const REDIS_WAIT: Duration = Duration::from_millis(100);
/// How often an instance announces itself while Redis answers.
pub const BEAT: Duration = Duration::from_secs(2);
/// How often a degraded instance checks whether Redis is back.
pub(super) const PROBE: Duration = Duration::from_secs(1);
/// An instance that has not announced itself for this long is no longer counted.
pub(super) const INSTANCE_TTL: Duration = Duration::from_secs(10);
const SHARDS: usize = 16;
const SWEEP_AT: usize = 1_000;

/// A key's limits per minute, and on its calls in flight (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Calls in flight at once (counted by the calls-in-flight limiter, not here).
    pub concurrent: Option<u64>,
}

impl Limits {
    /// The key's own limits, else its user's group's, else the configured defaults.
    pub fn resolve(own: Limits, group: &str, config: &LimitsConfig) -> Limits {
        let g = config.groups.get(group).copied().unwrap_or_default();
        Limits {
            rpm: own.rpm.or(g.rpm).or(config.default_rpm),
            tpm: own.tpm.or(g.tpm).or(config.default_tpm),
            concurrent: own
                .concurrent
                .or(g.max_concurrent)
                .or(config.default_max_concurrent),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// One limit as the `x-ratelimit-*` headers tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitView {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window ends (zero when none is open).
    pub reset: Duration,
}

/// Both limits of a key, as far as this instance knows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateView {
    pub requests: Option<LimitView>,
    pub tokens: Option<LimitView>,
}

pub struct Quotas {
    shards: Vec<Mutex<HashMap<i64, KeyState>>>,
    /// Per shard, the size at which ended windows are next swept out: doubled past what a
    /// sweep left, so that a shard holding many live keys is not scanned on every call.
    sweep_at: Vec<AtomicUsize>,
    shared: Option<Shared>,
    degraded: AtomicBool,
    /// Live instances at the last contact with Redis (1 without Redis).
    instances: AtomicU64,
    epochs: AtomicU64,
    degraded_gauge: IntGauge,
    refusals: IntCounterVec,
    clock: SharedClock,
}

/// A request's token reservation: settled with the real count, or given back when dropped
/// (a request that was not served).
pub struct TokenHold {
    quotas: Arc<Quotas>,
    key_id: i64,
    units: u64,
    epoch: u64,
    /// Taken from a slice of the shared window (what is not used goes back to it).
    from_slice: bool,
    settled: bool,
}

impl TokenHold {
    /// Settles the reservation at `used` tokens.
    pub fn settle(mut self, used: u64) {
        self.settled = true;
        self.quotas
            .settle(self.key_id, self.units, self.epoch, self.from_slice, used);
    }
}

impl Drop for TokenHold {
    fn drop(&mut self) {
        if !self.settled {
            self.quotas
                .settle(self.key_id, self.units, self.epoch, self.from_slice, 0);
        }
    }
}

impl Quotas {
    pub fn new(
        redis: Option<(RedisLink, &str)>,
        degraded_gauge: IntGauge,
        refusals: IntCounterVec,
        clock: SharedClock,
    ) -> Quotas {
        Quotas {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            sweep_at: (0..SHARDS).map(|_| AtomicUsize::new(SWEEP_AT)).collect(),
            shared: redis.map(|(link, prefix)| Shared {
                link,
                prefix: format!("{prefix}q:"),
                instance: hex::encode(rand::random::<[u8; 8]>()),
                take: redis::Script::new(TAKE),
                beat: redis::Script::new(BEAT_SCRIPT),
            }),
            degraded: AtomicBool::new(false),
            instances: AtomicU64::new(1),
            epochs: AtomicU64::new(0),
            degraded_gauge,
            refusals,
            clock,
        }
    }

    /// Whether the limits are counted locally because Redis is unreachable.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// The instances sharing the limits, as last counted.
    pub fn instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed).max(1)
    }

    /// How many instances a limit is split between when counted locally: all of them while
    /// Redis is configured (degraded), this one alone without Redis.
    fn sharers(&self) -> u64 {
        if self.shared.is_some() {
            self.instances()
        } else {
            1
        }
    }

    fn shard(&self, key_id: i64) -> MutexGuard<'_, HashMap<i64, KeyState>> {
        let i = usize::try_from(key_id.rem_euclid(SHARDS as i64)).unwrap_or(0);
        let mut map = self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.sweep_at[i].load(Ordering::Relaxed) {
            let now = self.clock.now();
            map.retain(|_, s| {
                s.req.ends.is_some_and(|e| e > now) || s.tok.ends.is_some_and(|e| e > now)
            });
            self.sweep_at[i].store((map.len() * 2).max(SWEEP_AT), Ordering::Relaxed);
        }
        map
    }

    /// Admits one request of `tokens` (estimated) on the key, or refuses it with 429 and the
    /// time until its window ends. Returns the token reservation when the key has a TPM.
    pub async fn admit(
        self: &Arc<Self>,
        key_id: i64,
        limits: Limits,
        tokens: u64,
    ) -> Result<Option<TokenHold>, Error> {
        if limits.is_unlimited() {
            return Ok(None);
        }
        if let Some(tpm) = limits.tpm
            && tokens > tpm
        {
            return Err(Error::invalid(
                "max_tokens",
                format!(
                    "the request may use about {tokens} tokens, more than this key's limit of {tpm} tokens per minute"
                ),
            ));
        }
        let units = (
            u64::from(limits.rpm.is_some()),
            limits.tpm.map_or(0, |_| tokens),
        );
        match self.shared.as_ref().filter(|_| !self.degraded()) {
            Some(shared) => self.admit_shared(shared, key_id, limits, units).await,
            None => self.admit_locally(key_id, limits, units),
        }
    }

    pub(super) fn hold(
        self: &Arc<Self>,
        limits: Limits,
        key_id: i64,
        units: u64,
        epoch: u64,
        from_slice: bool,
    ) -> Option<TokenHold> {
        limits.tpm.map(|_| TokenHold {
            quotas: self.clone(),
            key_id,
            units,
            epoch,
            from_slice,
            settled: false,
        })
    }

    fn settle(&self, key_id: i64, units: u64, epoch: u64, from_slice: bool, used: u64) {
        let mut map = self.shard(key_id);
        let Some(st) = map.get_mut(&key_id) else {
            return;
        };
        let dim = &mut st.tok;
        if dim.epoch != epoch || dim.ends.is_none_or(|e| e <= self.clock.now()) {
            return;
        }
        if used <= units {
            let back = units - used;
            dim.used = dim.used.saturating_sub(back);
            if from_slice {
                dim.slice += back;
            }
        } else {
            let extra = used - units;
            dim.used += extra;
            if from_slice {
                let covered = dim.slice.min(extra);
                dim.slice -= covered;
                dim.debt += extra - covered;
            }
        }
    }

    /// The key's limits as the `x-ratelimit-*` headers tell them (this instance's view).
    pub fn view(&self, key_id: i64, limits: Limits) -> RateView {
        if limits.is_unlimited() {
            return RateView::default();
        }
        let now = self.clock.now();
        let local = self.shared.is_none() || self.degraded();
        let n = self.sharers();
        let map = self.shard(key_id);
        let st = map.get(&key_id);
        let one = |limit: Option<u64>, dim: Option<&Dim>| {
            let limit = limit?;
            let open = dim.filter(|d| d.ends.is_some_and(|e| e > now));
            Some(match open {
                None => LimitView {
                    limit,
                    remaining: if local { limit.div_ceil(n) } else { limit },
                    reset: Duration::ZERO,
                },
                Some(d) => LimitView {
                    limit,
                    remaining: if local {
                        limit.div_ceil(n).saturating_sub(d.used)
                    } else {
                        (d.free + d.slice).min(limit)
                    },
                    reset: d
                        .ends
                        .map_or(Duration::ZERO, |e| e.saturating_duration_since(now)),
                },
            })
        };
        RateView {
            requests: one(limits.rpm, st.map(|s| &s.req)),
            tokens: one(limits.tpm, st.map(|s| &s.tok)),
        }
    }
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s` (whole
/// milliseconds). Written with integers: a float formatted to three places per answer was 2% of
/// the gateway's CPU on a limited key's calls.
pub fn reset_text(d: Duration) -> String {
    use std::fmt::Write as _;
    let ms = d.as_millis();
    let mut s = String::with_capacity(12);
    let _ = if ms < 1000 {
        write!(s, "{ms}ms")
    } else if ms < 60_000 {
        let (whole, mut frac, mut width) = (ms / 1000, ms % 1000, 3);
        if frac == 0 {
            write!(s, "{whole}s")
        } else {
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            write!(s, "{whole}.{frac:0width$}s")
        }
    } else {
        write!(s, "{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas() -> Arc<Quotas> {
        let refusals =
            IntCounterVec::new(prometheus::Opts::new("r", "r"), &["limit"]).expect("metric");
        Arc::new(Quotas::new(
            None,
            IntGauge::new("g", "g").expect("metric"),
            refusals,
            crate::clock::SystemClock::shared(),
        ))
    }

    #[tokio::test]
    async fn requests_per_minute_are_counted_per_key() {
        let q = quotas();
        let l = Limits {
            rpm: Some(3),
            ..Limits::default()
        };
        for _ in 0..3 {
            assert!(q.admit(1, l, 10).await.expect("admitted").is_none());
        }
        let Err(Error::RateLimited { retry_after }) = q.admit(1, l, 10).await else {
            panic!("the fourth is refused");
        };
        assert!(retry_after > Duration::from_secs(58) && retry_after <= WINDOW);
        q.admit(2, l, 10)
            .await
            .expect("another key has its own window");
        let v = q.view(1, l).requests.expect("rpm");
        assert_eq!((v.limit, v.remaining), (3, 0));
        assert!(q.view(1, Limits::default()).requests.is_none());
    }

    #[tokio::test]
    async fn tokens_are_reserved_then_settled_to_the_real_count() {
        let q = quotas();
        let l = Limits {
            tpm: Some(1000),
            ..Limits::default()
        };
        let a = q.admit(1, l, 600).await.expect("fits").expect("hold");
        assert!(
            matches!(q.admit(1, l, 600).await, Err(Error::RateLimited { .. })),
            "600 + 600 > 1000 while the first is reserved"
        );
        a.settle(100);
        assert_eq!(q.view(1, l).tokens.expect("tpm").remaining, 900);
        let b = q.admit(1, l, 600).await.expect("fits now").expect("hold");
        drop(b);
        assert_eq!(
            q.view(1, l).tokens.expect("tpm").remaining,
            900,
            "an unserved request gives its reservation back"
        );
        let c = q.admit(1, l, 100).await.expect("fits").expect("hold");
        c.settle(950);
        assert_eq!(
            q.view(1, l).tokens.expect("tpm").remaining,
            0,
            "usage beyond the estimate counts"
        );
        assert!(matches!(
            q.admit(1, l, 2000).await,
            Err(Error::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn a_shard_of_many_live_keys_is_not_swept_on_every_call() {
        let q = quotas();
        let l = Limits {
            rpm: Some(10),
            ..Limits::default()
        };
        // Keys that all land in shard 0, each with a live window.
        for k in 0..1_500 {
            q.admit(k * SHARDS as i64, l, 1).await.expect("admitted");
        }
        let at = q.sweep_at[0].load(Ordering::Relaxed);
        assert!(
            at >= 2_000,
            "after a sweep that kept 1,000 keys, the next waits: {at}"
        );
        assert_eq!(
            q.shards[0].lock().expect("lock").len(),
            1_500,
            "live windows stay"
        );
    }

    #[test]
    fn limits_come_from_key_then_group_then_default() {
        let mut c = LimitsConfig {
            default_rpm: Some(10),
            default_tpm: Some(1000),
            default_max_concurrent: Some(8),
            ..LimitsConfig::default()
        };
        c.groups.insert(
            "vip".into(),
            crate::config::GroupLimits {
                rpm: Some(100),
                tpm: None,
                max_concurrent: Some(2),
            },
        );
        let own = Limits {
            tpm: Some(5),
            ..Limits::default()
        };
        assert_eq!(
            Limits::resolve(own, "vip", &c),
            Limits {
                rpm: Some(100),
                tpm: Some(5),
                concurrent: Some(2),
            }
        );
        assert_eq!(
            Limits::resolve(Limits::default(), "default", &c),
            Limits {
                rpm: Some(10),
                tpm: Some(1000),
                concurrent: Some(8),
            }
        );
    }

    #[test]
    fn reset_is_written_as_openai_does() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(2)), "2s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_millis(1001)), "1.001s");
        assert_eq!(reset_text(Duration::from_millis(1050)), "1.05s");
        assert_eq!(reset_text(Duration::from_millis(59_999)), "59.999s");
        assert_eq!(reset_text(Duration::from_micros(1_234_900)), "1.234s");
        assert_eq!(reset_text(Duration::from_millis(999)), "999ms");
        assert_eq!(reset_text(Duration::from_millis(61_500)), "1m1s");
    }
}
