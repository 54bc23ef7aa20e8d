//! The status page's latest reading per price group: a component the `Services` context holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use types::ServiceStatus;

#[derive(Default)]
pub struct StatusCache(Mutex<HashMap<String, (Instant, Arc<ServiceStatus>)>>);

impl StatusCache {
    /// `group`'s reading when it is younger than `ttl`.
    pub fn fresh(&self, group: &str, ttl: Duration) -> Option<Arc<ServiceStatus>> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(group)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, s)| s.clone())
    }

    pub fn put(&self, group: &str, reading: Arc<ServiceStatus>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.to_string(), (Instant::now(), reading));
    }
}
