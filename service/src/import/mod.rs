//! `tollgate import`: moves a one-api or new-api deployment (any of its three engines) into
//! Tollgate in one transaction, so that its users sign in with their passwords and their API
//! keys and unused redeem codes keep working. Run twice, it matches what it imported before
//! (users by name and their import's ledger row, keys and codes by digest, channels by name,
//! prices and group multipliers by model and group) instead of adding it again. `--dry-run`
//! does all of it and rolls back. What it could not carry, or carried with a loss, the report
//! says line by line.

pub mod convert;
mod repo;

use crate::db::Db;
use anyhow::Context as _;
use convert::{channel_kind, key_secret, list, quota_units, scaled};
use repo::{Source, int, text};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The one-api / new-api database URL (`sqlite:`, `postgres://`, `mysql://`).
    pub from: String,
    /// Do everything, then roll back.
    pub dry_run: bool,
    /// Also the call logs of the last this many days.
    pub logs_days: Option<u32>,
}

/// What one table came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub read: u64,
    pub imported: u64,
    /// Imported by an earlier run (or already the same in Tollgate).
    pub matched: u64,
    pub skipped: u64,
}

/// The import's account: counts per table, what was skipped and why, and every conversion that
/// lost information.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub flavor: &'static str,
    pub dry_run: bool,
    pub tables: BTreeMap<&'static str, Count>,
    pub skipped: Vec<String>,
    pub lossy: Vec<String>,
}

impl Report {
    fn count(&mut self, table: &'static str) -> &mut Count {
        self.tables.entry(table).or_default()
    }

    fn skip(&mut self, table: &'static str, why: String) {
        self.count(table).skipped += 1;
        self.skipped.push(format!("{table}: {why}"));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "import from {}{}",
            self.flavor,
            if self.dry_run {
                " (dry run: nothing was written)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "{:<18} {:>8} {:>9} {:>8} {:>8}",
            "table", "read", "imported", "matched", "skipped"
        )?;
        for (t, c) in &self.tables {
            writeln!(
                f,
                "{t:<18} {:>8} {:>9} {:>8} {:>8}",
                c.read, c.imported, c.matched, c.skipped
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped:")?;
            for s in &self.skipped {
                writeln!(f, "  - {s}")?;
            }
        }
        if !self.lossy.is_empty() {
            writeln!(f, "carried with a loss:")?;
            for s in &self.lossy {
                writeln!(f, "  - {s}")?;
            }
        }
        Ok(())
    }
}

/// Imports `opts.from` into `db` in one transaction (rolled back on any failure, and at the end
/// of a dry run).
pub async fn run(db: &Db, opts: &Options) -> anyhow::Result<Report> {
    let src = Source::open(&opts.from).await?;
    let result = import(db, &src, opts).await;
    src.close().await;
    result
}

async fn import(db: &Db, src: &Source, opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let mut tables = HashMap::new();
    for t in [
        "users",
        "tokens",
        "channels",
        "options",
        "redemptions",
        "logs",
        "abilities",
    ] {
        if let Some(cols) = src.columns(t).await {
            tables.insert(t, cols);
        }
    }
    let need = |t: &str, cols: &[&str]| -> anyhow::Result<()> {
        let have = tables
            .get(t)
            .with_context(|| format!("not a one-api/new-api database: it has no {t} table"))?;
        let missing: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| !have.contains(*c))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "a one-api/new-api version this import does not know: {t} has no {}",
            missing.join(", ")
        );
        Ok(())
    };
    need(
        "users",
        &[
            "id", "username", "password", "role", "status", "quota", "group",
        ],
    )?;
    need(
        "tokens",
        &[
            "id",
            "user_id",
            "key",
            "status",
            "name",
            "expired_time",
            "remain_quota",
            "unlimited_quota",
        ],
    )?;
    need(
        "channels",
        &["id", "type", "key", "status", "name", "base_url", "models"],
    )?;
    need("options", &["key", "value"])?;
    need("redemptions", &["id", "key", "status", "name", "quota"])?;
    let new_api = tables["tokens"].contains("model_limits");
    report.flavor = if new_api { "new-api" } else { "one-api" };
    let has = |t: &str, c: &str| tables.get(t).is_some_and(|cols| cols.contains(c));

    let mut tx = db.begin_write().await?;
    let now = crate::now_ms();
    let users = users(
        src,
        &mut tx,
        &mut report,
        has("users", "email"),
        has("users", "deleted_at"),
        now,
    )
    .await?;
    tokens(src, &mut tx, &mut report, &users, new_api, &has, now).await?;
    let channels = channels(src, &mut tx, &mut report, &has, now).await?;
    prices(src, &mut tx, &mut report, now).await?;
    codes(src, &mut tx, &mut report, &has, now).await?;
    if let Some(days) = opts.logs_days {
        if tables.contains_key("logs") {
            logs(src, &mut tx, &mut report, &users, &channels, days, now).await?;
        } else {
            report
                .lossy
                .push("logs: the source has no logs table".into());
        }
    }
    if opts.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await.context("committing the import")?;
    }
    Ok(report)
}

/// Users: source id → Tollgate id, for the users imported now or before.
async fn users(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    email: bool,
    deleted: bool,
    now: i64,
) -> anyhow::Result<HashMap<i64, i64>> {
    let mut cols = vec![
        src.int("id"),
        src.text("username"),
        src.text("password"),
        src.int("role"),
        src.int("status"),
        src.int("quota"),
        src.text("group"),
    ];
    cols.push(if email {
        src.text("email")
    } else {
        "NULL".into()
    });
    cols.push(if deleted {
        src.present("deleted_at")
    } else {
        "0".into()
    });
    let rows = src.rows(&cols, "users", "ORDER BY id").await?;
    let mut map = HashMap::new();
    let mut seen = HashSet::new();
    for r in &rows {
        report.count("users").read += 1;
        let id = int(r, 0)?.unwrap_or_default();
        let raw = text(r, 1)?.unwrap_or_default();
        if int(r, 8)? == Some(1) {
            report.skip("users", format!("{raw} (id {id}): deleted in the source"));
            continue;
        }
        let Ok(name) = crate::accounts::normalize_username(&raw) else {
            report.skip(
                "users",
                format!(
                    "{raw:?} (id {id}): not a username Tollgate takes (3 to 32 of a-z 0-9 _ . -)"
                ),
            );
            continue;
        };
        if !seen.insert(name.clone()) {
            report.skip(
                "users",
                format!("{raw} (id {id}): the same name as an earlier user, once case is ignored"),
            );
            continue;
        }
        let reference = format!("import:user:{name}");
        match repo::user_by_name(tx, &name, &reference).await? {
            Some((tid, true)) => {
                report.count("users").matched += 1;
                map.insert(id, tid);
                continue;
            }
            Some((_, false)) => {
                report.skip(
                    "users",
                    format!("{name} (id {id}): the name is taken by a Tollgate user"),
                );
                continue;
            }
            None => {}
        }
        let hash = text(r, 2)?.unwrap_or_default();
        if !crate::accounts::password::is_legacy(&hash) {
            report.skip(
                "users",
                format!("{name} (id {id}): its password is not a bcrypt hash"),
            );
            continue;
        }
        let quota = int(r, 5)?.unwrap_or_default();
        let balance = match quota_units(quota.max(0)) {
            Some(b) => b,
            None => {
                report.skip(
                    "users",
                    format!("{name} (id {id}): a quota of {quota} does not fit"),
                );
                continue;
            }
        };
        if quota < 0 {
            report.lossy.push(format!(
                "users: {name}: a negative quota ({quota}) imported as 0"
            ));
        }
        let group = text(r, 6)?.unwrap_or_default();
        let group = if crate::billing::check_group(&group).is_ok() {
            group
        } else {
            report.lossy.push(format!(
                "users: {name}: group {group:?} is not a Tollgate group name, given default"
            ));
            "default".to_string()
        };
        let role = if int(r, 3)?.unwrap_or(1) >= 10 {
            "admin"
        } else {
            "user"
        };
        let status = if int(r, 4)? == Some(1) {
            "active"
        } else {
            "disabled"
        };
        let tid = repo::insert_user(
            tx,
            &repo::NewUser {
                username: &name,
                password_hash: &hash,
                role,
                status,
                group: &group,
                balance,
                reference: &reference,
                now,
            },
        )
        .await?;
        if let Some(e) = text(r, 7)?.filter(|e| !e.trim().is_empty()) {
            if e.len() <= 254 && e.parse::<lettre::Address>().is_ok() {
                repo::set_email(tx, tid, e.trim(), now).await?;
            } else {
                report.lossy.push(format!(
                    "users: {name}: e-mail {e:?} is not an address, left out"
                ));
            }
        }
        report.count("users").imported += 1;
        map.insert(id, tid);
    }
    Ok(map)
}

async fn tokens(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    users: &HashMap<i64, i64>,
    new_api: bool,
    has: &dyn Fn(&str, &str) -> bool,
    now: i64,
) -> anyhow::Result<()> {
    let opt = |c: &str| {
        if has("tokens", c) {
            src.text(c)
        } else {
            "NULL".to_string()
        }
    };
    let cols = vec![
        src.int("id"),
        src.int("user_id"),
        src.text("key"),
        src.int("status"),
        src.text("name"),
        src.int("expired_time"),
        src.int("remain_quota"),
        src.flag("unlimited_quota"),
        if new_api {
            src.flag("model_limits_enabled")
        } else {
            "1".into()
        },
        if new_api {
            opt("model_limits")
        } else {
            opt("models")
        },
        if new_api {
            opt("allow_ips")
        } else {
            opt("subnet")
        },
        if has("tokens", "deleted_at") {
            src.present("deleted_at")
        } else {
            "0".into()
        },
    ];
    for r in &src.rows(&cols, "tokens", "ORDER BY id").await? {
        report.count("keys").read += 1;
        let id = int(r, 0)?.unwrap_or_default();
        if int(r, 11)? == Some(1) {
            report.skip("keys", format!("key {id}: deleted in the source"));
            continue;
        }
        let Some(&owner) = int(r, 1)?.and_then(|u| users.get(&u)) else {
            report.skip("keys", format!("key {id}: its user was not imported"));
            continue;
        };
        let stored = text(r, 2)?.unwrap_or_default();
        if stored.trim().is_empty() {
            report.skip("keys", format!("key {id}: empty"));
            continue;
        }
        let secret = key_secret(&stored);
        let digest = hex::encode(crate::keys::digest(&secret));
        match repo::key_owner(tx, &digest).await? {
            Some(o) if o == owner => {
                report.count("keys").matched += 1;
                continue;
            }
            Some(_) => {
                report.skip(
                    "keys",
                    format!("key {id}: already a Tollgate key of another user"),
                );
                continue;
            }
            None => {}
        }
        let mut name: String = text(r, 4)?
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        if name.trim().is_empty() {
            name = format!("imported key {id}");
        }
        let status = int(r, 3)?.unwrap_or(1);
        if status != 1 {
            report.lossy.push(format!(
                "keys: key {id} ({name}): status {status} (not enabled) imported disabled"
            ));
        }
        let expires_at = int(r, 5)?.filter(|t| *t > 0).map(|t| t * 1000);
        let spend_cap = if int(r, 7)? == Some(1) {
            None
        } else {
            Some(quota_units(int(r, 6)?.unwrap_or(0).max(0)).unwrap_or(i64::MAX))
        };
        let models = if int(r, 8)? == Some(1) {
            text(r, 9)?.map(|m| list(&m)).unwrap_or_default()
        } else {
            Vec::new()
        };
        let raw_ips = text(r, 10)?
            .map(|m| list(&m.replace(' ', "")))
            .unwrap_or_default();
        let mut ips = Vec::new();
        for ip in &raw_ips {
            match ip.parse::<crate::keys::IpNet>() {
                Ok(net) => ips.push(net.to_string()),
                Err(_) => report.lossy.push(format!(
                    "keys: key {id}: allowlist entry {ip:?} is not an address or CIDR, left out"
                )),
            }
        }
        let active = status == 1 && (raw_ips.is_empty() || !ips.is_empty());
        if !raw_ips.is_empty() && ips.is_empty() {
            report.lossy.push(format!(
                "keys: key {id}: no allowlist entry could be read; imported disabled"
            ));
        }
        repo::insert_key(
            tx,
            &repo::NewKey {
                user_id: owner,
                name: &name,
                digest_hex: &digest,
                prefix: &format!("{}…", secret.chars().take(9).collect::<String>()),
                active,
                expires_at,
                allowed_models: &models,
                allowed_ips: &ips,
                spend_cap,
                now,
            },
        )
        .await?;
        report.count("keys").imported += 1;
    }
    Ok(())
}

/// Channels: source id → name, for the channels imported now or before.
async fn channels(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    has: &dyn Fn(&str, &str) -> bool,
    now: i64,
) -> anyhow::Result<HashMap<i64, String>> {
    let opt = |c: &str, int: bool| match (has("channels", c), int) {
        (false, _) => "NULL".to_string(),
        (true, true) => src.int(c),
        (true, false) => src.text(c),
    };
    let cols = vec![
        src.int("id"),
        src.int("type"),
        src.text("key"),
        src.int("status"),
        src.text("name"),
        src.text("base_url"),
        src.text("models"),
        opt("weight", true),
        opt("priority", true),
        opt("model_mapping", false),
        opt("group", false),
        opt("other", false),
    ];
    let mut out = HashMap::new();
    let mut names = HashSet::new();
    let mut sources = HashMap::new();
    for r in &src.rows(&cols, "channels", "ORDER BY id").await? {
        report.count("channels").read += 1;
        let id = int(r, 0)?.unwrap_or_default();
        let mut name: String = text(r, 4)?
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(56)
            .collect();
        if name.trim().is_empty() {
            name = format!("channel {id}");
        }
        if !names.insert(name.clone()) {
            name = format!("{name} #{id}");
        }
        if repo::channel_id(tx, &name).await?.is_some() {
            report.count("channels").matched += 1;
            out.insert(id, name);
            continue;
        }
        let ty = int(r, 1)?.unwrap_or_default();
        let kind = channel_kind(ty);
        let Some(base) = convert::base_url(kind, &text(r, 5)?.unwrap_or_default()) else {
            report.skip("channels", format!("{name} (id {id}): no base URL"));
            continue;
        };
        let keys = list(&text(r, 2)?.unwrap_or_default().replace(',', "\n"));
        if keys.len() > 1 {
            report.lossy.push(format!(
                "channels: {name}: {} keys, the first kept",
                keys.len()
            ));
        }
        let mut models = list(&text(r, 6)?.unwrap_or_default());
        let mapping: BTreeMap<String, String> = text(r, 9)?
            .filter(|m| !m.trim().is_empty())
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default();
        for (public, upstream) in &mapping {
            // The channel serves the upstream name; the public one maps to it.
            models.retain(|m| m != public);
            if !models.contains(upstream) {
                models.push(upstream.clone());
            }
            match repo::mapping(tx, public).await? {
                None => repo::insert_mapping(tx, public, std::slice::from_ref(upstream), now).await?,
                Some(t) if t == [upstream.clone()] => {}
                Some(_) => report.lossy.push(format!(
                    "channels: {name}: mapping {public} → {upstream} not carried: Tollgate maps {public} otherwise already"
                )),
            }
        }
        // The groups whose users it serves there (its abilities are these × its models).
        let mut groups = list(&text(r, 10)?.unwrap_or_else(|| "default".into()));
        groups.sort();
        groups.dedup();
        let bad: Vec<String> = groups
            .extract_if(.., |g| crate::billing::check_group(g).is_err())
            .collect();
        if !bad.is_empty() {
            report.lossy.push(format!(
                "channels: {name}: group {} is not a group name Tollgate takes; left out",
                bad.join(", ")
            ));
        }
        let grouped = !groups.is_empty();
        if !grouped {
            report.lossy.push(format!(
                "channels: {name}: no group there, so no user could call it; imported disabled"
            ));
        }
        sources.insert(
            id,
            Served {
                name: name.clone(),
                groups: groups.clone(),
                models: list(&text(r, 6)?.unwrap_or_default()),
                enabled: int(r, 3)? == Some(1),
            },
        );
        let enabled = int(r, 3)? == Some(1) && kind.is_some() && grouped;
        if kind.is_none() {
            report.lossy.push(format!(
                "channels: {name}: type {ty} is not one Tollgate serves; imported disabled"
            ));
        }
        let kind = kind.unwrap_or_default();
        let api_version = (kind == types::ChannelKind::Azure)
            .then(|| text(r, 11))
            .transpose()?
            .flatten()
            .filter(|v| !v.trim().is_empty());
        repo::insert_channel(
            tx,
            &repo::NewChannel {
                name: &name,
                kind: kind.as_str(),
                base_url: &base,
                api_version: api_version.as_deref(),
                api_key: keys.first().map_or("", String::as_str),
                models: &models,
                groups: &groups,
                priority: int(r, 8)?.unwrap_or(0),
                weight: int(r, 7)?.unwrap_or(1).max(1),
                enabled,
                now,
            },
        )
        .await?;
        report.count("channels").imported += 1;
        out.insert(id, name);
    }
    if has("abilities", "channel_id") {
        abilities(src, report, &sources).await?;
    }
    Ok(out)
}

/// A source channel as its abilities should read: its groups × its models, on when it is.
struct Served {
    name: String,
    groups: Vec<String>,
    models: Vec<String>,
    enabled: bool,
}

/// one-api and new-api route by `abilities` (group, model, channel), written from each
/// channel's groups × models; Tollgate routes by the channel's groups and models themselves.
/// Where the source's abilities say otherwise (edited by hand, or left behind), the report
/// names the channel and the first few rows that differ: what was carried is its groups ×
/// models.
async fn abilities(
    src: &Source,
    report: &mut Report,
    served: &HashMap<i64, Served>,
) -> anyhow::Result<()> {
    let cols = [
        src.text("group"),
        src.text("model"),
        src.int("channel_id"),
        src.flag("enabled"),
    ];
    let mut seen: HashMap<i64, HashSet<(String, String)>> = HashMap::new();
    let mut differ: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for r in &src.rows(&cols, "abilities", "").await? {
        let (group, model) = (
            text(r, 0)?.unwrap_or_default(),
            text(r, 1)?.unwrap_or_default(),
        );
        let Some(id) = int(r, 2)? else { continue };
        let Some(ch) = served.get(&id) else { continue };
        let on = int(r, 3)? == Some(1);
        let carried = ch.groups.contains(&group) && ch.models.contains(&model);
        if on && !carried {
            differ
                .entry(id)
                .or_default()
                .push(format!("{group}/{model} served there, not here"));
        } else if carried && on != ch.enabled {
            differ.entry(id).or_default().push(format!(
                "{group}/{model} {} there",
                if on { "on" } else { "off" }
            ));
        }
        seen.entry(id).or_default().insert((group, model));
    }
    for (id, ch) in served {
        if !ch.enabled {
            continue;
        }
        let have = seen.get(id);
        for g in &ch.groups {
            for m in &ch.models {
                if !have.is_some_and(|h| h.contains(&(g.clone(), m.clone()))) {
                    differ
                        .entry(*id)
                        .or_default()
                        .push(format!("{g}/{m} not served there, served here"));
                }
            }
        }
    }
    for (id, rows) in differ {
        let shown: Vec<&str> = rows.iter().take(3).map(String::as_str).collect();
        report.lossy.push(format!(
            "channels: {}: {} of its abilities differ from its groups × models ({}{}); carried as its groups × models",
            served[&id].name,
            rows.len(),
            shown.join("; "),
            if rows.len() > 3 { "; …" } else { "" }
        ));
    }
    Ok(())
}

/// A ratio map from the options (`{"model": 1.5, ...}`), each value as its decimal text.
fn ratios(
    options: &HashMap<String, String>,
    key: &str,
    report: &mut Report,
) -> BTreeMap<String, String> {
    let Some(text) = options.get(key).filter(|t| !t.trim().is_empty()) else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<BTreeMap<String, serde_json::Number>>(text) {
        Ok(m) => m.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
        Err(e) => {
            report.lossy.push(format!(
                "prices: option {key} does not read as a map of numbers ({e}); left out"
            ));
            BTreeMap::new()
        }
    }
}

async fn prices(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    now: i64,
) -> anyhow::Result<()> {
    let rows = src
        .rows(&[src.text("key"), src.text("value")], "options", "")
        .await?;
    let mut options = HashMap::new();
    for r in &rows {
        if let (Some(k), Some(v)) = (text(r, 0)?, text(r, 1)?) {
            options.insert(k, v);
        }
    }
    let model = ratios(&options, "ModelRatio", report);
    let completion = ratios(&options, "CompletionRatio", report);
    let cache = ratios(&options, "CacheRatio", report);
    let per_call = ratios(&options, "ModelPrice", report);
    let exact = |what: String, r: Result<i64, Option<i64>>, report: &mut Report| -> Option<i64> {
        match r {
            Ok(n) => Some(n),
            Err(Some(n)) => {
                report.lossy.push(format!(
                    "prices: {what} does not convert exactly; rounded up to {n} units"
                ));
                Some(n)
            }
            Err(None) => None,
        }
    };
    let names: std::collections::BTreeSet<&String> = model.keys().chain(per_call.keys()).collect();
    for m in names {
        report.count("prices").read += 1;
        let (input, output, cached, request) = if let Some(usd) = per_call.get(m) {
            let Some(per) = exact(
                format!("{m}: ModelPrice {usd}"),
                scaled(usd, 1_000_000),
                report,
            ) else {
                report.skip("prices", format!("{m}: ModelPrice {usd} is not a number"));
                continue;
            };
            (0, 0, 0, per)
        } else {
            let ratio = &model[m];
            let Some(input) = exact(
                format!("{m}: ModelRatio {ratio}"),
                scaled(ratio, 2_000_000),
                report,
            ) else {
                report.skip("prices", format!("{m}: ModelRatio {ratio} is not a number"));
                continue;
            };
            let times = |r: Option<&String>, what: &str, report: &mut Report| -> Option<i64> {
                let r = r?;
                // input × ratio, exactly: the ratio's decimal scaled by the input units.
                exact(format!("{m}: {what} {r}"), scaled(r, input), report)
            };
            let output = times(completion.get(m), "CompletionRatio", report).unwrap_or(input);
            let cached = times(cache.get(m), "CacheRatio", report).unwrap_or(input);
            (input, output, cached, 0)
        };
        if input < 0 || output < 0 || cached < 0 || request < 0 {
            report.skip("prices", format!("{m}: a negative price"));
            continue;
        }
        if m.is_empty() || m.chars().count() > 256 {
            report.skip("prices", format!("{m:?}: not a model name Tollgate takes"));
            continue;
        }
        let want = [input, output, cached, request];
        match repo::active_price(tx, m).await? {
            Some(p) if p == want => report.count("prices").matched += 1,
            Some(_) => report.skip(
                "prices",
                format!("{m}: Tollgate has its own price; left as it is"),
            ),
            None => {
                repo::insert_price(tx, m, want, now).await?;
                report.count("prices").imported += 1;
            }
        }
    }
    for (group, ratio) in ratios(&options, "GroupRatio", report) {
        report.count("groups").read += 1;
        let Some(milli) = exact(
            format!("group {group}: GroupRatio {ratio}"),
            scaled(&ratio, 1000),
            report,
        ) else {
            report.skip(
                "groups",
                format!("{group}: GroupRatio {ratio} is not a number"),
            );
            continue;
        };
        if crate::billing::check_group(&group).is_err() || milli < 0 {
            report.skip("groups", format!("{group:?}: not a group Tollgate takes"));
            continue;
        }
        match repo::group_multiplier(tx, &group).await? {
            Some(m) if m == milli => report.count("groups").matched += 1,
            Some(_) => report.skip(
                "groups",
                format!("{group}: Tollgate has its own multiplier; left as it is"),
            ),
            None => {
                repo::insert_group_multiplier(tx, &group, milli, now).await?;
                report.count("groups").imported += 1;
            }
        }
    }
    Ok(())
}

/// Imported codes share a batch when they share a label, a value and an expiry (unix s).
type BatchKey = (String, i64, Option<i64>);

async fn codes(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    has: &dyn Fn(&str, &str) -> bool,
    now: i64,
) -> anyhow::Result<()> {
    let cols = vec![
        src.int("id"),
        src.text("key"),
        src.int("status"),
        src.text("name"),
        src.int("quota"),
        if has("redemptions", "expired_time") {
            src.int("expired_time")
        } else {
            "NULL".into()
        },
        if has("redemptions", "deleted_at") {
            src.present("deleted_at")
        } else {
            "0".into()
        },
    ];
    let mut batches: BTreeMap<BatchKey, Vec<(String, String)>> = BTreeMap::new();
    for r in &src.rows(&cols, "redemptions", "ORDER BY id").await? {
        report.count("redeem codes").read += 1;
        let id = int(r, 0)?.unwrap_or_default();
        if int(r, 2)? != Some(1) || int(r, 6)? == Some(1) {
            report.count("redeem codes").skipped += 1; // used or disabled: nothing to carry
            continue;
        }
        let expires = int(r, 5)?.filter(|t| *t > 0);
        if expires.is_some_and(|t| t * 1000 <= now) {
            report.count("redeem codes").skipped += 1;
            continue;
        }
        let Some(code) = crate::redeem::Code::parse(&text(r, 1)?.unwrap_or_default()) else {
            report.skip(
                "redeem codes",
                format!("code {id}: not a code Tollgate can read"),
            );
            continue;
        };
        let value = quota_units(int(r, 4)?.unwrap_or(0)).filter(|v| *v > 0);
        let Some(value) = value else {
            report.skip("redeem codes", format!("code {id}: no value"));
            continue;
        };
        if repo::code_exists(tx, &code.digest()).await? {
            report.count("redeem codes").matched += 1;
            continue;
        }
        let name: String = text(r, 3)?
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let label = format!("imported {}", name.trim()).trim().to_string();
        batches
            .entry((label, value, expires))
            .or_default()
            .push((code.digest(), code.prefix()));
        report.count("redeem codes").imported += 1;
    }
    for ((label, value, expires), codes) in batches {
        repo::insert_codes(tx, &label, value, expires, &codes, now).await?;
    }
    Ok(())
}

async fn logs(
    src: &Source,
    tx: &mut crate::db::WriteTx,
    report: &mut Report,
    users: &HashMap<i64, i64>,
    channels: &HashMap<i64, String>,
    days: u32,
    now: i64,
) -> anyhow::Result<()> {
    let since = now / 1000 - i64::from(days) * 86_400;
    let cols = vec![
        src.int("id"),
        src.int("user_id"),
        src.int("created_at"),
        src.text("model_name"),
        src.int("quota"),
        src.int("prompt_tokens"),
        src.int("completion_tokens"),
        src.int("channel_id"),
        src.int("elapsed_time"),
        src.flag("is_stream"),
    ];
    // Type 2: a consumed call (the others are top-ups, admin notes and system lines).
    let rows = src
        .rows(
            &cols,
            "logs",
            &format!(
                "WHERE {} = 2 AND {} >= {since} ORDER BY id",
                src.name("type"),
                src.name("created_at")
            ),
        )
        .await?;
    let channel_ids = repo_channel_ids(tx, channels).await?;
    for r in &rows {
        report.count("call logs").read += 1;
        let id = int(r, 0)?.unwrap_or_default();
        let Some(&user) = int(r, 1)?.and_then(|u| users.get(&u)) else {
            report.skip("call logs", format!("call {id}: its user was not imported"));
            continue;
        };
        let request_id = format!("import-{id}");
        if repo::usage_exists(tx, &request_id).await? {
            report.count("call logs").matched += 1;
            continue;
        }
        let model = text(r, 3)?.unwrap_or_default();
        let cost = quota_units(int(r, 4)?.unwrap_or(0).max(0)).unwrap_or(0);
        repo::insert_call(
            tx,
            &repo::ImportedCall {
                request_id: &request_id,
                user_id: user,
                model: &model.chars().take(256).collect::<String>(),
                channel_id: int(r, 7)?.and_then(|c| channel_ids.get(&c).copied()),
                stream: int(r, 9)? == Some(1),
                prompt_tokens: int(r, 5)?.unwrap_or(0).max(0),
                completion_tokens: int(r, 6)?.unwrap_or(0).max(0),
                cost,
                latency_ms: int(r, 8)?.unwrap_or(0).max(0),
                created_at: int(r, 2)?.unwrap_or(0) * 1000,
            },
        )
        .await?;
        report.count("call logs").imported += 1;
    }
    Ok(())
}

/// Source channel id → Tollgate channel id.
async fn repo_channel_ids(
    tx: &mut crate::db::WriteTx,
    channels: &HashMap<i64, String>,
) -> anyhow::Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    for (src, name) in channels {
        if let Some(id) = repo::channel_id(tx, name).await? {
            out.insert(*src, id);
        }
    }
    Ok(out)
}
