//! One user (`/admin/users/{id}`): the account, 30 days of usage by model, their keys, their
//! ledger (paged, with the reasons of adjustments) and a link to their calls.

use super::api::{DeleteUser, ResetPassword, user_detail};
use super::nav::{AdminNav, FormError};
use crate::billing::page::Ledger;
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm, limits_text, when};
use crate::dashboard::chart::UsageChart;
use crate::i18n::format::{money, number};
use crate::i18n::{role_text, status_text};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use types::{KeyView, UserDetail};

#[component]
pub fn AdminUserPage() -> impl IntoView {
    view! { <User/> }
}

#[component]
fn User() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()));
    let cursor = move || query.with(|q| q.get("cursor"));
    let reset = Post::<ResetPassword>::new();
    let delete = Post::<DeleteUser>::new();
    let data = wire::resource(
        move || (id(), cursor(), delete.version().get()),
        |(id, cursor, _)| async move {
            // A path that is no number is no user.
            user_detail(id.unwrap_or(0), cursor).await
        },
    );
    view! {
        <Guard admin=true page=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <Detail d first=cursor().is_none() reset delete/> }.into_any(),
                        Err(e) => view! {
                            <header class="page-head">
                                <h1>{t!("user.title")}</h1>
                                <AdminNav/>
                            </header>
                            <ErrorView error=e/>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Detail(
    d: UserDetail,
    first: bool,
    reset: Post<ResetPassword>,
    delete: Post<DeleteUser>,
) -> impl IntoView {
    let u = d.user;
    let live = u.deleted_at.is_none();
    let id = u.id.to_string();
    let base = format!("/admin/users/{}", u.id);
    let older = d.ledger.next_cursor.map(|c| format!("{base}?cursor={c}"));
    let calls = format!("/admin/calls?user_id={}", u.id);
    let keys = d.keys;
    let spent_30 = types::Credits::from_units(d.usage.iter().map(|p| p.cost.units()).sum());
    let calls_30: u64 = d.usage.iter().map(|p| p.requests).sum();
    let no_keys = keys.is_empty();
    view! {
        <header class="page-head">
            <p class="muted"><a href="/admin/users">{t!("user.back")}</a></p>
            <h1 data-testid="user-name">{u.username.clone()}</h1>
            <p class="muted" data-testid="user-facts">
                <span class=format!("badge {}", u.role.as_str())>{role_text(u.role)}</span>
                " · " <span data-testid="user-status">{status_text(&u)}</span>
                " · " {t!("admin.group")} " " <code>{u.group.clone()}</code>
                " · " {t!("user.since")} " " {when(u.created_at)}
                " · " <a href=calls data-testid="user-calls">{t!("user.calls")}</a>
            </p>
            <AdminNav/>
        </header>
        <div class="cards">
            <article class="card">
                <h2>{t!("dash.balance")}</h2>
                <p class="figure" data-testid="user-balance">{money(u.balance)}</p>
            </article>
            <article class="card">
                <h2>{t!("dash.month")}</h2>
                <p class="figure" data-testid="user-spent-30">{money(spent_30)}</p>
                <p class="muted">{number(calls_30)} " " {t!("dash.requests")}</p>
            </article>
            <article class="card">
                <h2>{t!("user.keys")}</h2>
                <p class="figure">{number(keys.len() as u64)}</p>
            </article>
        </div>
        <UsageChart points=d.usage today=d.today/>
        <section class="panel">
            <h2>{t!("user.keys")}</h2>
            {if no_keys {
                view! { <p class="muted">{t!("user.no_keys")}</p> }.into_any()
            } else {
                view! { <Keys keys/> }.into_any()
            }}
        </section>
        {live.then(|| view! { <AccountActions id reset delete/> })}
        <section class="panel">
            <h2>{t!("billing.ledger")}</h2>
            <Ledger rows=d.ledger.data/>
            <nav class="pager">
                {(!first).then(|| view! { <a href=base.clone()>{t!("billing.newest")}</a> })}
                {older.map(|href| view! { <a href=href data-testid="older">{t!("billing.older")}</a> })}
            </nav>
        </section>
    }
}

/// A new password for the user (given, or made and shown once), and the account's deletion.
#[component]
fn AccountActions(
    id: String,
    reset: Post<ResetPassword>,
    delete: Post<DeleteUser>,
) -> impl IntoView {
    let reset_err = FormError::new(
        move || reset.value().get().and_then(Result::err),
        &["password"],
    );
    let delete_err = FormError::new(move || delete.value().get().and_then(Result::err), &[]);
    let done = move || reset.value().get().and_then(Result::ok);
    let reset_id = id.clone();
    view! {
        <section class="panel" data-testid="account-actions">
            <h2>{t!("user.account")}</h2>
            <p class="muted">{t!("user.reset_lead")}</p>
            <PostForm action=reset>
                <input type="hidden" name="id" value=reset_id/>
                <div class="inline-form">
                    <input name="password" type="password" autocomplete="new-password" minlength="8"
                        aria-label=t!("user.new_password") placeholder=t!("user.reset_hint") data-testid="reset-input"/>
                    <button type="submit" class="small" data-testid="reset-password">{t!("user.reset")}</button>
                </div>
                {reset_err.at("password")}
                {reset_err.other()}
            </PostForm>
            {move || done().map(|r| view! {
                <p class="success" role="status" data-testid="password-reset">
                    {t!("user.reset_done")}
                    {r.generated_password.map(|p| view! { " " <code data-testid="generated-password">{p}</code> })}
                </p>
            })}
            <p class="muted">{t!("user.delete_lead")}</p>
            <ConfirmPost action=delete fields=vec![("id", id)]
                label=t!("user.delete") question=t!("user.confirm_delete") testid="delete-user"/>
            {delete_err.other()}
        </section>
    }
}

#[component]
fn Keys(keys: Vec<KeyView>) -> impl IntoView {
    view! {
        <div class="scroll">
            <table class="stack" data-testid="user-keys">
                <thead><tr>
                    <th>{t!("keys.col_name")}</th><th>{t!("keys.col_key")}</th><th>{t!("keys.col_status")}</th>
                    <th class="num">{t!("keys.col_spent")}</th><th>{t!("keys.col_limits")}</th><th>{t!("keys.col_last_used")}</th>
                </tr></thead>
                <tbody>
                    {keys.into_iter().map(|k| {
                        let active = k.status == "active";
                        let spent = match k.spend_cap {
                            Some(cap) => format!("{} / {}", money(k.spent), money(cap)),
                            None => money(k.spent),
                        };
                        let limits = limits_text(&k);
                        view! {
                            <tr data-testid="user-key-row">
                                <td data-label=t!("keys.col_name")>{k.name.clone()}</td>
                                <td data-label=t!("keys.col_key")><code>{k.prefix.clone()}</code></td>
                                <td data-label=t!("keys.col_status")>
                                    <span class=if active { "badge active" } else { "badge disabled" }>
                                        {if active { t!("status.active") } else { t!("status.disabled") }}
                                    </span>
                                </td>
                                <td class="num" data-label=t!("keys.col_spent")>{spent}</td>
                                <td data-label=t!("keys.col_limits")>{limits}</td>
                                <td data-label=t!("keys.col_last_used")>{k.last_used_at.map(when).unwrap_or_else(|| t!("keys.never").to_string())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
