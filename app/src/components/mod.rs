mod layout;
mod not_found;

pub use layout::Layout;
pub use not_found::NotFound;
