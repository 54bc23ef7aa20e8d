pub mod api;
pub mod page;

pub use page::PricingPage;

crate::lazy_page!(PricingRoute, PricingPage);
