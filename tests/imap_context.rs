//! CONTEXT=SEARCH (RFC 5267) on the wire, against the real binary: PARTIAL paging (RFC 5267 4.4)
//! with ranges in and out of the result, reversed ranges and the forms the ABNF refuses, the
//! CONTEXT hint, UPDATE with ADDTO/REMOVEFROM (4.3.2-4.3.4) after an APPEND from a second
//! connection, after this session's own STORE and FETCH, after another session's STORE and
//! EXPUNGE (REMOVEFROM before the EXPUNGE, with the numbers valid then), during IDLE,
//! sequence numbers pinned when the command ran, CANCELUPDATE (4.3.5), the BAD for a reused tag,
//! the contexts ending with the selection, and NOUPDATE (4.3.1) past the per-session limit.
//!
//! The corpus is six messages appended in order to an empty INBOX, so their UIDs are 1 to 6:
//!
//! | seq/UID | flags            |
//! |---------|------------------|
//! | 1       | \Seen            |
//! | 2       |                  |
//! | 3       | \Seen \Flagged   |
//! | 4       |                  |
//! | 5       | \Flagged         |
//! | 6       | \Seen            |
//!
//! so UNSEEN is 2, 4, 5 and FLAGGED is 3, 5. Subjects and Date: headers give the SORT orders
//! written next to [`SUBJECTS`] and [`DAYS`].
//!
//! ESORT (RFC 5267 3) and CONTEXT=SORT are tested the same way: return options on SORT with
//! results in sort order, PARTIAL pages of a sorted list, and UPDATE contexts whose ADDTO and
//! REMOVEFROM carry context positions in the sort order.

mod common;

use common::*;

const FLAGS: [&str; 6] = ["\\Seen", "", "\\Seen \\Flagged", "", "\\Flagged", "\\Seen"];
/// Subjects: SORT (SUBJECT) orders the corpus 2 alpha, 6 bravo, 4 charlie, 1 delta, 5 echo,
/// 3 foxtrot.
const SUBJECTS: [&str; 6] = ["delta", "alpha", "foxtrot", "charlie", "echo", "bravo"];
/// Days of January 2024 in the Date: headers: SORT (DATE) orders the corpus 2, 4, 1, 6, 5, 3.
const DAYS: [u32; 6] = [3, 1, 6, 2, 5, 4];

/// The limit of live update contexts per session (`MAX_UPDATE_CONTEXTS` in src/limits.rs).
const MAX_UPDATE_CONTEXTS: usize = 10;

/// Message `i` (1-based) of the corpus; later ones get subject `m<i>` and 1 Feb 2024.
fn message(i: usize) -> String {
    let subject = SUBJECTS
        .get(i - 1)
        .map_or(format!("m{i}"), |s| s.to_string());
    let day = DAYS
        .get(i - 1)
        .map_or("1 Feb".to_string(), |d| format!("{d} Jan"));
    message_with(&subject, &day, i)
}

fn message_with(subject: &str, day: &str, i: usize) -> String {
    format!(
        "Date: {day} 2024 12:00:00 +0000\r\nFrom: a@example.com\r\nSubject: {subject}\r\n\r\nbody {i}\r\n"
    )
}

/// APPEND with a non-synchronizing literal and flags.
fn append(c: &mut Client, flags: &str, msg: &str) {
    c.send_raw(format!("ap APPEND INBOX ({flags}) {{{}+}}\r\n{msg}", msg.len()).as_bytes());
    c.send_raw(b"\r\n");
    assert_tagged_ok(&c.until("ap "));
}

/// The server with the corpus, and a session that has INBOX selected. A first session took the
/// messages' \Recent, so FETCH responses carry only the stored flags.
fn fixture() -> (Server, Client) {
    let s = Server::start();
    let mut first = login_demo(&s);
    for (i, f) in FLAGS.iter().enumerate() {
        append(&mut first, f, &message(i + 1));
    }
    assert_tagged_ok(&first.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&first.cmd("o", "LOGOUT"));
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let all = c.cmd("u", "UID SEARCH ALL");
    assert_eq!(
        all[0], "* SEARCH 1 2 3 4 5 6",
        "the corpus needs UIDs 1 to 6"
    );
    (s, c)
}

/// A second session with INBOX selected.
fn other(s: &Server) -> Client {
    let mut b = login_demo(s);
    assert_tagged_ok(&b.cmd("s", "SELECT INBOX"));
    b
}

/// The `* ESEARCH` lines of an answer.
fn esearch(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("* ESEARCH"))
        .cloned()
        .collect()
}

/// Index of the first line that starts with `prefix`.
fn pos(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}

fn assert_bad(lines: &[String]) {
    assert!(
        lines
            .last()
            .is_some_and(|l| l.split(' ').nth(1) == Some("BAD")),
        "{lines:?}"
    );
}

fn assert_no(lines: &[String]) {
    assert!(
        lines
            .last()
            .is_some_and(|l| l.split(' ').nth(1) == Some("NO")),
        "{lines:?}"
    );
}

#[test]
fn capability_announces_context_search_and_sort() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let caps = c.cmd("c", "CAPABILITY");
    let words: Vec<&str> = caps[0].split(' ').collect();
    for cap in ["ESEARCH", "CONTEXT=SEARCH", "SORT", "ESORT", "CONTEXT=SORT"] {
        assert!(words.contains(&cap), "{cap}: {caps:?}");
    }
}

#[test]
fn partial_returns_the_positions_asked_for() {
    let (_s, mut c) = fixture();
    // RFC 5267 4.4: positions in the result list (mailbox order for SEARCH), 1 is the first;
    // a range reaching past the end returns what there is; one wholly past it returns NIL; a
    // reversed range is the same range (and is echoed in increasing order, as Dovecot does).
    run_transcript(
        &mut c,
        r#"C: p1 SEARCH RETURN (PARTIAL 1:2) UNSEEN
           S: * ESEARCH (TAG "p1") PARTIAL (1:2 2,4)
           S: p1 OK Search completed.
           C: p2 UID SEARCH RETURN (PARTIAL 2:10) UNSEEN
           S: * ESEARCH (TAG "p2") UID PARTIAL (2:10 4:5)
           S: p2 OK Search completed.
           C: p3 UID SEARCH RETURN (PARTIAL 3:2) UNSEEN
           S: * ESEARCH (TAG "p3") UID PARTIAL (2:3 4:5)
           S: p3 OK Search completed.
           C: p4 SEARCH RETURN (PARTIAL 4:500) UNSEEN
           S: * ESEARCH (TAG "p4") PARTIAL (4:500 NIL)
           S: p4 OK Search completed.
           C: p5 SEARCH RETURN (PARTIAL 1:1) KEYWORD $Nothing
           S: * ESEARCH (TAG "p5") PARTIAL (1:1 NIL)
           S: p5 OK Search completed.
           C: p6 SEARCH RETURN (MAX PARTIAL 1:1 COUNT MIN) UNSEEN
           S: * ESEARCH (TAG "p6") MIN 2 MAX 5 PARTIAL (1:1 2) COUNT 3
           S: p6 OK Search completed.
           C: p7 SEARCH RETURN (PARTIAL 2:3) ALL
           S: * ESEARCH (TAG "p7") PARTIAL (2:3 2:3)
           S: p7 OK Search completed."#,
    );
}

#[test]
fn partial_forms_the_rfc_refuses_are_bad() {
    let (_s, mut c) = fixture();
    for (tag, options) in [
        // RFC 5267 4.4: one PARTIAL or one ALL, not both, not two PARTIALs.
        ("b1", "PARTIAL 1:2 ALL"),
        ("b2", "PARTIAL 1:2 PARTIAL 3:4"),
        // partial-range = nz-number ":" nz-number.
        ("b3", "PARTIAL 0:5"),
        ("b4", "PARTIAL -1:-5"),
        ("b5", "PARTIAL 1:*"),
        ("b6", "PARTIAL 7"),
        ("b7", "UPDATE UPDATE"),
    ] {
        assert_bad(&c.cmd(tag, &format!("SEARCH RETURN ({options}) ALL")));
    }
    // The session is fine afterwards.
    assert_tagged_ok(&c.cmd("n", "NOOP"));
}

#[test]
fn context_is_a_hint_and_return_options_combine() {
    let (_s, mut c) = fixture();
    run_transcript(
        &mut c,
        r#"# RFC 5267 4.2: CONTEXT only hints; CONTEXT alone asks for nothing, so it is ALL.
           C: c1 SEARCH RETURN (CONTEXT COUNT) UNSEEN
           S: * ESEARCH (TAG "c1") COUNT 3
           S: c1 OK Search completed.
           C: c2 UID SEARCH RETURN (CONTEXT) FLAGGED
           S: * ESEARCH (TAG "c2") UID ALL 3,5
           S: c2 OK Search completed.
           # PARTIAL with SAVE: $ holds every match, not only the page.
           C: c3 UID SEARCH RETURN (SAVE PARTIAL 1:1) UNSEEN
           S: * ESEARCH (TAG "c3") UID PARTIAL (1:1 2)
           S: c3 OK Search completed.
           C: c4 UID SEARCH $
           S: * SEARCH 2 4 5
           S: c4 OK Search completed.
           # UPDATE alone returns nothing but the correlator (RFC 5267 4.3: no interaction with
           # other options), as Dovecot answers.
           C: c5 UID SEARCH RETURN (UPDATE) FLAGGED
           S: * ESEARCH (TAG "c5") UID
           S: c5 OK Search completed.
           C: c6 SEARCH RETURN (UPDATE ALL) FLAGGED
           S: * ESEARCH (TAG "c6") ALL 3,5
           S: c6 OK Search completed."#,
    );
}

#[test]
fn append_from_another_connection_is_added_after_exists() {
    let (s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 UID SEARCH RETURN (UPDATE COUNT) UNSEEN
           S: * ESEARCH (TAG "U1") UID COUNT 3
           S: U1 OK Search completed.
           C: U2 SEARCH RETURN (UPDATE) UNSEEN
           S: * ESEARCH (TAG "U2")
           S: U2 OK Search completed."#,
    );
    let mut b = login_demo(&s);
    append(&mut b, "", &message(7)); // UID 7, unseen: matches
    append(&mut b, "\\Seen", &message(8)); // UID 8, seen: does not
    let lines = a.cmd("n1", "NOOP");
    assert_tagged_ok(&lines);
    // RFC 5267 4.3.3: an ADDTO of new messages comes after the EXISTS.
    let exists = pos(&lines, "* 8 EXISTS");
    assert!(exists < pos(&lines, "* ESEARCH"), "{lines:?}");
    assert_eq!(
        esearch(&lines),
        [
            "* ESEARCH (TAG \"U1\") UID ADDTO (0 7)",
            "* ESEARCH (TAG \"U2\") ADDTO (0 7)",
        ]
    );
    // Nothing changed since: nothing more to tell.
    assert!(esearch(&a.cmd("n2", "NOOP")).is_empty());
}

#[test]
fn own_store_and_fetch_update_the_context() {
    let (_s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 SEARCH RETURN (UPDATE COUNT) UNSEEN
           S: * ESEARCH (TAG "U1") COUNT 3
           S: U1 OK Search completed.
           # The STORE makes message 2 stop matching: REMOVEFROM after its FETCH.
           C: s1 STORE 2 +FLAGS (\Seen)
           S: * 2 FETCH (FLAGS (\Seen))
           S: * ESEARCH (TAG "U1") REMOVEFROM (0 2)
           S: s1 OK Store completed.
           # Silent or not, the result changed: message 1 matches again.
           C: s2 STORE 1 -FLAGS.SILENT (\Seen)
           S: * ESEARCH (TAG "U1") ADDTO (0 1)
           S: s2 OK Store completed.
           # A change that does not touch the result says nothing.
           C: s3 STORE 4 +FLAGS (\Flagged)
           S: * 4 FETCH (FLAGS (\Flagged))
           S: s3 OK Store completed."#,
    );
    // FETCH BODY[] sets \Seen (RFC 3501 6.4.5): message 4 leaves the unseen result.
    let lines = a.cmd("f1", "FETCH 4 BODY[]");
    assert_tagged_ok(&lines);
    assert!(
        pos(&lines, "* 4 FETCH") < pos(&lines, "* ESEARCH"),
        "{lines:?}"
    );
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"U1\") REMOVEFROM (0 4)"]);
    // The client's picture now: 1 and 5 unseen.
    run_transcript(
        &mut a,
        r#"C: c SEARCH UNSEEN
           S: * SEARCH 1 5
           S: c OK Search completed."#,
    );
}

#[test]
fn another_sessions_store_and_expunge_update_the_context() {
    let (s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 SEARCH RETURN (UPDATE) UNSEEN
           S: * ESEARCH (TAG "U1")
           S: U1 OK Search completed.
           C: U2 UID SEARCH RETURN (UPDATE) ALL
           S: * ESEARCH (TAG "U2") UID
           S: U2 OK Search completed."#,
    );
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "STORE 2 -FLAGS (\\Seen)")); // still unseen: no change
    assert_tagged_ok(&b.cmd("b2", "STORE 4 +FLAGS (\\Seen)")); // leaves UNSEEN
    assert_tagged_ok(&b.cmd("b3", "STORE 6 -FLAGS (\\Seen)")); // joins UNSEEN
    let lines = a.cmd("n1", "NOOP");
    assert_tagged_ok(&lines);
    assert!(
        pos(&lines, "* 6 FETCH") < pos(&lines, "* ESEARCH"),
        "{lines:?}"
    );
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"U1\") REMOVEFROM (0 4) ADDTO (0 6)"]
    );

    // Messages 2 and 3 are expunged elsewhere. RFC 5267 4.3.4: the REMOVEFROM comes before the
    // EXPUNGE responses, in the numbers valid before them (2 for the UNSEEN context).
    assert_tagged_ok(&b.cmd("b4", "STORE 2:3 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&b.cmd("b5", "EXPUNGE"));
    let lines = a.cmd("n2", "NOOP");
    assert_tagged_ok(&lines);
    let first_expunge = pos(&lines, "* 3 EXPUNGE").min(pos(&lines, "* 2 EXPUNGE"));
    assert!(pos(&lines, "* ESEARCH") < first_expunge, "{lines:?}");
    assert_eq!(
        esearch(&lines[..first_expunge]),
        [
            "* ESEARCH (TAG \"U1\") REMOVEFROM (0 2)",
            "* ESEARCH (TAG \"U2\") UID REMOVEFROM (0 2:3)",
        ]
    );
    assert!(esearch(&lines[first_expunge..]).is_empty(), "{lines:?}");

    // Afterwards the numbers are the new ones: UID 5 is message 3 now.
    assert_tagged_ok(&b.cmd("b6", "UID STORE 5 +FLAGS (\\Seen)"));
    let lines = a.cmd("n3", "NOOP");
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"U1\") REMOVEFROM (0 3)"]);
    run_transcript(
        &mut a,
        r#"C: c SEARCH UNSEEN
           S: * SEARCH 4
           S: c OK Search completed."#,
    );
}

#[test]
fn own_expunge_and_move_remove_before_their_expunge_responses() {
    let (_s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 SEARCH RETURN (UPDATE) FLAGGED
           S: * ESEARCH (TAG "U1")
           S: U1 OK Search completed.
           C: d STORE 3 +FLAGS.SILENT (\Deleted)
           S: d OK Store completed.
           C: e EXPUNGE
           S: * ESEARCH (TAG "U1") REMOVEFROM (0 3)
           S: * 3 EXPUNGE
           S: e OK Expunge completed.
           # MOVE expunges what it moved (RFC 6851): UID 5 is message 4 now.
           C: cr CREATE Kept
           S: cr OK {*}
           C: m UID MOVE 5 Kept
           S: * OK [COPYUID {*}
           S: * ESEARCH (TAG "U1") REMOVEFROM (0 4)
           S: * 4 EXPUNGE
           S: m OK Move completed.
           C: c SEARCH FLAGGED
           S: * SEARCH
           S: c OK Search completed."#,
    );
}

#[test]
fn message_numbers_in_the_key_are_fixed_when_the_command_runs() {
    let (s, mut a) = fixture();
    // RFC 5267 4.3: sequence numbers of the search program are evaluated when the command is
    // received. 1:2 means UIDs 1 and 2 for this context, whatever happens later.
    run_transcript(
        &mut a,
        r#"C: U1 SEARCH RETURN (UPDATE ALL) 1:2 UNSEEN
           S: * ESEARCH (TAG "U1") ALL 2
           S: U1 OK Search completed."#,
    );
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "STORE 1 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&b.cmd("b2", "EXPUNGE"));
    // UID 3 is now message 2, and unseen: it is not in the context's 1:2.
    assert_tagged_ok(&b.cmd("b3", "UID STORE 3 -FLAGS (\\Seen)"));
    let lines = a.cmd("n1", "NOOP");
    assert_tagged_ok(&lines);
    assert!(lines.iter().any(|l| l == "* 1 EXPUNGE"), "{lines:?}");
    assert!(esearch(&lines).is_empty(), "{lines:?}");
    // UID 2 (message 1 now) leaving the result is told.
    assert_tagged_ok(&b.cmd("b4", "UID STORE 2 +FLAGS (\\Seen)"));
    let lines = a.cmd("n2", "NOOP");
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"U1\") REMOVEFROM (0 1)"]);

    // With UIDs 2:6 in the mailbox (message 1 is UID 2), 1:* means those UIDs: a message that
    // arrives later is not in it, a change among them is.
    run_transcript(
        &mut a,
        r#"C: U2 UID SEARCH RETURN (UPDATE ALL) 1:* UNSEEN
           S: * ESEARCH (TAG "U2") UID ALL 3:5
           S: U2 OK Search completed."#,
    );
    let mut c = login_demo(&s);
    append(&mut c, "", &message(7));
    assert_tagged_ok(&b.cmd("b5", "UID STORE 6 -FLAGS (\\Seen)"));
    let lines = a.cmd("n3", "NOOP");
    assert!(lines.iter().any(|l| l == "* 6 EXISTS"), "{lines:?}");
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"U2\") UID ADDTO (0 6)"]);
}

#[test]
fn idle_tells_updates_as_they_happen() {
    let (s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 UID SEARCH RETURN (UPDATE) UNSEEN
           S: * ESEARCH (TAG "U1") UID
           S: U1 OK Search completed.
           C: i IDLE
           S: + idling"#,
    );
    let mut b = login_demo(&s);
    append(&mut b, "", &message(7));
    let lines = a.until("* ESEARCH");
    assert!(lines.iter().any(|l| l == "* 7 EXISTS"), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("* ESEARCH (TAG \"U1\") UID ADDTO (0 7)")
    );
    a.send("DONE");
    assert_eq!(
        a.until("i ").last().map(String::as_str),
        Some("i OK Idle completed.")
    );
}

#[test]
fn cancelupdate_and_tag_reuse() {
    let (s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: U1 UID SEARCH RETURN (UPDATE COUNT) UNSEEN
           S: * ESEARCH (TAG "U1") UID COUNT 3
           S: U1 OK Search completed.
           C: U2 UID SEARCH RETURN (UPDATE COUNT) FLAGGED
           S: * ESEARCH (TAG "U2") UID COUNT 2
           S: U2 OK Search completed."#,
    );
    // RFC 5267 4.3: UPDATE with the tag of a live updating search is a BAD, and has no effect.
    assert_bad(&a.cmd("U1", "SEARCH RETURN (UPDATE) FLAGGED"));
    // Without UPDATE the tag may be used (RFC 3501 says tags should be unique, not must).
    assert_tagged_ok(&a.cmd("U1", "SEARCH RETURN (COUNT) FLAGGED"));
    run_transcript(
        &mut a,
        r#"C: c1 CANCELUPDATE "U1"
           S: c1 OK Updates cancelled.
           C: c2 CANCELUPDATE "U1"
           S: c2 NO [CANNOT] No search with that tag asked for updates.
           C: c3 CANCELUPDATE "nope" "U2"
           S: c3 NO [CANNOT] No search with that tag asked for updates."#,
    );
    // U2 is still live (c3 stopped at "nope", as Dovecot does); U1 is not.
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "STORE 2 +FLAGS (\\Seen \\Flagged)"));
    let lines = a.cmd("n1", "NOOP");
    assert_eq!(esearch(&lines), ["* ESEARCH (TAG \"U2\") UID ADDTO (0 2)"]);
    // A cancelled tag may be used for UPDATE again.
    assert_tagged_ok(&a.cmd("U1", "UID SEARCH RETURN (UPDATE) ALL"));
    assert_bad(&a.cmd("c4", "CANCELUPDATE U1"));
    assert_bad(&a.cmd("c5", "CANCELUPDATE"));
}

#[test]
fn contexts_end_with_the_selection() {
    let (s, mut a) = fixture();
    assert_tagged_ok(&a.cmd("U1", "UID SEARCH RETURN (UPDATE) UNSEEN"));
    assert_tagged_ok(&a.cmd("x", "UNSELECT"));
    // CANCELUPDATE is a selected-state command (RFC 5267 5, command-select).
    assert_bad(&a.cmd("c1", "CANCELUPDATE \"U1\""));
    assert_tagged_ok(&a.cmd("s", "SELECT INBOX"));
    assert_no(&a.cmd("c2", "CANCELUPDATE \"U1\""));
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "STORE 1 -FLAGS (\\Seen)"));
    let lines = a.cmd("n1", "NOOP");
    assert_tagged_ok(&lines);
    assert!(esearch(&lines).is_empty(), "{lines:?}");
    // SELECT of another mailbox ends them too.
    assert_tagged_ok(&a.cmd("U2", "UID SEARCH RETURN (UPDATE) UNSEEN"));
    assert_tagged_ok(&a.cmd("cr", "CREATE Other"));
    assert_tagged_ok(&a.cmd("s2", "SELECT Other"));
    assert_no(&a.cmd("c3", "CANCELUPDATE \"U2\""));
}

#[test]
fn contexts_past_the_limit_get_noupdate() {
    let (s, mut a) = fixture();
    for i in 0..MAX_UPDATE_CONTEXTS {
        let lines = a.cmd(&format!("x{i}"), "UID SEARCH RETURN (UPDATE) UNSEEN");
        assert_tagged_ok(&lines);
        assert!(!lines.iter().any(|l| l.contains("NOUPDATE")), "{lines:?}");
    }
    // RFC 5267 4.3.1: the other options are still honoured, an untagged NO [NOUPDATE] says no
    // updates will come.
    run_transcript(
        &mut a,
        r#"C: over UID SEARCH RETURN (UPDATE COUNT) UNSEEN
           S: * ESEARCH (TAG "over") UID COUNT 3
           S: * NO [NOUPDATE "over"] Too many update contexts.
           S: over OK Search completed.
           C: c CANCELUPDATE "x0"
           S: c OK Updates cancelled.
           C: again UID SEARCH RETURN (UPDATE COUNT) UNSEEN
           S: * ESEARCH (TAG "again") UID COUNT 3
           S: again OK Search completed."#,
    );
    // Every live context reports; the refused one does not.
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "STORE 1 -FLAGS (\\Seen)"));
    let lines = a.cmd("n1", "NOOP");
    let updates = esearch(&lines);
    assert_eq!(updates.len(), MAX_UPDATE_CONTEXTS, "{lines:?}");
    assert!(
        updates.iter().all(|l| l.ends_with("UID ADDTO (0 1)")),
        "{updates:?}"
    );
    assert!(
        !updates
            .iter()
            .any(|l| l.contains("\"over\"") || l.contains("\"x0\""))
    );
}

#[test]
fn esort_answers_in_sort_order() {
    let (_s, mut c) = fixture();
    run_transcript(
        &mut c,
        r#"# A plain SORT is unchanged.
           C: p SORT (SUBJECT) UTF-8 ALL
           S: * SORT 2 6 4 1 5 3
           S: p OK Sort completed.
           # RFC 5267 3.3: RETURN () is ALL, in sort order; only ascending runs become ranges
           # (3.2: 12:10 would mean 10,11,12).
           C: e1 SORT RETURN () (SUBJECT) UTF-8 ALL
           S: * ESEARCH (TAG "e1") ALL 2,6,4,1,5,3
           S: e1 OK Sort completed.
           # The appends share one INTERNALDATE second: ties keep mailbox order (RFC 5256 3).
           C: e2 UID SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL
           S: * ESEARCH (TAG "e2") UID ALL 1:6
           S: e2 OK Sort completed.
           C: e3 UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL
           S: * ESEARCH (TAG "e3") UID ALL 3,5,1,4,6,2
           S: e3 OK Sort completed.
           # RFC 5267 3.1: MIN and MAX are the first and last in the sort order.
           C: e4 UID SORT RETURN (MIN MAX COUNT) (REVERSE SUBJECT) UTF-8 UNSEEN
           S: * ESEARCH (TAG "e4") UID MIN 5 MAX 2 COUNT 3
           S: e4 OK Sort completed.
           C: e5 SORT RETURN (COUNT) (SUBJECT) UTF-8 KEYWORD $Nothing
           S: * ESEARCH (TAG "e5") COUNT 0
           S: e5 OK Sort completed.
           # SAVE with MIN only keeps the MIN (RFC 5182 2.4), the first in sort order.
           C: e6 UID SORT RETURN (SAVE MIN) (REVERSE DATE) UTF-8 ALL
           S: * ESEARCH (TAG "e6") UID MIN 3
           S: e6 OK Sort completed.
           C: e7 UID SEARCH $
           S: * SEARCH 3
           S: e7 OK Search completed."#,
    );
}

#[test]
fn partial_pages_a_sorted_list() {
    let (_s, mut c) = fixture();
    // REVERSE DATE orders the corpus 3, 5, 6, 1, 4, 2: the page a webmail shows first.
    run_transcript(
        &mut c,
        r#"C: w1 SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL
           S: * ESEARCH (TAG "w1") PARTIAL (1:50 3,5:6,1,4,2)
           S: w1 OK Sort completed.
           C: w2 UID SORT RETURN (PARTIAL 1:2) (REVERSE DATE) UTF-8 ALL
           S: * ESEARCH (TAG "w2") UID PARTIAL (1:2 3,5)
           S: w2 OK Sort completed.
           C: w3 UID SORT RETURN (PARTIAL 4:3 COUNT) (REVERSE DATE) UTF-8 ALL
           S: * ESEARCH (TAG "w3") UID PARTIAL (3:4 6,1) COUNT 6
           S: w3 OK Sort completed.
           C: w4 UID SORT RETURN (PARTIAL 5:10) (SUBJECT) UTF-8 ALL
           S: * ESEARCH (TAG "w4") UID PARTIAL (5:10 5,3)
           S: w4 OK Sort completed.
           C: w5 UID SORT RETURN (PARTIAL 7:8) (SUBJECT) UTF-8 ALL
           S: * ESEARCH (TAG "w5") UID PARTIAL (7:8 NIL)
           S: w5 OK Sort completed."#,
    );
    for (tag, options) in [
        ("b1", "PARTIAL 1:2 ALL"),
        ("b2", "PARTIAL -1:-2"),
        ("b3", "BOGUS"),
    ] {
        assert_bad(&c.cmd(tag, &format!("SORT RETURN ({options}) (DATE) UTF-8 ALL")));
    }
    assert_bad(&c.cmd("b4", "SORT RETURN (ALL) UTF-8 ALL"));
    assert_tagged_ok(&c.cmd("n", "NOOP"));
}

#[test]
fn sort_contexts_tell_positions_in_sort_order() {
    let (s, mut a) = fixture();
    // UNSEEN by SUBJECT: 2 alpha, 4 charlie, 5 echo. By REVERSE SUBJECT: 5, 4, 2.
    run_transcript(
        &mut a,
        r#"C: S1 UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN
           S: * ESEARCH (TAG "S1") UID ALL 2,4:5
           S: S1 OK Sort completed.
           C: S2 SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNSEEN
           S: * ESEARCH (TAG "S2")
           S: S2 OK Sort completed."#,
    );
    let mut b = other(&s);
    // 6 bravo joins: second by SUBJECT (2 6 4 5), third by REVERSE SUBJECT (5 4 6 2).
    assert_tagged_ok(&b.cmd("b1", "UID STORE 6 -FLAGS (\\Seen)"));
    let lines = a.cmd("n1", "NOOP");
    assert_eq!(
        esearch(&lines),
        [
            "* ESEARCH (TAG \"S1\") UID ADDTO (2 6)",
            "* ESEARCH (TAG \"S2\") ADDTO (3 6)",
        ]
    );
    // 4 charlie leaves: third in 2 6 4 5, second in 5 4 6 2.
    assert_tagged_ok(&b.cmd("b2", "UID STORE 4 +FLAGS (\\Seen)"));
    let lines = a.cmd("n2", "NOOP");
    assert_eq!(
        esearch(&lines),
        [
            "* ESEARCH (TAG \"S1\") UID REMOVEFROM (3 4)",
            "* ESEARCH (TAG \"S2\") REMOVEFROM (2 4)",
        ]
    );
    // A new unseen message, "able": first by SUBJECT (7 2 6 5), last by REVERSE (5 6 2 7),
    // told after its EXISTS.
    let mut c = login_demo(&s);
    append(&mut c, "", &message_with("able", "1 Feb", 7));
    let lines = a.cmd("n3", "NOOP");
    assert!(
        pos(&lines, "* 7 EXISTS") < pos(&lines, "* ESEARCH"),
        "{lines:?}"
    );
    assert_eq!(
        esearch(&lines),
        [
            "* ESEARCH (TAG \"S1\") UID ADDTO (1 7)",
            "* ESEARCH (TAG \"S2\") ADDTO (4 7)",
        ]
    );
    // Message 2 (alpha) is expunged: second in 7 2 6 5, third in 5 6 2 7; told before the
    // EXPUNGE, while its number 2 is still valid.
    assert_tagged_ok(&b.cmd("b3", "UID STORE 2 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&b.cmd("b4", "EXPUNGE"));
    let lines = a.cmd("n4", "NOOP");
    assert!(
        pos(&lines, "* ESEARCH") < pos(&lines, "* 2 EXPUNGE"),
        "{lines:?}"
    );
    assert_eq!(
        esearch(&lines),
        [
            "* ESEARCH (TAG \"S1\") UID REMOVEFROM (2 2)",
            "* ESEARCH (TAG \"S2\") REMOVEFROM (3 2)",
        ]
    );
    // The client's lists match a fresh sort.
    run_transcript(
        &mut a,
        r#"C: f1 UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNSEEN
           S: * ESEARCH (TAG "f1") UID ALL 7,6,5
           S: f1 OK Sort completed.
           C: f2 SORT (REVERSE SUBJECT) UTF-8 UNSEEN
           S: * SORT 4 5 6
           S: f2 OK Sort completed."#,
    );
}

#[test]
fn removefrom_comes_before_vanished_once_qresync_is_enabled() {
    let (s, mut a) = fixture();
    run_transcript(
        &mut a,
        r#"C: e ENABLE QRESYNC
           S: * ENABLED QRESYNC
           S: * OK [HIGHESTMODSEQ {*}] Highest
           S: e OK Enabled.
           C: U1 UID SEARCH RETURN (UPDATE PARTIAL 1:1) UNSEEN
           S: * ESEARCH (TAG "U1") UID PARTIAL (1:1 2)
           S: U1 OK Search completed."#,
    );
    let mut b = other(&s);
    assert_tagged_ok(&b.cmd("b1", "UID STORE 4 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&b.cmd("b2", "EXPUNGE"));
    let lines = a.cmd("n1", "NOOP");
    assert_tagged_ok(&lines);
    // RFC 5267 4.3: updates are about the whole result, not only the PARTIAL page asked for.
    assert_eq!(
        esearch(&lines),
        ["* ESEARCH (TAG \"U1\") UID REMOVEFROM (0 4)"]
    );
    assert!(
        pos(&lines, "* ESEARCH") < pos(&lines, "* VANISHED 4"),
        "{lines:?}"
    );
}
