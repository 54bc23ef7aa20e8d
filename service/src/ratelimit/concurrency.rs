//! Per-key calls in flight (`max_concurrent` on keys, groups and `limits.default_max_concurrent`).
//!
//! Without Redis a key's calls are counted in this process. With `redis.url` set every call takes
//! a *slot* in the key's sorted set in Redis (`<prefix>c:<key id>`, one member per call, scored
//! by the time its slot expires, by Redis's clock): one atomic script drops expired slots, counts
//! the rest and adds this one if the count is below the limit. A call gives its slot back when it
//! ends (however it ends: answered, failed, left by its client); while it lasts, its instance
//! renews its slots every third of `limits.concurrency_lease_seconds`, so the slots of an
//! instance that dies (or is cut off) expire within that lease and are free again for the
//! others.
//!
//! While Redis is unreachable (the quota limiter's degraded state, which it also enters) calls
//! are counted here, each instance admitting its share of the limit, ⌈limit / N⌉, N being the
//! instances alive at the last contact, as for requests and tokens per minute.

use super::quota::{Quotas, REDIS_WAIT};
use crate::Error;
use crate::kv::RedisLink;
use prometheus::IntCounterVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Takes a slot. KEYS: the key's set. ARGV: lease ms, limit, member. Returns 1 (taken) or 0.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
";

/// Renews slots that still exist. KEYS: the sets, ARGV: lease ms, then one member per key.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', k, lease)
end
return 1
";

struct Shared {
    link: RedisLink,
    prefix: String,
    instance: String,
    acquire: redis::Script,
    renew: redis::Script,
}

pub struct Concurrency {
    quotas: Arc<Quotas>,
    shared: Option<Shared>,
    lease: Duration,
    /// This instance's calls in flight, per key (all of them, in Redis or not).
    local: Mutex<HashMap<i64, u64>>,
    /// The slots this instance holds in Redis (member → key), renewed while they last.
    live: Mutex<HashMap<String, i64>>,
    refusals: IntCounterVec,
}

/// A call's place among its key's calls in flight: given back when dropped.
pub struct Slot {
    owner: Arc<Concurrency>,
    key_id: i64,
    /// Its member in Redis, when it holds one there.
    member: Option<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.release_local(self.key_id);
        let Some(member) = self.member.take() else {
            return;
        };
        self.owner.lock_live().remove(&member);
        let Some(shared) = &self.owner.shared else {
            return;
        };
        let link = shared.link.clone();
        let key = self.owner.redis_key(self.key_id);
        // Dropped off the runtime too (a settlement on the counting thread): the lease
        // expires the slot if it cannot be removed now.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = link
                    .call(|mut c| async move {
                        redis::cmd("ZREM")
                            .arg(&key)
                            .arg(&member)
                            .query_async::<i64>(&mut c)
                            .await
                    })
                    .await;
            });
        }
    }
}

impl Concurrency {
    pub fn new(
        redis: Option<(RedisLink, &str)>,
        quotas: Arc<Quotas>,
        lease: Duration,
        refusals: IntCounterVec,
    ) -> Concurrency {
        Concurrency {
            quotas,
            shared: redis.map(|(link, prefix)| Shared {
                link,
                prefix: format!("{prefix}c:"),
                instance: hex::encode(rand::random::<[u8; 8]>()),
                acquire: redis::Script::new(ACQUIRE),
                renew: redis::Script::new(RENEW),
            }),
            lease,
            local: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            refusals,
        }
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn redis_key(&self, key_id: i64) -> String {
        let prefix = self.shared.as_ref().map_or("", |s| s.prefix.as_str());
        format!("{prefix}{key_id}")
    }

    /// Takes a slot for a call of `key_id` under `limit` calls in flight (none: unlimited, no
    /// slot). Refused with 429 `concurrency_limit_exceeded` when the key has `limit` calls open.
    pub async fn acquire(
        self: &Arc<Self>,
        key_id: i64,
        limit: Option<u64>,
    ) -> Result<Option<Slot>, Error> {
        let Some(limit) = limit else { return Ok(None) };
        let Some(shared) = self.shared.as_ref().filter(|_| !self.quotas.degraded()) else {
            let share = match self.shared {
                Some(_) => limit.div_ceil(self.quotas.instances()),
                None => limit,
            };
            return self.acquire_local(key_id, limit, share);
        };
        let member = format!("{}:{}", shared.instance, crate::random_id());
        let key = self.redis_key(key_id);
        let lease = self.lease.as_millis() as u64;
        let (script, m) = (&shared.acquire, member.clone());
        let taken = shared
            .link
            .call_within(REDIS_WAIT, |mut c| async move {
                script
                    .key(&key)
                    .arg(lease)
                    .arg(limit)
                    .arg(&m)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match taken {
            Ok(1) => {
                *self.lock_local().entry(key_id).or_default() += 1;
                self.lock_live().insert(member.clone(), key_id);
                Ok(Some(Slot {
                    owner: self.clone(),
                    key_id,
                    member: Some(member),
                }))
            }
            Ok(_) => Err(self.refuse(limit)),
            Err(e) => {
                self.quotas.degrade(&e);
                let share = limit.div_ceil(self.quotas.instances());
                self.acquire_local(key_id, limit, share)
            }
        }
    }

    fn acquire_local(
        self: &Arc<Self>,
        key_id: i64,
        limit: u64,
        share: u64,
    ) -> Result<Option<Slot>, Error> {
        {
            let mut local = self.lock_local();
            let n = local.entry(key_id).or_default();
            if *n >= share {
                drop(local);
                return Err(self.refuse(limit));
            }
            *n += 1;
        }
        Ok(Some(Slot {
            owner: self.clone(),
            key_id,
            member: None,
        }))
    }

    fn refuse(&self, limit: u64) -> Error {
        self.refusals.with_label_values(&["concurrency"]).inc();
        Error::TooManyInFlight { limit }
    }

    fn release_local(&self, key_id: i64) {
        let mut local = self.lock_local();
        if let Some(n) = local.get_mut(&key_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                local.remove(&key_id);
            }
        }
    }

    /// Renews this instance's slots in Redis every third of the lease until `stop`.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let Some(shared) = &self.shared else { return };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.lease / 3) => {}
                () = &mut stop => return,
            }
            let slots: Vec<(String, i64)> = self
                .lock_live()
                .iter()
                .map(|(m, k)| (m.clone(), *k))
                .collect();
            if slots.is_empty() {
                continue;
            }
            for batch in slots.chunks(500) {
                let mut inv = shared.renew.prepare_invoke();
                inv.arg(self.lease.as_millis() as u64);
                for (member, key) in batch {
                    inv.key(self.redis_key(*key)).arg(member);
                }
                let inv = &inv;
                if let Err(e) = shared
                    .link
                    .call(|mut c| async move { inv.invoke_async::<i64>(&mut c).await })
                    .await
                {
                    tracing::warn!(error = %e, slots = batch.len(), "renewing calls-in-flight slots failed; they expire with their lease");
                }
            }
        }
    }
}
