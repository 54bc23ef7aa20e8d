//! Read models: what a page shows when it gathers several domains. The top floor of the
//! service crate: it reads the domains, and nothing below imports it.

pub mod admin;
pub mod pages;
mod repo;
