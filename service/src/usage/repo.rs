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

/// One row's values in [`COLUMNS`] order: serialized as a JSON array for PostgreSQL, bound one
/// by one for SQLite.
#[derive(serde::Serialize)]
struct Row<'a>(
    &'a str,
    i64,
    Option<i64>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    &'a str,
    i64,
    Option<&'a str>,
    i64,
    Option<i64>,
    Option<&'a str>,
    i64,
);

impl<'a> From<&'a UsageRecord> for Row<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        Row(
            &r.request_id,
            r.user_id,
            r.key_id,
            r.key_prefix.as_deref(),
            &r.model,
            r.served_model.as_deref(),
            r.channel_id,
            i64::from(r.attempts),
            i64::from(r.stream),
            i(r.prompt_tokens),
            i(r.completion_tokens),
            i(r.cached_tokens),
            r.cost,
            r.price_version,
            r.usage_source.as_str(),
            i64::from(r.status),
            r.error_class.map(super::ErrorClass::as_str),
            i(r.latency_ms),
            r.ttft_ms.map(i),
            r.client_ip.as_deref(),
            r.created_at,
        )
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
                        .bind(r.0)
                        .bind(r.1)
                        .bind(r.2)
                        .bind(r.3)
                        .bind(r.4)
                        .bind(r.5)
                        .bind(r.6)
                        .bind(r.7)
                        .bind(r.8)
                        .bind(r.9)
                        .bind(r.10)
                        .bind(r.11)
                        .bind(r.12)
                        .bind(r.13)
                        .bind(r.14)
                        .bind(r.15)
                        .bind(r.16)
                        .bind(r.17)
                        .bind(r.18)
                        .bind(r.19)
                        .bind(r.20);
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
