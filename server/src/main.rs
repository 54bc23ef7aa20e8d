//! `tollgate [--config PATH]`: loads the config (exit 2 when it is wrong), sets up logging,
//! connects and migrates the database, creates the first administrator, and serves.

use service::config::Config;

use service::{Services, accounts, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

// glibc malloc was the largest single cost under load (about a fifth of the CPU in `perf`), and
// its fragmentation inflated RSS with many open streams.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_args() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                path = Some(PathBuf::from(args.next().ok_or("--config needs a path")?))
            }
            s if s.starts_with("--config=") => path = Some(PathBuf::from(&s["--config=".len()..])),
            "--version" | "-V" => {
                println!("tollgate {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "--help" | "-h" => {
                println!(
                    "usage: tollgate [--config PATH]\n\nEnvironment overrides: TOLLGATE__SECTION__KEY=value"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(path)
}

fn main() -> ExitCode {
    let config =
        match parse_args().and_then(|p| Config::load(p.as_deref()).map_err(|e| e.to_string())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tollgate: {e}");
                return ExitCode::from(2);
            }
        };
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

async fn run(config: Config) -> anyhow::Result<()> {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    // Before anything else: a stop request during start-up drains once serving begins.
    let stop = server::startup::shutdown_signal()?;
    let svc = Services::build(config).await?;
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
