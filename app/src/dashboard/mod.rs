pub mod api;
pub mod chart;
#[cfg(feature = "ssr")]
mod draw;
pub mod page;
pub use page::DashboardPage;

crate::lazy_page!(DashboardRoute, DashboardPage);
