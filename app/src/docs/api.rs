//! The API reference: the server's OpenAPI document (provided to the app as context by the
//! server, which generates it from its routes), reduced once to what the docs page shows and
//! drawn as HTML on the server, once per language.

use crate::error::AppError;
use leptos::prelude::*;
use types::docs::ApiDocPage;

/// The OpenAPI document as JSON, provided by the server.
#[cfg(feature = "ssr")]
#[derive(Clone, Copy)]
pub struct ApiDocument(pub &'static str);

/// The reference in the visitor's language, with their base URL. The document is reduced once
/// and drawn once per language; what a request adds is its base URL.
#[server(prefix = "/_sfn", endpoint = "docs")]
pub async fn api_reference() -> Result<ApiDocPage, AppError> {
    use crate::i18n::Lang;
    use std::sync::OnceLock;
    use types::docs::ApiDoc;
    static REDUCED: OnceLock<ApiDoc> = OnceLock::new();
    static HTML: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    let base_url = crate::ssr::site_url(&crate::ssr::services()?)?;
    let doc = match REDUCED.get() {
        Some(doc) => doc,
        None => {
            let text = use_context::<ApiDocument>().ok_or_else(|| {
                AppError::new(crate::ErrorKind::Internal, "the API document is missing")
            })?;
            let value: serde_json::Value = serde_json::from_str(text.0)
                .map_err(|e| AppError::new(crate::ErrorKind::Internal, e.to_string()))?;
            REDUCED.get_or_init(|| reduce::doc(&value))
        }
    };
    let lang = crate::ssr::request_lang();
    let html = HTML[usize::from(lang == Lang::Zh)].get_or_init(|| draw::reference(doc, lang));
    Ok(ApiDocPage {
        title: doc.title.clone(),
        version: doc.version.clone(),
        description: doc.description.clone(),
        base_url,
        html: html.clone(),
    })
}

/// The reference drawn as HTML on the server (see [`crate::components::Drawn`]).
#[cfg(feature = "ssr")]
mod draw {
    use crate::i18n::Lang;
    use crate::t;
    use leptos::prelude::*;
    use types::docs::{ApiDoc, DocOperation, DocSchema};

    pub fn reference(doc: &ApiDoc, lang: Lang) -> String {
        let mut tags: Vec<String> = Vec::new();
        for op in &doc.operations {
            if !tags.contains(&op.tag) {
                tags.push(op.tag.clone());
            }
        }
        crate::ssr::html(lang, || {
            let by_tag = tags.into_iter().map(|tag| {
                let ops: Vec<DocOperation> = doc
                    .operations
                    .iter()
                    .filter(|o| o.tag == tag)
                    .cloned()
                    .collect();
                view! {
                    <section class="panel docs-tag">
                        <h2>{tag}</h2>
                        {ops.into_iter().map(operation).collect_view()}
                    </section>
                }
            });
            view! {
                {by_tag.collect_view()}
                <section class="panel" id="schemas">
                    <h2>{t!("docs.schemas")}</h2>
                    {doc.schemas.iter().cloned().map(schema).collect_view()}
                </section>
            }
        })
    }

    fn schema(s: DocSchema) -> impl IntoView {
        let fields = (!s.fields.is_empty()).then(|| {
            view! {
                <div class="scroll">
                    <table class="doc-table">
                        <tbody>
                            {s.fields.into_iter().map(|f| view! {
                                <tr>
                                    <td><code>{f.name}</code>{f.required.then_some(" *")}</td>
                                    <td><code>{f.kind}</code></td>
                                    <td class="muted">{f.description}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }
        });
        let id = format!("schema-{}", s.name);
        view! {
            <details class="schema" id=id>
                <summary><code>{s.name}</code> " " <span class="muted">{s.description}</span></summary>
                {fields}
            </details>
        }
    }

    /// One operation; `data-search` is what the page's search looks in (path and summary).
    fn operation(op: DocOperation) -> impl IntoView {
        let method_class = format!("method {}", op.method.to_lowercase());
        let search = format!("{}\n{}", op.path, op.summary).to_lowercase();
        let auth = if op.auth.is_empty() {
            t!("docs.public").to_string()
        } else {
            op.auth.join(" / ")
        };
        let params = (!op.params.is_empty()).then(|| {
            view! {
                <h3>{t!("docs.params")}</h3>
                <div class="scroll">
                    <table class="doc-table">
                        <tbody>
                            {op.params.into_iter().map(|p| view! {
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
            }
        });
        view! {
            <details class="operation" data-testid="operation" data-search=search>
                <summary>
                    <span class=method_class>{op.method}</span>
                    <code class="path">{op.path}</code>
                    <span class="muted">{op.summary}</span>
                </summary>
                <p class="muted">{t!("docs.auth")} ": " {auth}</p>
                {params}
                {op.body.map(|b| view! { <p>{t!("docs.body")} ": " <code>{b}</code></p> })}
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
    }
}

#[cfg(feature = "ssr")]
mod reduce {
    use serde_json::Value;
    use types::docs::{ApiDoc, DocField, DocOperation, DocParam, DocResponse, DocSchema};

    /// A text of the document, without markdown's code ticks (the page sets no markdown).
    fn text(v: &Value) -> String {
        v.as_str().unwrap_or_default().replace('`', "")
    }

    /// A schema as a reader names it: `UserInfo`, `[UsageRow]`, `string?`, `integer`.
    pub fn kind(v: &Value) -> String {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            return r.rsplit('/').next().unwrap_or(r).to_string();
        }
        for combinator in ["oneOf", "anyOf", "allOf"] {
            if let Some(list) = v.get(combinator).and_then(Value::as_array) {
                let kinds: Vec<String> = list
                    .iter()
                    .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                    .map(kind)
                    .collect();
                let nullable = kinds.len() < list.len();
                let joined = kinds.join(" | ");
                return if nullable {
                    format!("{joined}?")
                } else {
                    joined
                };
            }
        }
        let (ty, nullable) = match v.get("type") {
            Some(Value::String(t)) => (t.clone(), false),
            Some(Value::Array(ts)) => {
                let named: Vec<&str> = ts
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null")
                    .collect();
                (named.join(" | "), named.len() < ts.len())
            }
            _ => ("object".to_string(), false),
        };
        let base = if ty == "array" {
            format!("[{}]", v.get("items").map(kind).unwrap_or_default())
        } else if let Some(values) = v.get("enum").and_then(Value::as_array) {
            values
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        } else {
            ty
        };
        if nullable { format!("{base}?") } else { base }
    }

    fn first_content_schema(v: &Value) -> Option<String> {
        let content = v.get("content")?.as_object()?;
        let kinds: Vec<String> = content
            .iter()
            .map(|(mime, c)| match c.get("schema") {
                Some(s) if content.len() > 1 => format!("{} ({mime})", kind(s)),
                Some(s) => kind(s),
                None => mime.clone(),
            })
            .collect();
        (!kinds.is_empty()).then(|| kinds.join(", "))
    }

    pub fn doc(v: &Value) -> ApiDoc {
        let mut operations = Vec::new();
        if let Some(paths) = v.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for (method, op) in item {
                    let auth = op
                        .get("security")
                        .and_then(Value::as_array)
                        .map(|reqs| {
                            reqs.iter()
                                .filter_map(Value::as_object)
                                .flat_map(|o| o.keys().cloned())
                                .collect()
                        })
                        .unwrap_or_default();
                    let params = op
                        .get("parameters")
                        .and_then(Value::as_array)
                        .map(|ps| {
                            ps.iter()
                                .map(|p| DocParam {
                                    name: text(&p["name"]),
                                    location: text(&p["in"]),
                                    required: p["required"].as_bool().unwrap_or(false),
                                    kind: p.get("schema").map(kind).unwrap_or_default(),
                                    description: text(&p["description"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let responses = op
                        .get("responses")
                        .and_then(Value::as_object)
                        .map(|rs| {
                            rs.iter()
                                .map(|(status, r)| DocResponse {
                                    status: status.clone(),
                                    description: text(&r["description"]),
                                    schema: first_content_schema(r),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    operations.push(DocOperation {
                        method: method.to_uppercase(),
                        path: path.clone(),
                        tag: op["tags"][0].as_str().unwrap_or("other").to_string(),
                        summary: text(&op["summary"]),
                        auth,
                        params,
                        body: op.get("requestBody").and_then(first_content_schema),
                        responses,
                    });
                }
            }
        }
        let mut schemas = Vec::new();
        if let Some(all) = v.pointer("/components/schemas").and_then(Value::as_object) {
            for (name, s) in all {
                let required: Vec<&str> = s["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let fields = s
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|props| {
                        props
                            .iter()
                            .map(|(field, p)| DocField {
                                name: field.clone(),
                                kind: kind(p),
                                required: required.contains(&field.as_str()),
                                description: text(&p["description"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let description = match (text(&s["description"]), s.get("properties")) {
                    (d, _) if !d.is_empty() => d,
                    (_, None) => kind(s),
                    _ => String::new(),
                };
                schemas.push(DocSchema {
                    name: name.clone(),
                    description,
                    fields,
                });
            }
        }
        ApiDoc {
            title: text(&v["info"]["title"]),
            version: text(&v["info"]["version"]),
            description: text(&v["info"]["description"]),
            operations,
            schemas,
        }
    }
}
