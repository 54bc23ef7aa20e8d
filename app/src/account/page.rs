use super::api::{ChangePassword, SetMyAlerts, SignOutEverywhere, my_alerts};
use crate::components::alerts::{AlertList, AlertTargets, SaveAlerts, successes};
use crate::components::{ErrorView, Guard, Post, PostForm};
use crate::i18n::switch::SetLanguage;
use crate::i18n::{Lang, error_text, lang};
use crate::t;
use crate::wire::Data;
use leptos::prelude::*;

#[component]
pub fn AccountPage() -> impl IntoView {
    // The page's data is made once, outside the guard's view (which may run again).
    let save = Post::<SetMyAlerts>::new();
    let saves = successes(save);
    let alerts = crate::wire::resource(move || saves.get(), |_| my_alerts());
    view! { <Guard page=move |_| view! { <Account save alerts/> }/> }
}

/// Password, alerts, sessions and language.
#[component]
fn Account(save: Post<SetMyAlerts>, alerts: Data<types::Alerts>) -> impl IntoView {
    let change = Post::<ChangePassword>::new();
    let everywhere = Post::<SignOutEverywhere>::new();
    let set_lang = Post::<SetLanguage>::new();
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::watch(
        move || change.version().get(),
        move |_, _, _| {
            if matches!(change.value().get_untracked(), Some(Ok(())))
                && let Some(form) = form.get_untracked()
            {
                form.reset();
            }
        },
        false,
    );
    // Signed out everywhere (or the language changed): a fresh page.
    Effect::watch(
        move || everywhere.version().get(),
        move |_, _, _| {
            if matches!(everywhere.value().get_untracked(), Some(Ok(()))) {
                let _ = window().location().set_href("/login");
            }
        },
        false,
    );
    Effect::watch(
        move || set_lang.version().get(),
        move |_, _, _| {
            if matches!(set_lang.value().get_untracked(), Some(Ok(()))) {
                let _ = window().location().reload();
            }
        },
        false,
    );
    let error = move || change.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.param.as_deref() == Some(field))
                .map(|e| view! { <span class="field-error" role="alert">{error_text(&e)}</span> })
        }
    };
    let other_error = move || {
        error()
            .filter(|e| {
                !matches!(
                    e.param.as_deref(),
                    Some("current_password" | "new_password")
                )
            })
            .map(|e| error_text(&e))
    };
    let changed = move || matches!(change.value().get(), Some(Ok(())));
    let current = lang();
    view! {
        <header class="page-head">
            <h1>{t!("account.title")}</h1>
        </header>
        <section class="panel">
            <h2>{t!("account.password")}</h2>
            <PostForm action=change node_ref=form>
                <div class="form-grid">
                    <label>
                        <span>{t!("account.current")}</span>
                        <input type="password" name="current_password" required autocomplete="current-password" data-testid="current-password"/>
                        {field_error("current_password")}
                    </label>
                    <label>
                        <span>{t!("account.new")}</span>
                        <input type="password" name="new_password" required minlength="8" autocomplete="new-password" data-testid="new-password"/>
                        {field_error("new_password")}
                    </label>
                </div>
                <p class="muted small-print">{t!("account.others_end")}</p>
                <button type="submit" class="primary" data-testid="change-password">{t!("account.change")}</button>
                <Show when=changed>
                    <p class="success" role="status" data-testid="password-changed">{t!("account.changed")}</p>
                </Show>
                <Show when=move || other_error().is_some()>
                    <p class="error" role="alert">{other_error}</p>
                </Show>
            </PostForm>
        </section>
        <Alerts save data=alerts/>
        <section class="panel">
            <h2>{t!("account.sessions")}</h2>
            <p class="muted">{t!("account.everywhere_text")}</p>
            <PostForm action=everywhere>
                <button type="submit" class="danger" data-testid="sign-out-everywhere">{t!("account.everywhere")}</button>
            </PostForm>
        </section>
        <section class="panel">
            <h2>{t!("nav.language")}</h2>
            <div class="segmented" role="group" aria-label=t!("nav.language")>
                {Lang::ALL.into_iter().map(|l| view! {
                    <PostForm action=set_lang>
                        <input type="hidden" name="lang" value=l.tag()/>
                        <button type="submit" class="small" lang=l.tag() aria-pressed=(l == current).to_string()>{l.name()}</button>
                    </PostForm>
                }).collect_view()}
            </div>
        </section>
    }
}

/// When the user is told of their balance and keys' caps, where, and the latest alerts.
#[component]
fn Alerts(save: Post<SetMyAlerts>, data: Data<types::Alerts>) -> impl IntoView {
    view! {
        <section class="panel" data-testid="alerts-panel">
            <h2>{t!("alerts.title")}</h2>
            <p class="muted">{t!("alerts.lead")}</p>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(a) => {
                            let s = a.settings;
                            view! {
                                <PostForm action=save>
                                    <div class="form-grid">
                                        <label>
                                            <span>{t!("alerts.balance_below")}</span>
                                            <input type="text" name="balance_below" inputmode="decimal" placeholder="5.00"
                                                value=s.balance_below.map(|c| c.to_usd_string()).unwrap_or_default() data-testid="alerts-balance"/>
                                        </label>
                                        <label>
                                            <span>{t!("alerts.key_cap_percent")}</span>
                                            <input type="number" name="key_cap_percent" min="1" max="100" step="1" placeholder="80"
                                                value=s.key_cap_percent.map(|p| p.to_string()).unwrap_or_default() data-testid="alerts-key-cap"/>
                                        </label>
                                        <AlertTargets s=s.clone()/>
                                    </div>
                                    <p class="muted small-print">{t!("alerts.once")}</p>
                                    <SaveAlerts answer=Signal::derive(move || save.value().get().map(|r| r.map(|_| ())))/>
                                </PostForm>
                                <AlertList recent=a.recent/>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
