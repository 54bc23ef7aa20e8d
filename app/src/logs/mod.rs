pub mod page;

pub use page::LogsPage;

crate::lazy_page!(LogsRoute, LogsPage);
