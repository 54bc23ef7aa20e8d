pub mod api;
pub mod page;

pub use page::StatusPage;

crate::lazy_page!(StatusRoute, StatusPage);
