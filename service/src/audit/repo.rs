//! The audit log's SQL.

use crate::Error;
use crate::db::{Bind, Db, Text, Where};
use sqlx::Row as _;
use types::AuditEntry;

pub(super) struct NewEntry<'a> {
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

pub(super) async fn insert(db: &Db, e: &NewEntry<'_>) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query(&db.sql(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, before_json, after_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(e.at)
        .bind(e.actor_id)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target)
        .bind(e.before)
        .bind(e.after),
    )
    .await
    .map(|_| ())
}

/// What a page of the log is filtered by (already checked).
pub(super) struct Filter<'a> {
    /// `kind.verb` exactly, or a kind (every verb of it).
    pub action: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Entries with a smaller id only.
    pub before: i64,
}

/// Up to `limit` entries, newest first.
pub(super) async fn page(db: &Db, f: &Filter<'_>, limit: i64) -> Result<Vec<AuditEntry>, Error> {
    let mut w = Where::new(db);
    if let Some(action) = f.action {
        if action.contains('.') {
            w.and("action", "=", Bind::Text(action.to_string()));
        } else {
            // A kind: every `kind.verb`, as a range ('/' sorts right after '.'), so names with
            // `_` (a LIKE wildcard) match as written and the index serves it.
            w.and("action", ">", Bind::Text(format!("{action}.")));
            w.and("action", "<", Bind::Text(format!("{action}/")));
        }
    }
    if let Some(who) = f.actor {
        w.and("actor", "=", Bind::Text(who.to_string()));
    }
    if let Some(t) = f.target {
        w.and("target", "=", Bind::Text(t.to_string()));
    }
    w.and("id", "<", Bind::Int(f.before));
    let lim = w.param(Bind::Int(limit));
    let sql = format!(
        "SELECT id, at, actor_id, actor, action, target, before_json, after_json FROM audit_log{} \
         ORDER BY id DESC LIMIT {lim}",
        w.sql()
    );
    let rows = sqlx::query_with(&db.sql(&sql), w.args()?)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(AuditEntry {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            actor_id: r.try_get("actor_id")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            before: r.try_get::<Option<Text>, _>("before_json")?.map(|t| t.0),
            after: r.try_get::<Option<Text>, _>("after_json")?.map(|t| t.0),
        });
    }
    Ok(out)
}
