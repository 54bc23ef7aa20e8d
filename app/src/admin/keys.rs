//! Every user's API keys, newest first in keyset pages: filtered by owner and status (on the
//! server), disabled, enabled, limited, deleted.

use super::api::{AdminDeleteKey, AdminKeyStatus, KeyLimits, all_keys, list_users};
use super::nav::{AdminNav, FormError};
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm, when};
use crate::i18n::format::money;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use std::collections::HashMap;
use types::KeyView;

#[component]
pub fn AdminKeysPage() -> impl IntoView {
    view! { <AllKeys/> }
}

#[component]
fn AllKeys() -> impl IntoView {
    let set_status = Post::<AdminKeyStatus>::new();
    let delete = Post::<AdminDeleteKey>::new();
    let limits = Post::<KeyLimits>::new();
    let owner = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let cursor = RwSignal::new(None::<String>);
    let users = wire::resource(|| (), |_| list_users());
    let page = wire::resource(
        move || {
            (
                owner.get(),
                status.get(),
                cursor.get(),
                set_status.version().get(),
                delete.version().get(),
                limits.version().get(),
            )
        },
        |(owner, status, cursor, ..)| all_keys(Some(owner), Some(status), cursor),
    );
    let errors = FormError::new(
        move || {
            set_status
                .value()
                .get()
                .and_then(Result::err)
                .or_else(|| delete.value().get().and_then(Result::err))
                .or_else(|| limits.value().get().and_then(Result::err))
        },
        &[],
    );
    // A filter starts again from the newest key.
    let filter = move |signal: RwSignal<String>| {
        move |ev: leptos::ev::Event| {
            cursor.set(None);
            signal.set(event_target_value(&ev));
        }
    };
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("admin.keys_title")}</h1>
                <p class="muted">{t!("admin.keys_lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                {errors.other()}
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        let (page, users) = match (page.await, users.await) {
                            (Ok(p), Ok(u)) => (p, u),
                            (Err(e), _) | (_, Err(e)) => return view! { <ErrorView error=e/> }.into_any(),
                        };
                        // Drawn again with each page: the choices stay selected.
                        let chosen = owner.get_untracked();
                        let user_options = users
                            .iter()
                            .map(|u| {
                                let id = u.id.to_string();
                                let selected = id == chosen;
                                view! { <option value=id selected=selected>{u.username.clone()}</option> }
                            })
                            .collect_view();
                        let state = status.get_untracked();
                        let status_option = move |value: &'static str, label: &'static str| {
                            view! { <option value=value selected=state == value>{label}</option> }
                        };
                        let names: HashMap<i64, String> =
                            users.into_iter().map(|u| (u.id, u.username)).collect();
                        let next = page.next_cursor.clone();
                        view! {
                            <div class="filters">
                                <label>
                                    <span>{t!("admin.owner")}</span>
                                    <select data-testid="keys-owner" on:change=filter(owner)>
                                        <option value="">{t!("admin.everyone")}</option>
                                        {user_options}
                                    </select>
                                </label>
                                <label>
                                    <span>{t!("admin.col_status")}</span>
                                    <select data-testid="keys-status" on:change=filter(status)>
                                        {status_option("", t!("admin.any"))}
                                        {status_option("active", t!("status.active"))}
                                        {status_option("disabled", t!("status.disabled"))}
                                        {status_option("expiring", t!("admin.expiring"))}
                                    </select>
                                </label>
                            </div>
                            <div class="scroll">
                                <table data-testid="admin-keys">
                                    <thead>
                                        <tr>
                                            <th>{t!("admin.owner")}</th>
                                            <th>{t!("keys.col_name")}</th>
                                            <th>{t!("keys.col_key")}</th>
                                            <th>{t!("keys.col_status")}</th>
                                            <th class="num">{t!("keys.col_spent")}</th>
                                            <th>{t!("keys.col_limits")}</th>
                                            <th>{t!("keys.col_expires")}</th>
                                            <th>{t!("keys.col_last_used")}</th>
                                            <th></th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.data.into_iter().map(|k| {
                                            let name = names.get(&k.user_id).cloned().unwrap_or_else(|| format!("#{}", k.user_id));
                                            view! { <KeyRow k owner=name set_status delete limits/> }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <nav class="pager">
                                <Show when=move || cursor.get().is_some()>
                                    <button type="button" class="link" on:click=move |_| cursor.set(None)>{t!("billing.newest")}</button>
                                </Show>
                                {next.map(|n| view! {
                                    <button type="button" class="link" data-testid="keys-older" on:click=move |_| cursor.set(Some(n.clone()))>{t!("billing.older")}</button>
                                })}
                            </nav>
                        }
                        .into_any()
                    })}
                </Transition>
            </section>
        }/>
    }
}

#[component]
fn KeyRow(
    k: KeyView,
    owner: String,
    set_status: Post<AdminKeyStatus>,
    delete: Post<AdminDeleteKey>,
    limits: Post<KeyLimits>,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let cap_text = k.spend_cap.map(|c| c.to_usd_string()).unwrap_or_default();
    let rpm_text = k.rpm.map(|v| v.to_string()).unwrap_or_default();
    let tpm_text = k.tpm.map(|v| v.to_string()).unwrap_or_default();
    let concurrent_text = k.max_concurrent.map(|v| v.to_string()).unwrap_or_default();
    let limit_text = crate::components::limits_text(&k);
    let form_id = StoredValue::new(k.id.to_string());
    let texts = StoredValue::new((cap_text, rpm_text, tpm_text, concurrent_text));
    let active = k.status == "active";
    let spent = match k.spend_cap {
        Some(cap) => format!("{} / {}", money(k.spent), money(cap)),
        None => money(k.spent),
    };
    let id = k.id.to_string();
    let id2 = StoredValue::new(id.clone());
    view! {
        <tr data-testid="admin-key-row">
            <td>{owner}</td>
            <td>{k.name.clone()}</td>
            <td><code>{k.prefix.clone()}</code></td>
            <td>
                <span class=if active { "badge active" } else { "badge disabled" }>
                    {if active { t!("status.active") } else { t!("status.disabled") }}
                </span>
            </td>
            <td class="num">{spent}</td>
            <td>
                <Show
                    when=move || editing.get()
                    fallback=move || view! {
                        <span data-testid="key-limits">{limit_text.clone()}</span> " "
                        <button type="button" class="small" data-testid="edit-limits" on:click=move |_| editing.set(true)>{t!("prices.edit")}</button>
                    }
                >
                    <PostForm action=limits>
                        <input type="hidden" name="id" value=form_id.get_value()/>
                        <div class="limits-form">
                            <label><span>{t!("keys.cap")}</span><input name="spend_cap" inputmode="decimal" size="6" prop:value=texts.with_value(|t| t.0.clone())/></label>
                            <label><span>{t!("keys.rpm")}</span><input name="rpm" type="number" min="1" data-testid="limit-rpm" prop:value=texts.with_value(|t| t.1.clone())/></label>
                            <label><span>{t!("keys.tpm")}</span><input name="tpm" type="number" min="1" prop:value=texts.with_value(|t| t.2.clone())/></label>
                            <label><span>{t!("keys.concurrent")}</span><input name="max_concurrent" type="number" min="1" data-testid="limit-concurrent" prop:value=texts.with_value(|t| t.3.clone())/></label>
                        </div>
                        <button type="submit" class="small primary" data-testid="save-limits">{t!("prices.save")}</button>
                        <button type="button" class="small" on:click=move |_| editing.set(false)>{t!("keys.delete_no")}</button>
                    </PostForm>
                </Show>
            </td>
            <td>{k.expires_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td>{k.last_used_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td class="actions">
                <PostForm action=set_status>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="status" value=if active { "disabled" } else { "active" }/>
                    <button type="submit" class="small" data-testid="admin-key-toggle">
                        {if active { t!("keys.disable") } else { t!("keys.enable") }}
                    </button>
                </PostForm>
                <ConfirmPost action=delete fields=vec![("id", id2.get_value())]
                    label=t!("keys.delete") question=t!("keys.confirm_delete")/>
            </td>
        </tr>
    }
}
