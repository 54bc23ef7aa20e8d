//! The API reference: the server's OpenAPI document (provided to the app as context by the
//! server, which generates it from its routes), reduced once to what the docs page shows.

use crate::error::AppError;
use leptos::prelude::*;
use types::docs::ApiDoc;

/// The OpenAPI document as JSON, provided by the server.
#[cfg(feature = "ssr")]
#[derive(Clone, Copy)]
pub struct ApiDocument(pub &'static str);

#[server(prefix = "/_sfn", endpoint = "docs")]
pub async fn api_reference() -> Result<ApiDoc, AppError> {
    use std::sync::OnceLock;
    static REDUCED: OnceLock<ApiDoc> = OnceLock::new();
    let base_url = crate::ssr::site_url(&crate::ssr::services()?)?;
    if let Some(doc) = REDUCED.get() {
        return Ok(ApiDoc {
            base_url,
            ..doc.clone()
        });
    }
    let text = use_context::<ApiDocument>()
        .ok_or_else(|| AppError::new(crate::ErrorKind::Internal, "the API document is missing"))?;
    let value: serde_json::Value = serde_json::from_str(text.0)
        .map_err(|e| AppError::new(crate::ErrorKind::Internal, e.to_string()))?;
    Ok(ApiDoc {
        base_url,
        ..REDUCED.get_or_init(|| reduce::doc(&value)).clone()
    })
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
            base_url: String::new(),
            title: text(&v["info"]["title"]),
            version: text(&v["info"]["version"]),
            description: text(&v["info"]["description"]),
            operations,
            schemas,
        }
    }
}
