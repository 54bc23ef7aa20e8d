//! Prices and the cost of a request, in exact integer arithmetic.

use crate::Error;
use crate::config::{ParsedPrice, Rates, Tier};
use std::collections::HashMap;
use std::sync::Arc;
use types::Credits;

/// A model's price version: rates in units (1e-6 USD) per 1M tokens of each kind, a flat
/// per-request price, the model's most output tokens and its long-context tiers
/// ([`ParsedPrice`], whose fallbacks and tiers are documented there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub version: i64,
    pub spec: Arc<ParsedPrice>,
}

/// Token counts of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, cache reads and writes included: the context the tiers look at.
    pub prompt: u64,
    /// Output tokens, reasoning included.
    pub completion: u64,
    /// Of the prompt tokens, how many were served from the upstream's cache.
    pub cached: u64,
    /// The kinds of tokens reported apart (cache writes, reasoning, images, audio), each a part
    /// of `prompt` or `completion`, each charged at its own rate.
    pub detail: types::TokenDetail,
}

pub const MULTIPLIER_ONE: i64 = 1000;

/// `whole` split into `parts` taken in order (each at most what is left) and the rest: a
/// provider that reports parts above its total is charged the total, never more.
fn split<const N: usize>(whole: u64, parts: [u64; N]) -> ([u64; N], u64) {
    let mut left = whole;
    let taken = parts.map(|p| {
        let t = p.min(left);
        left -= t;
        t
    });
    (taken, left)
}

/// Σ tokens × rate, exact.
fn sum<const N: usize>(terms: [(u64, i64); N]) -> i128 {
    terms.iter().fold(0i128, |acc, &(tokens, rate)| {
        acc.saturating_add(i128::from(tokens).saturating_mul(i128::from(rate.max(0))))
    })
}

/// `numer / (1e6 × MULTIPLIER_ONE) × multiplier`, rounded up once.
fn units(total: i128, multiplier_milli: i64) -> i64 {
    let numer = total.saturating_mul(i128::from(multiplier_milli.max(0)));
    let denom: i128 = 1_000_000 * i128::from(MULTIPLIER_ONE);
    let cost = numer / denom + i128::from(numer % denom != 0);
    i64::try_from(cost).unwrap_or(i64::MAX)
}

impl Price {
    pub fn new(version: i64, spec: ParsedPrice) -> Price {
        Price {
            version,
            spec: Arc::new(spec),
        }
    }

    /// The cost in units, rounded up once per request: ceil(Σ tokens × rate × multiplier /
    /// 1e9), every kind of token at its rate, all at the rates of the tier the request's
    /// context is in.
    pub fn cost(&self, u: &Usage, multiplier_milli: i64) -> i64 {
        let r = self.spec.rates_for(u.prompt).charged();
        let d = &u.detail;
        let ([read, w5, w1, image_in, audio_in], input) = split(
            u.prompt,
            [
                u.cached,
                d.cache_write_5m,
                d.cache_write_1h,
                d.image_input,
                d.audio_input,
            ],
        );
        let ([reasoning, image_out, audio_out], output) =
            split(u.completion, [d.reasoning, d.image_output, d.audio_output]);
        let total = sum([
            (input, r.input),
            (read, r.cache_read),
            (w5, r.cache_write_5m),
            (w1, r.cache_write_1h),
            (image_in, r.image_input),
            (audio_in, r.audio_input),
            (output, r.output),
            (reasoning, r.reasoning),
            (image_out, r.image_output),
            (audio_out, r.audio_output),
            (1_000_000, self.spec.per_request),
        ]);
        units(total, multiplier_milli)
    }

    /// The most a request of at most `bound.prompt` input and `bound.completion` output tokens
    /// can cost, whatever kinds its tokens turn out to be: each side at its dearest rate, in
    /// the dearest of the tiers a context up to `bound.prompt` can fall in.
    pub fn worst(&self, bound: &Usage, multiplier_milli: i64) -> i64 {
        let tiers = std::iter::once(&self.spec.rates).chain(
            self.spec
                .tiers
                .iter()
                .filter(|t| bound.prompt > t.above_tokens)
                .map(|t| &t.rates),
        );
        let total = tiers
            .map(|rates| {
                let r = rates.charged();
                let input = [
                    r.input,
                    r.cache_read,
                    r.cache_write_5m,
                    r.cache_write_1h,
                    r.image_input,
                    r.audio_input,
                ];
                let output = [r.output, r.reasoning, r.image_output, r.audio_output];
                sum([
                    (bound.prompt, input.into_iter().max().unwrap_or(0)),
                    (bound.completion, output.into_iter().max().unwrap_or(0)),
                    (1_000_000, self.spec.per_request),
                ])
            })
            .max()
            .unwrap_or(0);
        units(total, multiplier_milli)
    }

    /// The model's most output tokens, when its price names them.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.spec.max_output_tokens
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
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.prices.get(model)
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
        let price = models.into_iter().find_map(|m| self.price(m))?.clone();
        Some(Quote {
            price,
            multiplier: self.multiplier(group),
        })
    }
}

/// A price version and a group multiplier: what a request reserves for its worst case and what
/// it is charged for what it used, computed the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    pub price: Price,
    /// In thousandths (1000 = x1).
    pub multiplier: i64,
}

impl Quote {
    /// What to hold for a request that may use up to `bound`: its worst case, so that no
    /// mix of token kinds or tier can cost more than was held.
    pub fn hold(&self, bound: &Usage) -> i64 {
        self.price.worst(bound, self.multiplier)
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

/// `r` in the API's shape, each rate through `rate` (`None` for one that falls back).
fn rates_view(r: &Rates, rate: impl Fn(Option<i64>) -> Option<i64>) -> types::PriceRates {
    let c = |v: Option<i64>| rate(v).map(Credits::from_units);
    types::PriceRates {
        input_per_1m: c(Some(r.input_per_1m)).unwrap_or_default(),
        output_per_1m: c(Some(r.output_per_1m)).unwrap_or_default(),
        cached_input_per_1m: c(Some(r.cached_input_per_1m)).unwrap_or_default(),
        cache_write_5m_per_1m: c(r.cache_write_5m_per_1m),
        cache_write_1h_per_1m: c(r.cache_write_1h_per_1m),
        reasoning_per_1m: c(r.reasoning_per_1m),
        image_input_per_1m: c(r.image_input_per_1m),
        image_output_per_1m: c(r.image_output_per_1m),
        audio_input_per_1m: c(r.audio_input_per_1m),
        audio_output_per_1m: c(r.audio_output_per_1m),
    }
}

/// Every rate of `r` as charged (fallbacks resolved).
fn resolved(r: &Rates) -> Rates {
    let c = r.charged();
    Rates {
        input_per_1m: c.input,
        output_per_1m: c.output,
        cached_input_per_1m: c.cache_read,
        cache_write_5m_per_1m: Some(c.cache_write_5m),
        cache_write_1h_per_1m: Some(c.cache_write_1h),
        reasoning_per_1m: Some(c.reasoning),
        image_input_per_1m: Some(c.image_input),
        image_output_per_1m: Some(c.image_output),
        audio_input_per_1m: Some(c.audio_input),
        audio_output_per_1m: Some(c.audio_output),
    }
}

/// Each tier in the API's shape, its rates through `view`.
fn tiers_view(tiers: &[Tier], view: impl Fn(&Rates) -> types::PriceRates) -> Vec<types::PriceTier> {
    tiers
        .iter()
        .map(|t| types::PriceTier {
            above_tokens: t.above_tokens,
            rates: view(&t.rates),
        })
        .collect()
}

impl Price {
    /// As the admin API shows it: the rates as set (`null` where one falls back).
    pub fn view(&self, model: &str) -> types::PriceView {
        let spec = &*self.spec;
        types::PriceView {
            model: model.to_string(),
            version: self.version,
            rates: rates_view(&spec.rates, |v| v),
            per_request: Credits::from_units(spec.per_request),
            max_output_tokens: spec.max_output_tokens,
            tiers: tiers_view(&spec.tiers, |r| rates_view(r, |v| v)),
        }
    }
}

impl Quote {
    /// As `/api/pricing` lists it: every rate as charged to this quote's group, rounded up to
    /// a unit as a charge is; a request that sets no bound is sent with `default_max_tokens`
    /// unless the price names the model's own.
    pub fn table(&self, model: String, default_max_tokens: u64) -> types::ModelPrice {
        let spec = &*self.price.spec;
        let scaled = |v: Option<i64>| v.map(|u| self.scaled(u));
        types::ModelPrice {
            model,
            rates: rates_view(&resolved(&spec.rates), scaled),
            per_request: Credits::from_units(self.scaled(spec.per_request)),
            max_output_tokens: spec.max_output_tokens.unwrap_or(default_max_tokens),
            tiers: tiers_view(&spec.tiers, |r| rates_view(&resolved(r), scaled)),
            version: self.price.version,
        }
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
    Ok(crate::field::check_group("group", name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: i64, output: i64, cached: i64, per_request: i64) -> Price {
        Price::new(
            1,
            ParsedPrice {
                rates: Rates {
                    input_per_1m: input,
                    output_per_1m: output,
                    cached_input_per_1m: cached,
                    ..Rates::default()
                },
                per_request,
                ..ParsedPrice::default()
            },
        )
    }

    /// One token of each kind at 1M units per 1M tokens costs one unit: each rate here is a
    /// different power of two, so a cost names which rate each kind was charged at.
    fn every_kind() -> Rates {
        Rates {
            input_per_1m: 1_000_000,
            output_per_1m: 2_000_000,
            cached_input_per_1m: 4_000_000,
            cache_write_5m_per_1m: Some(8_000_000),
            cache_write_1h_per_1m: Some(16_000_000),
            reasoning_per_1m: Some(32_000_000),
            image_input_per_1m: Some(64_000_000),
            image_output_per_1m: Some(128_000_000),
            audio_input_per_1m: Some(256_000_000),
            audio_output_per_1m: Some(512_000_000),
        }
    }

    fn every_kind_price() -> Price {
        Price::new(
            1,
            ParsedPrice {
                rates: every_kind(),
                ..ParsedPrice::default()
            },
        )
    }

    fn of_kind(i: usize) -> Usage {
        let mut u = Usage::default();
        let d = &mut u.detail;
        match i {
            0 => u.prompt = 1,
            1 => u.completion = 1,
            2 => (u.prompt, u.cached) = (1, 1),
            3 => (u.prompt, d.cache_write_5m) = (1, 1),
            4 => (u.prompt, d.cache_write_1h) = (1, 1),
            5 => (u.completion, d.reasoning) = (1, 1),
            6 => (u.prompt, d.image_input) = (1, 1),
            7 => (u.completion, d.image_output) = (1, 1),
            8 => (u.prompt, d.audio_input) = (1, 1),
            _ => (u.completion, d.audio_output) = (1, 1),
        }
        u
    }

    #[test]
    fn each_kind_of_token_is_charged_at_its_own_rate() {
        let p = every_kind_price();
        for i in 0..10 {
            assert_eq!(p.cost(&of_kind(i), MULTIPLIER_ONE), 1 << i, "kind {i}");
        }
        // All at once: each part taken from its side's total, the rest at the plain rate.
        let mut u = Usage {
            prompt: 100,
            completion: 50,
            cached: 10,
            ..Usage::default()
        };
        u.detail.cache_write_1h = 20;
        u.detail.reasoning = 30;
        assert_eq!(
            p.cost(&u, MULTIPLIER_ONE),
            70 + 10 * 4 + 20 * 16 + 20 * 2 + 30 * 32
        );
        // Parts above the total are charged up to the total, never more tokens than counted.
        u.detail.cache_write_5m = 1_000;
        assert_eq!(
            p.cost(&u, MULTIPLIER_ONE),
            10 * 4 + 90 * 8 + 20 * 2 + 30 * 32
        );
    }

    #[test]
    fn unset_rates_fall_back_to_input_or_output_never_zero() {
        let p = price(1_000_000, 2_000_000, 1_000_000, 0);
        let input_side = [0, 2, 3, 4, 6, 8];
        for i in 0..10 {
            let want = if input_side.contains(&i) { 1 } else { 2 };
            assert_eq!(p.cost(&of_kind(i), MULTIPLIER_ONE), want, "kind {i}");
        }
    }

    #[test]
    fn a_tier_prices_the_whole_request_above_its_threshold() {
        let tier = |above, input| Tier {
            above_tokens: above,
            rates: Rates {
                input_per_1m: input,
                output_per_1m: input * 2,
                cached_input_per_1m: input / 10,
                ..Rates::default()
            },
        };
        let p = Price::new(
            3,
            ParsedPrice {
                rates: tier(0, 1_000_000).rates,
                tiers: vec![tier(200_000, 2_000_000), tier(1_000_000, 3_000_000)],
                ..ParsedPrice::default()
            },
        );
        let at = |prompt, cached| {
            p.cost(
                &Usage {
                    prompt,
                    completion: 10,
                    cached,
                    ..Usage::default()
                },
                MULTIPLIER_ONE,
            )
        };
        // One below, exactly at: the base rates for every token.
        assert_eq!(at(199_999, 0), 199_999 + 20);
        assert_eq!(at(200_000, 0), 200_000 + 20);
        // One above: the tier's rates for the whole request, not the excess only.
        assert_eq!(at(200_001, 0), 2 * 200_001 + 40);
        // Cache reads count toward the context (they are part of the input) and take the
        // tier's cache rate.
        assert_eq!(at(200_001, 100_001), 2 * 100_000 + 100_001 / 5 + 1 + 40);
        assert_eq!(at(1_000_000, 0), 2 * 1_000_000 + 40);
        assert_eq!(at(1_000_001, 0), 3 * 1_000_001 + 60);
        // What is held for a bound covers whatever tier the context ends in.
        let q = Quote {
            price: p.clone(),
            multiplier: MULTIPLIER_ONE,
        };
        let bound = Usage {
            prompt: 200_001,
            completion: 10,
            ..Usage::default()
        };
        assert_eq!(q.hold(&bound), 2 * 200_001 + 40);
        assert!(q.hold(&bound) >= at(200_001, 0) && q.hold(&bound) >= at(150_000, 0));
    }

    #[test]
    fn the_hold_covers_the_dearest_kind_on_each_side() {
        let p = every_kind_price();
        let q = Quote {
            price: p,
            multiplier: MULTIPLIER_ONE,
        };
        let bound = Usage {
            prompt: 10,
            completion: 10,
            ..Usage::default()
        };
        // Input at audio input's 256, output at audio output's 512.
        assert_eq!(q.hold(&bound), 10 * 256 + 10 * 512);
        for i in 0..10 {
            assert!(q.cost(&of_kind(i)) <= q.hold(&bound), "kind {i}");
        }
    }

    #[test]
    fn a_quote_takes_the_first_priced_model_and_the_group_multiplier() {
        let mut book = PriceBook::default();
        book.prices
            .insert("upstream".into(), price(150_000, 600_000, 150_000, 0));
        book.multipliers.insert("vip".into(), 500);
        let q = book.quote(["public", "upstream"], "vip").expect("a price");
        assert_eq!(q.price.spec.rates.input_per_1m, 150_000);
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
        book.prices
            .insert("m".into(), price(3_000, 15_000, 3_000, 0));
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
