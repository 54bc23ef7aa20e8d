//! Scheduled jobs and the archives they write, as the admin API and console show them.

use serde::{Deserialize, Serialize};

/// How a job run ended, or that it is still running.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobOutcome {
    Running,
    Ok,
    Failed,
}

/// One run of a job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    /// The scheduled time it ran for, or when it was asked for by hand (unix ms).
    pub tick: i64,
    /// Asked for by an administrator ("run now").
    pub manual: bool,
    /// The instance that ran it.
    pub instance: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: JobOutcome,
    /// What it did, in a line (`archived 2 days, 1234 rows`).
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// A job: its schedule, the next time it runs and its latest run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// `retention`, `cleanup`, `channel_probe`, `backup` or `ledger_check`.
    pub name: String,
    /// Switched on in the config, and meaningful here (`backup` is for SQLite only).
    pub enabled: bool,
    /// The cron expression (UTC; seconds first when there are six fields).
    pub schedule: String,
    /// Unix ms; absent when the job is off.
    pub next_run: Option<i64>,
    pub last_run: Option<JobRun>,
    /// The latest run that ended well (unix ms of its end).
    pub last_success: Option<i64>,
}

/// A day of call logs archived to object storage (gzip-compressed JSON Lines).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The object's key in the store.
    pub key: String,
    /// Compressed size in bytes.
    pub bytes: u64,
}
