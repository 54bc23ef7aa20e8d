//! Calls: the signed-in user's (`/logs`), or every user's for an administrator
//! (`/admin/calls`, with a user filter). The server draws the filters, the table and the pager
//! from the page's query string (`draw`); the browser keeps the URL, the row details and the
//! form's submission in step with it (`page`).

pub mod api;
#[cfg(feature = "ssr")]
mod draw;
pub mod page;

pub use page::LogsPage;

crate::lazy_page!(LogsRoute, LogsPage);

/// Whose calls a page shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// The signed-in user's.
    Mine,
    /// Every user's (administrators).
    All,
}

impl Scope {
    /// The page's path.
    pub fn path(self) -> &'static str {
        match self {
            Scope::Mine => "/logs",
            Scope::All => "/admin/calls",
        }
    }
}
