//! Limits: fixed windows ([`window`]: sign-in throttles, read quotas), the per-key
//! requests and tokens per minute ([`quota`]) and calls in flight ([`concurrency`]).

pub mod concurrency;
pub mod quota;
pub mod window;

use window::Limiter;

use crate::state::Background;
use crate::{Error, Services};
use std::time::Duration;

/// Starts the quota limiter's loop (its Redis slices and sweeps).
pub fn start(svc: &Services, bg: &mut Background) {
    let stop = bg.stopped();
    bg.spawn(svc.quotas.clone().run(stop));
    let stop = bg.stopped();
    bg.spawn(svc.concurrency.clone().run(stop));
}

/// A read route's quota per API key per minute (`per_minute` 0: unlimited): 429 with the time
/// to the window's end past it. The quota protects the database from a polling client, not
/// money: when the limiter cannot be reached (Redis down) the read goes ahead, logged at most
/// once a second.
pub async fn route_quota(
    limiter: &Limiter,
    route: &'static str,
    key_id: i64,
    per_minute: u32,
) -> Result<(), Error> {
    if per_minute == 0 {
        return Ok(());
    }
    match limiter
        .hit(&format!("route:{route}:{key_id}"), Duration::from_secs(60))
        .await
    {
        Ok(count) if count.hits > per_minute => Err(Error::RateLimited {
            retry_after: count.resets_in,
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            static LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
            if let Some(held) = LOG.ready() {
                tracing::warn!(route, error = %e, similar_since_last = held, "read quota not checked: the limiter is unavailable");
            }
            Ok(())
        }
    }
}
