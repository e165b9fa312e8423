//! Sieve at delivery over LMTP (and `mailcove deliver`) against the real binary: each action
//! ends in the right mailbox with the right flags, scripts that fail keep the message, the
//! global scripts run around the user's, vacation replies reach a local SMTP sink only when
//! RFC 3834 allows and not twice (across a restart), redirects are limited and loop-protected,
//! reject answers 550 5.7.1, and `duplicate` remembers across deliveries. Mailboxes are read
//! back through IMAP, so every test runs on both backends (deliver tests: Maildir only).

mod common;
mod lmtp_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    BIN, Builder, Client, Server, cheap_argon2, check_config, chmod, free_port, output_with_stdin,
};
use lmtp_support::lmtp_listener;

// ---------------------------------------------------------------------------------------------
// A tiny SMTP sink: accepts everything and records (MAIL FROM, RCPT TO, data).

#[derive(Debug, Clone)]
struct Sent {
    from: String,
    to: Vec<String>,
    data: String,
}

struct Sink {
    port: u16,
    got: Arc<Mutex<Vec<Sent>>>,
}

impl Sink {
    fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let g = g.clone();
                std::thread::spawn(move || serve_smtp(conn, &g));
            }
        });
        Sink { port, got }
    }

    fn sent(&self) -> Vec<Sent> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a message to `to` arrived (or panics after 10 s) and returns it.
    fn wait_for(&self, to: &str) -> Sent {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self
                .sent()
                .into_iter()
                .find(|m| m.to.iter().any(|t| t == to))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "nothing sent to {to}: {:?}",
                self.sent()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve_smtp(conn: TcpStream, got: &Mutex<Vec<Sent>>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let _ = w.write_all(b"220 sink ESMTP\r\n");
    let mut cur = Sent {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if let Some(a) = upper.strip_prefix("MAIL FROM:") {
            cur.from = line[10..10 + a.trim_end().len()]
                .trim_matches(|c| c == '<' || c == '>')
                .to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            cur.to.push(
                line[8..]
                    .trim_end()
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_string(),
            );
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 go ahead\r\n");
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                cur.data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            got.lock().unwrap().push(cur.clone());
            cur = Sent {
                from: String::new(),
                to: Vec::new(),
                data: String::new(),
            };
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 bye\r\n");
            return;
        } else {
            b"250 ok\r\n"
        };
        let _ = w.write_all(reply);
    }
}

// ---------------------------------------------------------------------------------------------
// A server whose users have homes with Sieve scripts.

struct Setup {
    s: Server,
    lmtp: u16,
    homes: tempfile::TempDir,
}

fn home_of(homes: &Path, user: &str) -> PathBuf {
    homes.join(user)
}

/// Users `demo` (home with scripts) and `plain` (home, no script); password "pw".
fn start_with(config: &str) -> Setup {
    let homes = tempfile::Builder::new()
        .prefix("mailcove-sieve-homes")
        .tempdir()
        .unwrap();
    chmod(homes.path(), 0o755);
    let mut users = Vec::new();
    for u in ["demo", "plain"] {
        let h = home_of(homes.path(), u);
        std::fs::create_dir_all(h.join("sieve")).unwrap();
        chmod(&h, 0o777);
        chmod(&h.join("sieve"), 0o777);
        users.push(format!("{u}:{}::::{}::", cheap_argon2("pw"), h.display()));
    }
    let lmtp = free_port();
    let s = Builder::default()
        .users(&users)
        .config(&lmtp_listener(lmtp))
        .config(config)
        .start();
    Setup { s, lmtp, homes }
}

fn start() -> Setup {
    start_with("")
}

/// `[sieve]` with the sink as submission.
fn with_sink(sink: &Sink, extra: &str) -> String {
    format!(
        "[sieve]\nsubmission = \"127.0.0.1:{}\"\n{extra}\n",
        sink.port
    )
}

impl Setup {
    /// Installs `script` as `user`'s active script (Pigeonhole layout: ~/sieve/NAME.sieve and the
    /// relative link ~/.dovecot.sieve).
    fn script(&self, user: &str, script: &str) {
        let h = home_of(self.homes.path(), user);
        let file = h.join("sieve").join("main.sieve");
        std::fs::write(&file, script).unwrap();
        chmod(&file, 0o644);
        let link = h.join(".dovecot.sieve");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("sieve/main.sieve", &link).unwrap();
    }

    fn home(&self, user: &str) -> PathBuf {
        home_of(self.homes.path(), user)
    }

    /// One LMTP transaction; returns the per-recipient replies after DATA.
    fn lmtp(&self, from: &str, rcpts: &[&str], msg: &str) -> Vec<String> {
        let mut c = Client::plain(self.lmtp);
        assert!(c.line().starts_with("220 "));
        c.send("LHLO test");
        while c.line().starts_with("250-") {}
        c.send(&format!("MAIL FROM:<{from}>"));
        assert_eq!(c.line(), "250 2.1.0 OK");
        for r in rcpts {
            c.send(&format!("RCPT TO:<{r}>"));
            assert_eq!(c.line(), "250 2.1.5 OK");
        }
        c.send("DATA");
        assert!(c.line().starts_with("354 "));
        let mut body = msg.replace("\r\n", "\n").replace('\n', "\r\n");
        body = body
            .split("\r\n")
            .map(|l| {
                if l.starts_with('.') {
                    format!(".{l}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        if !body.ends_with("\r\n") {
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        c.send_raw(body.as_bytes());
        let replies: Vec<String> = rcpts.iter().map(|_| c.line()).collect();
        c.send("QUIT");
        replies
    }

    /// Delivers `msg` from `from` to demo and asserts the 250.
    fn deliver(&self, from: &str, msg: &str) {
        let r = self.lmtp(from, &["demo@example.org"], msg);
        assert!(r[0].starts_with("250 2.0.0"), "{r:?}\n{}", self.s.log());
    }

    /// The messages of `user`'s `mailbox` as (Subject, flags without \Recent); `None` when the
    /// mailbox does not exist.
    fn mailbox(&self, user: &str, mailbox: &str) -> Option<Vec<(String, Vec<String>)>> {
        let mut c = self.s.imap();
        assert!(c.line().starts_with("* OK"));
        let r = c.cmd("l", &format!("LOGIN {user} pw"));
        assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
        let r = c.cmd("e", &format!("EXAMINE \"{mailbox}\""));
        if !r.last().unwrap().starts_with("e OK") {
            return None;
        }
        let flags = c.cmd("f", "UID FETCH 1:* (UID FLAGS)");
        let bodies = c.fetch_all_bodies("b");
        let mut out = Vec::new();
        for (uid, body) in bodies {
            let text = String::from_utf8_lossy(&body).into_owned();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .trim_end()
                .to_string();
            let line = flags
                .iter()
                .find(|l| l.contains(&format!("UID {uid} ")) || l.contains(&format!("UID {uid})")))
                .unwrap_or_else(|| panic!("no flags for {uid}: {flags:?}"));
            let inner = line
                .split("FLAGS (")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .unwrap_or_default();
            let mut fl: Vec<String> = inner
                .split(' ')
                .filter(|f| !f.is_empty() && *f != "\\Recent")
                .map(str::to_string)
                .collect();
            fl.sort();
            out.push((subject, fl));
        }
        out.sort();
        c.cmd("o", "LOGOUT");
        Some(out)
    }

    fn subjects(&self, user: &str, mailbox: &str) -> Vec<String> {
        self.mailbox(user, mailbox)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    fn create(&self, user: &str, mailbox: &str) {
        let mut c = self.s.imap();
        c.line();
        c.cmd("l", &format!("LOGIN {user} pw"));
        let r = c.cmd("c", &format!("CREATE \"{mailbox}\""));
        assert!(r.last().unwrap().starts_with("c OK"), "{r:?}");
    }
}

fn msg(subject: &str) -> String {
    format!(
        "From: Alice <alice@example.com>\nTo: Demo <demo@example.org>\nSubject: {subject}\nMessage-ID: <{}@example.com>\n\nhello\n",
        subject.replace(' ', "-")
    )
}

fn msg_with(subject: &str, extra_header: &str) -> String {
    format!("{extra_header}\n{}", msg(subject))
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn without_a_script_delivery_is_unchanged() {
    let t = start();
    // A dangling active link is no script (Pigeonhole).
    std::os::unix::fs::symlink("sieve/gone.sieve", t.home("demo").join(".dovecot.sieve")).unwrap();
    t.deliver("alice@example.com", &msg("plain one"));
    assert_eq!(
        t.mailbox("demo", "INBOX").unwrap(),
        vec![("plain one".to_string(), vec![])]
    );
}

#[test]
fn keep_with_flags_lands_in_inbox_flagged() {
    let t = start();
    t.script(
        "demo",
        "require [\"imap4flags\"];\nif header :contains \"subject\" \"urgent\" { addflag [\"\\\\Flagged\", \"$Urgent\"]; }\nkeep;\n",
    );
    t.deliver("alice@example.com", &msg("urgent thing"));
    t.deliver("alice@example.com", &msg("calm thing"));
    assert_eq!(
        t.mailbox("demo", "INBOX").unwrap(),
        vec![
            ("calm thing".to_string(), vec![]),
            ("urgent thing".to_string(), strs(&["$Urgent", "\\Flagged"])),
        ]
    );
}

#[test]
fn fileinto_with_flags_and_missing_folders() {
    let t = start();
    t.create("demo", "Reports");
    t.script(
        "demo",
        r#"require ["fileinto", "imap4flags", "mailbox"];
if header :contains "subject" "report" { fileinto :flags "\\Seen" "Reports"; stop; }
if header :contains "subject" "nowhere" { fileinto "Missing"; stop; }
if header :contains "subject" "create" { fileinto :create "Made/Here"; stop; }
"#,
    );
    t.deliver("alice@example.com", &msg("weekly report"));
    t.deliver("alice@example.com", &msg("to nowhere"));
    t.deliver("alice@example.com", &msg("create it"));
    t.deliver("alice@example.com", &msg("other"));
    assert_eq!(
        t.mailbox("demo", "Reports").unwrap(),
        vec![("weekly report".to_string(), strs(&["\\Seen"]))]
    );
    // fileinto a missing mailbox without :create keeps the message in INBOX.
    assert_eq!(t.mailbox("demo", "Missing"), None);
    assert_eq!(t.subjects("demo", "INBOX"), ["other", "to nowhere"]);
    // :create makes it.
    assert_eq!(t.subjects("demo", "Made/Here"), ["create it"]);
}

#[test]
fn discard_stores_nothing_and_reject_is_550() {
    let t = start();
    t.script(
        "demo",
        r#"require ["reject"];
if header :contains "subject" "spam" { discard; stop; }
if header :contains "subject" "refuse" { reject "I do not want this."; }
"#,
    );
    t.deliver("alice@example.com", &msg("spam offer"));
    // reject answers only that recipient; another recipient of the same message gets it.
    let r = t.lmtp(
        "alice@example.com",
        &["demo@example.org", "plain@example.org"],
        &msg("refuse me"),
    );
    assert_eq!(
        r,
        [
            "550 5.7.1 <demo@example.org> I do not want this.",
            "250 2.0.0 <plain@example.org> Saved"
        ]
    );
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());
    assert_eq!(t.subjects("plain", "INBOX"), ["refuse me"]);
}

#[test]
fn broken_scripts_keep_the_message_in_inbox() {
    let t = start();
    t.script(
        "demo",
        "require [\"fileinto\"];\nfileinto \"X\"\nthis is not sieve {\n",
    );
    t.deliver("alice@example.com", &msg("first"));
    t.deliver("alice@example.com", &msg("second"));
    assert_eq!(t.subjects("demo", "INBOX"), ["first", "second"]);
    // The compile error is logged once for this version of the script, not per message.
    let log = t.s.log();
    assert_eq!(log.matches("script does not compile").count(), 1, "{log}");

    // A run-time limit: more redirects than allowed stops the script; the message is kept.
    let sink = Sink::start();
    drop(t);
    let t = start_with(&with_sink(&sink, ""));
    t.script(
        "demo",
        "redirect \"a@x.example\";\nredirect \"b@x.example\";\nredirect \"c@x.example\";\nredirect \"d@x.example\";\nredirect \"e@x.example\";\nredirect \"f@x.example\";\n",
    );
    t.deliver("alice@example.com", &msg("too many"));
    assert_eq!(t.subjects("demo", "INBOX"), ["too many"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sink.sent().len() <= 4,
        "more redirects than the limit: {:?}",
        sink.sent()
    );
}

#[test]
fn sieve_before_and_after_run_around_the_users_script() {
    let global = tempfile::tempdir().unwrap();
    chmod(global.path(), 0o755);
    let before_dir = global.path().join("before.d");
    std::fs::create_dir(&before_dir).unwrap();
    chmod(&before_dir, 0o755);
    let w = |p: &Path, s: &str| {
        std::fs::write(p, s).unwrap();
        chmod(p, 0o644);
    };
    // Each script files a copy into its own mailbox (`:copy` keeps the implicit keep, so the
    // sequence goes on); the last cancels the keep. Pigeonhole's rule (docs/sieve.md "Script
    // sequences"): the next script runs only when a keep (implicit or explicit) is in effect at
    // the end of a script, `stop` ends only its own script, and only the last script's keep
    // stores into INBOX. The first script's "Early" shows the before scripts run first and
    // that cancelling the keep ends the sequence; "kept" shows an explicit keep going on.
    w(
        &before_dir.join("10-first.sieve"),
        "require [\"fileinto\", \"copy\", \"mailbox\"];\nif header :contains \"subject\" \"early\" { fileinto :create \"Early\"; stop; }\nif header :contains \"subject\" \"kept\" { keep; stop; }\nfileinto :copy :create \"B1\";",
    );
    w(
        &before_dir.join("20-second.sieve"),
        "require [\"fileinto\", \"copy\", \"mailbox\"]; fileinto :copy :create \"B2\";",
    );
    let after = global.path().join("after.sieve");
    w(
        &after,
        "require [\"fileinto\", \"mailbox\"]; fileinto :create \"A\";",
    );
    let t = start_with(&format!(
        "[sieve]\nsieve_before = [\"{}\"]\nsieve_after = [\"{}\"]\n",
        before_dir.display(),
        after.display()
    ));
    t.script(
        "demo",
        "require [\"fileinto\", \"copy\", \"mailbox\"]; fileinto :copy :create \"U\";",
    );
    t.deliver("alice@example.com", &msg("everywhere"));
    for m in ["B1", "B2", "U", "A"] {
        assert_eq!(t.subjects("demo", m), ["everywhere"], "mailbox {m}");
    }
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());
    t.deliver("alice@example.com", &msg("early bird"));
    assert_eq!(t.subjects("demo", "Early"), ["early bird"]);
    assert_eq!(t.subjects("demo", "U"), ["everywhere"]);
    assert_eq!(t.subjects("demo", "A"), ["everywhere"]);
    // keep; stop; in the first script: the sequence goes on (B1 is skipped by the stop), and
    // as the after script files without keeping, INBOX does not get the message.
    t.deliver("alice@example.com", &msg("kept then filed"));
    assert_eq!(t.subjects("demo", "B1"), ["everywhere"]);
    assert_eq!(t.subjects("demo", "B2"), ["everywhere", "kept then filed"]);
    assert_eq!(t.subjects("demo", "U"), ["everywhere", "kept then filed"]);
    assert_eq!(t.subjects("demo", "A"), ["everywhere", "kept then filed"]);
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());
    // A user without a script still gets the global ones.
    let r = t.lmtp(
        "alice@example.com",
        &["plain@example.org"],
        &msg("global only"),
    );
    assert!(r[0].starts_with("250 "), "{r:?}");
    assert_eq!(t.subjects("plain", "B1"), ["global only"]);
    assert_eq!(t.subjects("plain", "A"), ["global only"]);
}

const VACATION: &str =
    "require [\"vacation\"];\nvacation :days 1 :subject \"Away\" \"I am away until Monday.\";\n";

#[test]
fn vacation_replies_follow_rfc3834_and_are_tracked_across_restarts() {
    let sink = Sink::start();
    let mut t = start_with(&with_sink(&sink, ""));
    t.script("demo", VACATION);

    // Messages that must get no reply.
    t.deliver(
        "list@example.com",
        &msg_with("to a list", "List-Id: <l.example.com>"),
    );
    t.deliver("bulk@example.com", &msg_with("bulk", "Precedence: bulk"));
    t.deliver(
        "robot@example.com",
        &msg_with("auto", "Auto-Submitted: auto-generated"),
    );
    t.deliver("", &msg("bounce"));
    t.deliver("MAILER-DAEMON@example.com", &msg("daemon"));
    t.deliver("demo@example.org", &msg("from myself"));
    t.deliver(
        "cc@example.com",
        "From: cc@example.com\nTo: someone@example.net\nSubject: not to me\n\nx\n",
    );
    // One that must.
    t.deliver("alice@example.com", &msg("hello there"));
    let reply = sink.wait_for("alice@example.com");
    assert_eq!(reply.from, "", "vacation replies use the null sender");
    assert!(reply.data.contains("Subject: Away\r\n"), "{}", reply.data);
    assert!(
        reply.data.contains("From: demo@example.org\r\n"),
        "{}",
        reply.data
    );
    assert!(
        reply.data.contains("Auto-Submitted: auto-replied"),
        "{}",
        reply.data
    );
    assert!(
        reply
            .data
            .contains("In-Reply-To: <hello-there@example.com>"),
        "{}",
        reply.data
    );
    assert!(reply.data.contains("I am away until Monday."));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.sent().len(), 1, "{:?}", sink.sent());
    // Every message was still delivered.
    assert_eq!(t.subjects("demo", "INBOX").len(), 8);

    // The same sender within :days gets no second reply, even after a restart.
    t.deliver("alice@example.com", &msg("again"));
    t.s.restart();
    t.deliver("alice@example.com", &msg("after restart"));
    // Another sender does.
    t.deliver("bob@example.com", &msg("from bob"));
    sink.wait_for("bob@example.com");
    std::thread::sleep(Duration::from_millis(300));
    let to_alice = sink
        .sent()
        .iter()
        .filter(|m| m.to == ["alice@example.com"])
        .count();
    assert_eq!(to_alice, 1, "{:?}", sink.sent());
}

#[test]
fn redirect_sends_and_loops_are_stopped() {
    let sink = Sink::start();
    let t = start_with(&with_sink(&sink, ""));
    t.script("demo", "redirect \"fwd@example.net\";\n");
    t.deliver("alice@example.com", &msg("forward me"));
    let m = sink.wait_for("fwd@example.net");
    assert_eq!(
        m.from, "alice@example.com",
        "redirect keeps the envelope sender"
    );
    assert!(
        m.data
            .starts_with("X-Sieve-Redirected-From: demo@example.org\r\nFrom: Alice"),
        "{}",
        m.data
    );
    // The redirect cancelled the implicit keep.
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());

    // A message this recipient already redirected comes back: kept, not sent again.
    t.deliver(
        "alice@example.com",
        &msg_with("looping", "X-Sieve-Redirected-From: demo@example.org"),
    );
    assert_eq!(t.subjects("demo", "INBOX"), ["looping"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.sent().len(), 1, "{:?}", sink.sent());

    // :copy keeps a copy too.
    t.script(
        "demo",
        "require \"copy\";\nredirect :copy \"copy@example.net\";\n",
    );
    t.deliver("alice@example.com", &msg("copied"));
    sink.wait_for("copy@example.net");
    assert_eq!(t.subjects("demo", "INBOX"), ["copied", "looping"]);
}

#[test]
fn redirect_without_submission_keeps_the_message() {
    let t = start();
    t.script("demo", "redirect \"fwd@example.net\";\n");
    t.deliver("alice@example.com", &msg("cannot forward"));
    assert_eq!(t.subjects("demo", "INBOX"), ["cannot forward"]);
}

#[test]
fn duplicate_is_remembered_across_deliveries_and_restarts() {
    let mut t = start();
    t.script(
        "demo",
        "require [\"duplicate\", \"fileinto\", \"mailbox\"];\nif duplicate { fileinto :create \"Dups\"; }\n",
    );
    let same = "From: alice@example.com\nTo: demo@example.org\nSubject: once\nMessage-ID: <same@example.com>\n\nx\n";
    t.deliver("alice@example.com", same);
    t.deliver("alice@example.com", same);
    assert_eq!(t.subjects("demo", "INBOX"), ["once"]);
    assert_eq!(t.subjects("demo", "Dups"), ["once"]);
    t.s.restart();
    t.deliver("alice@example.com", same);
    assert_eq!(
        t.subjects("demo", "Dups").len(),
        if common::memory_backend() { 1 } else { 2 }
    );
    assert!(
        t.home("demo").join(".mailcove.sieve-tracking").exists(),
        "tracking file in the home"
    );
}

#[test]
fn deliver_command_applies_scripts_and_reject_exits_77() {
    if common::skip_unless_maildir("deliver_command_applies_scripts_and_reject_exits_77") {
        return;
    }
    let t = start();
    t.create("demo", "Lists");
    t.script(
        "demo",
        r#"require ["fileinto", "reject"];
if header :contains "subject" "list" { fileinto "Lists"; }
if header :contains "subject" "refuse" { reject "not wanted"; }
"#,
    );
    let run = |input: &str| {
        let out = output_with_stdin(
            std::process::Command::new(BIN)
                .args(["deliver", "--config"])
                .arg(&t.s.config_path)
                .args(["-d", "demo", "-f", "alice@example.com"])
                .env_remove("MAILCOVE_LOG"),
            input.as_bytes(),
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&msg("list post"));
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(t.subjects("demo", "Lists"), ["list post"]);
    let (code, err) = run(&msg("refuse this"));
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("not wanted"), "{err}");
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());
}

#[test]
fn spamtest_and_virustest_read_the_configured_headers() {
    let t = start_with(
        "[sieve]\nspamtest_header = \"X-Spam-Score\"\nspamtest_max = 10\nvirustest_header = \"X-Virus-Scan\"\n",
    );
    // RFC 5235 section 3.2: spamtest 0 = not tested, 1 = not spam ... 10 = certain spam. A score
    // s of `spamtest_max` 10 maps to 1 + round(9 s / 10): 7.5 -> 1 + round(6.75) = 8,
    // 2.0 -> 1 + round(1.8) = 3. Virustest (section 3.3): 5 = infected.
    t.script(
        "demo",
        r#"require ["spamtest", "virustest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if virustest :value "eq" :comparator "i;ascii-numeric" "5" { fileinto "Virus"; stop; }
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "Junk"; stop; }
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Untested"; stop; }
if spamtest :value "eq" :comparator "i;ascii-numeric" "3" { fileinto "Three"; }
"#,
    );
    t.create("demo", "Untested");
    t.create("demo", "Virus");
    t.create("demo", "Three");
    t.deliver(
        "alice@example.com",
        &msg_with("high score", "X-Spam-Score: 7.5"),
    );
    t.deliver(
        "alice@example.com",
        &msg_with("low score", "X-Spam-Score: 2.0 (ham)"),
    );
    t.deliver("alice@example.com", &msg("no header"));
    t.deliver(
        "alice@example.com",
        &msg_with("infected", "X-Virus-Scan: 5\nX-Spam-Score: 9.9"),
    );
    assert_eq!(t.subjects("demo", "Junk"), ["high score"]);
    // 2.0 gives 3, below 8: filed into Three (a fileinto cancels the implicit keep).
    assert_eq!(t.subjects("demo", "Three"), ["low score"]);
    assert_eq!(t.subjects("demo", "Untested"), ["no header"]);
    assert_eq!(t.subjects("demo", "Virus"), ["infected"]);
    assert_eq!(t.subjects("demo", "INBOX"), Vec::<String>::new());
}

#[test]
fn spamtest_low_scores_stay_in_inbox_and_bad_keys_are_refused() {
    let t = start_with("[sieve]\nspamtest_header = \"X-Spam-Score\"\n");
    t.script(
        "demo",
        r#"require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "Junk"; }
"#,
    );
    t.deliver("alice@example.com", &msg_with("ham", "X-Spam-Score: 1.2"));
    t.deliver("alice@example.com", &msg_with("spam", "X-Spam-Score: 12"));
    assert_eq!(t.subjects("demo", "INBOX"), ["ham"]);
    assert_eq!(t.subjects("demo", "Junk"), ["spam"]);

    // check-config refuses a header with a regex part and a non-positive maximum.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[sieve]\nspamtest_header = \"X-Spam-Score: (.*)\"\nspamtest_max = 0\n",
    )
    .unwrap();
    let (passed, text) = check_config(&cfg);
    assert!(!passed);
    assert!(text.contains("sieve.spamtest_header"), "{text}");
    assert!(text.contains("sieve.spamtest_max"), "{text}");
}

/// One LMTP transaction with MAIL and RCPT parameters: `mail_params` after MAIL FROM's path,
/// `rcpt_params` after RCPT TO's. Returns the reply after DATA.
fn lmtp_with_params(t: &Setup, mail_params: &str, rcpt_params: &str, msg: &str) -> String {
    let mut c = Client::plain(t.lmtp);
    assert!(c.line().starts_with("220 "));
    c.send("LHLO test");
    while c.line().starts_with("250-") {}
    c.send(&format!("MAIL FROM:<alice@example.com>{mail_params}"));
    assert_eq!(c.line(), "250 2.1.0 OK");
    c.send(&format!("RCPT TO:<demo@example.org>{rcpt_params}"));
    assert_eq!(c.line(), "250 2.1.5 OK");
    c.send("DATA");
    assert!(c.line().starts_with("354 "));
    c.send_raw(format!("{}.\r\n", msg.replace('\n', "\r\n")).as_bytes());
    let r = c.line();
    c.send("QUIT");
    r
}

#[test]
fn envelope_auth_and_remote_ip_come_from_the_lmtp_session() {
    let t = start();
    t.create("demo", "Authed");
    // RFC 5228 section 5.4: envelope "auth" is the submitter of MAIL FROM's AUTH= (RFC 4954),
    // xtext-decoded; RFC 5183 "remote-ip" is the LMTP client's address.
    t.script(
        "demo",
        r#"require ["envelope", "fileinto", "environment", "imap4flags"];
if environment :is "remote-ip" "127.0.0.1" { addflag "$FromLoopback"; }
if envelope :is "auth" "e=mc2@example.com" { fileinto "Authed"; }
"#,
    );
    let r = lmtp_with_params(
        &t,
        " AUTH=e+3Dmc2@example.com",
        " ORCPT=rfc822;demo+2Blist@example.org",
        &msg("with auth"),
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let r = lmtp_with_params(&t, " AUTH=<>", "", &msg("unknown submitter"));
    assert!(r.starts_with("250 2.0.0"), "{r}");
    t.deliver("alice@example.com", &msg("no auth"));
    assert_eq!(
        t.mailbox("demo", "Authed").unwrap(),
        vec![("with auth".to_string(), strs(&["$FromLoopback"]))]
    );
    assert_eq!(
        t.mailbox("demo", "INBOX").unwrap(),
        vec![
            ("no auth".to_string(), strs(&["$FromLoopback"])),
            ("unknown submitter".to_string(), strs(&["$FromLoopback"])),
        ]
    );
}
