//! The control socket and its CLI against the real binary: `mailcove who` lists live IMAP and
//! POP3 sessions, `mailcove kick` ends them (idle, in IDLE, with POP3 deletions pending, which
//! RFC 1939 section 6 says are not committed without QUIT), `mailcove reload` reloads as SIGHUP
//! does, and every session end is logged with its counters.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn socket(s: &Server) -> PathBuf {
    s.path().join("control.sock")
}

/// Runs `mailcove ARGS -c CONFIG`.
fn admin(s: &Server, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(&s.config_path)
        .output()
        .expect("run mailcove")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `who --all --json`, parsed.
fn who_all(s: &Server) -> Vec<Value> {
    let o = admin(s, &["who", "--all", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice::<Vec<Value>>(&o.stdout).expect("who --json is a JSON array")
}

/// The sessions `who --json` lists for `user`.
fn sessions_of(s: &Server, user: &str) -> Vec<Value> {
    let o = admin(s, &["who", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all: Vec<Value> = serde_json::from_slice(&o.stdout).expect("JSON array");
    all.into_iter().filter(|v| v["user"] == user).collect()
}

/// Waits until `who` shows no session of `user` (a kicked session leaves the registry when its
/// task ends, just after the client saw the socket close).
fn wait_gone(s: &Server, user: &str) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !sessions_of(s, user).is_empty() {
        assert!(Instant::now() < deadline, "{user} still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pop3_login(s: &Server, user: &str, password: &str) -> Client {
    let mut c = s.pop3();
    assert!(c.line().starts_with("+OK"));
    run_transcript(
        &mut c,
        &format!("C: USER {user}\nS: +OK\nC: PASS {password}\nS: +OK *"),
    );
    c
}

/// Reads lines until the server closes; returns them.
fn lines_until_closed(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(l) = c.try_line() {
        out.push(l);
    }
    out
}

#[test]
fn who_lists_live_imap_and_pop3_sessions_with_their_counters() {
    let s = Server::builder().user("alice", "secret").start();
    let mut imap = s.imap();
    let greeting = imap.line();
    let login = imap.cmd("l", "LOGIN demo demo");
    assert_tagged_ok(&login);
    let select = imap.cmd("s", "SELECT INBOX");
    assert_tagged_ok(&select);
    let pop = pop3_login(&s, "alice", "secret");
    let mut anonymous = s.imap();
    anonymous.line();

    // IMAP: what the client sent and read, byte for byte (plain TCP, no compression).
    let sent = "l LOGIN demo demo\r\n".len() + "s SELECT INBOX\r\n".len();
    let read: usize = std::iter::once(&greeting)
        .chain(&login)
        .chain(&select)
        .map(|l| l.len() + 2)
        .sum();
    // The counters are updated right after each write returns: poll briefly for the last one.
    let deadline = Instant::now() + IO_TIMEOUT;
    let demo = loop {
        let v = sessions_of(&s, "demo");
        assert_eq!(v.len(), 1, "{v:?}");
        if v[0]["bytes_out"] == read as u64 || Instant::now() > deadline {
            break v[0].clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(demo["protocol"], "imap");
    assert_eq!(demo["mailbox"], "INBOX");
    assert_eq!(demo["tls"], false);
    assert_eq!(demo["bytes_in"], sent as u64);
    assert_eq!(demo["bytes_out"], read as u64);
    assert_eq!(demo["commands"], 2);
    assert!(
        demo["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{demo}"
    );
    assert_eq!(demo["local"], format!("127.0.0.1:{}", s.ports.imap));

    let alice = sessions_of(&s, "alice");
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert_eq!(alice[0]["protocol"], "pop3");
    assert_eq!(alice[0]["mailbox"], Value::Null);
    assert_eq!(alice[0]["commands"], 2, "USER and PASS");

    // The connection that has not logged in is listed only with --all.
    let all = who_all(&s);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all.iter().filter(|v| v["user"].is_null()).count(), 1);

    // The table: a header and one row per logged-in session.
    let o = admin(&s, &["who"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].starts_with("USER "), "{table}");
    for col in [
        "PROTO", "REMOTE", "TLS", "SINCE", "MAILBOX", "IN", "OUT", "CMDS",
    ] {
        assert!(rows[0].contains(col), "{col} missing: {table}");
    }
    let demo_row = rows
        .iter()
        .find(|r| r.starts_with("demo "))
        .expect("demo row");
    let cells: Vec<&str> = demo_row.split_whitespace().collect();
    assert_eq!(cells[1], "imap");
    assert_eq!(cells[3], "no");
    assert_eq!(cells[6], "INBOX");
    assert_eq!(cells[7], sent.to_string());
    assert_eq!(cells[9], "2");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("alice ") && r.contains(" pop3 ")),
        "{table}"
    );
    drop(pop);
    drop(imap);
}

#[test]
fn who_shows_tls_sessions() {
    let s = Server::start();
    let mut c = s.imaps();
    c.line();
    assert_tagged_ok(&c.cmd("l", "LOGIN demo demo"));
    let v = sessions_of(&s, "demo");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["tls"], true);
    let mut p = s.pop3();
    p.line();
    p.send("STLS");
    assert!(p.line().starts_with("+OK"));
    p.upgrade(&s.cert.der);
    // An answer over TLS: the server's side of the handshake is done.
    p.send("CAPA");
    assert!(p.line().starts_with("+OK"));
    p.multiline();
    // Not logged in yet: listed only with --all, with TLS on after STLS.
    let all = who_all(&s);
    let anon: Vec<&Value> = all.iter().filter(|v| v["user"].is_null()).collect();
    assert_eq!(anon.len(), 1, "{all:?}");
    assert_eq!(anon[0]["tls"], true);
    assert_eq!(anon[0]["protocol"], "pop3");
}

#[test]
fn kick_ends_idle_and_idling_imap_sessions_with_bye() {
    let s = Server::start();
    let mut idle_between = login_demo(&s);
    let mut idling = login_demo(&s);
    assert_tagged_ok(&idling.cmd("s", "SELECT INBOX"));
    idling.send("i IDLE");
    assert!(idling.line().starts_with("+ "), "IDLE continuation");
    let o = admin(&s, &["kick", "demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "kicked 2 session(s) of demo\n");
    for c in [&mut idle_between, &mut idling] {
        let rest = lines_until_closed(c);
        assert_eq!(rest, vec!["* BYE Disconnected by administrator."]);
    }
    wait_gone(&s, "demo");
    // Kicking is not a ban: the user logs in again at once.
    let mut again = login_demo(&s);
    assert_tagged_ok(&again.cmd("n", "NOOP"));
    let log = s.wait_log(|l| l.matches("reason=kicked").count() >= 2);
    assert!(
        log.contains("disconnected by administrator during IDLE"),
        "{log}"
    );
}

#[test]
fn kick_of_nobody_exits_68_and_json_counts() {
    let s = Server::start();
    let _c = login_demo(&s);
    let o = admin(&s, &["kick", "alice"]);
    assert_eq!(o.status.code(), Some(68), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no sessions of alice kicked\n");
    let o = admin(&s, &["kick", "alice", "--json"]);
    assert_eq!(o.status.code(), Some(68));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["kicked"], 0);
    assert_eq!(v["user"], "alice");
    let o = admin(&s, &["kick", "demo", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["kicked"], 1);
    // clap refuses protocols kick does not know.
    let o = admin(&s, &["kick", "demo", "--protocol", "lmtp"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn kick_protocol_pop3_leaves_imap_alone_and_commits_no_deletion() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", b"Subject: one\r\n\r\nfirst\r\n");
    let mut imap = login_demo(&s);
    let mut pop = pop3_login(&s, "demo", "demo");
    run_transcript(&mut pop, "C: DELE 1\nS: +OK *");
    let o = admin(&s, &["kick", "demo", "--protocol", "pop3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "kicked 1 session(s) of demo\n");
    assert_eq!(
        lines_until_closed(&mut pop),
        vec!["-ERR [SYS/TEMP] Disconnected by administrator."]
    );
    // The IMAP session goes on.
    assert_tagged_ok(&imap.cmd("n", "NOOP"));
    // The kicked session leaves the registry as its task ends, just after the socket closed.
    let deadline = Instant::now() + IO_TIMEOUT;
    let left = loop {
        let left = sessions_of(&s, "demo");
        if left.len() == 1 || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["protocol"], "imap");
    // No QUIT, no UPDATE state: the message is still there (RFC 1939 section 6).
    let mut again = pop3_login(&s, "demo", "demo");
    run_transcript(&mut again, "C: STAT\nS: +OK 1 *\nC: QUIT\nS: +OK *");
    // And --protocol imap now ends the IMAP session only.
    let o = admin(&s, &["kick", "demo", "--protocol", "imap"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines_until_closed(&mut imap),
        vec!["* BYE Disconnected by administrator."]
    );
}

#[test]
fn reload_applies_a_config_change_and_reports_a_broken_one() {
    let s = Server::start();
    let good = std::fs::read_to_string(&s.config_path).unwrap();
    std::fs::write(
        &s.config_path,
        format!("{good}\n[limits]\nmax_userip_connections = 1\n"),
    )
    .unwrap();
    let o = admin(&s, &["reload"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "configuration reloaded\n");
    let _first = pop3_login(&s, "demo", "demo");
    let mut second = s.pop3();
    second.line();
    run_transcript(
        &mut second,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: -ERR [IN-USE] Maximum number of connections from user+IP exceeded (1).",
    );
    let log = s.log();
    assert!(
        log.contains("control socket: reloading configuration"),
        "{log}"
    );

    std::fs::write(
        &s.config_path,
        format!("{good}\n[limits]\nmax_conections = 3\n"),
    )
    .unwrap();
    let o = admin(&s, &["reload"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("reload failed"), "{err}");
    assert!(err.contains("max_conections"), "{err}");
}

#[test]
fn the_socket_is_private_to_the_daemon_user() {
    let s = Server::start();
    let meta = std::fs::metadata(socket(&s)).expect("control socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    if is_root() {
        use std::os::unix::process::CommandExt;
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user nobody");
        assert_eq!(meta.uid(), nobody.uid.as_raw(), "owned by server.user");
        // Any other unprivileged user (here uid/gid 1, `daemon`) is refused, and told why.
        let o = std::process::Command::new(BIN)
            .args(["who", "-c"])
            .arg(&s.config_path)
            .uid(1)
            .gid(1)
            .output()
            .expect("run mailcove as uid 1");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("permission denied on"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn cli_errors_say_the_daemon_is_not_running() {
    let mut s = Server::start();
    s.kill();
    // SIGKILL leaves the socket file behind: nobody answers on it.
    assert!(socket(&s).exists());
    let o = admin(&s, &["who"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the daemon is not running"),
        "{}",
        stderr(&o)
    );
    // A restart replaces the stale socket and answers again.
    s.restart();
    let o = admin(&s, &["who"]);
    assert!(o.status.success(), "{}", stderr(&o));
    s.kill();
    std::fs::remove_file(socket(&s)).unwrap();
    let o = admin(&s, &["kick", "demo"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no control socket at"), "{err}");
    assert!(err.contains("control.sock"), "{err}");
}

/// The value of `key=` among the event's fields of a text log line (after its message, so the
/// span's own `user=` and `remote=` in the prefix are not read instead).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (_, fields) = line.split_once("session ended ")?;
    fields
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
}

#[test]
fn session_end_lines_carry_user_remote_duration_bytes_commands_and_reason() {
    let s = Server::builder().user("alice", "secret").start();
    let mut c = login_demo(&s);
    let local = c.cmd("n", "NOOP");
    assert_tagged_ok(&local);
    let bye = c.cmd("o", "LOGOUT");
    assert!(c.closed());
    let log = s.wait_log(|l| l.contains("session ended") && l.contains("reason=logout"));
    let line = log
        .lines()
        .find(|l| l.contains("session ended") && l.contains("user=demo"))
        .expect("IMAP session end line");
    assert_eq!(field(line, "protocol"), Some("imap"), "{line}");
    assert_eq!(field(line, "reason"), Some("logout"), "{line}");
    assert_eq!(field(line, "commands"), Some("3"), "{line}");
    let sent = "l LOGIN demo demo\r\n".len() + "n NOOP\r\n".len() + "o LOGOUT\r\n".len();
    assert_eq!(
        field(line, "bytes_in"),
        Some(sent.to_string().as_str()),
        "{line}"
    );
    assert!(bye.len() == 2, "{bye:?}");
    assert!(
        field(line, "bytes_out").is_some_and(|n| n.parse::<u64>().unwrap() > 0),
        "{line}"
    );
    assert!(field(line, "duration_ms").is_some(), "{line}");
    assert!(
        field(line, "remote").is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{line}"
    );
    // POP3, ended by the client dropping the connection.
    let p = pop3_login(&s, "alice", "secret");
    drop(p);
    let log = s.wait_log(|l| {
        l.lines()
            .any(|x| x.contains("session ended") && x.contains("user=alice"))
    });
    let line = log
        .lines()
        .find(|l| l.contains("session ended") && l.contains("user=alice"))
        .unwrap();
    assert_eq!(field(line, "protocol"), Some("pop3"), "{line}");
    assert_eq!(field(line, "reason"), Some("disconnect"), "{line}");
    assert_eq!(field(line, "commands"), Some("2"), "{line}");
}

#[test]
fn session_end_lines_in_json_format() {
    let s = Server::builder()
        .config("[logging]\nformat = \"json\"\n")
        .start();
    let mut c = login_demo(&s);
    c.cmd("o", "LOGOUT");
    assert!(c.closed());
    let log = s.wait_log(|l| l.contains("session ended"));
    let line = log
        .lines()
        .find(|l| l.contains("session ended"))
        .expect("session end line");
    let v: Value = serde_json::from_str(line).expect("JSON log line");
    let f = &v["fields"];
    assert_eq!(f["message"], "session ended");
    assert_eq!(f["user"], "demo");
    assert_eq!(f["protocol"], "imap");
    assert_eq!(f["reason"], "logout");
    assert_eq!(f["commands"], 2);
    assert_eq!(
        f["bytes_in"],
        ("l LOGIN demo demo\r\n".len() + "o LOGOUT\r\n".len()) as u64
    );
    assert!(f["bytes_out"].as_u64().is_some_and(|n| n > 0), "{line}");
    assert!(f["duration_ms"].is_u64(), "{line}");
    assert!(
        f["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{line}"
    );
}

#[test]
fn a_login_timeout_and_a_shutdown_are_reasons_too() {
    let mut s = Server::builder()
        .config("[timeouts]\npreauth_secs = 1\n")
        .start();
    // Never logs in: the login timeout ends it, and the line says so, with user "-".
    let mut idle = s.imap();
    idle.line();
    assert_eq!(
        lines_until_closed(&mut idle),
        vec!["* BYE Disconnected for inactivity."]
    );
    let log = s.wait_log(|l| l.contains("session ended") && l.contains("reason=timeout"));
    let line = log
        .lines()
        .find(|l| l.contains("session ended") && l.contains("reason=timeout"))
        .unwrap();
    assert_eq!(field(line, "user"), Some("-"), "{line}");
    assert_eq!(field(line, "commands"), Some("0"), "{line}");
    assert_eq!(field(line, "bytes_in"), Some("0"), "{line}");
    // A logged-in POP3 session when the daemon stops.
    let mut p = pop3_login(&s, "demo", "demo");
    s.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        lines_until_closed(&mut p),
        vec!["-ERR [SYS/TEMP] Server shutting down."]
    );
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("session ended") && l.contains("protocol=pop3"))
        .expect("POP3 session end line");
    assert_eq!(field(line, "reason"), Some("shutdown"), "{line}");
    assert_eq!(field(line, "user"), Some("demo"), "{line}");
    s.kill();
}

#[test]
fn kick_in_the_middle_of_an_append_stores_nothing() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // A synchronizing literal: the server asks for the data, the client sends only part of it.
    c.send("a APPEND INBOX {100}");
    assert!(c.line().starts_with("+ "), "literal continuation");
    c.send_raw(b"Subject: half\r\n\r\nonly part of the");
    // The server has read those bytes once `who` counts them.
    let deadline = Instant::now() + IO_TIMEOUT;
    while sessions_of(&s, "demo")[0]["bytes_in"].as_u64() < Some(60) {
        assert!(Instant::now() < deadline, "partial literal never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = admin(&s, &["kick", "demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines_until_closed(&mut c),
        vec!["* BYE Disconnected by administrator."]
    );
    let mut again = login_demo(&s);
    let r = again.cmd("s", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS INBOX (MESSAGES 0)");
    assert_tagged_ok(&r);
}

#[test]
fn too_many_failed_imap_logins_end_with_reason_closed() {
    let s = Server::start();
    let mut c = s.imap();
    c.line();
    for t in ["a", "b"] {
        let r = c.cmd(t, "LOGIN demo wrong");
        assert!(r.last().unwrap().starts_with(&format!("{t} NO")), "{r:?}");
    }
    c.send("c LOGIN demo wrong");
    assert_eq!(
        lines_until_closed(&mut c),
        vec!["* BYE Too many failed logins."]
    );
    let log = s.wait_log(|l| l.contains("session ended"));
    let line = log.lines().find(|l| l.contains("session ended")).unwrap();
    assert_eq!(field(line, "reason"), Some("closed"), "{line}");
    assert_eq!(field(line, "user"), Some("-"), "{line}");
    assert_eq!(field(line, "commands"), Some("3"), "{line}");
}
