use crate::http;
use crate::site::Site;
use leptos::prelude::LeptosOptions;
use service::Services;
use service::state::Background;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// Where the compiled site is and what it is called (cargo-leptos output). A release build
/// names its files by content hash and lists them in the site's `hash.txt` (the Makefile puts
/// it there, and an embedded site carries it): the pages then link the hashed names.
pub fn leptos_options(root: &Path, addr: SocketAddr) -> LeptosOptions {
    let hash_file = std::path::absolute(root.join(http::assets::HASH_FILE))
        .unwrap_or_else(|_| root.join(http::assets::HASH_FILE));
    LeptosOptions::builder()
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("tollgate"))
        .site_root(root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .hash_files(hash_file.is_file())
        .hash_file(std::sync::Arc::<str>::from(hash_file.to_string_lossy()))
        .build()
}

/// How long requests get to finish after the drain deadline ended their streams.
const HALT_GRACE: Duration = Duration::from_secs(2);

/// Serves until `stop` resolves, then drains open requests for at most `server.drain_seconds`.
/// Long-lived work watches `svc.shutdown`, which is triggered when the drain begins.
pub async fn serve(
    svc: Services,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let addr = listener.local_addr()?;
    // The site's folder lives as long as the server (an embedded site's is removed after).
    let site = Site::open(&svc.config.server.site_root)?;
    let router = http::router(svc.clone(), leptos_options(site.root(), addr));
    // TCP_NODELAY on every accepted connection: without it a response's body waits for the
    // client's delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let background = start_background(&svc);
    let drain = Duration::from_secs(svc.config.server.drain_seconds);
    let shutdown = svc.shutdown.clone();
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            stop.await;
            tracing::info!(
                drain_seconds = drain.as_secs(),
                "shutting down: draining open requests"
            );
            shutdown.trigger();
        }
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let mut server = tokio::spawn(server.into_future());
    let result = tokio::select! {
        res = &mut server => res.map_err(std::io::Error::other).and_then(|r| r),
        () = shutdown.wait() => match tokio::time::timeout(drain, &mut server).await {
            Ok(res) => res.map_err(std::io::Error::other).and_then(|r| r),
            Err(_) => {
                // Streams still open end now with an error event and are charged for what was
                // generated; what still runs after a grace period is dropped.
                tracing::warn!("drain deadline reached; ending the remaining streams");
                svc.halt.trigger();
                match tokio::time::timeout(HALT_GRACE, &mut server).await {
                    Ok(res) => res.map_err(std::io::Error::other).and_then(|r| r),
                    Err(_) => {
                        tracing::warn!("closing the remaining connections");
                        server.abort();
                        let _ = server.await;
                        Ok(())
                    }
                }
            }
        },
    };
    // Every request has ended; once the settlements still counting tokens are done, report the
    // last usage and write the last logs.
    shutdown.trigger();
    // Calls whose clients left go on to their end (bounded by the upstream timeouts); they get
    // the drain time once more, then the last report goes out without them.
    if tokio::time::timeout(drain + HALT_GRACE, svc.settled())
        .await
        .is_err()
    {
        tracing::warn!("calls still running after the drain; reporting without them");
    }
    background.stop().await;
    result
}

/// Builds the services and applies the config's channels, mappings and prices (which the
/// catalog then keeps in step with other instances' changes).
pub async fn services(config: service::config::Config) -> anyhow::Result<Services> {
    use anyhow::Context as _;
    let svc = Services::build(config).await?;
    service::catalog::sync_from_config(&svc)
        .await
        .context("applying channels, mappings and prices")?;
    Ok(svc)
}

/// Each domain starts its own loops: the credit reporter, the usage writer, the quota limiter,
/// the job scheduler, and the followers of other instances' catalog and key changes. They stop,
/// after a final flush, when the returned handle's `stop` is called.
fn start_background(svc: &Services) -> Background {
    let mut bg = Background::default();
    service::billing::start(svc, &mut bg);
    service::usage::start(svc, &mut bg);
    service::ratelimit::start(svc, &mut bg);
    service::jobs::start(svc, &mut bg);
    service::catalog::start(svc, &mut bg);
    service::keys::start(svc, &mut bg);
    bg
}

/// Listens for SIGTERM and SIGINT from this call on; the future resolves on either. Call it
/// before the port opens: a signal that arrives before the handler exists kills the process
/// instead of draining it (and one that arrives before the future is polled is kept).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
