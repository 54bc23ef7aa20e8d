mod guard;
mod layout;
mod not_found;

pub use guard::{ErrorView, Forbidden, Guard, after_sign_in};
pub use layout::Layout;
pub use not_found::NotFound;
