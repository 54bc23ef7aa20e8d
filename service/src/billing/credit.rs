//! Credit control in the style of telecom online charging (RFC 4006): an instance obtains a
//! *credit grant* for an account from the database in one conditional transaction
//! (`balance - reserved >= amount`), serves many requests from it in memory (reserve the worst
//! case, settle the exact cost, give back the rest), and reports used units in batches: every
//! `billing.report_interval_ms`, at once when a grant runs low, when the account goes idle
//! (the grant is then closed and its unused part released), and at shutdown.
//!
//! Guarantees: the database never lets holds exceed a balance, charges only consume holds, so
//! no request can overdraw; a batch is charged once (idempotent on its id, which a retry
//! keeps); a crash loses at most the unreported usage of the last interval (never more than the
//! grant).
//!
//! Grants are leases. The instance's lease is a row in `instances` that ends at `lease_until`
//! by the database's clock; every renewal (and every hold, which renews it in the same
//! transaction) extends it by `lease`. The instance spends from its grants in memory only while
//! it can prove the lease alive by its own clock: until the moment it *sent* its last
//! successful renewal plus `lease` (a clock that counts suspended time too). Other instances
//! take the lease over only when the database's clock is past `lease_until` plus `margin`, and
//! they do it by deleting the row and closing its grants in one transaction. The row's id is the
//! fencing token: a renewal, hold or charge of an instance whose lease was taken over is
//! refused, and that instance then charges what it served from the free balance (logging what it
//! cannot collect) and starts a new lease under a new id. So a pause or partition of any length
//! never oversells: the owner stops admitting requests before anyone else may release its
//! holds, and what it admitted before (at most its grant) is charged, or logged as uncollected.

use super::account::AccountId;
use super::repo::{self, Charged, Hold};
use crate::Error;
use crate::db::Db;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A clock that keeps counting while the machine (or the VM) is suspended, unlike `Instant`:
/// a lease must not look alive to an instance that was frozen for longer than it.
fn lease_clock() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

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

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }

    fn margin_ms(&self) -> i64 {
        i64::try_from(self.margin.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

/// This instance's lease: its id (the fencing token) and generation.
#[derive(Clone, Debug)]
struct LeaseId {
    id: Arc<str>,
    epoch: u64,
}

#[derive(Debug, Default)]
struct State {
    grant_id: Option<String>,
    /// The lease the grant was opened under: a grant of an older lease was taken over.
    grant_epoch: u64,
    /// Bumped whenever the grant is closed or lost: a reservation taken from an earlier grant
    /// settles as overage (its hold is gone).
    generation: u64,
    /// A charge batch sent but not yet acknowledged: a retry sends the same id and amount, so a
    /// try that went through although its answer was lost is not charged twice.
    unacked: Option<(String, i64)>,
    /// Likewise for a charge of overage.
    unacked_overage: Option<(String, i64)>,
    topups: u32,
    granted: i64,
    reported: i64,
    pending: i64,
    inflight: i64,
    /// Reservations of requests waiting for a top-up: the next top-up covers them all at once.
    waiting: i64,
    /// Cost no grant covers (a request that used more than its reservation, or usage served
    /// from a grant that was lost): charged from the free balance as far as it goes.
    overage: i64,
    last_used: Option<Instant>,
    window_start: Option<Instant>,
    window_spend: i64,
    /// Spend of the last full one-second window.
    last_window: i64,
    /// When the last grant closed for idleness, and the spend rate it had then: the first
    /// top-up of a burst that resumes within `RESUME_MEMORY` is sized by it, so the burst does
    /// not start with one database round trip per handful of requests.
    resume: Option<(Instant, i64)>,
}

/// The spend rate is measured over one-second windows; a window younger than this is
/// projected from at least this much time, so that the first requests do not look like a flood.
const MIN_PROJECTION: Duration = Duration::from_millis(100);

/// How long an account idle since its grant closed keeps its last rate (and its place in the
/// manager), for the first top-up when it resumes.
const RESUME_MEMORY: Duration = Duration::from_secs(60);

impl State {
    fn free(&self) -> i64 {
        self.granted - self.reported - self.pending - self.inflight
    }

    fn note_spend(&mut self, cost: i64, now: Instant) {
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
    fn rate(&self, now: Instant) -> i64 {
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
    fn resumed_rate(&self, now: Instant) -> i64 {
        match self.resume {
            Some((closed, rate)) if now.duration_since(closed) < RESUME_MEMORY => rate,
            _ => 0,
        }
    }

    /// Nothing held and nothing worth remembering: the manager may forget the account.
    fn forgettable(&self, now: Instant) -> bool {
        self.grant_id.is_none()
            && self.inflight == 0
            && self.overage == 0
            && self.unacked_overage.is_none()
            && self.waiting == 0
            && self.resumed_rate(now) == 0
    }

    /// Less than half a second of spend left (or cost to collect): time to report.
    fn low(&self, now: Instant) -> bool {
        let rate = self.rate(now);
        self.overage > 0 || (rate > 0 && self.free() * 2 < rate)
    }

    /// The grant is gone (taken over, or opened under a lease that was): what was served from
    /// it and not reported becomes overage, and reservations taken from it settle as overage.
    fn lose_grant(&mut self) {
        if self.grant_id.is_none() {
            return;
        }
        self.overage += self.pending;
        self.pending = 0;
        self.unacked = None;
        self.grant_id = None;
        self.granted = 0;
        self.reported = 0;
        self.inflight = 0;
        self.topups = 0;
        self.generation += 1;
    }
}

struct Account {
    id: AccountId,
    state: Mutex<State>,
    /// Serializes this account's database work (top-ups, reports, closing).
    db_lock: tokio::sync::Mutex<()>,
}

impl Account {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request's place in the queue for a top-up; leaves it however the request ends.
struct Waiter<'a> {
    account: &'a Account,
    amount: i64,
}

impl<'a> Waiter<'a> {
    fn new(account: &'a Account, amount: i64) -> Self {
        account.lock().waiting += amount;
        Waiter { account, amount }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.account.lock().waiting -= self.amount;
    }
}

/// How long the reporter lets wake-ups gather before acting on them.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(10);

/// How many top-ups a request may try when others keep taking what each one brought.
const TOP_UP_TRIES: usize = 3;

pub struct CreditManager {
    db: Db,
    /// A random prefix; the lease id is `<prefix>-<epoch>`.
    prefix: String,
    lease: Mutex<LeaseId>,
    /// The current lease's epoch, read on the hot path.
    epoch: AtomicU64,
    /// Until when (by [`lease_clock`], in nanoseconds) the lease is proven alive; 0: it is not.
    valid_until: AtomicU64,
    /// Serializes starting a new lease.
    relet: tokio::sync::Mutex<()>,
    timing: LeaseTiming,
    accounts: Mutex<HashMap<AccountId, Arc<Account>>>,
    wake: Notify,
    idle_close: Duration,
    metrics: CreditMetrics,
}

/// The credit manager's counters.
#[derive(Clone)]
pub struct CreditMetrics {
    /// Requests that waited for a top-up from the database.
    pub waits: prometheus::IntCounter,
    /// Units served that could not be charged (the balance was spent elsewhere meanwhile).
    pub uncollected: prometheus::IntCounter,
}

/// Money reserved for one request. Settle it with the exact cost; dropping it unsettled
/// releases the reservation (the request cost nothing).
pub struct Reservation {
    account: Arc<Account>,
    amount: i64,
    generation: u64,
    manager: Arc<CreditManager>,
    settled: bool,
}

impl Reservation {
    pub fn amount(&self) -> i64 {
        self.amount
    }

    /// Charges `cost` (which may exceed the reservation) and frees the rest. Exactly once.
    pub fn settle(mut self, cost: i64) {
        self.finish(cost.max(0));
    }

    fn finish(&mut self, cost: i64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let now = Instant::now();
        let low = {
            let mut st = self.account.lock();
            if st.generation == self.generation {
                st.inflight -= self.amount;
                let covered = cost.min(st.free().max(0));
                st.pending += covered;
                st.overage += cost - covered;
            } else {
                // The grant this came from is gone (and its reservation with it).
                st.overage += cost;
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
        self.finish(0);
    }
}

impl CreditManager {
    pub fn new(
        db: Db,
        timing: LeaseTiming,
        idle_close: Duration,
        metrics: CreditMetrics,
    ) -> Arc<CreditManager> {
        let prefix = crate::random_id();
        Arc::new(CreditManager {
            db,
            lease: Mutex::new(LeaseId {
                id: format!("{prefix}-0").into(),
                epoch: 0,
            }),
            prefix,
            epoch: AtomicU64::new(0),
            valid_until: AtomicU64::new(0),
            relet: tokio::sync::Mutex::new(()),
            timing,
            accounts: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            idle_close,
            metrics,
        })
    }

    /// This instance's current lease id (it changes when a lease is taken over).
    /// Accounts holding a grant on this instance now.
    pub fn open_accounts(&self) -> usize {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn instance_id(&self) -> String {
        self.lease_id().id.to_string()
    }

    fn lease_id(&self) -> LeaseId {
        self.lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts the first lease. Call once, before serving.
    pub async fn start(&self) -> Result<(), Error> {
        let lease = self.lease_id();
        let sent = lease_clock();
        repo::register(&self.db, &lease.id, self.timing.lease_ms()).await?;
        self.extend(lease.epoch, sent);
        Ok(())
    }

    /// True while this instance may spend from its grants in memory.
    fn lease_alive(&self) -> bool {
        let until = self.valid_until.load(Ordering::Acquire);
        until != 0 && (lease_clock().as_nanos() as u64) < until
    }

    /// A renewal of lease `epoch` sent at `sent` succeeded: it is proven alive until
    /// `sent + lease`.
    fn extend(&self, epoch: u64, sent: Duration) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            let until = (sent + self.timing.lease).as_nanos() as u64;
            self.valid_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// Lease `epoch` was taken over: stop spending at once and start a new lease (once, however
    /// many found out). Grants of the old lease are lost lazily, account by account.
    async fn relet(&self, epoch: u64) -> Result<(), Error> {
        let _one = self.relet.lock().await;
        if self.epoch.load(Ordering::Acquire) != epoch {
            return Ok(()); // someone else did it
        }
        self.valid_until.store(0, Ordering::Release);
        // A fresh id each try: a registration whose answer was lost leaves a row that simply
        // expires, never one this instance could mistake for its own.
        let next = LeaseId {
            id: format!("{}-{}-{}", self.prefix, epoch + 1, &crate::random_id()[..8]).into(),
            epoch: epoch + 1,
        };
        let sent = lease_clock();
        repo::register(&self.db, &next.id, self.timing.lease_ms()).await?;
        tracing::warn!(lease = %next.id, "the credit lease was taken over by another instance (a pause or partition longer than the lease); a new lease starts");
        *self
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next.clone();
        self.epoch.store(next.epoch, Ordering::Release);
        self.extend(next.epoch, sent);
        self.wake.notify_one();
        Ok(())
    }

    /// Renews the lease; on a lease taken over, starts a new one.
    async fn renew(&self) -> Result<(), Error> {
        let lease = self.lease_id();
        let sent = lease_clock();
        if repo::renew(&self.db, &lease.id, self.timing.lease_ms()).await? {
            self.extend(lease.epoch, sent);
            Ok(())
        } else {
            self.relet(lease.epoch).await
        }
    }

    fn account(&self, id: AccountId) -> Arc<Account> {
        let mut map = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(id)
            .or_insert_with(|| {
                Arc::new(Account {
                    id,
                    state: Mutex::new(State::default()),
                    db_lock: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Takes `amount` from the grant in memory, if it covers it and the lease is alive.
    fn take(self: &Arc<Self>, account: &Arc<Account>, amount: i64) -> Option<Reservation> {
        if !self.lease_alive() {
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut st = account.lock();
        if st.grant_id.is_none() || st.grant_epoch != epoch || st.free() < amount {
            return None;
        }
        st.inflight += amount;
        st.last_used = Some(Instant::now());
        Some(Reservation {
            account: account.clone(),
            amount,
            generation: st.generation,
            manager: self.clone(),
            settled: false,
        })
    }

    /// Reserves `amount` for a request, topping the grant up from the database when needed.
    /// Requests that find the grant short queue for one top-up that covers all of them.
    pub async fn reserve(
        self: &Arc<Self>,
        id: AccountId,
        amount: i64,
    ) -> Result<Reservation, Error> {
        let amount = amount.max(0);
        let account = self.account(id);
        if let Some(r) = self.take(&account, amount) {
            return Ok(r);
        }
        self.metrics.waits.inc();
        let _waiter = Waiter::new(&account, amount);
        let _db = account.db_lock.lock().await;
        if let Some(r) = self.take(&account, amount) {
            return Ok(r);
        }
        self.prepare(&account).await?;
        if let Some(r) = self.take(&account, amount) {
            return Ok(r);
        }
        for attempt in 0..TOP_UP_TRIES {
            let (need, prefetch) = {
                let st = account.lock();
                let free = if st.grant_id.is_some() {
                    st.free().max(0)
                } else {
                    0
                };
                // The first top-up covers everyone queued behind this request (`waiting`
                // includes it) and prefetches about a second of spend: a burst that just began
                // projects its rate from its first moments, and one that resumes after a pause
                // starts from the rate it had before. Later tries are for this request alone.
                let wanted = if attempt == 0 {
                    st.waiting.max(amount)
                } else {
                    amount
                };
                let now = Instant::now();
                let rate = st.rate(now).max(st.resumed_rate(now));
                let prefetch = if attempt == 0 {
                    rate.saturating_sub(free).max(0)
                } else {
                    0
                };
                (wanted - free.min(wanted), prefetch)
            };
            if !self.top_up(&account, need, prefetch).await? {
                return Err(Error::InsufficientBalance);
            }
            if let Some(r) = self.take(&account, amount) {
                return Ok(r);
            }
        }
        Err(Error::InsufficientBalance)
    }

    /// Makes the account's grant usable again where that needs no money: proves the lease alive
    /// when this instance's own clock no longer can (a pause, a slow database), and retires a
    /// grant of a lease that was taken over. Call with the account's `db_lock` held.
    async fn prepare(&self, account: &Account) -> Result<(), Error> {
        if !self.lease_alive() {
            self.renew().await?;
        }
        let stale = {
            let st = account.lock();
            st.grant_id.is_some() && st.grant_epoch != self.epoch.load(Ordering::Acquire)
        };
        if stale {
            // Its lease was taken over, and the grant closed with it. Report what it served
            // (the charge finds the grant closed and makes it overage), then let it go.
            self.report(account).await?;
            account.lock().lose_grant();
        }
        Ok(())
    }

    /// Holds `need` (plus `prefetch` when the balance allows) more for the account's grant,
    /// proving the lease alive as it does. False when not even `need` can be held. Call with
    /// the account's `db_lock` held.
    async fn top_up(&self, account: &Account, need: i64, prefetch: i64) -> Result<bool, Error> {
        for _ in 0..2 {
            self.prepare(account).await?;
            let lease = self.lease_id();
            let (grant_id, existing, seq) = {
                let mut st = account.lock();
                st.topups += 1;
                match &st.grant_id {
                    Some(g) => (g.clone(), true, st.topups),
                    None => (crate::random_id(), false, st.topups),
                }
            };
            let mut got = None;
            let mut fenced = false;
            for amt in [need.saturating_add(prefetch), need] {
                if amt == 0 {
                    got = Some(0);
                    break;
                }
                let sent = lease_clock();
                let hold = repo::hold(
                    &self.db,
                    &lease.id,
                    self.timing.lease_ms(),
                    account.id,
                    &grant_id,
                    existing,
                    seq,
                    amt,
                )
                .await?;
                match hold {
                    Hold::Held => {
                        self.extend(lease.epoch, sent);
                        got = Some(amt);
                        break;
                    }
                    Hold::Fenced => {
                        fenced = true;
                        break;
                    }
                    Hold::Short if prefetch > 0 && amt != need => continue,
                    Hold::Short => break,
                }
            }
            if fenced {
                self.relet(lease.epoch).await?;
                continue;
            }
            let Some(amt) = got else { return Ok(false) };
            if amt > 0 {
                let mut st = account.lock();
                st.grant_id = Some(grant_id);
                st.grant_epoch = lease.epoch;
                st.granted += amt;
                // The pause is over: the rate is measured afresh from here.
                st.resume = None;
            }
            return Ok(true);
        }
        Err(Error::Unavailable("credit lease".into()))
    }

    /// Charges what the account's grant served (the batch sent last, again, if its answer was
    /// lost), and collects overage from the free balance. A grant found taken over is lost: what
    /// it served becomes overage. Call with the account's `db_lock` held.
    async fn report(&self, account: &Account) -> Result<(), Error> {
        let batch = {
            let mut st = account.lock();
            match (&st.grant_id, st.pending) {
                (Some(g), pending) if pending > 0 || st.unacked.is_some() => {
                    let g = g.clone();
                    let epoch = st.grant_epoch;
                    let batch = st
                        .unacked
                        .get_or_insert_with(|| (crate::random_id(), pending))
                        .clone();
                    Some((g, epoch, batch))
                }
                _ => None,
            }
        };
        if let Some((grant_id, epoch, (batch, amount))) = batch {
            let charged = repo::charge(&self.db, account.id, &grant_id, amount, &batch).await?;
            let lost = {
                let mut st = account.lock();
                st.unacked = None;
                match charged {
                    Charged::Done => {
                        st.pending -= amount;
                        st.reported += amount;
                        false
                    }
                    Charged::Fenced => {
                        tracing::warn!(
                            user.id = account.id.user_id,
                            units = st.pending,
                            "a credit grant was taken over before its usage was reported; charging it from the free balance"
                        );
                        st.lose_grant();
                        true
                    }
                }
            };
            // Taken over under the current lease: the lease itself is gone.
            if lost && epoch == self.epoch.load(Ordering::Acquire) {
                self.relet(epoch).await?;
            }
        }
        let overage = {
            let mut st = account.lock();
            let overage = st.overage;
            if overage > 0 || st.unacked_overage.is_some() {
                Some(
                    st.unacked_overage
                        .get_or_insert_with(|| (crate::random_id(), overage))
                        .clone(),
                )
            } else {
                None
            }
        };
        if let Some((batch, amount)) = overage {
            let charged = repo::charge_overage(&self.db, account.id, amount, &batch).await?;
            if charged < amount {
                self.metrics
                    .uncollected
                    .inc_by(u64::try_from(amount - charged).unwrap_or(0));
                tracing::warn!(
                    user.id = account.id.user_id,
                    uncollected = amount - charged,
                    "usage beyond the balance could not be charged"
                );
            }
            let mut st = account.lock();
            st.unacked_overage = None;
            st.overage -= amount;
        }
        Ok(())
    }

    /// Reports used units of every account, and closes idle grants. `closing`: close them all.
    pub async fn flush(&self, closing: bool) -> Result<(), Error> {
        let accounts: Vec<Arc<Account>> = {
            let map = self
                .accounts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.values().cloned().collect()
        };
        let mut first_error = None;
        for account in accounts {
            if let Err(e) = self.flush_account(&account, closing).await {
                if let Some(held) = REPORT_FAILED_LOG.ready() {
                    tracing::warn!(user.id = account.id.user_id, error = %e, similar_since_last = held, "reporting credit usage failed");
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn flush_account(&self, account: &Arc<Account>, closing: bool) -> Result<(), Error> {
        let _db = account.db_lock.lock().await;
        self.report(account).await?;
        let (grant_id, idle) = {
            let st = account.lock();
            let idle =
                st.inflight == 0 && st.last_used.is_none_or(|t| t.elapsed() >= self.idle_close);
            (st.grant_id.clone(), idle)
        };
        let Some(grant_id) = grant_id else {
            if !closing {
                self.forget_if_stale(account);
            }
            return Ok(());
        };
        if !(closing || idle) {
            // Sustained load with less than half a second of spend left: top up now, so that
            // requests do not wait for the database.
            let (rate, free) = {
                let st = account.lock();
                (st.rate(Instant::now()), st.free().max(0))
            };
            if rate > 0 && free * 2 < rate && self.lease_alive() {
                self.top_up(account, 0, rate - free).await?;
            }
            return Ok(());
        }
        {
            let st = account.lock();
            if !(closing || (st.inflight == 0 && st.pending == 0)) {
                return Ok(());
            }
        }
        // No more requests from this grant: one arriving now waits for `db_lock` and then
        // opens a new grant. The grant releases what it holds beyond what was charged (closed
        // already if it was taken over: then the taker released it).
        repo::close_grant(&self.db, &grant_id).await?;
        let mut st = account.lock();
        // Anything served from it meanwhile (a reservation of a stop) settles as overage.
        let pending = st.pending;
        st.overage += pending;
        // The spend of the last active second, remembered for a resuming burst.
        let rate = st.window_spend.max(st.last_window);
        *st = State {
            // Requests queued for the next grant keep their place; cost still to collect too.
            waiting: st.waiting,
            overage: st.overage,
            unacked_overage: st.unacked_overage.take(),
            generation: st.generation + 1,
            last_window: st.last_window,
            window_start: st.window_start,
            window_spend: st.window_spend,
            resume: (rate > 0).then(|| (Instant::now(), rate)),
            ..State::default()
        };
        Ok(())
    }

    /// Drops an account without a grant from the manager once its last rate is stale, unless a
    /// request holds it (the map lock orders this against `account()` handing it out).
    fn forget_if_stale(&self, account: &Arc<Account>) {
        let mut map = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's reference and the caller's: nobody else has it.
        if Arc::strong_count(account) <= 2 && account.lock().forgettable(Instant::now()) {
            map.remove(&account.id);
        }
    }

    /// Keeps the lease: renews it every `interval` (at most a quarter of the lease), and takes
    /// over the leases of instances that stopped renewing theirs, but only once this instance
    /// has itself been in touch with the database for the margin (after an outage every
    /// instance gets the time to renew before any sweeps another).
    async fn keep_lease(
        self: Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let interval = interval
            .min(self.timing.lease / 4)
            .max(Duration::from_millis(10));
        let mut in_touch_since: Option<Instant> = None;
        let mut last_sweep: Option<Instant> = None;
        loop {
            let renewed = tokio::time::timeout(self.timing.lease / 2, self.renew()).await;
            match renewed {
                Ok(Ok(())) => {
                    let since = *in_touch_since.get_or_insert_with(Instant::now);
                    let due = last_sweep.is_none_or(|t| t.elapsed() >= self.timing.lease / 3);
                    if since.elapsed() >= self.timing.margin && due {
                        last_sweep = Some(Instant::now());
                        let me = self.instance_id();
                        match repo::sweep(&self.db, &me, self.timing.margin_ms()).await {
                            Ok(n) if n > 0 => {
                                tracing::info!(grants = n, "closed grants of stopped instances")
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "grant sweep failed"),
                        }
                    }
                }
                failed => {
                    in_touch_since = None;
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

    /// The reporter and the lease keeper: run until `stop` resolves, then report and close
    /// everything (the lease is kept meanwhile) and end the lease.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let (stop_lease, lease_stopped) = tokio::sync::watch::channel(false);
        let keeper = tokio::spawn(self.clone().keep_lease(interval, lease_stopped));
        tokio::pin!(stop);
        loop {
            let _ = self.flush(false).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {},
                () = self.wake.notified() => {
                    // Let a burst of wake-ups become one pass.
                    tokio::time::sleep(WAKE_DEBOUNCE).await;
                },
                () = &mut stop => break,
            }
        }
        let mut closed = false;
        for attempt in 0..5 {
            match self.flush(true).await {
                Ok(()) => {
                    closed = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "final credit report failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        stop_lease.send_replace(true);
        let _ = keeper.await;
        if closed {
            // Grants left open by a failed last report stay under the lease, which then
            // ends by itself and another instance takes them over.
            let _ = repo::retire(&self.db, &self.instance_id()).await;
        }
    }
}

static REPORT_FAILED_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();
static RENEW_FAILED_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();

/// The grant's arithmetic and its rate memory, on a clock the tests move by hand.
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
        st.overage = 5;
        assert!(!st.forgettable(at(t0, 120_000)));
    }

    #[test]
    fn the_free_part_of_a_grant_is_what_nobody_holds_or_owes() {
        let t0 = Instant::now();
        let mut st = State {
            grant_id: Some("g".into()),
            granted: 1_000,
            reported: 300,
            pending: 200,
            inflight: 100,
            ..State::default()
        };
        assert_eq!(st.free(), 400);
        st.note_spend(1_000, t0);
        assert!(st.low(at(t0, 10)), "less than half a second of spend left");
        st.overage = 1;
        assert!(st.low(at(t0, 10)));
    }

    #[test]
    fn a_lost_grant_turns_what_it_served_into_overage() {
        let mut st = State {
            grant_id: Some("g".into()),
            grant_epoch: 3,
            granted: 1_000,
            reported: 300,
            pending: 200,
            inflight: 100,
            overage: 7,
            unacked: Some(("b".into(), 200)),
            generation: 4,
            ..State::default()
        };
        st.lose_grant();
        assert_eq!(st.grant_id, None);
        assert_eq!((st.pending, st.overage), (0, 207));
        assert_eq!((st.granted, st.reported, st.inflight), (0, 0, 0));
        assert_eq!(st.generation, 5, "reservations from it settle as overage");
        assert!(st.unacked.is_none());
        // Losing nothing changes nothing.
        st.lose_grant();
        assert_eq!((st.overage, st.generation), (207, 5));
    }

    #[test]
    fn others_wait_a_quarter_lease_and_at_least_a_second() {
        let t = LeaseTiming::new(Duration::from_secs(15));
        assert_eq!(t.margin, Duration::from_millis(3_750));
        assert_eq!((t.lease_ms(), t.margin_ms()), (15_000, 3_750));
        let t = LeaseTiming::new(Duration::from_secs(2));
        assert_eq!(t.margin, Duration::from_secs(1));
    }

    #[test]
    fn the_lease_clock_moves_forward() {
        let a = lease_clock();
        std::thread::sleep(Duration::from_millis(5));
        assert!(lease_clock() >= a + Duration::from_millis(5));
    }
}
