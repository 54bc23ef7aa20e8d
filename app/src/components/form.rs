//! Forms that call a server function. The browser posts the form's own fields, URL-encoded, to
//! the server function's URL, exactly as it does without JavaScript; the server decodes them
//! (the one decoder of form fields), and the answer lands in the form's [`Post`].
//!
//! Leptos' `ActionForm` decodes the fields into the function's arguments in the browser and
//! encodes them again to send them: a form-field decoder and encoder per server function in
//! the wasm, for a round trip that changes nothing the server does not check again. Here the
//! only code per server function is reading its answer (the same JSON reader the page's data
//! uses); the form component itself is one function for every form.

use crate::AppError;
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::server::ServerActionError;
use leptos::server_fn::client::Client;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr, ServerFnUrlError};
use leptos::server_fn::request::ClientReq;
use leptos::server_fn::response::ClientRes;
use leptos::server_fn::{Bytes, ServerFn};
use serde::de::DeserializeOwned;

/// One server function called by forms: the last answer, how many answers came, and whether
/// one is on its way. `Copy`, like the signals it holds.
pub struct Post<S: ServerFn> {
    value: RwSignal<Option<Result<S::Output, AppError>>>,
    version: RwSignal<usize>,
    in_flight: RwSignal<usize>,
    send: Callback<Result<String, AppError>>,
}

impl<S: ServerFn> Clone for Post<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ServerFn> Copy for Post<S> {}

impl<S> Post<S>
where
    S: ServerFn<Error = AppError, InputStreamError = AppError, OutputStreamError = AppError>,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    /// A server function's forms; on a page rendered after one of them was posted without
    /// JavaScript and failed, it holds that error.
    pub fn new() -> Self {
        let value = RwSignal::new(returned_error(S::PATH).map(Err));
        let version = RwSignal::new(0);
        let in_flight = RwSignal::new(0);
        let send = Callback::new(move |body: Result<String, AppError>| {
            in_flight.update(|n| *n += 1);
            leptos::task::spawn_local(async move {
                let answer = match body {
                    Ok(body) => post::<S::Client>(S::PATH, body)
                        .await
                        .and_then(read::<S::Output>),
                    Err(e) => Err(e),
                };
                value.set(Some(answer));
                version.update(|n| *n += 1);
                in_flight.update(|n| *n -= 1);
            });
        });
        Post {
            value,
            version,
            in_flight,
            send,
        }
    }

    /// Shows the error a form posted without JavaScript came back with. [`Post::new`] does it
    /// for posts made by a page; a post made before the router reads the page's URL (the
    /// session's, made by the app) is told by the page that shows its form.
    pub fn recall(self) {
        if let Some(e) = returned_error(S::PATH) {
            self.value.set(Some(Err(e)));
        }
    }
}

impl<S> Default for Post<S>
where
    S: ServerFn<Error = AppError, InputStreamError = AppError, OutputStreamError = AppError>,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ServerFn> Post<S> {
    /// The last answer (`None` before the first, or once cleared).
    pub fn value(self) -> RwSignal<Option<Result<S::Output, AppError>>> {
        self.value
    }

    /// How many answers have come: pages reload their data when it changes.
    pub fn version(self) -> ReadSignal<usize> {
        self.version.read_only()
    }

    /// Whether an answer is on its way.
    pub fn pending(self) -> Signal<bool> {
        let in_flight = self.in_flight;
        Signal::derive(move || in_flight.get() > 0)
    }
}

/// What a [`PostForm`] needs of its [`Post`]: where to post, and who takes the answer.
#[derive(Clone, Copy)]
pub struct Target {
    path: &'static str,
    send: Callback<Result<String, AppError>>,
}

impl<S: ServerFn> From<Post<S>> for Target {
    fn from(post: Post<S>) -> Self {
        Target {
            path: S::PATH,
            send: post.send,
        }
    }
}

/// A form posting to a server function: natively without JavaScript (the server redirects
/// back), by `fetch` with it, the answer going to the action's [`Post`].
#[component]
pub fn PostForm(
    /// The server function's [`Post`].
    #[prop(into)]
    action: Target,
    /// Holds the `<form>` element (to reset it after a success).
    #[prop(optional)]
    node_ref: Option<NodeRef<html::Form>>,
    children: Children,
) -> impl IntoView {
    let on_submit = move |ev: SubmitEvent| {
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        (action.send).run(fields(&ev));
    };
    view! {
        <form action=action.path method="post" on:submit=on_submit node_ref=node_ref.unwrap_or_default()>
            {children()}
        </form>
    }
}

/// A form drawn by the server ([`crate::components::Drawn`]) that posts to one of `targets`'
/// server functions: sent by `fetch` as a [`PostForm`] is, its answer to that target's
/// [`Post`]. A form posting anywhere else is left to the browser.
pub fn post_drawn(ev: &SubmitEvent, targets: &[Target]) {
    use leptos::wasm_bindgen::JsCast;
    if ev.default_prevented() {
        return;
    }
    let action = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|form| form.get_attribute("action"));
    if let Some(target) = targets.iter().find(|t| action.as_deref() == Some(t.path)) {
        ev.prevent_default();
        (target.send).run(fields(ev));
    }
}

/// The error the server function at `path` answered a form posted without JavaScript: the
/// server sends the browser back to the form's page with it in the query, and the router
/// (server and browser alike) provides it to the page.
fn returned_error(path: &str) -> Option<AppError> {
    use_context::<ServerActionError>()
        .filter(|e| e.path() == path)
        .map(|e| ServerFnUrlError::<AppError>::decode_err(e.err()))
}

/// The submitted form's fields (and the submit button's, when it has a name), URL-encoded.
pub fn fields(ev: &SubmitEvent) -> Result<String, AppError> {
    let data = leptos::form::form_data_from_event(ev).map_err(|e| {
        AppError::from_server_fn_error(ServerFnErrorErr::Serialization(e.to_string()))
    })?;
    web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data)
        .map(|p| String::from(p.to_string()))
        .map_err(|_| {
            AppError::from_server_fn_error(ServerFnErrorErr::Serialization(
                "the form's fields cannot be encoded".into(),
            ))
        })
}

/// Posts URL-encoded fields to a server function, as server functions' own client does (one
/// instance for every function: they share the client), and follows a redirect it answers.
async fn post<C: Client<AppError>>(
    path: &'static str,
    body: String,
) -> Result<(u16, Bytes), AppError> {
    let req = <C::Request as ClientReq<AppError>>::try_new_post(
        path,
        "application/x-www-form-urlencoded",
        "application/json",
        body,
    )?;
    let res = C::send(req).await?;
    let status = res.status();
    let redirect = (300..=399).contains(&status) || res.has_redirect();
    let location = res.location();
    let bytes = res.try_into_bytes().await?;
    if redirect {
        leptos::server_fn::redirect::call_redirect_hook(&location);
    }
    Ok((status, bytes))
}

/// A server function's answer: its value as JSON, or (an error status) the error.
fn read<T: DeserializeOwned>((status, bytes): (u16, Bytes)) -> Result<T, AppError> {
    if (400..=599).contains(&status) {
        return Err(AppError::de(bytes));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(e.to_string()))
    })
}

/// A danger button that asks once more before it posts: a click shows `question` with a
/// confirm button (posting `fields` as hidden inputs to `action`) and a cancel button.
#[component]
pub fn ConfirmPost(
    #[prop(into)] action: Target,
    /// Hidden inputs: name, value.
    fields: Vec<(&'static str, String)>,
    /// The first button's text.
    label: &'static str,
    question: &'static str,
    /// `data-testid` of the first button.
    #[prop(optional)]
    testid: &'static str,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let fields = StoredValue::new(fields);
    view! {
        <Show
            when=move || confirming.get()
            fallback=move || view! {
                <button type="button" class="small danger" data-testid=testid on:click=move |_| confirming.set(true)>{label}</button>
            }
        >
            <PostForm action>
                {fields.get_value().into_iter().map(|(name, value)| view! { <input type="hidden" name=name value=value/> }).collect_view()}
                <span class="confirm">{question}</span>
                <button type="submit" class="small danger">{crate::t!("keys.delete_yes")}</button>
                <button type="button" class="small" on:click=move |_| confirming.set(false)>{crate::t!("keys.delete_no")}</button>
            </PostForm>
        </Show>
    }
}
