//! Calendar days without a time zone library: `YYYY-MM-DD` text to and from days since the Unix
//! epoch (the proleptic Gregorian calendar, as ISO 8601 and OpenAI's billing dates use).

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `None` when the text is not a real date.
pub fn parse_day(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (num(&text[..4])?, num(&text[5..7])?, num(&text[8..])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// The `YYYY-MM-DD` text of a day counted from 1970-01-01.
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms (public domain), "chrono-Compatible Low-Level Date Algorithms".
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(parse_day("2026-11-27"), Some(20_784));
        // Every 97th day from 0001-01-01 to 9999-12-31.
        for d in (-719_162..2_932_897).step_by(97) {
            assert_eq!(parse_day(&format_day(d)), Some(d), "{d}");
        }
        assert_eq!(format_day(2_932_896), "9999-12-31");
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "",
            "2026-1-01",
            "2026-13-01",
            "2026-02-29",
            "2026-04-31",
            "2026/01/01",
            "20a6-01-01",
            "2026-01-00",
            "+026-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert!(parse_day("2024-02-29").is_some());
    }
}
