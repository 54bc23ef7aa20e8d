//! The spend chart: per day, stacked by model, over the last 7 or 30 days, drawn as SVG; every
//! segment tells its exact figures on hover, and a table has them all. The admin's user page
//! draws it in the browser ([`UsageChart`]); the dashboard has it drawn on the server, both
//! ranges at once ([`both_ranges`]), and switches between them ([`DrawnChart`]).

use crate::components::{Drawn, elements};
use crate::i18n::format::{day, money, number};
use crate::t;
use leptos::prelude::*;
use std::collections::BTreeMap;
use types::{Credits, UsagePoint};

/// Colors of the chart's series, by rank of spend; the rest is "other".
const COLORS: [&str; 6] = [
    "#3b5bdb", "#12b886", "#f59f00", "#e64980", "#7950f2", "#15aabf",
];
const OTHER: &str = "#adb5bd";

/// The day `n` days before `day`.
pub fn days_before(day: &str, n: i64) -> String {
    types::date::parse_day(day).map_or_else(|| day.to_string(), |d| types::date::format_day(d - n))
}

/// How wide `text` is drawn in the axis's font (10 units): a generous width for each Latin
/// character (capitals are the widest), a whole em for anything else (CJK).
fn label_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if c.is_ascii() { 6.5 } else { 10.0 })
        .sum()
}

/// The chart of the `n` days up to `today`, its legend and its table of exact figures.
pub fn spend_chart(points: &[UsagePoint], today: &str, n: i64) -> AnyView {
    let days: Vec<String> = (0..n).rev().map(|i| days_before(today, i)).collect();
    let from = days.first().cloned().unwrap_or_default();
    let points: Vec<&UsagePoint> = points.iter().filter(|p| p.day >= from).collect();
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
    // The y axis's labels, and room at the left for the widest of them (in either language).
    let ticks = [0, max / 2, max].map(|u| (u, money(Credits::from_units(u))));
    let left = ticks
        .iter()
        .map(|(_, label)| label_width(label))
        .fold(0.0_f64, f64::max)
        .max(30.0)
        + 12.0;
    let (w, h, bottom) = (720.0_f64, 220.0_f64, 22.0_f64);
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
    let grid = ticks
        .into_iter()
        .map(|(u, label)| {
            let gy = y(u);
            view! {
                <line x1=format!("{left:.1}") x2=format!("{w:.1}") y1=format!("{gy:.1}") y2=format!("{gy:.1}") class="grid"/>
                <text x=format!("{:.1}", left - 6.0) y=format!("{:.1}", gy + 4.0) text-anchor="end" class="axis">
                    {label}
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
        // 14 more on the right: the last day's label, centred on its bar, stays inside.
        <svg viewBox=format!("0 0 {} {h}", w + 14.0) class="chart" role="img"
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
    .into_any()
}

/// The chart's title and its range switch (7 or 30 days).
#[component]
fn RangeHead(range: RwSignal<i64>) -> impl IntoView {
    view! {
        <div class="table-head">
            <h2>{t!("dash.chart_title")}</h2>
            <div class="segmented" role="group" aria-label=t!("dash.range")>
                <button type="button" class="small" aria-pressed=move || (range.get() == 7).to_string()
                    data-testid="range-7" on:click=move |_| range.set(7)>{t!("dash.days_7")}</button>
                <button type="button" class="small" aria-pressed=move || (range.get() == 30).to_string()
                    data-testid="range-30" on:click=move |_| range.set(30)>{t!("dash.days_30")}</button>
            </div>
        </div>
    }
}

/// The chart drawn in the browser, from the points.
#[component]
pub fn UsageChart(points: Vec<UsagePoint>, today: String) -> impl IntoView {
    let range = RwSignal::new(30i64);
    view! {
        <section class="panel">
            <RangeHead range/>
            {move || spend_chart(&points, &today, range.get())}
        </section>
    }
}

/// Both ranges drawn on the server, 30 days shown, 7 days hidden (see [`DrawnChart`]).
#[cfg(feature = "ssr")]
pub fn both_ranges(points: &[UsagePoint], today: &str) -> impl IntoView {
    view! {
        <div data-range="7" hidden>{spend_chart(points, today, 7)}</div>
        <div data-range="30">{spend_chart(points, today, 30)}</div>
    }
}

/// The chart drawn on the server by [`both_ranges`]: the switch shows one range's block.
#[component]
pub fn DrawnChart(html: String) -> impl IntoView {
    let range = RwSignal::new(30i64);
    let body = NodeRef::<leptos::html::Div>::new();
    Effect::new(move || {
        let shown = range.get().to_string();
        if let Some(body) = body.get() {
            for block in elements(&body, "[data-range]") {
                block.set_hidden(
                    block.get_attribute("data-range").as_deref() != Some(shown.as_str()),
                );
            }
        }
    });
    view! {
        <section class="panel">
            <RangeHead range/>
            <Drawn html node_ref=body/>
        </section>
    }
}
