use super::api::{CreateKey, DeleteKey, SetKeyStatus};
use super::read::{key_form, my_keys};
use crate::components::{DrawnPart, Guard, Post, elements, post_drawn};
use crate::error::AppError;
use crate::i18n::error_text;
use crate::t;
use crate::wire;
use leptos::ev::{MouseEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;

#[component]
pub fn KeysPage() -> impl IntoView {
    view! { <Keys/> }
}

/// The signed-in user's API keys: created (the secret shown once), disabled, enabled, deleted.
/// The server draws the table; its forms are posted here, and the table drawn again.
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
    // Made here, once per page: a view that runs again must not make its data again.
    let form = wire::resource(|| (), |_| key_form());
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
            <CreateForm create drawn=form/>
            <section class="panel">
                <h2>{t!("keys.yours")}</h2>
                <Show when=move || action_error().is_some()>
                    <p class="error" role="alert">{action_error}</p>
                </Show>
                <div on:submit=move |ev: SubmitEvent| post_drawn(&ev, &[set_status.into(), delete.into()])
                    on:click=|ev: MouseEvent| keep_key(ev.target())>
                    <DrawnPart part=keys/>
                </div>
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
                    <h2>{t!("keys.created")} " " <span class="muted">{k.name.clone()}</span></h2>
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

/// The creation form, drawn by the server with the models the user may call as boxes to tick:
/// posted here, the server's error placed beside the field it names (else under the form), the
/// form emptied once a key is made.
#[component]
fn CreateForm(create: Post<CreateKey>, drawn: wire::Data<String>) -> impl IntoView {
    let root = NodeRef::<leptos::html::Div>::new();
    // An error no field shows; at first, the one a form posted without JavaScript came back with.
    let other = RwSignal::new(
        create
            .value()
            .get_untracked()
            .and_then(Result::err)
            .map(|e| error_text(&e)),
    );
    Effect::watch(
        move || create.version().get(),
        move |_, _, _| {
            if let Some(root) = root.get_untracked() {
                other.set(show_answer(&root, create.value().get_untracked()));
            }
        },
        false,
    );
    let submit = move |ev: SubmitEvent| post_drawn(&ev, &[create.into()]);
    view! {
        <section class="panel">
            <h2>{t!("keys.new")}</h2>
            <div node_ref=root on:submit=submit>
                <DrawnPart part=drawn/>
            </div>
            <Show when=move || other.get().is_some()>
                <p class="error" role="alert">{move || other.get()}</p>
            </Show>
        </section>
    }
}

/// Shows the form's answer: each field's error beside it (the others cleared), the form
/// emptied after a success; the error no field shows.
fn show_answer(
    root: &web_sys::Element,
    answer: Option<Result<types::KeySecret, AppError>>,
) -> Option<String> {
    let error = answer.as_ref().and_then(|a| a.as_ref().err());
    let mut placed = false;
    for place in elements(root, "[data-error-for]") {
        let here = error
            .filter(|e| e.param.as_deref() == place.get_attribute("data-error-for").as_deref());
        placed |= here.is_some();
        place.set_text_content(here.map(|e| error_text(e)).as_deref());
        place.set_hidden(here.is_none());
    }
    if matches!(answer, Some(Ok(_)))
        && let Some(form) = root
            .query_selector("form")
            .ok()
            .flatten()
            .and_then(|f| f.dyn_into::<web_sys::HtmlFormElement>().ok())
    {
        form.reset();
    }
    error.filter(|_| !placed).map(|e| error_text(e))
}

/// "Cancel" on a key's deletion: the question folds away.
fn keep_key(target: Option<web_sys::EventTarget>) {
    let details = target
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .filter(|e| e.has_attribute("data-close"))
        .and_then(|e| e.closest("details").ok().flatten());
    if let Some(details) = details {
        let _ = details.remove_attribute("open");
    }
}
