pub mod api;
pub mod page;

pub use page::KeysPage;

crate::lazy_page!(KeysRoute, KeysPage);
