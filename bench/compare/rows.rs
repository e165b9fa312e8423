//! The measurements, each the same operation sent the same way to either server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::client::{Imap, Lmtp, Pop3, Result, parse_exists, percentile, small_message};
use crate::corpus::{FROM_MARKER, Rng, SUBJECT_MARKER, TEXT_MARKER};
use crate::servers::{Kind, Running};

/// The sizes of one run (full or quick).
#[derive(Clone, Debug)]
pub struct Plan {
    pub big: usize,
    pub mid: usize,
    pub pop3: usize,
    /// Repetitions of warm measurements (the median is reported).
    pub reps: usize,
    /// Seconds per throughput case (LMTP, logins).
    pub secs: u64,
    /// Connections of the idle-memory rows.
    pub idle_conns: usize,
    /// IDLE connections of row 8, spread over `idle_users` users.
    pub idle_push: usize,
    pub idle_users: usize,
    pub mixed_clients: usize,
    pub mixed_users: usize,
    pub mixed_secs: u64,
    /// Clients and users of the persistent mixed load (`persistent_row`); it runs as long as
    /// row 9 (`mixed_secs`).
    pub persistent_clients: usize,
    pub persistent_users: usize,
    /// LMTP deliveries of the push-latency rows (`push_row`).
    pub push_deliveries: usize,
    pub password: &'static str,
    /// Row 17's points (issue 23): the mailboxes of the scaling curves, smallest first.
    pub scale: Vec<ScalePoint>,
    /// Row 19's points (issue 23): numbers of IDLE connections, smallest first.
    pub idle_curve: Vec<usize>,
    /// How long [`settle`] waits before memory is read.
    pub settle: Duration,
}

/// One point of the scaling curves (row 17): a mailbox of `messages` messages.
#[derive(Clone, Debug)]
pub struct ScalePoint {
    pub messages: usize,
    pub user: &'static str,
    /// The mailbox the rows select.
    pub folder: String,
    /// The corpus folder of `user` that `folder` is a fresh hard-linked copy of, made before
    /// the server starts so that "cold" is the server's first sight of it whatever ran before;
    /// `None` when `folder` is the corpus's own (the INBOX of `--huge`, which nothing else reads).
    pub copy_of: Option<String>,
}

/// Row 17's commands besides SELECT, each timed first and warm at every point: a client's
/// message-list sync, and two searches (flags only; a header every message has).
pub fn scale_commands() -> [(&'static str, String); 3] {
    [
        (
            "fetch",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)".to_string(),
        ),
        ("search_unseen", "SEARCH UNSEEN".to_string()),
        (
            "search_subject",
            format!("SEARCH SUBJECT \"{SUBJECT_MARKER}\""),
        ),
    ]
}

/// Everything measured on one server: row key -> value, plus notes (hit counts) to cross-check.
#[derive(Default, Debug)]
pub struct Measured {
    pub values: BTreeMap<String, f64>,
    pub checks: BTreeMap<String, String>,
    /// Facts that legitimately differ between the servers (process counts, RSS).
    pub info: BTreeMap<String, String>,
    /// Rows a server could not measure, with the reason shown in the table ("n/a (BAD)").
    pub not_measured: BTreeMap<String, String>,
    /// Orders a server answered (SORT results, THREAD structure), compared between the servers
    /// after the run: a difference is a warning, not a failure (see `compare_orders`).
    pub orders: BTreeMap<String, Order>,
}

/// An answer whose order matters, kept to compare the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Message numbers or UIDs in the order the server gave them.
    Numbers(Vec<u64>),
    /// The text of a THREAD answer after `* THREAD `.
    Text(Vec<u8>),
}

impl Measured {
    pub(crate) fn set(&mut self, key: &str, v: f64) {
        eprintln!("    {key:<34} {v:>12.2}");
        self.values.insert(key.to_string(), v);
    }
    pub(crate) fn check(&mut self, key: &str, v: impl ToString) {
        self.checks.insert(key.to_string(), v.to_string());
    }
    pub(crate) fn info(&mut self, key: &str, v: impl ToString) {
        self.info.insert(key.to_string(), v.to_string());
    }
    pub(crate) fn not_measured(&mut self, key: &str, why: &str) {
        eprintln!("    {key:<34} {why:>12}");
        self.not_measured.insert(key.to_string(), why.to_string());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

async fn logged_in(port: u16, user: &str, pw: &str) -> Result<Imap> {
    let mut c = Imap::connect(port).await?;
    c.login(user, pw).await?;
    Ok(c)
}

/// Times `command` on a fresh session that has `mailbox` selected (or nothing, for SELECT).
async fn timed(
    port: u16,
    pw: &str,
    mailbox: Option<&str>,
    command: &str,
) -> Result<(f64, crate::client::Answer)> {
    timed_as(port, "big", pw, mailbox, command).await
}

/// [`timed`] as `user`.
async fn timed_as(
    port: u16,
    user: &str,
    pw: &str,
    mailbox: Option<&str>,
    command: &str,
) -> Result<(f64, crate::client::Answer)> {
    let mut c = logged_in(port, user, pw).await?;
    if let Some(m) = mailbox {
        c.ok(&format!("SELECT {m}"), false).await?;
    }
    let t = Instant::now();
    let a = c.ok(command, command.contains("SEARCH")).await?;
    let took = ms(t.elapsed());
    let _ = c.cmd("LOGOUT", false).await;
    Ok((took, a))
}

/// Row 1: SELECT of the two big mailboxes, first cold, then warm.
pub async fn select_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let port = s.ports.imap;
    let pw = plan.password;
    let (mid, big) = (format!("m{}", plan.mid), format!("m{}", plan.big));
    // Row 1, cold: the first SELECT after the Maildir was written.
    for (name, n) in [(&mid, plan.mid), (&big, plan.big)] {
        let (t, a) = timed(port, pw, None, &format!("SELECT {name}")).await?;
        m.set(&format!("select_{n}_cold"), t);
        m.check(
            &format!("select_{n}_exists"),
            a.exists().map_or("?".into(), |e| e.to_string()),
        );
    }
    for (name, n) in [(&mid, plan.mid), (&big, plan.big)] {
        let mut v = Vec::new();
        for _ in 0..plan.reps {
            v.push(timed(port, pw, None, &format!("SELECT {name}")).await?.0);
        }
        m.set(&format!("select_{n}_warm"), median(v));
    }
    Ok(())
}

/// Row 2: FETCH of every message's metadata, envelope and structure; first, then warm.
pub async fn fetch_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw, n) = (s.ports.imap, plan.password, plan.big);
    let big = format!("m{n}");
    for (key, command) in [
        (
            "fetch_fast",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        ),
        ("fetch_envelope", "FETCH 1:* ENVELOPE"),
        ("fetch_bodystructure", "FETCH 1:* BODYSTRUCTURE"),
        // RFC 8970: the text a client shows under each subject in its message list.
        ("fetch_preview", "FETCH 1:* PREVIEW"),
    ] {
        let (first, a) = timed(port, pw, Some(&big), command).await?;
        m.set(&format!("{key}_{n}_first"), first);
        m.check(&format!("{key}_{n}_answers"), a.untagged_count);
        let mut v = Vec::new();
        for _ in 0..plan.reps {
            v.push(timed(port, pw, Some(&big), command).await?.0);
        }
        m.set(&format!("{key}_{n}_warm"), median(v));
    }
    Ok(())
}

/// Row 4: searches over the big mailbox, first and warm.
pub async fn search_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw, n) = (s.ports.imap, plan.password, plan.big);
    let big = format!("m{n}");
    // Row 4: searches, first and warm.
    for (key, command) in [
        ("search_unseen", "SEARCH UNSEEN".to_string()),
        ("search_from", format!("SEARCH FROM \"{FROM_MARKER}\"")),
        ("search_text", format!("SEARCH TEXT \"{TEXT_MARKER}\"")),
        // RFC 8514: every message was saved after 2000, so all match.
        (
            "search_savedsince",
            "SEARCH SAVEDSINCE 1-Jan-2000".to_string(),
        ),
    ] {
        let (first, a) = timed(port, pw, Some(&big), &command).await?;
        m.set(&format!("{key}_{n}_first"), first);
        m.check(&format!("{key}_{n}_hits"), a.search_hits());
        let mut v = Vec::new();
        let reps = if key == "search_text" {
            plan.reps.min(2)
        } else {
            plan.reps
        };
        for _ in 0..reps {
            v.push(timed(port, pw, Some(&big), &command).await?.0);
        }
        m.set(&format!("{key}_{n}_warm"), median(v));
    }
    Ok(())
}

/// Row 17 (issue 23): the scaling curves. At each point, smallest mailbox first: SELECT cold
/// (the server's first sight of the mailbox) and warm, then each of [`scale_commands`] first and
/// warm, every one timed on a new session as rows 1, 2 and 4; then the server's memory (PSS of
/// its process tree) while one session holds the mailbox selected, and after it logged out.
/// The memory figures are cumulative: the smaller mailboxes were opened before.
pub async fn scaling_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw) = (s.ports.imap, plan.password);
    // A first session of each user, so that the first point's cold SELECT does not also pay
    // for the server's first sight of the user rather than of the mailbox: LOGIN, LIST (the
    // mailbox list and its index) and a SELECT of the user's INBOX unless that is a point.
    let mut users: Vec<&str> = plan.scale.iter().map(|pt| pt.user).collect();
    users.dedup();
    for user in users {
        let mut c = logged_in(port, user, pw).await?;
        c.ok("LIST \"\" \"*\"", false).await?;
        if !plan
            .scale
            .iter()
            .any(|pt| pt.user == user && pt.folder == "INBOX")
        {
            c.ok("SELECT INBOX", false).await?;
        }
        c.ok("LOGOUT", false).await?;
    }
    for pt in &plan.scale {
        let (n, user) = (pt.messages, pt.user);
        let select = format!("SELECT {}", pt.folder);
        let (cold, a) = timed_as(port, user, pw, None, &select).await?;
        m.set(&format!("scale_select_cold_{n}"), cold);
        m.check(
            &format!("scale_exists_{n}"),
            a.exists().map_or("?".into(), |e| e.to_string()),
        );
        let mut v = Vec::new();
        for _ in 0..plan.reps {
            v.push(timed_as(port, user, pw, None, &select).await?.0);
        }
        m.set(&format!("scale_select_warm_{n}"), median(v));
        for (key, command) in scale_commands() {
            let (first, a) = timed_as(port, user, pw, Some(&pt.folder), &command).await?;
            m.set(&format!("scale_{key}_first_{n}"), first);
            if key == "fetch" {
                m.check(&format!("scale_fetch_{n}_answers"), a.untagged_count);
            } else {
                m.check(&format!("scale_{key}_{n}_hits"), a.search_hits());
            }
            let mut v = Vec::new();
            for _ in 0..plan.reps {
                v.push(
                    timed_as(port, user, pw, Some(&pt.folder), &command)
                        .await?
                        .0,
                );
            }
            m.set(&format!("scale_{key}_warm_{n}"), median(v));
        }
        let mut c = logged_in(port, user, pw).await?;
        c.ok(&select, false).await?;
        settle(plan).await;
        let (pss, rss, procs) = s.memory();
        m.set(&format!("scale_mem_held_{n}"), pss as f64 / 1024.0);
        m.info(&format!("scale_rss_held_mib_{n}"), rss / 1024);
        m.info(&format!("scale_processes_held_{n}"), procs);
        c.ok("LOGOUT", false).await?;
        drop(c);
        settle(plan).await;
        let (pss, rss, _) = s.memory();
        m.set(&format!("scale_mem_after_{n}"), pss as f64 / 1024.0);
        m.info(&format!("scale_rss_after_mib_{n}"), rss / 1024);
    }
    Ok(())
}

/// Row 17's table rows: per measure, one row per point.
pub fn scale_table_rows(plan: &Plan) -> Vec<(String, String, &'static str, bool)> {
    let mut rows = Vec::new();
    let mut measures: Vec<(String, String, &'static str)> = vec![
        ("select_cold".into(), "SELECT, cold".into(), "ms"),
        ("select_warm".into(), "SELECT, warm".into(), "ms"),
    ];
    for (key, command) in scale_commands() {
        let short = command.replace(
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
            "UID FETCH 1:* (FLAGS SIZE DATE)",
        );
        measures.push((format!("{key}_first"), format!("{short}, first"), "ms"));
        measures.push((format!("{key}_warm"), format!("{short}, warm"), "ms"));
    }
    measures.push((
        "mem_held".into(),
        "memory, one session selected".into(),
        "MiB",
    ));
    measures.push((
        "mem_after".into(),
        "memory after it logged out".into(),
        "MiB",
    ));
    for (key, label, unit) in measures {
        for pt in &plan.scale {
            rows.push((
                format!("scale_{key}_{}", pt.messages),
                format!("17 {:>7} msgs: {label}", pt.messages),
                unit,
                false,
            ));
        }
    }
    rows
}

/// Row 3's repetitions, and its reference's, per `plan.reps`.
pub const REF_REPS_PER_REP: usize = 5;

/// Row 3: the 10 MB message (the last one of "huge"), whole and its middle part.
pub async fn huge_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw) = (s.ports.imap, plan.password);
    let mut c = logged_in(port, "big", pw).await?;
    let a = c.ok("SELECT huge", false).await?;
    let last = a.exists().ok_or("no EXISTS for huge")?;
    for (key, item) in [
        ("fetch_10mb_body", "BODY.PEEK[]"),
        ("fetch_10mb_part2", "BODY.PEEK[2]"),
        // RFC 3516: the same part decoded from base64 by the server (4,000,000 octets).
        ("fetch_10mb_binary2", "BINARY.PEEK[2]"),
    ] {
        let mut v = Vec::new();
        let mut bytes = 0;
        // As many as the sendfile reference's (`reference::huge_reference`): a few milliseconds
        // each, so three alone moved the ratio between 1.0x and 1.9x from one quiet full run to
        // the next.
        for _ in 0..REF_REPS_PER_REP * plan.reps + 1 {
            let t = Instant::now();
            let a = c.ok(&format!("FETCH {last} {item}"), false).await?;
            v.push(ms(t.elapsed()));
            bytes = a.literal_bytes;
        }
        v.remove(0);
        m.set(key, median(v));
        m.check(&format!("{key}_bytes"), bytes);
    }
    Ok(())
}

/// Row 14: MULTIAPPEND (RFC 3502) of 100 messages of 4 kB in one command, sent as
/// non-synchronizing literals so the figure is the server's work (parse, write, fsync, assign
/// UIDs) rather than round trips; into a fresh mailbox each time, deleted afterwards.
pub async fn append_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw) = (s.ports.imap, plan.password);
    let mut c = logged_in(port, "big", pw).await?;
    let msgs: Vec<Vec<u8>> = (0..100u64).map(|i| small_message(4 * 1024, i)).collect();
    let mut v = Vec::new();
    for rep in 0..plan.reps + 1 {
        let name = format!("multiappend-{}-{rep}", std::process::id());
        c.ok(&format!("CREATE {name}"), false).await?;
        let t = Instant::now();
        c.multiappend(&name, &msgs).await?;
        v.push(ms(t.elapsed()));
        let a = c.ok(&format!("STATUS {name} (MESSAGES)"), true).await?;
        let status = a
            .untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        m.check("multiappend_100_status", status.contains("(MESSAGES 100)"));
        c.ok(&format!("DELETE {name}"), false).await?;
    }
    v.remove(0);
    m.set("multiappend_100", median(v));
    Ok(())
}

/// Row 5: POP3 login, STAT and RETR of every message (one warm-up pass first).
pub async fn pop3_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let mut v = Vec::new();
    let mut octets = 0;
    for pass in 0..plan.reps.min(3) + 1 {
        let t = Instant::now();
        let mut p = Pop3::connect(s.ports.pop3).await?;
        p.cmd("USER pop").await?;
        p.cmd(&format!("PASS {}", plan.password)).await?;
        let stat = p.cmd("STAT").await?;
        let count: usize = stat
            .split(' ')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .ok_or("bad STAT")?;
        octets = 0;
        for i in 1..=count {
            p.cmd(&format!("RETR {i}")).await?;
            octets += p.multiline().await?;
        }
        p.cmd("QUIT").await?;
        if pass > 0 {
            v.push(ms(t.elapsed()));
        }
        m.check("pop3_messages", count);
    }
    m.set("pop3_retr_all", median(v));
    m.check("pop3_octets", octets);
    Ok(())
}

/// What a worker of [`per_second`] sees: whether to go on, and where to count a done unit.
#[derive(Clone)]
struct Tally {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Tally {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `workers` tasks (`worker(i, tally)`) for `plan.secs` seconds and returns how many units
/// they counted per second; then stops them and waits for each, passing on the first error.
async fn per_second<F, Fut>(plan: &Plan, workers: usize, worker: F) -> Result<f64>
where
    F: Fn(usize, Tally) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let tally = Tally {
        done: Arc::new(AtomicU64::new(0)),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let tasks: Vec<_> = (0..workers)
        .map(|i| tokio::spawn(worker(i, tally.clone())))
        .collect();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(plan.secs)).await;
    let count = tally.done.load(Ordering::Relaxed);
    let secs = t.elapsed().as_secs_f64();
    tally.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / secs)
}

/// LMTP deliveries per second on `conns` connections of `size`-byte messages, connection `i`
/// delivering to `{prefix}{i}@bench.example`.
async fn lmtp_per_second(
    s: &Running,
    plan: &Plan,
    conns: usize,
    size: usize,
    prefix: &'static str,
) -> Result<f64> {
    let port = s.ports.lmtp;
    per_second(plan, conns, |i, tally| async move {
        let mut l = Lmtp::connect(port).await?;
        let rcpt = vec![format!("{prefix}{i}@bench.example")];
        let mut n = 0u64;
        while tally.running() {
            n += 1;
            l.deliver(&rcpt, &small_message(size, n)).await?;
            tally.tick();
        }
        Result::Ok(())
    })
    .await
}

/// Row 6: LMTP deliveries per second on `conns` connections, `size`-byte messages.
pub async fn lmtp_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    for (size, label) in [(4 * 1024, "4k"), (100 * 1024, "100k")] {
        for conns in [1usize, 8] {
            let rate = lmtp_per_second(s, plan, conns, size, "lmtp").await?;
            m.set(&format!("lmtp_{label}_{conns}"), rate);
        }
    }
    Ok(())
}

/// Row 6 (Sieve): LMTP deliveries per second to users whose active script is the 40-rule
/// `bench/sieve-40-rules.sieve` (header, address, envelope, body and regex tests; the bench
/// message ends in `Bench` with `$Bench`), 4 KB messages, on 1 and 8 connections.
pub async fn sieve_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    for conns in [1usize, 8] {
        let rate = lmtp_per_second(s, plan, conns, 4 * 1024, "sieve").await?;
        m.set(&format!("sieve_4k_{conns}"), rate);
    }
    Ok(())
}

/// Row 7: LOGIN + LOGOUT per second, four clients at once, argon2id at mailcove's default cost;
/// then again with each server's login cache on (mailcove's verified-credential cache, Dovecot's
/// auth cache), which is off again afterwards so the rows after this one are unchanged.
pub async fn login_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let rate = logins_per_second(s, plan).await?;
    m.set("logins", rate);
    s.set_login_cache(true)?;
    let cached = logins_per_second(s, plan).await;
    s.set_login_cache(false)?;
    m.set("logins_cached", cached?);
    Ok(())
}

/// LOGIN + LOGOUT per second as `demo`, four clients at once.
async fn logins_per_second(s: &Running, plan: &Plan) -> Result<f64> {
    let port = s.ports.imap;
    per_second(plan, 4, |_, tally| async move {
        while tally.running() {
            let mut c = Imap::connect(port).await?;
            c.login("demo", "demo").await?;
            c.cmd("LOGOUT", false).await?;
            tally.tick();
        }
        Result::Ok(())
    })
    .await
}

/// Opens `n` sessions (logged in, INBOX selected) at most 64 at a time.
async fn open_many(
    s: &Running,
    plan: &Plan,
    n: usize,
    tls: Option<Arc<rustls::ClientConfig>>,
    compress: bool,
) -> Result<Vec<Imap>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let sem = Arc::clone(&sem);
        let tls = tls.clone();
        let (port, imaps) = (s.ports.imap, s.ports.imaps);
        let user = format!("idle{}", i % plan.idle_users);
        let pw = plan.password;
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let mut c = match tls {
                Some(cfg) => Imap::connect_tls(imaps, cfg).await?,
                None => Imap::connect(port).await?,
            };
            c.login(&user, pw).await?;
            if compress {
                // As clients do it: right after login, before anything else.
                c.compress().await?;
            }
            c.ok("SELECT INBOX", false).await?;
            Result::Ok(c)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// A task holding one IDLE connection until it is told of new mail ([`exists_waiters`]).
pub(crate) type Waiter = tokio::task::JoinHandle<Result<Imap>>;
/// Which connection (by index) was told, and when.
pub(crate) type Told = mpsc::UnboundedReceiver<(usize, Instant)>;

/// One task per connection in IDLE, waiting for its first `* n EXISTS`: it sends its index and
/// the moment on the channel (then `DONE` when `done`) and returns its connection, which stays
/// open until the caller drops or aborts the tasks. Rows 8 and 19.
pub(crate) fn exists_waiters(conns: Vec<Imap>, done: bool) -> (Vec<Waiter>, Told) {
    let (tx, rx) = mpsc::unbounded_channel();
    let waiters = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let l = c.c.line().await?;
                    if parse_exists(&l).is_some() {
                        let _ = tx.send((i, Instant::now()));
                        if done {
                            let _ = c.c.send(b"DONE\r\n").await;
                        }
                        return Result::Ok(c);
                    }
                }
            })
        })
        .collect();
    (waiters, rx)
}

pub(crate) async fn settle(plan: &Plan) {
    // Let login processes exit and allocators return memory before reading /proc.
    tokio::time::sleep(plan.settle).await;
}

/// Row 8: memory per idle connection (plain and TLS), then `idle_push` connections in IDLE:
/// total memory and the latency from an LMTP delivery to `* n EXISTS` on each connection.
pub async fn idle_rows(
    s: &Running,
    plan: &Plan,
    tls: Arc<rustls::ClientConfig>,
    m: &mut Measured,
) -> Result<()> {
    for (key, cfg, compress) in [
        ("idle_plain", None, false),
        ("idle_tls", Some(tls), false),
        // COMPRESS=DEFLATE (RFC 4978) on plain connections: the deflate state is the cost.
        ("idle_deflate", None, true),
    ] {
        settle(plan).await;
        let (before, _, _) = s.memory();
        let conns = open_many(s, plan, plan.idle_conns, cfg, compress).await?;
        settle(plan).await;
        let (after, rss, procs) = s.memory();
        m.set(
            &format!("{key}_kib"),
            after.saturating_sub(before) as f64 / plan.idle_conns as f64,
        );
        m.info(&format!("{key}_processes"), procs);
        m.info(&format!("{key}_rss_kib"), rss);
        drop(conns);
    }
    settle(plan).await;
    let (before, _, _) = s.memory();
    let t = Instant::now();
    let mut conns = open_many(s, plan, plan.idle_push, None, false).await?;
    let opened = t.elapsed();
    for c in &mut conns {
        c.idle().await?;
    }
    let (waiters, mut rx) = exists_waiters(conns, true);
    settle(plan).await;
    let (pss, rss, procs) = s.memory();
    m.set("idle_push_total_mib", pss as f64 / 1024.0);
    m.set(
        "idle_push_kib_per_conn",
        pss.saturating_sub(before) as f64 / plan.idle_push as f64,
    );
    m.info("idle_push_total_rss_mib", rss / 1024);
    m.info("idle_push_processes", procs);
    m.info(
        "idle_push_open_secs",
        format!("{:.1}", opened.as_secs_f64()),
    );
    // One delivery per user, back to back, on one LMTP connection.
    let mut l = Lmtp::connect(s.ports.lmtp).await?;
    let mut sent = Vec::with_capacity(plan.idle_users);
    for u in 0..plan.idle_users {
        let t = l
            .deliver(
                &[format!("idle{u}@bench.example")],
                &small_message(2048, u as u64),
            )
            .await?;
        sent.push(t);
    }
    let mut lat = Vec::with_capacity(plan.idle_push);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while lat.len() < plan.idle_push {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, at))) => {
                lat.push(ms(at.saturating_duration_since(sent[i % plan.idle_users])))
            }
            _ => break,
        }
    }
    m.check(
        "idle_push_notified",
        format!("{}/{}", lat.len(), plan.idle_push),
    );
    lat.sort_by(f64::total_cmp);
    m.set("push_p50_ms", percentile(&lat, 50.0));
    // A connection never notified within the deadline counts as the deadline.
    let missing = plan.idle_push - lat.len();
    lat.extend(std::iter::repeat_n(120_000.0, missing));
    m.set("push_p99_ms", percentile(&lat, 99.0));
    for w in waiters {
        w.abort();
    }
    Ok(())
}

/// Row 9: `mixed_clients` clients doing imaptest's default round (LOGIN, LIST, SELECT, FETCH of
/// all envelopes, FETCH of a body, SEARCH, STORE, STORE \Deleted, EXPUNGE, APPEND, LOGOUT) on
/// `mixed_users` shared INBOXes. Commands per second and p99 latency of single commands.
pub async fn mixed_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    mixed_on(&[s.ports.imap], plan, m, "mixed").await
}

/// Row 9 on one or more nodes: the mixed load with client `i` on the IMAP port
/// `ports[i % ports.len()]` (round-robin; every user has clients on every node when there are
/// fewer nodes than users). Sets `{key}_cmds_per_sec`, `{key}_p50_ms` and `{key}_p99_ms`.
pub async fn mixed_on(ports: &[u16], plan: &Plan, m: &mut Measured, key: &str) -> Result<()> {
    let load = Load {
        clients: plan.mixed_clients,
        user_prefix: "mix",
        users: plan.mixed_users,
        secs: plan.mixed_secs,
        persistent: false,
    };
    mixed_load(ports, plan.password, &load, m, key).await
}

/// Row 9b (issue 23): the mixed load on persistent sessions. `persistent_clients` clients on
/// `persistent_users` shared INBOXes log in once and loop SELECT, FETCH, SEARCH, STORE,
/// STORE \Deleted + EXPUNGE, APPEND on the same connection (imaptest's default profile without
/// its re-logins). Sets `persistent_cmds_per_sec`, `persistent_p50_ms`, `persistent_p99_ms`.
pub async fn persistent_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let load = Load {
        clients: plan.persistent_clients,
        user_prefix: PERSISTENT_USER_PREFIX,
        users: plan.persistent_users,
        secs: plan.mixed_secs,
        persistent: true,
    };
    mixed_load(&[s.ports.imap], plan.password, &load, m, "persistent").await
}

/// The users of the persistent mixed load are `pers0`, `pers1`, ...
pub const PERSISTENT_USER_PREFIX: &str = "pers";

/// One mixed load: how many clients on how many users, for how long, and whether each client
/// keeps its session (persistent) or logs in and out every round (row 9).
struct Load {
    clients: usize,
    user_prefix: &'static str,
    users: usize,
    secs: u64,
    persistent: bool,
}

async fn mixed_load(
    ports: &[u16],
    pw: &'static str,
    load: &Load,
    m: &mut Measured,
    key: &str,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..load.clients {
        let (stop, errors) = (Arc::clone(&stop), Arc::clone(&errors));
        let port = ports[i % ports.len()];
        let user = format!("{}{}", load.user_prefix, i % load.users);
        let persistent = load.persistent;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(i as u64 + 1);
            let mut lat: Vec<(String, f64)> = Vec::new();
            let mut n = 0u64;
            // The persistent clients' session, kept across rounds (a new one after an error).
            let mut session: Option<Imap> = None;
            while !stop.load(Ordering::Relaxed) {
                let r = if persistent {
                    persistent_round(&mut session, port, &user, pw, &mut rng, &mut lat, &mut n)
                        .await
                } else {
                    mixed_round(port, &user, pw, &mut rng, &mut lat, &mut n).await
                };
                if let Err(e) = r {
                    session = None;
                    if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!(
                            "    {}: {e}",
                            if persistent { "persistent" } else { "mixed" }
                        );
                    }
                }
            }
            if let Some(mut c) = session {
                let _ = c.cmd("LOGOUT", false).await;
            }
            lat
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(load.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<(String, f64)> = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    let secs = t.elapsed().as_secs_f64();
    let mut by_verb: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (verb, l) in &all {
        by_verb.entry(verb.as_str()).or_default().push(*l);
    }
    for (verb, mut v) in by_verb {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        m.info(
            &format!("{key}_{verb}"),
            format!(
                "n={} mean={mean:.1} ms p50={:.1} ms p99={:.1} ms",
                v.len(),
                percentile(&v, 50.0),
                percentile(&v, 99.0)
            ),
        );
    }
    let mut lat: Vec<f64> = all.into_iter().map(|(_, l)| l).collect();
    lat.sort_by(f64::total_cmp);
    m.set(&format!("{key}_cmds_per_sec"), lat.len() as f64 / secs);
    m.set(&format!("{key}_p50_ms"), percentile(&lat, 50.0));
    m.set(&format!("{key}_p99_ms"), percentile(&lat, 99.0));
    m.info(&format!("{key}_errors"), errors.load(Ordering::Relaxed));
    Ok(())
}

/// Users of the push-latency row (`idle0..`), each with one IDLE client.
const PUSH_USERS: usize = 10;
/// Time between two deliveries of the push-latency row: one user gets a message every
/// `PUSH_USERS` of these (200 ms), so its client sees one `EXISTS` per delivery.
const PUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A delivery not announced within this long counts as a timeout (and as this long in the
/// percentiles). Well above the 100 ms target and a catch-up poll's period.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Row 8, push across nodes (issue 18): `plan.push_deliveries` LMTP deliveries, one every
/// `PUSH_INTERVAL`, on the node whose LMTP port is `lmtp`, round-robin to `PUSH_USERS` users,
/// each of which has an IDLE client on the node whose IMAP port is `imap`. A delivery's latency
/// runs from the moment its `250` was read to the first `* n EXISTS` whose `n` includes it
/// (the message count the delivery made); one not seen within `PUSH_TIMEOUT` is a timeout.
/// Sets `{key}_p50_ms`, `{key}_p99_ms` (timeouts count as `PUSH_TIMEOUT`; no value when every
/// delivery timed out) and `{key}_timeouts`. With `lmtp` and `imap` on the same server this is
/// the push within one process.
pub async fn push_row(
    lmtp: u16,
    imap: u16,
    plan: &Plan,
    m: &mut Measured,
    key: &str,
) -> Result<()> {
    let users = plan.idle_users.clamp(1, PUSH_USERS);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, u64, Instant)>();
    let mut count = Vec::with_capacity(users);
    let mut watchers = Vec::with_capacity(users);
    for u in 0..users {
        let mut c = logged_in(imap, &format!("idle{u}"), plan.password).await?;
        let a = c.ok("SELECT INBOX", false).await?;
        count.push(a.exists().ok_or("SELECT INBOX without EXISTS")?);
        c.idle().await?;
        let tx = tx.clone();
        watchers.push(tokio::spawn(async move {
            while let Ok(l) = c.c.line().await {
                if let Some(n) = parse_exists(&l) {
                    let _ = tx.send((u, n, Instant::now()));
                }
            }
        }));
    }
    drop(tx);
    let mut l = Lmtp::connect(lmtp).await?;
    // (user, message count the delivery made, when its 250 was read)
    let mut sent: Vec<(usize, u64, Instant)> = Vec::with_capacity(plan.push_deliveries);
    let mut next = tokio::time::Instant::now();
    for k in 0..plan.push_deliveries {
        let u = k % users;
        l.deliver(
            &[format!("idle{u}@bench.example")],
            &small_message(2048, k as u64),
        )
        .await?;
        let at = Instant::now();
        count[u] += 1;
        sent.push((u, count[u], at));
        next += PUSH_INTERVAL;
        tokio::time::sleep_until(next).await;
    }
    // Every EXISTS until each user's client saw its last delivery, or PUSH_TIMEOUT after the
    // last delivery.
    let deadline = tokio::time::Instant::now() + PUSH_TIMEOUT;
    let mut events: Vec<(usize, u64, Instant)> = Vec::new();
    let mut seen = vec![0u64; users];
    while seen != count {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => {
                seen[e.0] = seen[e.0].max(e.1);
                events.push(e);
            }
            _ => break,
        }
    }
    for w in watchers {
        w.abort();
    }
    let timeout_ms = ms(PUSH_TIMEOUT);
    let mut lat = Vec::with_capacity(sent.len());
    let mut timeouts = 0;
    for (u, n, at) in &sent {
        // An EXISTS read before this client read the 250 counts as 0 ms.
        let first = events
            .iter()
            .filter(|(eu, en, _)| eu == u && en >= n)
            .map(|(_, _, t)| ms(t.saturating_duration_since(*at)))
            .min_by(f64::total_cmp);
        match first {
            Some(v) if v <= timeout_ms => lat.push(v),
            _ => {
                timeouts += 1;
                lat.push(timeout_ms);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    m.set(&format!("{key}_timeouts"), timeouts as f64);
    m.info(
        &format!("{key}_announced"),
        format!(
            "{}/{} deliveries within {} s",
            sent.len() - timeouts,
            sent.len(),
            PUSH_TIMEOUT.as_secs()
        ),
    );
    if timeouts == sent.len() {
        let why = format!("n/a ({timeouts}/{} timed out)", sent.len());
        m.not_measured(&format!("{key}_p50_ms"), &why);
        m.not_measured(&format!("{key}_p99_ms"), &why);
    } else {
        m.set(&format!("{key}_p50_ms"), percentile(&lat, 50.0));
        m.set(&format!("{key}_p99_ms"), percentile(&lat, 99.0));
    }
    Ok(())
}

/// Times one command of the mixed load under its verb.
async fn timed_cmd(
    c: &mut Imap,
    lat: &mut Vec<(String, f64)>,
    cmd: &str,
) -> Result<crate::client::Answer> {
    let t = Instant::now();
    let a = c.cmd(cmd, false).await?;
    let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
    lat.push((verb, ms(t.elapsed())));
    Ok(a)
}

/// Row 9's round: a fresh session, LOGIN, LIST (half the time), the commands of
/// [`mixed_commands`], LOGOUT.
async fn mixed_round(
    port: u16,
    user: &str,
    pw: &str,
    rng: &mut Rng,
    lat: &mut Vec<(String, f64)>,
    n: &mut u64,
) -> Result<()> {
    let t = Instant::now();
    let mut c = Imap::connect(port).await?;
    c.login(user, pw).await?;
    lat.push(("LOGIN".into(), ms(t.elapsed())));
    if rng.chance(50) {
        timed_cmd(&mut c, lat, "LIST \"\" *").await?;
    }
    mixed_commands(&mut c, rng, lat, n).await?;
    timed_cmd(&mut c, lat, "LOGOUT").await?;
    Ok(())
}

/// The persistent load's round: the commands of [`mixed_commands`] on the client's session,
/// which is opened (and logged in, untimed) only when there is none yet.
async fn persistent_round(
    session: &mut Option<Imap>,
    port: u16,
    user: &str,
    pw: &str,
    rng: &mut Rng,
    lat: &mut Vec<(String, f64)>,
    n: &mut u64,
) -> Result<()> {
    let c = match session {
        Some(c) => c,
        None => session.insert(logged_in(port, user, pw).await?),
    };
    mixed_commands(c, rng, lat, n).await
}

/// imaptest's default mix on a logged-in session: SELECT INBOX, FETCH of every message's flags,
/// envelope and size, FETCH of one body, SEARCH (half the time), STORE of flags on a few
/// messages, STORE \Deleted + EXPUNGE, APPEND. Each command's latency goes into `lat`.
async fn mixed_commands(
    c: &mut Imap,
    rng: &mut Rng,
    lat: &mut Vec<(String, f64)>,
    n: &mut u64,
) -> Result<()> {
    let a = timed_cmd(c, lat, "SELECT INBOX").await?;
    let mut exists = a.exists().unwrap_or(0) as usize;
    let track = |a: &crate::client::Answer, exists: &mut usize| {
        for l in &a.untagged {
            if let Some(e) = parse_exists(l) {
                *exists = e as usize;
            } else if l.ends_with(b" EXPUNGE") {
                *exists = exists.saturating_sub(1);
            }
        }
    };
    if exists > 0 {
        let a = timed_cmd(
            c,
            lat,
            "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
        )
        .await?;
        track(&a, &mut exists);
    }
    if exists > 0 {
        let a = timed_cmd(
            c,
            lat,
            &format!("FETCH {} BODY.PEEK[]", 1 + rng.below(exists)),
        )
        .await?;
        track(&a, &mut exists);
    }
    if rng.chance(50) {
        let q = if rng.chance(50) {
            "SEARCH UNSEEN".to_string()
        } else {
            format!(
                "SEARCH FROM \"{}\"",
                ["anna", "bench", "example"][rng.below(3)]
            )
        };
        let a = timed_cmd(c, lat, &q).await?;
        track(&a, &mut exists);
    }
    if exists > 0 {
        let lo = 1 + rng.below(exists);
        let hi = (lo + rng.below(5)).min(exists);
        let op = if rng.chance(50) { "+" } else { "-" };
        let flag = ["\\Seen", "\\Flagged", "\\Answered", "$Work"][rng.below(4)];
        let a = timed_cmd(c, lat, &format!("STORE {lo}:{hi} {op}FLAGS ({flag})")).await?;
        track(&a, &mut exists);
    }
    if exists > 0 {
        let a = timed_cmd(
            c,
            lat,
            &format!("STORE {} +FLAGS.SILENT (\\Deleted)", 1 + rng.below(exists)),
        )
        .await?;
        track(&a, &mut exists);
        let a = timed_cmd(c, lat, "EXPUNGE").await?;
        track(&a, &mut exists);
    }
    *n += 1;
    let msg = small_message(1500 + rng.below(6000), *n);
    let t = Instant::now();
    c.append("INBOX", "", &msg).await?;
    lat.push(("APPEND".into(), ms(t.elapsed())));
    Ok(())
}

/// The numbers a set like `4,9:10,18` stands for (UIDs in a `VANISHED` response).
fn set_count(set: &[u8]) -> Result<u64> {
    let mut n = 0;
    for part in set.split(|&b| b == b',') {
        let s = std::str::from_utf8(part)?;
        n += match s.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse()?, b.parse()?);
                a.abs_diff(b) + 1
            }
            None => {
                s.parse::<u64>()?;
                1
            }
        };
    }
    Ok(n)
}

/// What a client knows about a mailbox when it goes offline.
struct Saved {
    uidvalidity: u64,
    highest_modseq: u64,
}

/// `n` of `* OK [CODE n] ...` in an answer's untagged lines.
fn response_code(a: &crate::client::Answer, code: &str) -> Option<u64> {
    let prefix = format!("* OK [{code} ");
    a.untagged.iter().find_map(|l| {
        let s = std::str::from_utf8(l).ok()?;
        s.strip_prefix(&prefix)?.split(']').next()?.parse().ok()
    })
}

/// A comma-separated set of the sequence numbers `first, first + step, ...` up to `last`, at
/// most `chunk` of them per set (keeps command lines short).
fn every(first: usize, step: usize, last: usize, chunk: usize) -> Vec<String> {
    let all: Vec<String> = (first..=last)
        .step_by(step)
        .map(|n| n.to_string())
        .collect();
    all.chunks(chunk).map(|c| c.join(",")).collect()
}

/// Row 10: offline resync of the big mailbox (issue 15). A client selects it with QRESYNC
/// enabled and goes away; another session changes flags on 1% of the messages and expunges
/// another 1%; then the client comes back: connect, LOGIN, ENABLE QRESYNC,
/// `SELECT box (QRESYNC (uidvalidity modseq))`, reading `VANISHED (EARLIER)` and the changed
/// FETCHes. Compared with the full refetch a client without QRESYNC must do (connect, LOGIN,
/// SELECT, `UID FETCH 1:* (FLAGS)`). It changes the mailbox, so it runs after every other row.
pub async fn resync_rows(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    let (port, pw, n) = (s.ports.imap, plan.password, plan.big);
    let big = format!("m{n}");
    // The client's first visit: what it saves.
    let mut c = logged_in(port, "big", pw).await?;
    let caps = c.ok("CAPABILITY", true).await?;
    let qresync = caps.untagged.iter().any(|l| {
        l.starts_with(b"* CAPABILITY ") && l.split(|&b| b == b' ').any(|w| w == b"QRESYNC")
    });
    if qresync {
        c.ok("ENABLE QRESYNC", false).await?;
    }
    let a = c.ok(&format!("SELECT {big}"), true).await?;
    let exists = a.exists().ok_or("no EXISTS")? as usize;
    let saved = Saved {
        uidvalidity: response_code(&a, "UIDVALIDITY").ok_or("no UIDVALIDITY")?,
        highest_modseq: response_code(&a, "HIGHESTMODSEQ").unwrap_or(0),
    };
    let _ = c.cmd("LOGOUT", false).await;
    // Another session: flags on 1% (sequence numbers 50, 150, ...), expunges another 1% (100,
    // 200, ...). Both servers hold the same messages in the same order, so the same ones change.
    let mut o = logged_in(port, "big", pw).await?;
    o.ok(&format!("SELECT {big}"), false).await?;
    for set in every(50, 100, exists, 200) {
        o.ok(
            &format!("STORE {set} +FLAGS.SILENT (\\Flagged $Work)"),
            false,
        )
        .await?;
    }
    for set in every(100, 100, exists, 200) {
        o.ok(&format!("STORE {set} +FLAGS.SILENT (\\Deleted)"), false)
            .await?;
    }
    let x = o.ok("EXPUNGE", false).await?;
    m.check(&format!("resync_{n}_expunged"), x.untagged_count);
    let _ = o.cmd("LOGOUT", false).await;

    if qresync && saved.highest_modseq > 0 {
        let mut v = Vec::new();
        for rep in 0..plan.reps + 1 {
            let t = Instant::now();
            let mut c = logged_in(port, "big", pw).await?;
            c.ok("ENABLE QRESYNC", false).await?;
            let a = c
                .ok(
                    &format!(
                        "SELECT {big} (QRESYNC ({} {}))",
                        saved.uidvalidity, saved.highest_modseq
                    ),
                    true,
                )
                .await?;
            let took = ms(t.elapsed());
            let _ = c.cmd("LOGOUT", false).await;
            let mut vanished = 0;
            for l in &a.untagged {
                if let Some(set) = l.strip_prefix(b"* VANISHED (EARLIER) ") {
                    vanished += set_count(set)?;
                }
            }
            let changed = a
                .untagged
                .iter()
                .filter(|l| memchr::memmem::find(l, b" FETCH (").is_some())
                .count();
            if rep == 0 {
                m.set(&format!("resync_qresync_{n}_first"), took);
                m.check(&format!("resync_{n}_vanished"), vanished);
                m.check(&format!("resync_{n}_changed_fetches"), changed);
                m.info("resync_qresync_bytes", a.bytes);
            } else {
                v.push(took);
            }
        }
        m.set(&format!("resync_qresync_{n}_warm"), median(v));
    } else {
        m.info(
            "resync_qresync",
            "not measured: the server does not announce QRESYNC",
        );
    }
    let mut v = Vec::new();
    for rep in 0..plan.reps + 1 {
        let t = Instant::now();
        let mut c = logged_in(port, "big", pw).await?;
        c.ok(&format!("SELECT {big}"), false).await?;
        let a = c.ok("UID FETCH 1:* (FLAGS)", false).await?;
        let took = ms(t.elapsed());
        let _ = c.cmd("LOGOUT", false).await;
        if rep == 0 {
            m.check(&format!("resync_{n}_refetch_answers"), a.untagged_count);
            m.info("resync_refetch_bytes", a.bytes);
        } else {
            v.push(took);
        }
    }
    m.set(&format!("resync_refetch_{n}_warm"), median(v));
    Ok(())
}

/// Each physical reference row (`reference.rs`) and the server rows measured against it.
pub const REFERENCES: &[(&str, &[&str])] = &[
    ("ref_10mb_body", &["fetch_10mb_body"]),
    (
        "ref_10mb_part2",
        &["fetch_10mb_part2", "fetch_10mb_binary2"],
    ),
    ("ref_pop3_retr_all", &["pop3_retr_all"]),
];

/// True for a physical reference row: the machine's figure, not a server's (no ratio).
pub fn is_reference(key: &str) -> bool {
    REFERENCES.iter().any(|(r, _)| *r == key)
}

/// Row keys in table order: (key, label, unit, higher is better).
pub fn table(plan: &Plan) -> Vec<(String, String, &'static str, bool)> {
    let (big, mid) = (plan.big, plan.mid);
    let mut rows: Vec<(String, String, &'static str, bool)> = Vec::new();
    let mut r = |k: String, label: String, unit: &'static str, higher: bool| {
        rows.push((k, label, unit, higher))
    };
    for n in [mid, big] {
        r(
            format!("select_{n}_cold"),
            format!("1 SELECT {n} msgs, cold"),
            "ms",
            false,
        );
        r(
            format!("select_{n}_warm"),
            format!("1 SELECT {n} msgs, warm"),
            "ms",
            false,
        );
    }
    for (k, label) in [
        (
            "fetch_fast",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        ),
        ("fetch_envelope", "FETCH 1:* ENVELOPE"),
        ("fetch_bodystructure", "FETCH 1:* BODYSTRUCTURE"),
        ("fetch_preview", "FETCH 1:* PREVIEW"),
    ] {
        r(
            format!("{k}_{big}_first"),
            format!("2 {label}, {big}, first"),
            "ms",
            false,
        );
        r(
            format!("{k}_{big}_warm"),
            format!("2 {label}, {big}, warm"),
            "ms",
            false,
        );
    }
    r(
        "fetch_10mb_body".into(),
        "3 FETCH BODY[] of the 10 MB message".into(),
        "ms",
        false,
    );
    r(
        "fetch_10mb_part2".into(),
        "3 FETCH BODY[2] (middle part, 5.3 MB)".into(),
        "ms",
        false,
    );
    r(
        "fetch_10mb_binary2".into(),
        "3 FETCH BINARY[2] (middle part decoded, 4 MB)".into(),
        "ms",
        false,
    );
    // Physical references (issue 23, `reference.rs`): not a server's figure but the machine's,
    // measured in each server's run; no ratio.
    r(
        "ref_10mb_body".into(),
        "3 reference: sendfile of the same 10 MB over loopback".into(),
        "ms",
        false,
    );
    r(
        "ref_10mb_part2".into(),
        "3 reference: sendfile of part 2's 5.3 MB".into(),
        "ms",
        false,
    );
    for (k, label) in [
        ("search_unseen", "SEARCH UNSEEN"),
        ("search_from", "SEARCH FROM"),
        ("search_text", "SEARCH TEXT"),
        ("search_savedsince", "SEARCH SAVEDSINCE"),
    ] {
        r(
            format!("{k}_{big}_first"),
            format!("4 {label}, {big}, first"),
            "ms",
            false,
        );
        r(
            format!("{k}_{big}_warm"),
            format!("4 {label}, {big}, warm"),
            "ms",
            false,
        );
    }
    r(
        "pop3_retr_all".into(),
        format!("5 POP3 login, STAT, RETR of all {}", plan.pop3),
        "ms",
        false,
    );
    r(
        "ref_pop3_retr_all".into(),
        format!(
            "5 reference: sendfile of the {} files, one request each",
            plan.pop3
        ),
        "ms",
        false,
    );
    for (size, conns) in [("4k", 1), ("4k", 8), ("100k", 1), ("100k", 8)] {
        r(
            format!("lmtp_{size}_{conns}"),
            format!("6 LMTP {size}B messages, {conns} conn"),
            "msg/s",
            true,
        );
    }
    for conns in [1, 8] {
        r(
            format!("sieve_4k_{conns}"),
            format!("6 LMTP 4kB + Sieve (40 rules), {conns} conn"),
            "msg/s",
            true,
        );
    }
    r(
        "logins".into(),
        "7 LOGIN+LOGOUT, argon2id m=19456 t=2".into(),
        "/s",
        true,
    );
    r(
        "logins_cached".into(),
        "7 LOGIN+LOGOUT, same hash, login cache on".into(),
        "/s",
        true,
    );
    r(
        "idle_plain_kib".into(),
        "8 memory per idle plain connection".into(),
        "KiB",
        false,
    );
    r(
        "idle_tls_kib".into(),
        "8 memory per idle TLS connection".into(),
        "KiB",
        false,
    );
    r(
        "idle_deflate_kib".into(),
        "8 memory per idle COMPRESS=DEFLATE connection".into(),
        "KiB",
        false,
    );
    r(
        "idle_push_total_mib".into(),
        format!("8 total memory, {} IDLE connections", plan.idle_push),
        "MiB",
        false,
    );
    r(
        "idle_push_kib_per_conn".into(),
        "8 memory per IDLE connection".into(),
        "KiB",
        false,
    );
    r(
        "push_p50_ms".into(),
        "8 LMTP -> EXISTS latency p50".into(),
        "ms",
        false,
    );
    r(
        "push_p99_ms".into(),
        "8 LMTP -> EXISTS latency p99".into(),
        "ms",
        false,
    );
    r(
        "mixed_cmds_per_sec".into(),
        format!("9 mixed load, {} clients", plan.mixed_clients),
        "cmd/s",
        true,
    );
    r(
        "mixed_p99_ms".into(),
        "9 mixed load, p99 latency".into(),
        "ms",
        false,
    );
    r(
        "persistent_cmds_per_sec".into(),
        format!(
            "9b mixed, persistent sessions, {} clients on {} users",
            plan.persistent_clients, plan.persistent_users
        ),
        "cmd/s",
        true,
    );
    r(
        "persistent_p50_ms".into(),
        "9b mixed, persistent sessions, p50 latency".into(),
        "ms",
        false,
    );
    r(
        "persistent_p99_ms".into(),
        "9b mixed, persistent sessions, p99 latency".into(),
        "ms",
        false,
    );
    r(
        "push_same_p50_ms".into(),
        "8 push: LMTP 250 -> IDLE EXISTS, same node, p50".into(),
        "ms",
        false,
    );
    r(
        "push_same_p99_ms".into(),
        "8 push: LMTP 250 -> IDLE EXISTS, same node, p99".into(),
        "ms",
        false,
    );
    r(
        "push_same_timeouts".into(),
        "8 push: same node, not announced within 5 s".into(),
        "msgs",
        false,
    );
    r(
        "push_cross_p50_ms".into(),
        "8 push: LMTP 250 on node A -> EXISTS on node B, p50".into(),
        "ms",
        false,
    );
    r(
        "push_cross_p99_ms".into(),
        "8 push: LMTP 250 on node A -> EXISTS on node B, p99".into(),
        "ms",
        false,
    );
    r(
        "push_cross_timeouts".into(),
        "8 push: node A -> node B, not announced within 5 s".into(),
        "msgs",
        false,
    );
    for nodes in 1..=3 {
        r(
            format!("mixed_nodes{nodes}_cmds_per_sec"),
            format!(
                "9 mixed, {} clients, {nodes} node{}, one database, 2 cores",
                plan.mixed_clients,
                if nodes == 1 { "" } else { "s" }
            ),
            "cmd/s",
            true,
        );
        r(
            format!("mixed_nodes{nodes}_p50_ms"),
            format!(
                "9 mixed, {nodes} node{}, p50 latency",
                if nodes == 1 { "" } else { "s" }
            ),
            "ms",
            false,
        );
        r(
            format!("mixed_nodes{nodes}_p99_ms"),
            format!(
                "9 mixed, {nodes} node{}, p99 latency",
                if nodes == 1 { "" } else { "s" }
            ),
            "ms",
            false,
        );
    }
    r(
        format!("resync_qresync_{big}_first"),
        format!("10 resync {big} (1% flags, 1% expunged), QRESYNC, first"),
        "ms",
        false,
    );
    r(
        format!("resync_qresync_{big}_warm"),
        format!("10 resync {big} (1% flags, 1% expunged), QRESYNC, warm"),
        "ms",
        false,
    );
    r(
        format!("resync_refetch_{big}_warm"),
        format!("10 resync {big} by full refetch (FETCH 1:* FLAGS)"),
        "ms",
        false,
    );
    r(
        "idle_notify_kib".into(),
        "15 memory per idle connection with NOTIFY on all mailboxes".into(),
        "KiB",
        false,
    );
    rows.extend(scale_table_rows(plan));
    rows.extend(crate::idlecurve::table_rows(plan));
    rows.extend(crate::sort::table_rows(big));
    rows.extend(crate::fts::table_rows(crate::fts::FTS_MESSAGES));
    rows.extend(crate::compress::table_rows(mid));
    rows.push((
        "multiappend_100".into(),
        "14 MULTIAPPEND of 100 4kB messages, one command".into(),
        "ms",
        false,
    ));
    rows
}

/// Which server this is, for log lines.
pub fn banner(kind: Kind) -> String {
    format!("== {} ==", kind.name())
}

/// The NOTIFY request of the `notify` row: every event of every mailbox of the user (RFC 5465).
const NOTIFY_ALL: &str = "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) \
                          (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))";

/// Row 15: memory per idle connection (INBOX selected, as row 8) that also asked NOTIFY for
/// every event of all its mailboxes (INBOX and four folders), with `idle_push` connections: the
/// notification path must not cost a watch per mailbox (issue 17: within 2x of
/// `idle_plain_kib`). Then one delivery into a folder and the share of connections told with a
/// `* STATUS` within 120 s.
pub async fn notify_row(s: &Running, plan: &Plan, m: &mut Measured) -> Result<()> {
    // Four folders per idle user (kept for later runs; CREATE of an existing one answers NO).
    for u in 0..plan.idle_users {
        let mut c = Imap::connect(s.ports.imap).await?;
        c.login(&format!("idle{u}"), plan.password).await?;
        for f in ["NotifyA", "NotifyB", "NotifyC", "NotifyD"] {
            c.cmd(&format!("CREATE {f}"), false).await?;
        }
        c.cmd("LOGOUT", false).await?;
    }
    settle(plan).await;
    let (before, _, _) = s.memory();
    let mut conns = open_many(s, plan, plan.idle_push, None, false).await?;
    for c in &mut conns {
        c.ok(NOTIFY_ALL, false).await?;
    }
    settle(plan).await;
    let (after, rss, procs) = s.memory();
    m.set(
        "idle_notify_kib",
        after.saturating_sub(before) as f64 / plan.idle_push as f64,
    );
    m.info("idle_notify_rss_kib", rss);
    m.info("idle_notify_processes", procs);
    // One message into NotifyA of user idle0: its connections are told between commands.
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let mut waiters = Vec::new();
    for (i, mut c) in conns.drain(..).enumerate() {
        if i % plan.idle_users != 0 {
            drop(c);
            continue;
        }
        let tx = tx.clone();
        waiters.push(tokio::spawn(async move {
            loop {
                let l = c.c.line().await?;
                if l.starts_with(b"* STATUS") {
                    let _ = tx.send(i);
                    return Result::Ok(c);
                }
            }
        }));
    }
    drop(tx);
    let watching = waiters.len();
    let mut c = Imap::connect(s.ports.imap).await?;
    c.login("idle0", plan.password).await?;
    c.ok("APPEND NotifyA {8+}\r\nSubject:", false).await?;
    let mut told = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while told < watching {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(_)) => told += 1,
            _ => break,
        }
    }
    m.check("idle_notify_told", format!("{told}/{watching}"));
    for w in waiters {
        w.abort();
    }
    Ok(())
}
