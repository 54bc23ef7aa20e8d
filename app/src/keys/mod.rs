pub mod api;
#[cfg(feature = "ssr")]
mod draw;
pub mod page;
pub mod read;

pub use page::KeysPage;

crate::lazy_page!(KeysRoute, KeysPage);
