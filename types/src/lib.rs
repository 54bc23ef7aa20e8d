//! Wasm-safe types shared by the console, the server functions and the REST API.
//! Only serde here: this crate compiles to WebAssembly.

mod alerts;
mod audit;
mod billing;
mod catalog;
pub mod date;
pub mod docs;
mod error;
mod jobs;
mod money;
mod overview;
mod redeem;
mod status;
mod usage;
mod user;

pub use alerts::{
    AlertDelivery, AlertKind, AlertSettings, AlertTarget, AlertView, Alerts, DeliveryStatus,
};
pub use audit::{AuditEntry, AuditQuery};
pub use billing::{
    About, BillingSubscription, BillingUsage, CreditSummary, DailyCost, DocsLinks, GroupView,
    LineItem, ModelPrice, Pricing,
};
pub use catalog::{
    BoundField, ChannelHealth, ChannelKind, ChannelProbe, ChannelTest, ChannelView, CreatedKey,
    KeyPatch, KeySecret, KeyView, KeysQuery, Mapping, NewKey, PriceRates, PriceTier, PriceVersion,
    PriceView,
};
pub use error::{ErrorInfo, ErrorKind};
pub use jobs::{ArchiveDay, JobOutcome, JobRun, JobView};
pub use money::{Credits, MoneyParseError, UNITS_PER_USD, usd};
pub use overview::{AdminOverview, ChannelGlance, MinutePoint, TopItem};
pub use redeem::{
    CreatedRedeemBatch, NewRedeemBatch, RedeemBatch, RedeemCheck, RedeemCodeView, RedeemStatus,
    Redeemed,
};
pub use status::{
    HealthFigures, HourHealth, ModelState, ModelStatus, ProbeFigures, ServiceStatus, StatusCheck,
};
pub use usage::{
    CallsQuery, Dashboard, ErrorClass, LedgerQuery, LedgerRow, LogsQuery, Page, PageMeta, Slice,
    TokenDetail, UsagePoint, UsageQuery, UsageRow, UsageSource, UserDetail,
};
pub use user::{NewUser, PasswordReset, PasswordWasReset, Role, UserInfo, UserPatch, UserStatus};
