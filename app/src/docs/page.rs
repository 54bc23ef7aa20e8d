use super::api::api_reference;
use crate::components::{Drawn, ErrorView, elements};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::docs::ApiDocPage;

/// The API reference, drawn on the server from the OpenAPI document: public, offline, and
/// searchable by path or summary. The browser carries the search, not the drawing.
#[component]
pub fn DocsPage() -> impl IntoView {
    let doc = wire::resource(|| (), |()| api_reference());
    view! {
        <header class="page-head">
            <h1>{t!("docs.title")}</h1>
            <p class="muted">
                {t!("docs.lead")} " "
                <a href="/api/openapi.json" data-testid="openapi-link">"openapi.json"</a>
            </p>
        </header>
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || Suspend::new(async move {
                match doc.await {
                    Ok(doc) => view! { <Reference doc/> }.into_any(),
                    Err(e) => view! { <ErrorView error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Reference(doc: ApiDocPage) -> impl IntoView {
    let body = NodeRef::<leptos::html::Div>::new();
    let search = move |ev| {
        if let Some(body) = body.get_untracked() {
            show_matching(&body, &event_target_value(&ev));
        }
    };
    view! {
        <p class="muted">{format!("{} {} — ", doc.title, doc.version)}{doc.description}</p>
        <p class="base-url">
            {t!("docs.base_url")} " " <code data-testid="docs-base-url">{doc.base_url.clone()}</code>
            " · " {t!("docs.sdk_base")} " " <code>{format!("{}/v1", doc.base_url)}</code>
        </p>
        <p class="base-url">
            {t!("docs.claude_code")} " "
            <code data-testid="docs-claude-code">{format!("ANTHROPIC_BASE_URL={} ANTHROPIC_AUTH_TOKEN=sk-… claude", doc.base_url)}</code>
        </p>
        <p class="base-url">
            {t!("docs.codex")} " "
            <code data-testid="docs-codex">{format!("[model_providers.tollgate] base_url = \"{}/v1\" env_key = \"TOLLGATE_API_KEY\" wire_api = \"responses\"", doc.base_url)}</code>
        </p>
        <div class="table-head">
            <input type="search" class="docs-search" placeholder=t!("docs.search") aria-label=t!("docs.search")
                data-testid="docs-search" on:input=search/>
        </div>
        <Drawn html=doc.html node_ref=body/>
    }
}

/// Shows the operations whose path or summary (their `data-search`) holds `needle`, in any
/// case, and the tags that still show one; hides the others.
fn show_matching(reference: &web_sys::HtmlElement, needle: &str) {
    let needle = needle.trim().to_lowercase();
    for tag in elements(reference, ".docs-tag") {
        let mut shown = false;
        for op in elements(&tag, ".operation") {
            let hit = op
                .get_attribute("data-search")
                .is_some_and(|text| text.contains(&needle));
            op.set_hidden(!hit);
            shown |= hit;
        }
        tag.set_hidden(!shown);
    }
}
