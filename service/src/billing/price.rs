//! Prices and the cost of a request, in exact integer arithmetic.

use crate::Error;
use std::collections::HashMap;
use types::Credits;

/// A model's price, in units (1e-6 USD) per 1M tokens, plus a flat per-request price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub version: i64,
    pub input_per_1m: i64,
    pub output_per_1m: i64,
    pub cached_input_per_1m: i64,
    pub per_request: i64,
}

/// Token counts of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    /// Of the prompt tokens, how many were served from the upstream's cache.
    pub cached: u64,
    /// The kinds of tokens reported apart (cache writes, reasoning, images, audio), each a part
    /// of `prompt` or `completion`: charged within them at today's prices.
    pub detail: types::TokenDetail,
}

pub const MULTIPLIER_ONE: i64 = 1000;

impl Price {
    /// The cost in units, rounded up once per request: ceil(Σ tokens × price × multiplier / 1e9).
    pub fn cost(&self, u: &Usage, multiplier_milli: i64) -> i64 {
        let cached = u.cached.min(u.prompt);
        let uncached = u.prompt - cached;
        let term =
            |tokens: u64, price: i64| i128::from(tokens).saturating_mul(i128::from(price.max(0)));
        let total = term(uncached, self.input_per_1m)
            .saturating_add(term(cached, self.cached_input_per_1m))
            .saturating_add(term(u.completion, self.output_per_1m))
            .saturating_add(term(1_000_000, self.per_request));
        let numer = total.saturating_mul(i128::from(multiplier_milli.max(0)));
        let denom: i128 = 1_000_000 * i128::from(MULTIPLIER_ONE);
        let cost = numer / denom + i128::from(numer % denom != 0);
        i64::try_from(cost).unwrap_or(i64::MAX)
    }
}

/// Every active price and group multiplier, as one immutable snapshot.
#[derive(Clone, Debug, Default)]
pub struct PriceBook {
    pub prices: HashMap<String, Price>,
    pub multipliers: HashMap<String, i64>,
    /// The groups whose multiplier was set through the API (the rest come from the config).
    pub from_database: std::collections::HashSet<String>,
}

impl PriceBook {
    pub fn price(&self, model: &str) -> Option<Price> {
        self.prices.get(model).copied()
    }

    pub fn multiplier(&self, group: &str) -> i64 {
        self.multipliers
            .get(group)
            .copied()
            .unwrap_or(MULTIPLIER_ONE)
    }

    /// What a request of `group` costs: the price of the first of `models` that has one (the
    /// public name, then the upstream names it maps to) with the group's multiplier.
    pub fn quote<'a>(
        &self,
        models: impl IntoIterator<Item = &'a str>,
        group: &str,
    ) -> Option<Quote> {
        let price = models.into_iter().find_map(|m| self.price(m))?;
        Some(Quote {
            price,
            multiplier: self.multiplier(group),
        })
    }
}

/// A price version and a group multiplier: what a request reserves for its worst case and what
/// it is charged for what it used, computed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub price: Price,
    /// In thousandths (1000 = x1).
    pub multiplier: i64,
}

impl Quote {
    /// What to hold for a request that may use up to `bound`.
    pub fn hold(&self, bound: &Usage) -> i64 {
        self.cost(bound)
    }

    /// The most output tokens, at most `bound.completion`, whose hold with `bound`'s prompt
    /// fits in `amount` (0 when not even the prompt does).
    pub fn most_completion(&self, bound: &Usage, amount: i64) -> u64 {
        let fits = |c: u64| {
            self.hold(&Usage {
                completion: c,
                ..*bound
            }) <= amount
        };
        let (mut lo, mut hi) = (0, bound.completion);
        if fits(hi) {
            return hi;
        }
        // fits(lo) or lo == 0; !fits(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// What `used` costs, rounded up once.
    pub fn cost(&self, used: &Usage) -> i64 {
        self.price.cost(used, self.multiplier)
    }

    /// A unit price (per 1M tokens, or per request) with the multiplier applied, rounded up to
    /// a unit as a charge is: what a price table shows.
    pub fn scaled(&self, units: i64) -> i64 {
        let n = i128::from(units.max(0)) * i128::from(self.multiplier);
        let d = i128::from(MULTIPLIER_ONE);
        i64::try_from(n / d + i128::from(n % d != 0)).unwrap_or(i64::MAX)
    }

    /// The price version the charge records.
    pub fn version(&self) -> i64 {
        self.price.version
    }
}

/// A multiplier in thousandths as a decimal string: 1500 -> "1.5".
pub fn multiplier_text(milli: i64) -> String {
    let t = Credits::from_units(milli.saturating_mul(1000)).to_usd_string();
    match t.strip_suffix(".00") {
        Some(whole) => whole.to_string(),
        None => t.trim_end_matches('0').to_string(),
    }
}

/// A group name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_group(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::invalid(
            "group",
            "must be 1 to 64 letters, digits, -, _ or .",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: i64, output: i64, cached: i64, per_request: i64) -> Price {
        Price {
            version: 1,
            input_per_1m: input,
            output_per_1m: output,
            cached_input_per_1m: cached,
            per_request,
        }
    }

    #[test]
    fn a_quote_takes_the_first_priced_model_and_the_group_multiplier() {
        let mut book = PriceBook::default();
        book.prices
            .insert("upstream".into(), price(150_000, 600_000, 0, 0));
        book.multipliers.insert("vip".into(), 500);
        let q = book.quote(["public", "upstream"], "vip").expect("a price");
        assert_eq!(q.price.input_per_1m, 150_000);
        assert_eq!(q.multiplier, 500);
        let used = Usage {
            prompt: 1_000_000,
            completion: 0,
            cached: 0,
            ..Default::default()
        };
        assert_eq!(q.cost(&used), 75_000, "half price for the group");
        assert_eq!(q.hold(&used), q.cost(&used));
        assert_eq!(book.quote(["public"], "vip"), None);
        assert_eq!(
            book.quote(["upstream"], "nobody").map(|q| q.multiplier),
            Some(MULTIPLIER_ONE)
        );
    }

    #[test]
    fn the_most_completion_an_amount_covers_is_exact() {
        let mut book = PriceBook::default();
        // 0.003 / 0.015 units a token: 100 prompt tokens hold 0.3 units.
        book.prices.insert("m".into(), price(3_000, 15_000, 0, 0));
        let q = book.quote(["m"], "default").expect("a price");
        let bound = Usage {
            prompt: 100,
            completion: 4096,
            ..Default::default()
        };
        assert_eq!(q.most_completion(&bound, q.hold(&bound)), 4096);
        for amount in [1, 2, 10, 33] {
            let c = q.most_completion(&bound, amount);
            let at = |c| {
                q.hold(&Usage {
                    completion: c,
                    ..bound
                })
            };
            assert!(at(c) <= amount, "{amount}: {c}");
            assert!(at(c + 1) > amount, "{amount}: {c} is the most");
        }
        assert_eq!(
            q.most_completion(
                &Usage {
                    prompt: 10_000_000,
                    ..bound
                },
                5
            ),
            0
        );
    }

    #[test]
    fn charges_exactly_and_rounds_up_once() {
        // gpt-4o-mini: $0.15 / $0.60 / $0.075 per 1M tokens.
        let p = price(150_000, 600_000, 75_000, 0);
        let u = Usage {
            prompt: 1_000_000,
            completion: 1_000_000,
            cached: 0,
            ..Default::default()
        };
        assert_eq!(p.cost(&u, MULTIPLIER_ONE), 750_000);
        // 10 prompt tokens cost 1.5 units: rounded up to 2, once.
        assert_eq!(
            p.cost(
                &Usage {
                    prompt: 10,
                    completion: 0,
                    cached: 0,
                    ..Default::default()
                },
                MULTIPLIER_ONE
            ),
            2
        );
        assert_eq!(p.cost(&Usage::default(), MULTIPLIER_ONE), 0);
    }

    #[test]
    fn cached_tokens_use_the_cached_price() {
        let p = price(1_000_000, 0, 500_000, 0);
        let u = Usage {
            prompt: 100,
            completion: 0,
            cached: 40,
            ..Default::default()
        };
        assert_eq!(p.cost(&u, MULTIPLIER_ONE), 60 + 20);
        // More cached than prompt tokens is clamped.
        assert_eq!(
            p.cost(
                &Usage {
                    prompt: 10,
                    completion: 0,
                    cached: 99,
                    ..Default::default()
                },
                MULTIPLIER_ONE
            ),
            5
        );
    }

    #[test]
    fn per_request_price_and_group_multiplier() {
        let p = price(0, 0, 0, 100);
        assert_eq!(p.cost(&Usage::default(), MULTIPLIER_ONE), 100);
        assert_eq!(p.cost(&Usage::default(), 1500), 150);
        assert_eq!(p.cost(&Usage::default(), 0), 0);
    }

    #[test]
    fn huge_usage_saturates_instead_of_overflowing() {
        let p = price(i64::MAX, i64::MAX, i64::MAX, i64::MAX);
        let u = Usage {
            prompt: u64::MAX,
            completion: u64::MAX,
            cached: 0,
            ..Default::default()
        };
        assert_eq!(p.cost(&u, MULTIPLIER_ONE), i64::MAX);
    }
}
