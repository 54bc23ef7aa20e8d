use crate::t;
use leptos::prelude::*;

/// Answers 404 when rendered on the server.
#[cfg(feature = "ssr")]
fn set_not_found_status() {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
}

#[cfg(not(feature = "ssr"))]
fn set_not_found_status() {}

#[component]
pub fn NotFound() -> impl IntoView {
    set_not_found_status();
    view! {
        <section class="panel centered">
            <h1>{t!("notfound.title")}</h1>
            <p>{t!("notfound.text")}</p>
            <a href="/">{t!("notfound.back")}</a>
        </section>
    }
}
