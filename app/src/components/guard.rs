//! One guard for every page: a signed-out visitor is sent to the sign-in page (which brings
//! them back), a user without the role gets the one 403 view, and any error the one error
//! view. A page inside it is only its data and its layout.
//!
//! The page's data (its resources) is created by the page component *before* the guard, never
//! inside `page`: the server runs a view closure more than once (a dry run that starts the
//! data, the render, a re-run when the session resolves), and a resource created in it would
//! be created again each time, under new ids. The browser hydrates each resource from the
//! value serialized under its id, so it would read a discarded copy (an `internal` error once
//! that copy's request context is gone) beside the markup of the kept one, and the page would
//! fail to hydrate. `page` only lays out what the page already holds; the test
//! `pages_serialize_the_data_they_show_once` renders every page over and over to hold this.

use crate::auth::Session;
use crate::error::AppError;
use crate::i18n::error_text;
use crate::t;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;
use types::{Role, UserInfo};

/// Renders `page` with the signed-in user once the session is known.
#[component]
pub fn Guard<F, V>(
    /// Only administrators may see the page.
    #[prop(optional)]
    admin: bool,
    /// The page, given the signed-in user.
    page: F,
) -> impl IntoView
where
    F: Fn(UserInfo) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    let session = expect_context::<Session>();
    let path = use_location().pathname;
    view! {
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || {
                let page = page.clone();
                Suspend::new(async move {
                    match session.user.await {
                        Ok(Some(user)) if admin && user.role != Role::Admin => {
                            view! { <Forbidden/> }.into_any()
                        }
                        Ok(Some(user)) => page(user).into_view().into_any(),
                        Ok(None) => {
                            let here = path.get_untracked();
                            let to = if here == "/" {
                                "/login".to_string()
                            } else {
                                format!("/login?next={}", super::encode_query(&here))
                            };
                            view! { <Redirect path=to/> }.into_any()
                        }
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// The one 403 view (and status, when rendered on the server).
#[component]
pub fn Forbidden() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::FORBIDDEN);
    }
    view! {
        <div class="panel denied" data-testid="forbidden">
            <h2>{t!("guard.forbidden_title")}</h2>
            <p>{t!("guard.forbidden_text")}</p>
        </div>
    }
}

/// The one error view: what went wrong, by its code, and the request id to quote.
#[component]
pub fn ErrorView(error: AppError) -> impl IntoView {
    let text = error_text(&error);
    let id = error.0.request_id.clone();
    view! {
        <div class="panel" role="alert" data-testid="error">
            <h2>{t!("guard.error_title")}</h2>
            <p class="error">{text}</p>
            {id.map(|id| view! { <p class="muted"><code>{id}</code></p> })}
        </div>
    }
}

/// Where to go after signing in: `next` when it is a path on this site, else the dashboard.
pub fn after_sign_in(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(after_sign_in(Some("/admin".into())), "/admin");
        assert_eq!(after_sign_in(None), "/");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "admin"] {
            assert_eq!(after_sign_in(Some(bad.into())), "/", "{bad}");
        }
        assert_eq!(
            super::super::encode_query("/admin?x=1 2"),
            "/admin%3Fx%3D1%202"
        );
    }
}
