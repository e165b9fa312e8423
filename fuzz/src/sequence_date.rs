//! IMAP `sequence-set`, `date` and `date-time` values
//! (`mailcove::imap::proto::parse::{parse_sequence_set, parse_date, parse_date_time}`).
//! Every input is tried as each of the three.
//!
//! Invariants: resolved sets are sorted, disjoint, non-adjacent and inside
//! `1..=max(star, largest explicit number)`; `count`/`contains`/`min`/`max`
//! agree with the ranges; a resolved set written back compactly parses and
//! resolves to the same set; dates and date-times written back parse to the
//! same value and survive the day / Unix-time conversions.

use mailcove::imap::proto::date::{Date, DateTime};
use mailcove::imap::proto::encode::write_sequence_set;
use mailcove::imap::proto::parse::{parse_date, parse_date_time, parse_sequence_set};
use mailcove::imap::proto::sequence::ResolvedSet;

fn check_resolved(set: &ResolvedSet, limit: u32) {
    let ranges = set.ranges();
    let mut count = 0u64;
    for (i, r) in ranges.iter().enumerate() {
        assert!(*r.start() >= 1 && r.start() <= r.end() && *r.end() <= limit);
        if let Some(next) = ranges.get(i + 1) {
            // Disjoint and not adjacent (adjacent ranges must be merged).
            assert!(u64::from(*r.end()) + 1 < u64::from(*next.start()));
        }
        count += u64::from(*r.end() - *r.start()) + 1;
        assert!(set.contains(*r.start()) && set.contains(*r.end()));
        if *r.start() > 1 {
            assert!(!set.contains(*r.start() - 1));
        }
        if let Some(after) = r.end().checked_add(1) {
            assert!(!set.contains(after));
        }
    }
    assert_eq!(set.count(), count);
    assert_eq!(set.is_empty(), ranges.is_empty());
    assert_eq!(set.min(), ranges.first().map(|r| *r.start()));
    assert_eq!(set.max(), ranges.last().map(|r| *r.end()));
    assert!(!set.contains(0));
}

fn sequence_set(data: &[u8]) {
    let Ok(set) = parse_sequence_set(data) else {
        return;
    };
    let explicit = set.max_explicit().unwrap_or(0);
    let mut saved: Option<ResolvedSet> = None;
    for star in [0u32, 1, 7, 1000, u32::MAX] {
        let resolved = set.resolve(star, saved.as_ref());
        let saved_max = saved.as_ref().and_then(ResolvedSet::max).unwrap_or(0);
        check_resolved(&resolved, star.max(explicit).max(saved_max));
        if !set.uses_star() && !set.uses_saved() {
            assert_eq!(resolved, set.resolve(star.wrapping_add(1), None));
        }
        let clamped = resolved.clamped(star);
        check_resolved(&clamped, star);
        if !resolved.is_empty() {
            let mut text = Vec::new();
            write_sequence_set(&mut text, &resolved);
            match parse_sequence_set(&text) {
                Ok(again) => assert_eq!(again.resolve(0, None), resolved),
                Err(e) => panic!(
                    "written set {:?} does not parse: {e:?}",
                    String::from_utf8_lossy(&text)
                ),
            }
        }
        saved = Some(resolved);
    }
}

fn date(data: &[u8]) {
    let Ok(d) = parse_date(data) else { return };
    let text = d.to_string();
    assert_eq!(parse_date(text.as_bytes()), Ok(d));
    let quoted = format!("\"{text}\"");
    assert_eq!(parse_date(quoted.as_bytes()), Ok(d));
    assert_eq!(Date::from_days_since_epoch(d.days_since_epoch()), Some(d));
    assert_eq!(Date::new(d.year(), d.month(), d.day()), Some(d));
}

fn date_time(data: &[u8]) {
    let Ok(dt) = parse_date_time(data) else {
        return;
    };
    let text = dt.to_string();
    assert_eq!(parse_date_time(text.as_bytes()), Ok(dt));
    let back = DateTime::from_unix_timestamp(dt.unix_timestamp(), dt.zone_minutes());
    // A leap second (:60) is the next minute's :00 once converted.
    if !text.contains(":60 ") {
        // Years near 0 and 9999 may leave the representable range in another zone.
        if let Some(back) = back {
            assert_eq!(back, dt);
        }
        if dt.date().year() > 0 && dt.date().year() < 9999 {
            assert_eq!(back, Some(dt));
        }
    }
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    sequence_set(data);
    date(data);
    date_time(data);
}
