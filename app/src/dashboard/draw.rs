//! The dashboard's parts drawn on the server (see [`crate::components::Drawn`]): the first-call
//! guide, the spend by model and by key, the latest failed calls.

use super::chart::days_before;
use crate::components::when;
use crate::i18n::Lang;
use crate::i18n::format::{money, number};
use crate::t;
use leptos::prelude::*;
use std::collections::BTreeMap;
use types::{Credits, UsagePoint, UsageRow};

/// What the server function read, drawn once.
pub struct Read {
    pub today: String,
    pub by_model: Vec<UsagePoint>,
    pub by_key: Vec<UsagePoint>,
    pub errors: Vec<UsageRow>,
    /// The user's keys: id, name and display prefix.
    pub keys: Vec<(i64, String, String)>,
    pub base_url: String,
    pub example_model: Option<String>,
}

impl Read {
    /// The dashboard of `user`, its parts drawn in `lang`.
    pub fn draw(self, user: types::UserInfo, lang: Lang) -> types::Dashboard {
        let today = self.today.clone();
        let (spent_today, calls_today) = totals(&self.by_model, &today, &today);
        let (spent_7, _) = totals(&self.by_model, &days_before(&today, 6), &today);
        let (spent_30, calls_30) = totals(&self.by_model, &days_before(&today, 29), &today);
        let chart = (!self.by_model.is_empty())
            .then(|| crate::ssr::html(lang, || super::chart::both_ranges(&self.by_model, &today)));
        let details = crate::ssr::html(lang, || {
            let errors = self.errors.clone();
            let head = if self.by_model.is_empty() {
                first_call(&self).into_any()
            } else {
                breakdown(&self).into_any()
            };
            view! { {head} {recent_errors(errors)} }
        });
        types::Dashboard {
            user,
            spent_today,
            calls_today,
            spent_7,
            spent_30,
            calls_30,
            chart,
            details,
        }
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

/// How to make the first call: the base URL, and curl and Python with the user's key.
fn first_call(data: &Read) -> impl IntoView {
    let key = data
        .keys
        .first()
        .map_or_else(|| "sk-…".to_string(), |(_, _, prefix)| prefix.clone());
    let model = data
        .example_model
        .clone()
        .unwrap_or_else(|| "gpt-4o-mini".into());
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

/// One row of the breakdown: its calls, tokens and spend over the range.
#[derive(Default)]
struct Sums {
    requests: u64,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    cost: i64,
}

/// The last 30 days by model and by key.
fn breakdown(data: &Read) -> impl IntoView {
    let sum = |points: &[UsagePoint], key: &dyn Fn(&UsagePoint) -> String| {
        let mut m: BTreeMap<String, Sums> = BTreeMap::new();
        for p in points {
            let e = m.entry(key(p)).or_default();
            e.requests += p.requests;
            e.input += p.prompt_tokens;
            e.output += p.completion_tokens;
            e.cache_read += p.cached_tokens;
            e.cache_write += p.cache_write_tokens;
            e.reasoning += p.reasoning_tokens;
            e.cost += p.cost.units();
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then(a.0.cmp(&b.0)));
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
    let table = |rows: Vec<(String, Sums)>, head: &'static str, id: &'static str| {
        view! {
            <div class="scroll">
                <table class="breakdown" data-testid=id>
                    <thead><tr>
                        <th>{head}</th>
                        <th class="num">{t!("dash.requests")}</th>
                        <th class="num">{t!("dash.tokens")}</th>
                        <th class="num">{t!("dash.cache")}</th>
                        <th class="num">{t!("dash.reasoning")}</th>
                        <th class="num">{t!("dash.spend")}</th>
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|(name, s)| view! {
                            <tr><td>{name}</td><td class="num">{number(s.requests)}</td>
                                <td class="num">{format!("{} / {}", number(s.input), number(s.output))}</td>
                                <td class="num">{format!("{} / {}", number(s.cache_read), number(s.cache_write))}</td>
                                <td class="num">{number(s.reasoning)}</td>
                                <td class="num">{money(Credits::from_units(s.cost))}</td></tr>
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

/// The latest failed calls, when there are any.
fn recent_errors(errors: Vec<UsageRow>) -> impl IntoView {
    if errors.is_empty() {
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
                        {errors.into_iter().map(|e| view! {
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
