//! What a key may do, as the proxy needs it on every request, and the short-lived cache of it:
//! a component below the `Services` context (it names no domain operation).

use super::cidr::IpNet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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

#[derive(Default)]
pub struct KeyCache {
    map: Mutex<HashMap<[u8; 32], Cached>>,
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
            map.insert(key.digest, (key, Instant::now()));
        }
    }

    /// Forgets every cached key (after any change to keys or users).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}
