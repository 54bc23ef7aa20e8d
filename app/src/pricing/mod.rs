pub mod api;
pub mod page;
pub mod rates;

pub use page::PricingPage;

crate::lazy_page!(PricingRoute, PricingPage);
