//! The keys page's parts drawn on the server (see [`crate::components::Drawn`]): the creation
//! form (above it, once, the secret of a key a form made without JavaScript), and the user's
//! keys, a row each, its actions plain forms posting to the key server functions (they work
//! without JavaScript; the page posts them by `fetch`), deleting behind a disclosure that asks
//! first.

use super::api::{CreateKey, DeleteKey, SetKeyStatus};
use crate::components::{limits_text, when};
use crate::i18n::Lang;
use crate::t;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use types::{KeySecret, KeyView};

/// The keys, or the line that says there are none, in `lang`.
pub fn draw(keys: Vec<KeyView>, lang: Lang) -> String {
    crate::ssr::html(lang, move || {
        if keys.is_empty() {
            return view! { <p class="muted" data-testid="no-keys">{t!("keys.none")}</p> }
                .into_any();
        }
        view! {
            <div class="scroll">
                <table class="stack" data-testid="keys-table">
                    <thead>
                        <tr>
                            <th>{t!("keys.col_name")}</th>
                            <th>{t!("keys.col_key")}</th>
                            <th>{t!("keys.col_status")}</th>
                            <th>{t!("keys.col_models")}</th>
                            <th class="num">{t!("keys.col_spent")}</th>
                            <th>{t!("keys.col_limits")}</th>
                            <th>{t!("keys.col_expires")}</th>
                            <th>{t!("keys.col_last_used")}</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>{keys.into_iter().map(row).collect_view()}</tbody>
                </table>
            </div>
        }
        .into_any()
    })
}

/// The creation form: every field labelled, beside each field the service can name a place for
/// its error; the models as boxes to tick (posted as `models[]`, with or without JavaScript;
/// none ticked: every model). `fresh`: the secret a form posted without JavaScript just made.
pub fn form(models: Vec<String>, fresh: Option<KeySecret>, lang: Lang) -> String {
    crate::ssr::html(lang, move || {
        let fresh = fresh.map(|k| {
            view! {
                <div class="panel secret" data-testid="new-key" role="status">
                    <h2>{t!("keys.created")} " " <span class="muted">{k.name}</span></h2>
                    <p><strong>{t!("keys.once")}</strong></p>
                    <div class="copy-row"><code class="select-all" data-testid="new-key-secret">{k.key}</code></div>
                </div>
            }
        });
        let error_for = |field: &'static str| {
            view! { <span class="field-error" role="alert" data-error-for=field hidden></span> }
        };
        let models = if models.is_empty() {
            view! { <p class="muted">{t!("keys.no_models")}</p> }.into_any()
        } else {
            models
                .into_iter()
                .map(|m| view! { <label class="check"><input type="checkbox" name="models[]" value=m.clone() data-model=""/>{m}</label> })
                .collect_view()
                .into_any()
        };
        view! {
            {fresh}
            <form method="post" action=CreateKey::PATH>
                <div class="form-grid">
                    <label>
                        <span>{t!("keys.name")}</span>
                        <input name="name" required maxlength="64" data-testid="key-name"/>
                        {error_for("name")}
                    </label>
                    <label>
                        <span>{t!("keys.expires")}</span>
                        <input name="expires_on" type="date"/>
                        {error_for("expires_at")}
                    </label>
                    <label>
                        <span>{t!("keys.cap")}</span>
                        <input name="spend_cap" inputmode="decimal" placeholder="5.00" data-testid="key-cap"/>
                        {error_for("spend_cap")}
                    </label>
                    <label>
                        <span>{t!("keys.rpm")}</span>
                        <input name="rpm" type="number" min="1" data-testid="key-rpm"/>
                        {error_for("rpm")}
                    </label>
                    <label>
                        <span>{t!("keys.tpm")}</span>
                        <input name="tpm" type="number" min="1"/>
                        {error_for("tpm")}
                    </label>
                    <label>
                        <span>{t!("keys.concurrent")}</span>
                        <input name="max_concurrent" type="number" min="1" data-testid="key-concurrent"/>
                        {error_for("max_concurrent")}
                    </label>
                    <label class="wide">
                        <span>{t!("keys.ips")}</span>
                        <textarea name="ips" rows="2" placeholder="203.0.113.7, 10.0.0.0/8"></textarea>
                        {error_for("allowed_ips")}
                    </label>
                </div>
                <fieldset class="models">
                    <legend>{t!("keys.models")}</legend>
                    {models}
                    <p class="muted small-print">{t!("keys.models_hint")}</p>
                    {error_for("allowed_models")}
                </fieldset>
                <button type="submit" class="primary" data-testid="create-key">{t!("keys.create")}</button>
            </form>
        }
    })
}

fn row(k: KeyView) -> impl IntoView {
    let active = k.status == "active";
    // Spend is counted against a cap (a key without one spends from the balance alone).
    let spent = match k.spend_cap {
        Some(cap) => format!("{} / {}", k.spent, cap),
        None => t!("keys.no_cap").to_string(),
    };
    let limits = limits_text(&k);
    let models = if k.allowed_models.is_empty() {
        t!("keys.all_models").to_string()
    } else {
        k.allowed_models.join(", ")
    };
    let id = k.id.to_string();
    view! {
        <tr data-testid="key-row">
            <td data-label=t!("keys.col_name")>{k.name}</td>
            <td data-label=t!("keys.col_key")><code>{k.prefix}</code></td>
            <td data-label=t!("keys.col_status")>
                <span class=if active { "badge active" } else { "badge disabled" }>
                    {if active { t!("status.active") } else { t!("status.disabled") }}
                </span>
            </td>
            <td data-label=t!("keys.col_models")>{models}</td>
            <td class="num" data-label=t!("keys.col_spent")>{spent}</td>
            <td data-label=t!("keys.col_limits")>{limits}</td>
            <td data-label=t!("keys.col_expires")>{k.expires_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td data-testid="last-used" data-label=t!("keys.col_last_used")>{k.last_used_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td class="actions">
                <form method="post" action=SetKeyStatus::PATH>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="active" value=if active { "false" } else { "true" }/>
                    <button type="submit" class="small">
                        {if active { t!("keys.disable") } else { t!("keys.enable") }}
                    </button>
                </form>
                <details class="delete">
                    <summary data-testid="delete-key">{t!("keys.delete")}</summary>
                    <form method="post" action=DeleteKey::PATH>
                        <input type="hidden" name="id" value=id/>
                        <span class="confirm">{t!("keys.confirm_delete")}</span>
                        <button type="submit" class="small danger" data-testid="confirm-delete">{t!("keys.delete_yes")}</button>
                        <button type="button" class="small" data-close="">{t!("keys.delete_no")}</button>
                    </form>
                </details>
            </td>
        </tr>
    }
}
