//! SQL for usage rows: one batch per transaction, together with the keys' `last_used_at`.

use super::{BATCH, UsageRecord};
use crate::db::{Backend, Db};
use crate::now_ms;
use std::sync::LazyLock;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns of a usage row, in the order [`Row`] serializes them and SQLite binds them;
/// `true` marks an integer.
const COLUMNS: [(&str, bool); 21] = [
    ("request_id", false),
    ("user_id", true),
    ("key_id", true),
    ("key_prefix", false),
    ("model", false),
    ("served_model", false),
    ("channel_id", true),
    ("attempts", true),
    ("stream", true),
    ("prompt_tokens", true),
    ("completion_tokens", true),
    ("cached_tokens", true),
    ("cost", true),
    ("price_version", true),
    ("usage_source", false),
    ("status", true),
    ("error_class", false),
    ("latency_ms", true),
    ("ttft_ms", true),
    ("client_ip", false),
    ("created_at", true),
];

/// One row as stored: each field a column of [`COLUMNS`], in that order.
struct Row<'a> {
    request_id: &'a str,
    user_id: i64,
    key_id: Option<i64>,
    key_prefix: Option<&'a str>,
    model: &'a str,
    served_model: Option<&'a str>,
    channel_id: Option<i64>,
    attempts: i64,
    stream: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cost: i64,
    price_version: Option<i64>,
    usage_source: &'a str,
    status: i64,
    error_class: Option<&'static str>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    client_ip: Option<&'a str>,
    created_at: i64,
}

/// For PostgreSQL a row travels as a JSON array in [`COLUMNS`] order (half the bytes of an
/// object, serialized on the gateway's event loop); the statement reads it by position.
impl serde::Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple as _;
        let mut t = s.serialize_tuple(COLUMNS.len())?;
        t.serialize_element(self.request_id)?;
        t.serialize_element(&self.user_id)?;
        t.serialize_element(&self.key_id)?;
        t.serialize_element(&self.key_prefix)?;
        t.serialize_element(self.model)?;
        t.serialize_element(&self.served_model)?;
        t.serialize_element(&self.channel_id)?;
        t.serialize_element(&self.attempts)?;
        t.serialize_element(&self.stream)?;
        t.serialize_element(&self.prompt_tokens)?;
        t.serialize_element(&self.completion_tokens)?;
        t.serialize_element(&self.cached_tokens)?;
        t.serialize_element(&self.cost)?;
        t.serialize_element(&self.price_version)?;
        t.serialize_element(self.usage_source)?;
        t.serialize_element(&self.status)?;
        t.serialize_element(&self.error_class)?;
        t.serialize_element(&self.latency_ms)?;
        t.serialize_element(&self.ttft_ms)?;
        t.serialize_element(&self.client_ip)?;
        t.serialize_element(&self.created_at)?;
        t.end()
    }
}

impl<'a> From<&'a UsageRecord> for Row<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        Row {
            request_id: &r.request_id,
            user_id: r.user_id,
            key_id: r.key_id,
            key_prefix: r.key_prefix.as_deref(),
            model: &r.model,
            served_model: r.served_model.as_deref(),
            channel_id: r.channel_id,
            attempts: i64::from(r.attempts),
            stream: i64::from(r.stream),
            prompt_tokens: i(r.prompt_tokens),
            completion_tokens: i(r.completion_tokens),
            cached_tokens: i(r.cached_tokens),
            cost: r.cost,
            price_version: r.price_version,
            usage_source: r.usage_source.as_str(),
            status: i64::from(r.status),
            error_class: r.error_class.map(super::ErrorClass::as_str),
            latency_ms: i(r.latency_ms),
            ttft_ms: r.ttft_ms.map(i),
            client_ip: r.client_ip.as_deref(),
            created_at: r.created_at,
        }
    }
}

/// The columns' names, comma-separated.
fn column_list() -> String {
    COLUMNS.map(|(name, _)| name).join(", ")
}

/// PostgreSQL's batch insert: the rows travel as one JSON array of arrays in one parameter,
/// which the server unpacks. Encoding a batch as thousands of bound values kept the gateway's
/// event loop busy for about 0.6 ms per batch (up to 5 ms), delaying every request on that
/// core; serializing it is a quarter of that. One statement for any batch size, prepared once.
/// The parameter is read as `jsonb`, parsed once: as `json`, each of a row's 21 `->>` parsed the
/// row's text again, and PostgreSQL spent about 40% more CPU per request.
static POSTGRES_INSERT: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(n, (_, integer))| {
            if *integer {
                format!("(e->>{n})::bigint")
            } else {
                format!("e->>{n}")
            }
        })
        .collect();
    format!(
        "INSERT INTO usage_logs ({}) SELECT {} FROM jsonb_array_elements($1::jsonb) AS e",
        column_list(),
        values.join(", ")
    )
});

/// Inserts the rows and marks their keys used, in one transaction: a retry after a failure
/// never writes a row twice.
pub(super) async fn insert(db: &Db, rows: &[UsageRecord]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    match db.backend() {
        Backend::Postgres => {
            let json = serde_json::to_string(&rows.iter().map(Row::from).collect::<Vec<_>>())
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(&POSTGRES_INSERT)
                .bind(json)
                .execute(&mut *tx)
                .await?;
        }
        // SQLite binds values natively on its own thread, which is cheaper than unpacking JSON
        // there (its ->> parses the row again for every column).
        // Statements of a few sizes only (powers of two): each pooled connection caches the
        // statements it prepared, and one per batch size grew memory under load.
        Backend::Sqlite => {
            for chunk in crate::db::pow2_chunks(rows, BATCH) {
                let sql = format!(
                    "INSERT INTO usage_logs ({}) VALUES {}",
                    column_list(),
                    db.placeholders(chunk.len(), COLUMNS.len(), 0)
                );
                let mut q = sqlx::query(&sql);
                for r in chunk.iter().map(Row::from) {
                    q = q
                        .bind(r.request_id)
                        .bind(r.user_id)
                        .bind(r.key_id)
                        .bind(r.key_prefix)
                        .bind(r.model)
                        .bind(r.served_model)
                        .bind(r.channel_id)
                        .bind(r.attempts)
                        .bind(r.stream)
                        .bind(r.prompt_tokens)
                        .bind(r.completion_tokens)
                        .bind(r.cached_tokens)
                        .bind(r.cost)
                        .bind(r.price_version)
                        .bind(r.usage_source)
                        .bind(r.status)
                        .bind(r.error_class)
                        .bind(r.latency_ms)
                        .bind(r.ttft_ms)
                        .bind(r.client_ip)
                        .bind(r.created_at);
                }
                q.execute(&mut *tx).await?;
            }
        }
    }
    let mut keys: Vec<i64> = rows.iter().filter_map(|r| r.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    crate::keys::repo::touch(db, &mut tx, &keys, now_ms()).await?;
    tx.commit().await
}
