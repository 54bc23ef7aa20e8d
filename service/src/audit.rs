//! The audit log: every administrator's action, recorded here by the service functions that
//! make it, so the REST API and the console are recorded alike. An entry is written once the
//! change is made; should the write fail, the change stands (it is done) and the entry goes
//! to the structured log at error level, whole, so it is never lost.

use crate::accounts::Actor;
use crate::db::{Bind, Where};
use crate::paging::{parse_id_cursor, parse_limit, slice};
use crate::{Error, Services, now_ms};
use serde::Serialize;
use sqlx::Row as _;
use types::{AuditEntry, AuditQuery, Slice};

/// The name the admin API token acts under.
pub const ADMIN_TOKEN: &str = "admin-token";

/// A thing as JSON for an entry's before or after.
pub fn snapshot<T: Serialize>(thing: &T) -> Option<String> {
    serde_json::to_string(thing).ok()
}

/// Records `action` on `target` by `actor`.
pub async fn record(
    svc: &Services,
    actor: &Actor,
    action: &str,
    target: impl Into<String>,
    before: Option<String>,
    after: Option<String>,
) {
    let target = target.into();
    let (actor_id, actor_name) = match actor {
        Actor::User(u) => (Some(u.id), u.username.as_str()),
        Actor::AdminToken => (None, ADMIN_TOKEN),
    };
    let written = svc
        .db
        .write(
            sqlx::query(
                "INSERT INTO audit_log (at, actor_id, actor, action, target, before_json, after_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(now_ms())
            .bind(actor_id)
            .bind(actor_name)
            .bind(action)
            .bind(&target)
            .bind(before.as_deref())
            .bind(after.as_deref()),
        )
        .await;
    if let Err(e) = written {
        tracing::error!(
            error = %e,
            audit.actor = actor_name,
            audit.action = action,
            audit.target = %target,
            audit.before = ?before,
            audit.after = ?after,
            "audit entry not written to the database"
        );
    }
}

/// A keyset page of the audit log, newest first.
pub async fn list(
    svc: &Services,
    actor: &Actor,
    q: &AuditQuery,
) -> Result<Slice<AuditEntry>, Error> {
    actor.require_admin()?;
    let before = parse_id_cursor(q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref())?;
    let mut w = Where::new(&svc.db);
    if let Some(action) = q.action.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Error::check_text("action", action, 64)?;
        if action.contains('.') {
            w.and("action", "=", Bind::Text(action.to_string()));
        } else {
            // A kind: every `kind.verb`, as a range ('/' sorts right after '.'), so names with
            // `_` (a LIKE wildcard) match as written and the index serves it.
            w.and("action", ">", Bind::Text(format!("{action}.")));
            w.and("action", "<", Bind::Text(format!("{action}/")));
        }
    }
    if let Some(who) = q.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Error::check_text("actor", who, 64)?;
        w.and("actor", "=", Bind::Text(who.to_string()));
    }
    if let Some(t) = q.target.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Error::check_text("target", t, 300)?;
        w.and("target", "=", Bind::Text(t.to_string()));
    }
    w.and("id", "<", Bind::Int(before.unwrap_or(i64::MAX)));
    let lim = w.param(Bind::Int(limit + 1));
    let sql = format!(
        "SELECT id, at, actor_id, actor, action, target, before_json, after_json FROM audit_log{} \
         ORDER BY id DESC LIMIT {lim}",
        w.sql()
    );
    let rows = sqlx::query_with(&sql, w.args()?)
        .fetch_all(svc.db.pool())
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
            before: r.try_get("before_json")?,
            after: r.try_get("after_json")?,
        });
    }
    Ok(slice(out, limit, |e| e.id.to_string()))
}
