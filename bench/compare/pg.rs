//! The PostgreSQL the `mailcove-pg` column runs on (issue 18): Debian's `postgresql` package
//! (`bench/run` installs it), a cluster of its own in `BENCH_DIR/pg` made with `initdb` and run
//! with `pg_ctl` as the unprivileged mail user (PostgreSQL refuses root), on a free loopback port.
//!
//! Durability equals the Maildir column's fsync: `fsync = on`, `synchronous_commit = on`,
//! `full_page_writes = on` (PostgreSQL's defaults, written down so nobody "tunes" them away), so
//! an APPEND OK or LMTP 250 means the WAL record is on disk. The rest is the usual sizing of a
//! dedicated database machine, scaled to this one: `shared_buffers` of 1 GB (the full corpus is
//! about 1.1 GB), WAL large enough that loading the corpus does not checkpoint every few seconds,
//! and room for three nodes' pools.
//!
//! The corpus is loaded once into a template database (`corpus_quick` / `corpus_full`) through
//! mailcove itself, by MULTIAPPEND of the same Maildir files the other columns read (flags
//! kept, in file-name order so message numbers match), and kept across runs while `BENCH_DIR/pg`
//! lives. Each run then gets a fresh `CREATE DATABASE ... TEMPLATE` copy, as the Maildir columns
//! get a fresh hard-linked copy: the rows change mail (LMTP, IDLE pushes, the mixed load).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use crate::client::{Imap, Result};
use crate::corpus::CorpusSpec;

/// The role mailcove connects as (the cluster's superuser; loopback only, `trust`: each node
/// opens its pool's connections once, so authentication cost is in no row).
const ROLE: &str = "mailcove";

/// Settings appended to the cluster's `postgresql.conf` by `initdb` time.
const SETTINGS: &str = "\n# bench/compare (mailcove): durability as Maildir's fsync, sized for the corpus.\n\
fsync = on\n\
synchronous_commit = on\n\
full_page_writes = on\n\
shared_buffers = 1GB\n\
effective_cache_size = 8GB\n\
work_mem = 16MB\n\
maintenance_work_mem = 256MB\n\
max_wal_size = 8GB\n\
checkpoint_timeout = 15min\n\
random_page_cost = 1.1\n\
max_connections = 200\n\
listen_addresses = '127.0.0.1'\n";

/// Messages of one MULTIAPPEND while loading (mailcove's `MAX_MULTIAPPEND_MESSAGES`).
const LOAD_BATCH: usize = 100;
/// Bytes of one MULTIAPPEND while loading, at most (the 10 MB message goes on its own).
const LOAD_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Users loaded at once (each user's writes are serialised on its `users` row anyway).
const LOAD_USERS_AT_ONCE: usize = 4;

/// A running cluster; stopped (fast shutdown) when dropped.
pub struct Pg {
    dir: PathBuf,
    pub port: u16,
    mail_user: String,
}

fn pg_bin(name: &str) -> Result<PathBuf> {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed (Debian package postgresql): {e}"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    Ok(versions
        .last()
        .ok_or("no PostgreSQL under /usr/lib/postgresql")?
        .join("bin")
        .join(name))
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Pg {
    /// Starts the cluster in `work/pg`, creating it first when missing.
    pub fn start(work: &Path, mail_user: &str) -> Result<Pg> {
        let dir = work.join("pg");
        let data = dir.join("data");
        fs::create_dir_all(&dir)?;
        crate::sh(
            Command::new("chown")
                .arg(format!("{mail_user}:{mail_user}"))
                .arg(&dir),
        )?;
        if !data.join("PG_VERSION").exists() {
            let t = Instant::now();
            run(Command::new("runuser")
                .args(["-u", mail_user, "--"])
                .arg(pg_bin("initdb")?)
                .arg("-D")
                .arg(&data)
                .args(["-U", ROLE, "--auth=trust", "--locale=C", "-E", "UTF8"])
                .current_dir(&dir))?;
            // Appending keeps the file's owner (the mail user).
            use std::io::Write;
            fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))?
                .write_all(SETTINGS.as_bytes())?;
            eprintln!(
                "postgresql: made a cluster in {} in {:.1} s",
                data.display(),
                t.elapsed().as_secs_f64()
            );
        }
        let port = crate::servers::Ports::free()?.imap;
        let pg = Pg {
            dir,
            port,
            mail_user: mail_user.to_string(),
        };
        if data.join("postmaster.pid").exists() {
            // A run that was interrupted (Ctrl-C) left its server running: stop it first.
            pg.stop();
        }
        run(Command::new("runuser")
            .args(["-u", mail_user, "--"])
            .arg(pg_bin("pg_ctl")?)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.join("server.log"))
            .arg("-o")
            .arg(format!("-p {port} -k {}", pg.dir.display()))
            .args(["-w", "-t", "120", "start"])
            .current_dir(&pg.dir))?;
        let version = pg.query("postgres", "SHOW server_version")?;
        eprintln!("postgresql {} on 127.0.0.1:{port}", version.trim());
        Ok(pg)
    }

    /// Runs `sql` in database `db`; its output rows, unaligned.
    pub fn query(&self, db: &str, sql: &str) -> Result<String> {
        run(Command::new(pg_bin("psql")?)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", ROLE, "-d", db, "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql]))
    }

    /// The `[mail] location` of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{ROLE}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The postmaster's process id (its tree is the database's memory).
    pub fn pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn exists(&self, db: &str) -> Result<bool> {
        Ok(self
            .query(
                "postgres",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
            )?
            .trim()
            == "1")
    }

    /// A new database `db`, a copy of `template` (any older `db` dropped first).
    pub fn fresh_copy(&self, db: &str, template: &str) -> Result<()> {
        let t = Instant::now();
        self.query(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        // FILE_COPY: copies the template's files instead of writing every block to the WAL.
        self.query(
            "postgres",
            &format!("CREATE DATABASE \"{db}\" TEMPLATE \"{template}\" STRATEGY FILE_COPY"),
        )?;
        eprintln!(
            "  copied database {template} to {db} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Makes sure database `template` holds the corpus `label` names, loading it through a
    /// mailcove started on it (`start` returns its IMAP port and stops it when dropped) when not.
    pub async fn ensure_corpus<S>(
        &self,
        template: &str,
        label: &str,
        corpus: &Path,
        spec: &CorpusSpec,
        password: &'static str,
        start: impl FnOnce(String) -> Result<(u16, S)>,
    ) -> Result<()> {
        let stamp = self.dir.join(format!("{template}.complete"));
        if fs::read_to_string(&stamp).ok().as_deref() == Some(label) && self.exists(template)? {
            eprintln!("postgresql: database {template} holds the corpus already");
            return Ok(());
        }
        let _ = fs::remove_file(&stamp);
        self.query(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{template}\" WITH (FORCE)"),
        )?;
        self.query("postgres", &format!("CREATE DATABASE \"{template}\""))?;
        let (port, server) = start(self.url(template))?;
        let t = Instant::now();
        let (msgs, bytes) = load(port, corpus, spec, password).await?;
        drop(server);
        // Planner statistics and the visibility map, as autovacuum leaves a live database a
        // minute after a bulk load. Without them a copy made at once has none, and the planner
        // reads `uid = ANY(..)` batches through the (user, mailbox, modseq) index, filtering
        // the whole mailbox for each batch: SEARCH TEXT over 10,000 messages took 2.5x longer.
        self.query(template, "VACUUM (ANALYZE)")?;
        // The template's pages to disk now, not during the first row of the first run.
        self.query("postgres", "CHECKPOINT")?;
        eprintln!(
            "postgresql: loaded {msgs} messages, {:.0} MB into {template} through MULTIAPPEND \
             in {:.1} s ({:.0} msg/s)",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            msgs as f64 / t.elapsed().as_secs_f64()
        );
        fs::write(&stamp, label)?;
        Ok(())
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Pg {
    /// Fast shutdown (`pg_ctl stop -m fast`), waiting for it; quiet when nothing runs.
    fn stop(&self) {
        if let Ok(ctl) = pg_bin("pg_ctl") {
            let _ = Command::new("runuser")
                .args(["-u", &self.mail_user, "--"])
                .arg(ctl)
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"])
                .current_dir(&self.dir)
                .output();
        }
    }
}

/// One message file of the corpus: its place in the mailbox and its IMAP flags.
struct File {
    index: u64,
    path: PathBuf,
    flags: String,
}

/// The messages of a Maildir folder in file-name order (generation order: both Maildir servers
/// number them so), with the flags of their `:2,` suffix.
fn folder_files(dir: &Path) -> Result<Vec<File>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        for e in fs::read_dir(dir.join(sub))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            // "<time>.M<index>P4242.bench,S=..,W=..[:2,FLAGS]"
            let index = name
                .split_once(".M")
                .and_then(|(_, r)| r.split_once('P'))
                .and_then(|(i, _)| i.parse().ok())
                .ok_or_else(|| format!("unexpected corpus file name {name}"))?;
            let mut flags = Vec::new();
            if let Some((_, f)) = name.split_once(":2,") {
                for c in f.chars() {
                    flags.push(match c {
                        'F' => "\\Flagged",
                        'R' => "\\Answered",
                        'S' => "\\Seen",
                        'T' => "\\Deleted",
                        'D' => "\\Draft",
                        _ => continue,
                    });
                }
            }
            out.push(File {
                index,
                path: e.path(),
                flags: flags.join(" "),
            });
        }
    }
    out.sort_by_key(|f| f.index);
    Ok(out)
}

/// LF line ends as CRLF, as an MTA hands a message over SMTP/LMTP (the Maildir columns serve
/// the same files with CRLF, so sizes and bytes agree).
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Loads every mailbox of `spec` from the Maildir `corpus` into the mailcove on `port`;
/// (messages, bytes) sent.
async fn load(port: u16, corpus: &Path, spec: &CorpusSpec, pw: &'static str) -> Result<(u64, u64)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(LOAD_USERS_AT_ONCE));
    let mut tasks = Vec::new();
    for u in &spec.users {
        let sem = Arc::clone(&sem);
        let user = u.name.clone();
        let boxes: Vec<(String, PathBuf)> = u
            .mailboxes
            .iter()
            .map(|m| {
                let dir = if m.name == "INBOX" {
                    corpus.join(&user)
                } else {
                    corpus.join(&user).join(format!(".{}", m.name))
                };
                (m.name.to_string(), dir)
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let mut c = Imap::connect(port).await?;
            // `demo` has its own password (row 7's argon2id entry, main.rs).
            c.login(&user, if user == "demo" { "demo" } else { pw })
                .await?;
            let (mut msgs, mut bytes) = (0u64, 0u64);
            for (name, dir) in boxes {
                if name != "INBOX" {
                    c.ok(&format!("CREATE {name}"), false).await?;
                }
                let files = folder_files(&dir)?;
                let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
                let mut batch_bytes = 0;
                for (i, f) in files.iter().enumerate() {
                    let data = crlf(&fs::read(&f.path)?);
                    batch_bytes += data.len();
                    bytes += data.len() as u64;
                    batch.push((f.flags.clone(), data));
                    if batch.len() == LOAD_BATCH
                        || batch_bytes >= LOAD_BATCH_BYTES
                        || i + 1 == files.len()
                    {
                        multiappend(&mut c, &name, &batch).await?;
                        msgs += batch.len() as u64;
                        batch.clear();
                        batch_bytes = 0;
                    }
                }
                if files.len() >= 10_000 {
                    eprintln!("  loaded {user}/{name}: {} messages", files.len());
                }
            }
            // Every user has its INBOX in the database before the rows start, as every
            // user has its Maildir in the other columns.
            c.ok("SELECT INBOX", false).await?;
            let _ = c.cmd("LOGOUT", false).await;
            Result::Ok((msgs, bytes))
        }));
    }
    let (mut msgs, mut bytes) = (0, 0);
    for t in tasks {
        let (m, b) = t.await??;
        msgs += m;
        bytes += b;
    }
    Ok((msgs, bytes))
}

/// One MULTIAPPEND (RFC 3502) of `msgs` (flags, content) with non-synchronizing literals.
async fn multiappend(c: &mut Imap, mailbox: &str, msgs: &[(String, Vec<u8>)]) -> Result<()> {
    let mut head = String::new();
    let mut data = Vec::new();
    for (flags, msg) in msgs {
        head.clear();
        write!(head, " ({flags}) {{{}+}}\r\n", msg.len())?;
        data.extend_from_slice(head.as_bytes());
        data.extend_from_slice(msg);
    }
    c.append_raw(mailbox, &data).await?;
    Ok(())
}
