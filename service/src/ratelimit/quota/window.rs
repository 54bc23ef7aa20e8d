//! One limit's window as this instance sees it, and the count of a key's windows against this
//! instance's own share of its limits (all of it without Redis, ⌈limit / N⌉ while degraded):
//! pure arithmetic on instants the caller passes in.

use super::{Limits, WINDOW};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One limit's window as this instance sees it.
#[derive(Debug, Default)]
pub(super) struct Dim {
    /// Where the window ends by this instance's clock (`None`: no window open).
    pub(super) ends: Option<Instant>,
    /// The window's identity here: a token settlement of an earlier window is dropped.
    pub(super) epoch: u64,
    /// Units of the shared window set aside for this instance and not yet admitted.
    pub(super) slice: u64,
    /// Units this instance admitted in the window.
    pub(super) used: u64,
    /// The shared window's units that no instance had taken, at the last take.
    pub(super) free: u64,
    /// Usage beyond reservations, added to the shared window at the next take.
    pub(super) debt: u64,
}

impl Dim {
    pub(super) fn roll(&mut self, now: Instant) {
        if self.ends.is_some_and(|e| e <= now) {
            *self = Dim::default();
        }
    }

    pub(super) fn open(&mut self, ends: Instant, epochs: &AtomicU64) {
        if self.ends.is_none() {
            self.epoch = epochs.fetch_add(1, Ordering::Relaxed) + 1;
        }
        self.ends = Some(ends);
    }
}

#[derive(Debug, Default)]
pub(super) struct KeyState {
    pub(super) req: Dim,
    pub(super) tok: Dim,
}

/// A request refused by a local count: when to retry, and which limits it passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) retry_after: Duration,
    pub(super) requests: bool,
    pub(super) tokens: bool,
}

impl KeyState {
    /// Counts `req` requests and `tok` tokens at `now` against a share of `1 / n` of each limit
    /// (a window opens at the first request and lasts [`WINDOW`]), or refuses with the time
    /// until the later window that is full ends.
    pub(super) fn admit_local(
        &mut self,
        limits: Limits,
        (req, tok): (u64, u64),
        n: u64,
        now: Instant,
        epochs: &AtomicU64,
    ) -> Result<(), Refused> {
        self.req.roll(now);
        self.tok.roll(now);
        let mut refused = Refused {
            retry_after: Duration::ZERO,
            requests: false,
            tokens: false,
        };
        for (dim, limit, units, flag) in [
            (&self.req, limits.rpm, req, &mut refused.requests),
            (&self.tok, limits.tpm, tok, &mut refused.tokens),
        ] {
            if let Some(limit) = limit
                && dim.used + units > limit.div_ceil(n)
            {
                *flag = true;
                let left = dim
                    .ends
                    .map_or(WINDOW, |e| e.saturating_duration_since(now));
                refused.retry_after = refused.retry_after.max(left);
            }
        }
        if refused.requests || refused.tokens {
            return Err(refused);
        }
        for (dim, units) in [(&mut self.req, req), (&mut self.tok, tok)] {
            if units > 0 || dim.ends.is_some() {
                let ends = dim.ends.unwrap_or(now + WINDOW);
                dim.open(ends, epochs);
                dim.used += units;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_the_limit_is_counted_until_its_window_resets() {
        let epochs = AtomicU64::new(0);
        let t0 = Instant::now();
        let l = Limits {
            rpm: Some(10),
            tpm: Some(100),
            concurrent: None,
        };
        let mut st = KeyState::default();
        // Three instances share the limit: this one admits ⌈10 / 3⌉ = 4 requests.
        for i in 0..4 {
            let at = t0 + Duration::from_secs(i);
            st.admit_local(l, (1, 5), 3, at, &epochs)
                .expect("within the share");
        }
        let refused = st
            .admit_local(l, (1, 5), 3, t0 + Duration::from_secs(10), &epochs)
            .expect_err("the fifth");
        assert_eq!(
            refused,
            Refused {
                retry_after: Duration::from_secs(50),
                requests: true,
                tokens: false,
            },
            "the window opened at the first request"
        );
        // Tokens: ⌈100 / 3⌉ = 34, 20 used.
        let refused = st
            .admit_local(l, (0, 15), 3, t0 + Duration::from_secs(10), &epochs)
            .expect_err("20 + 15 > 34");
        assert!(refused.tokens && !refused.requests);
        let epoch = st.req.epoch;
        st.admit_local(l, (1, 5), 3, t0 + WINDOW, &epochs)
            .expect("a new window at the old one's end");
        assert_eq!((st.req.used, st.tok.used), (1, 5));
        assert_ne!(st.req.epoch, epoch, "a new window is a new epoch");
        // Alone (no Redis configured), the whole limit.
        let mut alone = KeyState::default();
        for _ in 0..10 {
            alone
                .admit_local(l, (1, 0), 1, t0, &epochs)
                .expect("whole limit");
        }
        assert!(alone.admit_local(l, (1, 0), 1, t0, &epochs).is_err());
    }
}
