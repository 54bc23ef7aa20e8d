//! What one-api and new-api store, in Tollgate's terms: pure conversions, each saying what it
//! could not carry over.

use types::ChannelKind;

/// One-api's quota units per US dollar.
pub const QUOTA_PER_USD: i64 = 500_000;

/// Tollgate's units (1e-6 USD) for `quota` one-api units: exactly two each.
pub fn quota_units(quota: i64) -> Option<i64> {
    quota.checked_mul(1_000_000 / QUOTA_PER_USD)
}

/// A decimal written as text (`"0.0375"`, `"7.5"`, `"2e-3"`) times `scale`, exactly: `Ok(n)`
/// when the product is a whole number, `Err(rounded up)` when it is not (or `Err(None)` when the
/// text is not a decimal or the product does not fit).
pub fn scaled(text: &str, scale: i64) -> Result<i64, Option<i64>> {
    let text = text.trim();
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(at) => (
            &text[..at],
            text[at + 1..].parse::<i32>().map_err(|_| None)?,
        ),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches(['-', '+']);
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(None);
    }
    let digits: String = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    let value: i128 = if digits.is_empty() {
        0
    } else if digits.len() > 30 {
        return Err(None);
    } else {
        digits.parse().map_err(|_| None)?
    };
    // value × 10^(exp - frac.len()) × scale
    let shift = exp - i32::try_from(frac.len()).map_err(|_| None)?;
    let mut n = value.checked_mul(i128::from(scale)).ok_or(None)?;
    let mut exact = true;
    if shift >= 0 {
        for _ in 0..shift {
            n = n.checked_mul(10).ok_or(None)?;
        }
    } else {
        for _ in 0..(-shift) {
            if n % 10 != 0 {
                exact = false;
            }
            n = (n + 9) / 10; // n >= 0: rounds up
            if n == 0 {
                break;
            }
        }
    }
    let n = if negative { -n } else { n };
    let n = i64::try_from(n).map_err(|_| None)?;
    if exact { Ok(n) } else { Err(Some(n)) }
}

/// Tollgate's kind for a one-api/new-api channel type; `None` for a type it does not serve
/// (the numbers agree between the two for these; they differ above 27).
pub fn channel_kind(channel_type: i64) -> Option<ChannelKind> {
    match channel_type {
        1 => Some(ChannelKind::OpenAi),
        3 => Some(ChannelKind::Azure),
        8 | 20 | 25 => Some(ChannelKind::OpenAiCompatible),
        14 => Some(ChannelKind::Anthropic),
        24 => Some(ChannelKind::Gemini),
        _ => None,
    }
}

/// The base URL Tollgate calls for a channel: one-api keeps the host (it adds `/v1`), empty for
/// the type's default.
pub fn base_url(kind: Option<ChannelKind>, stored: &str) -> Option<String> {
    let stored = stored.trim().trim_end_matches('/');
    let host = if stored.is_empty() {
        match kind? {
            ChannelKind::OpenAi => "https://api.openai.com",
            ChannelKind::Anthropic => "https://api.anthropic.com",
            ChannelKind::Gemini => "https://generativelanguage.googleapis.com",
            ChannelKind::Azure | ChannelKind::OpenAiCompatible => return None,
        }
    } else {
        stored
    };
    Some(match kind {
        Some(ChannelKind::Azure) => host.to_string(),
        Some(ChannelKind::Gemini) if !host.ends_with("/v1beta") => format!("{host}/v1beta"),
        _ if host.ends_with("/v1") => host.to_string(),
        _ => format!("{host}/v1"),
    })
}

/// A comma- or newline-separated list, trimmed, without empty entries.
pub fn list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The secret a client sends for a stored one-api key (stored without its `sk-`).
pub fn key_secret(stored: &str) -> String {
    let stored = stored.trim();
    if stored.starts_with("sk-") {
        stored.to_string()
    } else {
        format!("sk-{stored}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_two_units() {
        assert_eq!(quota_units(500_000), Some(1_000_000));
        assert_eq!(quota_units(1), Some(2));
        assert_eq!(quota_units(i64::MAX), None);
    }

    #[test]
    fn ratios_scale_exactly_or_say_so() {
        // Ratio 1 = $2 per 1M input tokens = 2,000,000 units.
        assert_eq!(scaled("1", 2_000_000), Ok(2_000_000));
        assert_eq!(scaled("0.0375", 2_000_000), Ok(75_000));
        assert_eq!(scaled("7.5", 2_000_000), Ok(15_000_000));
        assert_eq!(scaled("2e-3", 2_000_000), Ok(4_000));
        assert_eq!(scaled("1.5E2", 1_000), Ok(150_000));
        assert_eq!(scaled("0", 2_000_000), Ok(0));
        assert_eq!(scaled("0.00000003", 2_000_000), Err(Some(1)));
        assert_eq!(scaled("0.3333333333", 1_000), Err(Some(334)));
        assert_eq!(scaled("abc", 1), Err(None));
        assert_eq!(scaled("", 1), Err(None));
        assert_eq!(scaled("1e40", 1), Err(None));
    }

    #[test]
    fn channel_types_and_urls() {
        assert_eq!(channel_kind(1), Some(ChannelKind::OpenAi));
        assert_eq!(channel_kind(14), Some(ChannelKind::Anthropic));
        assert_eq!(channel_kind(15), None);
        assert_eq!(
            base_url(Some(ChannelKind::OpenAi), "").as_deref(),
            Some("https://api.openai.com/v1")
        );
        assert_eq!(
            base_url(Some(ChannelKind::OpenAiCompatible), "http://h:8/").as_deref(),
            Some("http://h:8/v1")
        );
        assert_eq!(
            base_url(Some(ChannelKind::OpenAiCompatible), "http://h/v1").as_deref(),
            Some("http://h/v1")
        );
        assert_eq!(base_url(Some(ChannelKind::OpenAiCompatible), ""), None);
        assert_eq!(
            base_url(Some(ChannelKind::Azure), "https://x.openai.azure.com").as_deref(),
            Some("https://x.openai.azure.com")
        );
    }

    #[test]
    fn keys_lists_and_hashes() {
        assert_eq!(key_secret("abc"), "sk-abc");
        assert_eq!(key_secret("sk-abc"), "sk-abc");
        assert_eq!(list("a, b\nc,,"), ["a", "b", "c"]);
    }
}
