//! Starting, measuring and stopping the two servers with equivalent settings.
//!
//! Both serve the same users file (Dovecot's passwd-file format, which mailcove reads as is),
//! each its own copy of the same Maildir tree, as the same unprivileged system user, on loopback,
//! with fsync on (mailcove always syncs file and directory before acknowledging; Dovecot runs
//! with `mail_fsync = optimized`, its shipped default, which syncs each saved message before
//! acknowledging it and leaves its rebuildable index files to the page cache). Dovecot keeps its
//! index files as it ships (in the Maildir), its default high-security login processes and one
//! `imap` process per connection; only the limits a 10,000-connection run needs are raised.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Result;

/// Which server a measurement is of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Mailcove,
    /// mailcove on the PostgreSQL storage backend (issue 18), against a PostgreSQL the bench
    /// starts itself (`pg.rs`).
    MailcovePg,
    Dovecot,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mailcove => "mailcove",
            Kind::MailcovePg => "mailcove-pg",
            Kind::Dovecot => "dovecot",
        }
    }
}

/// The ports one server listens on.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub lmtp: u16,
}

impl Ports {
    pub fn free() -> Result<Ports> {
        // Hold all four at once so they differ.
        let ls: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<_>>()?;
        let p: Vec<u16> = ls
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<_>>()?;
        Ok(Ports {
            imap: p[0],
            imaps: p[1],
            pop3: p[2],
            lmtp: p[3],
        })
    }
}

/// A running server.
pub struct Running {
    pub ports: Ports,
    child: Child,
    /// The process whose tree is the server (mailcove itself, Dovecot's master).
    pub pid: u32,
    /// Which server, and its configuration file (rewritten by [`Running::set_login_cache`]).
    kind: Kind,
    conf: std::path::PathBuf,
}

impl Running {
    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        // SAFETY-free: kill(2) via the command-line tool keeps this file free of unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Dovecot's children outlive the master by a moment.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Turns the server's login cache on or off and reloads its configuration (SIGHUP, which
    /// both servers answer by reading it again): mailcove's verified-credential cache
    /// (`credential_cache_secs`), Dovecot's auth cache (`auth_cache_size`/`auth_cache_ttl`).
    pub fn set_login_cache(&self, on: bool) -> Result<()> {
        let text = fs::read_to_string(&self.conf)?;
        let (plain, cached) = match self.kind {
            Kind::Mailcove | Kind::MailcovePg => (
                "hash_queue = 100000\n",
                "hash_queue = 100000\ncredential_cache_secs = 3600\n",
            ),
            Kind::Dovecot => (
                "auth_username_format = %Ln\n",
                "auth_username_format = %Ln\nauth_cache_size = 10M\nauth_cache_ttl = 1 hour\n",
            ),
        };
        let text = if on {
            text.replacen(plain, cached, 1)
        } else {
            text.replacen(cached, plain, 1)
        };
        fs::write(&self.conf, text)?;
        Command::new("kill")
            .args(["-HUP", &self.pid.to_string()])
            .status()?;
        // Both reload in well under a second; the next row must not race the reload.
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    }

    /// Which server this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its configuration file (the admin CLIs, `mailcove index` and `doveadm`, read it too).
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// Memory of the server's whole process tree: (PSS, RSS) in KiB, and the process count.
    pub fn memory(&self) -> (u64, u64, usize) {
        tree_memory(self.pid)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on {port}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Common paths of a benchmark run.
pub struct Setup<'a> {
    /// This server's working directory (its mail lives in `dir/mail`).
    pub dir: &'a Path,
    pub users_file: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    /// The system user both servers serve mail as.
    pub mail_user: &'a str,
    pub max_conns: usize,
}

/// Starts mailcove (the binary cargo built for this bench) for rows 1-15, without its full-text
/// index: Dovecot runs those rows without an FTS plugin, so both servers do the same work (the
/// index's background build after the first search and its indexing on arrival would otherwise
/// run beside the next rows on 2 cores). Row 16 compares the two with their indexes.
pub fn start_mailcove(s: &Setup, bin: &Path) -> Result<Running> {
    start_mailcove_with(s, bin, "fts = false")
}

/// [`start_mailcove`] with `mail_extra` added to its `[mail]` table (`fts = false`).
pub fn start_mailcove_with(s: &Setup, bin: &Path, mail_extra: &str) -> Result<Running> {
    let location = format!("{}/mail/%n", s.dir.display());
    start_mailcove_node(s, bin, &location, &format!("fsync = true\n{mail_extra}"), 0)
}

/// mailcove on the PostgreSQL database at `location` (a `postgresql://` URL), as node `node`
/// (0 for the first; each node has its own ports, configuration file and log, and all share the
/// database). `fsync` is PostgreSQL's to decide there (`fsync = on`, `synchronous_commit = on`,
/// see `pg.rs`); the full-text index is off as in [`start_mailcove`].
pub fn start_mailcove_pg(s: &Setup, bin: &Path, location: &str, node: usize) -> Result<Running> {
    let mut r = start_mailcove_node(s, bin, location, "fts = false\n", node)?;
    r.kind = Kind::MailcovePg;
    Ok(r)
}

/// Writes a configuration with `[mail] location` and `mail_extra`, starts mailcove on it and
/// waits for its IMAP and LMTP ports.
fn start_mailcove_node(
    s: &Setup,
    bin: &Path,
    location: &str,
    mail_extra: &str,
    node: usize,
) -> Result<Running> {
    let ports = Ports::free()?;
    let name = if node == 0 {
        "mailcove".to_string()
    } else {
        format!("mailcove-node{node}")
    };
    let conns = s.max_conns + 200;
    let config = format!(
        "[server]\nhostname = \"bench\"\nuser = \"{u}\"\ngroup = \"{u}\"\ncontrol_socket = \"{sock}\"\n\n\
         [[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:{}\"\ntls = \"starttls\"\n\n\
         [[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:{}\"\ntls = \"implicit\"\n\n\
         [[listener]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:{}\"\ntls = \"starttls\"\n\n\
         [[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{}\"\n\n\
         [tls]\ncertificate = \"{}\"\nkey = \"{}\"\ngenerate_self_signed = true\n\n\
         [mail]\nlocation = \"{location}\"\n{mail_extra}\n\
         [auth]\nusers_file = \"{}\"\nhash_queue = 100000\n\n\
         [limits]\nmax_connections = {conns}\nmax_connections_per_ip = {conns}\nmax_userip_connections = {conns}\n\n\
         [logging]\nlevel = \"warn\"\n",
        ports.imap,
        ports.imaps,
        ports.pop3,
        ports.lmtp,
        s.cert.display(),
        s.key.display(),
        s.users_file.display(),
        u = s.mail_user,
        // Each node its own control socket (not /run/mailcove's, which a second node, or
        // another mailcove on the machine, finds taken).
        sock = s.dir.join(format!("{name}.sock")).display(),
    );
    let conf = s.dir.join(format!("{name}.toml"));
    fs::write(&conf, config)?;
    let log = fs::File::create(s.dir.join(format!("{name}.log")))?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let pid = child.id();
    let running = Running {
        ports,
        child,
        pid,
        kind: Kind::Mailcove,
        conf,
    };
    wait_for_port(ports.imap, "mailcove")?;
    wait_for_port(ports.lmtp, "mailcove")?;
    Ok(running)
}

/// Starts Dovecot in the foreground with a configuration of its own (not /etc/dovecot).
pub fn start_dovecot(s: &Setup) -> Result<Running> {
    start_dovecot_with(s, "")
}

/// [`start_dovecot`] with `extra` appended to its configuration (fts-xapian for row 16).
pub fn start_dovecot_with(s: &Setup, extra: &str) -> Result<Running> {
    let ports = Ports::free()?;
    let d = s.dir.display();
    let base = s.dir.join("run");
    fs::create_dir_all(&base)?;
    let limit = s.max_conns + 200;
    let clients = 3 * limit;
    let config = format!(
        r#"# Generated by mailcove's bench/compare: Dovecot as Debian ships it, limits raised for
# {limit} connections, on loopback ports.
base_dir = {base}
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_location = maildir:{d}/mail/%n
mail_uid = {u}
mail_gid = {u}
first_valid_uid = 1
mail_fsync = optimized
pop3_uidl_format = %08Xu%08Xv
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
mail_max_userip_connections = {limit}
default_process_limit = {limit}
default_client_limit = {clients}
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = static
  args = uid={u} gid={u} home={d}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
service imap {{
  process_limit = {limit}
}}
# COMPRESS=DEFLATE for the idle_deflate row (Dovecot's plugin, shipped in dovecot-imapd).
protocol imap {{
  mail_plugins = $mail_plugins imap_zlib
}}
service stats {{
  client_limit = {clients}
}}
service anvil {{
  client_limit = {clients}
}}
service auth {{
  client_limit = {clients}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
# Sieve at delivery (Debian's dovecot-sieve) for the `sieve` rows: the users sieveN have the
# 40-rule script as active script; everyone else has none (a missing link).
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:{work}/sievehome/%n/sieve;active={work}/sievehome/%n/.dovecot.sieve
}}
"#,
        base = base.display(),
        cert = s.cert.display(),
        key = s.key.display(),
        users = s.users_file.display(),
        u = s.mail_user,
        imap = ports.imap,
        imaps = ports.imaps,
        pop3 = ports.pop3,
        lmtp = ports.lmtp,
        work = s.dir.parent().unwrap_or(s.dir).display(),
    ) + extra;
    let conf = s.dir.join("dovecot.conf");
    fs::write(&conf, config)?;
    let out = fs::File::create(s.dir.join("dovecot.stderr"))?;
    let child = Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()?;
    let pid = child.id();
    let running = Running {
        ports,
        child,
        pid,
        kind: Kind::Dovecot,
        conf,
    };
    wait_for_port(ports.imap, "dovecot").map_err(|e| {
        let log = fs::read_to_string(s.dir.join("dovecot.stderr")).unwrap_or_default();
        format!("{e}: {log}")
    })?;
    wait_for_port(ports.lmtp, "dovecot")?;
    Ok(running)
}

/// (PSS KiB, RSS KiB, processes) of `root` and all its descendants.
pub fn tree_memory(root: u32) -> (u64, u64, usize) {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                // The command name may contain spaces; fields resume after the last ')'.
                if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r)
                    && let Some(ppid) = rest.split(' ').nth(1).and_then(|p| p.parse().ok())
                {
                    parent.push((pid, ppid));
                }
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    let (mut pss, mut rss) = (0, 0);
    for pid in &tree {
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            for line in s.lines() {
                let kib = || {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("Pss:") {
                    pss += kib();
                } else if line.starts_with("Rss:") {
                    rss += kib();
                }
            }
        }
    }
    (pss, rss, tree.len())
}
