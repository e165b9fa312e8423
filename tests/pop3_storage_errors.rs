//! POP3 storage failures at login: the client gets the fixed `-ERR [SYS/...]` sentence that points
//! at the server log, and the log does have the details, with the user.

mod common;

use common::*;

#[test]
fn a_maildrop_that_cannot_be_opened_is_answered_and_logged_with_the_user() {
    let s = Server::start();
    // Where the user's Maildir would be, a plain file: the store cannot be opened.
    let root = s.maildir("demo");
    if root.is_dir() {
        std::fs::remove_dir_all(&root).unwrap();
    }
    std::fs::create_dir_all(root.parent().unwrap()).unwrap();
    std::fs::write(&root, b"not a Maildir").unwrap();
    let mut c = s.pop3();
    assert!(c.line().starts_with("+OK"));
    run_transcript(&mut c, "C: USER demo\nS: +OK\nC: PASS demo");
    let answer = c.line();
    assert!(
        answer.starts_with("-ERR [SYS/TEMP] ") || answer.starts_with("-ERR [SYS/PERM] "),
        "{answer}"
    );
    assert!(answer.contains("server log"), "{answer}");
    // The session goes on in the AUTHORIZATION state.
    run_transcript(
        &mut c,
        "C: NOOP\nS: -ERR Command not valid in this state: *",
    );
    let log = s.wait_log(|l| l.contains("POP3 storage failure"));
    let line = log
        .lines()
        .find(|l| l.contains("POP3 storage failure"))
        .unwrap_or_default();
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("user=\"demo\""), "{line}");
    assert!(line.contains("error=temporary storage failure"), "{line}");
}
