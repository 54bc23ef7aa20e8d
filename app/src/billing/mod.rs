pub mod page;

pub use page::BillingPage;

crate::lazy_page!(BillingRoute, BillingPage);
