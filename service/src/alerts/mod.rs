//! Alerts: a user is told when their balance falls below an amount and when a key has spent a
//! percent of its cap; an administrator when a channel fails its probe (and answers again) and
//! when the ledger check finds drift (and agrees again). By webhook (signed, see [`send`]) and
//! by e-mail (`alerts.smtp`).
//!
//! One alert per crossing: each watched subject keeps its last verdict, and an alert is raised
//! only by the conditional update that changes it, in the transaction that stores the alert and
//! its deliveries (an outbox). The verdicts are judged by jobs, which run on the one instance
//! holding their lease: `alerts` (balances and caps, then the deliveries that are due),
//! `channel_probe` and `ledger_check`. A delivery's attempt is taken by a conditional update
//! before it is sent; a failed one is retried with doubling waits up to `alerts.max_attempts`.
//! A receiver may still see an event twice (an answer lost after it was received): the event id
//! tells it.

mod repo;
pub mod send;

use crate::actor::Actor;
use crate::{Error, Services, now_ms};
use repo::{Raised, Stored, Verdict};
use types::{AlertKind, AlertSettings, Alerts, Credits};

/// The alerts a settings page lists.
const RECENT: i64 = 20;
/// Deliveries sent per run of the job (the rest wait for the next).
const BATCH: i64 = 200;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;

const SYSTEM: &str = "system";

fn user_scope(user: i64) -> String {
    format!("user:{user}")
}

/// The signed-in user's settings and latest alerts.
pub async fn mine(svc: &Services, actor: &Actor) -> Result<Alerts, Error> {
    let user = actor.user_id().ok_or(Error::Forbidden("users only"))?;
    view(svc, &user_scope(user)).await
}

/// The system's settings and latest alerts (administrators).
pub async fn system(svc: &Services, actor: &Actor) -> Result<Alerts, Error> {
    actor.require_admin()?;
    view(svc, SYSTEM).await
}

async fn view(svc: &Services, scope: &str) -> Result<Alerts, Error> {
    let stored = repo::settings(&svc.db, scope).await?.unwrap_or_default();
    Ok(Alerts {
        settings: shown(svc, &stored),
        recent: repo::recent(&svc.db, scope, RECENT).await?,
    })
}

fn shown(svc: &Services, s: &Stored) -> AlertSettings {
    AlertSettings {
        email: s.email.clone(),
        webhook_url: s.webhook_url.clone(),
        webhook_secret: None,
        webhook_secret_set: s.webhook_secret.is_some(),
        balance_below: s.balance_below.map(Credits::from_units),
        key_cap_percent: s.key_cap_percent.and_then(|p| u32::try_from(p).ok()),
        channels: s.channels,
        ledger_drift: s.ledger_drift,
        email_available: svc.config.alerts.smtp.enabled(),
    }
}

/// Sets the signed-in user's thresholds and targets; their balance and keys are judged afresh
/// at the next run of the alerts job.
pub async fn set_mine(
    svc: &Services,
    actor: &Actor,
    input: AlertSettings,
) -> Result<Alerts, Error> {
    let user = actor.user_id().ok_or(Error::Forbidden("users only"))?;
    if input.channels {
        return Err(Error::invalid(
            "channels",
            "channel alerts are the system's: an administrator sets them on the overview",
        ));
    }
    if input.ledger_drift {
        return Err(Error::invalid(
            "ledger_drift",
            "ledger alerts are the system's: an administrator sets them on the overview",
        ));
    }
    if let Some(b) = input.balance_below
        && b.units() <= 0
    {
        return Err(Error::invalid("balance_below", "must be more than 0"));
    }
    if let Some(p) = input.key_cap_percent
        && !(1..=100).contains(&p)
    {
        return Err(Error::invalid(
            "key_cap_percent",
            "must be between 1 and 100",
        ));
    }
    let scope = user_scope(user);
    let stored = checked(svc, &scope, &input).await?;
    repo::save(&svc.db, &scope, Some(user), &stored, now_ms()).await?;
    tracing::info!(user.id = user, "alert settings saved");
    view(svc, &scope).await
}

/// Sets the system's alerts (administrators).
pub async fn set_system(
    svc: &Services,
    actor: &Actor,
    input: AlertSettings,
) -> Result<Alerts, Error> {
    actor.require_admin()?;
    if input.balance_below.is_some() {
        return Err(Error::invalid(
            "balance_below",
            "a balance threshold is a user's: each user sets it on their account page",
        ));
    }
    if input.key_cap_percent.is_some() {
        return Err(Error::invalid(
            "key_cap_percent",
            "a key-cap threshold is a user's: each user sets it on their account page",
        ));
    }
    let stored = checked(svc, SYSTEM, &input).await?;
    repo::save(&svc.db, SYSTEM, None, &stored, now_ms()).await?;
    let after = serde_json::json!({
        "channels": stored.channels,
        "ledger_drift": stored.ledger_drift,
        "email": stored.email,
        "webhook_url": stored.webhook_url,
    })
    .to_string();
    crate::audit::record(&svc.db, actor, "alerts.set", SYSTEM, None, Some(after)).await;
    view(svc, SYSTEM).await
}

/// The targets of `input`, checked, with the secret kept when none is given.
async fn checked(svc: &Services, scope: &str, input: &AlertSettings) -> Result<Stored, Error> {
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(address) => {
            if !svc.config.alerts.smtp.enabled() {
                return Err(Error::invalid(
                    "email",
                    "this gateway sends no e-mail (the operator has not set alerts.smtp)",
                ));
            }
            if address.len() > 254
                || address.contains(['<', '>', ',', ' '])
                || address.parse::<lettre::Address>().is_err()
            {
                return Err(Error::invalid("email", "must be one e-mail address"));
            }
            Some(address.to_string())
        }
    };
    let webhook_url = match input.webhook_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => Some(webhook_url(url, svc.config.alerts.allow_private_webhooks)?),
    };
    let before = repo::settings(&svc.db, scope).await?.unwrap_or_default();
    let webhook_secret = match (&webhook_url, input.webhook_secret.as_deref()) {
        (None, _) => None,
        (Some(_), Some(secret)) => {
            if !(16..=256).contains(&secret.len())
                || !secret.bytes().all(|b| (b'!'..=b'~').contains(&b))
            {
                return Err(Error::invalid(
                    "webhook_secret",
                    "must be 16 to 256 printable characters without spaces",
                ));
            }
            Some(secret.to_string())
        }
        (Some(_), None) => Some(before.webhook_secret.ok_or_else(|| {
            Error::invalid(
                "webhook_secret",
                "required with a webhook: it signs every delivery",
            )
        })?),
    };
    Ok(Stored {
        email,
        webhook_url,
        webhook_secret,
        balance_below: input.balance_below.map(Credits::units),
        key_cap_percent: input.key_cap_percent.map(i64::from),
        channels: input.channels,
        ledger_drift: input.ledger_drift,
    })
}

/// A webhook's URL: http(s), a host, at most 2,000 characters, not a private or metadata
/// address written as one (names are checked on what they resolve to, at each attempt).
fn webhook_url(url: &str, allow_private: bool) -> Result<String, Error> {
    let bad = |reason: &str| Error::invalid("webhook_url", reason.to_string());
    if url.len() > 2000 {
        return Err(bad("must be at most 2000 characters"));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| bad("must be an http:// or https:// URL with a host"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad("must be an http:// or https:// URL with a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "must not carry credentials; the signature authenticates",
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        && let Some(why) = send::refused(ip, allow_private)
    {
        return Err(bad(&format!("is {why}")));
    }
    Ok(parsed.to_string())
}

/// Judges every watched balance and capped key; raises the alerts of the ones that crossed.
/// Returns how many were raised.
pub async fn check_thresholds(svc: &Services) -> Result<usize, Error> {
    let now = now_ms();
    let smtp = svc.config.alerts.smtp.enabled();
    let mut raised = 0;
    let seen = repo::verdicts(&svc.db, "balance:").await?;
    for (user, balance, below) in repo::balances(&svc.db).await? {
        let subject = format!("balance:{user}");
        let crossed = balance < below;
        if seen.get(&subject) == Some(&crossed) {
            continue;
        }
        let scope = user_scope(user);
        let verdict = Verdict {
            subject: &subject,
            user_id: Some(user),
            crossed,
            now,
            smtp,
        };
        let message = format!(
            "Your balance is {}, below your alert threshold of {}.",
            Credits::from_units(balance),
            Credits::from_units(below)
        );
        let raise = |crossed: bool| {
            crossed.then(|| Raised {
                event_id: event_id(),
                scope: &scope,
                user_id: Some(user),
                kind: AlertKind::BalanceLow,
                name: None,
                amount: Some(balance),
                threshold: Some(below),
                message,
            })
        };
        if repo::observe(&svc.db, &verdict, raise, |_, _| true).await? {
            raised += 1;
        }
    }
    let seen = repo::verdicts(&svc.db, "key:").await?;
    for key in repo::capped_keys(&svc.db).await? {
        let subject = format!("key:{}", key.id);
        // Spent at least `percent` of the cap, in integers.
        let crossed = i128::from(key.spent) * 100 >= i128::from(key.cap) * i128::from(key.percent);
        if seen.get(&subject) == Some(&crossed) {
            continue;
        }
        let scope = user_scope(key.user_id);
        let verdict = Verdict {
            subject: &subject,
            user_id: Some(key.user_id),
            crossed,
            now,
            smtp,
        };
        let message = format!(
            "Key \"{}\" ({}) has spent {} of its {} spending cap, {}% or more of it.",
            key.name,
            key.prefix,
            Credits::from_units(key.spent),
            Credits::from_units(key.cap),
            key.percent
        );
        let raise = |crossed: bool| {
            crossed.then(|| Raised {
                event_id: event_id(),
                scope: &scope,
                user_id: Some(key.user_id),
                kind: AlertKind::KeyCap,
                name: Some(&key.name),
                amount: Some(key.spent),
                threshold: Some(key.cap),
                message,
            })
        };
        if repo::observe(&svc.db, &verdict, raise, |_, _| true).await? {
            raised += 1;
        }
    }
    Ok(raised)
}

/// A channel's probe verdict (the probe job): down raises `channel.down`, up again
/// `channel.up`; sent when the system's settings watch channels.
pub async fn channel_probed(
    svc: &Services,
    channel_id: i64,
    name: &str,
    ok: bool,
    error: Option<&str>,
) -> Result<bool, Error> {
    let subject = format!("channel:{channel_id}");
    let verdict = Verdict {
        subject: &subject,
        user_id: None,
        crossed: !ok,
        now: now_ms(),
        smtp: svc.config.alerts.smtp.enabled(),
    };
    let raise = |down: bool| {
        Some(Raised {
            event_id: event_id(),
            scope: SYSTEM,
            user_id: None,
            kind: if down {
                AlertKind::ChannelDown
            } else {
                AlertKind::ChannelUp
            },
            name: Some(name),
            amount: None,
            threshold: None,
            message: if down {
                format!(
                    "Channel \"{name}\" failed its probe: {}.",
                    error.unwrap_or("no answer")
                )
            } else {
                format!("Channel \"{name}\" answers its probe again.")
            },
        })
    };
    Ok(repo::observe(&svc.db, &verdict, raise, |s, _| s.channels).await?)
}

/// The ledger check's verdict: drift raises `ledger.drift`, agreement after it
/// `ledger.agrees`; sent when the system's settings watch the ledger.
pub async fn ledger_checked(svc: &Services, drift: i64, detail: &str) -> Result<bool, Error> {
    let verdict = Verdict {
        subject: "ledger",
        user_id: None,
        crossed: drift != 0,
        now: now_ms(),
        smtp: svc.config.alerts.smtp.enabled(),
    };
    let raise = |drifted: bool| {
        Some(Raised {
            event_id: event_id(),
            scope: SYSTEM,
            user_id: None,
            kind: if drifted {
                AlertKind::LedgerDrift
            } else {
                AlertKind::LedgerAgrees
            },
            name: None,
            amount: Some(drift),
            threshold: None,
            message: if drifted {
                format!("The ledger check found {drift} units of drift: {detail}.")
            } else {
                format!("The ledger check agrees again: {detail}.")
            },
        })
    };
    Ok(repo::observe(&svc.db, &verdict, raise, |s, _| s.ledger_drift).await?)
}

fn event_id() -> String {
    format!("evt_{}", crate::random_id())
}

/// What a delivery run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Sends the deliveries that are due, each attempt taken before it is sent; `holding` is asked
/// before each (a runner that lost its lease stops).
pub async fn deliver_due(
    svc: &Services,
    holding: impl Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Delivered> {
    let cfg = &svc.config.alerts;
    let client = send::client(cfg);
    let mut out = Delivered::default();
    let now = now_ms();
    for due in repo::due(&svc.db, now, BATCH).await? {
        holding()?;
        let attempt = due.attempts + 1;
        // Until the attempt's end, and a margin, nobody else takes it.
        let timeout = match due.target {
            types::AlertTarget::Webhook => cfg.webhook_timeout_seconds,
            types::AlertTarget::Email => cfg.smtp.timeout_seconds,
        };
        let taken_until = now_ms() + i64::try_from(timeout).unwrap_or(60) * 1000 * 2 + 1000;
        if !repo::take(&svc.db, due.id, due.attempts, taken_until).await? {
            continue;
        }
        let result = match due.target {
            types::AlertTarget::Webhook => {
                // The secret now (a rotated one signs the retries).
                let secret = repo::settings(&svc.db, &due.scope)
                    .await?
                    .and_then(|s| s.webhook_secret);
                match secret {
                    Some(secret) => {
                        send::webhook(&client, cfg, &due.address, &secret, &due.alert, now_ms())
                            .await
                    }
                    None => Err("the webhook was removed".to_string()),
                }
            }
            types::AlertTarget::Email if cfg.smtp.enabled() => {
                send::email(&cfg.smtp, &due.address, &due.alert).await
            }
            types::AlertTarget::Email => Err("alerts.smtp is no longer set".to_string()),
        };
        let last = i64::from(cfg.max_attempts) <= attempt;
        let kind = due.alert.kind.as_str();
        let retry_at = (!last).then(|| now_ms() + backoff(cfg.retry_base_seconds, attempt));
        match &result {
            Ok(()) => out.sent += 1,
            Err(error) => {
                tracing::warn!(alert = %due.alert.id, kind, attempt, last, error = %error, "an alert's delivery failed");
                if last {
                    out.failed += 1;
                } else {
                    out.retrying += 1;
                }
            }
        }
        repo::finish(
            &svc.db,
            due.id,
            result.as_ref().err().map(String::as_str),
            retry_at,
            now_ms(),
        )
        .await?;
        let label = match (&result, last) {
            (Ok(()), _) => "sent",
            (Err(_), true) => "failed",
            (Err(_), false) => "retrying",
        };
        svc.metrics
            .alert_deliveries
            .with_label_values(&[due.target.as_str(), label])
            .inc();
    }
    Ok(out)
}

/// The wait after failed attempt `attempt` (1-based): the base, doubled after each further
/// failure, at most an hour.
fn backoff(base_seconds: u64, attempt: i64) -> i64 {
    let base = i64::try_from(base_seconds).unwrap_or(i64::MAX / 1000) * 1000;
    let doublings = u32::try_from((attempt - 1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1i64 << doublings).min(MAX_BACKOFF_MS)
}

/// Removes alerts raised before `before` (the cleanup job).
pub async fn purge(svc: &Services, before: i64) -> Result<u64, Error> {
    Ok(repo::purge(&svc.db, before).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour() {
        assert_eq!(backoff(30, 1), 30_000);
        assert_eq!(backoff(30, 2), 60_000);
        assert_eq!(backoff(30, 3), 120_000);
        assert_eq!(backoff(30, 8), 3_600_000);
        assert_eq!(backoff(1, 50), 3_600_000);
    }

    #[test]
    fn a_webhook_url_is_public_http_without_credentials() {
        assert!(webhook_url("https://hooks.example.com/t", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "not a url",
            "http://127.0.0.1:9/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
        ] {
            assert!(webhook_url(bad, false).is_err(), "{bad}");
        }
        assert!(webhook_url("http://127.0.0.1:9/", true).is_ok());
        assert!(webhook_url("http://169.254.169.254/", true).is_err());
    }
}
