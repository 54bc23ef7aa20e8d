pub mod api;
pub mod page;

pub use api::*;
pub use page::AdminPage;

crate::lazy_page!(AdminRoute, AdminPage);
