//! The database: one pool over SQLite (embedded default) or PostgreSQL (production), chosen by the
//! URL scheme. Queries are written once with `$N` placeholders, which both engines accept.
//! SQL lives only in `repo` modules.

use crate::config::DatabaseConfig;
use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection as _, Executor as _, Transaction};
use std::path::PathBuf;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// The file of a `sqlite:` database URL (`sqlite://data/tollgate.db?mode=rwc` → `data/tollgate.db`).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, when the backend is SQLite: readiness checks that it still exists.
    sqlite_file: Option<PathBuf>,
}

/// A write transaction. On SQLite it took the write lock up front (`BEGIN IMMEDIATE`).
pub type WriteTx = Transaction<'static, Any>;

impl Db {
    /// Connects, creating a SQLite file and its directory when missing, and applies migrations.
    pub async fn connect(cfg: &DatabaseConfig) -> anyhow::Result<Db> {
        install_default_drivers();
        let url = cfg.url.expose();
        let (backend, url, sqlite_file) = if let Some(file) = sqlite_path(url) {
            let path = url["sqlite:".len()..].trim_start_matches("//");
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // Create the file once, here; the pool then opens it read-write only, so that a
            // database file removed under a running gateway is never silently recreated empty.
            if !file.exists() {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&file)
                    .with_context(|| format!("creating {}", file.display()))?;
            }
            let url = if path.contains('?') {
                format!("sqlite://{path}")
            } else {
                format!("sqlite://{path}?mode=rw")
            };
            (Backend::Sqlite, url, Some(file))
        } else {
            (Backend::Postgres, url.to_string(), None)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_secs(cfg.acquire_timeout_seconds))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("connecting to the database")?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.context("applying migrations")?;
        Ok(Db {
            pool,
            backend,
            sqlite_file,
        })
    }

    /// The database file, when the backend is SQLite.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (a deferred BEGIN that later writes
    /// can fail with SQLITE_BUSY without waiting), a plain BEGIN on PostgreSQL.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Runs one writing statement in its own write transaction; returns the rows it affected.
    pub async fn write<'q>(
        &self,
        statement: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let n = statement.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Readiness: a round trip within `timeout`, and for SQLite the file still in place.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        if let Some(file) = &self.sqlite_file
            && !file.exists()
        {
            return Err(format!("database file {} is gone", file.display()));
        }
        let check = async {
            let mut conn = self.pool.acquire().await?;
            conn.ping().await?;
            sqlx::query("SELECT 1")
                .execute(&mut *conn)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(timeout, check).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("database did not answer in time".into()),
        }
    }

    /// The database's clock in Unix milliseconds, as an SQL expression: leases are judged by
    /// this one clock, never by an instance's own wall clock.
    pub fn now_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Pool size and idle connections, for the metrics endpoint.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Placeholder number `n` (1-based) in this engine's best form: `$n` on PostgreSQL, an
    /// anonymous `?` on SQLite. (sqlx binds SQLite parameters by looking up their names, which
    /// SQLite does by walking a list: named placeholders make a large batch quadratic.)
    pub fn param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `(p1, p2, …), (pk+1, …)`: `rows` groups of `width` placeholders, numbered after `offset`.
    /// Used for batched statements; a statement uses one placeholder form throughout.
    pub fn placeholders(&self, rows: usize, width: usize, offset: usize) -> String {
        let mut s = String::with_capacity(rows * width * 5);
        for r in 0..rows {
            if r > 0 {
                s.push_str(", ");
            }
            s.push('(');
            for c in 0..width {
                if c > 0 {
                    s.push_str(", ");
                }
                s.push_str(&self.param(offset + r * width + c + 1));
            }
            s.push(')');
        }
        s
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A value bound to a statement that [`Where`] builds.
pub enum Bind {
    Int(i64),
    Text(String),
    /// SQL NULL (a cleared column).
    Null,
}

/// A WHERE clause built one condition at a time, its values bound in order of appearance (so it
/// serves SQLite's anonymous placeholders and PostgreSQL's numbered ones alike).
pub struct Where<'d> {
    db: &'d Db,
    sql: String,
    binds: Vec<Bind>,
}

impl<'d> Where<'d> {
    pub fn new(db: &'d Db) -> Self {
        Where {
            db,
            sql: " WHERE 1 = 1".into(),
            binds: Vec::new(),
        }
    }

    /// A placeholder for `v`, for conditions [`Where::and`] does not shape.
    pub fn param(&mut self, v: Bind) -> String {
        self.binds.push(v);
        self.db.param(self.binds.len())
    }

    /// ` AND <column> <op> <value>`.
    pub fn and(&mut self, column: &str, op: &str, v: Bind) {
        let p = self.param(v);
        self.sql.push_str(&format!(" AND {column} {op} {p}"));
    }

    /// The clause so far: ` WHERE 1 = 1 AND …`.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// ` AND <condition>`, a condition without values.
    pub fn raw(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }

    /// The bound values, in order, for `query_with` and its kin.
    pub fn args(&self) -> Result<sqlx::any::AnyArguments<'static>, sqlx::Error> {
        use sqlx::Arguments as _;
        let mut args = sqlx::any::AnyArguments::default();
        for b in &self.binds {
            match b {
                Bind::Int(v) => args.add(*v),
                Bind::Text(v) => args.add(v.clone()),
                Bind::Null => args.add(Option::<i64>::None),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// Splits `items` into runs whose lengths are powers of two, largest first (at most `max`, a
/// power of two): a batched statement then has one of a few shapes, so each connection's cache
/// of prepared statements stays small whatever the batch sizes.
pub fn pow2_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = max.min(1 << rest.len().ilog2());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// True when a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// True when the database cannot serve anyone right now (it refuses connections, is starting
/// up or shutting down, or is out of connections), as opposed to refusing this statement.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // PostgreSQL: connection exceptions (08), insufficient resources (53), operator
            // intervention (57P01-57P03: shutdown, crash, cannot connect now), and 55000 as a
            // database answers while it does not allow connections. SQLite: busy and locked.
            c.starts_with("08")
                || c.starts_with("53")
                || matches!(
                    c.as_ref(),
                    "57P01" | "57P02" | "57P03" | "55000" | "5" | "6" | "261" | "517" | "773"
                )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    /// The two dialects' migrations are one logical schema: the same files, and the same text
    /// line for line but for the one difference allowed, how an identity column is written.
    #[test]
    fn the_sqlite_and_postgres_migrations_differ_only_in_identity_columns() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let names = |dialect: &str| {
            let mut v: Vec<String> = std::fs::read_dir(root.join(dialect))
                .expect("migrations")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let files = names("sqlite");
        assert_eq!(files, names("postgres"), "the same migrations on both");
        assert!(files.len() >= 3);
        let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
        for file in files {
            let read = |d: &str| std::fs::read_to_string(root.join(d).join(&file)).expect("file");
            let (lite, pg) = (read("sqlite"), read("postgres"));
            let (lite, pg): (Vec<&str>, Vec<&str>) = (lite.lines().collect(), pg.lines().collect());
            assert_eq!(lite.len(), pg.len(), "{file}: line count");
            for (n, (a, b)) in lite.iter().zip(&pg).enumerate() {
                let (a, b) = (words(a), words(b));
                if a == b {
                    continue;
                }
                let identity = |l: &str, form: &str| {
                    l.strip_suffix(',')
                        .unwrap_or(l)
                        .strip_suffix(form)
                        .map(str::to_string)
                };
                let lite_col = identity(&a, "INTEGER PRIMARY KEY AUTOINCREMENT");
                let pg_col = identity(&b, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
                assert!(
                    lite_col.is_some() && lite_col == pg_col,
                    "{file}:{}: the dialects differ beyond an identity column:\n  {a}\n  {b}",
                    n + 1
                );
            }
        }
    }

    #[test]
    fn batches_split_into_a_few_shapes() {
        let items: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = super::pow2_chunks(&items, 128).map(<[u32]>::len).collect();
        assert_eq!(sizes, [128, 128, 32, 8, 4]);
        let joined: Vec<u32> = super::pow2_chunks(&items, 128).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(super::pow2_chunks(&items[..0], 128).count(), 0);
        let sizes: Vec<usize> = super::pow2_chunks(&items[..7], 4)
            .map(<[u32]>::len)
            .collect();
        assert_eq!(sizes, [4, 2, 1]);
    }
}
