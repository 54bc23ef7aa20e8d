pub mod api;
pub mod page;

pub use page::AccountPage;
