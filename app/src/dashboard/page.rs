use crate::components::Guard;
use crate::i18n::{role_text, status_text};
use crate::t;
use leptos::prelude::*;
use types::UserInfo;

#[component]
pub fn DashboardPage() -> impl IntoView {
    view! { <Guard page=|user| view! { <Fresh user/> }/> }
}

/// The dashboard reads the account again on every visit: the session's copy was read at sign-in
/// and a redeem or a call since has changed the balance.
#[component]
fn Fresh(user: UserInfo) -> impl IntoView {
    let fresh = Resource::new(|| (), |_| crate::auth::api::current_user());
    view! {
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || {
                let user = user.clone();
                Suspend::new(async move {
                    let user = fresh.await.ok().flatten().unwrap_or(user);
                    view! { <Overview user/> }
                })
            }}
        </Transition>
    }
}

#[component]
fn Overview(user: UserInfo) -> impl IntoView {
    // Shown in dollars, or in the integer units the ledger keeps; switching is client-side.
    let in_units = RwSignal::new(false);
    let usd = user.balance.to_string();
    let units = format!("{}{}", user.balance.units(), t!("dash.units"));
    let balance = move || {
        if in_units.get() {
            units.clone()
        } else {
            usd.clone()
        }
    };
    view! {
        <header class="page-head">
            <h1>{t!("dash.title")}</h1>
            <p class="muted">{t!("dash.signed_in_as")} <strong data-testid="username">{user.username.clone()}</strong></p>
        </header>
        <div class="cards">
            <article class="card">
                <h2>{t!("dash.balance")}</h2>
                <p class="figure" data-testid="balance">{balance}</p>
                <button class="link" data-testid="balance-toggle" on:click=move |_| in_units.update(|u| *u = !*u)>
                    {move || if in_units.get() { t!("dash.show_usd") } else { t!("dash.show_units") }}
                </button>
            </article>
            <article class="card">
                <h2>{t!("dash.role")}</h2>
                <p class="figure" data-testid="role">{role_text(user.role)}</p>
                <p class="muted">{t!("dash.group")} {user.group.clone()}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.status")}</h2>
                <p class="figure">{status_text(user.status)}</p>
            </article>
        </div>
    }
}
