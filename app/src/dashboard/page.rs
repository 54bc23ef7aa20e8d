use crate::auth::Session;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use types::UserInfo;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let session = expect_context::<Session>();
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match session.user.await {
                    Ok(Some(user)) => view! { <Overview user/> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.0.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Overview(user: UserInfo) -> impl IntoView {
    // Shown in dollars, or in the integer units the ledger keeps; switching is client-side.
    let in_units = RwSignal::new(false);
    let usd = format!("${}", user.balance);
    let units = format!("{} units", user.balance_units);
    let balance = move || {
        if in_units.get() {
            units.clone()
        } else {
            usd.clone()
        }
    };
    view! {
        <header class="page-head">
            <h1>"Dashboard"</h1>
            <p class="muted">"Signed in as " <strong data-testid="username">{user.username.clone()}</strong></p>
        </header>
        <div class="cards">
            <article class="card">
                <h2>"Balance"</h2>
                <p class="figure" data-testid="balance">{balance}</p>
                <button class="link" data-testid="balance-toggle" on:click=move |_| in_units.update(|u| *u = !*u)>
                    {move || if in_units.get() { "Show in USD" } else { "Show in units" }}
                </button>
            </article>
            <article class="card">
                <h2>"Role"</h2>
                <p class="figure" data-testid="role">{user.role.as_str()}</p>
                <p class="muted">"Group " {user.group.clone()}</p>
            </article>
            <article class="card">
                <h2>"Status"</h2>
                <p class="figure">{user.status.as_str()}</p>
            </article>
        </div>
    }
}
