//! The call-log page drawn on the server (see [`crate::components::Drawn`]): the filters as a
//! plain GET form (it works without JavaScript; the page submits it through the router), a
//! keyset page of calls with each call's details in a hidden row underneath, the pager and the
//! CSV export of the filtered range, every link built from the page's query string.

use super::Scope;
use crate::components::{ErrorView, encode_query as encode, when};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::i18n::format::{millis, money, number};
use crate::t;
use leptos::prelude::*;
use types::{CallsQuery, KeyView, Slice, UsageRow, UserInfo};

/// The calls on one page.
const PAGE: &str = "50";

/// The filters of the page's URL (empty ones dropped), days as `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filters {
    scope: Scope,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

impl Filters {
    /// The filters `scope`'s page keeps from its query string (with or without its `?`); a
    /// name given twice counts once, the last time; other names are not the page's.
    pub fn parse(scope: Scope, query: &str) -> Filters {
        let query = query.trim_start_matches('?');
        let pairs = format!("/?{query}")
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).ok())
            .map(|q| q.0)
            .unwrap_or_default();
        let mut f = Filters {
            scope,
            user_id: None,
            key_id: None,
            model: None,
            status: None,
            from: None,
            to: None,
            cursor: None,
        };
        for (name, value) in pairs {
            let value = Some(value).filter(|v| !v.trim().is_empty());
            match name.as_str() {
                "user_id" if scope == Scope::All => f.user_id = value,
                "key_id" => f.key_id = value,
                "model" => f.model = value,
                "status" => f.status = value,
                "from" => f.from = value,
                "to" => f.to = value,
                "cursor" => f.cursor = value,
                _ => {}
            }
        }
        f
    }

    /// The read these filters ask of the service: the days as unix seconds, the last day
    /// included (text that is not a date goes as it is, and the service names the field).
    pub fn calls(&self) -> CallsQuery {
        CallsQuery {
            model: self.model.clone(),
            status: self.status.clone(),
            from: day_seconds(&self.from, 0),
            to: day_seconds(&self.to, 1),
            key_id: self.key_id.clone(),
            user_id: self.user_id.clone(),
            cursor: self.cursor.clone(),
            limit: Some(PAGE.into()),
        }
    }

    /// The filters by name, in the URL's order.
    fn named(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("user_id", &self.user_id),
            ("key_id", &self.key_id),
            ("model", &self.model),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    /// This page's URL with the same filters and another cursor.
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut parts: Vec<String> = self
            .named()
            .into_iter()
            .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={}", encode(v))))
            .collect();
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", encode(c)));
        }
        let path = self.scope.path();
        if parts.is_empty() {
            path.into()
        } else {
            format!("{path}?{}", parts.join("&"))
        }
    }

    /// The CSV export of the calls the filters select (the whole range, not this page).
    fn export_href(&self) -> String {
        let c = self.calls();
        let path = match self.scope {
            Scope::Mine => "/api/me/logs.csv",
            Scope::All => "/api/admin/logs.csv",
        };
        let parts: Vec<String> = [
            ("user_id", c.user_id),
            ("key_id", c.key_id),
            ("model", c.model),
            ("status", c.status),
            ("from", c.from),
            ("to", c.to),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name}={}", encode(&v))))
        .collect();
        format!("{path}?{}", parts.join("&"))
    }
}

/// Unix seconds of the start of a `YYYY-MM-DD` day (UTC), `days` later; the text as it is
/// when it is not a date.
fn day_seconds(text: &Option<String>, days: i64) -> Option<String> {
    text.as_ref().map(|t| match types::date::parse_day(t) {
        Some(d) => ((d + days) * 86_400).to_string(),
        None => t.clone(),
    })
}

/// What the server function read, drawn once.
pub struct Read {
    pub filters: Filters,
    /// Whom the user filter offers (administrators' page).
    pub users: Option<Vec<UserInfo>>,
    pub keys: Vec<KeyView>,
    pub calls: Result<Slice<UsageRow>, AppError>,
}

impl Read {
    /// The page's read model, to be drawn with its `filters` (a bad filter is drawn as the
    /// page's error line).
    pub fn new(filters: Filters, read: service::views::pages::Calls) -> Read {
        Read {
            filters,
            users: read.users,
            keys: read.keys,
            calls: read.calls.map_err(|e| AppError(e.into_info())),
        }
    }

    /// The page's filters, calls and pager, in `lang`.
    pub fn draw(self, lang: Lang) -> String {
        crate::ssr::html(lang, move || {
            let Read {
                filters,
                users,
                keys,
                calls,
            } = self;
            let list = match calls {
                Ok(page) => {
                    let newest = filters.cursor.is_some().then(|| filters.with_cursor(None));
                    let older = page.next_cursor.map(|c| filters.with_cursor(Some(&c)));
                    view! {
                        {table(page.data)}
                        <nav class="pager">
                            {newest.map(|href| view! { <a href=href>{t!("billing.newest")}</a> })}
                            {older.map(|href| view! { <a href=href data-testid="older-calls">{t!("billing.older")}</a> })}
                        </nav>
                    }
                    .into_any()
                }
                Err(error) => view! { <ErrorView error/> }.into_any(),
            };
            view! {
                <section class="panel">{form(&filters, users, keys)}</section>
                <section class="panel">{list}</section>
            }
        })
    }
}

/// The filters, as they are now: a GET form to this page.
fn form(f: &Filters, users: Option<Vec<UserInfo>>, keys: Vec<KeyView>) -> impl IntoView + use<> {
    let status = f.status.clone().unwrap_or_default();
    let users = users.map(|users| {
        let chosen = f.user_id.clone().unwrap_or_default();
        view! {
            <label>
                <span>{t!("admin.user")}</span>
                <select name="user_id" data-testid="filter-user">
                    <option value="">{t!("admin.everyone")}</option>
                    {users.into_iter().map(|u| {
                        let id = u.id.to_string();
                        let selected = id == chosen;
                        view! { <option value=id selected=selected>{u.username}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    });
    let chosen = f.key_id.clone().unwrap_or_default();
    let keys = keys
        .into_iter()
        .map(|k| {
            let id = k.id.to_string();
            let selected = id == chosen;
            view! { <option value=id selected=selected>{format!("{} ({})", k.name, k.prefix)}</option> }
        })
        .collect_view();
    view! {
        <form method="get" action=f.scope.path() data-testid="filters">
            <div class="filters">
                {users}
                <label>
                    <span>{t!("logs.key")}</span>
                    <select name="key_id" data-testid="filter-key">
                        <option value="">{t!("logs.any")}</option>
                        {keys}
                    </select>
                </label>
                <label>
                    <span>{t!("logs.model")}</span>
                    <input name="model" value=f.model.clone() data-testid="filter-model"/>
                </label>
                <label>
                    <span>{t!("logs.status")}</span>
                    <select name="status" data-testid="filter-status">
                        <option value="" selected=status.is_empty()>{t!("logs.any")}</option>
                        <option value="success" selected=status == "success">{t!("logs.success")}</option>
                        <option value="error" selected=status == "error">{t!("logs.errors")}</option>
                    </select>
                </label>
                <label>
                    <span>{t!("logs.from")}</span>
                    <input type="date" name="from" value=f.from.clone()/>
                </label>
                <label>
                    <span>{t!("logs.to")}</span>
                    <input type="date" name="to" value=f.to.clone()/>
                </label>
                <div class="filter-actions">
                    <button type="submit" class="primary" data-testid="apply-filters">{t!("logs.apply")}</button>
                    <a href=f.scope.path()>{t!("logs.clear")}</a>
                    <a class="button" download="" rel="external" href=f.export_href() data-testid="export-csv">{t!("logs.export")}</a>
                </div>
            </div>
        </form>
    }
}

fn table(rows: Vec<UsageRow>) -> AnyView {
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
                <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// One call, and its details in the row underneath, hidden until the call is opened.
fn row(r: UsageRow) -> impl IntoView {
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
    let breakdown = breakdown(&r.detail());
    let latency = match r.ttft_ms {
        Some(first) => format!("{} ({})", millis(r.latency_ms), millis(first)),
        None => millis(r.latency_ms),
    };
    view! {
        <tr data-testid="call-row" class="clickable" tabindex="0" aria-expanded="false">
            <td>{when(r.created_at)}</td>
            <td><code>{r.key_prefix.unwrap_or_default()}</code></td>
            <td>{model}</td>
            <td class="num">{tokens}</td>
            <td class="num">{money(r.cost)}</td>
            <td class="num">{latency}</td>
            <td><span class=if ok { "badge active" } else { "badge disabled" }>{r.status}</span></td>
        </tr>
        <tr class="details" data-testid="call-details" hidden>
            <td colspan="7">
                <dl>
                    <dt>{t!("logs.request_id")}</dt><dd><code>{r.request_id}</code></dd>
                    <dt>{t!("logs.stream")}</dt><dd>{if r.stream { t!("logs.yes") } else { t!("logs.no") }}</dd>
                    <dt>{t!("logs.attempts")}</dt><dd>{r.attempts}</dd>
                    <dt>{t!("logs.channel")}</dt><dd>{r.channel_id.map(|c| c.to_string()).unwrap_or_default()}</dd>
                    <dt>{t!("logs.usage_source")}</dt><dd>{r.usage_source.as_str()}</dd>
                    <dt>{t!("logs.price_version")}</dt><dd>{r.price_version.map(|v| v.to_string()).unwrap_or_default()}</dd>
                    <dt>{t!("logs.error")}</dt><dd>{r.error_class.map(|e| e.as_str()).unwrap_or_default()}</dd>
                    <dt>{t!("logs.surface")}</dt><dd>{r.surface}</dd>
                    <dt>{t!("logs.upstream_kind")}</dt><dd>{r.upstream_kind.unwrap_or_default()}</dd>
                    <dt>{t!("logs.breakdown")}</dt><dd data-testid="call-breakdown">{breakdown}</dd>
                </dl>
            </td>
        </tr>
    }
}

/// The kinds of tokens the provider reported apart, those it reported: `reasoning 20 · cache
/// writes (1 h) 5`; a dash when none.
fn breakdown(d: &types::TokenDetail) -> String {
    let parts: Vec<String> = [
        (t!("logs.cache_write_5m"), d.cache_write_5m),
        (t!("logs.cache_write_1h"), d.cache_write_1h),
        (t!("logs.reasoning"), d.reasoning),
        (t!("logs.image_input"), d.image_input),
        (t!("logs.image_output"), d.image_output),
        (t!("logs.audio_input"), d.audio_input),
        (t!("logs.audio_output"), d.audio_output),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {}", number(n)))
    .collect();
    if parts.is_empty() {
        "—".to_string()
    } else {
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_keeps_its_own_filters_and_builds_its_links_from_them() {
        let f = Filters::parse(
            Scope::Mine,
            "?model=gpt%204&status=&from=2026-11-01&to=2026-11-02&user_id=7&x=1&model=b%26c",
        );
        // A user's page has no user filter; the last `model` counts; empty ones are dropped.
        assert_eq!(f.user_id, None);
        assert_eq!(f.model.as_deref(), Some("b&c"));
        assert_eq!(f.status, None);
        let c = f.calls();
        assert_eq!(c.from.as_deref(), Some("1793491200"));
        assert_eq!(c.to.as_deref(), Some("1793664000"));
        assert_eq!(c.limit.as_deref(), Some(PAGE));
        assert_eq!(
            f.with_cursor(Some("a b")),
            "/logs?model=b%26c&from=2026-11-01&to=2026-11-02&cursor=a%20b"
        );
        assert_eq!(
            f.export_href(),
            "/api/me/logs.csv?model=b%26c&from=1793491200&to=1793664000"
        );
        let admin = Filters::parse(Scope::All, "user_id=7&from=not-a-day");
        assert_eq!(admin.user_id.as_deref(), Some("7"));
        // Not a date: sent as it is, for the service to name the field.
        assert_eq!(admin.calls().from.as_deref(), Some("not-a-day"));
        assert_eq!(
            admin.with_cursor(None),
            "/admin/calls?user_id=7&from=not-a-day"
        );
        assert_eq!(
            Filters::parse(Scope::All, "").with_cursor(None),
            "/admin/calls"
        );
    }
}
