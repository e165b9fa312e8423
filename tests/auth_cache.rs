//! The verified-credential cache (`[auth] credential_cache_secs`) over real logins: a repeated
//! login with the same password skips the hash, and nothing else ever gets in through it.
//! The server runs with `MAILCOVE_LOG=debug`, whose "authenticated" line says `cached=`.

mod common;

use std::time::Duration;

use common::{Server, cheap_argon2, check_config};

fn auth_section(secs: u64) -> String {
    format!(
        "[auth]\nusers_file = \"$DIR/users\"\nfailure_delay_ms = 50\nfailure_delay_max_ms = 200\n\
         hash_threads = 2\ncredential_cache_secs = {secs}\n"
    )
}

/// Logs in over IMAP; true on OK.
fn imap_login(s: &Server, user: &str, password: &str) -> bool {
    let mut c = s.imap();
    c.line();
    let r = c.cmd("a", &format!("LOGIN {user} \"{password}\""));
    let ok = r.last().is_some_and(|l| l.starts_with("a OK"));
    c.cmd("z", "LOGOUT");
    ok
}

/// Logs in over POP3; true on +OK.
fn pop3_login(s: &Server, user: &str, password: &str) -> bool {
    let mut c = s.pop3();
    c.line();
    c.send(&format!("USER {user}"));
    assert!(c.line().starts_with("+OK"));
    c.send(&format!("PASS {password}"));
    let ok = c.line().starts_with("+OK");
    c.send("QUIT");
    ok
}

fn count(log: &str, needle: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("authenticated") && l.contains(needle))
        .count()
}

/// Waits until the server has logged `n` successful logins in all.
fn wait_logins(s: &Server, n: usize) -> String {
    s.wait_log(|log| count(log, "cached=") >= n)
}

/// Rewrites the users file so the change is seen: the server checks the file's stamp at most
/// once a second.
fn write_users(s: &Server, lines: &str) {
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(s.path().join("users"), lines).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn second_login_with_the_same_password_is_served_from_the_cache() {
    let s = Server::builder()
        .user("carol", "pw-carol")
        .config(&auth_section(300))
        .start();
    assert!(imap_login(&s, "carol", "pw-carol"));
    let log = wait_logins(&s, 1);
    assert_eq!(count(&log, "cached=false"), 1, "{log}");
    // The same user and password over IMAP and over POP3: both from the cache.
    assert!(imap_login(&s, "carol", "pw-carol"));
    assert!(pop3_login(&s, "carol", "pw-carol"));
    let log = wait_logins(&s, 3);
    assert_eq!(count(&log, "cached=true"), 2, "{log}");
    // The name is matched as the users file does (case-insensitively), the entry is the same.
    assert!(imap_login(&s, "CAROL", "pw-carol"));
    let log = wait_logins(&s, 4);
    assert_eq!(count(&log, "cached=true"), 3, "{log}");
}

#[test]
fn a_wrong_password_is_never_let_in_and_never_cached() {
    let s = Server::builder()
        .user("carol", "pw-carol")
        .config(&auth_section(300))
        .start();
    assert!(imap_login(&s, "carol", "pw-carol"));
    assert!(!imap_login(&s, "carol", "pw-carol "));
    assert!(!pop3_login(&s, "carol", "pw-caro"));
    let log = s.wait_log(|l| l.matches("authentication failed").count() >= 2);
    assert_eq!(count(&log, "cached="), 1, "{log}");
    // The right password still comes from the cache afterwards.
    assert!(imap_login(&s, "carol", "pw-carol"));
    let log = wait_logins(&s, 2);
    assert_eq!(count(&log, "cached=true"), 1, "{log}");
}

#[test]
fn a_changed_password_empties_the_cache() {
    let s = Server::builder()
        .user("carol", "old-pw")
        .user("dave", "pw-dave")
        .config(&auth_section(300))
        .start();
    assert!(imap_login(&s, "carol", "old-pw"));
    assert!(imap_login(&s, "carol", "old-pw"));
    let log = wait_logins(&s, 2);
    assert_eq!(count(&log, "cached=true"), 1, "{log}");
    write_users(
        &s,
        &format!(
            "carol:{}::::::\ndave:{}::::::\n",
            cheap_argon2("new-pw"),
            cheap_argon2("pw-dave")
        ),
    );
    assert!(!imap_login(&s, "carol", "old-pw"), "old password let in");
    assert!(imap_login(&s, "carol", "new-pw"));
    let log = wait_logins(&s, 3);
    assert_eq!(count(&log, "cached=true"), 1, "{log}");
}

#[test]
fn a_removed_or_disabled_user_is_not_let_in_by_the_cache() {
    let s = Server::builder()
        .user("carol", "pw-carol")
        .user("dave", "pw-dave")
        .config(&auth_section(300))
        .start();
    assert!(imap_login(&s, "carol", "pw-carol"));
    assert!(pop3_login(&s, "dave", "pw-dave"));
    wait_logins(&s, 2);
    // carol removed; dave's entry kept but disabled with Dovecot's `nologin` extra field.
    write_users(
        &s,
        &format!("dave:{}::::::nologin=y\n", cheap_argon2("pw-dave")),
    );
    assert!(!imap_login(&s, "carol", "pw-carol"), "removed user let in");
    assert!(!pop3_login(&s, "dave", "pw-dave"), "disabled user let in");
    let log = s.wait_log(|l| l.matches("authentication failed").count() >= 2);
    assert_eq!(count(&log, "cached="), 2, "{log}");
}

#[test]
fn off_unless_configured() {
    let s = Server::builder().user("carol", "pw-carol").start();
    assert!(imap_login(&s, "carol", "pw-carol"));
    assert!(imap_login(&s, "carol", "pw-carol"));
    let log = wait_logins(&s, 2);
    assert_eq!(count(&log, "cached=false"), 2, "{log}");
}

#[test]
fn out_of_range_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[auth]\nusers_file = \"/nonexistent\"\ncredential_cache_secs = 999999\ncredential_cache_size = 0\n",
    )
    .unwrap();
    let (passed, text) = check_config(&cfg);
    assert!(!passed);
    assert!(text.contains("auth.credential_cache_secs"), "{text}");
    assert!(text.contains("auth.credential_cache_size"), "{text}");
}
