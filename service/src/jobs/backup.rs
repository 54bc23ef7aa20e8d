//! SQLite backup (the embedded default): an online, consistent copy of the database (`VACUUM
//! INTO`, which reads one snapshot while the gateway keeps writing), gzip-compressed to object
//! storage as `backups/tollgate-YYYYMMDDTHHMMSSZ.db.gz`, keeping the newest `backup.keep`.
//! `tollgate restore` brings one back into a database file.

use super::RunCtx;
use crate::storage::{ObjectStore as _, Store};
use anyhow::Context as _;
use bytes::Bytes;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const BACKUP_PREFIX: &str = "backups/";

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let file = svc
        .db
        .sqlite_file()
        .context("backups are of the SQLite database; this one is PostgreSQL or MySQL")?;
    let store = &svc.store;
    let copy = std::env::temp_dir().join(format!("tollgate-backup-{}.db", crate::random_id()));
    let result = async {
        super::repo::copy_sqlite(&svc.db, &copy)
            .await
            .context("copying the database (VACUUM INTO)")?;
        ctx.holding()?;
        let raw_size = std::fs::metadata(&copy)?.len();
        let body = {
            let copy = copy.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Bytes> {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::copy(&mut std::fs::File::open(&copy)?, &mut gz)?;
                Ok(Bytes::from(gz.finish()?))
            })
            .await??
        };
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let key = format!("{BACKUP_PREFIX}tollgate-{stamp}.db.gz");
        let size = body.len();
        store
            .put(&key, body.clone())
            .await
            .with_context(|| format!("writing {key}"))?;
        let back = store
            .get(&key)
            .await?
            .with_context(|| format!("{key} is missing right after it was written"))?;
        anyhow::ensure!(back == body, "{key} read back differs from what was written");
        // The newest `keep` stay (keys sort by time).
        let mut all = store.list(BACKUP_PREFIX).await?;
        all.retain(|o| o.key.ends_with(".db.gz"));
        let keep = svc.config.backup.keep as usize;
        let mut removed = 0;
        if all.len() > keep {
            for old in &all[..all.len() - keep] {
                store.delete(&old.key).await?;
                removed += 1;
            }
        }
        Ok(format!(
            "backed up {} ({raw_size} bytes, {size} compressed) to {key} in {}; removed {removed} old backups",
            file.display(),
            store.describe()
        ))
    }
    .await;
    let _ = std::fs::remove_file(&copy);
    result
}

/// The backups in the store, oldest first.
pub async fn backups(store: &Store) -> anyhow::Result<Vec<String>> {
    Ok(store
        .list(BACKUP_PREFIX)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".db.gz"))
        .collect())
}

/// Restores backup `key` (the newest when `None`) into the SQLite file `target`. An existing
/// file is replaced only with `force` (and its WAL files removed); the gateway must be stopped.
/// The copy is checked (`PRAGMA integrity_check`) before it takes the target's place.
pub async fn restore(
    store: &Store,
    key: Option<&str>,
    target: &Path,
    force: bool,
) -> anyhow::Result<String> {
    let key = match key {
        Some(k) => k.to_string(),
        None => backups(store)
            .await?
            .pop()
            .with_context(|| format!("no backup in {}", store.describe()))?,
    };
    if target.exists() && !force {
        anyhow::bail!(
            "{} exists; stop the gateway and pass --force to replace it",
            target.display()
        );
    }
    let body = store
        .get(&key)
        .await?
        .with_context(|| format!("no backup {key} in {}", store.describe()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let part = PathBuf::from(format!("{}.restoring", target.display()));
    let result = async {
        {
            let mut out = std::fs::File::create(&part)?;
            std::io::copy(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                .with_context(|| format!("{key} is not a gzip file"))?;
            out.flush()?;
            out.sync_all()?;
        }
        let check = super::repo::sqlite_integrity(&part)
            .await
            .with_context(|| format!("{key} is not a SQLite database"))?;
        anyhow::ensure!(check == "ok", "{key} fails the integrity check: {check}");
        for suffix in ["-wal", "-shm"] {
            let stale = PathBuf::from(format!("{}{suffix}", target.display()));
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        std::fs::rename(&part, target)?;
        Ok(format!(
            "restored {key} from {} into {}",
            store.describe(),
            target.display()
        ))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}
