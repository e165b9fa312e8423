//! Row 18: throughput of a COMPRESS=DEFLATE session (RFC 4978, issues 16 and 23).
//!
//! A client that downloads a folder for offline use (mbsync, Thunderbird's offline sync, K-9 on a
//! slow link) fetches every message whole; over COMPRESS the server deflates all of it. The row
//! times `FETCH 1:* BODY.PEEK[]` of the mid-size mailbox on one session after `COMPRESS DEFLATE`,
//! and the same on a plain session beside it, so the table shows both what compression costs each
//! server and how the two compare. Both servers deflate at zlib's level 6 (mailcove's
//! `DEFLATE_LEVEL`, Dovecot's `imap_zlib_compress_level` default); the bench's client inflates.
//!
//! Each case runs once unreported (the message files and each server's caches are then warm, as
//! on every warm row), then `reps` times on a new session each; the median is reported, timing
//! the FETCH alone. Cross-check: the octets inside the literals, which both servers must agree on.

use std::time::Instant;

use crate::client::{Imap, Result};
use crate::rows::{Measured, Plan, median};
use crate::servers::Running;

/// (key prefix, COMPRESS on, label) of the two cases.
const CASES: &[(&str, bool, &str)] = &[
    (
        "compress_fetch_all",
        true,
        "FETCH 1:* BODY.PEEK[] over COMPRESS=DEFLATE",
    ),
    (
        "plain_fetch_all",
        false,
        "FETCH 1:* BODY.PEEK[] on a plain session (beside it)",
    ),
];

/// One session: login, COMPRESS if asked, SELECT, then the timed FETCH; (ms, literal octets).
async fn fetch_all(port: u16, pw: &str, mailbox: &str, compress: bool) -> Result<(f64, u64)> {
    let mut c = Imap::connect(port).await?;
    c.login("big", pw).await?;
    if compress {
        c.compress().await?;
    }
    c.ok(&format!("EXAMINE {mailbox}"), false).await?;
    let t = Instant::now();
    let a = c.ok("FETCH 1:* BODY.PEEK[]", false).await?;
    let took = t.elapsed().as_secs_f64() * 1000.0;
    let _ = c.cmd("LOGOUT", false).await;
    Ok((took, a.literal_bytes))
}

/// Row 18 on one server.
pub async fn compress_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw, n) = (s.ports.imap, plan.password, plan.mid);
    let mailbox = format!("m{n}");
    for (key, compress, _) in CASES {
        let (_, octets) = fetch_all(port, pw, &mailbox, *compress).await?;
        m.check(&format!("{key}_{n}_literal_octets"), octets);
        let mut v = Vec::new();
        for _ in 0..plan.reps {
            v.push(fetch_all(port, pw, &mailbox, *compress).await?.0);
        }
        m.set(&format!("{key}_{n}_warm"), median(v));
    }
    Ok(())
}

/// The table's rows for these cases.
pub fn table_rows(mid: usize) -> Vec<(String, String, &'static str, bool)> {
    CASES
        .iter()
        .map(|(key, _, label)| {
            (
                format!("{key}_{mid}_warm"),
                format!("18 {label}, {mid} msgs, warm"),
                "ms",
                false,
            )
        })
        .collect()
}
