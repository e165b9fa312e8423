//! The daemon foundation against the real binary: TLS on every port, STARTTLS/STLS, capabilities
//! before and after TLS, the STARTTLS injection defence, logins with every password scheme, the
//! failure penalty, limits, signals, privileges, logging and check-config.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

// ---------- POP3 over every transport ----------

#[test]
fn pop3_implicit_tls_greets_and_logs_in() {
    let s = Server::start();
    let mut c = s.pop3s();
    assert!(c.line().starts_with("+OK"));
    assert!(matches!(
        c.tls_version(),
        Some(rustls::ProtocolVersion::TLSv1_3) | Some(rustls::ProtocolVersion::TLSv1_2)
    ));
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, 0 messages.\nC: QUIT\nS: +OK Logging out.",
    );
    assert!(c.closed());
}

#[test]
fn pop3_capa_before_and_after_stls_on_a_remote_connection() {
    let s = Server::start();
    let mut c = Client::plain(s.ports.pop3_remote);
    c.line();
    c.send("CAPA");
    assert_eq!(c.line(), "+OK Capability list follows");
    let before = c.multiline();
    assert!(before.contains(&"STLS".to_string()), "{before:?}");
    assert!(
        !before.contains(&"USER".to_string()),
        "USER offered before TLS: {before:?}"
    );
    assert!(!before.iter().any(|l| l.starts_with("SASL")), "{before:?}");
    for want in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "EXPIRE NEVER",
    ] {
        assert!(
            before.contains(&want.to_string()),
            "{want} missing: {before:?}"
        );
    }
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("IMPLEMENTATION mailcove"))
    );
    // Plaintext is refused with a hint to use STLS.
    c.send("USER demo");
    let l = c.line();
    assert!(
        l.starts_with("-ERR [AUTH] Plaintext authentication disallowed"),
        "{l}"
    );
    assert!(l.contains("STLS"), "{l}");
    c.send("STLS");
    assert_eq!(c.line(), "+OK Begin TLS negotiation now.");
    c.upgrade(&s.cert.der);
    c.send("CAPA");
    c.line();
    let after = c.multiline();
    assert!(!after.contains(&"STLS".to_string()), "{after:?}");
    assert!(after.contains(&"USER".to_string()), "{after:?}");
    assert!(after.contains(&"SASL PLAIN LOGIN".to_string()), "{after:?}");
    c.send("STLS");
    assert!(c.line().starts_with("-ERR STLS not available"));
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, 0 messages.",
    );
}

#[test]
fn stls_discards_pipelined_commands() {
    let s = Server::start();
    let mut c = s.pop3();
    c.line();
    // The classic injection: a command hidden behind STLS in the same packet must never run.
    c.send_raw(b"STLS\r\nUSER demo\r\n");
    assert_eq!(c.line(), "+OK Begin TLS negotiation now.");
    c.upgrade(&s.cert.der);
    // Had USER run, PASS would be accepted; it must be refused as "no user given".
    c.send("PASS demo");
    assert_eq!(c.line(), "-ERR No user name given; send USER first.");
    c.send("NOOP");
    assert!(c.line().starts_with("-ERR Command not valid in this state"));
}

#[test]
fn pop3_auth_plain_with_initial_response_and_challenge() {
    let s = Server::start();
    let mut c = s.pop3();
    c.line();
    // base64("\0demo\0demo")
    c.send("AUTH PLAIN AGRlbW8AZGVtbw==");
    assert!(c.line().starts_with("+OK Logged in"));
    let mut c = s.pop3();
    c.line();
    c.send("AUTH PLAIN");
    assert_eq!(c.line(), "+ ");
    c.send("AGRlbW8Ad3Jvbmc="); // wrong password
    assert_eq!(c.line(), "-ERR [AUTH] Authentication failed.");
    c.send("AUTH LOGIN");
    assert_eq!(c.line(), "+ VXNlcm5hbWU6");
    c.send("ZGVtbw==");
    assert_eq!(c.line(), "+ UGFzc3dvcmQ6");
    c.send("*");
    assert_eq!(c.line(), "-ERR Authentication cancelled.");
    c.send("AUTH CRAM-MD5");
    assert_eq!(c.line(), "-ERR Unsupported authentication mechanism.");
    c.send("AUTH");
    assert_eq!(c.line(), "+OK");
    assert_eq!(c.multiline(), vec!["PLAIN", "LOGIN"]);
}

// ---------- IMAP over every transport ----------

#[test]
fn imap_implicit_tls_greets_with_capabilities_and_logs_in() {
    let s = Server::start();
    let mut c = s.imaps();
    let greeting = c.line();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    assert!(greeting.contains(" AUTH=PLAIN"), "{greeting}");
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    run_transcript(
        &mut c,
        "C: a1 LOGIN demo demo\nS: a1 OK [CAPABILITY IMAP4rev1 {*}] Logged in\nC: a2 NOOP\nS: a2 OK NOOP completed.\nC: a3 LOGOUT\nS: * BYE Logging out.\nS: a3 OK Logout completed.",
    );
    assert!(c.closed());
}

#[test]
fn imap_capability_before_and_after_starttls_on_a_remote_connection() {
    let s = Server::start();
    let mut c = Client::plain(s.ports.imap_remote);
    c.line();
    c.send("a CAPABILITY");
    let caps = c.line();
    assert!(caps.starts_with("* CAPABILITY IMAP4rev1"), "{caps}");
    assert!(caps.contains(" STARTTLS"), "{caps}");
    assert!(caps.contains(" LOGINDISABLED"), "{caps}");
    assert!(!caps.contains("AUTH="), "{caps}");
    assert_eq!(c.line(), "a OK Capability completed.");
    run_transcript(
        &mut c,
        "C: b LOGIN demo demo\nS: b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\nC: c AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\nS: c NO [PRIVACYREQUIRED] *\nC: d STARTTLS\nS: d OK Begin TLS negotiation now.",
    );
    c.upgrade(&s.cert.der);
    c.send("e CAPABILITY");
    let caps = c.line();
    assert!(!caps.contains("STARTTLS"), "{caps}");
    assert!(!caps.contains("LOGINDISABLED"), "{caps}");
    assert!(caps.contains(" AUTH=PLAIN"), "{caps}");
    assert_eq!(c.line(), "e OK Capability completed.");
    run_transcript(
        &mut c,
        "C: f STARTTLS\nS: f BAD STARTTLS not available: TLS is already active.\nC: g LOGIN demo demo\nS: g OK [CAPABILITY {*}] Logged in\nC: h STARTTLS\nS: h BAD Command not valid in this state: already logged in.",
    );
}

#[test]
fn starttls_injection_is_never_executed() {
    let s = Server::start();
    let mut c = s.imap();
    c.line();
    c.send_raw(b"a STARTTLS\r\nb CAPABILITY\r\n");
    assert_eq!(c.line(), "a OK Begin TLS negotiation now.");
    c.upgrade(&s.cert.der);
    c.send("c NOOP");
    // The first line inside TLS must answer c: nothing for the injected b.
    assert_eq!(c.line(), "c OK NOOP completed.");
}

#[test]
fn imap_authenticate_plain_with_and_without_sasl_ir() {
    let s = Server::start();
    let mut c = s.imap();
    c.line();
    run_transcript(
        &mut c,
        "C: a AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\nS: a OK [CAPABILITY {*}] Logged in",
    );
    let mut c = s.imap();
    c.line();
    run_transcript(
        &mut c,
        "C: a AUTHENTICATE PLAIN\nS: + \nC: *\nS: a BAD Authentication cancelled.\n\
         C: b AUTHENTICATE LOGIN\nS: + VXNlcm5hbWU6\nC: ZGVtbw==\nS: + UGFzc3dvcmQ6\nC: d3Jvbmc=\nS: b NO [AUTHENTICATIONFAILED] Authentication failed.\n\
         C: c AUTHENTICATE PLAIN\nS: + \nC: AGRlbW8AZGVtbw==\nS: c OK [CAPABILITY {*}] Logged in",
    );
}

#[test]
fn imap_wrong_state_and_unknown_commands() {
    let s = Server::start();
    let mut c = s.imap();
    c.line();
    run_transcript(
        &mut c,
        "C: a SELECT INBOX\nS: a BAD Command not valid in this state: log in first.\nC: b FROBNICATE\nS: b BAD *\nC: c LOGIN demo wrong\nS: c NO [AUTHENTICATIONFAILED] Authentication failed.\nC: d NOOP\nS: d OK NOOP completed.",
    );
}

// ---------- password schemes, identical failures, penalty ----------

/// Fixed hashes of the password "secret" made by other implementations (`openssl passwd -6`,
/// libxcrypt's bcrypt with the `$2y$` prefix Dovecot writes), in `doveadm pw` form.
const SHA512_CRYPT: &str = "{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
const SHA256_CRYPT: &str = "{SHA256-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
const BLF_CRYPT: &str = "{BLF-CRYPT}$2y$05$bKZrQifkKP7OaoWEwoLRE.KtL6u9Tt295R5/bmGpUhM0FugnGzni.";

#[test]
fn logins_with_argon2id_sha512_crypt_and_bcrypt() {
    let s = Server::builder()
        .users(&[
            format!("argon:{}::::::", cheap_argon2("secret")),
            format!("sha:{SHA512_CRYPT}::::::"),
            format!("blf:{BLF_CRYPT}::::::"),
            format!("sha256:{SHA256_CRYPT}::::::"),
            "plain:{PLAIN}secret::::::".to_string(),
        ])
        .start();
    for user in ["argon", "sha", "sha256", "blf"] {
        let mut c = s.pop3();
        c.line();
        c.send(&format!("USER {user}"));
        c.line();
        c.send("PASS secret");
        let l = c.line();
        assert!(l.starts_with("+OK Logged in"), "{user}: {l}");
    }
    // Plaintext schemes are refused unless the config allows them.
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER plain\nS: +OK\nC: PASS secret\nS: -ERR [AUTH] Authentication failed.",
    );
}

#[test]
fn unknown_user_and_wrong_password_look_the_same_and_the_penalty_grows_and_caps() {
    let s = Server::builder()
        .config("[auth]\nusers_file = \"$DIR/users\"\nfailure_delay_ms = 100\nfailure_delay_max_ms = 400\nhash_threads = 2\n")
        .start();
    let attempt = |user: &str| {
        let mut c = s.pop3();
        c.line();
        c.send(&format!("USER {user}"));
        c.line();
        let t = Instant::now();
        c.send("PASS wrong");
        let answer = c.line();
        (answer, t.elapsed())
    };
    let (a1, d1) = attempt("demo");
    let (a2, d2) = attempt("nosuchuser");
    let (a3, d3) = attempt("demo");
    let (a4, d4) = attempt("nosuchuser");
    assert_eq!(a1, "-ERR [AUTH] Authentication failed.");
    assert_eq!(a1, a2);
    assert_eq!(a2, a3);
    assert_eq!(a3, a4);
    // Each failure is answered only after the penalty, which doubles: 100, 200, 400, 400 (capped).
    assert!(d1 >= Duration::from_millis(100), "{d1:?}");
    assert!(d2 >= Duration::from_millis(200), "{d2:?}");
    assert!(d3 >= Duration::from_millis(400), "{d3:?}");
    assert!(d4 >= Duration::from_millis(400), "{d4:?}");
    let log = s.wait_log(|l| l.matches("delay_ms=").count() >= 4);
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("delay_ms=").nth(1))
        .map(|r| r.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(delays, vec!["100", "200", "400", "400"], "{log}");
    // A success resets the penalty for that address.
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, 0 messages.",
    );
    let (_, d5) = attempt("demo");
    assert!(d5 >= Duration::from_millis(100));
    let log = s.wait_log(|l| l.matches("delay_ms=").count() >= 5);
    assert!(
        log.lines()
            .rfind(|l| l.contains("delay_ms="))
            .unwrap()
            .contains("delay_ms=100")
    );
}

#[test]
fn passwords_never_reach_the_log() {
    let s = Server::start();
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS Sup3rSecretPw\nS: -ERR *",
    );
    let mut c = s.pop3();
    c.line();
    // AUTH PLAIN payload for \0demo\0Sup3rSecretPw
    c.send("AUTH PLAIN AGRlbW8AU3VwM3JTZWNyZXRQdw==");
    c.line();
    let log = s.wait_log(|l| l.matches("authentication failed").count() >= 2);
    assert!(!log.contains("Sup3rSecretPw"), "{log}");
    assert!(!log.contains("AGRlbW8AU3VwM3JTZWNyZXRQdw"), "{log}");
}

// ---------- limits ----------

#[test]
fn connection_limit_refuses_cleanly_and_others_keep_working() {
    let s = Server::builder()
        .config("[limits]\nmax_connections_per_ip = 2\n")
        .start();
    let mut a = s.pop3();
    assert!(a.line().starts_with("+OK"));
    let mut b = s.pop3();
    assert!(b.line().starts_with("+OK"));
    let mut c = s.pop3();
    assert_eq!(
        c.line(),
        "-ERR [SYS/TEMP] Too many connections from your IP address, try again later"
    );
    assert!(c.closed());
    let mut d = Client::plain(s.ports.imap);
    assert_eq!(
        d.line(),
        "* BYE [UNAVAILABLE] Too many connections from your IP address, try again later"
    );
    // The admitted sessions are unaffected.
    run_transcript(&mut a, "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK *");
    drop(b);
    // A freed slot is given back.
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let mut e = s.pop3();
        if e.line().starts_with("+OK") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn user_ip_limit_is_enforced_per_user_and_address() {
    let s = Server::builder()
        .config("[limits]\nmax_userip_connections = 1\n")
        .start();
    let mut a = s.pop3();
    a.line();
    run_transcript(&mut a, "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK *");
    let mut b = s.pop3s();
    b.line();
    run_transcript(
        &mut b,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: -ERR [IN-USE] Maximum number of connections from user+IP exceeded (1).",
    );
    assert!(b.closed());
}

#[test]
fn overlong_pop3_line_is_an_error_and_the_session_goes_on() {
    let s = Server::start();
    let mut c = s.pop3();
    c.line();
    c.send(&format!("USER {}", "x".repeat(300)));
    assert_eq!(
        c.line(),
        "-ERR Line too long (RFC 2449: at most 255 octets)."
    );
    run_transcript(
        &mut c,
        "C: FROB\nS: -ERR Unknown command.\nC: USER demo\nS: +OK\nC: PASS demo\nS: +OK *",
    );
}

// ---------- signals ----------

#[test]
fn sighup_swaps_the_certificate_for_new_connections_only() {
    let s = Server::start();
    let mut old = s.pop3s();
    old.line();
    let first = old.peer_cert();
    assert_eq!(first, s.cert.der);
    let fresh = TestCert::new();
    fresh.write(s.path());
    s.signal(Signal::SIGHUP);
    s.wait_log(|l| l.contains("configuration reloaded"));
    let mut new = Client::tls(s.ports.pop3s, &fresh.der);
    new.line();
    assert_eq!(new.peer_cert(), fresh.der);
    // The old connection keeps working on its old session.
    run_transcript(
        &mut old,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK *\nC: NOOP\nS: +OK",
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let s = Server::start();
    let good = std::fs::read_to_string(&s.config_path).unwrap();
    std::fs::write(
        &s.config_path,
        format!("{good}\n[limits]\nmax_conections = 3\n"),
    )
    .unwrap();
    s.signal(Signal::SIGHUP);
    let log = s.wait_log(|l| l.contains("reload failed"));
    assert!(log.contains("max_conections"), "{log}");
    let mut c = s.pop3();
    assert!(c.line().starts_with("+OK"));
}

#[test]
fn sigterm_says_goodbye_and_exits_within_the_grace_time() {
    let mut s = Server::start();
    let mut p = s.pop3();
    p.line();
    let mut i = s.imaps();
    i.line();
    run_transcript(&mut i, "C: a LOGIN demo demo\nS: a OK *");
    let t = Instant::now();
    s.signal(Signal::SIGTERM);
    assert_eq!(p.line(), "-ERR [SYS/TEMP] Server shutting down.");
    assert!(p.closed());
    assert_eq!(i.line(), "* BYE Server shutting down.");
    assert!(i.closed());
    let status = s.wait_exit(Duration::from_secs(10)).expect("did not exit");
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(s.log().contains("mailcove stopped"));
}

// ---------- privileges ----------

#[test]
fn runs_as_the_configured_user_when_started_as_root() {
    let s = Server::start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    if is_root() {
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        assert_eq!(
            uids,
            vec![nobody; 4],
            "real, effective, saved and fs uid must all be nobody"
        );
    } else {
        let me = nix::unistd::Uid::effective().as_raw();
        assert_eq!(uids, vec![me; 4]);
    }
}

#[test]
fn refuses_to_serve_as_root_without_a_user() {
    if !is_root() {
        // Only root can be refused for being root; as another user there is nothing to drop.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[listener]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:{}\"\ntls = \"none\"\n[auth]\nusers_file = \"{}/users\"\n[mail]\nlocation = \"{}/mail/%n\"\n",
            free_port(),
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("users"), "").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve sessions as root"), "{err}");
}

// ---------- CLI ----------

#[test]
fn check_config_reports_every_error_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[server]\nhostname = \"x\"\n\n[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:143\"\ntls = \"none\"\ncolour = \"blue\"\n\n[timeouts]\nimap_idle_secs = 5\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = cfg.display();
    assert!(
        err.contains(&format!("{f}:8: key `listener[0].colour`: unknown key")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}:11: key `timeouts.imap_idle_secs`: must be at least 1800"
        )),
        "{err}"
    );
    // A good file prints the effective configuration with defaults filled in.
    std::fs::write(
        &cfg,
        "[[listener]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:110\"\ntls = \"none\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("max_userip_connections = 10"), "{shown}");
    assert!(shown.contains("imap_idle_secs = 1800"), "{shown}");
}

#[test]
fn sample_and_dev_configs_are_valid() {
    for f in ["config/mailcove.toml", "config/dev.toml"] {
        let out = Command::new(BIN)
            .args(["check-config", "--config", f])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn user_admin_commands_edit_the_file_and_hash_password_prints_phc() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# keep me\nold:{PLAIN}x::::::\n").unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let u = users.to_str().unwrap();
    assert!(
        run(&["user", "add", "--users", u, "alice@example.org"], "pw1\n")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.starts_with("# keep me\nold:{PLAIN}x::::::\n"),
        "{text}"
    );
    assert!(
        text.contains("alice@example.org:{ARGON2ID}$argon2id$"),
        "{text}"
    );
    assert!(!text.contains("pw1"));
    assert!(
        !run(&["user", "add", "--users", u, "alice@example.org"], "pw1\n")
            .status
            .success()
    );
    assert!(
        run(
            &["user", "passwd", "--users", u, "alice@example.org"],
            "pw2\n"
        )
        .status
        .success()
    );
    let list = run(&["user", "list", "--users", u], "");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "old\nalice@example.org\n"
    );
    assert!(
        run(&["user", "del", "--users", u, "old"], "")
            .status
            .success()
    );
    assert!(!std::fs::read_to_string(&users).unwrap().contains("old:"));
    let out = run(&["hash-password"], "hunter2\n");
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(
        phc.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"),
        "{phc}"
    );
}
