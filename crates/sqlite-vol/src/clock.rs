//! Time as the toolkit writes it: RFC 3339 UTC with second precision in manifests and reports, and the
//! `yyyymmddTHHMMSSZ` stamp in backup names.

use time::format_description::BorrowedFormatItem;
use time::OffsetDateTime;

/// The time in a backup's name, `yyyymmddTHHMMSSZ` (UTC).
const STAMP: &[BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// Now, as RFC 3339 UTC with second precision.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// `t` as RFC 3339 UTC with second precision.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// Now as a backup-name stamp.
pub(crate) fn now_stamp() -> String {
    OffsetDateTime::now_utc()
        .format(STAMP)
        .unwrap_or_else(|_| "00000000T000000Z".into())
}

/// A name's `yyyymmddTHHMMSSZ` stamp as (RFC 3339, seconds before `now`).
pub(crate) fn stamp_time(stamp: &str, now: OffsetDateTime) -> (String, i64) {
    let when = time::PrimitiveDateTime::parse(stamp, STAMP).map(|t| t.assume_utc());
    match when {
        Ok(t) => (rfc3339(t), (now - t).whole_seconds()),
        Err(_) => (stamp.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_rfc3339() {
        let now = OffsetDateTime::now_utc();
        let (when, age) = stamp_time("20261122T101500Z", now);
        assert_eq!(when, "2026-11-22T10:15:00Z");
        assert!(age > 0);
        assert_eq!(stamp_time("garbage", now).1, 0);
    }
}
