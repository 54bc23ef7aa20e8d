//! Reporting: what the grants served is charged in batches (idempotent on the batch id, which a
//! retry keeps), overage is collected from the free balance, idle grants are closed and their
//! unused part released, and accounts with nothing left to remember are forgotten.

use super::CreditManager;
use super::grant::{Account, Batch, State};
use crate::Error;
use crate::billing::repo::{self, Charged};
use std::sync::Arc;

static REPORT_FAILED_LOG: crate::telemetry::Throttle = crate::telemetry::Throttle::per_second();

impl CreditManager {
    /// Charges what the account's grant served (the batch sent last, again, if its answer was
    /// lost), and collects overage from the free balance. A grant found taken over is lost: what
    /// it served becomes overage. Call with the account's `db_lock` held.
    pub(super) async fn report(&self, account: &Account) -> Result<(), Error> {
        // One batch per day of calls owed, oldest first (nearly always one); the days owed now,
        // so that a steady flow of new cost does not keep the report going.
        let rounds = {
            let mut st = account.lock();
            st.cover_overage();
            st.pending.len() + usize::from(st.unacked.is_some())
        };
        for _ in 0..rounds {
            let batch = {
                let mut st = account.lock();
                match st.grant_id.clone() {
                    Some(g) if st.unacked.is_some() || !st.pending.is_empty() => {
                        if st.unacked.is_none() {
                            st.unacked = st.pending.first().map(Batch::new);
                        }
                        st.unacked.clone().map(|b| (g, st.grant_epoch, b))
                    }
                    _ => None,
                }
            };
            let Some((grant_id, epoch, b)) = batch else {
                break;
            };
            let charged =
                repo::charge(&self.db, account.id, &grant_id, b.amount, &b.id, b.day).await?;
            let lost = {
                let mut st = account.lock();
                st.unacked = None;
                match charged {
                    Charged::Done => {
                        st.pending.take(b.day, b.amount);
                        st.reported += b.amount;
                        false
                    }
                    Charged::Fenced => {
                        tracing::warn!(
                            user.id = account.id.user_id,
                            units = st.pending.total(),
                            "a credit grant was taken over before its usage was reported; charging it from the free balance"
                        );
                        st.lose_grant();
                        true
                    }
                }
            };
            if lost {
                // Taken over under the current lease: the lease itself is gone.
                if epoch == self.lease.epoch() {
                    self.relet(epoch).await?;
                }
                break;
            }
        }
        let rounds = {
            let st = account.lock();
            st.overage.len() + usize::from(st.unacked_overage.is_some())
        };
        for _ in 0..rounds {
            let batch = {
                let mut st = account.lock();
                if st.unacked_overage.is_none() {
                    st.unacked_overage = st.overage.first().map(Batch::new);
                }
                st.unacked_overage.clone()
            };
            let Some(b) = batch else {
                break;
            };
            let charged =
                repo::charge_overage(&self.db, account.id, b.amount, &b.id, b.day).await?;
            let mut st = account.lock();
            st.unacked_overage = None;
            st.overage.take(b.day, b.amount);
            let short = b.amount - charged;
            if short > 0 && st.grant_id.is_some() {
                // The grant held here keeps part of the balance: try again once it is closed.
                st.deferred.add(b.day, short);
            } else if short > 0 {
                self.metrics
                    .uncollected
                    .inc_by(u64::try_from(short).unwrap_or(0));
                tracing::warn!(
                    user.id = account.id.user_id,
                    uncollected = short,
                    "usage beyond the balance could not be charged"
                );
            }
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

    pub(super) async fn flush_account(
        &self,
        account: &Arc<Account>,
        closing: bool,
    ) -> Result<(), Error> {
        let _db = account.db_lock.lock().await;
        self.report(account).await?;
        let (grant_id, idle) = {
            let st = account.lock();
            (
                st.grant_id.clone(),
                st.idle(self.clock.now(), self.idle_close),
            )
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
                (st.rate(self.clock.now()), st.free().max(0))
            };
            if rate > 0 && free * 2 < rate && self.lease.alive() {
                self.top_up(account, 0, rate - free).await?;
            }
            return Ok(());
        }
        {
            let st = account.lock();
            if !(closing || (st.inflight == 0 && st.pending.is_empty())) {
                return Ok(());
            }
        }
        // No more requests from this grant: one arriving now waits for `db_lock` and then
        // opens a new grant. The grant releases what it holds beyond what was charged (closed
        // already if it was taken over: then the taker released it).
        repo::close_grant(&self.db, &grant_id).await?;
        {
            let mut st = account.lock();
            // Anything served from it meanwhile (a reservation of a stop) settles as overage;
            // so does what was put off while the grant held part of the balance.
            let mut owed = std::mem::take(&mut st.pending);
            owed.absorb(&mut st.deferred);
            st.overage.absorb(&mut owed);
            // The spend of the last active second, remembered for a resuming burst.
            let rate = st.window_spend.max(st.last_window);
            *st = State {
                // Requests queued for the next grant keep their place; cost still to collect too.
                waiting: st.waiting,
                overage: std::mem::take(&mut st.overage),
                unacked_overage: st.unacked_overage.take(),
                generation: st.generation + 1,
                last_window: st.last_window,
                window_start: st.window_start,
                window_spend: st.window_spend,
                resume: (rate > 0).then(|| (self.clock.now(), rate)),
                ..State::default()
            };
        }
        // The hold is released: collect what is owed from it now, not a pass later.
        self.report(account).await
    }

    /// Drops an account without a grant from the manager once its last rate is stale, unless a
    /// request holds it (the map lock orders this against `account()` handing it out).
    pub(super) fn forget_if_stale(&self, account: &Arc<Account>) {
        let mut map = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's reference and the caller's: nobody else has it.
        if Arc::strong_count(account) <= 2 && account.lock().forgettable(self.clock.now()) {
            map.remove(&account.id);
        }
    }
}
