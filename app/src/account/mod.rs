pub mod api;
pub mod page;

pub use page::AccountPage;

crate::lazy_page!(AccountRoute, AccountPage);
