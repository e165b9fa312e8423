//! WITHIN (RFC 5032): SEARCH OLDER n / YOUNGER n against the real binary. Three messages with
//! INTERNALDATEs set by APPEND relative to the test's clock: one from 2000, one 50 minutes ago
//! (written in a -0700 zone), one now (no date given). Intervals are chosen far from each
//! message's age, so the seconds the test itself takes cannot change an answer; the exact
//! second boundary is a unit test of the evaluator.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

const MSG: &str = "From: a@example.org\r\nSubject: w\r\n\r\nbody\r\n";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// An RFC 3501 `date-time` for `secs` since the epoch, written in the zone `offset_min`
/// minutes east of UTC.
fn date_time(secs: i64, offset_min: i64) -> String {
    let local = secs + offset_min * 60;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = names[usize::try_from(month - 1).unwrap_or(0)];
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.abs();
    format!(
        "{day:02}-{name}-{year} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        off / 60,
        off % 60
    )
}

#[test]
fn date_time_formatting() {
    assert_eq!(date_time(0, 0), "01-Jan-1970 00:00:00 +0000");
    // 1994-02-08 05:52:25 UTC is 7-Feb-1994 21:52:25 -0800 (RFC 3501's example date).
    assert_eq!(date_time(760_686_745, -480), "07-Feb-1994 21:52:25 -0800");
    assert_eq!(date_time(951_782_400, 0), "29-Feb-2000 00:00:00 +0000");
}

fn append(c: &mut Client, date: Option<&str>) {
    let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
    c.send_raw(format!("ap APPEND INBOX{date} {{{}+}}\r\n{MSG}\r\n", MSG.len()).as_bytes());
    assert_tagged_ok(&c.until("ap "));
}

#[test]
fn older_and_younger_compare_internaldate_with_now() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(
        caps.iter()
            .any(|l| l.starts_with("* CAPABILITY ") && l.split(' ').any(|w| w == "WITHIN")),
        "{caps:?}"
    );
    append(&mut c, Some("01-Jan-2000 00:00:00 +0000"));
    append(&mut c, Some(&date_time(now_secs() - 3000, -420)));
    append(&mut c, None);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "C: a SEARCH YOUNGER 600\n\
         S: * SEARCH 3\n\
         S: a OK Search completed.\n\
         C: b SEARCH YOUNGER 3600\n\
         S: * SEARCH 2 3\n\
         S: b OK Search completed.\n\
         C: c SEARCH OLDER 600\n\
         S: * SEARCH 1 2\n\
         S: c OK Search completed.\n\
         C: d SEARCH OLDER 3600\n\
         S: * SEARCH 1\n\
         S: d OK Search completed.\n\
         # 2^32-1 seconds is 136 years: nothing is that old, everything that young.\n\
         C: e SEARCH OLDER 4294967295\n\
         S: * SEARCH\n\
         S: e OK Search completed.\n\
         C: f SEARCH YOUNGER 4294967295\n\
         S: * SEARCH 1 2 3\n\
         S: f OK Search completed.\n\
         C: g SEARCH NOT YOUNGER 600 OLDER 60\n\
         S: * SEARCH 1 2\n\
         S: g OK Search completed.\n\
         C: h UID SEARCH OR OLDER 86400 YOUNGER 60\n\
         S: * SEARCH 1 3\n\
         S: h OK Search completed.\n\
         C: i SEARCH RETURN (COUNT MIN) YOUNGER 3600\n\
         S: * ESEARCH (TAG \"i\") MIN 2 COUNT 2\n\
         S: i OK Search completed.\n\
         C: j SEARCH SINCE 1-Jan-2001 OLDER 600\n\
         S: * SEARCH 2\n\
         S: j OK Search completed.\n",
    );
    // RFC 5032's grammar: a non-zero number is required.
    for (tag, bad) in [
        ("z1", "SEARCH YOUNGER 0"),
        ("z2", "SEARCH OLDER"),
        ("z3", "SEARCH OLDER -1"),
        ("z4", "SEARCH YOUNGER 4294967296"),
        ("z5", "SEARCH OLDER 1h"),
    ] {
        let r = c.cmd(tag, bad);
        assert!(
            r.last()
                .is_some_and(|l| l.starts_with(&format!("{tag} BAD "))),
            "{bad}: {r:?}"
        );
    }
    // Still usable after the BADs.
    run_transcript(
        &mut c,
        "C: k SEARCH YOUNGER 1 UNDELETED SMALLER 1\n\
         S: * SEARCH\n\
         S: k OK Search completed.\n",
    );
}
