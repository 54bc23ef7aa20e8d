//! The API reference as the console's docs page shows it: the OpenAPI document, reduced on the
//! server to what a reader needs (no script or CDN renders it).

use serde::{Deserialize, Serialize};

/// What the docs page loads: the document's head, and its operations and schemas as HTML,
/// rendered on the server from [`ApiDoc`] (escaped by Leptos' renderer): the browser needs no
/// code to read or draw them, only to search them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDocPage {
    pub title: String,
    pub version: String,
    pub description: String,
    /// Where the reader's clients reach this gateway (`/v1` is the OpenAI base URL).
    pub base_url: String,
    /// The operations by tag, then the schemas: HTML, in the page's language.
    pub html: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDoc {
    pub title: String,
    pub version: String,
    pub description: String,
    pub operations: Vec<DocOperation>,
    pub schemas: Vec<DocSchema>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocOperation {
    pub method: String,
    pub path: String,
    pub tag: String,
    pub summary: String,
    /// The credentials it takes (`api_key`, `admin_token`, `session`); empty when public.
    pub auth: Vec<String>,
    pub params: Vec<DocParam>,
    /// The request body's schema, when it has one.
    pub body: Option<String>,
    pub responses: Vec<DocResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocParam {
    pub name: String,
    /// `path`, `query` or `header`.
    pub location: String,
    pub required: bool,
    pub kind: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocResponse {
    pub status: String,
    pub description: String,
    pub schema: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSchema {
    pub name: String,
    pub description: String,
    pub fields: Vec<DocField>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocField {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub description: String,
}
