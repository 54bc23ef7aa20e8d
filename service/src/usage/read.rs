//! Reading usage back: a user's calls (numbered pages for `/api/logs`, keyset pages for the
//! console), daily usage by model or key from the hourly aggregates (`/api/usage`, the
//! dashboard), and the ledger. A user's
//! functions take the user id the adapter authenticated (a session or an API key's owner) and
//! read nothing else; the administrators' take the actor and check its role.

use super::repo::{self, Filter, Scope, StatusFilter};
use crate::actor::Actor;
use crate::paging::{parse_id_cursor, parse_limit, slice};
use crate::{Error, Services, now_ms};
use types::date::parse_day;
use types::{
    CallsQuery, LedgerQuery, LedgerRow, LogsQuery, Page, PageMeta, Slice, UsagePoint, UsageQuery,
    UsageRow,
};

const DAY_MS: i64 = 86_400_000;
/// The longest range a daily-usage read covers.
pub const MAX_DAYS: i64 = 400;
const MAX_PAGE_SIZE: u64 = 100;

pub(super) fn present(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str).filter(|s| !s.is_empty())
}

fn parse_int(field: &'static str, text: Option<&str>) -> Result<Option<i64>, Error> {
    text.map(|t| {
        t.trim()
            .parse::<i64>()
            .map_err(|_| Error::invalid(field, "must be an integer"))
    })
    .transpose()
}

/// Unix seconds to ms, refusing what is out of range.
fn seconds(field: &'static str, text: Option<&str>) -> Result<Option<i64>, Error> {
    parse_int(field, text)?
        .map(|s| {
            s.checked_mul(1000)
                .filter(|ms| *ms >= 0)
                .ok_or_else(|| Error::invalid(field, "must be unix seconds"))
        })
        .transpose()
}

fn filter(
    model: Option<&String>,
    status: Option<&String>,
    from: Option<&String>,
    to: Option<&String>,
    key_id: Option<&String>,
) -> Result<Filter, Error> {
    let model = present(model).map(str::to_string);
    if let Some(m) = &model
        && m.len() > 256
    {
        return Err(Error::invalid("model", "must be at most 256 bytes"));
    }
    let status = match present(status) {
        None => None,
        Some("success") => Some(StatusFilter::Success),
        Some("error") => Some(StatusFilter::Error),
        Some(code) => Some(StatusFilter::Code(
            code.parse::<i64>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    Error::invalid("status", "must be success, error or an HTTP status code")
                })?,
        )),
    };
    let from_ms = seconds("from", present(from))?;
    let to_ms = seconds("to", present(to))?;
    if let (Some(f), Some(t)) = (from_ms, to_ms)
        && f > t
    {
        return Err(Error::invalid("to", "must not be before from"));
    }
    Ok(Filter {
        model,
        status,
        from_ms,
        to_ms,
        key_id: parse_int("key_id", present(key_id))?,
    })
}

/// `/api/logs`: the key owner's calls, newest first, in numbered pages (within the key's
/// log-read quota).
pub async fn logs(
    svc: &Services,
    key_id: i64,
    user_id: i64,
    q: &LogsQuery,
) -> Result<Page<UsageRow>, Error> {
    crate::ratelimit::route_quota(
        &svc.limiter,
        "logs",
        key_id,
        svc.config.limits.log_query_per_minute,
    )
    .await?;
    let f = filter(
        q.model.as_ref(),
        q.status.as_ref(),
        q.from.as_ref(),
        q.to.as_ref(),
        q.key_id.as_ref(),
    )?;
    let page = match present(q.page.as_ref()) {
        None => 1,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| Error::invalid("page", "must be 1 or more"))?,
    };
    let page_size = match present(q.page_size.as_ref()) {
        None => 20,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=MAX_PAGE_SIZE).contains(p))
            .ok_or_else(|| Error::invalid("page_size", format!("must be 1 to {MAX_PAGE_SIZE}")))?,
    };
    let scope = Scope::User(user_id);
    let total = repo::count_calls(&svc.db, scope, &f).await?;
    let data = repo::calls(
        &svc.db,
        scope,
        &f,
        None,
        i64::try_from(page_size).unwrap_or(100),
        i64::try_from((page - 1) * page_size).unwrap_or(i64::MAX),
    )
    .await?;
    Ok(Page {
        data,
        meta: PageMeta {
            current_page: page,
            page_size,
            total,
            total_pages: total.div_ceil(page_size),
        },
    })
}

fn parse_call_cursor(text: Option<&str>) -> Result<Option<(i64, i64)>, Error> {
    text.map(|c| {
        c.split_once('.')
            .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.parse::<i64>().ok()?)))
            .ok_or_else(|| Error::invalid("cursor", "not a cursor this API returned"))
    })
    .transpose()
}

/// The filter fields of a console read (paging aside).
pub(super) fn call_filter(q: &CallsQuery) -> Result<Filter, Error> {
    filter(
        q.model.as_ref(),
        q.status.as_ref(),
        q.from.as_ref(),
        q.to.as_ref(),
        q.key_id.as_ref(),
    )
}

async fn keyset(svc: &Services, scope: Scope, q: &CallsQuery) -> Result<Slice<UsageRow>, Error> {
    let f = call_filter(q)?;
    let after = parse_call_cursor(present(q.cursor.as_ref()))?;
    let limit = parse_limit(present(q.limit.as_ref()))?;
    let rows = repo::calls(&svc.db, scope, &f, after, limit + 1, 0).await?;
    Ok(slice(rows, limit, |r| format!("{}.{}", r.created_at, r.id)))
}

/// The user's own calls, newest first, in keyset pages (the console's call log).
pub async fn my_calls(
    svc: &Services,
    user_id: i64,
    q: &CallsQuery,
) -> Result<Slice<UsageRow>, Error> {
    if present(q.user_id.as_ref()).is_some() {
        return Err(Error::invalid(
            "user_id",
            "only administrators read other users' calls",
        ));
    }
    keyset(svc, Scope::User(user_id), q).await
}

/// Every user's calls (or one user's, with `user_id`), for administrators.
pub async fn all_calls(
    svc: &Services,
    actor: &Actor,
    q: &CallsQuery,
) -> Result<Slice<UsageRow>, Error> {
    actor.require_admin()?;
    let scope = match parse_int("user_id", present(q.user_id.as_ref()))? {
        Some(u) => Scope::User(u),
        None => Scope::Everyone,
    };
    keyset(svc, scope, q).await
}

/// `/api/usage`: the key owner's daily usage (within the key's log-read quota, as `/api/logs`).
pub async fn key_usage(
    svc: &Services,
    key_id: i64,
    user_id: i64,
    q: &UsageQuery,
) -> Result<Vec<UsagePoint>, Error> {
    crate::ratelimit::route_quota(
        &svc.limiter,
        "logs",
        key_id,
        svc.config.limits.log_query_per_minute,
    )
    .await?;
    daily(svc, user_id, q).await
}

/// A user's daily usage by model or by key, from the hourly aggregates.
pub async fn daily(svc: &Services, user_id: i64, q: &UsageQuery) -> Result<Vec<UsagePoint>, Error> {
    let offset_min =
        parse_int("utc_offset_minutes", present(q.utc_offset_minutes.as_ref()))?.unwrap_or(0);
    if !(-720..=840).contains(&offset_min) || offset_min % 60 != 0 {
        return Err(Error::invalid(
            "utc_offset_minutes",
            "must be a whole number of hours from -720 to 840",
        ));
    }
    let offset_ms = offset_min * 60_000;
    let today = (now_ms() + offset_ms).div_euclid(DAY_MS);
    let day = |field: &'static str, v: Option<&String>| -> Result<Option<i64>, Error> {
        present(v)
            .map(|t| {
                parse_day(t).ok_or_else(|| Error::invalid(field, "must be a date, YYYY-MM-DD"))
            })
            .transpose()
    };
    let to = day("to", q.to.as_ref())?.unwrap_or(today);
    let from = day("from", q.from.as_ref())?.unwrap_or(to - 29);
    if from > to {
        return Err(Error::invalid("to", "must not be before from"));
    }
    if to - from >= MAX_DAYS {
        return Err(Error::invalid(
            "to",
            format!("a range covers at most {MAX_DAYS} days"),
        ));
    }
    let by_key = match present(q.by.as_ref()) {
        None | Some("model") => false,
        Some("key") => true,
        Some(_) => return Err(Error::invalid("by", "must be model or key")),
    };
    let rows = repo::daily(
        &svc.db,
        user_id,
        from * DAY_MS - offset_ms,
        (to + 1) * DAY_MS - offset_ms,
        offset_ms,
        by_key,
    )
    .await?;
    Ok(rows)
}

fn ledger_query(q: &LedgerQuery) -> Result<(Option<i64>, i64), Error> {
    Ok((
        parse_id_cursor(present(q.cursor.as_ref()))?,
        parse_limit(present(q.limit.as_ref()))?,
    ))
}

/// The user's own ledger, newest first.
pub async fn my_ledger(
    svc: &Services,
    user_id: i64,
    q: &LedgerQuery,
) -> Result<Slice<LedgerRow>, Error> {
    let (before, limit) = ledger_query(q)?;
    let rows = repo::ledger(&svc.db, user_id, before, limit + 1).await?;
    Ok(slice(rows, limit, |r| r.id.to_string()))
}

/// Any user's ledger, for administrators.
pub async fn user_ledger(
    svc: &Services,
    actor: &Actor,
    user_id: i64,
    q: &LedgerQuery,
) -> Result<Slice<LedgerRow>, Error> {
    actor.require_admin()?;
    let (before, limit) = ledger_query(q)?;
    if crate::accounts::repo::get(&svc.db, user_id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("user"));
    }
    let rows = repo::ledger(&svc.db, user_id, before, limit + 1).await?;
    Ok(slice(rows, limit, |r| r.id.to_string()))
}
