//! `jobs:` the scheduled jobs, each `enabled` and a `schedule` (cron in UTC, five fields or six
//! with seconds first): `retention`, `cleanup`, `channel_probe`, `backup`, `ledger_check`,
//! `alerts`. `retention:`
//! `usage_days` (at least 1), `batch_rows` (1 to 10000), `job_runs_days` (at least 1).
//! `backup:` `keep` (at least 1). A schedule is parsed when the config loads ([`Schedule`]): a
//! wrong one stops startup naming `jobs.<job>.schedule`.

use super::{ConfigError, at_least_one, err};
use serde::Deserialize;

/// A cron expression, parsed when the config loads: five fields, or six with seconds first.
/// UTC. It keeps its text, as written, for the jobs page.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(expr)
            .map(|cron| Schedule {
                text: expr.to_string(),
                cron,
            })
            .map_err(|e| format!("not a cron expression ({e}): {expr:?}"))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first scheduled time strictly after `after_ms` (unix ms).
    /// Whole seconds, so that every instance computes the same ticks.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = chrono::DateTime::from_timestamp(after_ms.div_euclid(1000), 0)?;
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One scheduled job: a cron expression in UTC, with an optional leading seconds field
/// (`sec min hour day month weekday`, or the five classic fields), and a switch. Either may be
/// left out: a job is on by default, at its default schedule.
#[derive(Clone, Debug)]
pub struct JobConfig {
    pub enabled: bool,
    schedule: Schedule,
}

/// A job's section as written: each field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSection {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    schedule: Option<Schedule>,
}

fn yes() -> bool {
    true
}

impl JobConfig {
    /// A job on at `schedule`, one of the defaults below (checked by a test).
    fn new(schedule: &'static str) -> Self {
        Self {
            enabled: true,
            schedule: Schedule::parse(schedule).expect("a default schedule parses"),
        }
    }

    /// The configured schedule as written, or the job's default.
    pub fn schedule(&self) -> &str {
        self.schedule.as_str()
    }

    /// The schedule, parsed.
    pub fn cron(&self) -> &Schedule {
        &self.schedule
    }

    /// Sets the schedule (a cron expression, or why it is not one).
    pub fn set_schedule(&mut self, schedule: &str) -> Result<(), String> {
        self.schedule = Schedule::parse(schedule)?;
        Ok(())
    }
}

/// The scheduled jobs. With several instances on one database, each scheduled time runs once.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Archive usage rows past `retention.usage_days` to object storage, then delete them.
    pub retention: JobConfig,
    /// Expired sessions, idempotency records, old health minutes, finished job runs, log files.
    pub cleanup: JobConfig,
    /// A tiny live request through every enabled channel; opens or closes its circuit.
    pub channel_probe: JobConfig,
    /// SQLite only: an online copy of the database to object storage.
    pub backup: JobConfig,
    /// Every balance against the sum of its ledger (`tollgate_ledger_drift_units`).
    pub ledger_check: JobConfig,
    /// Checks the users' balance and key-cap thresholds, and sends the alerts that are due
    /// (and retries the ones that failed).
    pub alerts: JobConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention: JobConfig::new("0 30 3 * * *"),
            cleanup: JobConfig::new("0 */15 * * * *"),
            channel_probe: JobConfig::new("0 */5 * * * *"),
            backup: JobConfig::new("0 0 4 * * *"),
            ledger_check: JobConfig::new("0 7 * * * *"),
            alerts: JobConfig::new("*/30 * * * * *"),
        }
    }
}

impl<'de> Deserialize<'de> for JobsConfig {
    /// Each job's section is optional, and so is each field of it (see [`JobConfig`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            retention: Option<JobSection>,
            cleanup: Option<JobSection>,
            channel_probe: Option<JobSection>,
            backup: Option<JobSection>,
            ledger_check: Option<JobSection>,
            alerts: Option<JobSection>,
        }
        let raw = Raw::deserialize(d)?;
        let mut jobs = JobsConfig::default();
        for (slot, given) in [
            (&mut jobs.retention, raw.retention),
            (&mut jobs.cleanup, raw.cleanup),
            (&mut jobs.channel_probe, raw.channel_probe),
            (&mut jobs.backup, raw.backup),
            (&mut jobs.ledger_check, raw.ledger_check),
            (&mut jobs.alerts, raw.alerts),
        ] {
            if let Some(g) = given {
                slot.enabled = g.enabled;
                if let Some(schedule) = g.schedule {
                    slot.schedule = schedule;
                }
            }
        }
        Ok(jobs)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Usage rows (call logs) older than this many days are archived and deleted; the hourly
    /// aggregates (dashboards, billing reads) are kept forever.
    pub usage_days: u32,
    /// Rows deleted per statement, so that no delete holds the table for long.
    pub batch_rows: u32,
    /// Finished job runs older than this are removed by the cleanup job.
    pub job_runs_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            usage_days: 90,
            batch_rows: 1000,
            job_runs_days: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Backups kept in object storage; older ones are deleted after a successful backup.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { keep: 7 }
    }
}

impl JobsConfig {}

impl RetentionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("retention.usage_days", self.usage_days)?;
        if self.batch_rows == 0 || self.batch_rows > 10_000 {
            return Err(err("retention.batch_rows", "must be between 1 and 10000"));
        }
        at_least_one("retention.job_runs_days", self.job_runs_days)
    }
}

impl BackupConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("backup.keep", self.keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedules_parse_and_keep_their_text() {
        let jobs = JobsConfig::default();
        for (name, job) in [
            ("retention", &jobs.retention),
            ("cleanup", &jobs.cleanup),
            ("channel_probe", &jobs.channel_probe),
            ("backup", &jobs.backup),
            ("ledger_check", &jobs.ledger_check),
            ("alerts", &jobs.alerts),
        ] {
            assert_eq!(job.cron().as_str(), job.schedule(), "{name}");
            assert!(job.cron().next_after(0).is_some(), "{name}");
        }
        let mut job = JobConfig::new("0 0 4 * * *");
        assert!(job.set_schedule("every day").is_err());
        assert_eq!(
            job.schedule(),
            "0 0 4 * * *",
            "a refused schedule changes nothing"
        );
        job.set_schedule("*/15 * * * *").expect("five fields");
        assert_eq!(job.schedule(), "*/15 * * * *");
    }
}
