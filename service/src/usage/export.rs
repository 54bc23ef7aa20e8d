//! Call logs as CSV: the filtered range of a user's calls (or everyone's, for administrators),
//! newest first, streamed in keyset chunks so an export of any size holds one chunk in memory.
//! The filters are checked before the first byte: a bad one is an error answer, not a broken
//! file. Rows written after the export began are newer than its first row and so left out.

use super::read::{call_filter, present};
use super::repo::{self, Filter, Scope};
use crate::actor::Actor;
use crate::{Error, Services};
use bytes::Bytes;
use futures_util::Stream;
use std::fmt::Write as _;
use types::{CallsQuery, UsageRow};

/// Rows read per query.
const CHUNK: i64 = 1000;

/// The header line; the columns of [`write_row`], in order.
pub const CSV_HEADER: &str = "id,time_utc,request_id,user_id,key_id,key_prefix,model,served_model,\
channel_id,attempts,stream,prompt_tokens,completion_tokens,cached_tokens,cost_usd,price_version,\
usage_source,status,error_class,latency_ms,ttft_ms,cache_write_5m_tokens,cache_write_1h_tokens,\
reasoning_tokens,image_input_tokens,image_output_tokens,audio_input_tokens,audio_output_tokens,\
surface,upstream_kind\r\n";

/// A byte stream of CSV (RFC 4180, CRLF line ends).
pub type CsvStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// The signed-in user's own calls as CSV (an export counts against the user's log-read quota,
/// `limits.log_query_per_minute`, as one read).
pub async fn my_calls_csv(
    svc: &Services,
    user_id: i64,
    q: &CallsQuery,
) -> Result<CsvStream, Error> {
    if present(q.user_id.as_ref()).is_some() {
        return Err(Error::invalid(
            "user_id",
            "only administrators read other users' calls",
        ));
    }
    let f = export_filter(q)?;
    crate::ratelimit::route_quota(
        &svc.limiter,
        "export",
        user_id,
        svc.config.limits.log_query_per_minute,
    )
    .await?;
    Ok(stream(svc.clone(), Scope::User(user_id), f))
}

/// Every user's calls (or one user's, with `user_id`) as CSV, for administrators.
pub fn all_calls_csv(svc: &Services, actor: &Actor, q: &CallsQuery) -> Result<CsvStream, Error> {
    actor.require_admin()?;
    let scope = match present(q.user_id.as_ref()) {
        None => Scope::Everyone,
        Some(u) => Scope::User(
            u.trim()
                .parse()
                .map_err(|_| Error::invalid("user_id", "must be an integer"))?,
        ),
    };
    let f = export_filter(q)?;
    Ok(stream(svc.clone(), scope, f))
}

fn export_filter(q: &CallsQuery) -> Result<Filter, Error> {
    // An export is the whole filtered range: paging fields would silently cut it.
    if present(q.cursor.as_ref()).is_some() {
        return Err(Error::invalid("cursor", "an export covers the whole range"));
    }
    if present(q.limit.as_ref()).is_some() {
        return Err(Error::invalid("limit", "an export covers the whole range"));
    }
    call_filter(q)
}

struct State {
    svc: Services,
    scope: Scope,
    filter: Filter,
    after: Option<(i64, i64)>,
    header: bool,
    done: bool,
}

fn stream(svc: Services, scope: Scope, filter: Filter) -> CsvStream {
    let state = State {
        svc,
        scope,
        filter,
        after: None,
        header: false,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        if !s.header {
            s.header = true;
            return Some((Ok(Bytes::from_static(CSV_HEADER.as_bytes())), s));
        }
        if s.done {
            return None;
        }
        let rows = match repo::calls(&s.svc.db, s.scope, &s.filter, s.after, CHUNK, 0).await {
            Ok(rows) => rows,
            Err(e) => {
                s.done = true;
                return Some((Err(Error::from(e)), s));
            }
        };
        let last = rows.last()?;
        s.after = Some((last.created_at, last.id));
        s.done = i64::try_from(rows.len()).unwrap_or(CHUNK) < CHUNK;
        let mut out = String::with_capacity(rows.len() * 200);
        for r in &rows {
            write_row(&mut out, r);
        }
        Some((Ok(Bytes::from(out)), s))
    }))
}

/// One call as a CSV line (with its CRLF).
pub fn write_row(out: &mut String, r: &UsageRow) {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let _ = write!(out, "{},{},", r.id, iso_time(r.created_at));
    field(out, &r.request_id);
    let _ = write!(out, ",{},{},", r.user_id, opt(r.key_id));
    field(out, r.key_prefix.as_deref().unwrap_or_default());
    out.push(',');
    field(out, &r.model);
    out.push(',');
    field(out, r.served_model.as_deref().unwrap_or_default());
    let _ = write!(
        out,
        ",{},{},{},{},{},{},{},{},{},{},{},{},{},",
        opt(r.channel_id),
        r.attempts,
        r.stream,
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        r.cost.to_usd_string(),
        opt(r.price_version),
        r.usage_source.as_str(),
        r.status,
        r.error_class.map(|c| c.as_str()).unwrap_or_default(),
        r.latency_ms,
        r.ttft_ms.map(|v| v.to_string()).unwrap_or_default(),
    );
    for n in r.detail().counts() {
        let _ = write!(out, "{n},");
    }
    field(out, &r.surface);
    out.push(',');
    field(out, r.upstream_kind.as_deref().unwrap_or_default());
    out.push_str("\r\n");
}

/// A text field: quoted when it holds a separator, a quote or a line break (quotes doubled),
/// and defused when a spreadsheet would read it as a formula (a leading `=`, `+`, `-`, `@`,
/// tab or CR gets a `'` before it). Model names and key prefixes come from clients.
fn field(out: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// Unix ms as ISO 8601 UTC, to the millisecond.
fn iso_time(ms: i64) -> String {
    let day = types::date::format_day(ms.div_euclid(86_400_000));
    let in_day = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{day}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use types::{Credits, ErrorClass, UsageSource};

    fn row() -> UsageRow {
        UsageRow {
            id: 7,
            request_id: "req-1".into(),
            user_id: 3,
            key_id: Some(9),
            key_prefix: Some("sk-abcd".into()),
            model: "gpt-4o".into(),
            served_model: None,
            channel_id: Some(2),
            attempts: 1,
            stream: true,
            prompt_tokens: 12,
            completion_tokens: 30,
            cached_tokens: 0,
            cache_write_5m_tokens: 0,
            cache_write_1h_tokens: 5,
            reasoning_tokens: 20,
            image_input_tokens: 0,
            image_output_tokens: 0,
            audio_input_tokens: 0,
            audio_output_tokens: 0,
            surface: "messages".into(),
            upstream_kind: Some("anthropic".into()),
            cost: Credits::from_units(123),
            price_version: None,
            usage_source: UsageSource::Upstream,
            status: 502,
            error_class: Some(ErrorClass::UpstreamCut),
            latency_ms: 250,
            ttft_ms: None,
            created_at: 1_764_297_255_123,
        }
    }

    #[test]
    fn a_row_is_one_line_with_every_column() {
        let mut out = String::new();
        write_row(&mut out, &row());
        assert_eq!(
            out,
            "7,2025-11-28T02:34:15.123Z,req-1,3,9,sk-abcd,gpt-4o,,2,1,true,12,30,0,0.000123,,\
             upstream,502,upstream_cut,250,,0,5,20,0,0,0,0,messages,anthropic\r\n"
        );
        let columns = CSV_HEADER.trim_end().split(',').count();
        assert_eq!(out.trim_end().split(',').count(), columns);
    }

    #[test]
    fn client_text_is_quoted_and_formulas_are_defused() {
        let mut r = row();
        r.model = "a,\"b\"\nc".into();
        r.served_model = Some("=HYPERLINK(\"x\")".into());
        r.request_id = "-1+2".into();
        let mut out = String::new();
        write_row(&mut out, &r);
        assert!(out.contains(",\"a,\"\"b\"\"\nc\","), "{out}");
        assert!(out.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{out}");
        assert!(
            out.starts_with("7,2025-11-28T02:34:15.123Z,\"'-1+2\","),
            "{out}"
        );
    }

    #[test]
    fn times_are_iso_utc_to_the_millisecond() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(86_399_999), "1970-01-01T23:59:59.999Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59.999Z");
    }
}
