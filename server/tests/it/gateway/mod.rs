//! The gateway core end to end: the real server, the mock upstream as a separate process, real
//! SQLite/PostgreSQL (+ Redis). Assertions cover the HTTP answers and the money in the database.

mod accounts;
pub mod agents;
pub mod azure;
pub mod bounds;
pub mod codex;
mod concurrency;
pub mod gemini;
mod grant;
mod limits;
mod metrics;
mod money;
mod money_in;
mod prices;
mod reads;
mod relay;
mod revocation;
mod routing;
mod slow;
mod streams;
mod usage;

// What every topic's tests share (they `use super::*`).
pub use crate::common::*;
pub use crate::mock::Mock;
pub use futures_util::StreamExt as _;
pub use reqwest::Method;
pub use serde_json::{Value, json};
pub use service::config::{ChannelConfig, Config, PriceConfig};
pub use service::secret::SecretString;
pub use std::time::{Duration, Instant};

pub fn channel(name: &str, base_url: String, models: &[&str], priority: i64) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: Default::default(),
        base_url,
        api_version: None,
        max_tokens_field: None,
        stream_usage: true,
        api_key: Some(SecretString::new("upstream-secret-key")),
        models: models.iter().map(|m| m.to_string()).collect(),
        priority,
        weight: 1,
        connect_timeout_ms: 2_000,
        first_byte_timeout_ms: 5_000,
        answer_timeout_ms: 5_000,
        idle_timeout_ms: 5_000,
        enabled: true,
        groups: Vec::new(),
    }
}

fn price(input: &str, output: &str, per_request: Option<&str>) -> PriceConfig {
    PriceConfig {
        input_per_1m: input.into(),
        output_per_1m: output.into(),
        cached_input_per_1m: None,
        per_request: per_request.map(str::to_string),
        ..Default::default()
    }
}

pub struct Gw {
    pub app: TestApp,
    pub mock: Mock,
    pub key: String,
    pub user_id: i64,
}

/// Fast reporting, one mock channel serving three priced models.
pub fn base_config(c: &mut Config, mock: &Mock) {
    c.billing.report_interval_ms = 50;
    c.billing.idle_close_ms = 100;
    c.billing.sweep_after_seconds = 2;
    c.channels = vec![channel(
        "primary",
        mock.url(""),
        &["gpt-4o-mini", "text-embedding-3-small", "flat"],
        0,
    )];
    c.pricing
        .insert("gpt-4o-mini".into(), price("0.15", "0.60", None));
    c.pricing
        .insert("text-embedding-3-small".into(), price("0.02", "0", None));
    c.pricing
        .insert("flat".into(), price("0", "0", Some("0.0001")));
}

/// One channel of each protocol (Anthropic, OpenAI-compatible chat, OpenAI), each serving the
/// model of its own name, `{prefix}-claude`, `{prefix}-chat` and `{prefix}-gpt`, with
/// `directives` on its URL and the same price.
pub fn one_of_each_kind(
    c: &mut Config,
    mock: &Mock,
    prefix: &str,
    directives: &str,
    p: PriceConfig,
) {
    for (kind, suffix) in [
        (types::ChannelKind::Anthropic, "claude"),
        (types::ChannelKind::OpenAiCompatible, "chat"),
        (types::ChannelKind::OpenAi, "gpt"),
    ] {
        let name = format!("{prefix}-{suffix}");
        let mut ch = channel(&name, mock.url(directives), &[&name], 0);
        ch.kind = kind;
        c.channels.push(ch);
        c.pricing.insert(name, p.clone());
    }
}

pub async fn credit(app: &TestApp, user_id: i64, usd: &str) {
    let path = format!("/api/admin/users/{user_id}/balance");
    let body = json!({ "amount": usd, "reason": "test credit" });
    let res = app.admin(Method::POST, &path, Some(body)).await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

pub async fn create_key(app: &TestApp, body: Value) -> Value {
    let res = app.admin(Method::POST, "/api/admin/keys", Some(body)).await;
    created(res).await
}

impl Gw {
    pub async fn start(
        backend: Backend,
        balance_usd: &str,
        tweak: impl FnOnce(&mut Config, &Mock),
    ) -> Gw {
        let mock = Mock::start();
        let app = TestApp::spawn_with(backend, |c| {
            base_config(c, &mock);
            tweak(c, &mock);
        })
        .await;
        let user_id = app.create_user("alice", "alice-password", "user").await;
        credit(&app, user_id, balance_usd).await;
        let key = create_key(&app, json!({ "user_id": user_id, "name": "test" })).await["key"]
            .as_str()
            .expect("key")
            .to_string();
        Gw {
            app,
            mock,
            key,
            user_id,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        TestApp::bare_client()
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(&self.app.svc.db.sql(sql))
            .bind(self.user_id)
            .fetch_one(self.app.svc.db.pool())
            .await
            .expect(sql)
    }

    /// A metric's value from `/metrics`: the line that starts with `series` (name and labels).
    pub async fn metric(&self, series: &str) -> f64 {
        let metrics = reqwest::get(self.app.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in the metrics"))
            .parse()
            .expect("a number")
    }

    /// `tollgate_credit_waits_total`: requests that waited for a top-up from the database.
    pub async fn credit_waits(&self) -> u64 {
        self.metric("tollgate_credit_waits_total").await as u64
    }

    pub async fn balance(&self) -> i64 {
        self.scalar("SELECT balance FROM users WHERE id = $1").await
    }

    /// The user's open credit grants and usage rows.
    async fn open_grants_and_rows(&self) -> (i64, i64) {
        let open = self
            .scalar("SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open'")
            .await;
        let rows = self
            .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1")
            .await;
        (open, rows)
    }

    /// The number of usage rows once it stops growing (no grant open, and the same count for
    /// half a second): for a test whose calls are made by a script.
    pub async fn quiet_rows(&self) -> i64 {
        let mut last = -1;
        for _ in 0..60 {
            let (open, rows) = self.open_grants_and_rows().await;
            if open == 0 && rows == last {
                return rows;
            }
            last = rows;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("usage rows still growing: {last}");
    }

    /// Waits until every grant is closed and `usage_rows` usage rows are written, then checks
    /// the money invariants: balance = Σ ledger.amount, reserved = Σ ledger.hold = 0.
    pub async fn settled(&self, usage_rows: i64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (open, rows) = self.open_grants_and_rows().await;
            if open == 0 && rows >= usage_rows {
                assert_eq!(rows, usage_rows, "usage rows");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {open} open grants, {rows} usage rows"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let balance = self.balance().await;
        let sum = self
            .scalar(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1",
            )
            .await;
        let holds = self
            .scalar("SELECT CAST(COALESCE(SUM(hold), 0) AS BIGINT) FROM ledger WHERE user_id = $1")
            .await;
        let reserved = self
            .scalar("SELECT reserved FROM users WHERE id = $1")
            .await;
        assert_eq!(balance, sum, "balance = sum of the ledger");
        assert_eq!((reserved, holds), (0, 0), "no money left held");
        assert!(balance >= 0);
    }

    pub async fn last_usage(&self) -> (i64, String, Option<String>, i64, i64) {
        sqlx::query_as(&self.app.svc.db.sql("SELECT cost, usage_source, error_class, prompt_tokens, completion_tokens FROM usage_logs WHERE user_id = $1 ORDER BY id DESC LIMIT 1"))
            .bind(self.user_id)
            .fetch_one(self.app.svc.db.pool())
            .await
            .expect("usage row")
    }

    /// A GET of an `/api` route with the key: its JSON, after checking it answered 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = TestApp::bare_client()
            .get(self.app.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("json")
    }

    /// Moves the key's owner to `group` (`PATCH /api/admin/users/{id}`).
    pub async fn set_group(&self, group: &str) {
        let path = format!("/api/admin/users/{}", self.user_id);
        let res = (self.app)
            .admin(Method::PATCH, &path, Some(json!({ "group": group })))
            .await;
        assert_eq!(res.status(), 200);
    }

    /// The model ids `/v1/models` lists for the key.
    pub async fn model_ids(&self) -> Vec<String> {
        self.get_json("/v1/models").await["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A channel as `/api/admin/channels` lists it, by name.
    pub async fn admin_channel(&self, name: &str) -> Value {
        let res = (self.app)
            .admin(Method::GET, "/api/admin/channels", None)
            .await;
        assert_eq!(res.status(), 200);
        let channels: Value = res.json().await.expect("json");
        channels
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no channel {name}: {channels}"))
    }

    /// The channel's live test (`/api/admin/channels/{id}/test`) of `model`.
    pub async fn test_channel(&self, name: &str, model: &str) -> Value {
        let id = &self.admin_channel(name).await["id"];
        let path = format!("/api/admin/channels/{id}/test?model={model}");
        let res = self.app.admin(Method::POST, &path, None).await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }

    /// The key owner's latest call as `/api/logs` gives it.
    pub async fn last_call(&self) -> Value {
        self.get_json("/api/logs?page_size=1").await["data"][0].clone()
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// A 10-second stream (200 chunks, 50 ms apart), open, with its first chunk read.
    pub async fn long_stream(
        &self,
    ) -> impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin + use<> {
        let res = self
            .post(
                "/v1/chat/completions",
                json!({ "model": "gpt-4o-mini", "messages": hello(), "stream": true,
                        "mock": { "chunks": 200, "chunk_delay_ms": 50 } }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let mut body = Box::pin(res.bytes_stream());
        let first = body.next().await.expect("a chunk").expect("bytes");
        assert!(!first.is_empty());
        body
    }
}

fn hello() -> Value {
    json!([{ "role": "user", "content": "hello there world" }])
}

/// Prompt 3 tokens × $0.15/1M + completion 6 × $0.60/1M = 4.05 units, charged as 5.
const HELLO_COST: i64 = 5;
