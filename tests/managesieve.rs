//! ManageSieve (RFC 5804) over the real binary: the greeting and capabilities, STARTTLS and
//! implicit TLS, AUTHENTICATE (initial response, continuations, cancel, failures, the plaintext
//! rule), every script command with its response codes, the limits, and the stored layout
//! delivery and Pigeonhole read (`~/sieve/NAME.sieve`, `~/.dovecot.sieve` -> `sieve/NAME.sieve`).
//! The last test drives Debian's `sieve-connect` client.
//!
//! Expected answers are RFC 5804's grammar applied by hand: `OK`/`NO`/`BYE`, a response code in
//! parentheses, a quoted human-readable string.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;

/// A server with three ManageSieve listeners and a user `sv` (password `secret`) whose home is
/// a directory the test can look into.
struct Sieve {
    server: Server,
    /// STARTTLS listener; loopback counts as secure.
    port: u16,
    /// STARTTLS listener that treats the client as remote (plaintext rule applies).
    remote: u16,
    /// Implicit TLS listener.
    tls: u16,
    _homes: tempfile::TempDir,
    home: PathBuf,
}

fn start(sieve_config: &str) -> Sieve {
    start_with(
        "sv",
        |home| {
            vec![
                format!("sv:{}::::{}::", cheap_argon2("secret"), home.display()),
                format!("nohome:{}::::::", cheap_argon2("pw")),
            ]
        },
        &format!("[sieve]\n{sieve_config}\n"),
    )
}

/// [`start`] with other users: `users` gives the users-file lines for a home directory named
/// `home_name`; `extra` is config after the three listeners (more listeners, whole tables).
fn start_with(home_name: &str, users: impl FnOnce(&Path) -> Vec<String>, extra: &str) -> Sieve {
    let homes = tempfile::Builder::new()
        .prefix("mailcove-ms-home")
        .tempdir()
        .unwrap();
    chmod(homes.path(), 0o755);
    let home = homes.path().join(home_name);
    std::fs::create_dir(&home).unwrap();
    // The daemon drops to nobody when the tests run as root.
    chmod(&home, 0o777);
    let (port, remote, tls) = (free_port(), free_port(), free_port());
    let server = Server::builder()
        .users(&users(&home))
        .config(&format!(
            r#"
[[listener]]
protocol = "managesieve"
address = "127.0.0.1:{port}"
tls = "starttls"

[[listener]]
protocol = "managesieve"
address = "127.0.0.1:{remote}"
tls = "starttls"
assume_remote = true

[[listener]]
protocol = "managesieve"
address = "127.0.0.1:{tls}"
tls = "implicit"

{extra}"#
        ))
        .start();
    Sieve {
        server,
        port,
        remote,
        tls,
        _homes: homes,
        home,
    }
}

/// Reads lines through the first final response (`OK`, `NO` or `BYE`); returns all of them.
fn response(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let l = c.line();
        let done = l.starts_with("OK") || l.starts_with("NO") || l.starts_with("BYE");
        out.push(l);
        if done {
            return out;
        }
    }
}

/// Sends one command line and returns its response lines.
fn cmd(c: &mut Client, line: &str) -> Vec<String> {
    c.send(line);
    response(c)
}

/// The final response line of a command.
fn last(c: &mut Client, line: &str) -> String {
    cmd(c, line).pop().unwrap()
}

fn plain_ir(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn connect(port: u16) -> (Client, Vec<String>) {
    let mut c = Client::plain(port);
    let greeting = response(&mut c);
    (c, greeting)
}

fn login(s: &Sieve) -> Client {
    let (mut c, _) = connect(s.port);
    let ir = plain_ir("sv", "secret");
    assert_eq!(
        last(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{ir}\"")),
        "OK \"Logged in.\""
    );
    c
}

/// Sends PUTSCRIPT with a non-synchronizing literal.
fn putscript(c: &mut Client, name: &str, script: &str) -> String {
    c.send_raw(format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes());
    response(c).pop().unwrap()
}

/// GETSCRIPT: the literal's octets, or the NO line.
fn getscript(c: &mut Client, name: &str) -> Result<Vec<u8>, String> {
    c.send(&format!("GETSCRIPT \"{name}\""));
    let first = c.line();
    let Some(n) = first
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return Err(first);
    };
    let data = c.bytes(n);
    assert_eq!(c.line(), "", "CRLF after the literal");
    assert_eq!(c.line(), "OK \"Getscript completed.\"");
    Ok(data)
}

fn active_link(home: &Path) -> Option<PathBuf> {
    std::fs::read_link(home.join(".dovecot.sieve")).ok()
}

/// Writes a script file as Pigeonhole (or a migration) left it, for tests of the commands that
/// do not compile anything.
fn place(home: &Path, name: &str, text: &str) {
    let dir = home.join("sieve");
    if !dir.exists() {
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o777);
    }
    let p = dir.join(format!("{name}.sieve"));
    std::fs::write(&p, text).unwrap();
    chmod(&p, 0o666);
}

fn listscripts(c: &mut Client) -> Vec<String> {
    let mut lines = cmd(c, "LISTSCRIPTS");
    assert_eq!(lines.pop().unwrap(), "OK \"Listscripts completed.\"");
    lines
}

const VERSION_LINE: &str = concat!(
    "\"IMPLEMENTATION\" \"mailcove ",
    env!("CARGO_PKG_VERSION"),
    "\""
);

#[test]
fn greeting_capabilities_and_starttls() {
    let s = start("");
    let (mut c, greeting) = connect(s.port);
    // RFC 5804 section 1.7: the greeting is the capability listing followed by OK.
    assert_eq!(greeting[0], VERSION_LINE);
    // The language's extensions (RFC 5228 section 2.10.5 names; fileinto is one of issue 20's).
    assert!(greeting[1].starts_with("\"SIEVE\" \""), "{greeting:?}");
    assert!(
        greeting[1].split(['"', ' ']).any(|e| e == "fileinto"),
        "{greeting:?}"
    );
    for want in [
        "\"SASL\" \"PLAIN LOGIN\"",
        "\"STARTTLS\"",
        "\"MAXREDIRECTS\" \"4\"",
        "\"VERSION\" \"1.0\"",
        "\"UNAUTHENTICATE\"",
    ] {
        assert!(
            greeting.contains(&want.to_string()),
            "{want} in {greeting:?}"
        );
    }
    assert!(!greeting.iter().any(|l| l.starts_with("\"OWNER\"")));
    assert_eq!(
        greeting.last().unwrap(),
        "OK \"mailcove ManageSieve ready.\""
    );

    let caps = cmd(&mut c, "CAPABILITY");
    assert_eq!(caps[..caps.len() - 1], greeting[..greeting.len() - 1]);
    assert_eq!(caps.last().unwrap(), "OK \"Capability completed.\"");
    // Command names are case-insensitive.
    assert_eq!(last(&mut c, "capability"), "OK \"Capability completed.\"");

    // Section 2.2: after the handshake the server re-issues the capabilities, without STARTTLS.
    assert_eq!(
        last(&mut c, "STARTTLS"),
        "OK \"Begin TLS negotiation now.\""
    );
    c.upgrade(&s.server.cert.der);
    let after = response(&mut c);
    assert_eq!(after[0], VERSION_LINE);
    assert!(!after.contains(&"\"STARTTLS\"".to_string()), "{after:?}");
    assert!(after.contains(&"\"SASL\" \"PLAIN LOGIN\"".to_string()));
    assert_eq!(after.last().unwrap(), "OK \"TLS negotiation successful.\"");
    assert!(last(&mut c, "STARTTLS").starts_with("NO "));

    let ir = plain_ir("sv", "secret");
    assert_eq!(
        last(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{ir}\"")),
        "OK \"Logged in.\""
    );
    // After login: OWNER, no mechanisms (no re-authentication, section 2.1), no STARTTLS.
    let caps = cmd(&mut c, "CAPABILITY");
    assert!(caps.contains(&"\"OWNER\" \"sv\"".to_string()), "{caps:?}");
    assert!(caps.contains(&"\"SASL\" \"\"".to_string()), "{caps:?}");
    assert_eq!(
        last(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{ir}\"")),
        "NO \"Already authenticated.\""
    );
    assert_eq!(last(&mut c, "STARTTLS"), "NO \"Already authenticated.\"");
    assert_eq!(last(&mut c, "LOGOUT"), "OK \"Logout completed.\"");
    assert!(c.closed());
}

#[test]
fn implicit_tls_and_the_plaintext_rule_off_loopback() {
    let s = start("");
    // A remote client without TLS is offered no mechanism and refused with ENCRYPT-NEEDED.
    let (mut c, greeting) = connect(s.remote);
    assert!(
        greeting.contains(&"\"SASL\" \"\"".to_string()),
        "{greeting:?}"
    );
    assert!(greeting.contains(&"\"STARTTLS\"".to_string()));
    let ir = plain_ir("sv", "secret");
    let auth = format!("AUTHENTICATE \"PLAIN\" \"{ir}\"");
    assert!(
        last(&mut c, &auth).starts_with("NO (ENCRYPT-NEEDED) "),
        "plaintext refused"
    );
    assert_eq!(
        last(&mut c, "STARTTLS"),
        "OK \"Begin TLS negotiation now.\""
    );
    c.upgrade(&s.server.cert.der);
    let caps = response(&mut c);
    assert!(caps.contains(&"\"SASL\" \"PLAIN LOGIN\"".to_string()));
    assert_eq!(last(&mut c, &auth), "OK \"Logged in.\"");

    // Implicit TLS: no STARTTLS offered, login works.
    let mut t = Client::tls(s.tls, &s.server.cert.der);
    let greeting = response(&mut t);
    assert_eq!(greeting[0], VERSION_LINE);
    assert!(!greeting.contains(&"\"STARTTLS\"".to_string()));
    assert_eq!(last(&mut t, &auth), "OK \"Logged in.\"");
    assert_eq!(listscripts(&mut t), Vec::<String>::new());
}

#[test]
fn authenticate_continuations_cancel_and_failures() {
    let s = start("");
    let (mut c, _) = connect(s.port);
    // PLAIN without an initial response: an empty challenge, answered by a quoted string.
    c.send("AUTHENTICATE \"PLAIN\"");
    assert_eq!(c.line(), "\"\"");
    c.send("\"*\"");
    assert_eq!(c.line(), "NO \"Authentication cancelled.\"");
    // ... answered by a literal (RFC 5804 section 2.1 allows either).
    c.send("AUTHENTICATE \"PLAIN\"");
    assert_eq!(c.line(), "\"\"");
    let ir = plain_ir("sv", "secret");
    c.send_raw(format!("{{{}+}}\r\n{ir}\r\n", ir.len()).as_bytes());
    assert_eq!(c.line(), "OK \"Logged in.\"");
    assert_eq!(
        last(&mut c, "UNAUTHENTICATE"),
        "OK \"Unauthenticate completed.\""
    );
    assert_eq!(last(&mut c, "LISTSCRIPTS"), "NO \"Authenticate first.\"");
    // LOGIN: two base64 challenges.
    c.send("AUTHENTICATE \"LOGIN\"");
    assert_eq!(c.line(), "\"VXNlcm5hbWU6\"");
    c.send("\"c3Y=\"");
    assert_eq!(c.line(), "\"UGFzc3dvcmQ6\"");
    c.send("\"c2VjcmV0\"");
    assert_eq!(c.line(), "OK \"Logged in.\"");
    assert_eq!(
        last(&mut c, "UNAUTHENTICATE"),
        "OK \"Unauthenticate completed.\""
    );

    // Section 2.1: LOGIN speaks first, so an initial response is refused.
    assert_eq!(
        last(&mut c, "AUTHENTICATE \"LOGIN\" \"c3Y=\""),
        "NO \"Invalid SASL response.\""
    );
    assert_eq!(
        last(&mut c, "AUTHENTICATE \"X-UNKNOWN\""),
        "NO \"Unsupported authentication mechanism.\""
    );
    assert_eq!(
        last(&mut c, "AUTHENTICATE \"PLAIN\" \"not base64!\""),
        "NO \"Invalid SASL response.\""
    );
    // A user without a home has nowhere to keep scripts.
    let nohome = plain_ir("nohome", "pw");
    assert_eq!(
        last(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{nohome}\"")),
        "NO \"Script storage is not available for this account.\""
    );
    // Wrong passwords: NO, and BYE at the third failure on the connection.
    let bad = plain_ir("sv", "wrong");
    let auth_bad = format!("AUTHENTICATE \"PLAIN\" \"{bad}\"");
    assert_eq!(last(&mut c, &auth_bad), "NO \"Authentication failed.\"");
    assert_eq!(last(&mut c, &auth_bad), "NO \"Authentication failed.\"");
    assert_eq!(
        last(&mut c, &auth_bad),
        "BYE \"Too many authentication failures.\""
    );
    assert!(c.closed());
    let log = s.server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("login") && l.contains("AUTHENTICATE") && l.contains("sv")),
        "login log line"
    );
}

#[test]
fn script_commands_on_scripts_in_pigeonholes_layout() {
    let s = start("max_scripts = 3\nmax_script_size = 1000");
    place(&s.home, "alpha", "keep;\r\n");
    place(&s.home, "beta", "discard;\r\n");
    let mut c = login(&s);
    assert_eq!(listscripts(&mut c), ["\"alpha\"", "\"beta\""]);

    // SETACTIVE writes the relative link Pigeonhole writes.
    assert_eq!(
        last(&mut c, "SETACTIVE \"alpha\""),
        "OK \"Setactive completed.\""
    );
    assert_eq!(
        active_link(&s.home),
        Some(PathBuf::from("sieve/alpha.sieve"))
    );
    assert_eq!(listscripts(&mut c), ["\"alpha\" ACTIVE", "\"beta\""]);
    assert!(last(&mut c, "SETACTIVE \"nope\"").starts_with("NO (NONEXISTENT) "));
    assert_eq!(
        active_link(&s.home),
        Some(PathBuf::from("sieve/alpha.sieve"))
    );

    assert_eq!(getscript(&mut c, "alpha").unwrap(), b"keep;\r\n");
    assert!(
        getscript(&mut c, "nope")
            .unwrap_err()
            .starts_with("NO (NONEXISTENT) ")
    );

    assert!(last(&mut c, "DELETESCRIPT \"alpha\"").starts_with("NO (ACTIVE) "));
    assert!(last(&mut c, "DELETESCRIPT \"nope\"").starts_with("NO (NONEXISTENT) "));

    // RENAMESCRIPT: onto an existing name is refused; the active script stays active.
    assert!(last(&mut c, "RENAMESCRIPT \"alpha\" \"beta\"").starts_with("NO (ALREADYEXISTS) "));
    assert!(last(&mut c, "RENAMESCRIPT \"nope\" \"x\"").starts_with("NO (NONEXISTENT) "));
    assert_eq!(
        last(&mut c, "RENAMESCRIPT \"alpha\" \"gamma\""),
        "OK \"Renamescript completed.\""
    );
    assert_eq!(
        active_link(&s.home),
        Some(PathBuf::from("sieve/gamma.sieve"))
    );
    assert!(!s.home.join("sieve/alpha.sieve").exists());
    assert_eq!(listscripts(&mut c), ["\"beta\"", "\"gamma\" ACTIVE"]);

    // HAVESPACE against max_script_size = 1000 and max_scripts = 3 (two stored).
    assert_eq!(
        last(&mut c, "HAVESPACE \"new\" 1000"),
        "OK \"Putscript would succeed.\""
    );
    assert!(last(&mut c, "HAVESPACE \"new\" 1001").starts_with("NO (QUOTA/MAXSIZE) "));
    place(&s.home, "delta", "stop;\r\n");
    assert!(last(&mut c, "HAVESPACE \"new\" 10").starts_with("NO (QUOTA/MAXSCRIPTS) "));
    // Replacing a script adds none.
    assert_eq!(
        last(&mut c, "HAVESPACE \"beta\" 10"),
        "OK \"Putscript would succeed.\""
    );

    // SETACTIVE "" deactivates: the link is gone, no script is marked.
    assert_eq!(
        last(&mut c, "SETACTIVE \"\""),
        "OK \"Setactive completed.\""
    );
    assert_eq!(active_link(&s.home), None);
    assert_eq!(listscripts(&mut c), ["\"beta\"", "\"delta\"", "\"gamma\""]);
    assert_eq!(
        last(&mut c, "SETACTIVE \"\""),
        "OK \"Setactive completed.\""
    );
    assert_eq!(
        last(&mut c, "DELETESCRIPT \"gamma\""),
        "OK \"Deletescript completed.\""
    );
    assert!(!s.home.join("sieve/gamma.sieve").exists());

    // Names: RFC 5804 section 1.6 and what a file name can hold.
    for bad in [
        "GETSCRIPT \"\"",
        "GETSCRIPT \"a/b\"",
        "GETSCRIPT \"..\"",
        "DELETESCRIPT \".x\"",
    ] {
        assert!(
            last(&mut c, bad).starts_with("NO \"Invalid script name"),
            "{bad}"
        );
    }
    c.send_raw(b"GETSCRIPT {3+}\r\na\tb\r\n");
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "NO \"Invalid script name: control characters are not allowed.\""
    );
    let long = "n".repeat(129);
    assert_eq!(
        last(&mut c, &format!("GETSCRIPT \"{long}\"")),
        "NO \"Invalid script name: name too long.\""
    );
    // A name in UTF-8 is a name like any other.
    place(&s.home, "Büro", "keep;\r\n");
    assert_eq!(getscript(&mut c, "Büro").unwrap(), b"keep;\r\n");

    // NOOP, with the TAG response code (section 2.13).
    assert_eq!(last(&mut c, "NOOP"), "OK \"NOOP completed.\"");
    assert_eq!(
        last(&mut c, "NOOP \"STARTTLS-SYNC-42\""),
        "OK (TAG \"STARTTLS-SYNC-42\") \"Done\""
    );
    assert_eq!(last(&mut c, "LOGOUT"), "OK \"Logout completed.\"");
    assert!(c.closed());
}

#[test]
fn bad_input_is_answered_and_the_session_goes_on() {
    let s = start("max_script_size = 1000");
    let (mut c, _) = connect(s.port);
    assert_eq!(last(&mut c, "FROBNICATE"), "NO \"Unknown command.\"");
    assert_eq!(last(&mut c, "LISTSCRIPTS"), "NO \"Authenticate first.\"");
    assert_eq!(
        last(&mut c, "NOOP \"unterminated"),
        "NO \"Syntax error: invalid quoted string.\""
    );
    assert_eq!(
        last(&mut c, "CAPABILITY extra"),
        "NO \"Invalid arguments: too many arguments.\""
    );
    let mut c = login(&s);
    // A line over the limit is read to its end and answered.
    c.send(&format!("NOOP \"{}\"", "x".repeat(70 * 1024)));
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "NO \"Command line too long.\""
    );
    assert_eq!(
        last(&mut c, "HAVESPACE \"a\" 99999999999"),
        "NO \"Syntax error: invalid number.\""
    );
    assert_eq!(
        last(&mut c, "HAVESPACE \"a\""),
        "NO \"Invalid arguments: expected a size.\""
    );
    // A literal larger than a script may be is read and thrown away, never executed.
    let junk = "LOGOUT\r\n".repeat(2000);
    c.send_raw(format!("PUTSCRIPT \"big\" {{{}+}}\r\n{junk}\r\n", junk.len()).as_bytes());
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "NO (QUOTA/MAXSIZE) \"Script too large.\""
    );
    assert_eq!(
        last(&mut c, "NOOP \"after\""),
        "OK (TAG \"after\") \"Done\""
    );
    // A bad line that announces a literal: the literal is skipped too.
    c.send_raw(b"NOOP \"a\\q\" {8+}\r\nLOGOUT\r\n\r\n");
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "NO \"Syntax error: invalid quoted string.\""
    );
    assert_eq!(
        last(&mut c, "NOOP \"still\""),
        "OK (TAG \"still\") \"Done\""
    );
    assert!(!s.home.join("sieve/big.sieve").exists());
    // Twenty bad commands end the session; this connection has had four (the oversized
    // literal is a quota answer, not a bad command).
    for _ in 0..15 {
        assert_eq!(last(&mut c, "BOGUS"), "NO \"Unknown command.\"");
    }
    assert_eq!(last(&mut c, "BOGUS"), "BYE \"Too many invalid commands.\"");
    assert!(c.closed());
    // A literal too large to even skip (over 64 MiB) ends the connection at once.
    let mut c = login(&s);
    c.send("PUTSCRIPT \"huge\" {4294967295+}");
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "BYE \"Literal too large.\""
    );
    assert!(c.closed());
}

// ---- PUTSCRIPT and CHECKSCRIPT compile the script: they need the Sieve language. ----

const FILTER: &str = "require \"fileinto\";\r\nif header :contains \"subject\" \"[list]\" {\r\n  fileinto \"Lists\";\r\n}\r\n";
const BROKEN: &str = "keep;\r\nnosuchcommand \"x\";\r\n";

#[test]
fn putscript_stores_only_scripts_that_compile() {
    let s = start("max_scripts = 3\nmax_script_size = 1000");
    let mut c = login(&s);
    assert_eq!(
        putscript(&mut c, "lists", FILTER),
        "OK \"PUTSCRIPT completed.\""
    );
    // Stored as Pigeonhole stores it, byte for byte, mode 0600 and nothing left in tmp/.
    let path = s.home.join("sieve/lists.sieve");
    assert_eq!(std::fs::read(&path).unwrap(), FILTER.as_bytes());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_dir(s.home.join("sieve/tmp")).unwrap().count(),
        0
    );
    assert_eq!(getscript(&mut c, "lists").unwrap(), FILTER.as_bytes());

    // A quoted string and the synchronizing literal form are scripts too.
    assert_eq!(
        last(&mut c, "PUTSCRIPT \"tiny\" \"keep;\""),
        "OK \"PUTSCRIPT completed.\""
    );
    c.send_raw(b"PUTSCRIPT \"tiny\" {8}\r\ndiscard;\r\n");
    assert_eq!(
        response(&mut c).pop().unwrap(),
        "OK \"PUTSCRIPT completed.\""
    );
    assert_eq!(
        std::fs::read(s.home.join("sieve/tiny.sieve")).unwrap(),
        b"discard;"
    );

    // Errors carry the line number; nothing is stored.
    let no = putscript(&mut c, "broken", BROKEN);
    assert!(no.starts_with("NO \"line 2: "), "{no}");
    assert!(!s.home.join("sieve/broken.sieve").exists());
    c.send_raw(format!("CHECKSCRIPT {{{}+}}\r\n{BROKEN}\r\n", BROKEN.len()).as_bytes());
    let no = response(&mut c).pop().unwrap();
    assert!(no.starts_with("NO \"line 2: "), "{no}");
    c.send_raw(format!("CHECKSCRIPT {{{}+}}\r\n{FILTER}\r\n", FILTER.len()).as_bytes());
    assert_eq!(response(&mut c).pop().unwrap(), "OK \"Script is valid.\"");

    // Quota: a fourth script, and a script over max_script_size.
    assert_eq!(
        putscript(&mut c, "third", "keep;"),
        "OK \"PUTSCRIPT completed.\""
    );
    assert!(putscript(&mut c, "fourth", "keep;").starts_with("NO (QUOTA/MAXSCRIPTS) "));
    let big = format!("{}keep;\r\n", "# padding\r\n".repeat(100));
    assert!(putscript(&mut c, "tiny", &big).starts_with("NO (QUOTA/MAXSIZE) "));
    assert_eq!(
        std::fs::read(s.home.join("sieve/tiny.sieve")).unwrap(),
        b"discard;"
    );

    // Activate, as a client does after uploading: the link delivery follows.
    assert_eq!(
        last(&mut c, "SETACTIVE \"lists\""),
        "OK \"Setactive completed.\""
    );
    assert_eq!(
        active_link(&s.home),
        Some(PathBuf::from("sieve/lists.sieve"))
    );
    assert_eq!(
        std::fs::read(s.home.join(".dovecot.sieve")).unwrap(),
        FILTER.as_bytes()
    );
}

#[test]
fn sieve_connect_uploads_lists_activates_downloads_and_deletes() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    assert!(
        Command::new("sieve-connect")
            .arg("--version")
            .output()
            .is_ok(),
        "sieve-connect is not installed (Debian package sieve-connect; tests/run-all installs it)"
    );
    let s = start("");
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("filter.sieve");
    std::fs::write(&local, FILTER).unwrap();
    let run = |action: &[&str]| -> String {
        let mut child = Command::new("sieve-connect")
            .args(["--server", "127.0.0.1", "--port", &s.port.to_string()])
            .args([
                "--user",
                "sv",
                "--passwordfd",
                "0",
                "--notlsverify",
                "--nosrv",
            ])
            .args(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "sieve-connect {action:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let local_s = local.to_str().unwrap();
    run(&[
        "--localsieve",
        local_s,
        "--remotesieve",
        "filter",
        "--upload",
    ]);
    assert_eq!(
        std::fs::read(s.home.join("sieve/filter.sieve")).unwrap(),
        FILTER.as_bytes()
    );
    run(&["--remotesieve", "filter", "--activate"]);
    assert_eq!(
        active_link(&s.home),
        Some(PathBuf::from("sieve/filter.sieve"))
    );
    let listed = run(&["--list"]);
    // sieve-connect prints the LISTSCRIPTS lines as the server sent them.
    assert!(
        listed.lines().any(|l| l.trim() == "\"filter\" ACTIVE"),
        "{listed:?}"
    );
    let back = work.path().join("back.sieve");
    run(&[
        "--localsieve",
        back.to_str().unwrap(),
        "--remotesieve",
        "filter",
        "--download",
    ]);
    assert_eq!(std::fs::read(&back).unwrap(), FILTER.as_bytes());
    run(&["--deactivate"]);
    assert_eq!(active_link(&s.home), None);
    run(&["--remotesieve", "filter", "--delete"]);
    assert!(!s.home.join("sieve/filter.sieve").exists());
    assert!(!run(&["--list"]).contains("filter"));
}

// ---- AUTHENTICATE with IMAP's other mechanisms: SCRAM and OAUTHBEARER ----

/// The users-file hash of `mailcove user add --scheme SCHEME` for `password`.
fn added_hash(scheme: &str, password: &str) -> String {
    let line = user_add_line(scheme, "x", password);
    let hash = line.split(':').nth(1).unwrap().to_owned();
    assert!(hash.starts_with(&format!("{{{scheme}}}")), "{hash}");
    hash
}

/// The base64 inside one quoted ManageSieve string (a challenge, or a SASL response code).
fn quoted_b64(s: &str) -> Vec<u8> {
    let inner = s.trim_matches('"');
    base64::engine::general_purpose::STANDARD
        .decode(inner)
        .unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A SCRAM-SHA-256 client (RFC 5802 section 3, RFC 7677) for user `sc`, with the client-first
/// message as initial response if `ir`. Returns the final response line; checks the server's
/// signature when the server sends one (`OK (SASL "v=...")`).
fn scram_sha256(c: &mut Client, password: &str, ir: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bare = "n=sc,r=managesieveclientnonce42";
    let first = b64.encode(format!("n,,{bare}"));
    if ir {
        c.send(&format!("AUTHENTICATE \"SCRAM-SHA-256\" \"{first}\""));
    } else {
        c.send("AUTHENTICATE \"SCRAM-SHA-256\"");
        // Section 2.1: an empty challenge is an empty string.
        assert_eq!(c.line(), "\"\"");
        c.send(&format!("\"{first}\""));
    }
    let l = c.line();
    if !l.starts_with('"') {
        return l;
    }
    let server_first = String::from_utf8(quoted_b64(&l)).unwrap();
    let (nonce, salt, iterations) = scram_client::server_first_attrs(&server_first);
    assert!(
        nonce.starts_with("managesieveclientnonce42"),
        "{server_first}"
    );
    let salt = b64.decode(salt).unwrap();
    let without = format!("c={},r={nonce}", b64.encode("n,,"));
    let auth_message = format!("{bare},{server_first},{without}");
    let (proof, signature) =
        scram_client::proof_and_signature(password, &salt, iterations, &auth_message);
    c.send(&format!(
        "\"{}\"",
        b64.encode(format!("{without},p={}", b64.encode(proof)))
    ));
    let l = c.line();
    if let Some(rest) = l.strip_prefix("OK (SASL ") {
        let (data, _) = rest.split_once(')').unwrap();
        let expected = format!("v={}", b64.encode(signature));
        assert_eq!(String::from_utf8(quoted_b64(data)).unwrap(), expected);
    }
    l
}

/// An RS256 JWT signed with the RSA key of tests/fixtures/oauth (as tests/auth_oauth.rs), with
/// its JWKS.
fn rs256_token(claims: &serde_json::Value) -> (String, String) {
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oauth/rsa2048.der"
    ))
    .unwrap();
    let key = RsaKeyPair::from_der(&der).unwrap();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "rsa1", "use": "sig",
        "n": url.encode(&public.n), "e": url.encode(&public.e)}]})
    .to_string();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "rsa1"});
    let input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    (format!("{input}.{}", url.encode(sig)), jwks)
}

fn bearer_claims(user: &str, exp_in: i64) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    serde_json::json!({"iss": "https://idp.example.com/realms/mail", "aud": "mailcove",
        "email": user, "sub": "f00", "iat": now - 10, "nbf": now - 10, "exp": now + exp_in})
}

fn oauthbearer_ir(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!(
        "n,,\x01host=localhost\x01port=4190\x01auth=Bearer {token}\x01\x01"
    ))
}

#[test]
fn scram_and_oauthbearer_as_imap_offers_them() {
    let imap = free_port();
    let scram = added_hash("SCRAM-SHA-256", "pencil");
    let s = start_with(
        "sc",
        |home| {
            vec![
                format!("sc:{scram}::::{}::", home.display()),
                format!("ob:{}::::{}::", cheap_argon2("pw"), home.display()),
            ]
        },
        &format!(
            r#"
[[listener]]
protocol = "imap"
address = "127.0.0.1:{imap}"
tls = "starttls"
assume_remote = true

[auth]
users_file = "$DIR/users"
failure_delay_ms = 10
failure_delay_max_ms = 20
hash_threads = 2
scram_mechanisms = ["SCRAM-SHA-256"]

[auth.oauth2]
enabled = true
jwks_file = "$DIR/jwks.json"
issuers = ["https://idp.example.com/realms/mail"]
audience = "mailcove"
username_attribute = "email"
"#
        ),
    );
    let (server, port, remote, tls) = (&s.server, s.port, s.remote, s.tls);
    let (good, jwks) = rs256_token(&bearer_claims("ob", 600));
    std::fs::write(server.path().join("jwks.json"), jwks).unwrap();

    // The SASL list is IMAP's AUTH= list on the same kind of connection.
    let (_, greeting) = connect(port);
    assert!(
        greeting.contains(&"\"SASL\" \"PLAIN LOGIN OAUTHBEARER XOAUTH2 SCRAM-SHA-256\"".into()),
        "{greeting:?}"
    );
    let (_, greeting) = connect(remote);
    assert!(
        greeting.contains(&"\"SASL\" \"SCRAM-SHA-256\"".into()),
        "{greeting:?}"
    );
    let mut i = Client::plain(imap);
    let imap_greeting = i.line();
    assert!(
        imap_greeting.contains("AUTH=SCRAM-SHA-256"),
        "{imap_greeting}"
    );
    assert!(!imap_greeting.contains("AUTH=PLAIN"), "{imap_greeting}");
    assert!(
        !imap_greeting.contains("AUTH=OAUTHBEARER"),
        "{imap_greeting}"
    );
    let mut t = Client::tls(tls, &server.cert.der);
    let greeting = response(&mut t);
    let plus = t.tls_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    let want = if plus {
        "\"SASL\" \"PLAIN LOGIN OAUTHBEARER XOAUTH2 SCRAM-SHA-256 SCRAM-SHA-256-PLUS\""
    } else {
        "\"SASL\" \"PLAIN LOGIN OAUTHBEARER XOAUTH2 SCRAM-SHA-256\""
    };
    assert!(greeting.contains(&want.into()), "{greeting:?}");

    // SCRAM-SHA-256 off loopback without TLS (it never sends the password), with the
    // server's final message in OK (SASL ...) (RFC 5804 section 2.1).
    let (mut c, _) = connect(remote);
    let ok = scram_sha256(&mut c, "pencil", true);
    assert!(ok.starts_with("OK (SASL \""), "{ok}");
    assert!(ok.ends_with(" \"Logged in.\""), "{ok}");
    assert!(cmd(&mut c, "CAPABILITY").contains(&"\"OWNER\" \"sc\"".into()));
    assert_eq!(
        last(&mut c, "UNAUTHENTICATE"),
        "OK \"Unauthenticate completed.\""
    );
    // Without an initial response: an empty challenge first.
    let ok = scram_sha256(&mut c, "pencil", false);
    assert!(ok.starts_with("OK (SASL \""), "{ok}");
    assert_eq!(
        last(&mut c, "UNAUTHENTICATE"),
        "OK \"Unauthenticate completed.\""
    );
    // A wrong password fails like one; -PLUS without a channel binding is not offered.
    assert_eq!(
        scram_sha256(&mut c, "wrong", true),
        "NO \"Authentication failed.\""
    );
    assert_eq!(
        last(
            &mut c,
            "AUTHENTICATE \"SCRAM-SHA-256-PLUS\" \"eSwsbj1zYyxyPXg=\""
        ),
        "NO \"Unsupported authentication mechanism.\""
    );
    // Cancelled after the server-first message.
    let first = base64::engine::general_purpose::STANDARD.encode("n,,n=sc,r=xyz");
    c.send(&format!("AUTHENTICATE \"SCRAM-SHA-256\" \"{first}\""));
    assert!(c.line().starts_with('"'));
    c.send("\"*\"");
    assert_eq!(c.line(), "NO \"Authentication cancelled.\"");
    // Bearer tokens are credentials: refused here like PLAIN.
    assert!(
        last(
            &mut c,
            &format!("AUTHENTICATE \"OAUTHBEARER\" \"{}\"", oauthbearer_ir(&good))
        )
        .starts_with("NO (ENCRYPT-NEEDED) "),
    );

    // OAUTHBEARER where plaintext is allowed: a good token logs in.
    let (mut c, _) = connect(port);
    assert_eq!(
        last(
            &mut c,
            &format!("AUTHENTICATE \"OAUTHBEARER\" \"{}\"", oauthbearer_ir(&good))
        ),
        "OK \"Logged in.\""
    );
    assert!(cmd(&mut c, "CAPABILITY").contains(&"\"OWNER\" \"ob\"".into()));
    assert_eq!(
        last(&mut c, "UNAUTHENTICATE"),
        "OK \"Unauthenticate completed.\""
    );
    // A token expired an hour ago (past the clock leeway): RFC 7628 3.2.2's JSON error challenge, the dummy response, then NO.
    let (expired, _) = rs256_token(&bearer_claims("ob", -3600));
    c.send(&format!(
        "AUTHENTICATE \"OAUTHBEARER\" \"{}\"",
        oauthbearer_ir(&expired)
    ));
    let challenge: serde_json::Value = serde_json::from_slice(&quoted_b64(&c.line())).unwrap();
    assert_eq!(challenge["status"], "invalid_token");
    c.send("\"AQ==\"");
    assert_eq!(c.line(), "NO \"Authentication failed.\"");
    // XOAUTH2 with the good token.
    let x = base64::engine::general_purpose::STANDARD
        .encode(format!("user=ob\x01auth=Bearer {good}\x01\x01"));
    assert_eq!(
        last(&mut c, &format!("AUTHENTICATE \"XOAUTH2\" \"{x}\"")),
        "OK \"Logged in.\""
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("login") && l.contains("SCRAM-SHA-256") && l.contains("sc")),
        "SCRAM login log line"
    );
}
