//! A user's own mail location from the users file (Dovecot's `userdb_mail` extra field, the same
//! field SQL and LDAP user databases fill from a `mail` column or attribute): IMAP APPEND and
//! POP3 both reach the Maildir it names, `~` is that user's home, `%d/%n` its name, Dovecot's
//! index options are accepted, and a location mailcove cannot serve (another format, a relative
//! path, `LAYOUT=fs`) refuses that user's login with a clear answer while everyone else goes on.
//! tests/auth_sql.rs checks the same field coming from a database.

mod common;

use std::path::Path;

use common::*;

const MESSAGE: &[u8] = b"From: a@example.org\r\nSubject: placed\r\n\r\nwhere the userdb said\r\n";

fn line(name: &str, home: Option<&Path>, extra: &str) -> String {
    let home = home.map(|h| h.display().to_string()).unwrap_or_default();
    format!("{name}:{}::::{home}::{extra}", cheap_argon2("pw"))
}

/// Files under `dir/new` and `dir/cur`.
fn maildir_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries {
                out.push(std::fs::read(e.unwrap().path()).unwrap());
            }
        }
    }
    out
}

/// Sends one POP3 command line and reads its one-line answer.
fn pop(p: &mut Client, line: &str) -> String {
    p.send(line);
    p.line()
}

fn login(s: &Server, user: &str) -> (Client, Vec<String>) {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", &format!("LOGIN {user} pw"));
    (c, r)
}

#[test]
fn the_users_own_location_is_where_its_mail_lives() {
    let place = tempfile::Builder::new()
        .prefix("mailcove-location")
        .tempdir()
        .unwrap();
    chmod(place.path(), 0o777);
    let home = place.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, 0o777);
    let vmail = place.path().join("vmail");
    std::fs::create_dir(&vmail).unwrap();
    chmod(&vmail, 0o777);
    let s = Server::builder()
        .users(&[
            line("plain", None, ""),
            line(
                "ann@example.org",
                None,
                &format!(
                    "userdb_mail=maildir:{}/%d/%n:LAYOUT=maildir++:INDEX=MEMORY",
                    vmail.display()
                ),
            ),
            line("bob", Some(&home), "userdb_mail=maildir:~/Mail"),
            line("empty", None, "userdb_mail="),
            line("dbox", Some(&home), "userdb_mail=mdbox:~/mdbox"),
            line("rel", None, "userdb_mail=maildir:Maildir"),
            line("fs", Some(&home), "userdb_mail=maildir:~/Maildir:LAYOUT=fs"),
        ])
        .start();

    for user in ["ann@example.org", "bob", "empty", "plain"] {
        s.append_message(user, "pw", "INBOX", MESSAGE);
        let mut p = s.pop3();
        assert!(p.line().starts_with("+OK"));
        assert!(pop(&mut p, &format!("USER {user}")).starts_with("+OK"));
        assert!(pop(&mut p, "PASS pw").starts_with("+OK"), "{user}");
        assert_eq!(
            pop(&mut p, "STAT"),
            format!("+OK 1 {}", MESSAGE.len()),
            "{user}"
        );
        pop(&mut p, "QUIT");
    }
    if on_maildir("the files the per-user locations name") {
        let ann = maildir_files(&vmail.join("example.org/ann"));
        assert_eq!(ann, vec![MESSAGE.to_vec()]);
        let bob = maildir_files(&home.join("Mail"));
        assert_eq!(bob, vec![MESSAGE.to_vec()]);
        // An empty field and no field both mean [mail] location (the harness's DIR/mail/%n).
        for user in ["empty", "plain"] {
            assert_eq!(
                maildir_files(&s.maildir(user)),
                vec![MESSAGE.to_vec()],
                "{user}"
            );
        }
        // Nothing of ann's or bob's went to the configured place.
        assert!(!s.maildir("ann@example.org").exists());
        assert!(!s.maildir("bob").exists());
    }

    if on_maildir("locations only Maildir refuses") {
        for user in ["dbox", "rel", "fs"] {
            let (mut c, r) = login(&s, user);
            // Not the user's fault: temporary, never AUTHENTICATIONFAILED.
            let last = r.last().cloned().unwrap_or_default();
            assert!(last.starts_with("l NO [UNAVAILABLE] "), "{user}: {r:?}");
            // The connection goes on, and so do other users.
            let r = c.cmd("n", "NOOP");
            assert!(r.last().is_some_and(|l| l.starts_with("n OK")), "{r:?}");
            let mut p = s.pop3();
            assert!(p.line().starts_with("+OK"));
            assert!(pop(&mut p, &format!("USER {user}")).starts_with("+OK"));
            let pass = pop(&mut p, "PASS pw");
            assert!(pass.starts_with("-ERR [SYS/TEMP] "), "{user}: {pass}");
        }
        let log = s.log();
        for (user, location) in [
            ("dbox", "mdbox:~/mdbox"),
            ("rel", "maildir:Maildir"),
            ("fs", "maildir:~/Maildir:LAYOUT=fs"),
        ] {
            let named = format!("user {user}'s mail location");
            assert!(
                log.lines()
                    .any(|l| l.contains(&named) && l.contains(location)),
                "the log names {user} and {location}: {log}"
            );
        }
        assert!(!home.join("mdbox").exists());
        let (_c, r) = login(&s, "bob");
        assert!(r.last().is_some_and(|l| l.starts_with("l OK")), "{r:?}");
    }
}
