//! Row 19 (issue 23, `--rows idlecurve`): the idle-connection scaling curve. At each point N
//! (1,000, 10,000 and 50,000 in the full run; 200, 1,000 and 2,000 in `--quick`) the server's memory
//! (PSS of its process tree, as row 8) with N logged-in connections that selected INBOX and
//! entered IDLE: the total, and the growth over the server's baseline (measured before the
//! first point, on a freshly started server) divided by N. Then one LMTP delivery per idle user and the p50 of the latency until each
//! connection is told `* n EXISTS`. All N connections are closed before the next point.
//!
//! One client address reaches one server port from about 28,000 ephemeral ports, so the
//! connections come from several loopback source addresses (127.10.0.1, 127.10.0.2, ...), at
//! most [`PER_SOURCE`] each; every point takes addresses no earlier point used, so no port of
//! theirs is still in TIME_WAIT.
//!
//! Each point needs N sockets in the bench and, for mailcove, N in the server's one process:
//! `bench/run` raises RLIMIT_NOFILE, but where the hard limit is lower (a container without
//! CAP_SYS_RESOURCE), a point that does not fit in it is recorded as not measured, with the
//! limit as the reason, rather than failing the run at the server's `accept`.
//!
//! So that such a machine still shows how the curve goes on past 10,000, [`with_largest_fitting`]
//! adds the largest point that fits in the bench's limit (19,000 under a hard limit of 20,000)
//! when a planned point does not.
//!
//! Dovecot runs one `imap` process per connection (about 560 KiB each): 50,000 would need some
//! 27 GB, more than the bench machine has, and opening them takes about 9 ms each (10,000 in
//! 88 s). Its points above [`DOVECOT_MAX`] are recorded as not measured, with that reason,
//! instead of swapping the machine or breaking the full run's 15 minutes.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Imap, Lmtp, Result, percentile, small_message};
use crate::rows::{Measured, Plan, exists_waiters, settle};
use crate::servers::{Kind, Running};

/// Connections per loopback source address, well below the ~28,000 ephemeral ports of one.
pub const PER_SOURCE: usize = 20_000;
/// Connections being opened (connect, LOGIN, SELECT, IDLE) at once.
const OPEN_AT_ONCE: usize = 128;
/// Dovecot's largest point: one process per connection, ~560 KiB each (see the module doc).
pub const DOVECOT_MAX: usize = 10_000;
/// How long the row waits for the EXISTS of every connection after the deliveries.
const PUSH_DEADLINE: Duration = Duration::from_secs(60);
/// Open files each process needs besides the N connections (listeners, LMTP, logs, mail files).
const FD_MARGIN: u64 = 1_000;
/// First source address of the row (127.10.0.1); the next ones count up from it.
const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 10, 0, 1);

/// Source addresses handed out so far in this run (see the module doc).
static SOURCES_USED: AtomicU32 = AtomicU32::new(0);

/// Fresh loopback source addresses for `n` connections.
fn sources(n: usize) -> Vec<Ipv4Addr> {
    let k = n.div_ceil(PER_SOURCE) as u32;
    let first = SOURCES_USED.fetch_add(k, Ordering::Relaxed);
    (first..first + k)
        .map(|i| Ipv4Addr::from(u32::from(FIRST_SOURCE) + i))
        .collect()
}

/// The soft RLIMIT_NOFILE of process `pid` (this one when `None`), from `/proc/PID/limits`;
/// `None` when unlimited or unreadable.
fn open_files_limit(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/limits"),
        None => "/proc/self/limits".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Why `n` connections do not fit in the open-file limits of the bench or the server (both
/// hold one socket per connection; Dovecot's are spread over its processes, but the bench's
/// are not), or `None` when they fit.
fn too_many_files(s: &Running, n: usize) -> Option<String> {
    let need = n as u64 + FD_MARGIN;
    [("bench", None), ("server", Some(s.pid))]
        .into_iter()
        .filter(|(who, _)| *who == "bench" || s.kind() != Kind::Dovecot)
        .find_map(|(who, pid)| {
            open_files_limit(pid)
                .filter(|&limit| limit < need)
                .map(|limit| format!("not measured ({who} RLIMIT_NOFILE {limit} < {need})"))
        })
}

/// Dovecot's PSS per IDLE connection, for the reason a point above [`DOVECOT_MAX`] gives.
const DOVECOT_KIB_PER_CONN: usize = 560;
/// Dovecot's time to open one IDLE connection (88 s for 10,000), for the same reason.
const DOVECOT_OPEN_MS_PER_CONN: usize = 9;

/// `planned`, plus the largest point (in thousands) that fits in this process's open-file limit
/// when the largest planned point does not fit and the new one is larger than every point that
/// does (see the module doc).
pub fn with_largest_fitting(mut planned: Vec<usize>) -> Vec<usize> {
    let Some(limit) = open_files_limit(None) else {
        return planned;
    };
    let fits = |n: usize| n as u64 + FD_MARGIN <= limit;
    let largest = (limit.saturating_sub(FD_MARGIN) / 1_000 * 1_000) as usize;
    let beyond = planned.iter().any(|&n| !fits(n));
    let above_fitting = planned.iter().filter(|&&n| fits(n)).all(|&n| n < largest);
    if beyond && above_fitting && largest > 0 {
        planned.push(largest);
        planned.sort_unstable();
    }
    planned
}

/// Why Dovecot's point `n` (above [`DOVECOT_MAX`]) is not measured.
fn dovecot_too_big(n: usize) -> String {
    format!(
        "not measured (one process per connection: ~{} GB, ~{} s to open)",
        (n * DOVECOT_KIB_PER_CONN).div_ceil(1024 * 1024),
        n * DOVECOT_OPEN_MS_PER_CONN / 1000
    )
}

/// The points `kind` measures.
fn measured_points(kind: Kind, plan: &Plan) -> impl Iterator<Item = usize> + '_ {
    plan.idle_curve
        .iter()
        .copied()
        .filter(move |&n| kind != Kind::Dovecot || n <= DOVECOT_MAX)
}

/// The connections `kind`'s configuration must allow for this row.
pub fn max_conns(kind: Kind, plan: &Plan) -> usize {
    measured_points(kind, plan).max().unwrap_or(0)
}

/// The row's measures: JSON key stem, table label, unit.
const MEASURES: [(&str, &str, &str); 3] = [
    ("kib_per_conn", "memory per IDLE connection", "KiB"),
    ("total_mib", "total server memory", "MiB"),
    ("push_p50_ms", "LMTP -> EXISTS latency p50", "ms"),
];

fn key(measure: &str, n: usize) -> String {
    format!("idlecurve_{measure}_{n}")
}

/// Row 19's table rows: per measure, one row per point.
pub fn table_rows(plan: &Plan) -> Vec<(String, String, &'static str, bool)> {
    let mut rows = Vec::new();
    for (measure, label, unit) in MEASURES {
        for &n in &plan.idle_curve {
            rows.push((
                key(measure, n),
                format!("19 idle curve: {label}, {n} conns"),
                unit,
                false,
            ));
        }
    }
    rows
}

/// Opens `n` connections (logged in as `idle0..`, INBOX selected, in IDLE), at most
/// [`OPEN_AT_ONCE`] at a time.
async fn open_idle(s: &Running, plan: &Plan, n: usize) -> Result<Vec<Imap>> {
    let from = sources(n);
    let sem = Arc::new(tokio::sync::Semaphore::new(OPEN_AT_ONCE));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let sem = Arc::clone(&sem);
        let (addr, port) = (from[i / PER_SOURCE], s.ports.imap);
        let user = format!("idle{}", i % plan.idle_users);
        let pw = plan.password;
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let mut c = Imap::connect_from(addr, port).await?;
            c.login(&user, pw).await?;
            c.ok("SELECT INBOX", false).await?;
            c.idle().await?;
            Result::Ok(c)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

pub async fn idlecurve_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let mut baseline = None;
    for &n in &plan.idle_curve {
        if s.kind() == Kind::Dovecot && n > DOVECOT_MAX {
            for (measure, ..) in MEASURES {
                m.not_measured(&key(measure, n), &dovecot_too_big(n));
            }
            continue;
        }
        if let Some(why) = too_many_files(s, n) {
            for (measure, ..) in MEASURES {
                m.not_measured(&key(measure, n), &why);
            }
            continue;
        }
        settle(plan).await;
        // The growth is measured from the fresh server's memory before the first point, not
        // from just before this one: a process keeps the heap the previous point's connections
        // freed, and new ones reuse it (with this point's own baseline, 10,000 then 19,000
        // connections read 14.5 then 7.6 KiB each, with the first baseline 17 and 16.6).
        let now = s.memory().0;
        let before = *baseline.get_or_insert(now);
        m.info(&format!("idlecurve_before_mib_{n}"), now / 1024);
        let t = Instant::now();
        let conns = open_idle(s, plan, n).await?;
        let opened = t.elapsed();
        settle(plan).await;
        let (pss, rss, procs) = s.memory();
        m.set(&key("total_mib", n), pss as f64 / 1024.0);
        m.set(
            &key("kib_per_conn", n),
            pss.saturating_sub(before) as f64 / n as f64,
        );
        m.info(&format!("idlecurve_baseline_mib_{n}"), before / 1024);
        m.info(&format!("idlecurve_rss_mib_{n}"), rss / 1024);
        m.info(&format!("idlecurve_processes_{n}"), procs);
        m.info(
            &format!("idlecurve_open_secs_{n}"),
            format!("{:.1}", opened.as_secs_f64()),
        );
        // Every connection waits for its EXISTS, then stays open until the point ends.
        let (waiters, mut rx) = exists_waiters(conns, false);
        // One delivery per user, back to back, on one LMTP connection.
        let mut l = Lmtp::connect(s.ports.lmtp).await?;
        let mut sent = Vec::with_capacity(plan.idle_users);
        for u in 0..plan.idle_users {
            sent.push(
                l.deliver(
                    &[format!("idle{u}@bench.example")],
                    &small_message(2048, u as u64),
                )
                .await?,
            );
        }
        let mut lat = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + PUSH_DEADLINE;
        while lat.len() < n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((i, at))) => lat.push(
                    at.saturating_duration_since(sent[i % plan.idle_users])
                        .as_secs_f64()
                        * 1000.0,
                ),
                _ => break,
            }
        }
        m.check(
            &format!("idlecurve_notified_{n}"),
            format!("{}/{n}", lat.len()),
        );
        if lat.is_empty() {
            m.not_measured(&key("push_p50_ms", n), "n/a (no EXISTS within 60 s)");
        } else {
            // A connection never told within the deadline counts as the deadline.
            let missing = n - lat.len();
            lat.extend(std::iter::repeat_n(
                PUSH_DEADLINE.as_secs_f64() * 1000.0,
                missing,
            ));
            lat.sort_by(f64::total_cmp);
            m.set(&key("push_p50_ms", n), percentile(&lat, 50.0));
        }
        // Close all N before the next point's baseline (a finished waiter holds its connection
        // in its output, dropped here).
        for w in &waiters {
            w.abort();
        }
        for w in waiters {
            drop(w.await);
        }
    }
    Ok(())
}
