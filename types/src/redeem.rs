//! Redeem codes (prepaid vouchers) as the admin API, the redeem endpoint and the console show
//! them. A code's text is shown once, when its batch is created; afterwards only its prefix.

use crate::Credits;
use serde::{Deserialize, Serialize};

/// What an administrator supplies to create a batch of codes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRedeemBatch {
    /// How many codes: 1 to 10,000.
    pub count: u32,
    /// The value of each code, a USD decimal string.
    pub value: String,
    /// Unix seconds after which the codes can no longer be redeemed.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// A label to find the batch by.
    #[serde(default)]
    pub batch: Option<String>,
}

/// A batch as listed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemBatch {
    pub id: i64,
    pub label: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub value: Credits,
    pub count: i64,
    /// How many of its codes are unused (and unexpired), used, voided and expired.
    pub unused: i64,
    pub used: i64,
    pub voided: i64,
    pub expired: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub created_by: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A newly created batch: its codes, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedRedeemBatch {
    pub batch: RedeemBatch,
    pub codes: Vec<String>,
}

/// Where a code stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedeemStatus {
    Unused,
    Used,
    Expired,
    Voided,
}

impl RedeemStatus {
    pub const ALL: [RedeemStatus; 4] = [
        RedeemStatus::Unused,
        RedeemStatus::Used,
        RedeemStatus::Expired,
        RedeemStatus::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedeemStatus::Unused => "unused",
            RedeemStatus::Used => "used",
            RedeemStatus::Expired => "expired",
            RedeemStatus::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<RedeemStatus> {
        RedeemStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A code as the admin API lists it: never its text, only a display prefix.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemCodeView {
    pub id: i64,
    pub batch_id: i64,
    pub prefix: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub value: Credits,
    pub status: RedeemStatus,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub used_by: Option<i64>,
    pub used_by_name: Option<String>,
    /// Unix milliseconds.
    pub used_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub created_at: i64,
}

/// What redeeming a code did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    /// The amount credited.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub amount: Credits,
    /// The balance after the credit.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.50"))]
    #[serde(with = "crate::money::usd")]
    pub balance: Credits,
}

/// What a code is worth and whether it can be redeemed: the same answer for an unknown code
/// and a used one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemCheck {
    pub redeemable: bool,
    /// The value, when redeemable.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1.50"))]
    #[serde(with = "crate::money::usd::option")]
    pub value: Option<Credits>,
    /// Unix seconds, when redeemable and the code expires.
    pub expires_at: Option<i64>,
}
