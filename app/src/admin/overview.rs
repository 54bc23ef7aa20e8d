//! The overview: calls per minute over the last hour with their failures (an SVG chart, exact
//! figures on hover and in the summary), today's spend with its top models and users, the
//! channels' health, the latest admin actions, and the system's alerts (channels down and up,
//! ledger drift: where they go, and the latest ones).

use super::api::{SetSystemAlerts, admin_overview, system_alerts};
use super::nav::AdminNav;
use crate::components::alerts::{AlertList, AlertTargets, SaveAlerts, successes};
use crate::components::{ErrorView, Guard, Post, PostForm, when};
use crate::i18n::format::{money, number, percent};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{AdminOverview, MinutePoint, TopItem};

#[component]
pub fn AdminOverviewPage() -> impl IntoView {
    view! { <Overview/> }
}

#[component]
fn Overview() -> impl IntoView {
    let data = wire::resource(|| (), |_| admin_overview());
    let save = Post::<SetSystemAlerts>::new();
    let saves = successes(save);
    let alerts = wire::resource(move || saves.get(), |_| system_alerts());
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("overview.title")}</h1>
                <p class="muted">{t!("overview.lead")}</p>
                <AdminNav/>
            </header>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(o) => view! { <Figures o/> }.into_any(),
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <SystemAlerts save data=alerts/>
        }/>
    }
}

/// Which of the system's alerts are sent, where, and the latest ones.
#[component]
fn SystemAlerts(save: Post<SetSystemAlerts>, data: wire::Data<types::Alerts>) -> impl IntoView {
    view! {
        <section class="panel" data-testid="system-alerts">
            <h2>{t!("alerts.system_title")}</h2>
            <p class="muted">{t!("alerts.system_lead")}</p>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(a) => {
                            let s = a.settings;
                            view! {
                                <PostForm action=save>
                                    <div class="form-grid">
                                        <label class="check">
                                            <input type="checkbox" name="channels" value="on" prop:checked=s.channels data-testid="alerts-channels"/>
                                            {t!("alerts.channels")}
                                        </label>
                                        <label class="check">
                                            <input type="checkbox" name="ledger_drift" value="on" prop:checked=s.ledger_drift data-testid="alerts-drift"/>
                                            {t!("alerts.drift")}
                                        </label>
                                        <AlertTargets s=s.clone()/>
                                    </div>
                                    <SaveAlerts answer=Signal::derive(move || save.value().get().map(|r| r.map(|_| ())))/>
                                </PostForm>
                                <AlertList recent=a.recent/>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Figures(o: AdminOverview) -> impl IntoView {
    let requests: u64 = o.minutes.iter().map(|m| m.requests).sum();
    let failures: u64 = o.minutes.iter().map(|m| m.failures).sum();
    let error_rate = (failures * 10_000)
        .checked_div(requests)
        .map_or_else(|| "–".to_string(), percent);
    view! {
        <section class="cards">
            <article class="card"><h2>{t!("overview.spend_today")}</h2><p class="figure" data-testid="spend-today">{money(o.spend_today)}</p></article>
            <article class="card"><h2>{t!("overview.requests_today")}</h2><p class="figure" data-testid="requests-today">{number(o.requests_today)}</p></article>
            <article class="card"><h2>{t!("overview.requests_hour")}</h2><p class="figure" data-testid="requests-hour">{number(requests)}</p></article>
            <article class="card"><h2>{t!("overview.error_rate")}</h2><p class="figure" data-testid="error-rate">{error_rate}</p></article>
        </section>
        <section class="panel">
            <h2>{t!("overview.per_minute")}</h2>
            <MinuteChart minutes=o.minutes/>
        </section>
        <div class="two-col">
            <section class="panel">
                <h2>{t!("overview.top_models")}</h2>
                <TopTable items=o.top_models testid="top-models"/>
            </section>
            <section class="panel">
                <h2>{t!("overview.top_users")}</h2>
                <TopTable items=o.top_users testid="top-users"/>
            </section>
        </div>
        <section class="panel">
            <h2>{t!("overview.channels")}</h2>
            {if o.channels.is_empty() {
                view! { <p class="muted">{t!("channels.none")}</p> }.into_any()
            } else {
                view! {
                    <ul class="glance" data-testid="channel-glance">
                        {o.channels.into_iter().map(|c| {
                            let h = &c.health;
                            let state = if !c.enabled {
                                ("off", t!("status.disabled").to_string())
                            } else if h.cooldown_ms > 0 {
                                ("down", t!("channels.circuit_open_for", seconds = h.cooldown_ms.div_ceil(1000)))
                            } else {
                                match ((h.requests - h.failures) * 10_000).checked_div(h.requests) {
                                    None => ("idle", t!("channels.no_traffic").to_string()),
                                    Some(ok) => (
                                        if ok >= 9_900 { "up" } else { "degraded" },
                                        format!("{} ({})", percent(ok), number(h.requests)),
                                    ),
                                }
                            };
                            view! {
                                <li class=format!("glance-item {}", state.0)>
                                    <span class="dot" aria-hidden="true"></span>
                                    <strong>{c.name}</strong>
                                    <span class="muted">{state.1}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="panel">
            <div class="table-head">
                <h2>{t!("overview.recent")}</h2>
                <a href="/admin/audit">{t!("admin.nav_audit")}</a>
            </div>
            {if o.recent.is_empty() {
                view! { <p class="muted">{t!("audit.none")}</p> }.into_any()
            } else {
                view! {
                    <table data-testid="recent-actions">
                        <tbody>
                            {o.recent.into_iter().map(|e| view! {
                                <tr><td>{when(e.at)}</td><td>{e.actor}</td><td><code>{e.action}</code></td><td><code>{e.target}</code></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn TopTable(items: Vec<TopItem>, testid: &'static str) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="muted">{t!("overview.nothing_today")}</p> }.into_any();
    }
    view! {
        <table data-testid=testid>
            <tbody>
                {items.into_iter().map(|i| view! {
                    <tr><td>{i.name}</td><td class="num">{money(i.cost)}</td><td class="num muted">{number(i.requests)}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Calls per minute, the failed part in red, drawn in SVG; each bar's exact figures on hover.
#[component]
fn MinuteChart(minutes: Vec<MinutePoint>) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let max = minutes.iter().map(|m| m.requests).max().unwrap_or(0).max(1) as f64;
    let step = W / minutes.len().max(1) as f64;
    let bars = minutes
        .into_iter()
        .enumerate()
        .filter(|(_, m)| m.requests > 0)
        .map(|(i, m)| {
            let x = i as f64 * step + 1.0;
            let h = m.requests as f64 / max * (H - 4.0);
            let fh = m.failures as f64 / max * (H - 4.0);
            let title = format!(
                "{}: {} {}, {} {}",
                when(m.minute),
                number(m.requests),
                t!("overview.calls"),
                number(m.failures),
                t!("overview.failed")
            );
            view! {
                <g data-testid="minute-bar">
                    <title>{title}</title>
                    <rect x=format!("{x:.1}") y=format!("{:.1}", H - h) width=format!("{:.1}", (step - 2.0).max(1.0)) height=format!("{h:.1}") class="bar ok"/>
                    {(m.failures > 0).then(|| view! {
                        <rect x=format!("{x:.1}") y=format!("{:.1}", H - fh) width=format!("{:.1}", (step - 2.0).max(1.0)) height=format!("{fh:.1}") class="bar failed"/>
                    })}
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="minute-chart" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img"
            aria-label=t!("overview.per_minute") data-testid="minute-chart">
            <line x1="0" y1=format!("{H}") x2=format!("{W}") y2=format!("{H}") class="axis"/>
            {bars}
        </svg>
        <p class="muted small-print">{t!("overview.chart_hint")}</p>
    }
}
