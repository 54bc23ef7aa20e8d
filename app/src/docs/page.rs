use super::api::api_reference;
use crate::components::ErrorView;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::docs::{ApiDoc, DocOperation};

/// The API reference, rendered on the server from the OpenAPI document: public, offline, and
/// searchable by path or summary.
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
fn Reference(doc: ApiDoc) -> AnyView {
    let filter = RwSignal::new(String::new());
    let ops = StoredValue::new(doc.operations);
    let mut tags: Vec<String> = Vec::new();
    for op in ops.get_value() {
        if !tags.contains(&op.tag) {
            tags.push(op.tag.clone());
        }
    }
    let matches = move |op: &DocOperation| {
        let needle = filter.get().to_lowercase();
        needle.is_empty()
            || op.path.to_lowercase().contains(&needle)
            || op.summary.to_lowercase().contains(&needle)
    };
    view! {
        <p class="muted">{format!("{} {} — ", doc.title, doc.version)}{doc.description}</p>
        <p class="base-url">
            {t!("docs.base_url")} " " <code data-testid="docs-base-url">{doc.base_url.clone()}</code>
            " · " {t!("docs.sdk_base")} " " <code>{format!("{}/v1", doc.base_url)}</code>
        </p>
        <div class="table-head">
            <input type="search" class="docs-search" placeholder=t!("docs.search") aria-label=t!("docs.search")
                data-testid="docs-search"
                on:input=move |ev| filter.set(event_target_value(&ev))/>
        </div>
        {tags.into_iter().map(|tag| {
            let title = tag.clone();
            let tag_ops = move || ops.get_value().into_iter().filter(|o| o.tag == tag).filter(|o| matches(o)).collect::<Vec<_>>();
            view! {
                <section class="panel docs-tag">
                    <h2>{title}</h2>
                    <For each=tag_ops key=|o| format!("{} {}", o.method, o.path) let:op>
                        <Operation op/>
                    </For>
                </section>
            }
            .into_any()
        }).collect_view()}
        <section class="panel" id="schemas">
            <h2>{t!("docs.schemas")}</h2>
            {doc.schemas.into_iter().map(|s| view! {
                <details class="schema" id=format!("schema-{}", s.name)>
                    <summary><code>{s.name.clone()}</code> " " <span class="muted">{s.description.clone()}</span></summary>
                    <Show when={let empty = s.fields.is_empty(); move || !empty}>
                        <div class="scroll">
                            <table class="doc-table">
                                <tbody>
                                    {s.fields.clone().into_iter().map(|f| view! {
                                        <tr>
                                            <td><code>{f.name}</code>{f.required.then_some(" *")}</td>
                                            <td><code>{f.kind}</code></td>
                                            <td class="muted">{f.description}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </Show>
                </details>
            }
            .into_any()).collect_view()}
        </section>
    }
    .into_any()
}

#[component]
fn Operation(op: DocOperation) -> AnyView {
    let method_class = format!("method {}", op.method.to_lowercase());
    let auth = if op.auth.is_empty() {
        t!("docs.public").to_string()
    } else {
        op.auth.join(" / ")
    };
    view! {
        <details class="operation" data-testid="operation">
            <summary>
                <span class=method_class>{op.method.clone()}</span>
                <code class="path">{op.path.clone()}</code>
                <span class="muted">{op.summary.clone()}</span>
            </summary>
            <p class="muted">{t!("docs.auth")} ": " {auth}</p>
            <Show when={let empty = op.params.is_empty(); move || !empty}>
                <h3>{t!("docs.params")}</h3>
                <div class="scroll">
                    <table class="doc-table">
                        <tbody>
                            {op.params.clone().into_iter().map(|p| view! {
                                <tr>
                                    <td><code>{p.name}</code>{p.required.then_some(" *")}</td>
                                    <td class="muted">{p.location}</td>
                                    <td><code>{p.kind}</code></td>
                                    <td class="muted">{p.description}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </Show>
            {op.body.clone().map(|b| view! { <p>{t!("docs.body")} ": " <code>{b}</code></p> })}
            <h3>{t!("docs.responses")}</h3>
            <ul class="responses">
                {op.responses.into_iter().map(|r| view! {
                    <li>
                        <strong>{r.status}</strong> " " {r.description}
                        {r.schema.map(|s| view! { " — " <code>{s}</code> })}
                    </li>
                }).collect_view()}
            </ul>
        </details>
    }
    .into_any()
}
