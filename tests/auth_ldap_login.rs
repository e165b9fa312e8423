//! Logins through the real binary with `[auth] backend = "ldap"` against a real slapd
//! (tests/ldap_common): IMAP LOGIN and POP3 USER/PASS by password lookup ({SSHA}, {CRYPT},
//! {ARGON2ID}) and by auth bind, filter injection in the user name, and a directory that is
//! down (temporary failure, never "wrong password").

mod common;
mod ldap_common;

use common::{Server, imap_login_answer, imap_quoted, pop3_login_answer};
use ldap_common::*;

fn server(slapd: &Slapd, ldap_extra: &str) -> Server {
    let (uri, base) = (slapd.uri(), PEOPLE);
    Server::builder()
        .config(&format!(
            "[auth]\nbackend = \"ldap\"\nusers_file = \"$DIR/users\"\n\
             failure_delay_ms = 50\nfailure_delay_max_ms = 200\nhash_threads = 2\n\n\
             [auth.ldap]\nuris = \"{uri}\"\ndn = \"{SERVICE_DN}\"\ndnpass = \"{SERVICE_PW}\"\n\
             base = \"{base}\"\nuser_attrs = \"uid=user\"\n{ldap_extra}\n"
        ))
        .start()
}

#[test]
fn imap_and_pop3_log_in_by_password_lookup() {
    let slapd = Slapd::start();
    let s = server(&slapd, "");
    for (user, pw) in [
        ("ann", ANN_PW),
        ("bob", BOB_PW),
        ("cyd", CYD_PW),
        ("dee", DEE_PW),
    ] {
        let ok = imap_login_answer(&s, user, pw);
        assert!(ok.starts_with("a OK"), "{user}: {ok}");
        let bad = imap_login_answer(&s, user, "wrong");
        assert!(
            bad.starts_with("a NO [AUTHENTICATIONFAILED]"),
            "{user}: {bad}"
        );
    }
    assert!(pop3_login_answer(&s, "ann", ANN_PW).starts_with("+OK"));
    assert!(pop3_login_answer(&s, "ann", "wrong").starts_with("-ERR [AUTH]"));
    // Injection attempts are user names nobody has.
    for hostile in ["*", "*)(uid=*", "ann)(uid=*", "\\"] {
        let r = imap_login_answer(&s, hostile, ANN_PW);
        assert!(
            r.starts_with("a NO [AUTHENTICATIONFAILED]"),
            "{hostile:?}: {r}"
        );
    }
    // The canonical name comes from the directory (uid=user): the session is ann's.
    let mut c = s.imap();
    c.line();
    let r = c.cmd("a", &format!("LOGIN ANN {}", imap_quoted(ANN_PW)));
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
}

#[test]
fn imap_logs_in_by_auth_bind() {
    let slapd = Slapd::start();
    let s = server(&slapd, "auth_bind = true\n");
    assert!(imap_login_answer(&s, "ann", ANN_PW).starts_with("a OK"));
    assert!(imap_login_answer(&s, "ann", "wrong").starts_with("a NO [AUTHENTICATIONFAILED]"));
    // An empty password is never sent as a bind (it would be an unauthenticated bind).
    assert!(imap_login_answer(&s, "ann", "").starts_with("a NO [AUTHENTICATIONFAILED]"));
    assert!(imap_login_answer(&s, "*", ANN_PW).starts_with("a NO [AUTHENTICATIONFAILED]"));
    assert!(pop3_login_answer(&s, "bob", BOB_PW).starts_with("+OK"));
}

#[test]
fn a_directory_that_is_down_is_a_temporary_failure() {
    let mut slapd = Slapd::start();
    let s = server(&slapd, "");
    assert!(imap_login_answer(&s, "ann", ANN_PW).starts_with("a OK"));
    slapd.stop();
    let r = imap_login_answer(&s, "bob", BOB_PW);
    assert!(r.starts_with("a NO [UNAVAILABLE]"), "{r}");
    let r = pop3_login_answer(&s, "bob", BOB_PW);
    assert!(r.starts_with("-ERR [SYS/TEMP]"), "{r}");
}
