//! The alerts' SQL: settings per scope, the last verdict per subject (whose conditional update
//! raises an alert), the raised alerts and their deliveries (the outbox).

use crate::db::{Db, WriteTx};
use sqlx::Row as _;
use types::{AlertDelivery, AlertKind, AlertTarget, AlertView, Credits, DeliveryStatus};

/// A scope's settings as stored (the secret included: it signs deliveries).
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub email: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub balance_below: Option<i64>,
    pub key_cap_percent: Option<i64>,
    pub channels: bool,
    pub ledger_drift: bool,
}

const SETTINGS: &str = "SELECT email, webhook_url, webhook_secret, balance_below, \
     key_cap_percent, channels, ledger_drift FROM alert_settings WHERE scope = $1";

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        email: row.try_get(0)?,
        webhook_url: row.try_get(1)?,
        webhook_secret: row.try_get(2)?,
        balance_below: row.try_get(3)?,
        key_cap_percent: row.try_get(4)?,
        channels: row.try_get::<i64, _>(5)? != 0,
        ledger_drift: row.try_get::<i64, _>(6)? != 0,
    })
}

pub async fn settings(db: &Db, scope: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query(&db.sql(SETTINGS))
        .bind(scope)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

async fn settings_in(tx: &mut WriteTx, scope: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query(&tx.sql(SETTINGS))
        .bind(scope)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

/// Replaces a scope's settings; for a user, forgets the verdicts on their balance and keys, so
/// that the new thresholds are judged afresh (a balance already below a new threshold is told).
pub async fn save(
    db: &Db,
    scope: &str,
    user_id: Option<i64>,
    s: &Stored,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        &db.sql("INSERT INTO alert_settings (scope, user_id, email, webhook_url, webhook_secret, \
         balance_below, key_cap_percent, channels, ledger_drift, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (scope) DO UPDATE SET email = excluded.email, webhook_url = excluded.webhook_url, \
         webhook_secret = excluded.webhook_secret, balance_below = excluded.balance_below, \
         key_cap_percent = excluded.key_cap_percent, channels = excluded.channels, \
         ledger_drift = excluded.ledger_drift, updated_at = excluded.updated_at"),
    )
    .bind(scope)
    .bind(user_id)
    .bind(s.email.as_deref())
    .bind(s.webhook_url.as_deref())
    .bind(s.webhook_secret.as_deref())
    .bind(s.balance_below)
    .bind(s.key_cap_percent)
    .bind(i64::from(s.channels))
    .bind(i64::from(s.ledger_drift))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some(user) = user_id {
        sqlx::query(&db.sql("DELETE FROM alert_state WHERE user_id = $1"))
            .bind(user)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The verdicts stored for subjects starting with `prefix` (`balance:`, `key:`).
pub async fn verdicts(
    db: &Db,
    prefix: &str,
) -> Result<std::collections::HashMap<String, bool>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as(&db.sql("SELECT subject, crossed FROM alert_state WHERE subject LIKE $1"))
            .bind(format!("{prefix}%"))
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(|(s, c)| (s, c != 0)).collect())
}

/// Every user's balance threshold with their balance (active, undeleted users).
pub async fn balances(db: &Db) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(&db.sql(
        "SELECT s.user_id, u.balance, s.balance_below FROM alert_settings s \
         JOIN users u ON u.id = s.user_id \
         WHERE s.balance_below IS NOT NULL AND u.deleted_at IS NULL AND u.status = 'active'",
    ))
    .fetch_all(db.pool())
    .await
}

/// A capped key whose owner watches caps.
pub struct CappedKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub cap: i64,
    pub spent: i64,
    pub percent: i64,
}

/// Every active capped key of an active user who watches caps.
pub async fn capped_keys(db: &Db) -> Result<Vec<CappedKey>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(
        "SELECT k.id, k.user_id, k.name, k.prefix, k.spend_cap, k.spent, s.key_cap_percent \
         FROM api_keys k JOIN alert_settings s ON s.user_id = k.user_id \
         JOIN users u ON u.id = k.user_id \
         WHERE s.key_cap_percent IS NOT NULL AND k.spend_cap IS NOT NULL AND k.spend_cap > 0 \
         AND k.status = 'active' AND u.deleted_at IS NULL AND u.status = 'active'",
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CappedKey {
                id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                name: r.try_get(2)?,
                prefix: r.try_get(3)?,
                cap: r.try_get(4)?,
                spent: r.try_get(5)?,
                percent: r.try_get(6)?,
            })
        })
        .collect()
}

/// An alert to raise when a subject's verdict changes.
pub struct Raised<'a> {
    pub event_id: String,
    pub scope: &'a str,
    pub user_id: Option<i64>,
    pub kind: AlertKind,
    pub name: Option<&'a str>,
    pub amount: Option<i64>,
    pub threshold: Option<i64>,
    pub message: String,
}

/// A subject's verdict, seen at `now`; `smtp`: e-mail can be sent.
#[derive(Clone, Copy)]
pub struct Verdict<'a> {
    pub subject: &'a str,
    pub user_id: Option<i64>,
    pub crossed: bool,
    pub now: i64,
    pub smtp: bool,
}

/// Records `crossed` as the subject's verdict. When it changes it (the first verdict counts as
/// a change only when crossed), `raise` names the alert to raise, which is stored with a
/// delivery to each target the scope's settings name and `wants` accepts, in the same
/// transaction: one alert per change, whoever else sees the same change. Returns whether an
/// alert was raised.
pub async fn observe<'a>(
    db: &Db,
    v: &Verdict<'_>,
    raise: impl FnOnce(bool) -> Option<Raised<'a>>,
    wants: impl FnOnce(&Stored, AlertKind) -> bool,
) -> Result<bool, sqlx::Error> {
    let Verdict {
        subject,
        user_id,
        crossed,
        now,
        smtp,
    } = *v;
    let mut tx = db.begin_write().await?;
    let prev: Option<i64> =
        sqlx::query_scalar(&db.sql("SELECT crossed FROM alert_state WHERE subject = $1"))
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
    let changed = match prev {
        Some(p) if (p != 0) == crossed => false,
        Some(p) => {
            sqlx::query(&db.sql(
                "UPDATE alert_state SET crossed = $1, changed_at = $2 \
                 WHERE subject = $3 AND crossed = $4",
            ))
            .bind(i64::from(crossed))
            .bind(now)
            .bind(subject)
            .bind(p)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        }
        None => {
            let n = sqlx::query(&db.sql(
                "INSERT INTO alert_state (subject, user_id, crossed, changed_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (subject) DO NOTHING",
            ))
            .bind(subject)
            .bind(user_id)
            .bind(i64::from(crossed))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            n == 1 && crossed
        }
    };
    if !changed {
        tx.commit().await?;
        return Ok(false);
    }
    let Some(alert) = raise(crossed) else {
        tx.commit().await?;
        return Ok(false);
    };
    let id = Db::insert_id(
        db.backend(),
        sqlx::query(&db.sql(
            "INSERT INTO alerts (event_id, scope, user_id, kind, name, amount, threshold, message, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        ))
        .bind(&alert.event_id)
        .bind(alert.scope)
        .bind(alert.user_id)
        .bind(alert.kind.as_str())
        .bind(alert.name)
        .bind(alert.amount)
        .bind(alert.threshold)
        .bind(&alert.message)
        .bind(now),
        &mut *tx,
    )
    .await?;
    let settings = settings_in(&mut tx, alert.scope).await?.unwrap_or_default();
    if wants(&settings, alert.kind) {
        let targets = [
            (AlertTarget::Webhook, settings.webhook_url.as_deref(), true),
            (AlertTarget::Email, settings.email.as_deref(), smtp),
        ];
        for (target, address, usable) in targets {
            if let (Some(address), true) = (address, usable) {
                sqlx::query(&db.sql(
                    "INSERT INTO alert_deliveries (alert_id, target, address, next_attempt_at) \
                     VALUES ($1, $2, $3, $4)",
                ))
                .bind(id)
                .bind(target.as_str())
                .bind(address)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

fn target_of(name: &str) -> AlertTarget {
    if name == AlertTarget::Email.as_str() {
        AlertTarget::Email
    } else {
        AlertTarget::Webhook
    }
}

fn status_of(s: &str) -> DeliveryStatus {
    match s {
        "sent" => DeliveryStatus::Sent,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Pending,
    }
}

/// An alert's own columns, in this order, from `alerts a`.
const ALERT: &str =
    "a.event_id, a.user_id, a.kind, a.name, a.amount, a.threshold, a.message, a.created_at";

/// The alert read from `ALERT`'s columns starting at `at` (deliveries left empty); `None` for
/// a kind this version does not know.
fn alert_at(r: &sqlx::any::AnyRow, at: usize) -> Result<Option<AlertView>, sqlx::Error> {
    let kind: String = r.try_get(at + 2)?;
    let Some(kind) = AlertKind::parse(&kind) else {
        return Ok(None);
    };
    Ok(Some(AlertView {
        id: r.try_get(at)?,
        kind,
        user_id: r.try_get(at + 1)?,
        name: r.try_get(at + 3)?,
        amount: r
            .try_get::<Option<i64>, _>(at + 4)?
            .map(Credits::from_units),
        threshold: r
            .try_get::<Option<i64>, _>(at + 5)?
            .map(Credits::from_units),
        message: r.try_get(at + 6)?,
        created_at: r.try_get(at + 7)?,
        deliveries: Vec::new(),
    }))
}

/// The newest alerts of a scope, with their deliveries (two statements whatever the count).
pub async fn recent(db: &Db, scope: &str, limit: i64) -> Result<Vec<AlertView>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(&format!(
        "SELECT a.id, {ALERT} FROM alerts a WHERE a.scope = $1 ORDER BY a.id DESC LIMIT $2"
    )))
    .bind(scope)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<(i64, AlertView)> = Vec::with_capacity(rows.len());
    for r in &rows {
        if let Some(alert) = alert_at(r, 1)? {
            out.push((r.try_get(0)?, alert));
        }
    }
    let Some(oldest) = out.last().map(|(id, _)| *id) else {
        return Ok(Vec::new());
    };
    let deliveries = sqlx::query(&db.sql(
        "SELECT d.alert_id, d.target, d.address, d.status, d.attempts, d.last_error, d.sent_at \
         FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
         WHERE a.scope = $1 AND a.id >= $2 ORDER BY d.id",
    ))
    .bind(scope)
    .bind(oldest)
    .fetch_all(db.pool())
    .await?;
    for d in &deliveries {
        let alert_id: i64 = d.try_get(0)?;
        let Some((_, alert)) = out.iter_mut().find(|(id, _)| *id == alert_id) else {
            continue;
        };
        let target: String = d.try_get(1)?;
        let status: String = d.try_get(3)?;
        alert.deliveries.push(AlertDelivery {
            target: target_of(&target),
            address: d.try_get(2)?,
            status: status_of(&status),
            attempts: u32::try_from(d.try_get::<i64, _>(4)?).unwrap_or(u32::MAX),
            last_error: d.try_get(5)?,
            sent_at: d.try_get(6)?,
        });
    }
    Ok(out.into_iter().map(|(_, a)| a).collect())
}

/// A delivery that is due, with what it sends.
pub struct Due {
    pub id: i64,
    pub attempts: i64,
    pub target: AlertTarget,
    pub address: String,
    pub scope: String,
    pub alert: AlertView,
}

/// Deliveries whose next attempt is due, oldest first.
pub async fn due(db: &Db, now: i64, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query(&db.sql(&format!(
        "SELECT d.id, d.attempts, d.target, d.address, a.scope, {ALERT} \
         FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(alert) = alert_at(r, 5)? else {
            continue;
        };
        let target: String = r.try_get(2)?;
        out.push(Due {
            id: r.try_get(0)?,
            attempts: r.try_get(1)?,
            target: target_of(&target),
            address: r.try_get(3)?,
            scope: r.try_get(4)?,
            alert,
        });
    }
    Ok(out)
}

/// Takes attempt `attempts + 1` of a pending delivery (no other runner takes the same one);
/// until `retry_at` nobody else will try it. False when it was taken or finished meanwhile.
pub async fn take(db: &Db, id: i64, attempts: i64, retry_at: i64) -> Result<bool, sqlx::Error> {
    Ok(db
        .write(
            sqlx::query(&db.sql(
                "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
                 WHERE id = $2 AND attempts = $3 AND status = 'pending'",
            ))
            .bind(retry_at)
            .bind(id)
            .bind(attempts),
        )
        .await?
        == 1)
}

/// Records how an attempt ended: sent (no error), or its error and when to try again (`None`:
/// given up).
pub async fn finish(
    db: &Db,
    id: i64,
    error: Option<&str>,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (status, next) = match (error, retry_at) {
        (None, _) => ("sent", None),
        (Some(_), None) => ("failed", None),
        (Some(_), Some(at)) => ("pending", Some(at)),
    };
    let sent_at = (status == "sent").then_some(now);
    db.write(
        sqlx::query(&db.sql(
            "UPDATE alert_deliveries SET status = $1, last_error = $2, sent_at = $3, \
             next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $5",
        ))
        .bind(status)
        .bind(error)
        .bind(sent_at)
        .bind(next)
        .bind(id),
    )
    .await?;
    Ok(())
}

/// Removes alerts raised before `before`, with their deliveries.
pub async fn purge(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(&db.sql(
        "DELETE FROM alert_deliveries WHERE alert_id IN \
         (SELECT id FROM alerts WHERE created_at < $1)",
    ))
    .bind(before)
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query(&db.sql("DELETE FROM alerts WHERE created_at < $1"))
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}
