//! `tollgate [--config PATH]`: loads the config (exit 2 when it is wrong), sets up logging,
//! connects and migrates the database, creates the first administrator, and serves.
//! `tollgate restore` / `tollgate backups`: SQLite backups in the object storage;
//! `tollgate import`: a one-api / new-api database into Tollgate's (see USAGE).

use service::config::Config;

use service::{accounts, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

// glibc malloc was the largest single cost under load (about a fifth of the CPU in `perf`), and
// its fragmentation inflated RSS with many open streams.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  tollgate [--config PATH]
      Serves the console, /v1 and /api.
  tollgate restore [--config PATH] [--backup KEY] [--force]
      Restores a SQLite backup from the configured object storage into database.url's file
      (the newest backup unless --backup names one). Stop the gateway first; an existing
      database file is replaced only with --force.
  tollgate backups [--config PATH]
      Lists the backups in the configured object storage, oldest first.
  tollgate import --from URL [--dry-run] [--logs DAYS] [--config PATH]
      Imports a one-api or new-api database (sqlite:PATH, postgres://… or mysql://…, read
      only) into database.url's, in one transaction: users (their passwords keep working),
      API keys (the same sk-… keys keep working), channels, prices, group ratios, unused
      redeem codes and, with --logs, the call logs of the last DAYS days. Run again, it
      matches what it imported before. --dry-run does it all and rolls back. Prints a report.

Environment overrides: TOLLGATE__SECTION__KEY=value";

enum Command {
    Serve,
    Restore { backup: Option<String>, force: bool },
    Backups,
    Import(service::import::Options),
}

fn parse_args() -> Result<(Command, Option<PathBuf>), String> {
    let mut args = std::env::args().skip(1).peekable();
    let mut command = match args.peek().map(String::as_str) {
        Some("restore") => {
            args.next();
            Command::Restore {
                backup: None,
                force: false,
            }
        }
        Some("backups") => {
            args.next();
            Command::Backups
        }
        Some("import") => {
            args.next();
            Command::Import(service::import::Options::default())
        }
        _ => Command::Serve,
    };
    let mut path = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), &mut command) {
            ("--config" | "-c", _) => {
                path = Some(PathBuf::from(args.next().ok_or("--config needs a path")?))
            }
            (s, _) if s.starts_with("--config=") => {
                path = Some(PathBuf::from(&s["--config=".len()..]))
            }
            ("--backup", Command::Restore { backup, .. }) => {
                *backup = Some(args.next().ok_or("--backup needs a key")?)
            }
            ("--force", Command::Restore { force, .. }) => *force = true,
            ("--from", Command::Import(o)) => o.from = args.next().ok_or("--from needs a URL")?,
            ("--dry-run", Command::Import(o)) => o.dry_run = true,
            ("--logs", Command::Import(o)) => {
                let days = args.next().ok_or("--logs needs a number of days")?;
                o.logs_days = Some(
                    days.parse()
                        .ok()
                        .filter(|d| (1..=3650).contains(d))
                        .ok_or("--logs must be 1 to 3650 days")?,
                );
            }
            ("--version" | "-V", _) => {
                println!("tollgate {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            ("--help" | "-h", _) => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            (other, _) => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if let Command::Import(o) = &command
        && o.from.is_empty()
    {
        return Err("import needs --from URL (the one-api/new-api database)".into());
    }
    Ok((command, path))
}

fn main() -> ExitCode {
    let (command, config) = match parse_args()
        .and_then(|(c, p)| Ok((c, Config::load(p.as_deref()).map_err(|e| e.to_string())?)))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(command, Command::Serve) {
        return offline(command, &config);
    }
    let guard = match telemetry::init(&config.log) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("tollgate: cannot set up logging: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match run(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "tollgate stopped with an error");
                ExitCode::FAILURE
            }
        }
    });
    drop(guard);
    code
}

/// `restore` and `backups`: against the object storage, without serving.
fn offline(command: Command, config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = service::storage::Store::from_config(&config.storage);
    let done = runtime.block_on(async {
        match command {
            Command::Backups => {
                for key in service::jobs::backups(&store).await? {
                    println!("{key}");
                }
                Ok(String::new())
            }
            Command::Restore { backup, force } => {
                let Some(file) = service::db::sqlite_path(config.database.url.expose()) else {
                    anyhow::bail!(
                        "database.url is not SQLite: restore PostgreSQL or MySQL with its own tools"
                    );
                };
                service::jobs::restore(&store, backup.as_deref(), &file, force).await
            }
            Command::Import(opts) => {
                let db = service::db::Db::connect(&config.database).await?;
                let report = service::import::run(&db, &opts).await;
                db.close().await;
                let report = report?;
                print!("{report}");
                Ok(if opts.dry_run {
                    "dry run: nothing was written".into()
                } else {
                    "import done".into()
                })
            }
            Command::Serve => Ok(String::new()),
        }
    });
    match done {
        Ok(msg) => {
            if !msg.is_empty() {
                println!("tollgate: {msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    // Before anything else: a stop request during start-up drains once serving begins.
    let stop = server::startup::shutdown_signal()?;
    let svc = server::startup::services(config).await?;
    if let Some(generated) =
        accounts::bootstrap_admin(&svc, std::env::var("TOLLGATE_ADMIN_PASSWORD").ok()).await?
    {
        // Shown once, on the first start only; set TOLLGATE_ADMIN_PASSWORD to choose it instead.
        tracing::warn!(username = "admin", password = %generated, "created the first administrator; change this password");
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "tollgate listening");
    server::startup::serve(svc.clone(), listener, stop).await?;
    svc.db.close().await;
    tracing::info!("tollgate stopped");
    Ok(())
}
