//! Per-key limits: requests per minute and tokens per minute.
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

use crate::Error;
use crate::config::LimitsConfig;
use crate::kv::RedisLink;
use prometheus::{IntCounterVec, IntGauge};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The length of a window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest a request waits on Redis before it is admitted locally.
pub const REDIS_WAIT: Duration = Duration::from_millis(100);
/// How often an instance announces itself while Redis answers.
pub const BEAT: Duration = Duration::from_secs(2);
/// How often a degraded instance checks whether Redis is back.
const PROBE: Duration = Duration::from_secs(1);
/// An instance that has not announced itself for this long is no longer counted.
const INSTANCE_TTL: Duration = Duration::from_secs(10);
const SHARDS: usize = 16;
const SWEEP_AT: usize = 1_000;

/// A key's limits per minute (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl Limits {
    /// The key's own limits, else its user's group's, else the configured defaults.
    pub fn resolve(own: Limits, group: &str, config: &LimitsConfig) -> Limits {
        let g = config.groups.get(group).copied().unwrap_or_default();
        Limits {
            rpm: own.rpm.or(g.rpm).or(config.default_rpm),
            tpm: own.tpm.or(g.tpm).or(config.default_tpm),
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

/// One limit's window as this instance sees it.
#[derive(Debug, Default)]
struct Dim {
    /// Where the window ends by this instance's clock (`None`: no window open).
    ends: Option<Instant>,
    /// The window's identity here: a token settlement of an earlier window is dropped.
    epoch: u64,
    /// Units of the shared window set aside for this instance and not yet admitted.
    slice: u64,
    /// Units this instance admitted in the window.
    used: u64,
    /// The shared window's units that no instance had taken, at the last take.
    free: u64,
    /// Usage beyond reservations, added to the shared window at the next take.
    debt: u64,
}

impl Dim {
    fn roll(&mut self, now: Instant) {
        if self.ends.is_some_and(|e| e <= now) {
            *self = Dim::default();
        }
    }

    fn open(&mut self, ends: Instant, epochs: &AtomicU64) {
        if self.ends.is_none() {
            self.epoch = epochs.fetch_add(1, Ordering::Relaxed) + 1;
        }
        self.ends = Some(ends);
    }
}

#[derive(Debug, Default)]
struct KeyState {
    req: Dim,
    tok: Dim,
}

/// What one take from the shared window answered, per limit.
#[derive(Clone, Copy, Debug, Default)]
struct Taken {
    granted: u64,
    free: u64,
    ttl: Duration,
    fresh: bool,
}

/// Redis's part: the scripts and this instance's name among the others.
struct Shared {
    link: RedisLink,
    prefix: String,
    instance: String,
    take: redis::Script,
    beat: redis::Script,
}

/// Takes a slice of one or both of a key's windows, all or nothing. KEYS: the requests and
/// tokens windows. ARGV: the window in ms, then per limit: limit (0: none), need, want, debt.
/// Returns ok, then per limit: granted, free, ttl in ms, fresh (1 when the window opened now).
const TAKE: &str = r"
local win = tonumber(ARGV[1])
local st = {}
local ok = 1
for i = 1, 2 do
  local b = 2 + (i - 1) * 4
  local limit = tonumber(ARGV[b])
  if limit > 0 then
    local need, want, debt = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local ttl = redis.call('PTTL', KEYS[i])
    local taken, fresh = 0, 0
    if ttl < 0 then
      fresh, ttl = 1, win
      redis.call('SET', KEYS[i], 0, 'PX', win)
    else
      taken = tonumber(redis.call('GET', KEYS[i]) or '0')
    end
    if debt > 0 then taken = redis.call('INCRBY', KEYS[i], debt) end
    if limit - taken < need then ok = 0 end
    st[i] = { limit, need, want, taken, ttl, fresh }
  end
end
local out = { ok }
for i = 1, 2 do
  local s = st[i]
  if s then
    local grant = 0
    if ok == 1 and s[2] > 0 then
      local free = s[1] - s[4]
      grant = math.min(free, math.max(s[2], math.min(s[3], math.ceil(free / 4))))
      s[4] = redis.call('INCRBY', KEYS[i], grant)
    end
    local free = s[1] - s[4]
    if free < 0 then free = 0 end
    table.insert(out, grant)
    table.insert(out, free)
    table.insert(out, s[5])
    table.insert(out, s[6])
  else
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, 0)
  end
end
return out
";

/// Announces this instance (ARGV 1) and counts the live ones (announced within ARGV 2 ms),
/// by Redis's clock.
const BEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
";

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

/// What a dimension needs from a take: its limit, units still needed, and the debt sent.
#[derive(Clone, Copy, Default)]
struct Ask {
    limit: u64,
    need: u64,
    had: u64,
    debt: u64,
    epoch: u64,
}

impl Quotas {
    pub fn new(
        redis: Option<(RedisLink, &str)>,
        degraded_gauge: IntGauge,
        refusals: IntCounterVec,
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
            let now = Instant::now();
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

    /// Admits against this instance's own count: the whole limit without Redis, its share
    /// while degraded.
    fn admit_locally(
        self: &Arc<Self>,
        key_id: i64,
        limits: Limits,
        (req, tok): (u64, u64),
    ) -> Result<Option<TokenHold>, Error> {
        let n = self.sharers();
        let now = Instant::now();
        let mut map = self.shard(key_id);
        let st = map.entry(key_id).or_default();
        st.req.roll(now);
        st.tok.roll(now);
        let mut retry = None;
        for (dim, limit, units, name) in [
            (&st.req, limits.rpm, req, "requests"),
            (&st.tok, limits.tpm, tok, "tokens"),
        ] {
            if let Some(limit) = limit
                && dim.used + units > limit.div_ceil(n)
            {
                self.refusals.with_label_values(&[name]).inc();
                let left = dim.ends.map_or(WINDOW, |e| e - now);
                retry = Some(retry.map_or(left, |r: Duration| r.max(left)));
            }
        }
        if let Some(retry_after) = retry {
            return Err(Error::RateLimited { retry_after });
        }
        for (dim, units) in [(&mut st.req, req), (&mut st.tok, tok)] {
            if units > 0 || dim.ends.is_some() {
                let ends = dim.ends.unwrap_or(now + WINDOW);
                dim.open(ends, &self.epochs);
                dim.used += units;
            }
        }
        Ok(limits.tpm.map(|_| TokenHold {
            quotas: self.clone(),
            key_id,
            units: tok,
            epoch: st.tok.epoch,
            from_slice: false,
            settled: false,
        }))
    }

    async fn admit_shared(
        self: &Arc<Self>,
        shared: &Shared,
        key_id: i64,
        limits: Limits,
        (req, tok): (u64, u64),
    ) -> Result<Option<TokenHold>, Error> {
        // From this instance's slices, when they hold enough: no network.
        let mut asks = [Ask::default(); 2];
        {
            let now = Instant::now();
            let mut map = self.shard(key_id);
            let st = map.entry(key_id).or_default();
            for (i, (dim, limit, units)) in [
                (&mut st.req, limits.rpm, req),
                (&mut st.tok, limits.tpm, tok),
            ]
            .into_iter()
            .enumerate()
            {
                dim.roll(now);
                let Some(limit) = limit else { continue };
                let had = dim.slice.min(units);
                dim.slice -= had;
                asks[i] = Ask {
                    limit,
                    need: units - had,
                    had,
                    debt: dim.debt,
                    epoch: dim.epoch,
                };
            }
            if asks.iter().all(|a| a.need == 0) {
                st.req.used += req;
                st.tok.used += tok;
                return Ok(self.hold(limits, key_id, tok, st.tok.epoch, true));
            }
        }
        // Otherwise one take from the shared window, for both limits.
        let sent = Instant::now();
        match self.take(shared, key_id, &asks).await {
            Ok((ok, taken)) => {
                let mut map = self.shard(key_id);
                let st = map.entry(key_id).or_default();
                let mut retry = Duration::ZERO;
                for (i, (dim, units, name)) in
                    [(&mut st.req, req, "requests"), (&mut st.tok, tok, "tokens")]
                        .into_iter()
                        .enumerate()
                {
                    let (ask, t) = (asks[i], taken[i]);
                    if ask.limit == 0 {
                        continue;
                    }
                    let same = dim.epoch == ask.epoch && !t.fresh;
                    if t.fresh || dim.epoch != ask.epoch {
                        *dim = Dim::default();
                    }
                    dim.open(sent + t.ttl, &self.epochs);
                    dim.free = t.free;
                    if same {
                        dim.debt = dim.debt.saturating_sub(ask.debt);
                    }
                    if ok {
                        dim.slice += t.granted - ask.need.min(t.granted);
                        dim.used += units;
                    } else {
                        if same {
                            dim.slice += ask.had;
                        }
                        if t.free < ask.need {
                            self.refusals.with_label_values(&[name]).inc();
                            retry = retry.max(t.ttl);
                        }
                    }
                }
                if !ok {
                    return Err(Error::RateLimited {
                        retry_after: retry.max(Duration::from_millis(1)),
                    });
                }
                let epoch = st.tok.epoch;
                Ok(self.hold(limits, key_id, tok, epoch, true))
            }
            Err(e) => {
                {
                    let mut map = self.shard(key_id);
                    let st = map.entry(key_id).or_default();
                    for (dim, ask) in [(&mut st.req, asks[0]), (&mut st.tok, asks[1])] {
                        if dim.epoch == ask.epoch {
                            dim.slice += ask.had;
                        }
                    }
                }
                self.degrade(&e);
                self.admit_locally(key_id, limits, (req, tok))
            }
        }
    }

    fn hold(
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

    async fn take(
        &self,
        shared: &Shared,
        key_id: i64,
        asks: &[Ask; 2],
    ) -> Result<(bool, [Taken; 2]), Error> {
        let keys = [
            format!("{}r:{key_id}", shared.prefix),
            format!("{}t:{key_id}", shared.prefix),
        ];
        let win = WINDOW.as_millis() as u64;
        let mut invocation = shared.take.key(&keys[0]);
        invocation.key(&keys[1]).arg(win);
        for a in asks {
            invocation
                .arg(a.limit)
                .arg(a.need)
                .arg((a.limit / 20).max(1))
                .arg(a.debt);
        }
        let out: Vec<i64> = shared
            .link
            .call_within(REDIS_WAIT, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        if out.len() != 9 {
            return Err(anyhow::anyhow!("rate limit script answered {} values", out.len()).into());
        }
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let dim = |i: usize| Taken {
            granted: n(out[1 + i * 4]),
            free: n(out[2 + i * 4]),
            ttl: Duration::from_millis(n(out[3 + i * 4])),
            fresh: out[4 + i * 4] == 1,
        };
        Ok((out[0] == 1, [dim(0), dim(1)]))
    }

    fn settle(&self, key_id: i64, units: u64, epoch: u64, from_slice: bool, used: u64) {
        let mut map = self.shard(key_id);
        let Some(st) = map.get_mut(&key_id) else {
            return;
        };
        let dim = &mut st.tok;
        if dim.epoch != epoch || dim.ends.is_none_or(|e| e <= Instant::now()) {
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
        let now = Instant::now();
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
                    reset: d.ends.map_or(Duration::ZERO, |e| e - now),
                },
            })
        };
        RateView {
            requests: one(limits.rpm, st.map(|s| &s.req)),
            tokens: one(limits.tpm, st.map(|s| &s.tok)),
        }
    }

    fn degrade(&self, e: &Error) {
        if !self.degraded.swap(true, Ordering::AcqRel) {
            self.degraded_gauge.set(1);
        }
        static LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
        if let Some(held) = LOG.ready() {
            tracing::warn!(
                error = %e,
                instances = self.instances(),
                similar_since_last = held,
                "rate limits counted locally (each instance its share): redis unreachable"
            );
        }
    }

    fn recover(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            self.degraded_gauge.set(0);
            tracing::info!("rate limits shared through redis again");
        }
    }

    /// Announces this instance and counts the others until `stop` (every [`BEAT`]; every
    /// second while degraded, which also notices Redis's return). Does nothing without Redis.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let Some(shared) = &self.shared else { return };
        tokio::pin!(stop);
        let key = format!("{}instances", shared.prefix);
        loop {
            let beat = shared
                .link
                .call_within(REDIS_WAIT, |mut conn| {
                    let mut invocation = shared.beat.key(&key);
                    invocation
                        .arg(&shared.instance)
                        .arg(INSTANCE_TTL.as_millis() as u64);
                    async move { invocation.invoke_async::<u64>(&mut conn).await }
                })
                .await;
            match beat {
                Ok(n) => {
                    self.instances.store(n.max(1), Ordering::Relaxed);
                    self.recover();
                }
                Err(e) => self.degrade(&e),
            }
            let pause = if self.degraded() { PROBE } else { BEAT };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = &mut stop => break,
            }
        }
        let (key, me) = (key.clone(), shared.instance.clone());
        let _ = shared
            .link
            .call_within(REDIS_WAIT, |mut conn| async move {
                redis::cmd("ZREM")
                    .arg(&key)
                    .arg(&me)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`.
pub fn reset_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
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
        ))
    }

    #[tokio::test]
    async fn requests_per_minute_are_counted_per_key() {
        let q = quotas();
        let l = Limits {
            rpm: Some(3),
            tpm: None,
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
            rpm: None,
            tpm: Some(1000),
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
            tpm: None,
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
            ..LimitsConfig::default()
        };
        c.groups.insert(
            "vip".into(),
            crate::config::GroupLimits {
                rpm: Some(100),
                tpm: None,
            },
        );
        let own = Limits {
            rpm: None,
            tpm: Some(5),
        };
        assert_eq!(
            Limits::resolve(own, "vip", &c),
            Limits {
                rpm: Some(100),
                tpm: Some(5)
            }
        );
        assert_eq!(
            Limits::resolve(Limits::default(), "default", &c),
            Limits {
                rpm: Some(10),
                tpm: Some(1000)
            }
        );
    }

    #[test]
    fn reset_is_written_as_openai_does() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(2)), "2s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
    }
}
