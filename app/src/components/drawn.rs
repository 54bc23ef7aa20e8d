//! Parts of a page drawn as HTML on the server ([`crate::ssr::html`]) and shown as they are:
//! the API reference, the dashboard's chart and tables. The browser carries no code to read or
//! draw them; what it does with them (search, a range switch) works on their elements.

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;

/// The server's HTML, in a `div`: hydration keeps the server's nodes, a page reached in the
/// browser sets them from the same text.
#[component]
pub fn Drawn(
    html: String,
    #[prop(optional)] node_ref: NodeRef<leptos::html::Div>,
) -> impl IntoView {
    view! { <div node_ref=node_ref inner_html=html></div> }
}

/// A part of a page the server draws, read as a resource of its HTML: "loading" until it comes,
/// then shown (or the error).
#[component]
pub fn DrawnPart(part: crate::wire::Data<String>) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="muted">{crate::t!("app.loading")}</p> }>
            {move || Suspend::new(async move {
                match part.await {
                    Ok(html) => view! { <Drawn html/> }.into_any(),
                    Err(error) => view! { <super::ErrorView error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The elements under `root` that match `selector`.
pub fn elements(
    root: &web_sys::Element,
    selector: &str,
) -> impl Iterator<Item = web_sys::HtmlElement> {
    let list = root.query_selector_all(selector).ok();
    let len = list.as_ref().map_or(0, web_sys::NodeList::length);
    (0..len).filter_map(move |i| {
        list.as_ref()?
            .item(i)?
            .dyn_into::<web_sys::HtmlElement>()
            .ok()
    })
}
