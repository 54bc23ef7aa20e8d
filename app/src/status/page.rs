use super::api::status_reading;
use crate::components::{ErrorView, when};
use crate::i18n::format::{millis, number, percent};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{HealthFigures, HourHealth, ModelState, ModelStatus, ProbeFigures, ServiceStatus};

/// Service health and per-model availability; open to visitors who are not signed in.
#[component]
pub fn StatusPage() -> impl IntoView {
    let status = wire::resource(|| (), |_| status_reading());
    view! {
        <header class="page-head">
            <h1>{t!("status.title")}</h1>
            <p class="muted">{t!("status.lead")}</p>
        </header>
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(s) => view! { <Status s/> }.into_any(),
                    Err(e) => view! { <ErrorView error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn state_text(state: ModelState) -> &'static str {
    match state {
        ModelState::Operational => t!("status.operational"),
        ModelState::Degraded => t!("status.degraded"),
        ModelState::Down => t!("status.down"),
        ModelState::Idle => t!("status.idle"),
    }
}

fn state_class(state: ModelState) -> &'static str {
    match state {
        ModelState::Operational => "badge ok",
        ModelState::Degraded => "badge warn",
        ModelState::Down => "badge bad",
        ModelState::Idle => "badge",
    }
}

#[component]
fn Status(s: ServiceStatus) -> impl IntoView {
    let (banner, class) = match (s.healthy, s.degraded.is_empty()) {
        (false, _) => (t!("status.service_down"), "banner bad"),
        (true, false) => (t!("status.service_degraded"), "banner warn"),
        (true, true) => (t!("status.service_ok"), "banner ok"),
    };
    let failing: Vec<_> = s.checks.into_iter().filter(|c| !c.ok).collect();
    view! {
        <section class=class data-testid="service-status" role="status">
            <strong>{banner}</strong>
            <span class="muted small-print">{t!("status.checked")} " " {when(s.checked_at)} " UTC"</span>
            {(!failing.is_empty()).then(|| view! {
                <ul class="checks" data-testid="failed-checks">
                    {failing.into_iter().map(|c| view! {
                        <li><code>{c.name}</code> " " <span class="muted">{c.detail}</span></li>
                    }).collect_view()}
                </ul>
            })}
        </section>
        <section class="panel">
            {if s.models.is_empty() {
                view! { <p class="muted">{t!("status.no_models")}</p> }.into_any()
            } else {
                view! {
                    <div class="scroll">
                        <table data-testid="model-status">
                            <thead>
                                <tr>
                                    <th>{t!("pricing.col_model")}</th>
                                    <th>{t!("status.col_state")}</th>
                                    <th class="num">{t!("status.col_hour")}</th>
                                    <th class="num">{t!("status.col_day")}</th>
                                    <th class="num">{t!("status.col_latency")}</th>
                                    <th class="num">{t!("status.col_ttft")}</th>
                                    <th>{t!("status.col_probes")}</th>
                                    <th>{t!("status.col_history")}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {s.models.into_iter().map(|m| view! { <ModelRow m/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <p class="muted small-print">{t!("status.explain")}</p>
                }.into_any()
            }}
        </section>
    }
}

/// A success rate with its count: `99.5% (1,204)`, or a dash without calls.
fn rate(f: &HealthFigures) -> String {
    f.success_bp().map_or_else(
        || "—".to_string(),
        |bp| format!("{} ({})", percent(bp), number(f.requests)),
    )
}

/// `2 / 2 answering`, `0 / 2 answering`, or a dash when no channel was probed in the hour.
fn probes_text(p: &ProbeFigures) -> String {
    let probed = p.ok + p.failing;
    if probed == 0 {
        return "—".to_string();
    }
    format!(
        "{} / {} {}",
        p.ok,
        p.channels,
        t!("status.probes_answering")
    )
}

#[component]
fn ModelRow(m: ModelStatus) -> impl IntoView {
    let dash = || "—".to_string();
    view! {
        <tr data-testid="model-row">
            <td><code>{m.model.clone()}</code></td>
            <td><span class=state_class(m.state) data-testid="model-state">{state_text(m.state)}</span></td>
            <td class="num" data-testid="hour-rate">{rate(&m.hour)}</td>
            <td class="num">{rate(&m.day)}</td>
            <td class="num">{m.hour.avg_latency_ms.map_or_else(dash, millis)}</td>
            <td class="num">{m.hour.avg_ttft_ms.map_or_else(dash, millis)}</td>
            <td data-testid="probes">{probes_text(&m.probes)}</td>
            <td><History hours=m.hours/></td>
        </tr>
    }
}

/// The last 24 hours as a strip of cells, coloured by success rate, each with its figures.
#[component]
fn History(hours: Vec<HourHealth>) -> impl IntoView {
    let cell = 6.0;
    let width = cell * hours.len() as f64;
    view! {
        <svg class="history" viewBox=format!("0 0 {width} 16") width=width height="16" role="img"
            aria-label=t!("status.col_history")>
            {hours.into_iter().enumerate().map(|(i, h)| {
                let figures = HealthFigures { requests: h.requests, failures: h.failures, ..HealthFigures::default() };
                let class = match ModelState::of(&figures) {
                    ModelState::Operational => "cell ok",
                    ModelState::Degraded => "cell warn",
                    ModelState::Down => "cell bad",
                    ModelState::Idle => "cell",
                };
                let tip = format!("{} UTC · {}", when(h.hour), rate(&figures));
                view! {
                    <rect class=class x=format!("{:.0}", cell * i as f64) y="0" width="5" height="16" rx="1">
                        <title>{tip}</title>
                    </rect>
                }
            }).collect_view()}
        </svg>
    }
}
