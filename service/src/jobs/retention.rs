//! Log retention: usage rows (call logs) older than `retention.usage_days` are written to object
//! storage as one gzip-compressed JSON Lines object per UTC day, read back and compared, and only
//! then deleted, by id, in batches of `retention.batch_rows`. The hourly aggregates are kept, so
//! dashboards and billing reads keep their history.
//!
//! Idempotent and safe to cut anywhere: when a day's object already exists (an earlier run that
//! was cut short, or another instance), its rows are kept and the rows still in the database are
//! added; only rows that the verified object holds are deleted. The database is read before the
//! object, so a row deleted by a concurrent run is always in the object read after it.

use super::RunCtx;
use super::repo::{self, ArchivedUsage};
use crate::storage::{ByteStream, ObjectInfo, ObjectStore as _, Store, StoreError};
use crate::{Error, Services, now_ms};
use anyhow::Context as _;
use bytes::Bytes;
use sha2::Digest as _;
use std::collections::HashSet;
use std::io::{BufRead as _, Write as _};

pub const ARCHIVE_PREFIX: &str = "usage/";
const DAY_MS: i64 = 86_400_000;
/// Rows read from the database per query.
const PAGE: i64 = 5000;

/// The object key of a UTC day: `usage/2026-08-30.jsonl.gz`.
pub fn archive_key(day: &str) -> String {
    format!("{ARCHIVE_PREFIX}{day}.jsonl.gz")
}

fn day_name(day_start_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day_start_ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn parse_day(day: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let store = &svc.store;
    let days = i64::from(svc.config.retention.usage_days);
    // Whole UTC days only: the cutoff is the start of the day `usage_days` ago.
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS;
    let cutoff = today - days * DAY_MS;
    let (mut archived_days, mut archived_rows, mut batches) = (0u64, 0u64, 0u64);
    loop {
        ctx.holding()?;
        let Some(oldest) = repo::oldest_usage_before(&svc.db, cutoff).await? else {
            break;
        };
        let day_start = oldest.div_euclid(DAY_MS) * DAY_MS;
        let (rows, deletes) = archive_day(ctx, store, day_start).await?;
        archived_days += 1;
        archived_rows += rows;
        batches += deletes;
    }
    Ok(format!(
        "archived {archived_rows} rows of {archived_days} days older than {} to {} \
         (deleted in {batches} batches of at most {})",
        day_name(cutoff),
        store.describe(),
        svc.config.retention.batch_rows
    ))
}

/// Archives one day and deletes its archived rows; returns how many rows it deleted, and in
/// how many statements.
async fn archive_day(ctx: &RunCtx, store: &Store, day_start: i64) -> anyhow::Result<(u64, u64)> {
    let svc = &ctx.svc;
    let day = day_name(day_start);
    let key = archive_key(&day);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut seen = HashSet::new();
    // The database first, page by page, then the object (see the module's note).
    let mut ids = Vec::new();
    let mut after = i64::MIN;
    loop {
        ctx.holding()?;
        let rows = repo::usage_page(&svc.db, day_start, day_start + DAY_MS, after, PAGE).await?;
        for row in &rows {
            after = row.id;
            ids.push(row.id);
            seen.insert(row.id);
            serde_json::to_writer(&mut gz, row)?;
            gz.write_all(b"\n")?;
        }
        if rows.len() < PAGE as usize {
            break;
        }
    }
    if ids.is_empty() {
        return Ok((0, 0));
    }
    if let Some(old) = store
        .get(&key)
        .await
        .with_context(|| format!("reading {key}"))?
    {
        for line in std::io::BufReader::new(flate2::read::GzDecoder::new(&old[..])).lines() {
            let line = line.with_context(|| format!("{key} is not gzip JSON Lines"))?;
            if line.is_empty() {
                continue;
            }
            let row: ArchivedUsage = serde_json::from_str(&line)
                .with_context(|| format!("{key} holds a line that is not a usage row"))?;
            if seen.insert(row.id) {
                gz.write_all(line.as_bytes())?;
                gz.write_all(b"\n")?;
            }
        }
    }
    let body = Bytes::from(gz.finish()?);
    ctx.holding()?;
    let digest = sha2::Sha256::digest(&body);
    store
        .put(&key, body)
        .await
        .with_context(|| format!("writing {key}"))?;
    let back = store
        .get(&key)
        .await
        .with_context(|| format!("reading {key} back"))?
        .with_context(|| format!("{key} is missing right after it was written"))?;
    anyhow::ensure!(
        sha2::Sha256::digest(&back) == digest,
        "{key} read back differs from what was written"
    );
    // And it decodes to as many rows as it should hold.
    let mut lines = 0usize;
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(&back[..])).lines() {
        line.with_context(|| format!("{key} read back is not gzip text"))?;
        lines += 1;
    }
    anyhow::ensure!(
        lines == seen.len(),
        "{key} read back holds {lines} rows, not {}",
        seen.len()
    );
    let batch = svc.config.retention.batch_rows as usize;
    let (mut deleted, mut batches) = (0, 0);
    for chunk in ids.chunks(batch) {
        ctx.holding()?;
        deleted += repo::delete_usage(&svc.db, chunk).await?;
        batches += 1;
    }
    tracing::info!(day = %day, key = %key, rows = deleted, kept = seen.len(), "archived a day of call logs");
    Ok((deleted, batches))
}

/// The archived days, oldest first (administrators).
pub async fn list_archives(
    svc: &Services,
    actor: &crate::actor::Actor,
) -> Result<Vec<types::ArchiveDay>, Error> {
    actor.require_admin()?;
    let store = &svc.store;
    let objects = store.list(ARCHIVE_PREFIX).await.map_err(unavailable)?;
    Ok(objects
        .into_iter()
        .filter_map(|ObjectInfo { key, size }| {
            let day = key
                .strip_prefix(ARCHIVE_PREFIX)?
                .strip_suffix(".jsonl.gz")?
                .to_string();
            parse_day(&day)?;
            Some(types::ArchiveDay {
                day,
                key,
                bytes: size,
            })
        })
        .collect())
}

/// One archived day as a stream (administrators).
pub async fn open_archive(
    svc: &Services,
    actor: &crate::actor::Actor,
    day: &str,
) -> Result<ByteStream, Error> {
    actor.require_admin()?;
    if parse_day(day).is_none() {
        return Err(Error::invalid("day", "must be a date, YYYY-MM-DD"));
    }
    let store = &svc.store;
    store
        .stream(&archive_key(day))
        .await
        .map_err(unavailable)?
        .ok_or(Error::NotFound("archive"))
}

fn unavailable(e: StoreError) -> Error {
    tracing::warn!(error = %e, "object storage failed");
    Error::Unavailable("object storage did not answer; try again".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(parse_day("2026-11-28"), Some(1_795_824_000_000));
        assert_eq!(day_name(1_795_824_000_000 + DAY_MS - 1), "2026-11-28");
        assert_eq!(archive_key("2026-11-28"), "usage/2026-11-28.jsonl.gz");
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("../x"), None);
    }
}
