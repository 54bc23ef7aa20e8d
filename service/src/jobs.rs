//! Scheduled housekeeping: expired sessions, old model-health minutes and old log files. Runs on every instance; each
//! step is idempotent, so several instances doing it at once is harmless.

use crate::{Services, accounts, telemetry};
use std::path::Path;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(3600);

/// Runs until shutdown: once at start, then hourly.
pub async fn housekeeping(svc: Services) {
    loop {
        match accounts::purge_expired_sessions(&svc).await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "purged expired sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging sessions failed"),
        }
        match crate::usage::purge_health(&svc).await {
            Ok(n) if n > 0 => tracing::info!(minutes = n, "purged old model health"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging model health failed"),
        }
        let dir = &svc.config.log.dir;
        if !dir.is_empty() {
            match telemetry::remove_old_logs(Path::new(dir), svc.config.log.retention_days) {
                Ok(n) if n > 0 => tracing::info!(files = n, "removed old log files"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "removing old log files failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {},
            () = svc.shutdown.wait() => return,
        }
    }
}
