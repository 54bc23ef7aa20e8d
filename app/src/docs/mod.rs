pub mod api;
pub mod page;

pub use api::*;
pub use page::DocsPage;

crate::lazy_page!(DocsRoute, DocsPage);
