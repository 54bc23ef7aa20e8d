//! Credit control in the style of telecom online charging (RFC 4006): an instance obtains a
//! *credit grant* for an account from the database in one conditional transaction
//! (`balance - reserved >= amount`), serves many requests from it in memory (reserve the worst
//! case, settle the exact cost, give back the rest), and reports used units in batches: every
//! `billing.report_interval_ms`, at once when a grant runs low, when the account goes idle
//! (the grant is then closed and its unused part released), and at shutdown.
//!
//! Guarantees: the database never lets holds exceed a balance, charges only consume holds, so
//! no request can overdraw; a batch is charged once (idempotent on its id); a crash loses at most
//! the unreported usage of the last interval (never more than the grant), and the sweeper
//! releases grants whose instance stopped heartbeating.

use super::repo;
use crate::Error;
use crate::db::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Whose money: a user, or a user through a key with its own spend cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountId {
    pub user_id: i64,
    /// Set only for keys with a spend cap: their grants also hold against the key.
    pub capped_key: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    grant_id: Option<String>,
    topups: u32,
    granted: i64,
    reported: i64,
    pending: i64,
    inflight: i64,
    /// Reservations of requests waiting for a top-up: the next top-up covers them all at once.
    waiting: i64,
    /// Cost beyond what the grant covered (a request that used more than its reservation).
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
            && self.waiting == 0
            && self.resumed_rate(now) == 0
    }

    /// Less than half a second of spend left: time to top up ahead of need.
    fn low(&self, now: Instant) -> bool {
        let rate = self.rate(now);
        self.overage > 0 || (rate > 0 && self.free() * 2 < rate)
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

pub struct CreditManager {
    db: Db,
    instance_id: String,
    accounts: Mutex<HashMap<AccountId, Arc<Account>>>,
    wake: Notify,
    idle_close: Duration,
    waits: prometheus::IntCounter,
}

/// Money reserved for one request. Settle it with the exact cost; dropping it unsettled
/// releases the reservation (the request cost nothing).
pub struct Reservation {
    account: Arc<Account>,
    amount: i64,
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
            st.inflight -= self.amount;
            let covered = cost.min(st.free().max(0));
            st.pending += covered;
            st.overage += cost - covered;
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
        instance_id: String,
        idle_close: Duration,
        waits: prometheus::IntCounter,
    ) -> Arc<CreditManager> {
        Arc::new(CreditManager {
            db,
            instance_id,
            accounts: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            idle_close,
            waits,
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
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

    /// Takes `amount` from the grant in memory, if it covers it.
    fn take(self: &Arc<Self>, account: &Arc<Account>, amount: i64) -> Option<Reservation> {
        let mut st = account.lock();
        if st.free() < amount || st.overage != 0 {
            return None;
        }
        st.inflight += amount;
        st.last_used = Some(Instant::now());
        Some(Reservation {
            account: account.clone(),
            amount,
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
        self.waits.inc();
        let waiter = Waiter::new(&account, amount);
        let _db = account.db_lock.lock().await;
        if let Some(r) = self.take(&account, amount) {
            return Ok(r);
        }
        let (need, prefetch) = {
            let st = account.lock();
            let free = st.free().max(0);
            // Everyone queued behind this request is covered by the same top-up (`waiting`
            // includes this request). Prefetch about a second of spend; a burst that just began
            // projects its rate from its first moments, so it needs few round trips to catch up,
            // and a burst that resumes after a pause starts from the rate it had before.
            let wanted = st.waiting.max(amount);
            let now = Instant::now();
            let rate = st.rate(now).max(st.resumed_rate(now));
            (
                wanted - free.min(wanted) + st.overage.max(0),
                rate.saturating_sub(free).max(0),
            )
        };
        self.top_up(&account, need, prefetch).await?;
        if let Some(r) = self.take(&account, amount) {
            return Ok(r);
        }
        // The balance could not cover the whole queue (or the others took what came): this
        // request on its own.
        let need = {
            let st = account.lock();
            amount - st.free().max(0).min(amount) + st.overage.max(0)
        };
        if !self.top_up(&account, need, 0).await? {
            return Err(Error::InsufficientBalance);
        }
        drop(waiter);
        let mut st = account.lock();
        st.inflight += amount;
        st.last_used = Some(Instant::now());
        drop(st);
        Ok(Reservation {
            account: account.clone(),
            amount,
            manager: self.clone(),
            settled: false,
        })
    }

    /// Holds `need` (plus `prefetch` when the balance allows) more for the account's grant.
    /// False when not even `need` can be held. Call with the account's `db_lock` held.
    async fn top_up(&self, account: &Account, need: i64, prefetch: i64) -> Result<bool, Error> {
        let (grant_id, seq) = {
            let mut st = account.lock();
            st.topups += 1;
            (
                st.grant_id.clone().unwrap_or_else(crate::random_id),
                st.topups,
            )
        };
        let mut got = None;
        for amt in [need.saturating_add(prefetch), need] {
            if amt == 0 {
                got = Some(0);
                break;
            }
            match repo::hold(&self.db, &self.instance_id, account.id, &grant_id, seq, amt).await? {
                true => {
                    got = Some(amt);
                    break;
                }
                false if prefetch > 0 && amt != need => continue,
                false => break,
            }
        }
        let Some(amt) = got else { return Ok(false) };
        let mut st = account.lock();
        if amt > 0 {
            st.grant_id = Some(grant_id);
            st.granted += amt;
            // The pause is over: the rate is measured afresh from here.
            st.resume = None;
        }
        // An overage that forced this top-up is now covered by the grant.
        st.pending += st.overage;
        st.overage = 0;
        Ok(true)
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
                tracing::warn!(user.id = account.id.user_id, error = %e, "reporting credit usage failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn flush_account(&self, account: &Arc<Account>, closing: bool) -> Result<(), Error> {
        let _db = account.db_lock.lock().await;
        let (grant_id, pending, overage, idle) = {
            let st = account.lock();
            let idle =
                st.inflight == 0 && st.last_used.is_none_or(|t| t.elapsed() >= self.idle_close);
            (st.grant_id.clone(), st.pending, st.overage, idle)
        };
        let Some(grant_id) = grant_id else {
            if !closing {
                self.forget_if_stale(account);
            }
            return Ok(());
        };
        if pending > 0 {
            let batch = crate::random_id();
            repo::charge(&self.db, account.id, &grant_id, pending, &batch).await?;
            let mut st = account.lock();
            st.pending -= pending;
            st.reported += pending;
        }
        if overage > 0 {
            let charged =
                repo::charge_overage(&self.db, account.id, overage, &crate::random_id()).await?;
            if charged < overage {
                tracing::warn!(
                    user.id = account.id.user_id,
                    uncollected = overage - charged,
                    "usage beyond the balance could not be charged"
                );
            }
            account.lock().overage -= overage;
        }
        if !(closing || idle) {
            // Sustained load with less than half a second of spend left: top up now, so that
            // requests do not wait for the database.
            let (rate, free) = {
                let st = account.lock();
                (st.rate(Instant::now()), st.free().max(0))
            };
            if rate > 0 && free * 2 < rate {
                self.top_up(account, 0, rate - free).await?;
            }
            return Ok(());
        }
        {
            let (unused, granted) = {
                let mut st = account.lock();
                if !(closing || (st.inflight == 0 && st.pending == 0)) {
                    return Ok(());
                }
                // No more requests from this grant: a request arriving now waits for `db_lock`
                // and then opens a new grant.
                let granted = st.granted;
                st.granted = st.reported + st.pending + st.inflight;
                (granted - st.reported, granted)
            };
            if let Err(e) = repo::close_grant(&self.db, account.id, &grant_id, unused.max(0)).await
            {
                account.lock().granted = granted;
                return Err(e);
            }
            let mut st = account.lock();
            // The spend of the last active second, remembered for a resuming burst.
            let rate = st.window_spend.max(st.last_window);
            *st = State {
                // Requests queued for the next grant keep their place.
                waiting: st.waiting,
                last_window: st.last_window,
                window_start: st.window_start,
                window_spend: st.window_spend,
                resume: (rate > 0).then(|| (Instant::now(), rate)),
                ..State::default()
            };
        }
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

    /// The reporter: runs until `stop` resolves, then reports and closes everything.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        sweep_after: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut last_sweep = Instant::now() - sweep_after;
        let mut last_beat = Instant::now() - interval;
        loop {
            if last_beat.elapsed() >= interval {
                last_beat = Instant::now();
                if let Err(e) = repo::heartbeat(&self.db, &self.instance_id).await {
                    tracing::warn!(error = %e, "instance heartbeat failed");
                }
            }
            let _ = self.flush(false).await;
            if last_sweep.elapsed() >= sweep_after / 3 {
                last_sweep = Instant::now();
                match repo::sweep(&self.db, &self.instance_id, sweep_after).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(grants = n, "closed grants of stopped instances")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "grant sweep failed"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {},
                () = self.wake.notified() => {
                    // Let a burst of wake-ups become one pass.
                    tokio::time::sleep(WAKE_DEBOUNCE).await;
                },
                () = &mut stop => break,
            }
        }
        for attempt in 0..5 {
            match self.flush(true).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "final credit report failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let _ = repo::retire(&self.db, &self.instance_id).await;
    }
}
