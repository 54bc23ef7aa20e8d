//! The database: one pool over SQLite (embedded default), PostgreSQL or MySQL/MariaDB
//! (production), chosen by the URL scheme. Queries are written once, in one dialect (the house
//! SQL: `$N` placeholders, each used once and in order; `CAST(… AS BIGINT)`; `ON CONFLICT … DO
//! UPDATE SET c = excluded.c` or `DO NOTHING`; `INSERT … RETURNING id`), which SQLite and
//! PostgreSQL take as written and [`Db::sql`] rewrites for MySQL. SQL lives only in `repo`
//! modules.

use crate::config::DatabaseConfig;
use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor as _, Transaction};
use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/mysql");

/// The file of a `sqlite:` database URL (`sqlite://data/tollgate.db?mode=rwc` → `data/tollgate.db`).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// MySQL 8.0+ or MariaDB 10.6+ (`mysql://` or `mariadb://`).
    Mysql,
}

impl Backend {
    /// The backend a database URL names; `None` for a scheme Tollgate does not serve.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(Backend::Mysql)
        } else {
            None
        }
    }

    /// This engine's form of a statement written in the house dialect (see the module): as
    /// written on SQLite and PostgreSQL, rewritten on MySQL.
    pub fn sql<'a>(self, sql: &'a str) -> Cow<'a, str> {
        match self {
            Backend::Sqlite | Backend::Postgres => Cow::Borrowed(sql),
            Backend::Mysql => Cow::Owned(mysql_sql(sql)),
        }
    }
}

/// The house dialect in MySQL's words: `$N` → `?` (each placeholder once and in order, as the
/// house dialect has them, so that the values bind by position); `CAST(… AS BIGINT)` → `AS
/// SIGNED`; `ON CONFLICT (…) DO UPDATE SET c = excluded.c` → `ON DUPLICATE KEY UPDATE c =
/// VALUES(c)`; `ON CONFLICT (…) DO NOTHING` → `INSERT IGNORE`; a `RETURNING` clause left off
/// (an INSERT's id is the statement's last insert id, [`Db::insert_id`]; an UPDATE's row is
/// read back, [`Db::update_returning`]).
fn mysql_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut next = 1;
    let mut quoted = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c == '$' && sql[i + 1..].starts_with(|d: char| d.is_ascii_digit()) {
            let mut n = 0usize;
            while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
                n = n * 10 + (d as usize - '0' as usize);
            }
            debug_assert_eq!(n, next, "placeholders out of order or repeated in: {sql}");
            next += 1;
            out.push('?');
            continue;
        }
        out.push(c);
    }
    let mut out = out.replace(" AS BIGINT)", " AS SIGNED)");
    if let Some(at) = out.find(" ON CONFLICT (")
        && let Some(close) = out[at..].find(')')
    {
        let rest = out[at + close + 1..].to_string();
        if let Some(tail) = rest.strip_prefix(" DO NOTHING") {
            out = format!("{}{tail}", &out[..at]).replacen("INSERT INTO", "INSERT IGNORE INTO", 1);
        } else if let Some(tail) = rest.strip_prefix(" DO UPDATE SET ") {
            out = format!(
                "{} ON DUPLICATE KEY UPDATE {}",
                &out[..at],
                excluded_as_values(tail)
            );
        }
    }
    if let Some(at) = out.rfind(" RETURNING ") {
        out.truncate(at);
    }
    out
}

/// `excluded.col` → `VALUES(col)`.
fn excluded_as_values(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find("excluded.") {
        out.push_str(&rest[..at]);
        rest = &rest[at + "excluded.".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        out.push_str("VALUES(");
        out.push_str(&rest[..end]);
        out.push(')');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, when the backend is SQLite: readiness checks that it still exists.
    sqlite_file: Option<PathBuf>,
}

/// A write transaction. On SQLite it took the write lock up front (`BEGIN IMMEDIATE`). It
/// derefs to its connection (`&mut *tx` executes a statement) and knows its dialect
/// ([`WriteTx::sql`]).
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }

    /// See [`Backend::sql`].
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        self.backend.sql(sql)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

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
            let backend = Backend::of_url(url).context("database.url: an unknown scheme")?;
            (backend, url.to_string(), None)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_secs(cfg.acquire_timeout_seconds))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                        }
                        // READ COMMITTED, as PostgreSQL: a statement reads what is committed
                        // when it starts (InnoDB's REPEATABLE READ would read a transaction's
                        // first snapshot); conditional updates lock and re-check the row either
                        // way. Strings compare byte for byte, as on the other two.
                        Backend::Mysql => {
                            conn.execute(
                                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
                                 SET NAMES utf8mb4 COLLATE utf8mb4_bin; \
                                 SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                            )
                            .await?;
                        }
                        Backend::Postgres => {}
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
            Backend::Mysql => &MYSQL_MIGRATIONS,
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

    /// See [`Backend::sql`].
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        self.backend.sql(sql)
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (a deferred BEGIN that later writes
    /// can fail with SQLITE_BUSY without waiting), a plain BEGIN on PostgreSQL and MySQL.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres | Backend::Mysql => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
        })
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
            // A table of the schema, not a bare `SELECT 1`: a MySQL connection whose database
            // was dropped still answers that.
            sqlx::query("SELECT 1 FROM users WHERE id = 0")
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
            // SYSDATE, not NOW: the time the function runs, as PostgreSQL's clock_timestamp.
            Backend::Mysql => "CAST(UNIX_TIMESTAMP(SYSDATE(3)) * 1000 AS SIGNED)",
        }
    }

    /// Pool size and idle connections, for the metrics endpoint.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Placeholder number `n` (1-based) in this engine's best form: `$n` on PostgreSQL, an
    /// anonymous `?` on SQLite and MySQL. (sqlx binds SQLite parameters by looking up their
    /// names, which SQLite does by walking a list: named placeholders make a large batch
    /// quadratic.)
    pub fn param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite | Backend::Mysql => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// The row an `UPDATE … RETURNING …` of one row gave, `None` when it matched none. On MySQL,
    /// which has no RETURNING, `read_back` (a SELECT of the same columns of that row, by its key)
    /// reads it in the same transaction, which holds the row's lock since the update.
    pub async fn update_returning<'a, 'b>(
        tx: &mut WriteTx,
        update: sqlx::query::Query<'a, Any, sqlx::any::AnyArguments<'a>>,
        read_back: sqlx::query::Query<'b, Any, sqlx::any::AnyArguments<'b>>,
    ) -> Result<Option<sqlx::any::AnyRow>, sqlx::Error> {
        match tx.backend {
            Backend::Mysql => {
                if update.execute(&mut **tx).await?.rows_affected() == 0 {
                    return Ok(None);
                }
                read_back.fetch_optional(&mut **tx).await
            }
            Backend::Sqlite | Backend::Postgres => update.fetch_optional(&mut **tx).await,
        }
    }

    /// The id an `INSERT … RETURNING id` gave: its one row on SQLite and PostgreSQL, the
    /// statement's last insert id on MySQL (which has no RETURNING; [`Backend::sql`] left it
    /// off).
    pub async fn insert_id<'q, 'e, E>(
        backend: Backend,
        statement: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        executor: E,
    ) -> Result<i64, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = Any>,
        'q: 'e,
    {
        use sqlx::Row as _;
        match backend {
            Backend::Mysql => statement
                .execute(executor)
                .await?
                .last_insert_id()
                .ok_or(sqlx::Error::RowNotFound),
            Backend::Sqlite | Backend::Postgres => statement.fetch_one(executor).await?.try_get(0),
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

/// A long text column (`TEXT` on every engine): MySQL reports its values as blobs, which a
/// `String` does not decode from; this does, from either.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl sqlx::Type<Any> for Text {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        use sqlx::any::AnyTypeInfoKind as K;
        matches!(ty.kind(), K::Text | K::Blob)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Text {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <String as sqlx::Decode<Any>>::decode(value.clone()) {
            Ok(s) => Ok(Text(s)),
            Err(_) => Ok(Text(String::from_utf8(
                <Vec<u8> as sqlx::Decode<Any>>::decode(value)?,
            )?)),
        }
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
        // MySQL: too many connections (1040), shutting down (1053), a lock wait that timed out
        // (1205) and a deadlock's victim (1213): the transaction was rolled back, a retry may pass.
        sqlx::Error::Database(d)
            if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| matches!(m.number(), 1040 | 1053 | 1205 | 1213)) =>
        {
            true
        }
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
    /// Migrations that change a CHECK, which SQLite can do only by rebuilding the table.
    const REBUILT_ON_SQLITE: &[&str] = &["20261211000001_ledger_import.sql"];

    /// The two dialects' migrations are one logical schema: the same files, and the same text
    /// line for line but for the one difference allowed, how an identity column is written (and
    /// a CHECK changed, [`REBUILT_ON_SQLITE`]).
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
            if REBUILT_ON_SQLITE.contains(&file.as_str()) {
                // SQLite changes a CHECK by rebuilding the table: the new CHECK is PostgreSQL's.
                let check = pg
                    .lines()
                    .find_map(|l| {
                        l.split_once(" CHECK ")
                            .map(|(_, c)| c.trim_end_matches(';'))
                    })
                    .expect("the new CHECK");
                assert!(
                    lite.lines()
                        .any(|l| words(l).ends_with(&format!("CHECK {check},"))),
                    "{file}: SQLite's table is rebuilt with PostgreSQL's CHECK {check}"
                );
                continue;
            }
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

    /// MySQL's migrations are the same logical schema as PostgreSQL's, differing only where the
    /// dialect must: identity columns, bounded text (`VARCHAR(n)`: MySQL indexes no `TEXT`, and
    /// only bounded text reads back as text) and `TEXT` defaults as expressions, foreign keys as
    /// table constraints (MySQL ignores a column's `REFERENCES`), no partial index (the
    /// condition's column joins the key), `DROP INDEX … ON` its table, byte-wise collation, and
    /// a column's unnamed CHECK dropped as each of MySQL and MariaDB keeps it
    /// ([`MYSQL_DROP_COLUMN_CHECK`]).
    #[test]
    fn the_mysql_migrations_differ_from_postgres_only_where_the_dialect_must() {
        use fancy_regex::Regex;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let re = |r: &str| Regex::new(r).expect("regex");
        let (varchar, text_default) = (
            re(r"\bVARCHAR\(\d+\)"),
            re(r"\bTEXT (NOT NULL )?DEFAULT \(('[^']*')\)"),
        );
        let references =
            re(r"^(\w+ .*?) REFERENCES (\w+ \(\w+\)(?: ON DELETE (?:CASCADE|SET NULL))?)(,?)(.*)$");
        let partial = re(r"^(CREATE (?:UNIQUE )?INDEX \w+ ON \w+ \()(.*)\) WHERE (\w+) .*;$");
        let drop_check = re(r"^ALTER TABLE (\w+) DROP CONSTRAINT (\w+)_check;$");
        let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
        let code = |line: &str| {
            line.split(" --")
                .next()
                .unwrap_or(line)
                .trim_end_matches(',')
                .to_string()
        };
        let mut files = 0;
        for entry in std::fs::read_dir(root.join("postgres")).expect("migrations") {
            let file = entry.expect("entry").file_name();
            let pg = std::fs::read_to_string(root.join("postgres").join(&file)).expect("pg");
            let my = std::fs::read_to_string(root.join("mysql").join(&file))
                .unwrap_or_else(|_| panic!("{file:?}: no MySQL migration"));
            files += 1;
            // PostgreSQL's lines in MySQL's form, and the foreign keys its columns name.
            let (mut want, mut fks) = (Vec::new(), Vec::new());
            for line in pg.lines().map(words) {
                if let Some(c) = drop_check.captures(&line).expect("match") {
                    let (table, name) = (&c[1], &c[2]);
                    let column = name.strip_prefix(&format!("{table}_")).expect("column");
                    let column_type = column_type(&root.join("postgres"), table, column);
                    for l in MYSQL_DROP_COLUMN_CHECK.lines().map(words) {
                        want.push(code(
                            &l.replace("{table}", table)
                                .replace("{column}", column)
                                .replace("{type}", &column_type),
                        ));
                    }
                    continue;
                }
                let line = line.replace(
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                    "BIGINT AUTO_INCREMENT PRIMARY KEY",
                );
                let line = match references.captures(&line).expect("match") {
                    Some(c) if !line.starts_with("--") => {
                        let col = c[1].split(' ').next().unwrap_or_default().to_string();
                        fks.push(format!("FOREIGN KEY ({col}) REFERENCES {}", &c[2]));
                        format!("{}{}{}", &c[1], &c[3], &c[4])
                    }
                    _ => line,
                };
                let line = match partial.captures(&line).expect("match") {
                    Some(c) => {
                        let mut cols: Vec<&str> = c[2].split(", ").collect();
                        if !cols.contains(&&c[3]) {
                            let at = if cols.len() > 2 {
                                cols.len() - 2
                            } else {
                                cols.len()
                            };
                            cols.insert(at, &c[3]);
                        }
                        format!("{}{});", &c[1], cols.join(", "))
                    }
                    None => line,
                };
                let line = line
                    .strip_prefix("DROP INDEX ")
                    .and_then(|l| l.strip_suffix(';'))
                    .map_or(line.clone(), |name| {
                        format!("DROP INDEX {name} ON usage_logs;")
                    });
                want.push(code(&line));
            }
            let (mut got, mut got_fks) = (Vec::new(), Vec::new());
            for line in my.lines().map(words) {
                if line.starts_with("FOREIGN KEY ") {
                    got_fks.push(code(&line));
                } else if !line.starts_with("ALTER DATABASE ")
                    && line != "-- Text compares byte for byte, as on SQLite and PostgreSQL."
                {
                    let line = varchar.replace_all(&line, "TEXT").into_owned();
                    let line = text_default
                        .replace_all(&line, "TEXT ${1}DEFAULT $2")
                        .into_owned();
                    got.push(code(&line));
                }
            }
            assert_eq!(
                got, want,
                "{file:?}: the dialects differ beyond what MySQL must"
            );
            assert_eq!(got_fks, fks, "{file:?}: foreign keys");
        }
        assert_eq!(
            std::fs::read_dir(root.join("mysql"))
                .expect("mysql")
                .count(),
            files
        );
    }

    /// The type of `table`'s `column` as PostgreSQL's migrations create it, without its CHECK.
    fn column_type(dir: &std::path::Path, table: &str, column: &str) -> String {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("migrations")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        let header = format!("CREATE TABLE {table} (");
        for file in files {
            let text = std::fs::read_to_string(file).expect("migration");
            let mut lines = text.lines().map(str::trim);
            if lines.by_ref().any(|l| l == header) {
                for l in lines.take_while(|l| !l.starts_with(')')) {
                    let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
                    if let Some(t) = l.strip_prefix(&format!("{column} ")) {
                        return t.split(" CHECK").next().unwrap_or(t).to_string();
                    }
                }
            }
        }
        panic!("{table}.{column} is not created by a migration")
    }

    /// What PostgreSQL's `ALTER TABLE t DROP CONSTRAINT t_c_check` (a column's CHECK, by the name
    /// PostgreSQL gave it) is on MySQL, where that CHECK has no name of ours.
    const MYSQL_DROP_COLUMN_CHECK: &str = "\
-- The column's CHECK has no name to drop it by: MariaDB keeps it with the column (a MODIFY
-- without it drops it), MySQL 8 as a table constraint with a generated name (dropped by that name).
ALTER TABLE {table} MODIFY {column} {type};
SET @drop_check = COALESCE((SELECT CONCAT('ALTER TABLE {table} DROP CHECK `', tc.CONSTRAINT_NAME, '`') FROM information_schema.TABLE_CONSTRAINTS tc JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME WHERE tc.TABLE_SCHEMA = DATABASE() AND tc.TABLE_NAME = '{table}' AND tc.CONSTRAINT_TYPE = 'CHECK' AND cc.CHECK_CLAUSE LIKE '%`{column}`%' LIMIT 1), 'DO 0');
PREPARE drop_check FROM @drop_check;
EXECUTE drop_check;
DEALLOCATE PREPARE drop_check;";

    #[test]
    fn mysql_statements_are_written_from_the_house_dialect() {
        use super::Backend::Mysql;
        assert_eq!(
            Mysql.sql(
                "UPDATE t SET a = $1 WHERE b = '$2' AND c = $2 AND d = CAST(SUM(e) AS BIGINT)"
            ),
            "UPDATE t SET a = ? WHERE b = '$2' AND c = ? AND d = CAST(SUM(e) AS SIGNED)"
        );
        assert_eq!(
            Mysql.sql("INSERT INTO t (k, n) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n, m = excluded.m_2"),
            "INSERT INTO t (k, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = t.n + VALUES(n), m = VALUES(m_2)"
        );
        assert_eq!(
            Mysql.sql("INSERT INTO t (k) VALUES ($1) ON CONFLICT (k) DO NOTHING"),
            "INSERT IGNORE INTO t (k) VALUES (?)"
        );
        assert_eq!(
            Mysql.sql("INSERT INTO t (k) VALUES ($1) RETURNING id"),
            "INSERT INTO t (k) VALUES (?)"
        );
        assert_eq!(
            Mysql.sql("UPDATE t SET a = a + $1 WHERE id = $2 RETURNING a, b"),
            "UPDATE t SET a = a + ? WHERE id = ?"
        );
        let same = "SELECT $1, CAST(x AS BIGINT) FROM t";
        assert_eq!(super::Backend::Postgres.sql(same), same);
        assert_eq!(super::Backend::Sqlite.sql(same), same);
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
