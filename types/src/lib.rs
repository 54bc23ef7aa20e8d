//! Wasm-safe types shared by the console, the server functions and the REST API.
//! Only serde here: this crate compiles to WebAssembly.

mod catalog;
mod error;
mod money;
mod usage;
mod user;

pub use catalog::{ChannelView, CreatedKey, KeyView, Mapping, NewKey, PriceView};
pub use error::{ErrorInfo, ErrorKind};
pub use money::{Credits, MoneyParseError, UNITS_PER_USD, usd};
pub use usage::{ErrorClass, LedgerRow, UsageRow, UsageSource};
pub use user::{NewUser, Role, UserInfo, UserStatus};
