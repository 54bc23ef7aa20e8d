pub mod api;
pub mod page;
pub use page::DashboardPage;

crate::lazy_page!(DashboardRoute, DashboardPage);
