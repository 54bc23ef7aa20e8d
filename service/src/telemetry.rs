//! Logging, set up once: pretty or JSON on stdout, plus a daily-rotated file in `log.dir` whose
//! old files are removed after `log.retention_days`.

use crate::config::{LogConfig, LogFormat};
use std::path::Path;
use std::time::{Duration, SystemTime};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

pub const LOG_FILE_PREFIX: &str = "tollgate";

tokio::task_local! {
    /// The id of the request being served, set by the HTTP layer for the handler's task.
    pub static REQUEST_ID: String;
}

/// Lets a log line through at most once per period: an outage that fails every request is
/// said once a second, not once per request. Lines held back are counted and reported with the
/// next one let through.
pub struct Throttle {
    last_ms: std::sync::atomic::AtomicI64,
    held: std::sync::atomic::AtomicU64,
    period_ms: i64,
}

impl Throttle {
    pub const fn per_second() -> Throttle {
        Throttle {
            last_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            held: std::sync::atomic::AtomicU64::new(0),
            period_ms: 1000,
        }
    }

    /// `Some(lines held back since the last one)` when this line may be logged.
    pub fn ready(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = crate::now_ms();
        let last = self.last_ms.load(Relaxed);
        if now.saturating_sub(last) >= self.period_ms
            && self
                .last_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held.swap(0, Relaxed));
        }
        self.held.fetch_add(1, Relaxed);
        None
    }
}

/// The current request's id, when called inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Installs the global subscriber. Keep the guard alive until exit: it flushes the file writer.
pub fn init(cfg: &LogConfig) -> anyhow::Result<Option<WorkerGuard>> {
    let filter = EnvFilter::try_new(&cfg.level)?;
    let stdout = match cfg.format {
        LogFormat::Pretty => fmt::layer().with_target(false).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let (file, guard) = if cfg.dir.is_empty() {
        (None, None)
    } else {
        std::fs::create_dir_all(&cfg.dir)?;
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(LOG_FILE_PREFIX)
            .filename_suffix("log")
            .build(&cfg.dir)?;
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = match cfg.format {
            LogFormat::Pretty => fmt::layer().with_ansi(false).with_writer(writer).boxed(),
            LogFormat::Json => fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(writer)
                .boxed(),
        };
        (Some(layer), Some(guard))
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stdout)
        .with(file)
        .try_init()?;
    Ok(guard)
}

/// Removes rotated log files older than `retention_days`; returns how many were removed.
pub fn remove_old_logs(dir: &Path, retention_days: u32) -> std::io::Result<usize> {
    let max_age = Duration::from_secs(u64::from(retention_days) * 86_400);
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(LOG_FILE_PREFIX) || !name.ends_with(".log") {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        if now.duration_since(modified).unwrap_or_default() > max_age {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_old_rotated_logs() {
        let dir = std::env::temp_dir().join(format!("tg-logs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let old = dir.join("tollgate.2020-01-01.log");
        let new = dir.join("tollgate.2026-11-26.log");
        let other = dir.join("notes.txt");
        for f in [&old, &new, &other] {
            std::fs::write(f, "x").expect("write");
        }
        let past = SystemTime::now() - Duration::from_secs(40 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .expect("open")
            .set_modified(past)
            .expect("mtime");
        assert_eq!(remove_old_logs(&dir, 14).expect("cleanup"), 1);
        assert!(!old.exists() && new.exists() && other.exists());
        std::fs::remove_dir_all(&dir).expect("cleanup dir");
    }
}
