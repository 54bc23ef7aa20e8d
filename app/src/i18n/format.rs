//! Numbers, money, dates and durations as each language writes them (as the browsers' `Intl`
//! does for `en-US` and `zh-CN`, times in UTC). Money comes from the integer units and stays
//! exact: every unit is shown, never rounded through a float.

use super::{Lang, lang};
use types::Credits;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Digits grouped by thousands: `1,234,567` (both languages group this way).
fn grouped(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count: `1,234,567`.
pub fn number_in(_lang: Lang, n: u64) -> String {
    grouped(&n.to_string())
}

/// USD, exact: `$1,234.50`, `-$0.000123`; in 简体中文 `US$1,234.50`.
pub fn money_in(lang: Lang, c: Credits) -> String {
    let text = c.to_usd_string();
    let (sign, abs) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, frac) = abs.split_once('.').unwrap_or((abs, "00"));
    let symbol = match lang {
        Lang::En => "$",
        Lang::Zh => "US$",
    };
    format!("{sign}{symbol}{}.{frac}", grouped(whole))
}

/// A day (days since 1970-01-01): `Nov 28, 2026`; `2026年11月28日`.
pub fn day_in(lang: Lang, days: i64) -> String {
    let text = types::date::format_day(days);
    let (y, m, d) = (
        &text[..text.len() - 6],
        &text[text.len() - 5..text.len() - 3],
        &text[text.len() - 2..],
    );
    let (m, d): (usize, u32) = (m.parse().unwrap_or(1), d.parse().unwrap_or(1));
    match lang {
        Lang::En => format!("{} {d}, {y}", MONTHS[m - 1]),
        Lang::Zh => format!("{y}年{m}月{d}日"),
    }
}

/// A moment (unix ms), to the minute, UTC: `Nov 28, 2026, 02:34`; `2026年11月28日 02:34`.
pub fn when_in(lang: Lang, ms: i64) -> String {
    let day = day_in(lang, ms.div_euclid(86_400_000));
    let minute = ms.rem_euclid(86_400_000) / 60_000;
    let sep = match lang {
        Lang::En => ", ",
        Lang::Zh => " ",
    };
    format!("{day}{sep}{:02}:{:02}", minute / 60, minute % 60)
}

/// A duration in milliseconds: `850 ms`, `1,250 ms`; `850 毫秒`.
pub fn millis_in(lang: Lang, ms: u64) -> String {
    let unit = match lang {
        Lang::En => "ms",
        Lang::Zh => "毫秒",
    };
    format!("{} {unit}", number_in(lang, ms))
}

/// A share in basis points, to a tenth of a percent, never rounded up to 100%: `99.9%`.
pub fn percent_in(_lang: Lang, bp: u64) -> String {
    let tenths = bp / 10;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// [`number_in`] in the page's language.
pub fn number(n: u64) -> String {
    number_in(lang(), n)
}

/// [`money_in`] in the page's language.
pub fn money(c: Credits) -> String {
    money_in(lang(), c)
}

/// [`day_in`] in the page's language.
pub fn day(days: i64) -> String {
    day_in(lang(), days)
}

/// [`when_in`] in the page's language.
pub fn when(ms: i64) -> String {
    when_in(lang(), ms)
}

/// [`millis_in`] in the page's language.
pub fn millis(ms: u64) -> String {
    millis_in(lang(), ms)
}

/// [`percent_in`] in the page's language.
pub fn percent(bp: u64) -> String {
    percent_in(lang(), bp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for lang in Lang::ALL {
            assert_eq!(number_in(lang, 0), "0");
            assert_eq!(number_in(lang, 999), "999");
            assert_eq!(number_in(lang, 1_000), "1,000");
            assert_eq!(number_in(lang, 1_234_567), "1,234,567");
            assert_eq!(number_in(lang, u64::MAX), "18,446,744,073,709,551,615");
        }
    }

    #[test]
    fn money_is_exact_to_the_unit_in_each_language() {
        let c = Credits::from_units;
        assert_eq!(money_in(Lang::En, c(0)), "$0.00");
        assert_eq!(money_in(Lang::En, c(15_000)), "$0.015");
        assert_eq!(money_in(Lang::En, c(1_234_500_000)), "$1,234.50");
        assert_eq!(money_in(Lang::En, c(-123)), "-$0.000123");
        assert_eq!(money_in(Lang::En, c(i64::MAX)), "$9,223,372,036,854.775807");
        assert_eq!(money_in(Lang::Zh, c(1_234_500_000)), "US$1,234.50");
        assert_eq!(money_in(Lang::Zh, c(-1_000_001)), "-US$1.000001");
        assert_eq!(
            money_in(Lang::Zh, c(i64::MIN)),
            "-US$9,223,372,036,854.775808"
        );
    }

    #[test]
    fn dates_and_times_are_written_per_language() {
        let day = types::date::parse_day("2026-11-28").expect("day");
        assert_eq!(day_in(Lang::En, day), "Nov 28, 2026");
        assert_eq!(day_in(Lang::Zh, day), "2026年11月28日");
        assert_eq!(day_in(Lang::En, 0), "Jan 1, 1970");
        let ms = day * 86_400_000 + (2 * 60 + 34) * 60_000 + 59_999;
        assert_eq!(when_in(Lang::En, ms), "Nov 28, 2026, 02:34");
        assert_eq!(when_in(Lang::Zh, ms), "2026年11月28日 02:34");
        assert_eq!(when_in(Lang::En, -1), "Dec 31, 1969, 23:59");
    }

    #[test]
    fn durations_and_shares_are_written_per_language() {
        assert_eq!(millis_in(Lang::En, 1_250), "1,250 ms");
        assert_eq!(millis_in(Lang::Zh, 850), "850 毫秒");
        assert_eq!(percent_in(Lang::En, 10_000), "100.0%");
        assert_eq!(percent_in(Lang::En, 9_999), "99.9%");
        assert_eq!(percent_in(Lang::Zh, 6_666), "66.6%");
        assert_eq!(percent_in(Lang::En, 0), "0.0%");
    }
}
