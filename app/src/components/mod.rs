pub mod alerts;
mod drawn;
mod form;
mod guard;
mod layout;
mod not_found;

pub use drawn::{Drawn, DrawnPart, elements};
pub use form::{ConfirmPost, Post, PostForm, Target, fields, post_drawn};
pub use guard::{ErrorView, Forbidden, Guard, after_sign_in};
pub use layout::Layout;
pub use not_found::NotFound;

/// A route whose page is loaded on demand: `lazy_page!(KeysRoute, KeysPage)` makes
/// `KeysRoute`, for `<Route view=Lazy::<KeysRoute>::new()/>`. With `cargo leptos build --split`
/// the page's code is a wasm chunk of its own, fetched when the page is first shown (or
/// hydrated), so the first load carries only the shell and the pages most visits need.
#[macro_export]
macro_rules! lazy_page {
    ($route:ident, $page:ident) => {
        #[derive(Debug)]
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> leptos::prelude::AnyView {
                use leptos::prelude::IntoAny as _;
                $page().into_any()
            }
        }
    };
}

pub use crate::i18n::format::when;

/// A key's request, token and in-flight limits as the key pages show them ("60 RPM · 10000 TPM
/// · 4 at once"), or the account's default when it sets none.
pub fn limits_text(k: &types::KeyView) -> String {
    match (k.rpm, k.tpm, k.max_concurrent) {
        (None, None, None) => crate::t!("keys.default_limits").to_string(),
        (rpm, tpm, concurrent) => [
            rpm.map(|r| format!("{r} RPM")),
            tpm.map(|t| format!("{t} TPM")),
            concurrent.map(|c| crate::t!("keys.concurrent_short", n = c)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · "),
    }
}

/// A query value, percent-encoded: only unreserved characters and `/` (allowed in a query, and
/// kept so a `next` path stays readable) pass as they are.
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
