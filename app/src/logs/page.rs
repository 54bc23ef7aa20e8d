//! The call-log pages in the browser: the URL's query goes to the server, which draws the
//! filters, the calls and the pager; the page opens a call's details and submits the filters
//! through the router (shareable URLs, the back button works).

use super::Scope;
use super::api::{all_logs, my_logs};
use crate::components::{DrawnPart, Guard};
use crate::t;
use crate::wire;
use leptos::ev::{KeyboardEvent, MouseEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn LogsPage() -> impl IntoView {
    view! { <Logs scope=Scope::Mine/> }
}

#[component]
pub fn Logs(scope: Scope) -> impl IntoView {
    let query = use_query_map();
    let drawn = wire::resource(
        move || query.with(|q| q.to_query_string()),
        move |q| async move {
            match scope {
                Scope::Mine => my_logs(q).await,
                Scope::All => all_logs(q).await,
            }
        },
    );
    let navigate = use_navigate();
    // The filters go into the URL (the page then reads it again).
    let submit = move |ev: SubmitEvent| {
        if let Ok(fields) = crate::components::fields(&ev) {
            ev.prevent_default();
            navigate(&format!("{}?{fields}", scope.path()), Default::default());
        }
    };
    view! {
        <Guard admin={scope == Scope::All} page=move |_| view! {
            <header class="page-head">
                <h1>{match scope { Scope::Mine => t!("logs.title"), Scope::All => t!("admin.calls_title") }}</h1>
                <p class="muted">{match scope { Scope::Mine => t!("logs.lead"), Scope::All => t!("admin.calls_lead") }}</p>
                {(scope == Scope::All).then(|| view! { <crate::admin::nav::AdminNav/> })}
            </header>
            <div on:submit=submit.clone()
                on:click=|ev: MouseEvent| { open_details(ev.target()); }
                on:keydown=|ev: KeyboardEvent| {
                    if (ev.key() == "Enter" || ev.key() == " ") && open_details(ev.target()) {
                        ev.prevent_default()
                    }
                }>
                <DrawnPart part=drawn/>
            </div>
        }/>
    }
}

/// Shows or hides the details under the call `target` is in; whether it was in one.
fn open_details(target: Option<web_sys::EventTarget>) -> bool {
    let row = target
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|e| e.closest("tr[data-testid=call-row]").ok().flatten());
    let Some(row) = row else {
        return false;
    };
    if let Some(details) = row.next_element_sibling()
        && let Ok(hidden) = details.toggle_attribute("hidden")
    {
        let _ = row.set_attribute("aria-expanded", if hidden { "false" } else { "true" });
    }
    true
}
