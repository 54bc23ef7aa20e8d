pub mod page;
pub use page::DashboardPage;
