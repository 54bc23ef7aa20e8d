//! Money and availability under faults: real processes of the binary paused with SIGSTOP, a
//! PostgreSQL that refuses connections for longer than the credit lease with two instances, a
//! redis-server killed and started again, usage beyond a reservation, clients that leave before
//! the first byte. After each: balance = Σ ledger, reserved = Σ holds = 0 when quiet, no open
//! grant, ledger charges = usage-log costs, upstream requests = usage rows that reached one.

use crate::common::*;
use crate::gateway::{Gw, create_key, credit};
use crate::mock::Mock;
use serde_json::{Value, json};
use sqlx::Connection as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `pricey` model: no input price, $100 per 1M output tokens = 100 units a token. A call with
/// `max_tokens: 60` reserves 6,000 units and, with the mock's six tokens, costs 600.
const PRICEY_COST: i64 = 600;

pub fn pricey_call() -> Value {
    json!({ "model": "pricey", "max_tokens": 60,
            "messages": [{ "role": "user", "content": "hi" }] })
}

/// The gateway binary as its own OS process, configured by a YAML file.
pub struct Proc {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Proc {
    /// Starts `tollgate` on a free port against `storage`'s database, with one mock channel
    /// serving `pricey`, and `extra` YAML appended (other sections).
    pub fn start(storage: &Storage, mock: &Mock, billing: &str) -> Proc {
        Self::start_logging(storage, mock, billing, "warn")
    }

    /// The same, logging at `level` (JSON lines in `out.log`).
    pub fn start_logging(storage: &Storage, mock: &Mock, billing: &str, level: &str) -> Proc {
        let redis = (storage.backend != Backend::Sqlite).then(redis_url);
        Self::start_custom(storage, mock, billing, level, redis.as_deref(), "")
    }

    /// The same on `redis` (none: without Redis), with `extra` YAML sections appended.
    pub fn start_custom(
        storage: &Storage,
        mock: &Mock,
        billing: &str,
        level: &str,
        redis: Option<&str>,
        extra: &str,
    ) -> Proc {
        Self::start_with_channel(storage, mock, billing, level, redis, extra, "")
    }

    /// The same, with `channel` (YAML keys, each after a comma) added to the channel.
    pub fn start_with_channel(
        storage: &Storage,
        mock: &Mock,
        billing: &str,
        level: &str,
        redis: Option<&str>,
        extra: &str,
        channel: &str,
    ) -> Proc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let dir = storage.dir.join(format!("proc-{port}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let redis = redis.map_or(String::new(), |url| {
            format!(
                "redis: {{ url: \"{url}\", prefix: \"{}\" }}\n",
                storage.redis_prefix
            )
        });
        let config = format!(
            "server: {{ host: 127.0.0.1, port: {port}, drain_seconds: 3 }}\n\
             database: {{ url: \"{db}\", max_connections: 8, acquire_timeout_seconds: 2 }}\n\
             {redis}\
             log: {{ dir: \"\", level: {level}, format: json }}\n\
             admin: {{ api_token: \"{ADMIN_TOKEN}\" }}\n\
             billing: {{ {billing} }}\n\
             channels:\n  - {{ name: primary, base_url: \"{mock}\", api_key: k, models: [pricey]{channel} }}\n\
             pricing:\n  pricey: {{ input_per_1m: \"0\", output_per_1m: \"100\" }}\n\
             {extra}",
            db = storage.db_url,
            mock = mock.url(""),
        );
        // Scheduled jobs stay off unless the test configures them (a probe would call the mock).
        let config = if extra.contains("jobs:") {
            config
        } else {
            format!(
                "{config}\njobs:\n  retention: {{ enabled: false }}\n  \
                 cleanup: {{ enabled: false }}\n  channel_probe: {{ enabled: false }}\n  \
                 backup: {{ enabled: false }}\n"
            )
        };
        let path = dir.join("config.yaml");
        std::fs::write(&path, config).expect("config");
        let log = std::fs::File::create(dir.join("out.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("--config")
            .arg(&path)
            .current_dir(&dir)
            .env("TOLLGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tollgate");
        let proc = Proc {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tollgate did not start: {}",
                proc.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proc
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// SIGKILL: no drain, no last report.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for the clean exit.
    pub fn stop(mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(code) = self.child.try_wait().expect("wait") {
                assert!(code.success(), "exit {code:?}: {}", self.output());
                return;
            }
            assert!(Instant::now() < deadline, "no exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A chat completion through this process, bounded by 20 s.
    pub fn chat(&self, key: &str, body: &Value) -> reqwest::RequestBuilder {
        TestApp::bare_client()
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(body)
            .timeout(Duration::from_secs(20))
    }

    pub async fn call(&self, key: &str, body: &Value) -> u16 {
        self.chat(key, body)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `sig` (`STOP`, `CONT`, `TERM`, …) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig}");
}

/// A user with `units` of balance and a key, made through `base`'s admin API.
pub async fn funded_user(base: &str, units: i64) -> (i64, String) {
    let client = TestApp::bare_client();
    let res = client
        .post(format!("{base}/api/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "username": "payer", "password": "payer-password", "role": "user" }))
        .send()
        .await
        .expect("create user");
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let usd = format!("{}.{:06}", units / 1_000_000, units % 1_000_000);
    let res = client
        .post(format!("{base}/api/admin/users/{id}/balance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "amount": usd, "reason": "test" }))
        .send()
        .await
        .expect("credit");
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{base}/api/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "user_id": id, "name": "k" }))
        .send()
        .await
        .expect("key");
    assert_eq!(res.status(), 201);
    let key = res.json::<Value>().await.expect("json")["key"]
        .as_str()
        .expect("key")
        .to_string();
    (id, key)
}

async fn scalar(pool: &sqlx::AnyPool, sql: &str, user: i64) -> i64 {
    let url = pool.connect_options().database_url.to_string();
    let dialect = service::db::Backend::of_url(&url).expect("a database URL");
    sqlx::query_scalar::<_, i64>(&dialect.sql(sql))
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The books of `user` once quiet: no open grant (waits up to `wait`), nothing reserved,
/// balance = Σ ledger, reserved = Σ holds, ledger charges + `uncollected` = usage-log costs,
/// and every call that reached the upstream (`upstream_calls`) has its usage row. Returns
/// (balance, charged).
pub async fn assert_books(
    pool: &sqlx::AnyPool,
    user: i64,
    upstream_calls: usize,
    uncollected: i64,
    wait: Duration,
) -> (i64, i64) {
    let deadline = Instant::now() + wait;
    loop {
        let open = scalar(
            pool,
            "SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open'",
            user,
        )
        .await;
        let rows = scalar(
            pool,
            "SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND attempts > 0",
            user,
        )
        .await;
        if open == 0 && rows >= upstream_calls as i64 {
            assert_eq!(
                rows, upstream_calls as i64,
                "one usage row per upstream call"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not quiet: {open} open grants, {rows} of {upstream_calls} usage rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let balance = scalar(pool, "SELECT balance FROM users WHERE id = $1", user).await;
    let reserved = scalar(pool, "SELECT reserved FROM users WHERE id = $1", user).await;
    let sum = scalar(
        pool,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1",
        user,
    )
    .await;
    let holds = scalar(
        pool,
        "SELECT CAST(COALESCE(SUM(hold), 0) AS BIGINT) FROM ledger WHERE user_id = $1",
        user,
    )
    .await;
    let charged = scalar(
        pool,
        "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1 AND kind = 'charge'",
        user,
    )
    .await;
    let logged = scalar(
        pool,
        "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM usage_logs WHERE user_id = $1",
        user,
    )
    .await;
    assert_eq!(balance, sum, "balance = Σ ledger.amount");
    assert_eq!((reserved, holds), (0, 0), "nothing held when quiet");
    assert!(balance >= 0, "never overdrawn: {balance}");
    assert_eq!(
        charged + uncollected,
        logged,
        "ledger charges (and what could not be collected) = usage-log costs"
    );
    (balance, charged)
}

async fn any_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("test pool")
}

/// Calls in flight when their process is stopped (SIGSTOP) past their channel's timeout, the
/// upstream answering during the stop: when the process runs again its timers and the answers
/// wake together, and each answer is read and paid, never taken for a timeout (which failed the
/// call, or sent it to another channel, after the upstream had done the work). Three rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_through_a_pause_are_answered_and_paid_once() {
    let storage = Storage::new(Backend::Sqlite).await;
    let mock = Mock::start();
    let a = Proc::start_with_channel(
        &storage,
        &mock,
        "report_interval_ms: 100, idle_close_ms: 300",
        "warn",
        None,
        "",
        ", first_byte_timeout_ms: 1000, answer_timeout_ms: 1000",
    );
    let (user, key) = funded_user(&a.base, 1_000_000).await;
    let mut call = pricey_call();
    call["mock"] = json!({ "delay_ms": 300 });
    for round in 0..3 {
        let calls = futures_util::future::join_all((0..8).map(|_| a.call(&key, &call)));
        let pause = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            a.pause();
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            a.resume();
        };
        let (statuses, ()) = tokio::join!(calls, pause);
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}: {}",
            a.output()
        );
    }
    let upstream = mock.requests().await.len();
    assert_eq!(upstream, 24, "one upstream call per call");
    let pool = any_pool(&storage.db_url).await;
    let (_, charged) = assert_books(&pool, user, upstream, 0, Duration::from_secs(20)).await;
    assert_eq!(charged, 24 * PRICEY_COST, "each paid once");
    let retried = scalar(
        &pool,
        "SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND attempts <> 1",
        user,
    )
    .await;
    assert_eq!(retried, 0);
    pool.close().await;
    a.stop();
    storage.destroy().await;
}

/// Instance A holds a large grant and is frozen (SIGSTOP) for longer than its lease; B takes
/// the lease over and spends the whole balance; A thaws (SIGCONT). A must not serve from the
/// grant it had: it finds its lease gone, and the balance left cannot cover a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_never_spends_a_grant_that_was_taken_over() {
    let storage = Storage::new(Backend::Postgres).await;
    let mock = Mock::start();
    let billing = "report_interval_ms: 100, idle_close_ms: 8000, sweep_after_seconds: 2";
    let a = Proc::start(&storage, &mock, billing);
    let b = Proc::start(&storage, &mock, billing);
    let (user, key) = funded_user(&a.base, 60_000).await;
    // Ten calls at once on A: one top-up holds all 60,000 units (10 x 6,000); they cost 6,000.
    let call = pricey_call();
    let burst = futures_util::future::join_all((0..10).map(|_| a.call(&key, &call))).await;
    assert!(burst.iter().all(|s| *s == 200), "{burst:?}");
    let pool = any_pool(&storage.db_url).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // reported
    let held = scalar(
        &pool,
        "SELECT CAST(COALESCE(SUM(amount - used), 0) AS BIGINT) FROM credit_grants WHERE user_id = $1 AND status = 'open'",
        user,
    )
    .await;
    // Most of it, or at least half when the burst was split over two top-ups.
    assert!(
        held >= 30_000,
        "A holds at least half the balance, unused: {held}"
    );
    a.pause();
    // B waits for A's lease (2 s, plus a 1 s margin) and then spends everything. (B may first
    // spend a free remainder, when A's burst took two top-ups: only a 402 after A's lease is
    // gone means everything is spent.)
    let mut served_b = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match b.call(&key, &pricey_call()).await {
            200 => served_b += 1,
            402 if served_b > 0
                && scalar(
                    &pool,
                    "SELECT COUNT(*) FROM instances WHERE $1 IS NOT NULL",
                    user,
                )
                .await
                    == 1 =>
            {
                break;
            }
            402 => {
                assert!(Instant::now() < deadline, "B never got A's grant");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("B answered {other}: {}", b.output()),
        }
    }
    assert!(served_b >= 80, "B served {served_b}");
    a.resume();
    // A's in-memory grant is gone: every call now finds a balance that cannot cover it.
    for _ in 0..10 {
        assert_eq!(a.call(&key, &pricey_call()).await, 402, "{}", a.output());
    }
    let upstream = mock.requests().await.len();
    assert_eq!(
        upstream,
        10 + served_b,
        "the upstream served only what was paid for"
    );
    let (balance, charged) = assert_books(&pool, user, upstream, 0, Duration::from_secs(20)).await;
    assert_eq!(charged, upstream as i64 * PRICEY_COST);
    assert_eq!(balance, 60_000 - charged);
    assert!(balance < 6_000, "the balance was spent down: {balance}");
    a.stop();
    b.stop();
    pool.close().await;
    storage.destroy().await;
}

async fn set_pg_connections(name: &str, allow: bool) {
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
        .await
        .expect("admin connection");
    let mut sql = vec![format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}")];
    if !allow {
        sql.push(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
    }
    for s in sql {
        sqlx::query(&s).execute(&mut admin).await.expect(&s);
    }
}

/// Two instances under load while PostgreSQL refuses connections for longer than the lease:
/// they answer 503 (never 500) once they cannot prove their leases, take nothing from each
/// other's live grants when it comes back, and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_outlive_a_database_outage_longer_than_the_lease() {
    let mock = Mock::start();
    let tweak = |c: &mut service::config::Config| {
        crate::gateway::base_config(c, &mock);
        c.billing.report_interval_ms = 100;
        c.billing.idle_close_ms = 1_000;
        c.billing.sweep_after_seconds = 2;
        c.database.acquire_timeout_seconds = 1;
    };
    let a = TestApp::spawn_with(Backend::Postgres, tweak).await;
    let b = TestApp::spawn_on(a.storage.clone(), tweak).await;
    let user = a.create_user("alice", "alice-password", "user").await;
    credit(&a, user, "1").await;
    let key = create_key(&a, json!({ "user_id": user, "name": "k" })).await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let name = a.storage.pg_name.clone().expect("pg");
    let urls = [a.url("/v1/chat/completions"), b.url("/v1/chat/completions")];
    let load = {
        let key = key.clone();
        let urls = urls.clone();
        tokio::spawn(async move {
            let client = TestApp::bare_client();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let until = Instant::now() + Duration::from_secs(14);
            let mut i = 0;
            while Instant::now() < until {
                let res = client
                    .post(&urls[i % 2])
                    .bearer_auth(&key)
                    .json(&json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                *statuses
                    .entry(res.map_or(0, |r| r.status().as_u16()))
                    .or_default() += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_pg_connections(&name, false).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    set_pg_connections(&name, true).await;
    let statuses = load.await.expect("load");
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 100,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .keys()
            .copied()
            .filter(|s| ![200, 503].contains(s))
            .count(),
        0,
        "only answers and 503s: {statuses:?}"
    );
    // Both serve again.
    for app in [&a, &b] {
        let res = TestApp::bare_client()
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .expect("after");
        assert_eq!(res.status(), 200);
    }
    let upstream = mock.requests().await.len();
    assert_books(a.svc.db.pool(), user, upstream, 0, Duration::from_secs(20)).await;
    b.shutdown().await;
    a.stop().await;
}

/// 1,000 units, 50 concurrent calls that each reserve 7 (one token per body byte at 0.05 units)
/// and cost 100 (the upstream reports a prompt of 2,000 tokens, as images given by URL can
/// cost more than their text): what the reservations do not cover is charged from the free
/// balance as far as it goes, the rest is counted as uncollected, the grant closes, and the
/// account is usable again. (Output beyond the bound is never charged: `gateway::grant`.)
async fn usage_beyond_the_reservation_is_charged_and_the_grant_closes(backend: Backend) {
    let gw = Gw::start(backend, "0.001", |c, _| {
        c.pricing.insert(
            "beyond".into(),
            service::config::PriceConfig {
                input_per_1m: "0.05".into(),
                output_per_1m: "0".into(),
                cached_input_per_1m: None,
                per_request: None,
                ..Default::default()
            },
        );
        c.channels[0].models.push("beyond".into());
    })
    .await;
    let body = json!({ "model": "beyond", "max_tokens": 1, "mock": { "prompt_tokens": 2000 },
                       "messages": [{ "role": "user", "content": "hi" }] });
    let calls = futures_util::future::join_all(
        (0..50).map(|_| gw.post("/v1/chat/completions", body.clone())),
    )
    .await;
    let served = calls.iter().filter(|r| r.status() == 200).count();
    assert!(
        served >= 10,
        "at least the balance's worth is served: {served}"
    );
    let upstream = gw.mock.requests().await.len();
    // The grant closes once the account is idle, and every call is then charged or counted as
    // uncollected (the last overage is collected after the close released the hold).
    let deadline = Instant::now() + Duration::from_secs(15);
    let uncollected = loop {
        let open = gw
            .scalar("SELECT COUNT(*) FROM credit_grants WHERE user_id = $1 AND status = 'open'")
            .await;
        let charged = gw
            .scalar("SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $1 AND kind = 'charge'")
            .await;
        let uncollected = gw.metric("tollgate_credit_uncollected_units_total").await as i64;
        if open == 0 && charged + uncollected == upstream as i64 * 100 {
            break uncollected;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {open} open grants, {charged} charged, {uncollected} uncollected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (balance, charged) = assert_books(
        gw.app.svc.db.pool(),
        gw.user_id,
        upstream,
        uncollected,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        charged + balance,
        1_000,
        "what was charged left the balance"
    );
    assert_eq!(
        charged + uncollected,
        upstream as i64 * 100,
        "every call was charged in full or counted as uncollected"
    );
    assert!(uncollected > 0, "more was served than the balance held");
    assert_eq!(balance, 0, "the whole balance was collected");
    // Usable again: a credit and a call.
    credit(&gw.app, gw.user_id, "0.01").await;
    let res = gw.post("/v1/chat/completions", body).await;
    assert_eq!(res.status(), 200);
    gw.stop().await;
}

/// A client that leaves before the first byte: the call goes on, is read to its end (a
/// non-stream answer) or cancelled and charged as partial (a stream), and leaves its row.
async fn a_client_that_leaves_before_the_first_byte_is_logged_and_charged(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    for stream in [false, true] {
        let body = json!({ "model": "gpt-4o-mini", "stream": stream,
                           "messages": [{ "role": "user", "content": "hello there world" }],
                           "mock": { "delay_ms": 800 } });
        let res = TestApp::bare_client()
            .post(gw.app.url("/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .json(&body)
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        assert!(res.is_err(), "the client gave up first");
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let upstream = gw.mock.requests().await.len();
    assert_eq!(upstream, 2);
    let (_, charged) = assert_books(
        gw.app.svc.db.pool(),
        gw.user_id,
        2,
        0,
        Duration::from_secs(15),
    )
    .await;
    let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
        &gw.app.svc.db.sql("SELECT stream, usage_source, error_class, cost FROM usage_logs WHERE user_id = $1 ORDER BY stream"),
    )
    .bind(gw.user_id)
    .fetch_all(gw.app.svc.db.pool())
    .await
    .expect("rows");
    assert_eq!(
        rows[0].1, "upstream",
        "the non-stream answer was read to its end"
    );
    assert_eq!(rows[0].3, 5, "and charged in full");
    assert_eq!(rows[1].2.as_deref(), Some("client_cancelled"));
    assert!(charged >= 5);
    gw.stop().await;
}

crate::both_backends!(
    usage_beyond_the_reservation_is_charged_and_the_grant_closes,
    a_client_that_leaves_before_the_first_byte_is_logged_and_charged,
);

/// A redis-server of the test's own on a free port.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (make test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    /// SIGSTOP / SIGCONT: a stalled server that keeps its connections open.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis dies while readiness and sign-ins keep calling it, and comes back: the instance
/// reconnects by itself within seconds, whatever was called meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_comes_back_by_itself_after_an_outage() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut redis = OwnRedis::start(port);
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = service::secret::SecretString::new(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let client = TestApp::bare_client();
    // Readiness stays 200 (calls are served without Redis) and names what is degraded.
    let ready = || async {
        let res = client.get(app.url("/readyz")).send().await.expect("readyz");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        body["degraded"] == json!(["redis"])
    };
    assert!(!ready().await);
    redis.kill();
    // Calls during the outage: readiness and sign-ins (which count attempts in Redis).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(ready().await, "redis is named degraded");
        let res = app.login(&TestApp::client(), "admin", "wrong").await;
        assert_eq!(res.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _redis = OwnRedis::start(redis.port);
    let back = Instant::now();
    loop {
        if !ready().await {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "redis was not reconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = app.login(&TestApp::client(), "admin", ADMIN_PASSWORD).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    app.stop().await;
}

/// Every line logged while serving a call carries the call's request id (the one its answer
/// names), its key and its model: one span per request, also on the task the call runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_call_carries_its_request_id_key_and_model() {
    let storage = Storage::new(Backend::Sqlite).await;
    let mock = Mock::start();
    let gw = Proc::start(&storage, &mock, "report_interval_ms: 100");
    let (user, key) = funded_user(&gw.base, 60_000).await;
    let res = TestApp::bare_client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(
            &json!({ "model": "pricey", "max_tokens": 60, "messages": [{ "role": "user", "content": "hi" }],
                       "mock": { "status": 500 } }),
        )
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 503);
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let key_id: i64 = {
        let pool = any_pool(&storage.db_url).await;
        let k = scalar(&pool, "SELECT id FROM api_keys WHERE user_id = $1", user).await;
        pool.close().await;
        k
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let line: Value = loop {
        let found = gw
            .output()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("upstream failed"))
            });
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no warning logged: {}",
            gw.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let span = &line["span"];
    assert_eq!(span["request.id"], id.as_str(), "{line}");
    assert_eq!(span["key.id"], key_id, "{line}");
    assert_eq!(span["model"], "pricey", "{line}");
    assert!(
        !gw.output().contains(&key),
        "the key itself is never logged"
    );
    gw.stop();
    storage.destroy().await;
}

/// An instance killed outright (SIGKILL) with a grant open: another instance takes its lease over
/// once it has expired and releases what the grant held; the usage it had reported stays charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_holds_are_released_by_another() {
    let storage = Storage::new(Backend::Postgres).await;
    let mock = Mock::start();
    let billing = "report_interval_ms: 100, idle_close_ms: 60000, sweep_after_seconds: 2";
    let mut a = Proc::start(&storage, &mock, billing);
    let b = Proc::start(&storage, &mock, billing);
    let (user, key) = funded_user(&a.base, 60_000).await;
    assert_eq!(a.call(&key, &pricey_call()).await, 200);
    let pool = any_pool(&storage.db_url).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // reported
    let held = scalar(&pool, "SELECT reserved FROM users WHERE id = $1", user).await;
    assert!(held > 0, "A holds a grant");
    a.kill();
    let killed = Instant::now();
    loop {
        let reserved = scalar(&pool, "SELECT reserved FROM users WHERE id = $1", user).await;
        if reserved == 0 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "B never released A's hold: {}",
            b.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "not before A's lease could have ended"
    );
    let (balance, charged) = assert_books(&pool, user, 1, 0, Duration::from_secs(5)).await;
    assert_eq!((balance, charged), (60_000 - PRICEY_COST, PRICEY_COST));
    b.stop();
    pool.close().await;
    storage.destroy().await;
}
