//! What a key may do, as the proxy needs it on every request, and the short-lived cache of it:
//! a component below the `Services` context (it names no domain operation).

use super::cidr::IpNet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// What a key may do, as the proxy needs it on every request.
#[derive(Clone, Debug)]
pub struct KeyAuth {
    pub id: i64,
    pub user_id: i64,
    pub user_group: String,
    pub prefix: String,
    pub digest: [u8; 32],
    pub active: bool,
    pub expires_at: Option<i64>,
    pub allowed_models: Vec<String>,
    pub allowed_ips: Vec<IpNet>,
    pub spend_cap: Option<i64>,
    /// The key's own limits until [`authenticate`] resolves them (key, group, default).
    pub limits: crate::ratelimit::quota::Limits,
}

impl KeyAuth {
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|m| m == model)
    }
}

/// A cached key and when it was read.
type Cached = (Arc<KeyAuth>, Instant);

/// The most entries each of the cache's maps holds: past it, the stale ones are dropped, and
/// all of them if none is stale (a flood of distinct keys cannot grow it without bound).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct KeyCache {
    map: Mutex<HashMap<[u8; 32], Cached>>,
    /// Digests that matched no key, and when: the same bad key again costs no lookup.
    unknown: Mutex<HashMap<[u8; 32], Instant>>,
    /// Client IPs past `auth.max_invalid_keys_per_ip`, until their window ends: a key of theirs
    /// that is not cached is refused without a lookup, unless it is in `good`.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Digests of keys found lately (for [`GOOD_FOR`]): a real key whose cached entry expired
    /// is still looked up for a client behind an address that others flood with bad keys.
    good: Mutex<HashMap<[u8; 32], Instant>>,
}

/// How long a key found once may pass an address's block (it is looked up all the same, so a
/// key revoked meanwhile is refused).
const GOOD_FOR: Duration = Duration::from_secs(600);

/// Inserts into a bounded map of expiry times, dropping what expired when it is full.
fn bounded_put<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Instant>>, key: K, until: Instant) {
    if let Ok(mut map) = map.lock() {
        if map.len() >= MAX_ENTRIES {
            let now = Instant::now();
            map.retain(|_, t| *t > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, until);
    }
}

/// The time left before `key`'s entry expires, if it has one that has not.
fn left<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Instant>>, key: &K) -> Option<Duration> {
    let until = *map.lock().ok()?.get(key)?;
    until
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

impl KeyCache {
    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Arc<KeyAuth>> {
        let map = self.map.lock().ok()?;
        map.get(digest)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(k, _)| k.clone())
    }

    pub(super) fn put(&self, key: Arc<KeyAuth>) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() > 100_000 {
                map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            }
            map.insert(key.digest, (key.clone(), Instant::now()));
        }
        bounded_put(&self.good, key.digest, Instant::now() + GOOD_FOR);
    }

    /// Whether `digest` was a key found lately.
    pub(super) fn was_good(&self, digest: &[u8; 32]) -> bool {
        left(&self.good, digest).is_some()
    }

    /// Whether `digest` matched no key a moment ago.
    pub(super) fn is_unknown(&self, digest: &[u8; 32]) -> bool {
        left(&self.unknown, digest).is_some()
    }

    pub(super) fn put_unknown(&self, digest: [u8; 32]) {
        bounded_put(&self.unknown, digest, Instant::now() + CACHE_TTL);
    }

    /// How long `ip` stays refused, if it is.
    pub(super) fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        left(&self.blocked, &ip)
    }

    pub(super) fn block(&self, ip: IpAddr, for_: Duration) {
        bounded_put(&self.blocked, ip, Instant::now() + for_);
    }

    /// Forgets every cached key and every key known not to exist (after any change to keys or
    /// users).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
        if let Ok(mut unknown) = self.unknown.lock() {
            unknown.clear();
        }
    }
}

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}
