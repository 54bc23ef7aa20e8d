pub mod api;
pub mod page;

pub use api::*;
pub use page::{LoginPage, Session};

crate::lazy_page!(LoginRoute, LoginPage);
