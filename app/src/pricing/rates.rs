//! What a price charges beyond input, output and cache reads (cache writes, reasoning, images,
//! audio), and its long-context tiers, as both price tables (the public one and the admin's)
//! show them.

use crate::i18n::format::{money, number};
use crate::t;
use types::{PriceRates, PriceTier};

/// The label of one of the other kinds, by its API name; and whether it falls back to the
/// input rate (else to the output rate).
fn kind(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "cache_write_5m_per_1m" => (t!("prices.cache_write_5m"), true),
        "cache_write_1h_per_1m" => (t!("prices.cache_write_1h"), true),
        "reasoning_per_1m" => (t!("prices.reasoning"), false),
        "image_input_per_1m" => (t!("prices.image_input"), true),
        "image_output_per_1m" => (t!("prices.image_output"), false),
        "audio_input_per_1m" => (t!("prices.audio_input"), true),
        "audio_output_per_1m" => (t!("prices.audio_output"), false),
        _ => return None,
    })
}

/// The other kinds whose rate differs from the one they fall back to, `label $rate` each,
/// joined by ` · `; empty when every one is charged at the input or the output rate.
pub fn other_kinds(r: &PriceRates) -> String {
    r.named()
        .into_iter()
        .filter_map(|(name, rate)| {
            let (label, input_side) = kind(name)?;
            let base = if input_side {
                r.input_per_1m
            } else {
                r.output_per_1m
            };
            rate.filter(|c| *c != base)
                .map(|c| format!("{label} {}", money(c)))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A tier as one line: `> 200,000: input $6.00 · output $22.50 · cache reads $0.60 …`.
pub fn tier_line(tier: &PriceTier) -> String {
    let r = &tier.rates;
    let mut parts = vec![
        format!("{} {}", t!("prices.input"), money(r.input_per_1m)),
        format!("{} {}", t!("prices.output"), money(r.output_per_1m)),
        format!("{} {}", t!("prices.cached"), money(r.cached_input_per_1m)),
    ];
    let others = other_kinds(r);
    if !others.is_empty() {
        parts.push(others);
    }
    format!(
        "{} {}: {}",
        t!("prices.tier_above"),
        number(tier.above_tokens),
        parts.join(" · ")
    )
}
