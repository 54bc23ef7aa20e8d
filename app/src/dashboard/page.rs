use super::api::my_dashboard;
use super::chart::DrawnChart;
use crate::components::{Drawn, ErrorView, Guard};
use crate::i18n::format::{money, number};
use crate::i18n::{role_text, status_text};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::Dashboard;

/// The dashboard reads the account again on every visit (the session's copy was read at
/// sign-in, and a redeem or a call since has changed the balance), with its usage; the chart
/// and the tables come drawn by the server.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let usage = wire::resource(|| (), |_| my_dashboard());
    view! {
        <Guard page=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match usage.await {
                        Ok(data) => view! { <Overview data/> }.into_any(),
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Overview(data: Dashboard) -> impl IntoView {
    let user = data.user;
    // Shown in dollars, or in the integer units the ledger keeps; switching is client-side.
    let in_units = RwSignal::new(false);
    let usd = money(user.balance);
    let units = t!("dash.units", units = user.balance.units());
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
            <p class="muted">
                {t!("dash.signed_in_as")} <strong data-testid="username">{user.username.clone()}</strong>
                " · " <span data-testid="role">{role_text(user.role)}</span>
                " · " {t!("dash.group")} {user.group.clone()}
                " · " {status_text(&user)}
            </p>
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
                <h2>{t!("dash.today")}</h2>
                <p class="figure" data-testid="spent-today">{money(data.spent_today)}</p>
                <p class="muted">{number(data.calls_today)} " " {t!("dash.requests")}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.week")}</h2>
                <p class="figure" data-testid="spent-7">{money(data.spent_7)}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.month")}</h2>
                <p class="figure" data-testid="spent-30">{money(data.spent_30)}</p>
                <p class="muted">{number(data.calls_30)} " " {t!("dash.requests")}</p>
            </article>
        </div>
        {data.chart.map(|html| view! { <DrawnChart html/> })}
        <Drawn html=data.details/>
    }
}
