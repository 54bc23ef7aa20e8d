use super::api::{CreateKey, DeleteKey, SetKeyStatus, my_keys, my_models};
use crate::components::{ErrorView, Guard, Post, PostForm, when};
use crate::error::AppError;
use crate::i18n::error_text;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::KeyView;

#[component]
pub fn KeysPage() -> impl IntoView {
    view! { <Keys/> }
}

/// The signed-in user's API keys: created (the secret shown once), disabled, enabled, deleted.
#[component]
fn Keys() -> impl IntoView {
    let create = Post::<CreateKey>::new();
    let set_status = Post::<SetKeyStatus>::new();
    let delete = Post::<DeleteKey>::new();
    let keys = wire::resource(
        move || {
            (
                create.version().get(),
                set_status.version().get(),
                delete.version().get(),
            )
        },
        |_| my_keys(),
    );
    let models = wire::resource(|| (), |_| my_models());
    let action_error = move || {
        let e = set_status.value().get().and_then(Result::err);
        e.or_else(|| delete.value().get().and_then(Result::err))
            .map(|e| error_text(&e))
    };
    view! {
        <Guard page=move |_| view! {
            <header class="page-head">
                <h1>{t!("keys.title")}</h1>
                <p class="muted">{t!("keys.lead")}</p>
            </header>
            <NewSecret create/>
            <CreateForm create models/>
            <section class="panel">
                <h2>{t!("keys.yours")}</h2>
                <Show when=move || action_error().is_some()>
                    <p class="error" role="alert">{action_error}</p>
                </Show>
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match keys.await {
                            Ok(list) if list.is_empty() => {
                                view! { <p class="muted" data-testid="no-keys">{t!("keys.none")}</p> }.into_any()
                            }
                            Ok(list) => view! { <KeyTable list set_status delete/> }.into_any(),
                            Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

/// The secret of the key just created, shown this once, with a copy button.
#[component]
fn NewSecret(create: Post<CreateKey>) -> impl IntoView {
    let copied = RwSignal::new(false);
    let created = move || create.value().get().and_then(Result::ok);
    view! {
        {move || created().map(|k| {
            let secret = k.key.clone();
            let copy = move |_| {
                let clipboard = window().navigator().clipboard();
                let _promise = clipboard.write_text(&secret);
                copied.set(true);
            };
            view! {
                <section class="panel secret" data-testid="new-key" aria-live="polite">
                    <h2>{t!("keys.created")} " " <span class="muted">{k.view.name.clone()}</span></h2>
                    <p><strong>{t!("keys.once")}</strong></p>
                    <div class="copy-row">
                        <code data-testid="new-key-secret">{k.key.clone()}</code>
                        <button type="button" class="small" data-testid="copy-key" on:click=copy>
                            {move || if copied.get() { t!("keys.copied") } else { t!("keys.copy") }}
                        </button>
                    </div>
                    <button type="button" class="link" on:click=move |_| {
                        copied.set(false);
                        create.value().set(None);
                    }>{t!("keys.done")}</button>
                </section>
            }
        })}
    }
}

/// The creation form: every field labelled, the server's error shown next to the field it names.
#[component]
fn CreateForm(create: Post<CreateKey>, models: wire::Data<Vec<String>>) -> impl IntoView {
    let chosen = RwSignal::new(Vec::<String>::new());
    // A key made: the form is emptied for the next one.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::watch(
        move || create.version().get(),
        move |_, _, _| {
            if matches!(create.value().get_untracked(), Some(Ok(_)))
                && let Some(form) = form.get_untracked()
            {
                form.reset();
                chosen.set(Vec::new());
            }
        },
        false,
    );
    let error = move || create.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.param.as_deref() == Some(field))
                .map(|e| view! { <span class="field-error" role="alert">{error_text(&e)}</span> })
        }
    };
    const FIELDS: [&str; 7] = [
        "name",
        "expires_at",
        "spend_cap",
        "rpm",
        "tpm",
        "allowed_ips",
        "allowed_models",
    ];
    let other_error = move || {
        error()
            .filter(|e| !e.param.as_deref().is_some_and(|p| FIELDS.contains(&p)))
            .map(|e: AppError| error_text(&e))
    };
    view! {
        <section class="panel">
            <h2>{t!("keys.new")}</h2>
            <PostForm action=create node_ref=form>
                <div class="form-grid">
                    <label>
                        <span>{t!("keys.name")}</span>
                        <input name="name" required maxlength="64" data-testid="key-name"/>
                        {field_error("name")}
                    </label>
                    <label>
                        <span>{t!("keys.expires")}</span>
                        <input name="expires_on" type="date"/>
                        {field_error("expires_at")}
                    </label>
                    <label>
                        <span>{t!("keys.cap")}</span>
                        <input name="spend_cap" inputmode="decimal" placeholder="5.00" data-testid="key-cap"/>
                        {field_error("spend_cap")}
                    </label>
                    <label>
                        <span>{t!("keys.rpm")}</span>
                        <input name="rpm" type="number" min="1" data-testid="key-rpm"/>
                        {field_error("rpm")}
                    </label>
                    <label>
                        <span>{t!("keys.tpm")}</span>
                        <input name="tpm" type="number" min="1"/>
                        {field_error("tpm")}
                    </label>
                    <label class="wide">
                        <span>{t!("keys.ips")}</span>
                        <textarea name="ips" rows="2" placeholder="203.0.113.7, 10.0.0.0/8"></textarea>
                        {field_error("allowed_ips")}
                    </label>
                </div>
                <fieldset class="models">
                    <legend>{t!("keys.models")}</legend>
                    <input type="hidden" name="models" prop:value=move || chosen.get().join(",")/>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let list = models.await.unwrap_or_default();
                            if list.is_empty() {
                                return view! { <p class="muted">{t!("keys.no_models")}</p> }.into_any();
                            }
                            list.into_iter().map(|m| {
                                let name = m.clone();
                                view! {
                                    <label class="check">
                                        <input type="checkbox" on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            chosen.update(|c| {
                                                c.retain(|x| *x != name);
                                                if on { c.push(name.clone()); }
                                            });
                                        }/>
                                        {m}
                                    </label>
                                }
                            }).collect_view().into_any()
                        })}
                    </Transition>
                    <p class="muted small-print">{t!("keys.models_hint")}</p>
                    {field_error("allowed_models")}
                </fieldset>
                <button type="submit" class="primary" data-testid="create-key">{t!("keys.create")}</button>
                <Show when=move || other_error().is_some()>
                    <p class="error" role="alert">{other_error}</p>
                </Show>
            </PostForm>
        </section>
    }
}

#[component]
fn KeyTable(
    list: Vec<KeyView>,
    set_status: Post<SetKeyStatus>,
    delete: Post<DeleteKey>,
) -> impl IntoView {
    view! {
        <div class="scroll">
        <table data-testid="keys-table">
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
            <tbody>
                {list.into_iter().map(|k| view! { <KeyRow k set_status delete/> }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

#[component]
fn KeyRow(k: KeyView, set_status: Post<SetKeyStatus>, delete: Post<DeleteKey>) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let active = k.status == "active";
    // Spend is counted against a cap (a key without one spends from the balance alone).
    let spent = match k.spend_cap {
        Some(cap) => format!("{} / {}", k.spent, cap),
        None => t!("keys.no_cap").to_string(),
    };
    let limits = crate::components::limits_text(&k);
    let models = if k.allowed_models.is_empty() {
        t!("keys.all_models").to_string()
    } else {
        k.allowed_models.join(", ")
    };
    let id = k.id.to_string();
    let id2 = StoredValue::new(id.clone());
    view! {
        <tr data-testid="key-row">
            <td>{k.name.clone()}</td>
            <td><code>{k.prefix.clone()}</code></td>
            <td>
                <span class=if active { "badge active" } else { "badge disabled" }>
                    {if active { t!("status.active") } else { t!("status.disabled") }}
                </span>
            </td>
            <td>{models}</td>
            <td class="num">{spent}</td>
            <td>{limits}</td>
            <td>{k.expires_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td data-testid="last-used">{k.last_used_at.map_or_else(|| t!("keys.never").to_string(), when)}</td>
            <td class="actions">
                <PostForm action=set_status>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="active" value=if active { "false" } else { "true" }/>
                    <button type="submit" class="small">
                        {if active { t!("keys.disable") } else { t!("keys.enable") }}
                    </button>
                </PostForm>
                <Show
                    when=move || confirming.get()
                    fallback=move || view! {
                        <button type="button" class="small danger" on:click=move |_| confirming.set(true)>
                            {t!("keys.delete")}
                        </button>
                    }
                >
                    <PostForm action=delete>
                        <input type="hidden" name="id" value=id2.get_value()/>
                        <span class="confirm">{t!("keys.confirm_delete")}</span>
                        <button type="submit" class="small danger" data-testid="confirm-delete">{t!("keys.delete_yes")}</button>
                        <button type="button" class="small" on:click=move |_| confirming.set(false)>{t!("keys.delete_no")}</button>
                    </PostForm>
                </Show>
            </td>
        </tr>
    }
}
