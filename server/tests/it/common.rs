//! Spawns the real server on port 0 against a fresh SQLite file, or a fresh PostgreSQL database
//! plus its own Redis key prefix. Nothing depends on what an earlier test left behind.

use service::Services;
use service::config::Config;
use service::secret::SecretString;
use sqlx::Connection as _;
use std::path::PathBuf;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// Runs a scenario against every backend, as `<name>::sqlite`, `<name>::postgres` and
/// `<name>::mysql`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$name($crate::common::Backend::Mysql).await
            }
        }
    )*};
}

pub fn pg_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Drops the database `name` (its connections ended) on the test server of `backend`
/// (PostgreSQL or MySQL), if it exists.
pub async fn drop_database(backend: Backend, name: &str) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
        }
        Backend::Mysql => {
            let mut conn = sqlx::MySqlConnection::connect(&mysql_admin_url()).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut conn)
                .await?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}

/// A new empty database `name` on the test server of `backend` (PostgreSQL or MySQL), and its
/// URL. MySQL's compares text byte for byte from the start, as the other engines do.
pub async fn create_database(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
                .await
                .expect("PostgreSQL must be running for the tests (make test starts it)");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = pg_admin_url();
            let base = base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        Backend::Mysql => {
            let mut conn = sqlx::MySqlConnection::connect(&mysql_admin_url())
                .await
                .expect("MySQL or MariaDB must be running for the tests (make test starts it)");
            sqlx::query(&format!(
                "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .execute(&mut conn)
            .await
            .expect("create database");
            format!("{}/{name}", mysql_admin_url())
        }
        Backend::Sqlite => panic!("a SQLite database is a file"),
    }
}

pub fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database (and Redis prefix) of one test, shared by every instance the test starts.
#[derive(Clone)]
pub struct Storage {
    pub backend: Backend,
    pub dir: PathBuf,
    pub db_url: String,
    pub pg_name: Option<String>,
    pub redis_prefix: String,
}

impl Storage {
    pub async fn new(backend: Backend) -> Storage {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("tollgate-test-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (db_url, pg_name) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.join("tollgate.db").display()),
                None,
            ),
            Backend::Postgres | Backend::Mysql => {
                let name = format!("tg_test_{id}");
                (create_database(backend, &name).await, Some(name))
            }
        };
        Storage {
            backend,
            dir,
            db_url,
            pg_name,
            redis_prefix: format!("tgtest:{id}:"),
        }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.server.host = "127.0.0.1".into();
        c.server.port = 0;
        c.server.drain_seconds = 5;
        c.server.site_root = self.dir.join("site");
        std::fs::create_dir_all(&c.server.site_root).expect("site folder");
        c.database.url = SecretString::new(self.db_url.clone());
        c.database.max_connections = 8;
        c.log.dir = String::new();
        c.admin.api_token = SecretString::new(ADMIN_TOKEN);
        // Scheduled jobs stay off unless a test turns one on (a probe would call the mocks).
        c.jobs.retention.enabled = false;
        c.jobs.cleanup.enabled = false;
        c.jobs.channel_probe.enabled = false;
        c.jobs.backup.enabled = false;
        c.storage.local_dir = self.dir.join("objects");
        if self.backend != Backend::Sqlite {
            c.redis.url = SecretString::new(redis_url());
            c.redis.prefix = self.redis_prefix.clone();
        }
        c
    }

    /// Removes the database, the files and the Redis keys.
    pub async fn destroy(&self) {
        if let Some(name) = &self.pg_name {
            let _ = drop_database(self.backend, name).await;
            if let Ok(client) = redis::Client::open(redis_url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.redis_prefix))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<i64, _> =
                        redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TestApp {
    pub base: String,
    pub svc: Services,
    pub storage: Storage,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let storage = Storage::new(backend).await;
        Self::spawn_on(storage, tweak).await
    }

    /// Starts an instance on an existing storage (for several instances sharing one database).
    pub async fn spawn_on(storage: Storage, tweak: impl FnOnce(&mut Config)) -> TestApp {
        // Warnings and errors of the server, shown by the test runner when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let mut config = storage.config();
        tweak(&mut config);
        let svc = server::startup::services(config).await.expect("services");
        service::accounts::bootstrap_admin(&svc, Some(ADMIN_PASSWORD.into()))
            .await
            .expect("bootstrap admin");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::startup::serve(svc.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            svc,
            storage,
            stop: Some(tx),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that keeps cookies and does not follow redirects.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A client without a cookie jar (cookies are sent by hand).
    pub fn bare_client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// An admin API request with the admin token, `body` sent as JSON; the answer unchecked.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let req = Self::bare_client()
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
        .send()
        .await
        .expect("admin request")
    }

    pub async fn login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/_sfn/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login request")
    }

    /// Creates a user through the admin API; returns its id.
    pub async fn create_user(&self, username: &str, password: &str, role: &str) -> i64 {
        let res = Self::bare_client()
            .post(self.url("/api/admin/users"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "username": username, "password": password, "role": role }))
            .send()
            .await
            .expect("create user");
        assert_eq!(
            res.status(),
            201,
            "create user: {}",
            res.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = res.json().await.expect("json");
        body["id"].as_i64().expect("id")
    }

    /// Stops the server (graceful drain) and returns its result, keeping the storage.
    pub async fn shutdown(mut self) -> Storage {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle
            .await
            .expect("server task")
            .expect("server result");
        self.svc.db.close().await;
        self.storage.clone()
    }

    /// Stops the server and removes its storage.
    pub async fn stop(self) {
        let storage = self.shutdown().await;
        storage.destroy().await;
    }
}

/// The session cookie's value from a response's `Set-Cookie`, if it sets one.
/// The JSON of a `201 Created` answer; any other status fails the test, showing the body.
pub async fn created(res: reqwest::Response) -> serde_json::Value {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).expect("json")
}

pub fn session_cookie(res: &reqwest::Response) -> Option<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|raw| {
            let (pair, _) = raw.split_once(';').unwrap_or((raw, ""));
            let (name, value) = pair.split_once('=')?;
            (name == "tollgate_session").then(|| (value.to_string(), raw.to_string()))
        })
}
