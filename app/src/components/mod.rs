mod guard;
mod layout;
mod not_found;

pub use guard::{ErrorView, Forbidden, Guard, after_sign_in};
pub use layout::Layout;
pub use not_found::NotFound;

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
pub fn when(ms: i64) -> String {
    let day = types::date::format_day(ms.div_euclid(86_400_000));
    let minute = ms.rem_euclid(86_400_000) / 60_000;
    format!("{day} {:02}:{:02}", minute / 60, minute % 60)
}
