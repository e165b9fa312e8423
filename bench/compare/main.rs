//! mailcove against Dovecot, side by side on the same machine and the same mail (issue 8).
//!
//! Run through `bench/run` (which installs Dovecot, creates the mail user, raises limits and
//! builds in release mode): `bench/run [--quick] [--json FILE] [--servers mailcove,dovecot]`;
//! `--servers mailcove,mailcove-pg,dovecot` adds mailcove on PostgreSQL (`pg.rs`, issue 18).
//!
//! For each server in turn: a fresh copy (hard links; neither server rewrites a message file) of
//! the generated corpus, a start on loopback ports, every row in the same order, a stop. The
//! table's ratio is always "times better for mailcove": Dovecot's time over mailcove's for
//! durations and memory, mailcove's rate over Dovecot's for throughput; above 1 means mailcove
//! leads. Cross-checks (message counts, search hits, bytes) must agree between the servers, or
//! the table says so.

mod client;
mod compress;
mod corpus;
mod fts;
mod idlecurve;
mod pg;
mod plot;
mod reference;
mod rows;
mod servers;
mod sort;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use client::Result;
use corpus::{CorpusSpec, MailboxSpec, UserSpec};
use pg::Pg;
use rows::{Measured, Plan, ScalePoint};
use servers::{Kind, Running, Setup};

/// The mail users' password (all but `demo`, whose argon2id hash row 7 verifies).
const PASSWORD: &str = "benchpw";
const LMTP_USERS: usize = 8;
/// Users of the `sieve` rows, each with the 40-rule script as active Sieve script.
const SIEVE_USERS: usize = 8;
/// The database each `mailcove-pg` run works on, a fresh copy of the loaded corpus.
const PG_DB: &str = "bench";
/// Row groups the `mailcove-pg` column runs (issue 18: rows 1-6 and 8, the mixed load on 1, 2
/// and 3 nodes, the persistent mixed load on one node, and the push latency within and across
/// nodes). The others measure nothing that depends on the storage (7: logins), or need what
/// phase 1 does not have yet.
const PG_GROUPS: &[&str] = &[
    "select",
    "fetch",
    "search",
    "huge",
    "pop3",
    "lmtp",
    "sieve",
    "idle",
    "mixed",
    "persistent",
    "push",
];
/// The INBOX size of `--huge` (row 17's last point, issue 23).
const HUGE_MESSAGES: usize = 1_000_000;
/// The user whose INBOX that is.
const HUGE_USER: &str = "million";
/// Extra `mailcove-pg` nodes started for the multi-node rows (nodes 2 and 3).
const PG_EXTRA_NODES: usize = 2;

struct Args {
    quick: bool,
    json: Option<PathBuf>,
    servers: Vec<Kind>,
    /// Row groups to run (select, fetch, search, sort, thread, huge, pop3, lmtp, sieve, login,
    /// mixed, persistent, push, idle, notify, idlecurve, resync, fts, compress); all when absent.
    rows: Option<Vec<String>>,
    work: PathBuf,
    mail_user: String,
    /// `--huge`: only row 17 at 1,000,000 messages, on a corpus of its own.
    huge: bool,
    /// `--plot FILE.json,...`: draw row 17's curves from these files and stop.
    plot: Vec<PathBuf>,
    /// Where the curves go: `--plot-dir`, else `docs/perf` for `--plot` and `BENCH_DIR/plots`
    /// after a run.
    plot_dir: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        quick: false,
        json: None,
        servers: vec![Kind::Mailcove, Kind::Dovecot],
        rows: None,
        work: std::env::var_os("BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-work")),
        mail_user: std::env::var("BENCH_MAIL_USER").unwrap_or_else(|_| "mcbench".into()),
        huge: false,
        plot: Vec::new(),
        plot_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--huge" => a.huge = true,
            "--plot" => a.plot.extend(
                it.next()
                    .ok_or("--plot needs a list of JSON files")?
                    .split(',')
                    .map(PathBuf::from),
            ),
            "--plot-dir" => {
                a.plot_dir = Some(it.next().ok_or("--plot-dir needs a directory")?.into())
            }
            "--json" => a.json = Some(it.next().ok_or("--json needs a file")?.into()),
            "--servers" => {
                a.servers = it
                    .next()
                    .ok_or("--servers needs a list")?
                    .split(',')
                    .map(|s| match s {
                        "mailcove" => Ok(Kind::Mailcove),
                        "mailcove-pg" => Ok(Kind::MailcovePg),
                        "dovecot" => Ok(Kind::Dovecot),
                        other => Err(format!("unknown server {other}")),
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--rows" => {
                a.rows = Some(
                    it.next()
                        .ok_or("--rows needs a list")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                );
            }
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.huge {
        if a.quick {
            return Err("--huge and --quick exclude each other".into());
        }
        if a.rows
            .as_ref()
            .is_some_and(|r| r.iter().any(|g| g != "scaling"))
        {
            return Err("--huge runs only the scaling rows".into());
        }
        a.rows = Some(vec!["scaling".into()]);
        if a.servers.contains(&Kind::MailcovePg) {
            return Err("--huge does not run mailcove-pg".into());
        }
    }
    Ok(a)
}

fn plan(quick: bool) -> Plan {
    if quick {
        Plan {
            big: 10_000,
            mid: 1_000,
            pop3: 1_000,
            reps: 2,
            // The quick run must stay under 3 minutes on 2 cores (issue 23): one second per
            // throughput case, 500 IDLE sessions, 3 s of each mixed load, 100 push deliveries,
            // one second to settle before reading memory, and row 19 up to 2,000 connections
            // (Dovecot's 10,000 alone took 110 s of a 302-second quick run).
            secs: 1,
            idle_conns: 200,
            idle_push: 500,
            idle_users: 10,
            mixed_clients: 100,
            mixed_users: 10,
            mixed_secs: 3,
            persistent_clients: 100,
            persistent_users: 20,
            push_deliveries: 100,
            password: PASSWORD,
            scale: scale_points(&[1_000, 10_000]),
            idle_curve: vec![200, 1_000, 2_000],
            settle: Duration::from_secs(1),
        }
    } else {
        Plan {
            big: 100_000,
            mid: 10_000,
            pop3: 10_000,
            reps: 3,
            // Under 15 minutes on 2 cores (issue 23): 3 s per throughput case (hundreds to
            // thousands of deliveries or logins each), 10 s of each mixed load.
            secs: 3,
            idle_conns: 1_000,
            idle_push: 10_000,
            idle_users: 100,
            mixed_clients: 100,
            mixed_users: 10,
            mixed_secs: 10,
            persistent_clients: 100,
            persistent_users: 20,
            push_deliveries: 300,
            password: PASSWORD,
            scale: scale_points(&[1_000, 10_000, 100_000]),
            idle_curve: idlecurve::with_largest_fitting(vec![1_000, 10_000, 50_000]),
            settle: Duration::from_secs(2),
        }
    }
}

/// Row 17's points for the default runs: fresh copies (`scale1000`, ...) of user `big`'s
/// `m1000`, `m10000` and `m100000`, the corpus's own mailboxes (the full run adds `m1000`).
fn scale_points(sizes: &[usize]) -> Vec<ScalePoint> {
    sizes
        .iter()
        .map(|&n| ScalePoint {
            messages: n,
            user: "big",
            folder: format!("scale{n}"),
            copy_of: Some(format!("m{n}")),
        })
        .collect()
}

/// `--huge`: the full run's plan with row 17 at one point, the 1,000,000-message INBOX of a new
/// user (the "as a new user would").
fn huge_plan() -> Plan {
    Plan {
        scale: vec![ScalePoint {
            messages: HUGE_MESSAGES,
            user: HUGE_USER,
            folder: "INBOX".into(),
            copy_of: None,
        }],
        ..plan(false)
    }
}

/// `--huge`'s corpus: that user alone, small messages (1 kB and under), 5% unseen.
fn huge_spec() -> CorpusSpec {
    CorpusSpec {
        users: vec![UserSpec {
            name: HUGE_USER.into(),
            mailboxes: vec![MailboxSpec {
                name: "INBOX",
                messages: HUGE_MESSAGES,
                with_huge: false,
                unseen_percent: 5,
                small: true,
            }],
        }],
    }
}

fn corpus_spec(p: &Plan) -> CorpusSpec {
    let mb = |name: &'static str, messages, unseen_percent| MailboxSpec {
        name,
        messages,
        with_huge: false,
        unseen_percent,
        small: false,
    };
    // Folder names carry their size; leak the two strings once, they live for the run.
    let big: &'static str = Box::leak(format!("m{}", p.big).into_boxed_str());
    let mid: &'static str = Box::leak(format!("m{}", p.mid).into_boxed_str());
    let mut users = vec![
        UserSpec {
            name: "big".into(),
            mailboxes: vec![
                mb("INBOX", 20, 50),
                mb(mid, p.mid, 5),
                mb(big, p.big, 5),
                MailboxSpec {
                    name: "huge",
                    messages: 10,
                    with_huge: true,
                    unseen_percent: 0,
                    small: false,
                },
            ],
        },
        UserSpec {
            name: "pop".into(),
            mailboxes: vec![mb("INBOX", p.pop3, 30)],
        },
        UserSpec {
            name: "demo".into(),
            mailboxes: vec![mb("INBOX", 5, 0)],
        },
    ];
    // Row 17's points that are none of the other mailboxes (the full run's 1,000; the quick
    // run's `mid` already is one), last in `big` so the others keep their seeds.
    for pt in &p.scale {
        if let Some(name) = &pt.copy_of
            && pt.user == "big"
            && !users[0].mailboxes.iter().any(|m| m.name == name.as_str())
        {
            let name: &'static str = Box::leak(name.clone().into_boxed_str());
            users[0].mailboxes.push(mb(name, pt.messages, 5));
        }
    }
    for i in 0..p.mixed_users {
        users.push(UserSpec {
            name: format!("mix{i}"),
            mailboxes: vec![mb("INBOX", 30, 40)],
        });
    }
    for i in 0..p.persistent_users {
        users.push(UserSpec {
            name: format!("{}{i}", rows::PERSISTENT_USER_PREFIX),
            mailboxes: vec![mb("INBOX", 30, 40)],
        });
    }
    for i in 0..p.idle_users {
        users.push(UserSpec {
            name: format!("idle{i}"),
            mailboxes: vec![mb("INBOX", 5, 20)],
        });
    }
    for i in 0..LMTP_USERS {
        users.push(UserSpec {
            name: format!("lmtp{i}"),
            mailboxes: vec![mb("INBOX", 0, 0)],
        });
    }
    for i in 0..SIEVE_USERS {
        users.push(UserSpec {
            name: format!("sieve{i}"),
            mailboxes: vec![mb("INBOX", 0, 0)],
        });
    }
    CorpusSpec { users }
}

fn users_file(path: &Path, spec: &CorpusSpec) -> Result<()> {
    let params = mailcove::auth::Argon2Params {
        m_cost_kib: mailcove::limits::DEFAULT_ARGON2_M_COST_KIB,
        t_cost: mailcove::limits::DEFAULT_ARGON2_T_COST,
        p_cost: mailcove::limits::DEFAULT_ARGON2_P_COST,
    };
    let demo = mailcove::auth::admin::hash_password(b"demo", &params)?;
    // The other users get SHA512-CRYPT (5000 rounds), the scheme most Dovecot installations
    // use: cheap enough for 10,000 logins, and verified by both servers without extra work
    // (a {PLAIN} entry would cost mailcove a dummy argon2id run, by design).
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "mailcovebench", PASSWORD])
        .output()?;
    if !out.status.success() {
        return Err("openssl passwd -6 failed".into());
    }
    let sha512 = String::from_utf8(out.stdout)?.trim().to_string();
    let mut text = String::from("# Generated by bench/compare; both servers read this file.\n");
    for u in &spec.users {
        if u.name == "demo" {
            writeln!(text, "demo:{{ARGON2ID}}{demo}::::::")?;
        } else {
            if u.name.starts_with("sieve") {
                // The `sieve` rows' users have a home holding their script (both servers read
                // the same files: mailcove through this home, Dovecot through `sieve =`).
                let home = sieve_home(path, &u.name);
                writeln!(
                    text,
                    "{}:{{SHA512-CRYPT}}{sha512}::::{}::",
                    u.name,
                    home.display()
                )?;
                write_sieve_home(&home)?;
                continue;
            }
            writeln!(text, "{}:{{SHA512-CRYPT}}{sha512}::::::", u.name)?;
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// The home of a `sieve` row user, next to the users file (Dovecot's config names the same
/// place as `WORK/sievehome/%n`).
fn sieve_home(users_file: &Path, name: &str) -> PathBuf {
    users_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("sievehome")
        .join(name)
}

/// Writes the 40-rule script as the active script of a home, Pigeonhole's layout
/// (`~/sieve/bench.sieve`, `~/.dovecot.sieve` linking to it), writable by the mail user (Dovecot
/// stores its compiled `.svbin` next to the script).
fn write_sieve_home(home: &Path) -> Result<()> {
    let dir = home.join("sieve");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("bench.sieve"),
        include_str!("../sieve-40-rules.sieve"),
    )?;
    let link = home.join(".dovecot.sieve");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("sieve/bench.sieve", &link)?;
    for d in [home.parent().unwrap_or(home), home, &dir] {
        chmod(d, 0o777)?;
    }
    chmod(&dir.join("bench.sieve"), 0o666)?;
    Ok(())
}

/// Reads every regular file under `dir` (to bring it into the page cache); the bytes read.
fn read_tree(dir: &Path) -> Result<u64> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                let mut f = std::fs::File::open(entry.path())?;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
        }
    }
    Ok(total)
}

/// A hard-linked copy of `user`'s corpus folder `from` as the folder `to` of the server's tree
/// (`dir/mail/<user>/.<to>`), owned by the mail user.
fn fresh_copy(
    corpus: &Path,
    dir: &Path,
    user: &str,
    from: &str,
    to: &str,
    mail_user: &str,
) -> Result<()> {
    let dst = dir.join("mail").join(user).join(format!(".{to}"));
    sh(Command::new("cp")
        .arg("-al")
        .arg(corpus.join(user).join(format!(".{from}")))
        .arg(&dst))?;
    // cp -a keeps the corpus directories' owner (root); the files are the shared inodes
    // chowned with the tree.
    sh(Command::new("chown")
        .arg(format!("{0}:{0}", mail_user))
        .arg(&dst)
        .arg(dst.join("cur"))
        .arg(dst.join("new"))
        .arg(dst.join("tmp")))?;
    Ok(())
}

fn sh(cmd: &mut Command) -> Result<()> {
    let st = cmd.status()?;
    if !st.success() {
        return Err(format!("{cmd:?} failed: {st}").into());
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_server(
    kind: Kind,
    a: &Args,
    p: &Plan,
    corpus: &Path,
    users: &Path,
    tls_dir: &Path,
    pg: Option<&Pg>,
    pg_template: &str,
) -> Result<Measured> {
    eprintln!("{}", rows::banner(kind));
    let dir = a.work.join(kind.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.join("home"))?;
    let t = Instant::now();
    let pg = match (kind, pg) {
        (Kind::MailcovePg, Some(pg)) => {
            pg.fresh_copy(PG_DB, pg_template)?;
            Some(pg)
        }
        (Kind::MailcovePg, None) => return Err("mailcove-pg without a database".into()),
        _ => {
            sh(Command::new("cp")
                .arg("-al")
                .arg(corpus)
                .arg(dir.join("mail")))?;
            eprintln!("  copied the corpus in {:.1} s", t.elapsed().as_secs_f64());
            None
        }
    };
    sh(Command::new("chown")
        .arg("-R")
        .arg(format!("{0}:{0}", a.mail_user))
        .arg(&dir))?;
    chmod(&dir, 0o755)?;
    let want = |g: &str| {
        a.rows.as_ref().is_none_or(|r| r.iter().any(|x| x == g))
            && (kind != Kind::MailcovePg || PG_GROUPS.contains(&g))
    };
    // Both servers start from the same page-cache state: every message file read once just
    // before. Without this, whichever server ran first paid for reading evicted files from disk
    // on its "first" rows and the second found them cached. For PostgreSQL: the cluster's files
    // (the fresh copy and its template), the same mail in the database's pages.
    let t = Instant::now();
    let bytes = match pg {
        Some(pg) => read_tree(&pg.data_dir().join("base"))?,
        None => read_tree(&dir.join("mail"))?,
    };
    eprintln!(
        "  read {} MB of mail into the page cache in {:.1} s",
        bytes / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    // The SORT and THREAD rows each get their own copy of the big mailbox, so each "first" is
    // the first time the server computes sort keys for it, whatever ran before. Made after the
    // page-cache read: the copies are the same files.
    let t = Instant::now();
    let fresh = sort::fresh_folders(want);
    let big = format!("m{}", p.big);
    for folder in &fresh {
        fresh_copy(corpus, &dir, "big", &big, folder, &a.mail_user)?;
    }
    if !fresh.is_empty() {
        eprintln!(
            "  made {} fresh copies of m{} for the SORT/THREAD rows in {:.1} s",
            fresh.len(),
            p.big,
            t.elapsed().as_secs_f64()
        );
    }
    // Row 17's mailboxes, for the same reason: its cold SELECT is the server's first sight of
    // each, whatever rows ran before. (Not in `PG_GROUPS`: the copies are Maildir folders.)
    if want("scaling") {
        let t = Instant::now();
        let mut copied = 0;
        for pt in &p.scale {
            if let Some(from) = &pt.copy_of {
                fresh_copy(corpus, &dir, pt.user, from, &pt.folder, &a.mail_user)?;
                copied += 1;
            }
        }
        if copied > 0 {
            eprintln!(
                "  made {copied} fresh copies for the scaling rows in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    let setup = Setup {
        dir: &dir,
        users_file: users,
        cert: &tls_dir.join("cert.pem"),
        key: &tls_dir.join("key.pem"),
        mail_user: &a.mail_user,
        max_conns: p.idle_push.max(p.idle_conns).max(if want("idlecurve") {
            idlecurve::max_conns(kind, p)
        } else {
            0
        }) + p.mixed_clients.max(p.persistent_clients),
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_mailcove"));
    let start = || -> Result<Running> {
        Ok(match (kind, pg) {
            (Kind::Mailcove, _) => servers::start_mailcove(&setup, bin)?,
            (Kind::MailcovePg, Some(pg)) => {
                servers::start_mailcove_pg(&setup, bin, &pg.url(PG_DB), 0)?
            }
            (Kind::MailcovePg, None) => return Err("mailcove-pg without a database".into()),
            (Kind::Dovecot, _) => servers::start_dovecot(&setup)?,
        })
    };
    let s = start()?;
    let tls = client::tls_config(&tls_dir.join("cert.pem"))?;
    let mut m = Measured::default();
    let t = Instant::now();
    if want("select") {
        rows::select_rows(&s, p, &mut m).await?;
    }
    if want("fetch") {
        rows::fetch_rows(&s, p, &mut m).await?;
    }
    if want("search") {
        rows::search_rows(&s, p, &mut m).await?;
    }
    if want("scaling") {
        rows::scaling_rows(&s, p, &mut m).await?;
    }
    if want("sort") || want("thread") {
        sort::sort_rows(&s, p, want, &mut m).await?;
    }
    if want("compress") {
        compress::compress_rows(&s, p, &mut m).await?;
    }
    if want("huge") {
        // The reference first: after the server's rows it would share the machine with
        // whatever the server still does in the background.
        reference::huge_reference(corpus, p, &mut m).await?;
        rows::huge_rows(&s, p, &mut m).await?;
    }
    if want("append") {
        rows::append_rows(&s, p, &mut m).await?;
    }
    if want("pop3") {
        reference::pop3_reference(corpus, p, &mut m).await?;
        rows::pop3_row(&s, p, &mut m).await?;
    }
    if want("lmtp") {
        rows::lmtp_row(&s, p, &mut m).await?;
    }
    if want("sieve") {
        rows::sieve_row(&s, p, &mut m).await?;
    }
    if want("login") {
        rows::login_row(&s, p, &mut m).await?;
    }
    // mailcove-pg: the mixed load on 1, 2 and 3 nodes sharing the database (the one-node
    // figure is also its row 9), and the push latency from node 1 to node 2.
    let mut extra = Vec::new();
    if let Some(pg) = pg
        && (want("mixed") || want("push"))
    {
        while extra.len() < PG_EXTRA_NODES {
            let node = extra.len() + 1;
            extra.push(servers::start_mailcove_pg(
                &setup,
                bin,
                &pg.url(PG_DB),
                node,
            )?);
        }
    }
    if want("mixed") {
        if kind == Kind::MailcovePg {
            for nodes in 1..=1 + extra.len() {
                let ports: Vec<u16> = std::iter::once(s.ports.imap)
                    .chain(extra.iter().take(nodes - 1).map(|r| r.ports.imap))
                    .collect();
                let key = format!("mixed_nodes{nodes}");
                rows::mixed_on(&ports, p, &mut m, &key).await?;
                if nodes == 1 {
                    for k in ["cmds_per_sec", "p99_ms"] {
                        if let Some(v) = m.values.get(&format!("{key}_{k}")).copied() {
                            m.values.insert(format!("mixed_{k}"), v);
                        }
                    }
                }
            }
        } else {
            rows::mixed_row(&s, p, &mut m).await?;
        }
    }
    if want("persistent") {
        rows::persistent_row(&s, p, &mut m).await?;
    }
    if want("push") {
        rows::push_row(s.ports.lmtp, s.ports.imap, p, &mut m, "push_same").await?;
        if let Some(b) = extra.first() {
            rows::push_row(s.ports.lmtp, b.ports.imap, p, &mut m, "push_cross").await?;
        }
    }
    // The extra nodes stop before the memory rows, which measure node 1 alone.
    for r in extra {
        r.stop();
    }
    if want("idle") {
        rows::idle_rows(&s, p, tls, &mut m).await?;
        if let Some(pid) = pg.and_then(Pg::pid) {
            // Not in the per-connection figures (the pool is 16 connections however many
            // clients), but the column's whole cost: PostgreSQL's own memory.
            let (pss, _, procs) = servers::tree_memory(pid);
            m.info("postgres_pss_mib", pss / 1024);
            m.info("postgres_processes", procs);
        }
    }
    if want("notify") {
        rows::notify_row(&s, p, &mut m).await?;
    }
    // Last: it changes the big mailbox (flags, expunges) that rows 1, 2 and 4 read.
    if want("resync") {
        rows::resync_rows(&s, p, &mut m).await?;
    }
    // Row 19 on a freshly started server: after rows 8 and 15 (10,000 connections each), a
    // process keeps the heap they freed, and new connections reuse it rather than grow PSS, so
    // the growth per connection would read near zero (0.7 KiB at 1,000 in a full run).
    let s = if want("idlecurve") {
        s.stop();
        let s = start()?;
        idlecurve::idlecurve_rows(&s, p, &mut m).await?;
        s
    } else {
        s
    };
    // Row 16 last of all: it restarts the server (Dovecot with fts-xapian; mailcove without its
    // index for the cross-check).
    let s = if want("fts") {
        fts::fts_rows(s, &setup, bin, p, &mut m).await?
    } else {
        s
    };
    eprintln!(
        "  {} rows took {:.0} s",
        kind.name(),
        t.elapsed().as_secs_f64()
    );
    s.stop();
    Ok(m)
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "null".into(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = args()?;
    if !a.plot.is_empty() {
        let texts = a
            .plot
            .iter()
            .map(|f| std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display())))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let dir = a
            .plot_dir
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/perf"));
        for f in plot::plot(&texts, &dir)? {
            eprintln!("wrote {}", f.display());
        }
        return Ok(());
    }
    let p = if a.huge { huge_plan() } else { plan(a.quick) };
    std::fs::create_dir_all(&a.work)?;
    chmod(&a.work, 0o755)?;
    let (spec, label, corpus_dir) = if a.huge {
        (
            huge_spec(),
            format!("huge v1 {HUGE_MESSAGES}"),
            a.work.join("corpus-huge"),
        )
    } else {
        let label = format!(
            "v2 {} {} {} {} {} {} {}",
            p.big, p.mid, p.pop3, p.idle_users, p.mixed_users, p.persistent_users, LMTP_USERS
        );
        let dir = a.work.join(if a.quick {
            "corpus-quick"
        } else {
            "corpus-full"
        });
        (corpus_spec(&p), label, dir)
    };
    let t = Instant::now();
    let written = corpus::ensure(&corpus_dir, &spec, &label)?;
    let (msgs, bytes) = written
        .iter()
        .fold((0, 0), |(m, b), (_, _, w)| (m + w.messages, b + w.bytes));
    eprintln!(
        "corpus: {msgs} messages, {:.0} MB, ready in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let users = a.work.join("users");
    users_file(&users, &spec)?;
    chmod(&users, 0o644)?;
    let tls_dir = a.work.join("tls");
    std::fs::create_dir_all(&tls_dir)?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    std::fs::write(tls_dir.join("cert.pem"), cert.cert.pem())?;
    std::fs::write(tls_dir.join("key.pem"), cert.signing_key.serialize_pem())?;
    chmod(&tls_dir.join("key.pem"), 0o644)?;
    let pg_template = if a.quick {
        "corpus_quick"
    } else {
        "corpus_full"
    };
    let pg = if a.servers.contains(&Kind::MailcovePg) {
        let pg = Pg::start(&a.work, &a.mail_user)?;
        let load_dir = a.work.join("mailcove-pg-load");
        std::fs::create_dir_all(load_dir.join("home"))?;
        sh(Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", a.mail_user))
            .arg(&load_dir))?;
        let setup = Setup {
            dir: &load_dir,
            users_file: &users,
            cert: &tls_dir.join("cert.pem"),
            key: &tls_dir.join("key.pem"),
            mail_user: &a.mail_user,
            max_conns: 100,
        };
        let bin = Path::new(env!("CARGO_BIN_EXE_mailcove"));
        pg.ensure_corpus(pg_template, &label, &corpus_dir, &spec, PASSWORD, |url| {
            let r = servers::start_mailcove_pg(&setup, bin, &url, 0)?;
            Ok((r.ports.imap, r))
        })
        .await?;
        Some(pg)
    } else {
        None
    };
    let started = Instant::now();
    let mut results: Vec<(Kind, Measured)> = Vec::new();
    for kind in &a.servers {
        let m = run_server(
            *kind,
            &a,
            &p,
            &corpus_dir,
            &users,
            &tls_dir,
            pg.as_ref(),
            pg_template,
        )
        .await?;
        sort::write_orders(&a.work.join(kind.name()).join("answers"), &m)?;
        results.push((*kind, m));
    }
    let get = |kind: Kind, key: &str| {
        results
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, m)| m.values.get(key).copied())
    };
    // A server's time for `key` over the physical reference it is measured against.
    let reference_gap = |kind: Kind, key: &str| {
        let (r, _) = rows::REFERENCES
            .iter()
            .find(|(_, keys)| keys.contains(&key))?;
        match (get(kind, key), get(kind, r)) {
            (Some(v), Some(r)) if r > 0.0 => Some(v / r),
            _ => None,
        }
    };
    // Why a server has no value for a row it ran ("n/a (BAD)").
    let not_measured = |kind: Kind, key: &str| {
        results
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, m)| m.not_measured.get(key).cloned())
    };
    // A value, or why there is none, or "-" for a row that did not run.
    let cell = |kind: Kind, key: &str| match get(kind, key) {
        Some(v) => fmt_value(Some(v)),
        None => not_measured(kind, key).unwrap_or_else(|| fmt_value(None)),
    };
    let mut table = String::new();
    let mut json = String::from("[\n");
    // The mailcove-pg column (and its ratio against Dovecot) only when it ran.
    let with_pg = a.servers.contains(&Kind::MailcovePg);
    let ratio_of = |x: Option<f64>, d: Option<f64>, higher: bool| match (x, d) {
        (Some(x), Some(d)) if x > 0.0 && d > 0.0 => Some(if higher { x / d } else { d / x }),
        _ => None,
    };
    let fmt_ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
    write!(
        table,
        "\n{:<58} {:>6} {:>10} {:>10} {:>7}",
        "row", "unit", "mailcove", "dovecot", "ratio"
    )?;
    if with_pg {
        write!(table, " {:>11} {:>7}", "mailcove-pg", "pg/dc")?;
    }
    writeln!(table)?;
    // `--huge` measures row 17 alone: only its rows.
    let rows = if a.huge {
        rows::scale_table_rows(&p)
    } else {
        rows::table(&p)
    };
    for (i, (key, label, unit, higher)) in rows.iter().enumerate() {
        let (mc, dc) = (get(Kind::Mailcove, key), get(Kind::Dovecot, key));
        let pgv = get(Kind::MailcovePg, key);
        // A reference row compares no servers: no ratio.
        let reference = rows::is_reference(key);
        let ratio = ratio_of(mc, dc, *higher).filter(|_| !reference);
        let ratio_pg = ratio_of(pgv, dc, *higher).filter(|_| !reference);
        write!(
            table,
            "{label:<58} {unit:>6} {:>10} {:>10} {:>7}",
            cell(Kind::Mailcove, key),
            cell(Kind::Dovecot, key),
            fmt_ratio(ratio)
        )?;
        if with_pg {
            write!(
                table,
                " {:>11} {:>7}",
                cell(Kind::MailcovePg, key),
                fmt_ratio(ratio_pg)
            )?;
        }
        writeln!(table)?;
        // "n/a (BAD)" and the like, for a null value a server was asked for.
        let notes: Vec<String> = [Kind::Mailcove, Kind::MailcovePg, Kind::Dovecot]
            .into_iter()
            .filter_map(|k| {
                not_measured(k, key).map(|n| format!("{}: {}", json_str(k.name()), json_str(&n)))
            })
            .collect();
        let mut notes = if notes.is_empty() {
            String::new()
        } else {
            format!(", \"not_measured\": {{{}}}", notes.join(", "))
        };
        // Rows 3 and 5: each server's time over the physical reference measured in its run.
        let gaps: Vec<String> = [Kind::Mailcove, Kind::MailcovePg, Kind::Dovecot]
            .into_iter()
            .filter_map(|k| {
                reference_gap(k, key)
                    .map(|g| format!("{}: {}", json_str(k.name()), json_num(Some(g))))
            })
            .collect();
        if reference {
            notes.push_str(", \"reference\": true");
        }
        if !gaps.is_empty() {
            write!(notes, ", \"times_reference\": {{{}}}", gaps.join(", "))?;
        }
        writeln!(
            json,
            "  {{\"row\": {}, \"key\": {}, \"unit\": {}, \"mailcove\": {}, \"dovecot\": {}, \"ratio\": {}, \"mailcove_pg\": {}, \"ratio_pg\": {}, \"better\": \"{}\"{notes}}}{}",
            json_str(label),
            json_str(key),
            json_str(unit),
            json_num(mc),
            json_num(dc),
            json_num(ratio),
            json_num(pgv),
            json_num(ratio_pg),
            if *higher { "higher" } else { "lower" },
            if i + 1 < rows.len() { "," } else { "" }
        )?;
    }
    json.push_str("]\n");
    let mut gap_lines = Vec::new();
    for (r, keys) in rows::REFERENCES {
        for key in *keys {
            let Some((_, label, ..)) = rows.iter().find(|(k, ..)| k == key) else {
                continue;
            };
            let cells: Vec<String> = a
                .servers
                .iter()
                .filter_map(|&k| {
                    reference_gap(k, key)
                        .map(|g| format!("{} {g:.2}x ({} ms)", k.name(), fmt_value(get(k, r))))
                })
                .collect();
            if !cells.is_empty() {
                gap_lines.push(format!("  {label:<56} {}", cells.join("  ")));
            }
        }
    }
    if !gap_lines.is_empty() {
        writeln!(
            table,
            "\ntimes the physical reference (the server's time over the sendfile reference of \
             the same bytes, measured in its run; 1x is the machine's limit):"
        )?;
        for l in gap_lines {
            writeln!(table, "{l}")?;
        }
    }
    writeln!(table, "\ncross-checks (must agree):")?;
    let mut keys: Vec<&String> = results.iter().flat_map(|(_, m)| m.checks.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let vals: Vec<String> = results
            .iter()
            .map(|(kind, m)| {
                format!(
                    "{}={}",
                    kind.name(),
                    m.checks.get(k).map_or("-", String::as_str)
                )
            })
            .collect();
        writeln!(table, "  {k:<32} {}", vals.join("  "))?;
    }
    let orders = sort::compare_orders(&results);
    if !orders.is_empty() {
        writeln!(
            table,
            "\nSORT/THREAD answers compared (a difference is a warning, not a failure; \
             the answers are in {}/<server>/answers):",
            a.work.display()
        )?;
        for line in orders {
            writeln!(table, "{line}")?;
        }
    }
    writeln!(table, "\nper-server facts:")?;
    for (kind, m) in &results {
        for (k, v) in &m.info {
            writeln!(table, "  {:<9} {k:<32} {v}", kind.name())?;
        }
    }
    writeln!(
        table,
        "\n{} run, {} s for the servers; ratio = times better for mailcove{}.",
        if a.huge {
            "huge"
        } else if a.quick {
            "quick"
        } else {
            "full"
        },
        started.elapsed().as_secs(),
        if with_pg {
            ", pg/dc = times better for mailcove on PostgreSQL"
        } else {
            ""
        }
    )?;
    println!("{table}");
    if let Some(path) = &a.json {
        std::fs::write(path, &json)?;
        eprintln!("wrote {}", path.display());
    }
    // Rows 17's and 19's curves from this run's figures (`--plot` redraws them from saved JSON
    // files).
    if results.iter().any(|(_, m)| {
        m.values
            .keys()
            .any(|k| k.starts_with("scale_") || k.starts_with("idlecurve_"))
    }) {
        let dir = a.plot_dir.clone().unwrap_or_else(|| a.work.join("plots"));
        for f in plot::plot(&[json], &dir)? {
            eprintln!("wrote {}", f.display());
        }
    }
    Ok(())
}
