//! Alerts, end to end: a real SMTP server (Python's aiosmtpd, with credentials) and a real HTTP
//! receiver that checks each webhook's signature on its own; one alert per crossing with two
//! instances running the job; retries after a failed delivery; the system's channel and ledger
//! alerts; bad settings refused.

use crate::common::*;
use crate::gateway::Gw;
use crate::jobs::{admin_json, run_job, shift_last_ledger_row};
use crate::mock::Mock;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use service::config::{Config, SmtpConfig, SmtpTls};
use service::secret::SecretString;
use sha2::Sha256;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-test-0123456789abcdef";

/// One webhook request as the receiver saw it.
#[derive(Clone, Debug)]
struct Hit {
    event_id: String,
    body: Value,
    /// The signature matched the body and the secret, and the header's id the body's.
    verified: bool,
    /// What the receiver answered.
    accepted: bool,
}

#[derive(Default)]
struct Inbox {
    hits: Mutex<Vec<Hit>>,
    /// Requests to refuse with 500 before accepting.
    refuse: Mutex<usize>,
}

/// A webhook receiver on 127.0.0.1 that checks `X-Tollgate-Signature` with HMAC-SHA256 itself.
struct Receiver {
    url: String,
    inbox: Arc<Inbox>,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers
        .get("x-tollgate-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    if t.parse::<i64>().map_or(true, |t| (now - t).abs() > 300) {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let Ok(given) = hex::decode(v1) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let event_id = headers
        .get("x-tollgate-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let verified = verify(&headers, &body) && parsed["id"] == event_id.as_str();
    let accepted = {
        let mut refuse = inbox.refuse.lock().expect("lock");
        if *refuse > 0 {
            *refuse -= 1;
            false
        } else {
            true
        }
    };
    inbox.hits.lock().expect("lock").push(Hit {
        event_id,
        body: parsed,
        verified,
        accepted,
    });
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl Receiver {
    async fn start(refuse_first: usize) -> Receiver {
        let inbox = Arc::new(Inbox {
            hits: Mutex::new(Vec::new()),
            refuse: Mutex::new(refuse_first),
        });
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            inbox,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.inbox.hits.lock().expect("lock").clone()
    }

    /// The events received and accepted, in order, each once.
    fn events(&self) -> Vec<Value> {
        let mut seen = std::collections::HashSet::new();
        self.hits()
            .into_iter()
            .filter(|h| h.accepted && seen.insert(h.event_id.clone()))
            .map(|h| h.body)
            .collect()
    }

    async fn wait_events(&self, n: usize) -> Vec<Value> {
        wait_for(n, "events", || self.events()).await
    }
}

/// What `seen` returns once it holds at least `n` items (within 30 s).
async fn wait_for(n: usize, what: &str, seen: impl Fn() -> Vec<Value>) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = seen();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{n} {what} never came: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A real SMTP server (aiosmtpd from the test venv) that takes mail only after AUTH with the
/// credentials below, and prints each message it takes as a JSON line.
struct Smtp {
    child: Child,
    port: u16,
    mail: Arc<Mutex<Vec<Value>>>,
}

const SMTP_USER: &str = "alerts";
const SMTP_PASSWORD: &str = "smtp-password-1";

const SMTP_SERVER: &str = r#"
import json, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, user, password = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "data": envelope.content.decode("utf-8", "replace"),
        }), flush=True)
        return "250 OK"

def authenticate(server, session, envelope, mechanism, data):
    return AuthResult(success=(data.login == user and data.password == password))

controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                        auth_required=True, auth_require_tls=False)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

impl Smtp {
    fn start() -> Smtp {
        let python = std::env::var("TOLLGATE_TEST_PYTHON")
            .expect("TOLLGATE_TEST_PYTHON must name a python with aiosmtpd (make unit sets it)");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let mut child = Command::new(&python)
                .args([
                    "-c",
                    SMTP_SERVER,
                    &port.to_string(),
                    SMTP_USER,
                    SMTP_PASSWORD,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start aiosmtpd");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = std::io::BufReader::new(stdout).lines();
            // The first line says it listens; a taken port ends the process instead.
            if !matches!(lines.next(), Some(Ok(l)) if l == "ready") {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let mail = Arc::new(Mutex::new(Vec::new()));
            let sink = mail.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        sink.lock().expect("lock").push(v);
                    }
                }
            });
            return Smtp { child, port, mail };
        }
        panic!("aiosmtpd did not start on five free ports");
    }

    fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: SmtpTls::None,
            username: SMTP_USER.into(),
            password: SecretString::new(SMTP_PASSWORD),
            from: "Tollgate <alerts@tollgate.test>".into(),
            timeout_seconds: 10,
        }
    }

    fn mail(&self) -> Vec<Value> {
        self.mail.lock().expect("lock").clone()
    }

    async fn wait_mail(&self, n: usize) -> Vec<Value> {
        wait_for(n, "messages", || self.mail()).await
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alerts checked every second, retried after a second, to private addresses (the receiver is
/// on 127.0.0.1), mailed through `smtp`.
fn alerting(c: &mut Config, smtp: Option<&Smtp>, every_second: bool) {
    if every_second {
        c.jobs.alerts.set_schedule("* * * * * *").expect("schedule");
    } else {
        // Run by hand only.
        c.jobs.alerts.enabled = false;
    }
    c.alerts.allow_private_webhooks = true;
    c.alerts.retry_base_seconds = 1;
    c.alerts.max_attempts = 3;
    if let Some(smtp) = smtp {
        c.alerts.smtp = smtp.config();
    }
}

async fn put_json(
    client: &reqwest::Client,
    url: String,
    body: &Value,
    admin: bool,
) -> (u16, Value) {
    let req = client.put(url).json(body);
    let req = if admin {
        req.bearer_auth(ADMIN_TOKEN)
    } else {
        req
    };
    let res = req.send().await.expect("PUT");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn adjust(app: &TestApp, user: i64, usd: &str) {
    let res = TestApp::bare_client()
        .post(app.url(&format!("/api/admin/users/{user}/balance")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "amount": usd, "reason": "alerts test" }))
        .send()
        .await
        .expect("adjust");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// A user who set a balance threshold and a key-cap percent is told once per crossing, by a
/// signed webhook (retried after the receiver's 500, with the same event id) and by e-mail
/// through an SMTP server that wants credentials, although two instances run the job every
/// second; rising above the threshold re-arms it.
async fn a_user_is_told_once_per_crossing_by_webhook_and_email(backend: Backend) {
    let smtp = Smtp::start();
    let hook = Receiver::start(1).await;
    let gw = Gw::start(backend, "10", |c, _| alerting(c, Some(&smtp), true)).await;
    let other = TestApp::spawn_on(gw.app.storage.clone(), |c| alerting(c, Some(&smtp), true)).await;
    let client = TestApp::client();
    let res = gw.app.login(&client, "alice", "alice-password").await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let me = gw.app.url("/api/me/alerts");
    let (status, saved) = put_json(
        &client,
        me.clone(),
        &json!({ "balance_below": "5.00", "key_cap_percent": 50, "email": "alice@example.com",
                 "webhook_url": hook.url, "webhook_secret": SECRET }),
        false,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["settings"]["webhook_secret_set"], true, "{saved}");
    assert_eq!(saved["settings"]["email_available"], true);
    assert_eq!(saved["settings"]["balance_below"], "5.00");
    assert!(
        !saved.to_string().contains(SECRET),
        "the secret is never shown"
    );

    // Above the threshold: nothing is said.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(hook.hits().is_empty(), "{:?}", hook.hits());
    assert!(smtp.mail().is_empty());

    // Below it: one alert, whichever instance's job sees it first.
    adjust(&gw.app, gw.user_id, "-6.00").await;
    let events = hook.wait_events(1).await;
    let low = &events[0];
    assert_eq!(low["type"], "balance.low", "{low}");
    assert_eq!(low["user_id"], gw.user_id);
    assert_eq!(low["amount"], "4.00");
    assert_eq!(low["threshold"], "5.00");
    let id = low["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("evt_"), "{id}");
    // The first delivery was refused (500) and retried with the same id; both signed.
    let hits = hook.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(
        hits.iter().all(|h| h.verified && h.event_id == id),
        "{hits:?}"
    );
    assert!(!hits[0].accepted && hits[1].accepted);
    let mail = smtp.wait_mail(1).await;
    assert_eq!(mail[0]["to"], json!(["alice@example.com"]));
    assert_eq!(mail[0]["from"], "alerts@tollgate.test");
    assert_eq!(mail[0]["authenticated"], true);
    let data = mail[0]["data"].as_str().expect("data");
    assert!(
        data.contains("Subject: [Tollgate] your balance is low"),
        "{data}"
    );
    assert!(data.contains(&id), "{data}");

    // More runs of both instances' jobs: still one alert, one message.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(hook.events().len(), 1, "{:?}", hook.hits());
    assert_eq!(hook.hits().len(), 2);
    assert_eq!(smtp.mail().len(), 1);
    let shown: Value = client
        .get(&me)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let recent = &shown["recent"][0];
    assert_eq!(recent["id"], id.as_str(), "{shown}");
    assert_eq!(recent["kind"], "balance.low");
    let deliveries = recent["deliveries"].as_array().expect("deliveries");
    let webhook = deliveries
        .iter()
        .find(|d| d["target"] == "webhook")
        .expect("webhook");
    assert_eq!(webhook["status"], "sent");
    assert_eq!(webhook["attempts"], 2);
    let email = deliveries
        .iter()
        .find(|d| d["target"] == "email")
        .expect("email");
    assert_eq!(email["status"], "sent");
    assert_eq!(email["attempts"], 1);

    // Above again re-arms it; the next fall is a new alert.
    adjust(&gw.app, gw.user_id, "6.00").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hook.events().len(), 1);
    adjust(&gw.app, gw.user_id, "-6.00").await;
    let events = hook.wait_events(2).await;
    assert_eq!(events[1]["type"], "balance.low");
    assert_ne!(events[1]["id"], events[0]["id"]);
    smtp.wait_mail(2).await;

    // A key's cap: spending half of it is told once.
    let key_id = gw
        .scalar(&format!(
            "SELECT id FROM api_keys WHERE user_id = {}",
            gw.user_id
        ))
        .await;
    let path = format!("/api/admin/keys/{key_id}");
    let patch = |cap: String| {
        (gw.app).admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "spend_cap": cap })),
        )
    };
    assert_eq!(patch("1.00".into()).await.status(), 200);
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let spent = loop {
        let spent = gw
            .scalar(&format!("SELECT spent FROM api_keys WHERE id = {key_id}"))
            .await;
        if spent > 0 {
            break spent;
        }
        assert!(
            Instant::now() < deadline,
            "the call's cost never reached the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hook.events().len(), 2, "far from the cap: nothing");
    // A cap of exactly twice what was spent: 50 % spent.
    let cap = types::Credits::from_units(spent * 2).to_usd_string();
    assert_eq!(patch(cap.clone()).await.status(), 200);
    let events = hook.wait_events(3).await;
    let capped = &events[2];
    assert_eq!(capped["type"], "key.cap", "{capped}");
    assert_eq!(capped["name"], "test");
    assert_eq!(
        capped["threshold"].as_str().map(types::Credits::parse_usd),
        Some(Ok(types::Credits::from_units(spent * 2)))
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hook.events().len(), 3, "{:?}", hook.hits());
    assert!(hook.hits().iter().all(|h| h.verified));
    other.shutdown().await;
    gw.stop().await;
}

/// The system's alerts: a channel failing its probe and answering again, the ledger check
/// finding drift (a row corrupted on purpose) and agreeing again; each told once, to the
/// administrators' webhook, and shown with its delivery on the overview's API.
async fn the_system_is_told_of_channels_and_ledger_drift(backend: Backend) {
    let hook = Receiver::start(0).await;
    let mock = Mock::start();
    let gw = Gw::start(backend, "1", |c, _| alerting(c, None, false)).await;
    let base = gw.app.base.clone();
    let admin = TestApp::bare_client();
    let (status, saved) = put_json(
        &admin,
        gw.app.url("/api/admin/alerts"),
        &json!({ "channels": true, "ledger_drift": true, "webhook_url": hook.url,
                 "webhook_secret": SECRET }),
        true,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["settings"]["channels"], true);
    assert_eq!(saved["settings"]["email_available"], false);

    // Drift: a ledger row changed behind the gateway's back.
    shift_last_ledger_row(&gw, -7).await;
    run_job(&base, "ledger_check").await;
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 7.0);
    let run = run_job(&base, "alerts").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    let events = hook.wait_events(1).await;
    assert_eq!(events[0]["type"], "ledger.drift", "{events:?}");
    assert_eq!(events[0]["amount"], "0.000007");
    // Seen again: no second alert.
    run_job(&base, "ledger_check").await;
    run_job(&base, "alerts").await;
    assert_eq!(hook.events().len(), 1);
    shift_last_ledger_row(&gw, 7).await;
    run_job(&base, "ledger_check").await;
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 0.0);
    run_job(&base, "alerts").await;
    let events = hook.wait_events(2).await;
    assert_eq!(events[1]["type"], "ledger.agrees", "{events:?}");

    // A channel down, then up.
    let res = admin
        .post(gw.app.url("/api/admin/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({ "name": "flaky", "base_url": mock.url("status=503"), "api_key": "k",
                       "models": ["probe-model"] }),
        )
        .send()
        .await
        .expect("create channel");
    let channel = created(res).await;
    let id = channel["id"].as_i64().expect("id");
    // Wait until this instance's routing table has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health: Vec<Value> = admin_json(format!("{base}/api/admin/channels/health")).await;
        if health.iter().any(|h| h["channel_id"] == id) {
            break;
        }
        assert!(Instant::now() < deadline, "the channel never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run_job(&base, "channel_probe").await;
    run_job(&base, "alerts").await;
    let events = hook.wait_events(3).await;
    let down = events
        .iter()
        .find(|e| e["type"] == "channel.down")
        .expect("channel.down");
    assert_eq!(down["name"], "flaky");
    assert!(
        down["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed its probe")),
        "{down}"
    );
    run_job(&base, "channel_probe").await;
    run_job(&base, "alerts").await;
    assert_eq!(hook.events().len(), 3, "still down: no second alert");
    let res = admin
        .put(gw.app.url(&format!("/api/admin/channels/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({ "name": "flaky", "base_url": mock.url(""), "api_key": "k",
                       "models": ["probe-model"] }),
        )
        .send()
        .await
        .expect("heal channel");
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        run_job(&base, "channel_probe").await;
        run_job(&base, "alerts").await;
        if hook.events().iter().any(|e| e["type"] == "channel.up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "channel.up never came: {:?}",
            hook.events()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(hook.hits().iter().all(|h| h.verified && h.accepted));
    let shown: Value = admin_json(gw.app.url("/api/admin/alerts")).await;
    let kinds: Vec<&str> = shown["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "channel.up",
            "channel.down",
            "ledger.agrees",
            "ledger.drift"
        ],
        "{shown}"
    );
    assert_eq!(shown["recent"][0]["deliveries"][0]["status"], "sent");
    assert_eq!(webhook_deliveries(&gw, "sent").await, "4");
    gw.stop().await;
}

/// A receiver that keeps refusing: the delivery is tried `alerts.max_attempts` times (each
/// after the doubling wait from `alerts.retry_base_seconds`), then given up, shown as failed
/// with the last error, counted, and never tried again.
async fn a_delivery_is_given_up_after_max_attempts(backend: Backend) {
    let hook = Receiver::start(usize::MAX).await;
    let gw = Gw::start(backend, "1", |c, _| {
        alerting(c, None, false);
        c.alerts.max_attempts = 2;
    })
    .await;
    let base = gw.app.base.clone();
    let (status, saved) = put_json(
        &TestApp::bare_client(),
        gw.app.url("/api/admin/alerts"),
        &json!({ "ledger_drift": true, "webhook_url": hook.url, "webhook_secret": SECRET }),
        true,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    shift_last_ledger_row(&gw, -1).await;
    run_job(&base, "ledger_check").await;
    run_job(&base, "alerts").await;
    assert_eq!(hook.hits().len(), 1);
    // Not due again before the wait (1 s) has passed.
    run_job(&base, "alerts").await;
    assert_eq!(hook.hits().len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    run_job(&base, "alerts").await;
    assert_eq!(hook.hits().len(), 2);
    // Given up: never tried again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    run_job(&base, "alerts").await;
    let hits = hook.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(
        hits.iter()
            .all(|h| h.verified && !h.accepted && h.event_id == hits[0].event_id)
    );
    let shown: Value = admin_json(gw.app.url("/api/admin/alerts")).await;
    let delivery = &shown["recent"][0]["deliveries"][0];
    assert_eq!(delivery["status"], "failed", "{shown}");
    assert_eq!(delivery["attempts"], 2);
    assert!(
        delivery["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{delivery}"
    );
    assert_eq!(webhook_deliveries(&gw, "failed").await, "1");
    assert_eq!(webhook_deliveries(&gw, "retrying").await, "1");
    gw.stop().await;
}

/// `tollgate_alert_deliveries_total` of webhooks with `outcome`, as the metrics text says it.
async fn webhook_deliveries(gw: &Gw, outcome: &str) -> String {
    let metrics = TestApp::bare_client()
        .get(gw.app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let outcome = format!("outcome=\"{outcome}\"");
    metrics
        .lines()
        .find(|l| {
            l.starts_with("tollgate_alert_deliveries_total{")
                && l.contains("target=\"webhook\"")
                && l.contains(&outcome)
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no webhook {outcome} in {metrics}"))
        .to_string()
}

/// Settings that cannot work are refused with the field named: e-mail without `alerts.smtp`, a
/// webhook to a private address (by default) or without a secret, a short secret, thresholds
/// out of range, the system's switches on a user and a user's thresholds on the system.
async fn bad_alert_settings_are_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("bob", "bob-password-1", "user").await;
    let client = TestApp::client();
    app.login(&client, "bob", "bob-password-1").await;
    let me = app.url("/api/me/alerts");
    for (body, param) in [
        (json!({ "email": "bob@example.com" }), "email"),
        (
            json!({ "webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": SECRET }),
            "webhook_url",
        ),
        (
            json!({ "webhook_url": "http://169.254.169.254/latest", "webhook_secret": SECRET }),
            "webhook_url",
        ),
        (
            json!({ "webhook_url": "ftp://example.com/", "webhook_secret": SECRET }),
            "webhook_url",
        ),
        (
            json!({ "webhook_url": "https://hooks.example.com/x" }),
            "webhook_secret",
        ),
        (
            json!({ "webhook_url": "https://hooks.example.com/x", "webhook_secret": "short" }),
            "webhook_secret",
        ),
        (json!({ "balance_below": "0" }), "balance_below"),
        (json!({ "key_cap_percent": 0 }), "key_cap_percent"),
        (json!({ "key_cap_percent": 101 }), "key_cap_percent"),
        (json!({ "channels": true }), "channels"),
        (json!({ "ledger_drift": true }), "ledger_drift"),
    ] {
        let (status, err) = put_json(&client, me.clone(), &body, false).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
    }
    for body in [
        json!({ "balance_below": "abc" }),
        json!({ "balance_below": "-1" }),
        json!({ "surprise": true }),
    ] {
        let (status, err) = put_json(&client, me.clone(), &body, false).await;
        assert_eq!(status, 400, "{body}: {err}");
    }
    // Nothing was stored.
    let shown: Value = client
        .get(&me)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["settings"]["balance_below"], Value::Null, "{shown}");
    assert_eq!(shown["settings"]["webhook_url"], Value::Null);
    // Not signed in; not an administrator.
    let res = TestApp::bare_client().get(&me).send().await.expect("GET");
    assert_eq!(res.status(), 401);
    let (status, _) = put_json(
        &client,
        app.url("/api/admin/alerts"),
        &json!({ "channels": true }),
        false,
    )
    .await;
    assert_eq!(status, 403);
    let admin = TestApp::bare_client();
    for (body, param) in [
        (json!({ "balance_below": "1.00" }), "balance_below"),
        (json!({ "key_cap_percent": 80 }), "key_cap_percent"),
    ] {
        let (status, err) = put_json(&admin, app.url("/api/admin/alerts"), &body, true).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
    }
    // A valid webhook, then its secret kept when left out.
    let (status, saved) = put_json(
        &client,
        me.clone(),
        &json!({ "webhook_url": "https://hooks.example.com/x", "webhook_secret": SECRET,
                 "balance_below": "1.50", "key_cap_percent": 80 }),
        false,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let (status, saved) = put_json(
        &client,
        me.clone(),
        &json!({ "webhook_url": "https://hooks.example.com/y", "balance_below": "2" }),
        false,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["settings"]["webhook_secret_set"], true);
    assert_eq!(
        saved["settings"]["webhook_url"],
        "https://hooks.example.com/y"
    );
    assert_eq!(saved["settings"]["balance_below"], "2.00");
    assert_eq!(saved["settings"]["key_cap_percent"], Value::Null);
    app.stop().await;
}

crate::both_backends!(
    a_user_is_told_once_per_crossing_by_webhook_and_email,
    the_system_is_told_of_channels_and_ledger_drift,
    bad_alert_settings_are_refused_with_the_field_named,
    a_delivery_is_given_up_after_max_attempts,
);
