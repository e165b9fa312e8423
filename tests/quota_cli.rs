//! `mailcove quota recalc`: rebuilds a user's Maildir++ `maildirsize` from the messages while the
//! daemon runs, and the daemon's GETQUOTA reports the rebuilt usage; an unknown user and a
//! users file with a quota rule that cannot be applied are clear errors (exit 1, one line).

mod common;

use std::process::Command;

use common::*;

/// Runs `mailcove quota recalc` with `args`; returns (status, stdout, stderr).
fn recalc(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["quota", "recalc", "--config"])
        .arg(config)
        .args(args)
        .env_remove("MAILCOVE_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A message of exactly `size` bytes.
fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: m{i}\r\n\r\n").into_bytes();
    m.resize(size - 2, b'y');
    m.extend_from_slice(b"\r\n");
    m
}

fn getquota(s: &Server) -> String {
    let mut c = s.imap();
    c.line();
    assert_tagged_ok(&c.cmd("l", "LOGIN demo pw"));
    let r = c.cmd("q", "GETQUOTA \"\"");
    assert_tagged_ok(&r);
    r[0].clone()
}

#[test]
fn recalc_rebuilds_maildirsize_from_the_messages() {
    if skip_unless_maildir("recalc_rebuilds_maildirsize_from_the_messages") {
        return;
    }
    let s = Server::builder()
        .users(&[format!(
            "demo:{}::::::userdb_quota_rule=*:storage=1M",
            cheap_argon2("pw")
        )])
        .start();
    s.append_messages("demo", "pw", "INBOX", &[&message(1, 600), &message(2, 700)]);
    assert_eq!(getquota(&s), "* QUOTA \"\" (STORAGE 2 1024)");
    // The incremental file goes wrong (a hand edit, a restore from backup): its definition line
    // still matches the limits, so the server trusts it and reports what it says.
    let size_file = s.maildir("demo").join("maildirsize");
    std::fs::write(&size_file, "1048576S,0C\n1300 2\n999999 50\n").unwrap();
    assert_eq!(getquota(&s), "* QUOTA \"\" (STORAGE 978 1024)");

    let (code, out, err) = recalc(&s.config_path, &["--user", "demo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "demo: storage 1300 of 1048576 bytes, messages 2 of unlimited\n"
    );
    // Maildir++: the definition line, then one line with the whole usage.
    assert_eq!(
        std::fs::read_to_string(&size_file).unwrap(),
        "1048576S,0C\n1300 2\n"
    );
    assert_eq!(getquota(&s), "* QUOTA \"\" (STORAGE 2 1024)");

    // Unknown users and bad users files are errors, on one line.
    let (code, out, err) = recalc(&s.config_path, &["--user", "nobody-here"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "mailcove: no such user \"nobody-here\"\n");
    std::fs::write(
        s.path().join("users"),
        format!(
            "demo:{}::::::userdb_quota_rule=*:storage=lots\n",
            cheap_argon2("pw")
        ),
    )
    .unwrap();
    let (code, _, err) = recalc(&s.config_path, &["--user", "demo"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("mailcove: users file: ") && err.contains(":1: quota rule"),
        "{err}"
    );
    assert!(err.contains("invalid size \"lots\""), "{err}");
}
