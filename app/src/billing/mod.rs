pub mod page;

pub use page::BillingPage;
