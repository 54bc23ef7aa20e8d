//! Calls: the signed-in user's (`/logs`), or every user's for an administrator
//! (`/admin/calls`, with a user filter); filters kept in the URL (shareable, the back button
//! works), keyset pages, the details of one call, and the CSV export of the filtered range.

use crate::components::{ErrorView, Guard, encode_query as encode, when};
use crate::dashboard::api::my_calls;
use crate::i18n::format::{millis, money, number};
use crate::keys::api::my_keys;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use types::{CallsQuery, UsageRow};

#[component]
pub fn LogsPage() -> impl IntoView {
    view! { <Logs scope=Scope::Mine/> }
}

/// Whose calls a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The signed-in user's.
    Mine,
    /// Every user's (administrators).
    All,
}

impl Scope {
    fn path(self) -> &'static str {
        match self {
            Scope::Mine => "/logs",
            Scope::All => "/admin/calls",
        }
    }

    fn csv(self) -> &'static str {
        match self {
            Scope::Mine => "/api/me/logs.csv",
            Scope::All => "/api/admin/logs.csv",
        }
    }

    /// The filters of the URL this page keeps.
    fn filters(self) -> &'static [&'static str] {
        match self {
            Scope::Mine => &["key_id", "model", "status", "from", "to"],
            Scope::All => &["user_id", "key_id", "model", "status", "from", "to"],
        }
    }
}

/// A filter of the URL, when set.
fn param(q: &ParamsMap, name: &str) -> Option<String> {
    q.get(name).filter(|v| !v.trim().is_empty())
}

/// Unix seconds of the start of a `YYYY-MM-DD` day (UTC), `days` later; the text as it is
/// when it is not a date (the server then names the field).
fn day_seconds(text: Option<String>, days: i64) -> Option<String> {
    text.map(|t| match types::date::parse_day(&t) {
        Some(d) => ((d + days) * 86_400).to_string(),
        None => t,
    })
}

/// The call filters of the URL, as the server function takes them.
fn query_of(scope: Scope, q: &ParamsMap) -> CallsQuery {
    CallsQuery {
        model: param(q, "model"),
        status: param(q, "status"),
        from: day_seconds(param(q, "from"), 0),
        to: day_seconds(param(q, "to"), 1),
        key_id: param(q, "key_id"),
        user_id: (scope == Scope::All).then(|| param(q, "user_id")).flatten(),
        cursor: param(q, "cursor"),
        limit: Some("50".into()),
    }
}

/// This page's URL with the same filters and another cursor.
fn with_cursor(scope: Scope, q: &ParamsMap, cursor: Option<&str>) -> String {
    let mut parts = Vec::new();
    for &name in scope.filters() {
        if let Some(v) = param(q, name) {
            parts.push(format!("{name}={}", encode(&v)));
        }
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={}", encode(c)));
    }
    if parts.is_empty() {
        scope.path().into()
    } else {
        format!("{}?{}", scope.path(), parts.join("&"))
    }
}

/// The CSV export of the calls the filters select (the whole range, not this page).
fn export_href(scope: Scope, q: &ParamsMap) -> String {
    let c = query_of(scope, q);
    let mut parts = Vec::new();
    for (name, v) in [
        ("user_id", c.user_id),
        ("key_id", c.key_id),
        ("model", c.model),
        ("status", c.status),
        ("from", c.from),
        ("to", c.to),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name}={}", encode(&v)));
        }
    }
    format!("{}?{}", scope.csv(), parts.join("&"))
}

#[component]
pub fn Logs(scope: Scope) -> impl IntoView {
    let query = use_query_map();
    let calls = wire::resource(
        move || query.with(|q| query_of(scope, q)),
        move |q| async move {
            match scope {
                Scope::Mine => my_calls(q).await,
                Scope::All => crate::admin::all_calls(q).await,
            }
        },
    );
    // The key filter: the user's keys, or (administrators) every user's and every key.
    let choices = wire::resource(
        || (),
        move |_| async move {
            match scope {
                Scope::Mine => Ok((Vec::new(), my_keys().await?)),
                Scope::All => Ok::<_, crate::AppError>((
                    crate::admin::list_users().await?,
                    crate::admin::all_keys().await?,
                )),
            }
        },
    );
    let current = move |name: &'static str| query.with(|q| param(q, name)).unwrap_or_default();
    view! {
        <Guard admin={scope == Scope::All} page=move |_| view! {
            <header class="page-head">
                <h1>{match scope { Scope::Mine => t!("logs.title"), Scope::All => t!("admin.calls_title") }}</h1>
                <p class="muted">{match scope { Scope::Mine => t!("logs.lead"), Scope::All => t!("admin.calls_lead") }}</p>
                {(scope == Scope::All).then(|| view! { <crate::admin::AdminNav/> })}
            </header>
            <section class="panel">
                <Form method="GET" action=scope.path()>
                    <div class="filters">
                        {(scope == Scope::All).then(|| view! {
                            <label>
                                <span>{t!("admin.user")}</span>
                                <select name="user_id" data-testid="filter-user">
                                    <option value="">{t!("admin.everyone")}</option>
                                    <Transition fallback=|| ()>
                                        {move || Suspend::new(async move {
                                            let chosen = current("user_id");
                                            let (users, _) = choices.await.unwrap_or_default();
                                            users.into_iter().map(|u| {
                                                let id = u.id.to_string();
                                                let selected = id == chosen;
                                                view! { <option value=id selected=selected>{u.username}</option> }
                                            }).collect_view()
                                        })}
                                    </Transition>
                                </select>
                            </label>
                        })}
                        <label>
                            <span>{t!("logs.key")}</span>
                            <select name="key_id" data-testid="filter-key">
                                <option value="">{t!("logs.any")}</option>
                                <Transition fallback=|| ()>
                                    {move || Suspend::new(async move {
                                        let chosen = current("key_id");
                                        let (_, keys) = choices.await.unwrap_or_default();
                                        keys.into_iter().map(|k| {
                                            let id = k.id.to_string();
                                            let selected = id == chosen;
                                            view! { <option value=id selected=selected>{format!("{} ({})", k.name, k.prefix)}</option> }
                                        }).collect_view()
                                    })}
                                </Transition>
                            </select>
                        </label>
                        <label>
                            <span>{t!("logs.model")}</span>
                            <input name="model" prop:value=move || current("model") data-testid="filter-model"/>
                        </label>
                        <label>
                            <span>{t!("logs.status")}</span>
                            <select name="status" data-testid="filter-status">
                                <option value="" selected=move || current("status").is_empty()>{t!("logs.any")}</option>
                                <option value="success" selected=move || current("status") == "success">{t!("logs.success")}</option>
                                <option value="error" selected=move || current("status") == "error">{t!("logs.errors")}</option>
                            </select>
                        </label>
                        <label>
                            <span>{t!("logs.from")}</span>
                            <input type="date" name="from" prop:value=move || current("from")/>
                        </label>
                        <label>
                            <span>{t!("logs.to")}</span>
                            <input type="date" name="to" prop:value=move || current("to")/>
                        </label>
                        <div class="filter-actions">
                            <button type="submit" class="primary" data-testid="apply-filters">{t!("logs.apply")}</button>
                            <a href=scope.path()>{t!("logs.clear")}</a>
                            <a class="button" download="" rel="external" href=move || query.with(|q| export_href(scope, q)) data-testid="export-csv">{t!("logs.export")}</a>
                        </div>
                    </div>
                </Form>
            </section>
            <section class="panel">
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match calls.await {
                            Ok(page) => {
                                let next = page.next_cursor.clone();
                                let first = query.with(|q| param(q, "cursor").is_none());
                                let newest = query.with(|q| with_cursor(scope, q, None));
                                let older = next.map(|c| query.with(|q| with_cursor(scope, q, Some(&c))));
                                view! {
                                    <CallTable rows=page.data/>
                                    <nav class="pager">
                                        <Show when=move || !first>
                                            <a href=newest.clone()>{t!("billing.newest")}</a>
                                        </Show>
                                        {older.map(|href| view! { <a href=href data-testid="older-calls">{t!("billing.older")}</a> })}
                                    </nav>
                                }.into_any()
                            }
                            Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

#[component]
fn CallTable(rows: Vec<UsageRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted" data-testid="no-calls">{t!("logs.none")}</p> }.into_any();
    }
    view! {
        <div class="scroll">
            <table data-testid="calls">
                <thead>
                    <tr>
                        <th>{t!("logs.col_time")}</th>
                        <th>{t!("logs.col_key")}</th>
                        <th>{t!("logs.col_model")}</th>
                        <th class="num">{t!("logs.col_tokens")}</th>
                        <th class="num">{t!("logs.col_cost")}</th>
                        <th class="num">{t!("logs.col_latency")}</th>
                        <th>{t!("logs.col_status")}</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|r| view! { <CallRow r/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// One call; a click shows its details underneath.
#[component]
fn CallRow(r: UsageRow) -> impl IntoView {
    let open = RwSignal::new(false);
    let ok = r.status < 400;
    let model = match &r.served_model {
        Some(s) if *s != r.model => format!("{} → {s}", r.model),
        _ => r.model.clone(),
    };
    let tokens = format!(
        "{} / {} / {}",
        number(r.prompt_tokens),
        number(r.completion_tokens),
        number(r.cached_tokens)
    );
    let latency = match r.ttft_ms {
        Some(first) => format!("{} ({})", millis(r.latency_ms), millis(first)),
        None => millis(r.latency_ms),
    };
    let status = r.status;
    let details = StoredValue::new(r.clone());
    view! {
        <tr data-testid="call-row" class="clickable" tabindex="0"
            aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)
            on:keydown=move |ev| if ev.key() == "Enter" || ev.key() == " " { ev.prevent_default(); open.update(|o| *o = !*o) }>
            <td>{when(r.created_at)}</td>
            <td><code>{r.key_prefix.clone().unwrap_or_default()}</code></td>
            <td>{model}</td>
            <td class="num">{tokens}</td>
            <td class="num">{money(r.cost)}</td>
            <td class="num">{latency}</td>
            <td><span class=if ok { "badge active" } else { "badge disabled" }>{status}</span></td>
        </tr>
        <Show when=move || open.get()>
            {move || {
                let d = details.get_value();
                view! {
                    <tr class="details" data-testid="call-details">
                        <td colspan="7">
                            <dl>
                                <dt>{t!("logs.request_id")}</dt><dd><code>{d.request_id.clone()}</code></dd>
                                <dt>{t!("logs.stream")}</dt><dd>{if d.stream { t!("logs.yes") } else { t!("logs.no") }}</dd>
                                <dt>{t!("logs.attempts")}</dt><dd>{d.attempts}</dd>
                                <dt>{t!("logs.channel")}</dt><dd>{d.channel_id.map(|c| c.to_string()).unwrap_or_default()}</dd>
                                <dt>{t!("logs.usage_source")}</dt><dd>{d.usage_source.as_str()}</dd>
                                <dt>{t!("logs.price_version")}</dt><dd>{d.price_version.map(|v| v.to_string()).unwrap_or_default()}</dd>
                                <dt>{t!("logs.error")}</dt><dd>{d.error_class.map(|e| e.as_str().to_string()).unwrap_or_default()}</dd>
                            </dl>
                        </td>
                    </tr>
                }
            }}
        </Show>
    }
}
