//! The audit log: every administrator's action, recorded here by the service functions that
//! make it, so the REST API and the console are recorded alike. An entry is written once the
//! change is made; should the write fail, the change stands (it is done) and the entry goes
//! to the structured log at error level, whole, so it is never lost.
//!
//! A component: it takes the database, never the `Services` context, so every domain may call it.

mod repo;

use crate::actor::Actor;
use crate::db::Db;
use crate::paging::{parse_id_cursor, parse_limit, slice};
use crate::{Error, now_ms};
use serde::Serialize;
use types::{AuditEntry, AuditQuery, Slice};

/// The name the admin API token acts under.
pub const ADMIN_TOKEN: &str = "admin-token";

/// A thing as JSON for an entry's before or after.
pub fn snapshot<T: Serialize>(thing: &T) -> Option<String> {
    serde_json::to_string(thing).ok()
}

/// Records `action` on `target` by `actor`.
pub async fn record(
    db: &Db,
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
    let entry = repo::NewEntry {
        at: now_ms(),
        actor_id,
        actor: actor_name,
        action,
        target: &target,
        before: before.as_deref(),
        after: after.as_deref(),
    };
    if let Err(e) = repo::insert(db, &entry).await {
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

/// A filter as typed: trimmed, and none when blank.
fn trimmed(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|a| !a.is_empty())
}

/// A keyset page of the audit log, newest first.
pub async fn list(db: &Db, actor: &Actor, q: &AuditQuery) -> Result<Slice<AuditEntry>, Error> {
    actor.require_admin()?;
    let before = parse_id_cursor(q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref())?;
    let action = trimmed(q.action.as_deref());
    if let Some(a) = action {
        Error::check_text("action", a, 64)?;
    }
    let who = trimmed(q.actor.as_deref());
    if let Some(w) = who {
        Error::check_text("actor", w, 64)?;
    }
    let target = trimmed(q.target.as_deref());
    if let Some(t) = target {
        Error::check_text("target", t, 300)?;
    }
    let filter = repo::Filter {
        action,
        actor: who,
        target,
        before: before.unwrap_or(i64::MAX),
    };
    let out = repo::page(db, &filter, limit + 1).await?;
    Ok(slice(out, limit, |e| e.id.to_string()))
}
