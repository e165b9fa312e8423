//! The Debian package (issue 19): `packaging/build-deb` builds it, `dpkg-deb` shows what is in it,
//! `dpkg -i` installs it on this machine, the service starts (with systemctl where systemd runs,
//! otherwise with the unit's own ExecStart command line) and a real IMAP and POP3 login go through
//! it as a user made with the installed `mailcove user add`. An upgrade keeps an edited conffile;
//! an upgrade whose `check-config` fails says why and leaves the running server alone; purge
//! removes what the package made. A guard undoes everything on the machine, also on failure.
//!
//! Needs root and dpkg. The packaged configuration listens on the standard ports 143, 993, 110 and
//! 995: the test checks first that they are free and fails, naming the port, when one is not.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;

const PKG: &str = "mailcove";
const SBIN: &str = "/usr/sbin/mailcove";
const CONF: &str = "/etc/mailcove/mailcove.toml";
const USERS: &str = "/etc/mailcove/users";
const STATE: &str = "/var/lib/mailcove";
const MAIL_ROOT: &str = "/var/mail";
const RUN_DIR: &str = "/run/mailcove";
/// A reserved domain (RFC 2606), so the Maildir the test makes is /var/mail/deb-test.invalid.
const DOMAIN: &str = "deb-test.invalid";
const USER: &str = "debtest@deb-test.invalid";
const PASSWORD: &str = "Deb-test-pw-1";
const IMAP: u16 = 143;
const POP3: u16 = 110;
/// Every port of the packaged configuration's listeners.
const PORTS: [u16; 4] = [143, 993, 110, 995];
/// A message with CRLF line ends: POP3 STAT and RETR must give back exactly these bytes.
const MESSAGE: &[u8] = b"From: a@deb-test.invalid\r\nTo: debtest@deb-test.invalid\r\n\
Subject: through the package\r\n\r\nDelivered by APPEND, read back by POP3.\r\n";

/// Runs a command; returns whether it exited 0 and its stdout and stderr together.
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let (ok, text) = run(cmd);
    assert!(ok, "{shown} failed:\n{text}");
    text
}

fn installed() -> bool {
    let (ok, status) = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", PKG]));
    ok && status.contains("installed") && !status.contains("not-installed")
}

fn account_exists(db: &str, name: &str) -> bool {
    run(Command::new("getent").args([db, name])).0
}

/// uid of the mailcove user.
fn mailcove_uid() -> u32 {
    let line = must(Command::new("getent").args(["passwd", "mailcove"]));
    line.split(':').nth(2).unwrap().parse().unwrap()
}

/// The unit file dpkg installed (cargo-deb 3.8 uses /usr/lib/systemd/system; /lib on older ones).
fn installed_unit() -> PathBuf {
    [
        "/lib/systemd/system/mailcove.service",
        "/usr/lib/systemd/system/mailcove.service",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("no installed mailcove.service")
}

/// The unit's ExecStart command line, split into words (it has no quoting).
fn exec_start(unit: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(unit).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in the unit");
    line.split_whitespace().map(str::to_string).collect()
}

/// What the test changes on the machine, undone by Drop whatever happened.
struct Machine {
    systemd: bool,
    user_existed: bool,
    group_existed: bool,
    /// Owner, group and mode of the mail root before the test.
    mail_root: (u32, u32, u32),
    run_dir_existed: bool,
    /// The server started without systemd, and where its output goes.
    server: Option<Child>,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        assert!(
            common::is_root(),
            "tests/deb_package.rs installs a package: run it as root"
        );
        assert!(
            !installed(),
            "the mailcove package is already installed here; the test would replace it"
        );
        for port in PORTS {
            if let Err(e) = TcpListener::bind(("::", port)) {
                panic!("port {port} of the packaged configuration is not free: {e}");
            }
        }
        let meta = std::fs::metadata(MAIL_ROOT).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        Machine {
            systemd: Path::new("/run/systemd/system").is_dir(),
            user_existed: account_exists("passwd", "mailcove"),
            group_existed: account_exists("group", "mailcove"),
            mail_root: (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            run_dir_existed: Path::new(RUN_DIR).exists(),
            server: None,
            log: tmp.path().join("mailcove.log"),
            _tmp: tmp,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the installed service: systemctl where systemd runs; else the unit's ExecStart line
    /// as root, with the RuntimeDirectory systemd would have made.
    fn start(&mut self) {
        if self.systemd {
            must(Command::new("systemctl").args(["restart", "mailcove"]));
        } else {
            let argv = exec_start(&installed_unit());
            std::fs::create_dir_all(RUN_DIR).unwrap();
            let log = std::fs::File::create(&self.log).unwrap();
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .env_remove("NOTIFY_SOCKET")
                .env_remove("MAILCOVE_LOG")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            self.server = Some(child);
        }
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", IMAP)).is_ok()
                && TcpStream::connect(("127.0.0.1", POP3)).is_ok()
            {
                return;
            }
            if let Some(c) = self.server.as_mut()
                && let Some(status) = c.try_wait().unwrap()
            {
                panic!("mailcove exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mailcove does not listen on {IMAP} and {POP3}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's process id: the child, or systemd's MainPID.
    fn server_pid(&mut self) -> i32 {
        if self.systemd {
            let out = must(
                Command::new("systemctl").args(["show", "-p", "MainPID", "--value", "mailcove"]),
            );
            out.trim().parse().unwrap()
        } else {
            let c = self.server.as_mut().expect("no server started");
            assert!(
                c.try_wait().unwrap().is_none(),
                "mailcove exited:\n{}",
                self.log()
            );
            c.id() as i32
        }
    }

    fn stop(&mut self) {
        if self.systemd {
            let _ = run(Command::new("systemctl").args(["stop", "mailcove"]));
            return;
        }
        let Some(mut c) = self.server.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop();
        if installed() || Path::new(SBIN).exists() {
            let _ = run(Command::new("dpkg").args(["--purge", PKG]));
        }
        let _ = std::fs::remove_dir_all(Path::new(MAIL_ROOT).join(DOMAIN));
        if !self.user_existed && account_exists("passwd", "mailcove") {
            let _ = run(Command::new("userdel").arg("mailcove"));
        }
        if !self.group_existed && account_exists("group", "mailcove") {
            let _ = run(Command::new("groupdel").arg("mailcove"));
        }
        let (uid, gid, mode) = self.mail_root;
        let _ = std::os::unix::fs::chown(MAIL_ROOT, Some(uid), Some(gid));
        let _ = std::fs::set_permissions(MAIL_ROOT, std::fs::Permissions::from_mode(mode));
        if !self.run_dir_existed {
            let _ = std::fs::remove_dir_all(RUN_DIR);
        }
    }
}

/// `packaging/build-deb ARGS`; returns the path of the .deb it printed last.
fn build_deb(args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("packaging/build-deb"));
    // What cargo test sets for this test would reach the nested cargo, whose build scripts (ring's)
    // track some of it: the release build would start over each time the test runs.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    // The debug build the suite has just made, unless MAILCOVE_DEB_PROFILE=release asks for the
    // release build (minutes more from a clean checkout); packaging is the same either way.
    let profile = std::env::var("MAILCOVE_DEB_PROFILE").unwrap_or_else(|_| "dev".into());
    cmd.env("MAILCOVE_DEB_PROFILE", profile);
    let out = must(cmd.args(args));
    let last = out
        .lines()
        .rev()
        .find(|l| l.trim().ends_with(".deb"))
        .unwrap_or_else(|| {
            panic!("build-deb printed no .deb path:\n{out}");
        });
    let deb = root.join(last.trim());
    assert!(deb.is_file(), "{}", deb.display());
    deb
}

/// dpkg -i; returns its output (maintainer scripts print there).
fn dpkg_install(deb: &Path) -> String {
    must(Command::new("dpkg").arg("-i").arg(deb))
}

fn check_contents(deb: &Path) {
    let listing = must(Command::new("dpkg-deb").arg("-c").arg(deb));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches("./"))
        .collect();
    let has = |p: &str| paths.contains(&p);
    for p in [
        "usr/sbin/mailcove",
        "etc/mailcove/mailcove.toml",
        "usr/share/man/man8/mailcove.8.gz",
        "usr/share/man/man8/mailcove-serve.8.gz",
        "usr/share/man/man8/mailcove-check-config.8.gz",
        "usr/share/man/man8/mailcove-user-add.8.gz",
        "usr/share/bash-completion/completions/mailcove",
        "usr/share/zsh/vendor-completions/_mailcove",
        "usr/share/fish/vendor_completions.d/mailcove.fish",
        "usr/share/doc/mailcove/README.md",
        "usr/share/doc/mailcove/docs/install.md",
        "usr/share/doc/mailcove/copyright",
    ] {
        assert!(has(p), "{p} not in the package:\n{listing}");
    }
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("systemd/system/mailcove.service")),
        "no unit in the package:\n{listing}"
    );
    // One page per man page the generator wrote, none lost on the way.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = std::fs::read_dir(root.join("target/deb-assets/man"))
        .unwrap()
        .count();
    let packaged = paths
        .iter()
        .filter(|p| p.starts_with("usr/share/man/man8/") && p.ends_with(".8.gz"))
        .count();
    assert_eq!(packaged, generated, "{listing}");
    assert!(
        !has("usr/share/man/man8/mailcove-generate.8.gz"),
        "hidden command got a page"
    );

    let ctrl = tempfile::tempdir().unwrap();
    must(Command::new("dpkg-deb").arg("-e").arg(deb).arg(ctrl.path()));
    let read = |f: &str| std::fs::read_to_string(ctrl.path().join(f)).unwrap_or_default();
    assert_eq!(read("conffiles"), "/etc/mailcove/mailcove.toml\n");
    let control = read("control");
    assert!(control.contains("Package: mailcove\n"), "{control}");
    assert!(control.contains("adduser | passwd"), "{control}");
    let postinst = read("postinst");
    assert!(postinst.contains("check-config"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper"),
        "no enable snippet: {postinst}"
    );
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    let prerm = read("prerm");
    assert!(
        prerm.contains("deb-systemd-invoke stop"),
        "no stop on remove: {prerm}"
    );
    assert!(read("postrm").contains("purge"));
}

/// After dpkg -i: the user, the files postinst made, the installed tools.
fn check_installed() {
    let pw = must(Command::new("getent").args(["passwd", "mailcove"]));
    let f: Vec<&str> = pw.trim().split(':').collect();
    assert!(
        f[2].parse::<u32>().unwrap() < 1000,
        "not a system user: {pw}"
    );
    assert_eq!(f[6], "/usr/sbin/nologin", "{pw}");
    assert!(account_exists("group", "mailcove"));
    let users = std::fs::metadata(USERS).unwrap();
    assert_eq!(users.mode() & 0o777, 0o640);
    let gid = must(Command::new("getent").args(["group", "mailcove"]));
    assert_eq!(users.gid().to_string(), gid.split(':').nth(2).unwrap());
    for p in [
        "/etc/mailcove/tls/fullchain.pem",
        "/etc/mailcove/tls/privkey.pem",
    ] {
        assert!(Path::new(p).is_file(), "{p} missing");
    }
    let key = std::fs::metadata("/etc/mailcove/tls/privkey.pem").unwrap();
    assert_eq!(key.mode() & 0o777, 0o640);
    assert_eq!(std::fs::metadata(MAIL_ROOT).unwrap().uid(), mailcove_uid());
    let conf = std::fs::read_to_string(CONF).unwrap();
    assert!(
        !conf.lines().any(|l| l.starts_with("protocol = \"lmtp\"")),
        "{conf}"
    );
    must(Command::new(SBIN).args(["check-config", "--config", CONF]));
    let unit = std::fs::read_to_string(installed_unit()).unwrap();
    assert!(
        unit.contains(
            "\nExecStart=/usr/sbin/mailcove serve --config /etc/mailcove/mailcove.toml\n"
        ),
        "{unit}"
    );
    // The bash completion loads and registers itself.
    let out = must(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/mailcove && complete -p mailcove",
    ]));
    assert!(out.contains("-F _mailcove"), "{out}");
}

/// `mailcove user add` from the package, against the packaged users file.
fn add_user() {
    let mut child = Command::new(SBIN)
        .args(["user", "add", "--users", USERS, USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // user add keeps the file's owner and mode, so the daemon can still read it.
    assert_eq!(std::fs::metadata(USERS).unwrap().mode() & 0o777, 0o640);
}

fn imap_login() -> Client {
    let mut c = Client::plain(IMAP);
    let greeting = c.line();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let r = c.cmd("a", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    c
}

/// IMAP LOGIN, SELECT INBOX showing `exists` messages, LOGOUT.
fn imap_check(exists: usize) {
    let mut c = imap_login();
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    assert!(r.contains(&format!("* {exists} EXISTS")), "{r:?}");
    let r = c.cmd("z", "LOGOUT");
    assert!(r.last().unwrap().starts_with("z OK"), "{r:?}");
}

fn imap_append() {
    let mut c = imap_login();
    c.send(&format!("c APPEND INBOX {{{}}}", MESSAGE.len()));
    let cont = c.line();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(MESSAGE);
    c.send_raw(b"\r\n");
    let r = c.until("c ");
    assert!(r.last().unwrap().starts_with("c OK"), "{r:?}");
}

/// POP3 USER/PASS, STAT and RETR of the one message.
fn pop3_check() {
    let mut p = Client::plain(POP3);
    let greeting = p.line();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    p.send(&format!("USER {USER}"));
    assert!(p.line().starts_with("+OK"));
    p.send(&format!("PASS {PASSWORD}"));
    let pass = p.line();
    assert!(pass.starts_with("+OK"), "{pass}");
    p.send("STAT");
    assert_eq!(p.line(), format!("+OK 1 {}", MESSAGE.len()));
    p.send("RETR 1");
    assert!(p.line().starts_with("+OK"));
    let body = p.multiline().join("\r\n") + "\r\n";
    assert_eq!(body.as_bytes(), MESSAGE);
    p.send("QUIT");
    assert!(p.line().starts_with("+OK"));
}

#[test]
fn package_installs_serves_upgrades_and_purges() {
    let mut m = Machine::new();
    let deb = build_deb(&["--fast"]);
    check_contents(&deb);

    // Install: postinst makes the user, the users file, a certificate, the mail root's owner.
    let out = dpkg_install(&deb);
    assert!(!out.contains("errors above"), "{out}");
    check_installed();
    add_user();
    m.start();
    imap_check(0);
    imap_append();
    pop3_check();
    imap_check(1);
    let maildir = Path::new(MAIL_ROOT).join(DOMAIN).join("debtest");
    assert_eq!(std::fs::metadata(&maildir).unwrap().uid(), mailcove_uid());

    // Upgrade to a new revision with an edited conffile: dpkg keeps the edit without asking
    // (stdin is /dev/null), the new postinst checks the configuration and, under systemd,
    // restarts the running service.
    let edited = format!(
        "# edited by tests/deb_package.rs\n{}",
        std::fs::read_to_string(CONF).unwrap()
    );
    std::fs::write(CONF, &edited).unwrap();
    let deb2 = build_deb(&["--fast", "--deb-revision", "2"]);
    let before = m.server_pid();
    let out = dpkg_install(&deb2);
    assert!(!out.contains("rejects"), "{out}");
    let version = must(Command::new("dpkg-query").args(["-W", "-f=${Version}", PKG]));
    assert!(version.ends_with("-2"), "{version}");
    assert_eq!(std::fs::read_to_string(CONF).unwrap(), edited);
    assert!(!Path::new(&format!("{CONF}.dpkg-dist")).exists());
    if m.systemd {
        assert_ne!(
            m.server_pid(),
            before,
            "postinst did not restart the service"
        );
        m.wait_listening();
    } else {
        // Without systemd nothing restarts it: do what `try-restart` does.
        m.stop();
        m.start();
    }
    imap_check(1);

    // An upgrade the new version's check-config rejects: postinst says why, exits 0, and the
    // running server is neither stopped nor restarted.
    std::fs::write(CONF, format!("not_a_mailcove_key = 1\n{edited}")).unwrap();
    let before = m.server_pid();
    let out = dpkg_install(&deb2);
    assert!(out.contains("not_a_mailcove_key"), "{out}");
    assert!(
        out.contains("the new version rejects /etc/mailcove/mailcove.toml"),
        "{out}"
    );
    assert_eq!(m.server_pid(), before);
    imap_check(1);
    std::fs::write(CONF, &edited).unwrap();

    // Purge (without systemd the test stops what it started; under systemd prerm does).
    if !m.systemd {
        m.stop();
    }
    let out = must(Command::new("dpkg").args(["--purge", PKG]));
    assert!(
        out.contains("the mailcove user and the mail under /var/mail were kept"),
        "{out}"
    );
    assert!(!installed());
    for gone in [SBIN, "/etc/mailcove", STATE] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert_eq!(std::fs::metadata(MAIL_ROOT).unwrap().uid(), m.mail_root.0);
    // Kept on purge, as Debian does: the system user and the mail it owns (the guard removes
    // both, since the test made them).
    assert!(account_exists("passwd", "mailcove"));
    assert!(maildir.is_dir());
    assert!(
        TcpStream::connect(("127.0.0.1", IMAP)).is_err(),
        "something still listens on {IMAP}"
    );
}
