//! Integer money. One unit is 1e-6 USD; no floating point touches a balance.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Units in one US dollar.
pub const UNITS_PER_USD: i64 = 1_000_000;
const DECIMALS: usize = 6;

/// An amount of money in integer units (1 unit = 1e-6 USD). May be negative (adjustments).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Credits(i64);

/// Why a decimal text is not an amount of money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoneyParseError {
    Empty,
    NotANumber,
    TooPrecise,
    TooLarge,
}

impl fmt::Display for MoneyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty amount",
            Self::NotANumber => "not a decimal number",
            Self::TooPrecise => "more than 6 decimal places",
            Self::TooLarge => "amount out of range",
        })
    }
}

impl std::error::Error for MoneyParseError {}

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub const fn from_units(units: i64) -> Self {
        Credits(units)
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        self.0.checked_add(other.0).map(Credits)
    }

    pub fn checked_sub(self, other: Credits) -> Option<Credits> {
        self.0.checked_sub(other.0).map(Credits)
    }

    /// Parses a USD decimal string exactly: `"1.5"`, `"-0.000001"`, `"+20"`.
    pub fn parse_usd(text: &str) -> Result<Self, MoneyParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(MoneyParseError::Empty);
        }
        let (negative, digits) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(MoneyParseError::NotANumber);
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyParseError::NotANumber);
        }
        if frac.len() > DECIMALS {
            return Err(MoneyParseError::TooPrecise);
        }
        let mut units: i64 = 0;
        for b in whole
            .bytes()
            .chain(frac.bytes())
            .chain(std::iter::repeat_n(b'0', DECIMALS - frac.len()))
        {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or(MoneyParseError::TooLarge)?;
        }
        Ok(Credits(if negative { -units } else { units }))
    }

    /// The amount as a USD decimal string with at least two decimals: `"12.50"`, `"0.000123"`.
    pub fn to_usd_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = UNITS_PER_USD.unsigned_abs();
        let mut frac = format!("{:06}", abs % per);
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        format!("{sign}{}.{frac}", abs / per)
    }
}

/// Serde for money on the wire as a USD decimal string (`"12.50"`), the form the REST API and
/// the console exchange: `#[serde(with = "types::usd")]`. The value stays integer units.
pub mod usd {
    use super::Credits;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Credits, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_usd_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Credits, D::Error> {
        let text = String::deserialize(d)?;
        Credits::parse_usd(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional amount (`null` when absent).
    pub mod option {
        use super::Credits;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(c: &Option<Credits>, s: S) -> Result<S::Ok, S::Error> {
            match c {
                Some(c) => s.serialize_some(&c.to_usd_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Credits>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|t| Credits::parse_usd(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.to_usd_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Money travels as a USD decimal string and comes back as the same units.
    #[test]
    fn money_crosses_the_wire_as_usd_text() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Row {
            #[serde(with = "usd")]
            paid: Credits,
            #[serde(with = "usd::option")]
            cap: Option<Credits>,
        }
        let row = Row {
            paid: Credits::from_units(1_500_001),
            cap: None,
        };
        let text = serde_json::to_string(&row).expect("json");
        assert_eq!(text, r#"{"paid":"1.500001","cap":null}"#);
        assert_eq!(serde_json::from_str::<Row>(&text).expect("back"), row);
        let capped: Row = serde_json::from_str(r#"{"paid":"-0.5","cap":"20"}"#).expect("capped");
        assert_eq!(capped.paid.units(), -500_000);
        assert_eq!(capped.cap, Some(Credits::from_units(20_000_000)));
        assert!(serde_json::from_str::<Row>(r#"{"paid":"1.0000001","cap":null}"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"{"paid":5,"cap":null}"#).is_err());
    }

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(Credits::parse_usd("1.5"), Ok(Credits(1_500_000)));
        assert_eq!(Credits::parse_usd("0.000001"), Ok(Credits(1)));
        assert_eq!(Credits::parse_usd("-2"), Ok(Credits(-2_000_000)));
        assert_eq!(Credits::parse_usd("+.25"), Ok(Credits(250_000)));
        assert_eq!(Credits::parse_usd(" 3. "), Ok(Credits(3_000_000)));
    }

    #[test]
    fn refuses_text_that_is_not_exact_money() {
        assert_eq!(Credits::parse_usd(""), Err(MoneyParseError::Empty));
        assert_eq!(Credits::parse_usd("."), Err(MoneyParseError::NotANumber));
        assert_eq!(Credits::parse_usd("1e3"), Err(MoneyParseError::NotANumber));
        assert_eq!(
            Credits::parse_usd("1.0000001"),
            Err(MoneyParseError::TooPrecise)
        );
        assert_eq!(
            Credits::parse_usd("99999999999999999999"),
            Err(MoneyParseError::TooLarge)
        );
        assert_eq!(Credits::parse_usd("--1"), Err(MoneyParseError::NotANumber));
    }

    #[test]
    fn formats_as_usd_with_trailing_zeros_trimmed() {
        assert_eq!(Credits(0).to_usd_string(), "0.00");
        assert_eq!(Credits(12_500_000).to_usd_string(), "12.50");
        assert_eq!(Credits(123).to_usd_string(), "0.000123");
        assert_eq!(Credits(-1_000_001).to_usd_string(), "-1.000001");
        assert_eq!(Credits(i64::MIN).to_usd_string(), "-9223372036854.775808");
        assert_eq!(Credits(7).to_string(), "$0.000007");
    }

    #[test]
    fn round_trips_through_text() {
        for units in [0, 1, -1, 999_999, 1_000_000, 123_456_789, -42_000_000] {
            let c = Credits(units);
            assert_eq!(Credits::parse_usd(&c.to_usd_string()), Ok(c));
        }
    }
}
