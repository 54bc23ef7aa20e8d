//! A grant as one instance holds it in memory: what it was granted, what requests hold and
//! owe, the spend rate that sizes the next top-up, and the reservations taken from it. Pure
//! arithmetic on instants the caller passes in (the manager's clock), tested by hand-moved time.

use super::CreditManager;
use crate::billing::account::AccountId;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) grant_id: Option<String>,
    /// The lease the grant was opened under: a grant of an older lease was taken over.
    pub(super) grant_epoch: u64,
    /// Bumped whenever the grant is closed or lost: a reservation taken from an earlier grant
    /// settles as overage (its hold is gone).
    pub(super) generation: u64,
    /// A charge batch sent but not yet acknowledged: a retry sends the same id, amount and day,
    /// so a try that went through although its answer was lost is not charged twice.
    pub(super) unacked: Option<Batch>,
    /// Likewise for a charge of overage.
    pub(super) unacked_overage: Option<Batch>,
    pub(super) topups: u32,
    pub(super) granted: i64,
    pub(super) reported: i64,
    /// Cost served from the grant and not yet charged, by the day of its calls.
    pub(super) pending: Days,
    pub(super) inflight: i64,
    /// Reservations of requests waiting for a top-up: the next top-up covers them all at once.
    pub(super) waiting: i64,
    /// Cost no grant covers (a request that used more than its reservation, or usage served
    /// from a grant that was lost): charged from the free balance as far as it goes, by the day
    /// of its calls.
    pub(super) overage: Days,
    /// Overage the free balance fell short of while this instance held a grant for the
    /// account: part of the balance was then held by that grant. Charged again once the grant
    /// is closed or lost (its hold released); only what is still short then is uncollected.
    pub(super) deferred: Days,
    pub(super) last_used: Option<Instant>,
    pub(super) window_start: Option<Instant>,
    pub(super) window_spend: i64,
    /// Spend of the last full one-second window.
    pub(super) last_window: i64,
    /// When the last grant closed for idleness, and the spend rate it had then: the first
    /// top-up of a burst that resumes within `RESUME_MEMORY` is sized by it, so the burst does
    /// not start with one database round trip per handful of requests.
    pub(super) resume: Option<(Instant, i64)>,
}

/// A charge sent: its id (the ledger row's reference), amount, and the day of its calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Batch {
    pub(super) id: String,
    pub(super) amount: i64,
    /// Unix ms of the start of the UTC day the calls' usage rows are dated (`usage_day`).
    pub(super) day: i64,
}

impl Batch {
    /// A new batch of `amount` for the calls of `day`.
    pub(super) fn new((day, amount): (i64, i64)) -> Batch {
        Batch {
            id: crate::random_id(),
            amount,
            day,
        }
    }
}

/// Units owed, by the UTC day of the calls they are for (the start of the day in unix ms),
/// oldest first. Charged one day at a time, so that every charge in the ledger names the day
/// of the usage rows it pays for, and the drift check can compare the two per user and day.
/// Nearly always one day; two around midnight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Days(Vec<(i64, i64)>);

impl Days {
    #[cfg(test)]
    pub(super) fn of(day: i64, amount: i64) -> Days {
        let mut d = Days::default();
        d.add(day, amount);
        d
    }

    pub(super) fn total(&self) -> i64 {
        self.0.iter().map(|(_, a)| a).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many days owe something.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The oldest day and what it owes.
    pub(super) fn first(&self) -> Option<(i64, i64)> {
        self.0.first().copied()
    }

    pub(super) fn add(&mut self, day: i64, amount: i64) {
        if amount <= 0 {
            return;
        }
        match self.0.iter_mut().find(|(d, _)| *d == day) {
            Some((_, a)) => *a += amount,
            None => {
                self.0.push((day, amount));
                self.0.sort_unstable();
            }
        }
    }

    /// `amount` of `day` was charged (or given up).
    pub(super) fn take(&mut self, day: i64, amount: i64) {
        if let Some((_, a)) = self.0.iter_mut().find(|(d, _)| *d == day) {
            *a -= amount;
        }
        self.0.retain(|(_, a)| *a > 0);
    }

    /// Moves what `other` owes here, oldest day first, up to `limit`; returns how much moved.
    pub(super) fn absorb_up_to(&mut self, other: &mut Days, limit: i64) -> i64 {
        let mut moved = 0;
        for (day, amount) in &mut other.0 {
            let part = (*amount).min(limit - moved);
            if part <= 0 {
                break;
            }
            *amount -= part;
            moved += part;
            self.add(*day, part);
        }
        other.0.retain(|(_, a)| *a > 0);
        moved
    }

    /// Moves everything `other` owes here.
    pub(super) fn absorb(&mut self, other: &mut Days) {
        for (day, amount) in std::mem::take(&mut other.0) {
            self.add(day, amount);
        }
    }
}

/// The start (unix ms) of the UTC day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// The spend rate is measured over one-second windows; a window younger than this is
/// projected from at least this much time, so that the first requests do not look like a flood.
const MIN_PROJECTION: Duration = Duration::from_millis(100);

/// How long an account idle since its grant closed keeps its last rate (and its place in the
/// manager), for the first top-up when it resumes.
const RESUME_MEMORY: Duration = Duration::from_secs(60);

impl State {
    pub(super) fn free(&self) -> i64 {
        self.granted - self.reported - self.pending.total() - self.inflight
    }

    pub(super) fn note_spend(&mut self, cost: i64, now: Instant) {
        match self.window_start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                self.window_spend += cost
            }
            Some(start) => {
                // A window closed; a gap of more than one window means the load is not sustained.
                self.last_window = if now.duration_since(start) < Duration::from_secs(2) {
                    self.window_spend
                } else {
                    0
                };
                self.window_start = Some(now);
                self.window_spend = cost;
            }
            None => {
                self.window_start = Some(now);
                self.window_spend = cost;
            }
        }
    }

    /// About one second of spend: the last full window's, or the current window's projected
    /// to a second when that is more (a burst that just began). Sizes prefetching.
    pub(super) fn rate(&self, now: Instant) -> i64 {
        let Some(start) = self.window_start else {
            return 0;
        };
        let elapsed = now.duration_since(start);
        if elapsed >= Duration::from_secs(2) {
            return 0;
        }
        if elapsed >= Duration::from_secs(1) {
            return self.window_spend.max(self.last_window);
        }
        let ms = elapsed.max(MIN_PROJECTION).as_millis() as i64;
        let projected = i64::try_from(i128::from(self.window_spend) * 1000 / i128::from(ms))
            .unwrap_or(i64::MAX);
        projected.max(self.last_window)
    }

    /// The rate the account had when its last grant closed, while that is recent.
    pub(super) fn resumed_rate(&self, now: Instant) -> i64 {
        match self.resume {
            Some((closed, rate)) if now.duration_since(closed) < RESUME_MEMORY => rate,
            _ => 0,
        }
    }

    /// Nothing held and nothing worth remembering: the manager may forget the account.
    pub(super) fn forgettable(&self, now: Instant) -> bool {
        self.grant_id.is_none()
            && self.inflight == 0
            && self.overage.is_empty()
            && self.deferred.is_empty()
            && self.unacked_overage.is_none()
            && self.waiting == 0
            && self.resumed_rate(now) == 0
    }

    /// Less than half a second of spend left (or cost to collect): time to report.
    pub(super) fn low(&self, now: Instant) -> bool {
        let rate = self.rate(now);
        !self.overage.is_empty() || (rate > 0 && self.free() * 2 < rate)
    }

    /// Idle: nothing in flight and unused for `idle_close` (the grant may be closed).
    pub(super) fn idle(&self, now: Instant, idle_close: Duration) -> bool {
        self.inflight == 0
            && self
                .last_used
                .is_none_or(|t| now.saturating_duration_since(t) >= idle_close)
    }

    /// What a top-up for a request of `amount` must hold (`need`) and may prefetch. The first
    /// try covers everyone queued behind the request (`waiting` includes it) and prefetches
    /// about a second of spend: a burst that just began projects its rate from its first
    /// moments, and one that resumes after a pause starts from the rate it had before. Later
    /// tries are for this request alone.
    pub(super) fn top_up_size(&self, first_try: bool, amount: i64, now: Instant) -> (i64, i64) {
        let free = if self.grant_id.is_some() {
            self.free().max(0)
        } else {
            0
        };
        let wanted = if first_try {
            self.waiting.max(amount)
        } else {
            amount
        };
        let rate = self.rate(now).max(self.resumed_rate(now));
        let prefetch = if first_try {
            rate.saturating_sub(free).max(0)
        } else {
            0
        };
        (wanted - free.min(wanted), prefetch)
    }

    /// Overage the grant's own free part can pay for becomes cost served from the grant (it is
    /// this account's money, held here): charged against the hold rather than from the free
    /// balance, which that hold keeps short. Not while an overage charge awaits its answer.
    pub(super) fn cover_overage(&mut self) {
        if self.grant_id.is_none() || self.unacked_overage.is_some() {
            return;
        }
        let free = self.free().max(0);
        self.pending.absorb_up_to(&mut self.overage, free);
    }

    /// The grant is gone (taken over, or opened under a lease that was): what was served from
    /// it and not reported becomes overage, and reservations taken from it settle as overage.
    pub(super) fn lose_grant(&mut self) {
        if self.grant_id.is_none() {
            return;
        }
        self.overage.absorb(&mut self.pending);
        self.overage.absorb(&mut self.deferred);
        self.unacked = None;
        self.grant_id = None;
        self.granted = 0;
        self.reported = 0;
        self.inflight = 0;
        self.topups = 0;
        self.generation += 1;
    }
}

pub(super) struct Account {
    pub(super) id: AccountId,
    pub(super) state: Mutex<State>,
    /// Serializes this account's database work (top-ups, reports, closing).
    pub(super) db_lock: tokio::sync::Mutex<()>,
}

impl Account {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request's place in the queue for a top-up; leaves it however the request ends.
pub(super) struct Waiter<'a> {
    account: &'a Account,
    amount: i64,
}

impl<'a> Waiter<'a> {
    pub(super) fn new(account: &'a Account, amount: i64) -> Self {
        account.lock().waiting += amount;
        Waiter { account, amount }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.account.lock().waiting -= self.amount;
    }
}

/// Money reserved for one request. Settle it with the exact cost; dropping it unsettled
/// releases the reservation (the request cost nothing).
pub struct Reservation {
    pub(super) account: Arc<Account>,
    pub(super) amount: i64,
    pub(super) generation: u64,
    pub(super) manager: Arc<CreditManager>,
    pub(super) settled: bool,
}

impl Reservation {
    pub fn amount(&self) -> i64 {
        self.amount
    }

    /// Charges `cost` (which may exceed the reservation) for a call whose usage row is dated
    /// `at` (unix ms), and frees the rest. Exactly once.
    pub fn settle(mut self, cost: i64, at: i64) {
        self.finish(cost.max(0), day_of(at));
    }

    fn finish(&mut self, cost: i64, day: i64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let now = self.manager.clock.now();
        let low = {
            let mut st = self.account.lock();
            if st.generation == self.generation {
                st.inflight -= self.amount;
                let covered = cost.min(st.free().max(0));
                st.pending.add(day, covered);
                st.overage.add(day, cost - covered);
            } else {
                // The grant this came from is gone (and its reservation with it).
                st.overage.add(day, cost);
            }
            st.last_used = Some(now);
            st.note_spend(cost, now);
            st.low(now)
        };
        if low {
            self.manager.wake.notify_one();
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.finish(0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_young_window_projects_its_spend_to_a_second() {
        let t0 = Instant::now();
        let mut st = State::default();
        assert_eq!(st.rate(t0), 0);
        st.note_spend(100, t0);
        // 100 units in the first 10 ms look like no more than 100 per 100 ms: 1,000 a second.
        assert_eq!(st.rate(at(t0, 10)), 1_000);
        st.note_spend(100, at(t0, 400));
        assert_eq!(st.rate(at(t0, 500)), 400);
        // A full window counts as it was; the next window starts from it.
        st.note_spend(50, at(t0, 1_200));
        assert_eq!(st.last_window, 200);
        assert_eq!(
            st.rate(at(t0, 1_300)),
            500,
            "50 in 100 ms projects past the last 200"
        );
        assert_eq!(
            st.rate(at(t0, 2_250)),
            200,
            "a closed window keeps the larger of the two"
        );
        // Two seconds without spend: the load is not sustained.
        assert_eq!(st.rate(at(t0, 3_300)), 0);
        st.note_spend(10, at(t0, 4_000));
        assert_eq!(
            st.last_window, 0,
            "a gap of more than a window forgets the rate"
        );
    }

    #[test]
    fn an_idle_account_remembers_its_rate_for_a_minute() {
        let t0 = Instant::now();
        let mut st = State {
            resume: Some((t0, 700)),
            ..State::default()
        };
        assert_eq!(st.resumed_rate(at(t0, 59_000)), 700);
        assert!(!st.forgettable(at(t0, 59_000)));
        assert_eq!(st.resumed_rate(at(t0, 60_000)), 0);
        assert!(st.forgettable(at(t0, 60_000)));
        // Cost still to collect keeps it, whatever the clock says.
        st.overage = Days::of(0, 5);
        assert!(!st.forgettable(at(t0, 120_000)));
    }

    #[test]
    fn the_free_part_of_a_grant_is_what_nobody_holds_or_owes() {
        let t0 = Instant::now();
        let mut st = State {
            grant_id: Some("g".into()),
            granted: 1_000,
            reported: 300,
            pending: Days::of(0, 200),
            inflight: 100,
            ..State::default()
        };
        assert_eq!(st.free(), 400);
        st.note_spend(1_000, t0);
        assert!(st.low(at(t0, 10)), "less than half a second of spend left");
        st.overage = Days::of(0, 1);
        assert!(st.low(at(t0, 10)));
    }

    #[test]
    fn a_lost_grant_turns_what_it_served_into_overage() {
        let mut st = State {
            grant_id: Some("g".into()),
            grant_epoch: 3,
            granted: 1_000,
            reported: 300,
            pending: Days::of(DAY, 150),
            inflight: 100,
            overage: Days::of(0, 7),
            unacked: Some(Batch::new((0, 50))),
            generation: 4,
            ..State::default()
        };
        st.pending.add(0, 50);
        st.lose_grant();
        assert_eq!(st.grant_id, None);
        assert!(st.pending.is_empty());
        assert_eq!(
            st.overage,
            Days(vec![(0, 57), (DAY, 150)]),
            "each day keeps its own"
        );
        assert_eq!((st.granted, st.reported, st.inflight), (0, 0, 0));
        assert_eq!(st.generation, 5, "reservations from it settle as overage");
        assert!(st.unacked.is_none());
        // Losing nothing changes nothing.
        st.lose_grant();
        assert_eq!((st.overage.total(), st.generation), (207, 5));
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn overage_is_paid_from_the_grants_own_free_part_first() {
        let mut st = State {
            grant_id: Some("g".into()),
            granted: 100,
            reported: 40,
            pending: Days::of(DAY, 10),
            inflight: 20,
            overage: Days(vec![(0, 25), (DAY, 20)]),
            ..State::default()
        };
        st.cover_overage();
        assert_eq!(st.free(), 0, "the free 30 went to the oldest overage first");
        assert_eq!(st.pending, Days(vec![(0, 25), (DAY, 15)]));
        assert_eq!(st.overage, Days::of(DAY, 15));
        // Not while an overage charge awaits its answer (its batch must stay as sent), nor
        // without a grant.
        st.granted += 50;
        st.unacked_overage = Some(Batch::new((DAY, 15)));
        st.cover_overage();
        assert_eq!(st.overage.total(), 15);
        st.unacked_overage = None;
        st.grant_id = None;
        st.cover_overage();
        assert_eq!(st.overage.total(), 15);
    }

    #[test]
    fn overage_put_off_under_a_grant_is_owed_again_when_the_grant_is_lost() {
        let mut st = State {
            grant_id: Some("g".into()),
            granted: 10,
            deferred: Days::of(0, 9),
            ..State::default()
        };
        assert!(!st.forgettable(Instant::now()));
        st.lose_grant();
        assert_eq!((st.overage.total(), st.deferred.total()), (9, 0));
    }

    #[test]
    fn what_is_owed_is_kept_by_the_day_of_its_calls() {
        assert_eq!(day_of(DAY * 3 + 5), DAY * 3);
        assert_eq!(day_of(DAY * 3), DAY * 3);
        assert_eq!(day_of(DAY * 3 - 1), DAY * 2);
        let mut d = Days::default();
        d.add(DAY, 10);
        d.add(0, 4);
        d.add(DAY, 5);
        d.add(2 * DAY, 0);
        assert_eq!(
            d,
            Days(vec![(0, 4), (DAY, 15)]),
            "oldest first, nothing for nothing"
        );
        assert_eq!((d.total(), d.first()), (19, Some((0, 4))));
        d.take(0, 4);
        assert_eq!(d.first(), Some((DAY, 15)));
        // More came in for the day while its batch was out: the rest stays owed.
        d.add(DAY, 3);
        d.take(DAY, 15);
        assert_eq!(d, Days(vec![(DAY, 3)]));
        let mut other = Days::of(0, 1);
        d.absorb(&mut other);
        assert!(other.is_empty());
        assert_eq!(d, Days(vec![(0, 1), (DAY, 3)]));
    }

    #[test]
    fn an_account_is_idle_once_nothing_is_in_flight_for_the_idle_time() {
        let t0 = Instant::now();
        let close = Duration::from_millis(2_000);
        let mut st = State::default();
        assert!(st.idle(t0, close), "never used: idle");
        st.last_used = Some(t0);
        assert!(!st.idle(at(t0, 1_999), close));
        assert!(st.idle(at(t0, 2_000), close));
        st.inflight = 10;
        assert!(
            !st.idle(at(t0, 60_000), close),
            "a request in flight keeps it open"
        );
    }

    #[test]
    fn a_first_top_up_prefetches_a_second_of_spend_and_covers_the_queue() {
        let t0 = Instant::now();
        let mut st = State {
            grant_id: Some("g".into()),
            granted: 1_000,
            reported: 900,
            waiting: 300,
            ..State::default()
        };
        // 400 spent in the first 100 ms of a window: 4,000 a second.
        st.note_spend(400, t0);
        let now = at(t0, 100);
        assert_eq!(st.rate(now), 4_000);
        // 100 free; the queue wants 300; a second of spend is 4,000, less what is free.
        assert_eq!(st.top_up_size(true, 50, now), (200, 3_900));
        assert_eq!(
            st.top_up_size(false, 50, now),
            (0, 0),
            "a later try: this request only"
        );
        assert_eq!(st.top_up_size(false, 150, now), (50, 0));
        // Without a grant nothing is free; a resumed burst starts from its remembered rate.
        let st = State {
            resume: Some((t0, 700)),
            ..State::default()
        };
        assert_eq!(st.top_up_size(true, 50, at(t0, 5_000)), (50, 700));
        assert_eq!(
            st.top_up_size(true, 50, at(t0, 61_000)),
            (50, 0),
            "the memory is a minute long"
        );
    }
}
