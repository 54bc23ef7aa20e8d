pub mod page;

pub use page::LogsPage;
