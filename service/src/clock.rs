//! The clocks the service reads, behind one handle so that tests can move time by hand: a
//! monotonic instant (windows, idleness, rates) and the lease clock, which keeps counting while
//! the machine (or the VM) is suspended, unlike `Instant`: a lease must not look alive to an
//! instance that was frozen for longer than it. Wall time (what the database compares) stays
//! [`crate::now_ms`].

use std::sync::Arc;
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync + 'static {
    /// A monotonic instant.
    fn now(&self) -> Instant;
    /// Time since boot, counting suspended time.
    fn since_boot(&self) -> Duration;
}

/// A clock the components share.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn since_boot(&self) -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
}

/// A clock that moves only when a test moves it: both readings advance together, as a paused
/// process sees them when it wakes.
#[cfg(test)]
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    moved: std::sync::Mutex<Duration>,
}

#[cfg(test)]
impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            start: Instant::now(),
            moved: std::sync::Mutex::new(Duration::ZERO),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.moved.lock().expect("clock") += by;
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.moved.lock().expect("clock")
    }

    fn since_boot(&self) -> Duration {
        Duration::from_secs(1_000) + *self.moved.lock().expect("clock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_lease_clock_moves_forward() {
        let c = SystemClock;
        let a = c.since_boot();
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.since_boot() >= a + Duration::from_millis(5));
    }

    #[test]
    fn a_manual_clock_moves_only_when_moved() {
        let c = ManualClock::new();
        let (t, b) = (c.now(), c.since_boot());
        assert_eq!((c.now(), c.since_boot()), (t, b));
        c.advance(Duration::from_secs(3));
        assert_eq!(c.now() - t, Duration::from_secs(3));
        assert_eq!(c.since_boot() - b, Duration::from_secs(3));
    }
}
