//! Sending one alert: a signed webhook `POST`, or an e-mail through the configured SMTP server.
//!
//! A webhook's body is the alert as JSON; `X-Tollgate-Event-Id` names the event (the same on
//! every retry, so a receiver drops repeats by it) and `X-Tollgate-Signature` is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's secret>`. A webhook
//! goes only to public addresses (unless `alerts.allow_private_webhooks`), checked on the
//! address the name resolves to, at every attempt; never to a cloud metadata address; and it
//! follows no redirect.

use crate::config::{AlertsConfig, SmtpConfig, SmtpTls};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use types::AlertView;

/// The alert as a webhook receives it.
#[derive(serde::Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: types::AlertKind,
    created_at: i64,
    user_id: Option<i64>,
    name: Option<&'a str>,
    #[serde(with = "types::usd::option")]
    amount: Option<types::Credits>,
    #[serde(with = "types::usd::option")]
    threshold: Option<types::Credits>,
    message: &'a str,
}

/// The JSON body a webhook receives for `alert`.
pub fn body(alert: &AlertView) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        id: &alert.id,
        kind: alert.kind,
        created_at: alert.created_at,
        user_id: alert.user_id,
        name: alert.name.as_deref(),
        amount: alert.amount,
        threshold: alert.threshold,
        message: &alert.message,
    })
    .unwrap_or_default()
}

/// `t=…,v1=…`: the signature of `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why an address may not receive a webhook, if it may not.
pub fn refused(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let metadata = match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if metadata {
        return Some("a link-local or cloud metadata address");
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    };
    (private && !allow_private)
        .then_some("a loopback or private address (set alerts.allow_private_webhooks to allow it)")
}

/// Resolves names as the system does, keeping only the addresses a webhook may go to.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| refused(a.ip(), allow_private).is_none())
                .collect();
            if kept.is_empty() {
                let why = all
                    .first()
                    .and_then(|a| refused(a.ip(), allow_private))
                    .unwrap_or("no address");
                return Err(format!("{host} resolves to {why}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The client every webhook of a run goes through.
pub fn client(cfg: &AlertsConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.webhook_timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: cfg.allow_private_webhooks,
        }))
        .user_agent(concat!("Tollgate-Alerts/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Posts `alert` to `url`, signed with `secret`; the error says why it was not accepted.
pub async fn webhook(
    client: &reqwest::Client,
    cfg: &AlertsConfig,
    url: &str,
    secret: &str,
    alert: &AlertView,
    now_ms: i64,
) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if let Some(host) = parsed.host_str()
        && let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        && let Some(why) = refused(ip, cfg.allow_private_webhooks)
    {
        return Err(format!("{host} is {why}"));
    }
    let body = body(alert);
    let sig = signature(secret, now_ms.div_euclid(1000), &body);
    let res = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Tollgate-Event-Id", alert.id.as_str())
        .header("X-Tollgate-Signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| crate::proxy::without_url(&e))?;
    let status = res.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

/// E-mails `alert` to `to` through `smtp`.
pub async fn email(smtp: &SmtpConfig, to: &str, alert: &AlertView) -> Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("alerts.smtp.from: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("the address: {e}"))?;
    let text = format!(
        "{}\n\nAlert: {}\nEvent id: {}\nRaised at: {} (unix ms)\n\n-- \nTollgate alerts. Change \
         what you are told of on your account page.\n",
        alert.message,
        alert.kind.as_str(),
        alert.id,
        alert.created_at
    );
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[Tollgate] {}", subject(alert)))
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let builder = match smtp.tls {
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    }
    .map_err(|e| format!("alerts.smtp.host: {e}"))?;
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().to_string(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("the mail server: {e}"))
}

/// A line for the e-mail's subject.
fn subject(alert: &AlertView) -> String {
    let name = alert.name.as_deref().unwrap_or_default();
    match alert.kind {
        types::AlertKind::BalanceLow => "your balance is low".into(),
        types::AlertKind::KeyCap => format!("key {name} is near its spending cap"),
        types::AlertKind::ChannelDown => format!("channel {name} is down"),
        types::AlertKind::ChannelUp => format!("channel {name} is up again"),
        types::AlertKind::LedgerDrift => "the ledger check found drift".into(),
        types::AlertKind::LedgerAgrees => "the ledger check agrees again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), with the message split as "<t>.<body>".
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("t=0,v1="), "{sig}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(
            sig,
            format!("t=0,v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"));
        assert_ne!(sig, signature("jefe", 0, b"what do ya want for nothing?"));
    }

    #[test]
    fn webhooks_go_to_public_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(refused(ip(private), false).is_some(), "{private}");
            assert!(refused(ip(private), true).is_none(), "{private} allowed");
        }
        for metadata in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "fe80::1",
        ] {
            assert!(refused(ip(metadata), true).is_some(), "{metadata}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            assert!(refused(ip(public), false).is_none(), "{public}");
        }
    }
}
