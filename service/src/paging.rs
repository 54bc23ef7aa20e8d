//! Keyset paging, the one way list reads page: an id (or a position) to continue below, and a
//! page size of 1 to 100.

use crate::Error;
use types::Slice;

const MAX_LIMIT: i64 = 100;

/// A keyset cursor that is an id: the page continues below it.
pub fn parse_id_cursor(cursor: Option<&str>) -> Result<Option<i64>, Error> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid("cursor", "not a cursor this API returned"))
        })
        .transpose()
}

/// A page size: 1 to 100, 50 when absent.
pub fn parse_limit(limit: Option<&str>) -> Result<i64, Error> {
    match limit.filter(|l| !l.is_empty()) {
        None => Ok(50),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Error::invalid("limit", format!("must be 1 to {MAX_LIMIT}"))),
    }
}

/// Rows fetched with one extra beyond `limit`: the page, and the cursor of the next (the last
/// row's, as `cursor` writes it) when the extra row exists.
pub fn slice<T>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Slice<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    Slice {
        data: rows,
        next_cursor,
    }
}
