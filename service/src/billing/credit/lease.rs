//! The credit lease: this instance's right to spend from its grants in memory.
//!
//! The lease is a row in `instances` that ends at `lease_until` by the database's clock; every
//! renewal (and every hold, which renews it in the same transaction) extends it by `lease`. The
//! instance spends only while it can prove the lease alive by its own lease clock (one that
//! counts suspended time): until the moment it *sent* its last successful renewal plus `lease`.
//! Others take the lease over only when the database's clock is past `lease_until` plus
//! `margin`, and only once they have themselves been in touch with the database for the margin
//! ([`SweepGate`]). The row's id is the fencing token; a taken-over lease is replaced by a new
//! one under a new id ([`CreditManager::relet`]).

use super::CreditManager;
use crate::Error;
use crate::billing::repo;
use crate::clock::SharedClock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease's timing: its length, and the margin another instance waits beyond it.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    pub lease: Duration,
    pub margin: Duration,
}

impl LeaseTiming {
    /// A lease of `lease`; others wait a quarter of it more (at least a second) before taking it.
    pub fn new(lease: Duration) -> LeaseTiming {
        LeaseTiming {
            lease,
            margin: (lease / 4).max(Duration::from_secs(1)),
        }
    }

    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }

    pub(super) fn margin_ms(&self) -> i64 {
        i64::try_from(self.margin.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

/// This instance's lease: its id (the fencing token) and generation.
#[derive(Clone, Debug)]
pub(super) struct LeaseId {
    pub(super) id: Arc<str>,
    pub(super) epoch: u64,
}

/// The lease as this instance knows it, on its clock.
pub(super) struct Lease {
    /// A random prefix; the lease id is `<prefix>-<epoch>`.
    prefix: String,
    current: Mutex<LeaseId>,
    /// The current lease's epoch, read on the hot path.
    epoch: AtomicU64,
    /// Until when (by the lease clock, in nanoseconds) the lease is proven alive; 0: it is not.
    valid_until: AtomicU64,
    pub(super) timing: LeaseTiming,
    clock: SharedClock,
}

impl Lease {
    pub(super) fn new(timing: LeaseTiming, clock: SharedClock) -> Lease {
        let prefix = crate::random_id();
        Lease {
            current: Mutex::new(LeaseId {
                id: format!("{prefix}-0").into(),
                epoch: 0,
            }),
            prefix,
            epoch: AtomicU64::new(0),
            valid_until: AtomicU64::new(0),
            timing,
            clock,
        }
    }

    pub(super) fn current(&self) -> LeaseId {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Now, by the lease clock: when a renewal is sent.
    pub(super) fn sent_now(&self) -> Duration {
        self.clock.since_boot()
    }

    /// True while this instance may spend from its grants in memory.
    pub(super) fn alive(&self) -> bool {
        let until = self.valid_until.load(Ordering::Acquire);
        until != 0 && nanos(self.clock.since_boot()) < until
    }

    /// A renewal of lease `epoch` sent at `sent` succeeded: it is proven alive until
    /// `sent + lease` (a renewal of an older lease proves nothing).
    pub(super) fn extend(&self, epoch: u64, sent: Duration) {
        if self.epoch() == epoch {
            let until = nanos(sent + self.timing.lease);
            self.valid_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// Lease `epoch` was taken over: spending stops at once; the next lease's id (a fresh one
    /// each try: a registration whose answer was lost leaves a row that simply expires, never
    /// one this instance could mistake for its own).
    pub(super) fn stop(&self, epoch: u64) -> LeaseId {
        self.valid_until.store(0, Ordering::Release);
        LeaseId {
            id: format!("{}-{}-{}", self.prefix, epoch + 1, &crate::random_id()[..8]).into(),
            epoch: epoch + 1,
        }
    }

    /// The next lease is registered: it becomes the current one, alive from `sent`.
    pub(super) fn install(&self, next: LeaseId, sent: Duration) {
        let epoch = next.epoch;
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        self.epoch.store(epoch, Ordering::Release);
        self.extend(epoch, sent);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// When this instance may take over the leases of instances that stopped renewing theirs: only
/// once it has itself been in touch with the database for the margin (after an outage every
/// instance gets the time to renew before any sweeps another), and at most every third of a
/// lease.
#[derive(Debug, Default)]
pub(super) struct SweepGate {
    in_touch_since: Option<Instant>,
    last_sweep: Option<Instant>,
}

impl SweepGate {
    /// A renewal succeeded at `now`: whether to sweep now.
    pub(super) fn renewed(&mut self, now: Instant, timing: &LeaseTiming) -> bool {
        let since = *self.in_touch_since.get_or_insert(now);
        let due = self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= timing.lease / 3);
        if now.saturating_duration_since(since) >= timing.margin && due {
            self.last_sweep = Some(now);
            return true;
        }
        false
    }

    /// A renewal failed: the time in touch starts again.
    pub(super) fn lost_touch(&mut self) {
        self.in_touch_since = None;
    }
}

static RENEW_FAILED_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();

impl CreditManager {
    /// This instance's current lease id (it changes when a lease is taken over).
    pub fn instance_id(&self) -> String {
        self.lease.current().id.to_string()
    }

    /// Starts the first lease. Call once, before serving.
    pub async fn start(&self) -> Result<(), Error> {
        let lease = self.lease.current();
        let sent = self.lease.sent_now();
        repo::register(&self.db, &lease.id, self.lease.timing.lease_ms()).await?;
        self.lease.extend(lease.epoch, sent);
        Ok(())
    }

    /// Lease `epoch` was taken over: stop spending at once and start a new lease (once, however
    /// many found out). Grants of the old lease are lost lazily, account by account.
    pub(super) async fn relet(&self, epoch: u64) -> Result<(), Error> {
        let _one = self.relet.lock().await;
        if self.lease.epoch() != epoch {
            return Ok(()); // someone else did it
        }
        let next = self.lease.stop(epoch);
        let sent = self.lease.sent_now();
        repo::register(&self.db, &next.id, self.lease.timing.lease_ms()).await?;
        tracing::warn!(lease = %next.id, "the credit lease was taken over by another instance (a pause or partition longer than the lease); a new lease starts");
        self.lease.install(next, sent);
        self.wake.notify_one();
        Ok(())
    }

    /// Renews the lease; on a lease taken over, starts a new one.
    pub(super) async fn renew(&self) -> Result<(), Error> {
        let lease = self.lease.current();
        let sent = self.lease.sent_now();
        if repo::renew(&self.db, &lease.id, self.lease.timing.lease_ms()).await? {
            self.lease.extend(lease.epoch, sent);
            Ok(())
        } else {
            self.relet(lease.epoch).await
        }
    }

    /// Keeps the lease: renews it every `interval` (at most a quarter of the lease), and takes
    /// over the leases of instances that stopped renewing theirs when the [`SweepGate`] says so.
    pub(super) async fn keep_lease(
        self: Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let timing = self.lease.timing;
        let interval = interval
            .min(timing.lease / 4)
            .max(Duration::from_millis(10));
        let mut gate = SweepGate::default();
        loop {
            let renewed = tokio::time::timeout(timing.lease / 2, self.renew()).await;
            match renewed {
                Ok(Ok(())) => {
                    if gate.renewed(self.clock.now(), &timing) {
                        let me = self.instance_id();
                        match repo::sweep(&self.db, &me, timing.margin_ms()).await {
                            Ok(n) if n > 0 => {
                                tracing::info!(grants = n, "closed grants of stopped instances")
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "grant sweep failed"),
                        }
                    }
                }
                failed => {
                    gate.lost_touch();
                    if let Some(held) = RENEW_FAILED_LOG.ready() {
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the database did not answer in time".into(),
                        };
                        tracing::warn!(
                            error,
                            similar_since_last = held,
                            "renewing the credit lease failed"
                        );
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {},
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    }
}

/// The lease on a clock the tests move by hand.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    #[test]
    fn others_wait_a_quarter_lease_and_at_least_a_second() {
        let t = LeaseTiming::new(Duration::from_secs(15));
        assert_eq!(t.margin, Duration::from_millis(3_750));
        assert_eq!((t.lease_ms(), t.margin_ms()), (15_000, 3_750));
        let t = LeaseTiming::new(Duration::from_secs(2));
        assert_eq!(t.margin, Duration::from_secs(1));
    }

    #[test]
    fn a_lease_lapses_while_its_instance_is_paused() {
        let clock = ManualClock::new();
        let lease = Lease::new(LeaseTiming::new(Duration::from_secs(15)), clock.clone());
        assert!(!lease.alive(), "not alive before its first renewal");
        let sent = lease.sent_now();
        clock.advance(Duration::from_millis(200)); // the renewal's round trip
        lease.extend(0, sent);
        assert!(lease.alive());
        // Paused (SIGSTOP, a frozen VM): the lease clock keeps counting from the send.
        clock.advance(Duration::from_millis(14_799));
        assert!(lease.alive(), "until 15 s after the renewal was sent");
        clock.advance(Duration::from_millis(1));
        assert!(!lease.alive(), "not one moment past it");
        // A late answer to an old renewal cannot bring it back past its own send time.
        lease.extend(0, sent);
        assert!(!lease.alive());
        let sent = lease.sent_now();
        lease.extend(0, sent);
        assert!(lease.alive(), "a fresh renewal does");
    }

    #[test]
    fn a_taken_over_lease_stops_at_once_and_its_old_renewals_prove_nothing() {
        let clock = ManualClock::new();
        let lease = Lease::new(LeaseTiming::new(Duration::from_secs(15)), clock.clone());
        let old_sent = lease.sent_now();
        lease.extend(0, old_sent);
        let first = lease.current();
        let next = lease.stop(0);
        assert!(!lease.alive(), "spending stops before the new lease exists");
        assert_eq!(next.epoch, 1);
        assert_ne!(next.id, first.id, "a new fencing token");
        clock.advance(Duration::from_secs(1));
        lease.install(next, lease.sent_now());
        assert!(lease.alive());
        assert_eq!(lease.epoch(), 1);
        // A renewal of the old epoch, answered late, extends nothing.
        clock.advance(Duration::from_secs(15));
        lease.extend(0, lease.sent_now());
        assert!(!lease.alive());
    }

    #[test]
    fn a_takeover_waits_until_the_instance_was_in_touch_for_the_margin() {
        let clock = ManualClock::new();
        let timing = LeaseTiming::new(Duration::from_secs(15)); // margin 3.75 s
        let mut gate = SweepGate::default();
        let step = Duration::from_millis(1_250);
        let mut swept = Vec::new();
        for _ in 0..4 {
            swept.push(gate.renewed(clock.now(), &timing));
            clock.advance(step);
        }
        assert_eq!(
            swept,
            [false, false, false, true],
            "only at 3.75 s in touch"
        );
        // Then at most every third of a lease (5 s).
        assert!(!gate.renewed(clock.now(), &timing));
        clock.advance(Duration::from_millis(3_750));
        assert!(gate.renewed(clock.now(), &timing));
        // An outage: the time in touch starts again, however long ago the last sweep was.
        gate.lost_touch();
        clock.advance(Duration::from_secs(60));
        assert!(!gate.renewed(clock.now(), &timing));
        clock.advance(Duration::from_millis(3_749));
        assert!(!gate.renewed(clock.now(), &timing));
        clock.advance(Duration::from_millis(1));
        assert!(gate.renewed(clock.now(), &timing));
    }
}
