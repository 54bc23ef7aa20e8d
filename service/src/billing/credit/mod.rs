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
//! Grants are leases ([`lease`]): the instance spends from its grants in memory only while it
//! can prove its lease alive by its own clock, others take the lease over only past its end plus
//! a margin by the database's clock (deleting the row and closing its grants in one
//! transaction), and the row's id is the fencing token: a renewal, hold or charge of an instance
//! whose lease was taken over is refused, and that instance then charges what it served from
//! the free balance (logging what it cannot collect) and starts a new lease under a new id. So
//! a pause or partition of any length never oversells: the owner stops admitting requests
//! before anyone else may release its holds, and what it admitted before (at most its grant) is
//! charged, or logged as uncollected.
//!
//! The parts, by job: [`grant`] (a grant's arithmetic and reservations), [`lease`] (the lease
//! and the takeover gate), [`report`] (charging, closing idle grants), and here the manager:
//! reserving, topping up, and the loop that runs the rest. Every reading of time goes through
//! the manager's [`Clock`](crate::clock::Clock).

mod grant;
pub mod lease;
mod report;

pub use grant::{Reservation, day_of};
pub use lease::LeaseTiming;

use self::grant::{Account, State, Waiter};
use self::lease::Lease;
use super::account::AccountId;
use super::repo::{self, Hold};
use crate::Error;
use crate::clock::SharedClock;
use crate::db::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long the reporter lets wake-ups gather before acting on them.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(10);

/// How many top-ups a request may try when others keep taking what each one brought.
const TOP_UP_TRIES: usize = 3;

pub struct CreditManager {
    db: Db,
    lease: Lease,
    /// Serializes starting a new lease.
    relet: tokio::sync::Mutex<()>,
    accounts: Mutex<HashMap<AccountId, Arc<Account>>>,
    wake: Notify,
    idle_close: Duration,
    metrics: CreditMetrics,
    clock: SharedClock,
}

/// The credit manager's counters.
#[derive(Clone)]
pub struct CreditMetrics {
    /// Requests that waited for a top-up from the database.
    pub waits: prometheus::IntCounter,
    /// Units served that could not be charged (the balance was spent elsewhere meanwhile).
    pub uncollected: prometheus::IntCounter,
}

impl CreditManager {
    pub fn new(
        db: Db,
        timing: LeaseTiming,
        idle_close: Duration,
        metrics: CreditMetrics,
        clock: SharedClock,
    ) -> Arc<CreditManager> {
        Arc::new(CreditManager {
            db,
            lease: Lease::new(timing, clock.clone()),
            relet: tokio::sync::Mutex::new(()),
            accounts: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            idle_close,
            metrics,
            clock,
        })
    }

    /// Accounts holding a grant on this instance now.
    pub fn open_accounts(&self) -> usize {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
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
        if !self.lease.alive() {
            return None;
        }
        let epoch = self.lease.epoch();
        let mut st = account.lock();
        if st.grant_id.is_none() || st.grant_epoch != epoch || st.free() < amount {
            return None;
        }
        st.inflight += amount;
        st.last_used = Some(self.clock.now());
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
            let (need, prefetch) =
                account
                    .lock()
                    .top_up_size(attempt == 0, amount, self.clock.now());
            if !self.top_up(&account, need, prefetch).await? {
                if attempt == 0 && need > amount {
                    // Short for everyone queued: this request may still fit alone.
                    continue;
                }
                return Err(Error::InsufficientBalance);
            }
            if let Some(r) = self.take(&account, amount) {
                return Ok(r);
            }
        }
        Err(Error::InsufficientBalance)
    }

    /// Reserves `want`, or when the account cannot cover it, as much as it can down to `least`:
    /// what the free balance (and a capped key) still allows, less what the account already owes
    /// beyond its grants. The reservation's amount says what was reserved.
    pub async fn reserve_within(
        self: &Arc<Self>,
        id: AccountId,
        want: i64,
        least: i64,
    ) -> Result<Reservation, Error> {
        match self.reserve(id, want).await {
            Err(Error::InsufficientBalance) if least < want => {}
            other => return other,
        }
        let least = least.max(0);
        let account = self.account(id);
        let _db = account.db_lock.lock().await;
        for _ in 0..TOP_UP_TRIES {
            self.prepare(&account).await?;
            let (free, owed) = {
                let st = account.lock();
                let usable = st.grant_id.is_some() && st.grant_epoch == self.lease.epoch();
                (
                    if usable { st.free().max(0) } else { 0 },
                    st.overage.total() + st.deferred.total(),
                )
            };
            if free >= least
                && let Some(r) = self.take(&account, free.min(want))
            {
                return Ok(r);
            }
            let more = repo::available(&self.db, id).await? - owed;
            if free + more < least {
                return Err(Error::InsufficientBalance);
            }
            // Another instance may take some of it first: then read again.
            self.top_up(&account, more.min(want - free), 0).await?;
        }
        Err(Error::InsufficientBalance)
    }

    /// Makes the account's grant usable again where that needs no money: proves the lease alive
    /// when this instance's own clock no longer can (a pause, a slow database), and retires a
    /// grant of a lease that was taken over. Call with the account's `db_lock` held.
    async fn prepare(&self, account: &Account) -> Result<(), Error> {
        if !self.lease.alive() {
            self.renew().await?;
        }
        let stale = {
            let st = account.lock();
            st.grant_id.is_some() && st.grant_epoch != self.lease.epoch()
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
            let lease = self.lease.current();
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
                let sent = self.lease.sent_now();
                let hold = repo::hold(
                    &self.db,
                    &lease.id,
                    self.lease.timing.lease_ms(),
                    account.id,
                    &grant_id,
                    existing,
                    seq,
                    amt,
                )
                .await?;
                match hold {
                    Hold::Held => {
                        self.lease.extend(lease.epoch, sent);
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
