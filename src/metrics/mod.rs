//! The daemon's metrics, served as OpenMetrics text by [`http`] (see `docs/metrics.md`).
//!
//! The registry and encoding are the official Rust client, `prometheus-client`. Everything lives in
//! one process-wide [`Metrics`] created by [`init`] when `[metrics] address` is set; until then
//! (and in the CLI tools) every hook is a single failed `OnceLock` load and nothing is counted.
//!
//! Hot paths never build a label set: every counter and histogram a command, a connection or a
//! byte count touches is created at start-up and kept in a fixed array or a map keyed by the
//! command table's `&'static str` names, so a hook is an atomic add (a histogram observation takes
//! the histogram's own short lock, which is how the crate implements them). Label values come only
//! from fixed lists here and from the IMAP command table, never from a client: a command the
//! parser rejects is counted as `unknown`.
//!
//! The connection's protocol travels in a task-local set by [`connection`], so the byte counters in
//! `Conn` and the login hook need no protocol argument.

pub mod http;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio_util::either::Either;

use crate::auth::Authenticator;
use crate::config::{Config, Protocol, TlsMode};
use crate::imap::proto::encode::Status;
use crate::imap::response::ImapError;

/// The label value of a command the parser did not recognise (and of a protocol outside a
/// connection).
pub const UNKNOWN: &str = "unknown";

/// POP3 command names (RFC 1939, RFC 2449, RFC 2595, RFC 5034), as `pop3::command::Command::name`.
pub const POP3_COMMANDS: &[&str] = &[
    "CAPA", "STLS", "USER", "PASS", "AUTH", "APOP", "STAT", "LIST", "RETR", "TOP", "UIDL", "DELE",
    "NOOP", "RSET", "QUIT",
];

/// LMTP verbs (RFC 2033, RFC 3030 BDAT) the server answers; anything else is `unknown`.
pub const LMTP_COMMANDS: &[&str] = &[
    "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY",
];

/// Login mechanisms as the login path names them: IMAP `LOGIN` and `AUTHENTICATE`, POP3
/// `USER` (USER/PASS) and `AUTH`. Created at start-up so rates start from 0.
const LOGIN_MECHANISMS: &[(&str, &str)] = &[
    ("imap", "LOGIN"),
    ("imap", "AUTHENTICATE"),
    ("pop3", "USER"),
    ("pop3", "AUTH"),
    ("managesieve", "AUTHENTICATE"),
];

/// `result` of `mailcove_logins_total`.
pub mod login_result {
    /// Logged in.
    pub const OK: &str = "ok";
    /// Wrong user or password.
    pub const FAILED: &str = "failed";
    /// Refused before the password was checked or after it: plaintext without TLS, too many
    /// sessions of the user from the address.
    pub const REFUSED: &str = "refused";
    /// The check could not be made (hashing queue full, users file unreadable).
    pub const TEMPFAIL: &str = "tempfail";
    /// Every value.
    pub const ALL: &[&str] = &[OK, FAILED, REFUSED, TEMPFAIL];
}

/// Upper bounds (seconds) of the command and storage latency histograms: 100 us to 10 s, about
/// 2.5x apart, so p50/p99 of a warm FETCH (well under a millisecond) and of a cold SELECT of a large
/// mailbox (seconds) both fall between two bounds. IDLE and slow APPENDs land in `+Inf`.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The storage operations timed by [`storage`], called where the protocols call the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    /// Opening a mailbox (IMAP SELECT/EXAMINE, the POP3 maildrop).
    Open,
    /// IMAP STATUS (and the status LIST-STATUS asks).
    Status,
    /// Listing the mailboxes (IMAP LIST/LSUB).
    List,
    /// Storing a new message (IMAP APPEND, LMTP delivery).
    Append,
    /// Reading a message's content (IMAP FETCH bodies, POP3 RETR/TOP).
    Fetch,
    /// Changing flags (IMAP STORE, POP3 marking \Seen).
    Store,
    /// Removing messages (IMAP EXPUNGE/CLOSE, POP3 QUIT).
    Expunge,
    /// IMAP COPY and MOVE.
    Copy,
}

impl StorageOp {
    /// Every operation, in index order (`op as usize` is its index).
    pub const ALL: [StorageOp; 8] = [
        StorageOp::Open,
        StorageOp::Status,
        StorageOp::List,
        StorageOp::Append,
        StorageOp::Fetch,
        StorageOp::Store,
        StorageOp::Expunge,
        StorageOp::Copy,
    ];

    /// The `op` label value.
    pub fn name(self) -> &'static str {
        match self {
            StorageOp::Open => "open",
            StorageOp::Status => "status",
            StorageOp::List => "list",
            StorageOp::Append => "append",
            StorageOp::Fetch => "fetch",
            StorageOp::Store => "store",
            StorageOp::Expunge => "expunge",
            StorageOp::Copy => "copy",
        }
    }
}

const PROTOCOLS: [Protocol; 4] = [
    Protocol::Imap,
    Protocol::Pop3,
    Protocol::Lmtp,
    Protocol::ManageSieve,
];
const TLS_MODES: [TlsMode; 3] = [TlsMode::None, TlsMode::Starttls, TlsMode::Implicit];

fn protocol_index(p: Protocol) -> usize {
    match p {
        Protocol::Imap => 0,
        Protocol::Pop3 => 1,
        Protocol::Lmtp => 2,
        Protocol::ManageSieve => 3,
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
        Protocol::Lmtp => "lmtp",
        Protocol::ManageSieve => "managesieve",
    }
}

fn tls_index(t: TlsMode) -> usize {
    match t {
        TlsMode::None => 0,
        TlsMode::Starttls => 1,
        TlsMode::Implicit => 2,
    }
}

fn tls_name(t: TlsMode) -> &'static str {
    match t {
        TlsMode::None => "none",
        TlsMode::Starttls => "starttls",
        TlsMode::Implicit => "implicit",
    }
}

/// How a command ended, for the `result` label: IMAP `ok`/`no`/`bad`; POP3 and LMTP `ok`/`err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    No,
    Bad,
    Err,
}

/// A label set of `N` pairs; `&'static str` values, so making one allocates nothing.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// The pre-created series of one command.
struct CommandSeries {
    ok: Counter,
    no: Counter,
    bad: Counter,
    err: Counter,
    duration: Histogram,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    connections_active: [Gauge; 4],
    connections_total: [[Counter; 3]; 4],
    logins: Family<Labels<3>, Counter>,
    commands: [HashMap<&'static str, CommandSeries>; 4],
    lmtp_deliveries: [Counter; 3],
    bytes: [[Counter; 2]; 4],
    auth_queue_depth: Gauge,
    inflight_bytes: Gauge,
    storage: [Histogram; 8],
    resident_memory: Gauge,
    open_fds: Gauge,
    uptime: Gauge,
    started: Instant,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, once [`init`] has run.
fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Creates the metrics when `[metrics] address` is set; returns whether they are on. The storage
/// backend label is taken from `mail.location` now (a reload cannot change the backend).
pub fn init(config: &Config) -> bool {
    if config.metrics.address.is_none() {
        return false;
    }
    let backend = if crate::setup::is_memory_location(&config.mail.location) {
        "memory"
    } else {
        "maildir"
    };
    METRICS.get_or_init(|| Metrics::new(backend, imap_command_names()));
    true
}

/// The IMAP command names: every row of the command table.
fn imap_command_names() -> Vec<&'static str> {
    crate::imap::COMMAND_TABLE.iter().map(|r| r.name).collect()
}

impl Metrics {
    fn new(backend: &'static str, imap_commands: Vec<&'static str>) -> Metrics {
        let mut registry = Registry::default();

        let active = Family::<Labels<1>, Gauge>::default();
        registry.register(
            "mailcove_connections_active",
            "Connections open now, by protocol",
            active.clone(),
        );
        let connections_active =
            PROTOCOLS.map(|p| active.get_or_create_owned(&[("protocol", protocol_name(p))]));

        let total = Family::<Labels<2>, Counter>::default();
        registry.register(
            "mailcove_connections",
            "Connections accepted, by protocol and the listener's TLS mode",
            total.clone(),
        );
        let connections_total = PROTOCOLS.map(|p| {
            TLS_MODES.map(|t| {
                total.get_or_create_owned(&[("protocol", protocol_name(p)), ("tls", tls_name(t))])
            })
        });

        let logins = Family::<Labels<3>, Counter>::default();
        registry.register(
            "mailcove_logins",
            "Login attempts, by protocol, mechanism and result",
            logins.clone(),
        );
        for (protocol, mechanism) in LOGIN_MECHANISMS {
            for result in login_result::ALL {
                let _ = logins.get_or_create(&[
                    ("protocol", protocol),
                    ("mechanism", mechanism),
                    ("result", result),
                ]);
            }
        }

        let commands_total = Family::<Labels<3>, Counter>::default();
        registry.register(
            "mailcove_commands",
            "Commands answered, by protocol, command and result (IMAP ok/no/bad, POP3 and LMTP ok/err)",
            commands_total.clone(),
        );
        let durations = Family::<Labels<2>, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register_with_unit(
            "mailcove_command_duration",
            "Time from a parsed command to its answer, by protocol and command",
            Unit::Seconds,
            durations.clone(),
        );
        let mut names: [Vec<&'static str>; 4] = [
            imap_commands,
            POP3_COMMANDS.to_vec(),
            LMTP_COMMANDS.to_vec(),
            crate::managesieve::table::NAMES.to_vec(),
        ];
        let commands = std::array::from_fn(|i| {
            let protocol = protocol_name(PROTOCOLS[i]);
            // IMAP answers OK/NO/BAD; POP3 and LMTP succeed or fail.
            let imap = PROTOCOLS[i] == Protocol::Imap;
            names[i].push(UNKNOWN);
            names[i]
                .iter()
                .map(|&command| {
                    let counter = |result: &'static str, used: bool| {
                        if used {
                            commands_total.get_or_create_owned(&[
                                ("protocol", protocol),
                                ("command", command),
                                ("result", result),
                            ])
                        } else {
                            // A result this protocol never has: registered nowhere.
                            Counter::default()
                        }
                    };
                    let series = CommandSeries {
                        ok: counter("ok", true),
                        no: counter("no", imap),
                        bad: counter("bad", imap),
                        err: counter("err", !imap),
                        duration: durations
                            .get_or_create_owned(&[("protocol", protocol), ("command", command)]),
                    };
                    (command, series)
                })
                .collect()
        });

        let deliveries = Family::<Labels<1>, Counter>::default();
        registry.register(
            "mailcove_lmtp_deliveries",
            "LMTP recipients answered after the message, by result (delivered, tempfail, permfail)",
            deliveries.clone(),
        );
        let lmtp_deliveries = ["delivered", "tempfail", "permfail"]
            .map(|r| deliveries.get_or_create_owned(&[("result", r)]));

        let bytes_family = Family::<Labels<2>, Counter>::default();
        registry.register(
            "mailcove_bytes",
            "Protocol bytes received (in) and sent (out), after TLS and before COMPRESS",
            bytes_family.clone(),
        );
        let bytes = PROTOCOLS.map(|p| {
            ["in", "out"].map(|d| {
                bytes_family
                    .get_or_create_owned(&[("protocol", protocol_name(p)), ("direction", d)])
            })
        });

        let auth_queue_depth = Gauge::default();
        registry.register(
            "mailcove_auth_queue_depth",
            "Password checks waiting for a hashing thread",
            auth_queue_depth.clone(),
        );
        let inflight_bytes = Gauge::default();
        registry.register(
            "mailcove_inflight_message_bytes",
            "Message bytes held in memory by transfers now (the limits.max_inflight_message_bytes budget)",
            inflight_bytes.clone(),
        );

        let storage_family =
            Family::<Labels<2>, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register_with_unit(
            "mailcove_storage_operation_duration",
            "Time of storage operations called by the protocols, by backend and operation",
            Unit::Seconds,
            storage_family.clone(),
        );
        let storage = StorageOp::ALL.map(|op| {
            storage_family.get_or_create_owned(&[("backend", backend), ("op", op.name())])
        });

        let resident_memory = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident set size (VmRSS of /proc/self/status)",
            Unit::Bytes,
            resident_memory.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors (entries of /proc/self/fd)",
            open_fds.clone(),
        );
        let start_time: Gauge = Gauge::default();
        registry.register_with_unit(
            "process_start_time",
            "When the daemon started, in seconds since the Unix epoch",
            Unit::Seconds,
            start_time.clone(),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        start_time.set(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
        let uptime = Gauge::default();
        registry.register_with_unit(
            "mailcove_uptime",
            "Seconds since the daemon started",
            Unit::Seconds,
            uptime.clone(),
        );

        Metrics {
            registry,
            connections_active,
            connections_total,
            logins,
            commands,
            lmtp_deliveries,
            bytes,
            auth_queue_depth,
            inflight_bytes,
            storage,
            resident_memory,
            open_fds,
            uptime,
            started: Instant::now(),
        }
    }

    fn command(&self, protocol: Protocol, name: &str) -> Option<&CommandSeries> {
        let map = &self.commands[protocol_index(protocol)];
        map.get(name).or_else(|| map.get(UNKNOWN))
    }

    fn record(&self, protocol: Protocol, name: &str, outcome: Outcome, took: Option<Duration>) {
        let Some(series) = self.command(protocol, name) else {
            return;
        };
        match outcome {
            Outcome::Ok => series.ok.inc(),
            Outcome::No => series.no.inc(),
            Outcome::Bad => series.bad.inc(),
            Outcome::Err => series.err.inc(),
        };
        if let Some(took) = took {
            series.duration.observe(took.as_secs_f64());
        }
    }

    /// The OpenMetrics text of every metric, after refreshing the gauges read at scrape time.
    fn render(&self, auth: &Authenticator) -> String {
        self.auth_queue_depth
            .set(i64::try_from(auth.hash_queue_depth()).unwrap_or(i64::MAX));
        self.inflight_bytes
            .set(i64::try_from(crate::inflight::in_flight_bytes()).unwrap_or(i64::MAX));
        if let Some(rss) = resident_bytes() {
            self.resident_memory
                .set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The count includes the descriptor of the listing itself, as Prometheus' Go client.
            self.open_fds
                .set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        self.uptime
            .set(i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }
}

/// Resident set size from `/proc/self/status` (`VmRSS:  1234 kB`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The current scrape, or `None` when metrics are off.
pub fn render(auth: &Authenticator) -> Option<String> {
    get().map(|m| m.render(auth))
}

/// Per-connection state the hooks read: the protocol, and for LMTP whether a reply to the current
/// command was a failure. It also holds the connection's place in `mailcove_connections_active`,
/// given back when the task ends, however it ends.
struct ConnScope {
    protocol: Protocol,
    failed: Cell<bool>,
    _active: Active,
}

/// One connection counted in a `mailcove_connections_active` gauge, until dropped.
struct Active(&'static Gauge);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

tokio::task_local! {
    static CONN: ConnScope;
}

/// Runs one accepted connection's task `fut`, counting it in `mailcove_connections_total` and, for
/// as long as it runs, in `mailcove_connections_active`.
///
/// A plain function returning one of two futures, not an `async fn`: an `async fn` that awaits
/// `fut` on one path and a scope around it on the other keeps room for the connection's whole
/// future two or three times over, and every idle connection paid for it (16 KiB -> 29 KiB).
pub fn connection<F: Future>(
    protocol: Protocol,
    tls: TlsMode,
    fut: F,
) -> impl Future<Output = F::Output> {
    let Some(m) = get() else {
        return Either::Left(fut);
    };
    let p = protocol_index(protocol);
    m.connections_total[p][tls_index(tls)].inc();
    m.connections_active[p].inc();
    let scope = ConnScope {
        protocol,
        failed: Cell::new(false),
        _active: Active(&m.connections_active[p]),
    };
    Either::Right(CONN.scope(scope, fut))
}

fn add_bytes(direction: usize, n: usize) {
    if let Some(m) = get() {
        let _ = CONN.try_with(|c| {
            m.bytes[protocol_index(c.protocol)][direction].inc_by(n as u64);
        });
    }
}

/// `n` bytes read from the client of this connection.
pub fn bytes_in(n: usize) {
    add_bytes(0, n);
}

/// `n` bytes written to the client of this connection.
pub fn bytes_out(n: usize) {
    add_bytes(1, n);
}

/// A login attempt by `mechanism` ended with `result` (one of [`login_result`]).
pub fn login(mechanism: &'static str, result: &'static str) {
    if let Some(m) = get() {
        let protocol = CONN
            .try_with(|c| protocol_name(c.protocol))
            .unwrap_or(UNKNOWN);
        m.logins
            .get_or_create(&[
                ("protocol", protocol),
                ("mechanism", mechanism),
                ("result", result),
            ])
            .inc();
    }
}

fn imap_outcome(error: Option<&ImapError>) -> Outcome {
    match error {
        None => Outcome::Ok,
        Some(e) if e.answer().0 == Status::Bad => Outcome::Bad,
        Some(_) => Outcome::No,
    }
}

/// An IMAP command from the command table, run since `started`, answered OK or with `error`.
pub fn imap_command(name: &'static str, started: Instant, error: Option<&ImapError>) {
    if let Some(m) = get() {
        m.record(
            Protocol::Imap,
            name,
            imap_outcome(error),
            Some(started.elapsed()),
        );
    }
}

/// An IMAP command line the parser refused: counted as `unknown` (no duration).
pub fn imap_rejected(error: &ImapError) {
    if let Some(m) = get() {
        m.record(Protocol::Imap, UNKNOWN, imap_outcome(Some(error)), None);
    }
}

/// Runs the POP3 command `name`'s handler `fut`, counting its result and duration.
pub fn pop3_command<T, E, F>(name: &'static str, fut: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
{
    result_command(Protocol::Pop3, name, fut)
}

/// Runs the ManageSieve command `name`'s handler `fut`, counting its result (OK or not) and
/// duration.
pub fn managesieve_command<T, E, F>(
    name: &'static str,
    fut: F,
) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
{
    result_command(Protocol::ManageSieve, name, fut)
}

/// Runs the command `name`'s handler `fut` of a protocol whose outcome is just OK or not
/// (POP3, ManageSieve), counting its result and duration.
fn result_command<T, E, F>(
    protocol: Protocol,
    name: &'static str,
    fut: F,
) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
{
    observe(
        fut,
        get().map(|m| {
            move |out: &Result<T, E>, took: Duration| {
                let outcome = if out.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Err
                };
                m.record(protocol, name, outcome, Some(took));
            }
        }),
    )
}

/// Passes a POP3 parse result through, counting a line that is no command as `unknown`.
pub fn pop3_parsed<T, E>(parsed: Result<T, E>) -> Result<T, E> {
    if parsed.is_err()
        && let Some(m) = get()
    {
        m.record(Protocol::Pop3, UNKNOWN, Outcome::Err, None);
    }
    parsed
}

/// The LMTP verb of `line`, from [`LMTP_COMMANDS`], or `unknown`.
pub fn lmtp_verb(line: &[u8]) -> &'static str {
    let word = line.split(|&b| b == b' ').next().unwrap_or_default();
    LMTP_COMMANDS
        .iter()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or(UNKNOWN)
}

/// Runs the LMTP command `line`'s handler `fut`: `err` when any reply it queued (see
/// [`lmtp_reply`]) was a 4xx or 5xx, else `ok`.
pub fn lmtp_command<F: Future>(line: &[u8], fut: F) -> impl Future<Output = F::Output> {
    let done = get().map(|m| {
        let verb = lmtp_verb(line);
        let _ = CONN.try_with(|c| c.failed.set(false));
        move |_: &F::Output, took: Duration| {
            let failed = CONN.try_with(|c| c.failed.get()).unwrap_or(false);
            let outcome = if failed { Outcome::Err } else { Outcome::Ok };
            m.record(Protocol::Lmtp, verb, outcome, Some(took));
        }
    });
    observe(fut, done)
}

/// An LMTP reply line queued for the client.
pub fn lmtp_reply(line: &str) {
    if matches!(line.as_bytes().first(), Some(b'4' | b'5')) {
        let _ = CONN.try_with(|c| c.failed.set(true));
    }
}

/// The reply to one LMTP recipient after the message: 2xx delivered, 4xx tempfail, 5xx permfail.
pub fn lmtp_delivery(reply: &str) {
    if let Some(m) = get() {
        let i = match reply.as_bytes().first() {
            Some(b'2') => 0,
            Some(b'4') => 1,
            _ => 2,
        };
        m.lmtp_deliveries[i].inc();
    }
}

/// Runs the storage call `fut`, timing it as `op`.
pub fn storage<F: Future>(op: StorageOp, fut: F) -> impl Future<Output = F::Output> {
    observe(
        fut,
        get().map(|m| {
            move |_: &F::Output, took: Duration| {
                m.storage[op as usize].observe(took.as_secs_f64());
            }
        }),
    )
}

pin_project_lite::pin_project! {
    /// A future that, when it completes, hands its output and the time it took to `done`.
    ///
    /// A struct rather than an `async fn` wrapper: an `async fn` that takes a future and awaits it
    /// keeps room for that future twice, and the wrapped futures (commands, storage calls) are part
    /// of every connection's task, idle or not.
    pub struct Observed<F, D> {
        #[pin]
        fut: F,
        started: Option<Instant>,
        done: Option<D>,
    }
}

impl<F: Future, D: FnOnce(&F::Output, Duration)> Future for Observed<F, D> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let std::task::Poll::Ready(out) = this.fut.poll(cx) else {
            return std::task::Poll::Pending;
        };
        if let (Some(done), Some(started)) = (this.done.take(), *this.started) {
            done(&out, started.elapsed());
        }
        std::task::Poll::Ready(out)
    }
}

/// `fut`, observed by `done` when metrics are on (`done` is `None` when they are off).
fn observe<F: Future, D: FnOnce(&F::Output, Duration)>(fut: F, done: Option<D>) -> Observed<F, D> {
    Observed {
        fut,
        started: done.as_ref().map(|_| Instant::now()),
        done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new("memory", vec!["LOGIN", "SELECT", "UID FETCH"])
    }

    fn text(m: &Metrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).expect("encode");
        out
    }

    #[test]
    fn every_series_is_there_from_the_start_with_bounded_labels() {
        let m = metrics();
        let t = text(&m);
        for line in [
            "# TYPE mailcove_connections_active gauge",
            "mailcove_connections_active{protocol=\"lmtp\"} 0",
            "mailcove_connections_total{protocol=\"imap\",tls=\"implicit\"} 0",
            "mailcove_logins_total{protocol=\"pop3\",mechanism=\"USER\",result=\"failed\"} 0",
            "mailcove_commands_total{protocol=\"imap\",command=\"UID FETCH\",result=\"bad\"} 0",
            "mailcove_commands_total{protocol=\"pop3\",command=\"RETR\",result=\"err\"} 0",
            "mailcove_commands_total{protocol=\"lmtp\",command=\"unknown\",result=\"ok\"} 0",
            "# TYPE mailcove_command_duration_seconds histogram",
            "mailcove_lmtp_deliveries_total{result=\"tempfail\"} 0",
            "mailcove_bytes_total{protocol=\"imap\",direction=\"out\"} 0",
            "mailcove_storage_operation_duration_seconds_count{backend=\"memory\",op=\"copy\"} 0",
            "# TYPE process_start_time_seconds gauge",
            "# EOF",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        // POP3 has no no/bad, IMAP no err.
        assert!(!t.contains("protocol=\"pop3\",command=\"RETR\",result=\"no\""));
        assert!(!t.contains("protocol=\"imap\",command=\"SELECT\",result=\"err\""));
    }

    #[test]
    fn commands_count_by_result_and_unknown_names_fall_back() {
        let m = metrics();
        m.record(
            Protocol::Imap,
            "SELECT",
            Outcome::Ok,
            Some(Duration::from_millis(2)),
        );
        m.record(Protocol::Imap, "SELECT", Outcome::No, None);
        m.record(Protocol::Imap, "NOT A ROW", Outcome::Bad, None);
        m.record(Protocol::Pop3, "RETR", Outcome::Err, None);
        let t = text(&m);
        for line in [
            "mailcove_commands_total{protocol=\"imap\",command=\"SELECT\",result=\"ok\"} 1",
            "mailcove_commands_total{protocol=\"imap\",command=\"SELECT\",result=\"no\"} 1",
            "mailcove_commands_total{protocol=\"imap\",command=\"unknown\",result=\"bad\"} 1",
            "mailcove_commands_total{protocol=\"pop3\",command=\"RETR\",result=\"err\"} 1",
            "mailcove_command_duration_seconds_count{protocol=\"imap\",command=\"SELECT\"} 1",
            "mailcove_command_duration_seconds_bucket{le=\"0.0025\",protocol=\"imap\",command=\"SELECT\"} 1",
            "mailcove_command_duration_seconds_bucket{le=\"0.001\",protocol=\"imap\",command=\"SELECT\"} 0",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("NOT A ROW"));
    }

    #[test]
    fn storage_ops_index_their_own_histogram() {
        for (i, op) in StorageOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn lmtp_verbs_are_matched_without_case_and_bounded() {
        assert_eq!(lmtp_verb(b"lhlo example.org"), "LHLO");
        assert_eq!(lmtp_verb(b"MAIL FROM:<a@b>"), "MAIL");
        assert_eq!(lmtp_verb(b"DATA"), "DATA");
        assert_eq!(lmtp_verb(b"EHLO x"), UNKNOWN);
        assert_eq!(lmtp_verb(b""), UNKNOWN);
        assert_eq!(lmtp_verb("RCPT\u{e9}".as_bytes()), UNKNOWN);
    }

    #[test]
    fn every_pop3_command_name_is_a_label() {
        use crate::pop3::command::Command;
        for c in [
            Command::Capa,
            Command::Stls,
            Command::User(String::new()),
            Command::Pass(Vec::new()),
            Command::Auth(None, None),
            Command::Apop,
            Command::Stat,
            Command::List(None),
            Command::Retr(1),
            Command::Top(1, 1),
            Command::Uidl(None),
            Command::Dele(1),
            Command::Noop,
            Command::Rset,
            Command::Quit,
        ] {
            assert!(POP3_COMMANDS.contains(&c.name()), "{c:?}");
        }
    }

    #[test]
    fn every_command_table_row_is_a_label() {
        let names = imap_command_names();
        assert!(names.contains(&"UID FETCH") && names.contains(&"LOGIN"));
        let m = Metrics::new("maildir", names.clone());
        assert_eq!(m.commands[0].len(), names.len() + 1);
    }
}
