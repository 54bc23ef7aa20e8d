//! Slices of a shared window: with Redis, an instance takes part of a key's window at a time
//! (one atomic script checks what the window has left and sets a slice aside for it) and admits
//! requests from the slice in memory; what a take answers is applied to this instance's view of
//! the window ([`Dim::apply_take`]).

use super::window::Dim;
use super::{Limits, Quotas, REDIS_WAIT, TokenHold, WINDOW};
use crate::Error;
use crate::kv::RedisLink;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// What one take from the shared window answered, per limit.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Taken {
    pub(super) granted: u64,
    pub(super) free: u64,
    pub(super) ttl: Duration,
    pub(super) fresh: bool,
}

/// Redis's part: the scripts and this instance's name among the others.
pub(super) struct Shared {
    pub(super) link: RedisLink,
    pub(super) prefix: String,
    pub(super) instance: String,
    pub(super) take: redis::Script,
    pub(super) beat: redis::Script,
}

/// Takes a slice of one or both of a key's windows, all or nothing. KEYS: the requests and
/// tokens windows. ARGV: the window in ms, then per limit: limit (0: none), need, want, debt.
/// Returns ok, then per limit: granted, free, ttl in ms, fresh (1 when the window opened now).
pub(super) const TAKE: &str = r"
local win = tonumber(ARGV[1])
local st = {}
local ok = 1
for i = 1, 2 do
  local b = 2 + (i - 1) * 4
  local limit = tonumber(ARGV[b])
  if limit > 0 then
    local need, want, debt = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local ttl = redis.call('PTTL', KEYS[i])
    local taken, fresh = 0, 0
    if ttl < 0 then
      fresh, ttl = 1, win
      redis.call('SET', KEYS[i], 0, 'PX', win)
    else
      taken = tonumber(redis.call('GET', KEYS[i]) or '0')
    end
    if debt > 0 then taken = redis.call('INCRBY', KEYS[i], debt) end
    if limit - taken < need then ok = 0 end
    st[i] = { limit, need, want, taken, ttl, fresh }
  end
end
local out = { ok }
for i = 1, 2 do
  local s = st[i]
  if s then
    local grant = 0
    if ok == 1 and s[2] > 0 then
      local free = s[1] - s[4]
      grant = math.min(free, math.max(s[2], math.min(s[3], math.ceil(free / 4))))
      s[4] = redis.call('INCRBY', KEYS[i], grant)
    end
    local free = s[1] - s[4]
    if free < 0 then free = 0 end
    table.insert(out, grant)
    table.insert(out, free)
    table.insert(out, s[5])
    table.insert(out, s[6])
  else
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, 0)
  end
end
return out
";

/// Announces this instance (ARGV 1) and counts the live ones (announced within ARGV 2 ms),
/// by Redis's clock.
pub(super) const BEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
";

/// What a dimension needs from a take: its limit, units still needed, and the debt sent.
#[derive(Clone, Copy, Default)]
pub(super) struct Ask {
    pub(super) limit: u64,
    pub(super) need: u64,
    pub(super) had: u64,
    pub(super) debt: u64,
    pub(super) epoch: u64,
}

impl Dim {
    /// Applies a take's answer `t` to the window it asked `ask` of (sent at `sent`): a window
    /// that opened afresh (or is not the one asked of) starts over here, ending `t.ttl` after
    /// the send; the debt sent is cleared; a granted take leaves its surplus in the slice, a
    /// refused one gives the slice back what was taken from it. True when this limit refused.
    pub(super) fn apply_take(
        &mut self,
        ask: Ask,
        t: Taken,
        ok: bool,
        units: u64,
        sent: Instant,
        epochs: &AtomicU64,
    ) -> bool {
        if ask.limit == 0 {
            return false;
        }
        let same = self.epoch == ask.epoch && !t.fresh;
        if t.fresh || self.epoch != ask.epoch {
            *self = Dim::default();
        }
        self.open(sent + t.ttl, epochs);
        self.free = t.free;
        if same {
            self.debt = self.debt.saturating_sub(ask.debt);
        }
        if ok {
            self.slice += t.granted - ask.need.min(t.granted);
            self.used += units;
            false
        } else {
            if same {
                self.slice += ask.had;
            }
            t.free < ask.need
        }
    }
}

impl Quotas {
    pub(super) async fn admit_shared(
        self: &Arc<Self>,
        shared: &Shared,
        key_id: i64,
        limits: Limits,
        (req, tok): (u64, u64),
    ) -> Result<Option<TokenHold>, Error> {
        // From this instance's slices, when they hold enough: no network.
        let mut asks = [Ask::default(); 2];
        {
            let now = self.clock.now();
            let mut map = self.shard(key_id);
            let st = map.entry(key_id).or_default();
            for (i, (dim, limit, units)) in [
                (&mut st.req, limits.rpm, req),
                (&mut st.tok, limits.tpm, tok),
            ]
            .into_iter()
            .enumerate()
            {
                dim.roll(now);
                let Some(limit) = limit else { continue };
                let had = dim.slice.min(units);
                dim.slice -= had;
                asks[i] = Ask {
                    limit,
                    need: units - had,
                    had,
                    debt: dim.debt,
                    epoch: dim.epoch,
                };
            }
            if asks.iter().all(|a| a.need == 0) {
                st.req.used += req;
                st.tok.used += tok;
                return Ok(self.hold(limits, key_id, tok, st.tok.epoch, true));
            }
        }
        // Otherwise one take from the shared window, for both limits.
        let sent = self.clock.now();
        match self.take(shared, key_id, &asks).await {
            Ok((ok, taken)) => {
                let mut map = self.shard(key_id);
                let st = map.entry(key_id).or_default();
                let mut retry = Duration::ZERO;
                for (i, (dim, units, name)) in
                    [(&mut st.req, req, "requests"), (&mut st.tok, tok, "tokens")]
                        .into_iter()
                        .enumerate()
                {
                    if dim.apply_take(asks[i], taken[i], ok, units, sent, &self.epochs) {
                        self.refusals.with_label_values(&[name]).inc();
                        retry = retry.max(taken[i].ttl);
                    }
                }
                if !ok {
                    return Err(Error::RateLimited {
                        retry_after: retry.max(Duration::from_millis(1)),
                    });
                }
                let epoch = st.tok.epoch;
                Ok(self.hold(limits, key_id, tok, epoch, true))
            }
            Err(e) => {
                {
                    let mut map = self.shard(key_id);
                    let st = map.entry(key_id).or_default();
                    for (dim, ask) in [(&mut st.req, asks[0]), (&mut st.tok, asks[1])] {
                        if dim.epoch == ask.epoch {
                            dim.slice += ask.had;
                        }
                    }
                }
                self.degrade(&e);
                self.admit_locally(key_id, limits, (req, tok))
            }
        }
    }

    async fn take(
        &self,
        shared: &Shared,
        key_id: i64,
        asks: &[Ask; 2],
    ) -> Result<(bool, [Taken; 2]), Error> {
        let keys = [
            format!("{}r:{key_id}", shared.prefix),
            format!("{}t:{key_id}", shared.prefix),
        ];
        let win = WINDOW.as_millis() as u64;
        let mut invocation = shared.take.key(&keys[0]);
        invocation.key(&keys[1]).arg(win);
        for a in asks {
            invocation
                .arg(a.limit)
                .arg(a.need)
                .arg((a.limit / 20).max(1))
                .arg(a.debt);
        }
        let out: Vec<i64> = shared
            .link
            .call_within(REDIS_WAIT, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        if out.len() != 9 {
            return Err(anyhow::anyhow!("rate limit script answered {} values", out.len()).into());
        }
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let dim = |i: usize| Taken {
            granted: n(out[1 + i * 4]),
            free: n(out[2 + i * 4]),
            ttl: Duration::from_millis(n(out[3 + i * 4])),
            fresh: out[4 + i * 4] == 1,
        };
        Ok((out[0] == 1, [dim(0), dim(1)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_when_the_window_reset_starts_a_new_one_with_its_slice() {
        let epochs = AtomicU64::new(0);
        let t0 = Instant::now();
        let mut dim = Dim::default();
        dim.open(t0 + WINDOW, &epochs);
        dim.slice = 3;
        dim.used = 40;
        dim.debt = 7;
        let old = dim.epoch;
        // A minute on, the window has ended here: it rolls, and the ask is of no window.
        let now = t0 + WINDOW;
        dim.roll(now);
        assert!(dim.ends.is_none() && dim.slice == 0 && dim.used == 0);
        let ask = Ask {
            limit: 100,
            need: 1,
            had: 0,
            debt: dim.debt,
            epoch: dim.epoch,
        };
        // Redis opened a fresh window and set 25 aside for this instance.
        let sent = now + Duration::from_millis(2);
        let t = Taken {
            granted: 25,
            free: 75,
            ttl: WINDOW,
            fresh: true,
        };
        assert!(!dim.apply_take(ask, t, true, 1, sent, &epochs));
        assert_eq!(
            dim.ends,
            Some(sent + WINDOW),
            "it ends a minute after the take"
        );
        assert_ne!(
            dim.epoch, old,
            "a token settlement of the old window is dropped"
        );
        assert_eq!((dim.slice, dim.used, dim.free), (24, 1, 75));
        // The next take in the same window: the slice grows, the debt it carried is cleared.
        dim.debt = 5;
        let ask = Ask {
            limit: 100,
            need: 2,
            had: 0,
            debt: 5,
            epoch: dim.epoch,
        };
        let t = Taken {
            granted: 10,
            free: 60,
            ttl: Duration::from_secs(50),
            fresh: false,
        };
        assert!(!dim.apply_take(ask, t, true, 2, sent, &epochs));
        assert_eq!((dim.slice, dim.used, dim.debt), (32, 3, 0));
        // Refused: what was taken from the slice goes back, and the limit says it refused.
        let ask = Ask {
            limit: 100,
            need: 90,
            had: 4,
            debt: 0,
            epoch: dim.epoch,
        };
        let t = Taken {
            granted: 0,
            free: 60,
            ttl: Duration::from_secs(40),
            fresh: false,
        };
        assert!(dim.apply_take(ask, t, false, 94, sent, &epochs));
        assert_eq!((dim.slice, dim.used), (36, 3));
    }
}
