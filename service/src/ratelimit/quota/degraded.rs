//! The degraded share: when Redis cannot be reached within [`REDIS_WAIT`], an instance counts
//! each key's window in memory and admits at most ⌈limit / N⌉, N being the instances alive at
//! its last contact with Redis; a beat every [`BEAT`] counts them, and a probe every second
//! notices Redis's return.

use super::{BEAT, INSTANCE_TTL, Limits, PROBE, Quotas, REDIS_WAIT, TokenHold};
use crate::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Quotas {
    /// Admits against this instance's own count: the whole limit without Redis, its share
    /// while degraded.
    pub(super) fn admit_locally(
        self: &Arc<Self>,
        key_id: i64,
        limits: Limits,
        (req, tok): (u64, u64),
    ) -> Result<Option<TokenHold>, Error> {
        let n = self.sharers();
        let now = self.clock.now();
        let mut map = self.shard(key_id);
        let st = map.entry(key_id).or_default();
        if let Err(refused) = st.admit_local(limits, (req, tok), n, now, &self.epochs) {
            for (passed, name) in [(refused.requests, "requests"), (refused.tokens, "tokens")] {
                if passed {
                    self.refusals.with_label_values(&[name]).inc();
                }
            }
            return Err(Error::RateLimited {
                retry_after: refused.retry_after,
            });
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

    pub(crate) fn degrade(&self, e: &Error) {
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

#[cfg(test)]
mod tests {
    use super::super::WINDOW;
    use super::*;
    use crate::clock::ManualClock;
    use crate::kv::RedisLink;
    use prometheus::{IntCounterVec, IntGauge};
    use std::time::Duration;

    #[tokio::test]
    async fn after_redis_goes_away_an_instance_admits_its_share() {
        let clock = ManualClock::new();
        let refusals =
            IntCounterVec::new(prometheus::Opts::new("r", "r"), &["limit"]).expect("metric");
        let q = Arc::new(Quotas::new(
            Some((RedisLink::unreachable(Duration::from_millis(50)), "t:")),
            IntGauge::new("g", "g").expect("metric"),
            refusals.clone(),
            clock.clone(),
        ));
        // Three instances were alive at the last contact with Redis.
        q.instances.store(3, Ordering::Relaxed);
        let l = Limits {
            rpm: Some(10),
            tpm: None,
            concurrent: None,
        };
        assert!(!q.degraded());
        for _ in 0..4 {
            q.admit(7, l, 1).await.expect("within ⌈10 / 3⌉");
        }
        assert!(q.degraded(), "the failed take degraded the instance");
        let Err(Error::RateLimited { retry_after }) = q.admit(7, l, 1).await else {
            panic!("the fifth is past the share");
        };
        assert_eq!(
            retry_after, WINDOW,
            "the window opened at the first request"
        );
        assert_eq!(refusals.with_label_values(&["requests"]).get(), 1);
        let v = q.view(7, l).requests.expect("rpm");
        assert_eq!((v.limit, v.remaining), (10, 0), "the share is spent");
        clock.advance(WINDOW);
        q.admit(7, l, 1).await.expect("the next window");
    }
}
