use super::api::my_dashboard;
use crate::components::{ErrorView, Guard, when};
use crate::i18n::format::{day, money, number};
use crate::i18n::{role_text, status_text};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use std::collections::BTreeMap;
use types::{Credits, Dashboard, UsagePoint, UserInfo};

/// The dashboard reads the account again on every visit (the session's copy was read at
/// sign-in, and a redeem or a call since has changed the balance), and its usage.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let fresh = wire::resource(|| (), |_| crate::auth::api::current_user());
    let usage = wire::resource(|| (), |_| my_dashboard());
    view! { <Guard page=move |user| view! { <Fresh user fresh usage/> }/> }
}

#[component]
fn Fresh(
    user: UserInfo,
    fresh: wire::Data<Option<UserInfo>>,
    usage: wire::Data<Dashboard>,
) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || {
                let user = user.clone();
                Suspend::new(async move {
                    let user = fresh.await.ok().flatten().unwrap_or(user);
                    match usage.await {
                        Ok(data) => view! { <Overview user data/> }.into_any(),
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// The sum of the points' cost and requests on the days `from..=to` (`YYYY-MM-DD` order is
/// day order).
fn totals(points: &[UsagePoint], from: &str, to: &str) -> (Credits, u64) {
    points
        .iter()
        .filter(|p| p.day.as_str() >= from && p.day.as_str() <= to)
        .fold((Credits::from_units(0), 0), |(c, r), p| {
            (
                Credits::from_units(c.units() + p.cost.units()),
                r + p.requests,
            )
        })
}

/// The day `n` days before `day`.
fn days_before(day: &str, n: i64) -> String {
    types::date::parse_day(day).map_or_else(|| day.to_string(), |d| types::date::format_day(d - n))
}

#[component]
fn Overview(user: UserInfo, data: Dashboard) -> impl IntoView {
    // Shown in dollars, or in the integer units the ledger keeps; switching is client-side.
    let in_units = RwSignal::new(false);
    let usd = money(user.balance);
    let units = format!("{}{}", user.balance.units(), t!("dash.units"));
    let balance = move || {
        if in_units.get() {
            units.clone()
        } else {
            usd.clone()
        }
    };
    let today = data.today.clone();
    let (spent_today, calls_today) = totals(&data.by_model, &today, &today);
    let (spent_7, _) = totals(&data.by_model, &days_before(&today, 6), &today);
    let (spent_30, calls_30) = totals(&data.by_model, &days_before(&today, 29), &today);
    let first_call = data.by_model.is_empty();
    view! {
        <header class="page-head">
            <h1>{t!("dash.title")}</h1>
            <p class="muted">
                {t!("dash.signed_in_as")} <strong data-testid="username">{user.username.clone()}</strong>
                " · " <span data-testid="role">{role_text(user.role)}</span>
                " · " {t!("dash.group")} {user.group.clone()}
                " · " {status_text(user.status)}
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
                <p class="figure" data-testid="spent-today">{money(spent_today)}</p>
                <p class="muted">{number(calls_today)} " " {t!("dash.requests")}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.week")}</h2>
                <p class="figure" data-testid="spent-7">{money(spent_7)}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.month")}</h2>
                <p class="figure" data-testid="spent-30">{money(spent_30)}</p>
                <p class="muted">{number(calls_30)} " " {t!("dash.requests")}</p>
            </article>
        </div>
        {if first_call {
            view! { <FirstCall data=data.clone()/> }.into_any()
        } else {
            view! {
                <UsageChart points=data.by_model.clone() today=today.clone()/>
                <Breakdown data=data.clone()/>
            }
            .into_any()
        }}
        <RecentErrors data/>
    }
}

/// How to make the first call: the base URL, and curl and Python with the user's key.
#[component]
fn FirstCall(data: Dashboard) -> impl IntoView {
    let key = data
        .keys
        .first()
        .map_or_else(|| "sk-…".to_string(), |(_, _, prefix)| prefix.clone());
    let model = data.example_model.unwrap_or_else(|| "gpt-4o-mini".into());
    let curl = format!(
        "curl {base}/chat/completions \\\n  -H \"Authorization: Bearer {key}\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
        base = data.base_url
    );
    let python = format!(
        "from openai import OpenAI\n\nclient = OpenAI(base_url=\"{base}\", api_key=\"{key}\")\nreply = client.chat.completions.create(\n    model=\"{model}\",\n    messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}],\n)\nprint(reply.choices[0].message.content)",
        base = data.base_url
    );
    let has_key = !data.keys.is_empty();
    view! {
        <section class="panel first-call" data-testid="first-call">
            <h2>{t!("dash.first_title")}</h2>
            <p class="muted">
                {if has_key { t!("dash.first_with_key") } else { t!("dash.first_no_key") }}
                " " <a href="/keys">{t!("nav.keys")}</a>
            </p>
            <p>{t!("dash.base_url")} " " <code data-testid="base-url">{data.base_url.clone()}</code></p>
            <h3>"curl"</h3>
            <pre><code>{curl}</code></pre>
            <h3>"Python (openai)"</h3>
            <pre><code>{python}</code></pre>
        </section>
    }
}

/// Colors of the chart's series, by rank of spend; the rest is "other".
const COLORS: [&str; 6] = [
    "#3b5bdb", "#12b886", "#f59f00", "#e64980", "#7950f2", "#15aabf",
];
const OTHER: &str = "#adb5bd";

/// Spend per day stacked by model, over the last 7 or 30 days, drawn as SVG; every segment
/// tells its exact figures on hover, and the table below has them all.
#[component]
pub fn UsageChart(points: Vec<UsagePoint>, today: String) -> impl IntoView {
    let range = RwSignal::new(30i64);
    let points = StoredValue::new(points);
    let today = StoredValue::new(today);
    let chart = move || {
        let n = range.get();
        let today = today.get_value();
        let days: Vec<String> = (0..n).rev().map(|i| days_before(&today, i)).collect();
        let from = days.first().cloned().unwrap_or_default();
        let points: Vec<UsagePoint> = points
            .get_value()
            .into_iter()
            .filter(|p| p.day >= from)
            .collect();
        // Series: the models by spend, the top ones in color, the rest as "other".
        let mut spend: BTreeMap<String, i64> = BTreeMap::new();
        for p in &points {
            *spend
                .entry(p.model.clone().unwrap_or_default())
                .or_default() += p.cost.units();
        }
        let mut models: Vec<(String, i64)> = spend.into_iter().collect();
        models.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let color_of = |model: &str| {
            models
                .iter()
                .position(|(m, _)| m == model)
                .and_then(|i| COLORS.get(i).copied())
                .unwrap_or(OTHER)
        };
        // Per day: its segments (model, cost, requests), largest series first.
        let per_day: Vec<Vec<(String, i64, u64)>> = days
            .iter()
            .map(|d| {
                let mut segs: Vec<(String, i64, u64)> = points
                    .iter()
                    .filter(|p| &p.day == d && p.cost.units() > 0)
                    .map(|p| {
                        (
                            p.model.clone().unwrap_or_default(),
                            p.cost.units(),
                            p.requests,
                        )
                    })
                    .collect();
                segs.sort_by_key(|(m, _, _)| models.iter().position(|(x, _)| x == m));
                segs
            })
            .collect();
        let max = per_day
            .iter()
            .map(|s| s.iter().map(|x| x.1).sum::<i64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let (w, h, left, bottom) = (720.0_f64, 220.0_f64, 64.0_f64, 22.0_f64);
        let plot_h = h - bottom - 8.0;
        let slot = (w - left) / n as f64;
        let bar = slot * 0.7;
        let y = |units: i64| 8.0 + plot_h - plot_h * units as f64 / max as f64;
        let mut shapes = Vec::new();
        for (i, segs) in per_day.iter().enumerate() {
            let x = left + slot * i as f64 + (slot - bar) / 2.0;
            let mut below = 0i64;
            for (model, cost, requests) in segs {
                let top = y(below + cost);
                let height = (y(below) - top).max(1.0);
                let tip = format!(
                    "{} · {model}: {} · {} {}",
                    days[i],
                    money(Credits::from_units(*cost)),
                    number(*requests),
                    t!("dash.requests")
                );
                shapes.push(view! {
                    <rect x=format!("{x:.1}") y=format!("{top:.1}") width=format!("{bar:.1}")
                        height=format!("{height:.1}") fill=color_of(model) data-testid="bar">
                        <title>{tip}</title>
                    </rect>
                });
                below += cost;
            }
        }
        let labels = days
            .iter()
            .enumerate()
            .filter(|(i, _)| n <= 7 || i % 5 == 4)
            .map(|(i, d)| {
                let x = left + slot * i as f64 + slot / 2.0;
                view! { <text x=format!("{x:.1}") y=format!("{:.1}", h - 6.0) text-anchor="middle" class="axis">{d[5..].to_string()}</text> }
            })
            .collect_view();
        let grid = [0, max / 2, max]
            .into_iter()
            .map(|u| {
                let gy = y(u);
                view! {
                    <line x1=format!("{left:.1}") x2=format!("{w:.1}") y1=format!("{gy:.1}") y2=format!("{gy:.1}") class="grid"/>
                    <text x=format!("{:.1}", left - 6.0) y=format!("{:.1}", gy + 4.0) text-anchor="end" class="axis">
                        {money(Credits::from_units(u))}
                    </text>
                }
            })
            .collect_view();
        let legend = models
            .iter()
            .enumerate()
            .map(|(i, (m, units))| {
                let color = COLORS.get(i).copied().unwrap_or(OTHER);
                view! {
                    <li><span class="swatch" style=format!("background:{color}")></span>
                        {m.clone()} " " <span class="muted">{money(Credits::from_units(*units))}</span></li>
                }
            })
            .collect_view();
        let rows = days
            .iter()
            .zip(&per_day)
            .rev()
            .filter(|(_, segs)| !segs.is_empty())
            .map(|(d, segs)| {
                let cost: i64 = segs.iter().map(|s| s.1).sum();
                let requests: u64 = segs.iter().map(|s| s.2).sum();
                view! { <tr><td>{types::date::parse_day(d).map_or_else(|| d.clone(), day)}</td><td class="num">{number(requests)}</td><td class="num">{money(Credits::from_units(cost))}</td></tr> }
            })
            .collect_view();
        view! {
            <svg viewBox=format!("0 0 {w} {h}") class="chart" role="img"
                aria-label=t!("dash.chart_label") data-testid="usage-chart">
                {grid}
                {shapes}
                {labels}
            </svg>
            <ul class="legend">{legend}</ul>
            <details>
                <summary>{t!("dash.exact")}</summary>
                <table class="compact">
                    <thead><tr><th>{t!("dash.day")}</th><th class="num">{t!("dash.requests")}</th><th class="num">{t!("dash.spend")}</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        }
    };
    view! {
        <section class="panel">
            <div class="table-head">
                <h2>{t!("dash.chart_title")}</h2>
                <div class="segmented" role="group" aria-label=t!("dash.range")>
                    <button type="button" class="small" aria-pressed=move || (range.get() == 7).to_string()
                        data-testid="range-7" on:click=move |_| range.set(7)>{t!("dash.days_7")}</button>
                    <button type="button" class="small" aria-pressed=move || (range.get() == 30).to_string()
                        data-testid="range-30" on:click=move |_| range.set(30)>{t!("dash.days_30")}</button>
                </div>
            </div>
            {chart}
        </section>
    }
}

/// The last 30 days by model and by key.
#[component]
fn Breakdown(data: Dashboard) -> impl IntoView {
    let sum = |points: &[UsagePoint], key: &dyn Fn(&UsagePoint) -> String| {
        let mut m: BTreeMap<String, (u64, u64, u64, i64)> = BTreeMap::new();
        for p in points {
            let e = m.entry(key(p)).or_default();
            e.0 += p.requests;
            e.1 += p.prompt_tokens;
            e.2 += p.completion_tokens;
            e.3 += p.cost.units();
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.3.cmp(&a.1.3).then(a.0.cmp(&b.0)));
        v
    };
    let keys = data.keys.clone();
    let key_name = move |p: &UsagePoint| match p.key_id {
        Some(0) | None => t!("dash.no_key").to_string(),
        Some(id) => keys.iter().find(|(k, _, _)| *k == id).map_or_else(
            || format!("#{id}"),
            |(_, name, prefix)| format!("{name} ({prefix})"),
        ),
    };
    let by_model = sum(&data.by_model, &|p| p.model.clone().unwrap_or_default());
    let by_key = sum(&data.by_key, &key_name);
    let table = |rows: Vec<(String, (u64, u64, u64, i64))>,
                 head: &'static str,
                 id: &'static str| {
        view! {
            <div class="scroll">
                <table data-testid=id>
                    <thead><tr>
                        <th>{head}</th>
                        <th class="num">{t!("dash.requests")}</th>
                        <th class="num">{t!("dash.tokens")}</th>
                        <th class="num">{t!("dash.spend")}</th>
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|(name, (r, i, o, c))| view! {
                            <tr><td>{name}</td><td class="num">{number(r)}</td><td class="num">{format!("{} / {}", number(i), number(o))}</td>
                                <td class="num">{money(Credits::from_units(c))}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
    };
    view! {
        <div class="two-col">
            <section class="panel">
                <h2>{t!("dash.by_model")}</h2>
                {table(by_model, t!("logs.col_model"), "by-model")}
            </section>
            <section class="panel">
                <h2>{t!("dash.by_key")}</h2>
                {table(by_key, t!("logs.col_key"), "by-key")}
            </section>
        </div>
    }
}

#[component]
fn RecentErrors(data: Dashboard) -> impl IntoView {
    if data.errors.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="panel">
            <div class="table-head">
                <h2>{t!("dash.errors")}</h2>
                <a href="/logs?status=error">{t!("dash.all_errors")}</a>
            </div>
            <div class="scroll">
                <table data-testid="recent-errors">
                    <tbody>
                        {data.errors.into_iter().map(|e| view! {
                            <tr>
                                <td>{when(e.created_at)}</td>
                                <td>{e.model.clone()}</td>
                                <td><span class="badge disabled">{e.status}</span></td>
                                <td class="muted">{e.error_class.map(|c| c.as_str().to_string()).unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
