//! Scheduled jobs: declared in the config with a cron expression (UTC, seconds allowed) and a
//! switch each. Every instance runs the scheduler; a run first takes the job's lease in the
//! database (one holder at a time, renewed while it runs) and advances the job's `last_tick`,
//! so that each scheduled time runs once across all instances however their clocks and pauses
//! fall. Every job is idempotent, so a run cut short by a crash is finished by the next one.

mod alerts;
mod backup;
mod cleanup;
mod ledger;
pub mod probe;
mod repo;
mod retention;

pub use backup::{BACKUP_PREFIX, backups, restore};
pub use retention::{ARCHIVE_PREFIX, archive_key, list_archives, open_archive};

use crate::actor::Actor;
use crate::config::Schedule;
use crate::db::Backend;
use crate::{Error, Services, now_ms};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use types::{JobOutcome, JobRun, JobView};

/// How long a lease lasts unless renewed; a run renews it every third of this.
const LEASE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    Retention,
    Cleanup,
    ChannelProbe,
    Backup,
    LedgerCheck,
    Alerts,
}

impl Job {
    pub const ALL: [Job; 6] = [
        Job::Retention,
        Job::Cleanup,
        Job::ChannelProbe,
        Job::Backup,
        Job::LedgerCheck,
        Job::Alerts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::Retention => "retention",
            Job::Cleanup => "cleanup",
            Job::ChannelProbe => "channel_probe",
            Job::Backup => "backup",
            Job::LedgerCheck => "ledger_check",
            Job::Alerts => "alerts",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    fn config(self, svc: &Services) -> &crate::config::JobConfig {
        let jobs = &svc.config.jobs;
        match self {
            Job::Retention => &jobs.retention,
            Job::Cleanup => &jobs.cleanup,
            Job::ChannelProbe => &jobs.channel_probe,
            Job::Backup => &jobs.backup,
            Job::LedgerCheck => &jobs.ledger_check,
            Job::Alerts => &jobs.alerts,
        }
    }

    /// Switched on, and meaningful for this deployment (backups are of the SQLite file).
    fn enabled(self, svc: &Services) -> bool {
        self.config(svc).enabled && (self != Job::Backup || svc.db.backend() == Backend::Sqlite)
    }
}

/// What a running job sees: the services, and whether it still holds its lease. A job checks
/// `ctx.holding()?` between steps, so that a run whose instance paused past its lease stops
/// before it does more (another instance may have taken over).
pub struct RunCtx {
    pub svc: Services,
    lease: Arc<LeaseState>,
}

/// The lease as the running instance knows it: lost to another holder, or last renewed when
/// (by the monotonic clock, which keeps counting while the process is paused).
struct LeaseState {
    lost: AtomicBool,
    base: std::time::Instant,
    renewed_ms: AtomicU64,
}

impl LeaseState {
    fn new() -> Self {
        Self {
            lost: AtomicBool::new(false),
            base: std::time::Instant::now(),
            renewed_ms: AtomicU64::new(0),
        }
    }

    fn since_renewal(&self) -> Duration {
        self.base.elapsed().saturating_sub(Duration::from_millis(
            self.renewed_ms.load(Ordering::Acquire),
        ))
    }

    fn renewed(&self) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.renewed_ms.store(now, Ordering::Release);
    }

    /// Lost, or possibly expired: a margin short of the lease, another instance may take it.
    fn gone(&self) -> bool {
        self.lost.load(Ordering::Acquire) || self.since_renewal() + LEASE / 6 >= LEASE
    }
}

impl RunCtx {
    pub fn holding(&self) -> anyhow::Result<()> {
        if self.lease.gone() {
            anyhow::bail!("the job's lease was lost (this instance paused or lost the database)");
        }
        if self.svc.shutdown.is_triggered() {
            anyhow::bail!("the instance is shutting down");
        }
        Ok(())
    }
}

/// Runs the scheduler until shutdown: one loop per enabled job.
/// Starts the scheduler: a loop per enabled job (see [`scheduler`]).
pub fn start(svc: &Services, bg: &mut crate::state::Background) {
    bg.spawn(scheduler(svc.clone()));
}

async fn scheduler(svc: Services) {
    if let Err(e) = repo::seed(&svc.db, &Job::ALL.map(Job::name)).await {
        tracing::warn!(error = %e, "cannot prepare the job leases; retrying at the first tick");
    }
    let mut loops = Vec::new();
    for job in Job::ALL {
        if !job.enabled(&svc) {
            continue;
        }
        let schedule = job.config(&svc).cron().clone();
        loops.push(tokio::spawn(job_loop(svc.clone(), job, schedule)));
    }
    for l in loops {
        let _ = l.await;
    }
}

async fn job_loop(svc: Services, job: Job, schedule: Schedule) {
    let mut after = now_ms();
    loop {
        let Some(tick) = schedule.next_after(after) else {
            return;
        };
        let wait = Duration::from_millis(u64::try_from(tick - now_ms()).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            () = svc.shutdown.wait() => return,
        }
        // A pause past several ticks runs the latest one only.
        after = now_ms().max(tick);
        match claim(&svc, job, tick, false).await {
            Ok(Some(lease)) => {
                let run = begin(&svc, job, &lease).await;
                execute(&svc, job, lease, run).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(job = job.name(), error = %e, "cannot claim the job's tick");
                svc.metrics
                    .job_runs
                    .with_label_values(&[job.name(), "unclaimed"])
                    .inc();
            }
        }
    }
}

/// A claimed run: its tick and the lease holder's token.
struct Lease {
    tick: i64,
    manual: bool,
    holder: String,
}

async fn claim(svc: &Services, job: Job, tick: i64, manual: bool) -> Result<Option<Lease>, Error> {
    repo::seed(&svc.db, &[job.name()]).await?;
    let holder = format!("{}:{}", svc.credit.instance_id(), crate::random_id());
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(60_000);
    let got = repo::claim(&svc.db, job.name(), &holder, tick, manual, lease_ms).await?;
    Ok(got.then_some(Lease {
        tick,
        manual,
        holder,
    }))
}

/// Records the start of a claimed run.
async fn begin(svc: &Services, job: Job, lease: &Lease) -> JobRun {
    let started = now_ms();
    let instance = svc.credit.instance_id();
    let id = repo::start_run(
        &svc.db,
        job.name(),
        lease.tick,
        lease.manual,
        &instance,
        started,
    )
    .await
    .unwrap_or_else(|e| {
        tracing::warn!(job = job.name(), error = %e, "cannot record the job run");
        0
    });
    JobRun {
        id,
        job: job.name().into(),
        tick: lease.tick,
        manual: lease.manual,
        instance,
        started_at: started,
        finished_at: None,
        outcome: JobOutcome::Running,
        detail: None,
        error: None,
    }
}

/// Runs a claimed job to its end, renewing the lease meanwhile; records how it ended.
async fn execute(svc: &Services, job: Job, lease: Lease, mut run: JobRun) -> JobRun {
    let state = Arc::new(LeaseState::new());
    let renewer = tokio::spawn(renew(svc.clone(), job, lease.holder.clone(), state.clone()));
    let ctx = RunCtx {
        svc: svc.clone(),
        lease: state,
    };
    let clock = std::time::Instant::now();
    let result = match job {
        Job::Retention => retention::run(&ctx).await,
        Job::Cleanup => cleanup::run(&ctx).await,
        Job::ChannelProbe => probe::run(&ctx).await,
        Job::Backup => backup::run(&ctx).await,
        Job::LedgerCheck => ledger::run(&ctx).await,
        Job::Alerts => alerts::run(&ctx).await,
    };
    let took = clock.elapsed();
    renewer.abort();
    let finished = now_ms();
    let (outcome, detail, error) = match result {
        Ok(detail) => {
            tracing::info!(job = job.name(), took_ms = took.as_millis() as u64, detail = %detail, "job finished");
            svc.metrics
                .job_last_success
                .with_label_values(&[job.name()])
                .set(finished / 1000);
            (JobOutcome::Ok, Some(detail), None)
        }
        Err(e) => {
            let error = format!("{e:#}");
            tracing::error!(job = job.name(), took_ms = took.as_millis() as u64, error = %error, "job failed");
            (JobOutcome::Failed, None, Some(error))
        }
    };
    let label = if outcome == JobOutcome::Ok {
        "ok"
    } else {
        "failed"
    };
    svc.metrics
        .job_runs
        .with_label_values(&[job.name(), label])
        .inc();
    svc.metrics
        .job_duration
        .with_label_values(&[job.name()])
        .observe(took.as_secs_f64());
    if run.id != 0
        && let Err(e) = repo::finish_run(
            &svc.db,
            run.id,
            finished,
            outcome,
            detail.as_deref(),
            error.as_deref(),
        )
        .await
    {
        tracing::warn!(job = job.name(), error = %e, "cannot record the end of the job run");
    }
    if let Err(e) = repo::release(&svc.db, job.name(), &lease.holder).await {
        // It expires on its own.
        tracing::warn!(job = job.name(), error = %e, "cannot release the job's lease");
    }
    run.finished_at = Some(finished);
    run.outcome = outcome;
    run.detail = detail;
    run.error = error;
    run
}

/// Renews the lease every third of its length; marks it lost when a renewal finds another
/// holder, or when it could not be renewed before it may have expired.
async fn renew(svc: Services, job: Job, holder: String, state: Arc<LeaseState>) {
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(60_000);
    loop {
        tokio::time::sleep(LEASE / 3).await;
        if state.gone() {
            state.lost.store(true, Ordering::Release);
            return;
        }
        match repo::renew(&svc.db, job.name(), &holder, lease_ms).await {
            Ok(true) => state.renewed(),
            Ok(false) => {
                state.lost.store(true, Ordering::Release);
                return;
            }
            Err(e) => tracing::warn!(job = job.name(), error = %e, "cannot renew the job's lease"),
        }
    }
}

/// The jobs, their schedules and latest runs (administrators).
pub async fn list(svc: &Services, actor: &Actor) -> Result<Vec<JobView>, Error> {
    actor.require_admin()?;
    let mut out = Vec::new();
    let now = now_ms();
    for job in Job::ALL {
        let cfg = job.config(svc);
        let enabled = job.enabled(svc);
        let next_run = enabled.then(|| cfg.cron().next_after(now)).flatten();
        out.push(JobView {
            name: job.name().into(),
            enabled,
            schedule: cfg.schedule().to_string(),
            next_run,
            last_run: repo::runs(&svc.db, job.name(), None, 1)
                .await?
                .into_iter()
                .next(),
            last_success: repo::last_success(&svc.db, job.name()).await?,
        });
    }
    Ok(out)
}

/// A job's runs, newest first, before run id `before` (keyset paging).
pub async fn runs(
    svc: &Services,
    actor: &Actor,
    name: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRun>, Error> {
    actor.require_admin()?;
    let job = Job::parse(name).ok_or(Error::NotFound("job"))?;
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "must be between 1 and 500"));
    }
    Ok(repo::runs(&svc.db, job.name(), before, limit).await?)
}

/// Runs a job now on this instance (administrators), unless a run of it holds the lease; returns
/// the run as it started. Switched-off jobs may be run by hand; `backup` needs SQLite.
pub async fn run_now(svc: &Services, actor: &Actor, name: &str) -> Result<JobRun, Error> {
    actor.require_admin()?;
    let job = Job::parse(name).ok_or(Error::NotFound("job"))?;
    if job == Job::Backup && svc.db.backend() != Backend::Sqlite {
        return Err(Error::invalid(
            "job",
            "backup copies the SQLite database; back PostgreSQL or MySQL up with its own tools",
        ));
    }
    let now = now_ms();
    let lease = claim(svc, job, now, true)
        .await?
        .ok_or(Error::Conflict("the job is running; wait for it to finish"))?;
    crate::audit::record(
        &svc.db,
        actor,
        "job.run",
        format!("job:{}", job.name()),
        None,
        None,
    )
    .await;
    let run = begin(svc, job, &lease).await;
    let started = run.clone();
    let svc = svc.clone();
    tokio::spawn(async move {
        execute(&svc, job, lease, run).await;
    });
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn ticks_are_whole_seconds_whatever_the_clock_reads() {
        let every_second = Schedule::parse("* * * * * *").expect("valid");
        assert_eq!(every_second.next_after(10_311), Some(11_000));
        assert_eq!(every_second.next_after(10_999), Some(11_000));
        assert_eq!(every_second.next_after(11_000), Some(12_000));
        let five_fields = Schedule::parse("*/15 * * * *").expect("valid");
        assert_eq!(five_fields.next_after(60_000), Some(900_000));
        let nightly = Schedule::parse("0 30 3 * * *").expect("valid");
        // 2026-11-28 00:00:00 UTC, then 03:30:00 that day.
        assert_eq!(
            nightly.next_after(1_795_824_000_123),
            Some(1_795_824_000_000 + 12_600_000)
        );
        assert!(Schedule::parse("61 * * * * *").is_err());
        assert!(Schedule::parse("every day").is_err());
        assert!(Schedule::parse("").is_err());
    }
}
