//! Scheduled jobs: once per tick across instances, log retention with archival to a real
//! S3-compatible server (moto), channel probes, SQLite backup and restore, cleanup.

use crate::common::*;
use crate::faults::{Proc, signal};
use crate::mock::Mock;
use serde_json::{Value, json};
use service::config::{S3Config, StorageKind};
use service::secret::SecretString;
use service::storage::{ObjectStore as _, S3Store, Store};
use sqlx::Row as _;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;

/// moto's S3 server, started on a free port of 127.0.0.1 for one test (with its own bucket).
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let python = std::env::var("TOLLGATE_TEST_PYTHON").expect(
            "TOLLGATE_TEST_PYTHON must name a python with moto[server] (make unit sets it)",
        );
        let bucket = format!("tg-{}", uuid::Uuid::new_v4().simple());
        let client = reqwest::Client::new();
        // The free port is found by binding and releasing it, so another test's server may take
        // it first: moto then exits, and it is started again on another port.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let mut child = Command::new(&python)
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto");
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                // moto checks no signature: a plain PUT creates the bucket.
                if let Ok(res) = client.put(format!("{endpoint}/{bucket}")).send().await
                    && res.status().is_success()
                {
                    return S3Server {
                        child,
                        endpoint,
                        bucket,
                    };
                }
                if child.try_wait().expect("moto's status").is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "moto did not start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("moto exited at once on five free ports");
    }

    pub fn config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            endpoint: self.endpoint.clone(),
            prefix: "tollgate/".into(),
            access_key_id: SecretString::new("test-access"),
            secret_access_key: SecretString::new("test-secret"),
            path_style: true,
            timeout_seconds: 3,
        }
    }

    /// Stops answering (SIGSTOP), keeping what it stores.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin() -> reqwest::Client {
    TestApp::bare_client()
}

/// A GET of the admin API with the token, as JSON.
pub async fn admin_json<T: serde::de::DeserializeOwned>(url: impl reqwest::IntoUrl) -> T {
    admin()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin GET")
        .json()
        .await
        .expect("json")
}

/// Runs `job` now through the admin API and waits for its end; the finished run.
pub async fn run_job(base: &str, job: &str) -> Value {
    let res = admin()
        .post(format!("{base}/api/admin/jobs/{job}/run"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("run job");
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let started: Value = res.json().await.expect("json");
    assert_eq!(started["outcome"], "running");
    assert_eq!(started["manual"], true);
    let id = started["id"].as_i64().expect("run id");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Vec<Value> =
            admin_json(format!("{base}/api/admin/jobs/{job}/runs?limit=5")).await;
        if let Some(run) = runs.iter().find(|r| r["id"] == id)
            && run["outcome"] != "running"
        {
            return run.clone();
        }
        assert!(Instant::now() < deadline, "{job} did not finish: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Inserts a usage row of `user_id` at `at` (unix ms); its id.
async fn usage_row(app: &TestApp, user_id: i64, at: i64, cost: i64) -> i64 {
    let mut tx = app.svc.db.begin_write().await.expect("tx");
    let db = &app.svc.db;
    let sql = db.sql(
        "INSERT INTO usage_logs (request_id, user_id, key_id, key_prefix, model, served_model, \
         channel_id, attempts, stream, prompt_tokens, completion_tokens, cached_tokens, cost, \
         usage_source, status, error_class, latency_ms, ttft_ms, client_ip, created_at) \
         VALUES ($1, $2, NULL, 'sk-abc', 'gpt-test', 'gpt-test-2024', 1, 1, 1, 10, 20, 3, $3, \
         'upstream', 200, NULL, 40, 12, '127.0.0.1', $4) RETURNING id",
    );
    let q = sqlx::query(&sql)
        .bind(format!("req-{at}-{cost}"))
        .bind(user_id)
        .bind(cost)
        .bind(at);
    let id = service::db::Db::insert_id(db.backend(), q, &mut *tx)
        .await
        .expect("insert usage");
    tx.commit().await.expect("commit");
    id
}

async fn usage_ids(app: &TestApp) -> Vec<i64> {
    sqlx::query(&app.svc.db.sql("SELECT id FROM usage_logs ORDER BY id"))
        .fetch_all(app.svc.db.pool())
        .await
        .expect("ids")
        .iter()
        .map(|r| r.try_get(0).expect("id"))
        .collect()
}

/// The rows of an archive object, by id.
fn archive_rows(body: &[u8]) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .expect("gzip");
    let mut rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .format("%Y-%m-%d")
        .to_string()
}

/// The object-store contract, against the real S3-compatible server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_keeps_the_contract() {
    let s3 = S3Server::start().await;
    let store = S3Store::new(&s3.config());
    service::storage::contract::check(&store).await;
    // The prefix is honoured: the objects sit under it in the bucket.
    let mut bare = s3.config();
    bare.prefix = String::new();
    let keys: Vec<String> = S3Store::new(&bare)
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("tollgate/")), "{keys:?}");
    // Down: an error within the timeout, never a hang.
    s3.pause();
    let started = Instant::now();
    let down = store.get("c.txt").await;
    s3.resume();
    assert!(down.is_err(), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Rows older than the window land in S3 as gzip JSON Lines, one object per day, row for row,
/// and leave the database; newer rows stay; the aggregates stay; a second run does nothing; S3
/// down during a run: nothing deleted, the run fails visibly, and the next one completes.
async fn retention_archives_to_s3(backend: Backend) {
    let s3 = S3Server::start().await;
    let s3_config = s3.config();
    let app = TestApp::spawn_with(backend, |c| {
        c.storage.kind = StorageKind::S3;
        c.storage.s3 = s3_config.clone();
        c.retention.usage_days = 30;
        c.retention.batch_rows = 2;
    })
    .await;
    let user = app
        .create_user("archived", "archived-password", "user")
        .await;
    let now = service::now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    let old_a = today - 40 * DAY_MS + 3_600_000;
    let old_b = today - 35 * DAY_MS + 60_000;
    let mut old_ids = Vec::new();
    for i in 0..5 {
        old_ids.push(usage_row(&app, user, old_a + i, 100 + i).await);
    }
    for i in 0..3 {
        old_ids.push(usage_row(&app, user, old_b + i, 200 + i).await);
    }
    let young = vec![
        usage_row(&app, user, today - 29 * DAY_MS, 7).await,
        usage_row(&app, user, now, 8).await,
    ];
    let hourly_before: i64 = sqlx::query(&app.svc.db.sql("SELECT COUNT(*) FROM usage_hourly"))
        .fetch_one(app.svc.db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("n");

    let run = run_job(&app.base, "retention").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    let detail = run["detail"].as_str().expect("detail");
    assert!(detail.contains("archived 8 rows of 2 days"), "{run}");
    // retention.batch_rows = 2: 5 rows are 3 statements, 3 rows are 2.
    assert!(
        detail.contains("deleted in 5 batches of at most 2"),
        "{run}"
    );
    assert_eq!(usage_ids(&app).await, young, "only the young rows stay");
    let hourly_after: i64 = sqlx::query(&app.svc.db.sql("SELECT COUNT(*) FROM usage_hourly"))
        .fetch_one(app.svc.db.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("n");
    assert_eq!(hourly_before, hourly_after, "aggregates are kept");

    // In the bucket, under the prefix: one object per day, row for row.
    let store = S3Store::new(&s3_config);
    let a = store
        .get(&format!("usage/{}.jsonl.gz", day_of(old_a)))
        .await
        .expect("get")
        .expect("day a archived");
    let rows = archive_rows(&a);
    assert_eq!(
        rows.iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect::<Vec<_>>(),
        old_ids[..5]
    );
    assert_eq!(rows[0]["cost"], 100);
    assert_eq!(rows[0]["user_id"], user);
    assert_eq!(rows[0]["model"], "gpt-test");
    assert_eq!(rows[0]["served_model"], "gpt-test-2024");
    assert_eq!(rows[0]["key_prefix"], "sk-abc");
    assert_eq!(rows[0]["cached_tokens"], 3);
    assert_eq!(rows[0]["ttft_ms"], 12);
    assert_eq!(rows[0]["created_at"], old_a);
    let b = store
        .get(&format!("usage/{}.jsonl.gz", day_of(old_b)))
        .await
        .expect("get")
        .expect("day b archived");
    assert_eq!(archive_rows(&b).len(), 3);

    // The admin API lists the days and streams one back.
    let days: Vec<Value> = admin_json(app.url("/api/admin/archives")).await;
    assert_eq!(
        days.iter()
            .map(|d| d["day"].as_str().expect("day"))
            .collect::<Vec<_>>(),
        vec![day_of(old_a), day_of(old_b)]
    );
    let res = admin()
        .get(app.url(&format!("/api/admin/archives/{}", day_of(old_b))))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/gzip");
    assert_eq!(&res.bytes().await.expect("body")[..], &b[..]);
    let res = admin()
        .get(app.url("/api/admin/archives/2001-01-01"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 404);
    let res = admin()
        .get(app.url("/api/admin/archives/not-a-day"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 400);

    // A second run has nothing to do.
    let run = run_job(&app.base, "retention").await;
    assert_eq!(run["outcome"], "ok");
    assert!(
        run["detail"]
            .as_str()
            .expect("detail")
            .contains("archived 0 rows of 0 days"),
        "{run}"
    );
    assert_eq!(usage_ids(&app).await, young);

    // A late row of an archived day, then S3 stops answering: the run fails, nothing goes.
    let late = usage_row(&app, user, old_a + 10, 999).await;
    s3.pause();
    let run = run_job(&app.base, "retention").await;
    s3.resume();
    assert_eq!(run["outcome"], "failed", "{run}");
    assert!(
        run["error"].as_str().expect("error").contains("usage/"),
        "{run}"
    );
    let mut expected = young.clone();
    expected.push(late);
    expected.sort();
    assert_eq!(usage_ids(&app).await, expected, "nothing deleted");
    let jobs: Vec<Value> = admin_json(app.url("/api/admin/jobs")).await;
    let retention = jobs.iter().find(|j| j["name"] == "retention").expect("job");
    assert_eq!(retention["last_run"]["outcome"], "failed");
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("tollgate_job_runs_total{job=\"retention\",outcome=\"failed\"} 1"),
        "{metrics}"
    );

    // The next run completes, and the day's object keeps its earlier rows.
    let run = run_job(&app.base, "retention").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert_eq!(usage_ids(&app).await, young);
    let a = store
        .get(&format!("usage/{}.jsonl.gz", day_of(old_a)))
        .await
        .expect("get")
        .expect("day a");
    let mut with_late = old_ids[..5].to_vec();
    with_late.push(late);
    assert_eq!(
        archive_rows(&a)
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect::<Vec<_>>(),
        with_late
    );
    app.stop().await;
}

/// The embedded default: archives go to the local directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_archives_to_the_local_directory_by_default() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.create_user("local", "local-password", "user").await;
    let old = service::now_ms() - 100 * DAY_MS;
    let id = usage_row(&app, user, old, 5).await;
    let run = run_job(&app.base, "retention").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert!(usage_ids(&app).await.is_empty());
    let path = app
        .storage
        .dir
        .join("objects/usage")
        .join(format!("{}.jsonl.gz", day_of(old)));
    let rows = archive_rows(&std::fs::read(&path).expect("archive file"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], id);
    app.stop().await;
}

/// Two OS processes on one database, a job every second: each tick runs once.
async fn a_tick_runs_once_across_two_processes(backend: Backend) {
    let storage = Storage::new(backend).await;
    let mock = Mock::start();
    let jobs = "jobs:\n  cleanup: { schedule: \"* * * * * *\" }\n  retention: { enabled: false }\n  \
                channel_probe: { enabled: false }\n  backup: { enabled: false }\n";
    let redis = (backend != Backend::Sqlite).then(redis_url);
    let a = Proc::start_custom(&storage, &mock, "", "warn", redis.as_deref(), jobs);
    let b = Proc::start_custom(&storage, &mock, "", "warn", redis.as_deref(), jobs);
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.stop();
    b.stop();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&storage.db_url)
        .await
        .expect("connect");
    let rows = sqlx::query(
        "SELECT tick, COUNT(*) AS n, MIN(outcome) AS outcome, MAX(error) AS error FROM job_runs \
         WHERE job = 'cleanup' GROUP BY tick ORDER BY tick",
    )
    .fetch_all(&mut conn)
    .await
    .expect("runs");
    let ticks: Vec<(i64, i64, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("tick").expect("tick"),
                r.try_get("n").expect("n"),
                r.try_get("outcome").expect("outcome"),
                r.try_get::<Option<service::db::Text>, _>("error")
                    .expect("error")
                    .map(|t| t.0),
            )
        })
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    let last = ticks.last().map(|t| t.0);
    for (tick, n, outcome, error) in &ticks {
        assert_eq!(*n, 1, "tick {tick} ran {n} times: {ticks:?}");
        // The stop may land in the last tick's run, which then ends as failed, saying why.
        let stopped = Some(*tick) == last
            && error
                .as_deref()
                .is_some_and(|e| e.contains("shutting down"));
        assert!(outcome == "ok" || stopped, "tick {tick}: {ticks:?}");
        assert_eq!(tick % 1000, 0, "ticks are whole seconds");
    }
    drop(conn);
    storage.destroy().await;
}

/// A failing channel is opened by the probe (here and, through the database, on another
/// instance) and closed again when it recovers.
async fn a_probe_opens_and_closes_a_channel(backend: Backend) {
    let mock = Mock::start();
    let app = TestApp::spawn(backend).await;
    let other = TestApp::spawn_on(app.storage.clone(), |_| {}).await;
    let res = admin()
        .post(app.url("/api/admin/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({ "name": "flaky", "base_url": mock.url("status=503"), "api_key": "k",
                       "models": ["probe-model"] }),
        )
        .send()
        .await
        .expect("create channel");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let health = |base: String| async move {
        let all: Vec<Value> = admin_json(format!("{base}/api/admin/channels/health")).await;
        all.into_iter().find(|h| h["channel_id"] == id)
    };
    // Both instances know the channel before the probe.
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(other.base.clone()).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the other instance never loaded the channel"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A public model: priced. With neither calls nor probes, it is idle.
    let res = admin()
        .put(app.url("/api/admin/prices/probe-model"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "input_per_1m": "1", "output_per_1m": "2" }))
        .send()
        .await
        .expect("price");
    assert_eq!(res.status(), 200);
    let seen = status_of(&app.base, "probe-model", "idle").await;
    assert_eq!(seen["healthy"], true, "{seen}");

    let run = run_job(&app.base, "channel_probe").await;
    assert_eq!(run["outcome"], "ok");
    assert!(
        run["detail"]
            .as_str()
            .expect("detail")
            .contains("failing: flaky"),
        "{run}"
    );
    // Without a single call, the status page knows the model is down, and the service, whose
    // only model it is, is not healthy.
    let seen = status_of(&app.base, "probe-model", "down").await;
    let model = &seen["models"][0];
    assert_eq!(
        model["probes"],
        json!({ "channels": 1, "ok": 0, "failing": 1, "at": model["probes"]["at"] }),
        "{seen}"
    );
    assert!(model["probes"]["at"].as_i64().is_some());
    assert_eq!(model["hour"]["requests"], 0);
    assert_eq!(seen["healthy"], false, "{seen}");
    let models_check = seen["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "models"))
        .expect("the models check");
    assert_eq!(models_check["ok"], false);
    assert_eq!(models_check["critical"], true);
    assert!(
        models_check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 of 1 down: probe-model")),
        "{models_check}"
    );
    let db_check = seen["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "database"))
        .expect("the database check");
    assert_eq!(db_check["ok"], true);
    let h = health(app.base.clone()).await.expect("health");
    assert!(h["cooldown_ms"].as_u64().expect("cooldown") > 0, "{h}");
    assert_eq!(h["last_probe"]["ok"], false);
    assert_eq!(h["last_probe"]["status"], 503);
    assert_eq!(h["last_probe"]["failures"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(other.base.clone()).await.expect("health");
        if h["cooldown_ms"].as_u64().expect("cooldown") > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never opened it: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requests = mock.requests().await;
    let probe = requests.last().expect("the probe reached the mock");
    assert_eq!(probe["model"], "probe-model");

    // It recovers.
    let res = admin()
        .put(app.url(&format!("/api/admin/channels/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({ "name": "flaky", "base_url": mock.url(""), "api_key": "k",
                       "models": ["probe-model"] }),
        )
        .send()
        .await
        .expect("update channel");
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    let run = run_job(&app.base, "channel_probe").await;
    assert!(
        run["detail"]
            .as_str()
            .expect("detail")
            .contains("all answered"),
        "{run}"
    );
    let seen = status_of(&app.base, "probe-model", "operational").await;
    assert_eq!(seen["healthy"], true, "{seen}");
    assert_eq!(seen["degraded"], json!([]), "{seen}");
    let h = health(app.base.clone()).await.expect("health");
    assert_eq!(h["cooldown_ms"], 0, "{h}");
    assert_eq!(h["last_probe"]["ok"], true);
    assert_eq!(h["last_probe"]["failures"], 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(other.base.clone()).await.expect("health");
        if h["cooldown_ms"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never closed it: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    other.shutdown().await;
    app.stop().await;
}

/// `/api/status` once `model` shows `state` (the reading is cached for 2 s).
async fn status_of(base: &str, model: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen: Value = admin()
            .get(format!("{base}/api/status"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        let now = seen["models"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["model"] == model))
            .map(|m| m["state"].clone());
        if now == Some(json!(state)) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{model} never showed {state}: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every table of a SQLite database, row by row, as text.
async fn dump(url: &str) -> Vec<(String, Vec<String>)> {
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
        .await
        .expect("open");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT json_array(*) FROM (SELECT * FROM \"{t}\") ORDER BY 1"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|_| Vec::new());
        out.push((t, rows));
    }
    out
}

/// An online backup to object storage, then `tollgate restore` into a fresh file: every table
/// equal. Older backups beyond `backup.keep` are removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_every_table() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.backup.keep = 2).await;
    let user = app.create_user("kept", "kept-password", "user").await;
    for i in 0..20 {
        usage_row(&app, user, service::now_ms() - i * 1000, i).await;
    }
    let run = run_job(&app.base, "backup").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    let store = Store::from_config(&app.svc.config.storage);
    let backups = service::jobs::backups(&store).await.expect("list");
    assert_eq!(backups.len(), 1, "{backups:?}");

    // What the database holds now (a later write would not be in the backup: none happens).
    let db_file = app.storage.dir.join("tollgate.db");
    let original = dump(&format!("sqlite://{}?mode=ro", db_file.display())).await;
    assert!(
        original
            .iter()
            .any(|(t, rows)| t == "usage_logs" && rows.len() == 20)
    );

    // Restored by the binary, as an operator would, into a fresh file.
    let fresh = app.storage.dir.join("restored/tollgate.db");
    let config = app.storage.dir.join("restore.yaml");
    std::fs::write(
        &config,
        format!(
            "database: {{ url: \"sqlite://{}\" }}\nstorage: {{ kind: local, local_dir: \"{}\" }}\n",
            fresh.display(),
            app.storage.dir.join("objects").display()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["restore", "--config"])
        .arg(&config)
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("restored backups/tollgate-"));
    let restored = dump(&format!("sqlite://{}?mode=ro", fresh.display())).await;
    assert_eq!(original, restored);

    // A second restore onto the file is refused without --force.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["restore", "--config"])
        .arg(&config)
        .output()
        .expect("restore");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    // Three more backups, one second apart (names are by the second): two are kept.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(run_job(&app.base, "backup").await["outcome"], "ok");
    }
    let kept = service::jobs::backups(&store).await.expect("list");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&backups[0]));
    app.stop().await;
}

/// Backups are of SQLite: on PostgreSQL the job is off and "run now" says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_for_sqlite_only() {
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.jobs.backup.enabled = true).await;
    let res = admin()
        .post(app.url("/api/admin/jobs/backup/run"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("run");
    assert_eq!(res.status(), 400);
    let jobs: Vec<Value> = admin_json(app.url("/api/admin/jobs")).await;
    let backup = jobs.iter().find(|j| j["name"] == "backup").expect("backup");
    assert_eq!(backup["enabled"], false);
    assert!(backup["next_run"].is_null());
    app.stop().await;
}

/// Cleanup removes what is past its window and keeps the rest; "run now" while a run holds the
/// lease is a 409; an unknown job is a 404; a plain user is refused.
async fn cleanup_removes_what_is_past_its_window(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.redeem.idempotency_hours = 1;
        c.retention.job_runs_days = 1;
        c.jobs.cleanup.enabled = true;
        c.jobs
            .cleanup
            .set_schedule("0 0 0 1 1 *")
            .expect("a cron expression");
    })
    .await;
    let user = app
        .create_user("redeemer", "redeemer-password", "user")
        .await;
    let now = service::now_ms();
    for (key, at) in [("old", now - 2 * 3_600_000), ("new", now - 60_000)] {
        app.svc
            .db
            .write(
                sqlx::query(&app.svc.db.sql(
                    "INSERT INTO redeem_requests (user_id, idempotency_key, code_hash, code_id, \
                     amount, balance_after, created_at) VALUES ($1, $2, 'h', 1, 1, 1, $3)",
                ))
                .bind(user)
                .bind(key)
                .bind(at),
            )
            .await
            .expect("insert");
    }
    for (tick, at) in [(1, now - 3 * DAY_MS), (2, now - 3_600_000)] {
        app.svc
            .db
            .write(
                sqlx::query(&app.svc.db.sql(
                    "INSERT INTO job_runs (job, tick, manual, instance, started_at, finished_at, \
                     outcome) VALUES ('retention', $1, 0, 'x', $2, $3, 'ok')",
                ))
                .bind(tick)
                .bind(at)
                .bind(at),
            )
            .await
            .expect("insert");
    }
    let run = run_job(&app.base, "cleanup").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert!(
        run["detail"]
            .as_str()
            .expect("detail")
            .contains("1 idempotency records"),
        "{run}"
    );
    let keys: Vec<String> = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT idempotency_key FROM redeem_requests"),
    )
    .fetch_all(app.svc.db.pool())
    .await
    .expect("keys");
    assert_eq!(keys, vec!["new".to_string()]);
    let ticks: Vec<i64> = sqlx::query_scalar(
        &app.svc
            .db
            .sql("SELECT tick FROM job_runs WHERE job = 'retention' ORDER BY tick"),
    )
    .fetch_all(app.svc.db.pool())
    .await
    .expect("ticks");
    assert_eq!(ticks, vec![2]);

    // A held lease: "run now" is refused until it is released.
    app.svc
        .db
        .write(sqlx::query(
            "UPDATE job_leases SET holder = 'elsewhere', expires_at = 9000000000000 WHERE job = 'cleanup'",
        ))
        .await
        .expect("hold");
    let res = admin()
        .post(app.url("/api/admin/jobs/cleanup/run"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("run");
    assert_eq!(res.status(), 409);
    // An expired lease is taken over.
    app.svc
        .db
        .write(sqlx::query(
            "UPDATE job_leases SET expires_at = 1 WHERE job = 'cleanup'",
        ))
        .await
        .expect("expire");
    assert_eq!(run_job(&app.base, "cleanup").await["outcome"], "ok");

    let res = admin()
        .post(app.url("/api/admin/jobs/nope/run"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("run");
    assert_eq!(res.status(), 404);
    let client = TestApp::client();
    app.create_user("plain", "plain-password", "user").await;
    app.login(&client, "plain", "plain-password").await;
    for (method, path) in [
        ("GET", "/api/admin/jobs"),
        ("POST", "/api/admin/jobs/cleanup/run"),
        ("GET", "/api/admin/jobs/cleanup/runs"),
        ("GET", "/api/admin/archives"),
        ("GET", "/api/admin/archives/2026-01-01"),
    ] {
        let res = client
            .request(method.parse().expect("method"), app.url(path))
            .send()
            .await
            .expect("call");
        assert_eq!(res.status(), 403, "{method} {path}");
    }
    // The list shows the schedule and the next run.
    let jobs: Vec<Value> = admin_json(app.url("/api/admin/jobs")).await;
    let cleanup = jobs
        .iter()
        .find(|j| j["name"] == "cleanup")
        .expect("cleanup");
    assert_eq!(cleanup["schedule"], "0 0 0 1 1 *");
    assert_eq!(cleanup["enabled"], true);
    assert!(cleanup["next_run"].as_i64().expect("next") > now);
    assert!(cleanup["last_success"].as_i64().is_some());
    let audit: Value = admin_json(app.url("/api/admin/audit?action=job.run")).await;
    assert!(audit.to_string().contains("job:cleanup"), "{audit}");
    app.stop().await;
}

/// Changes the amount of the user's latest ledger row behind the gateway's back (drift on
/// purpose; the same `by` negated puts it back).
pub async fn shift_last_ledger_row(gw: &crate::gateway::Gw, by: i64) {
    let db = &gw.app.svc.db;
    let last: i64 = sqlx::query_scalar(&db.sql("SELECT MAX(id) FROM ledger WHERE user_id = $1"))
        .bind(gw.user_id)
        .fetch_one(db.pool())
        .await
        .expect("the latest ledger row");
    sqlx::query(&db.sql("UPDATE ledger SET amount = amount + $1 WHERE id = $2"))
        .bind(by)
        .bind(last)
        .execute(db.pool())
        .await
        .expect("a ledger row changed");
}

/// The ledger check finds a balance that disagrees with its ledger (a row corrupted on purpose),
/// names the difference, sets the drift gauge, and finds nothing once the row is put back.
async fn the_ledger_check_finds_a_balance_or_a_day_its_ledger_does_not_explain(backend: Backend) {
    use crate::gateway::Gw;
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let _ = res.bytes().await;
    gw.settled(1).await;
    let base = gw.app.base.clone();
    let run = run_job(&base, "ledger_check").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert!(
        run["detail"].as_str().is_some_and(|d| d.contains("agrees")),
        "{run}"
    );
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 0.0);
    let pool = gw.app.svc.db.pool();
    let corrupt = |by: i64| shift_last_ledger_row(&gw, by);
    corrupt(-7).await;
    let run = run_job(&base, "ledger_check").await;
    assert!(
        run["detail"]
            .as_str()
            .is_some_and(|d| d.contains("by 7 units")),
        "{run}"
    );
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 7.0);
    corrupt(7).await;
    run_job(&base, "ledger_check").await;
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 0.0);

    // The day's charge names the day of its call, and equals the usage row's cost.
    let (charged, day): (i64, Option<i64>) = sqlx::query_as(&gw.app.svc.db.sql(
        "SELECT CAST(SUM(-amount) AS BIGINT), MAX(usage_day) FROM ledger WHERE user_id = $1 AND kind = 'charge'",
    ))
    .bind(gw.user_id)
    .fetch_one(pool)
    .await
    .expect("charges");
    let (cost, at): (i64, i64) = sqlx::query_as(
        &gw.app
            .svc
            .db
            .sql("SELECT cost, created_at FROM usage_logs WHERE user_id = $1"),
    )
    .bind(gw.user_id)
    .fetch_one(pool)
    .await
    .expect("usage row");
    assert!(cost > 0);
    assert_eq!(charged, cost);
    assert_eq!(day, Some(at - at % 86_400_000));
    // A usage row that tells another cost than was charged: the check finds the user and day.
    let lie_sql = gw
        .app
        .svc
        .db
        .sql("UPDATE usage_logs SET cost = cost + $1 WHERE user_id = $2");
    let lie = |by: i64| {
        sqlx::query(&lie_sql)
            .bind(by)
            .bind(gw.user_id)
            .execute(pool)
    };
    lie(3).await.expect("corrupt");
    let run = run_job(&base, "ledger_check").await;
    assert!(
        run["detail"]
            .as_str()
            .is_some_and(|d| d
                .contains("1 user days' charges differ from their usage rows' costs by 3 units")),
        "{run}"
    );
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 3.0);
    lie(-3).await.expect("restore");
    run_job(&base, "ledger_check").await;
    assert_eq!(gw.metric("tollgate_ledger_drift_units").await, 0.0);
    gw.stop().await;
}

crate::both_backends!(
    the_ledger_check_finds_a_balance_or_a_day_its_ledger_does_not_explain,
    retention_archives_to_s3,
    a_tick_runs_once_across_two_processes,
    a_probe_opens_and_closes_a_channel,
    cleanup_removes_what_is_past_its_window,
);
