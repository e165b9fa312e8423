//! NOTIFY (RFC 5465) on the wire, against the real binary, on both backends: session A asks to
//! be told, session B (same user, another connection) makes the change, and A must see the
//! STATUS / LIST / EXISTS / EXPUNGE / FETCH the RFC says, pushed between commands, in IDLE, and
//! before the tagged answer of a command. Filters are checked for what they must NOT cover by a
//! marker change that must be the very first thing A hears. Expected values are worked out by
//! hand from the RFC's rules and this file's messages (every mailbox starts empty; UIDs start at
//! 1; one unseen message per APPEND without flags).

mod common;

use common::*;

const MSG: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";

/// APPEND of [`MSG`] into `mailbox` by session `c`, answered OK.
fn append(c: &mut Client, mailbox: &str) {
    let mut cmd = format!("ap APPEND {mailbox} {{{}+}}\r\n", MSG.len()).into_bytes();
    cmd.extend_from_slice(MSG);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("ap ");
    assert_tagged_ok(&r);
}

fn ok(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    let r = c.cmd(tag, command);
    assert_tagged_ok(&r);
    r
}

/// Reads the next line and checks it against `pattern` (`{*}` matches any text, a final `*`
/// any rest of the line).
fn expect(c: &mut Client, pattern: &str) {
    let got = c.line();
    assert!(
        line_matches(pattern, &got),
        "expected {pattern:?}, got {got:?}"
    );
}

/// The lines of a NOOP's answer before its tagged OK.
fn noop(c: &mut Client) -> Vec<String> {
    let mut r = ok(c, "nn", "NOOP");
    r.pop();
    r
}

const BADEVENT: &str = "NO [BADEVENT (MessageNew MessageExpunge FlagChange AnnotationChange \
                        MailboxName SubscriptionChange MailboxMetadataChange \
                        ServerMetadataChange)] Unsupported NOTIFY event.";

#[test]
fn capability_grammar_and_refusals() {
    let s = Server::start();
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    // RFC 5465 8: `command-auth =/ notify`.
    let r = c.cmd("p", "NOTIFY NONE");
    assert!(r[0].starts_with("p BAD"), "{r:?}");
    let r = c.cmd("l", "LOGIN demo demo");
    assert_tagged_ok(&r);
    let caps = ok(&mut c, "c", "CAPABILITY");
    assert!(caps[0].split(' ').any(|w| w == "NOTIFY"), "{caps:?}");

    // RFC 5465 3.1: an unsupported event is NO [BADEVENT] listing every supported event.
    let r = c.cmd(
        "a",
        "NOTIFY SET (personal (MessageNew MessageExpunge FooChange))",
    );
    assert_eq!(r, vec![format!("a {BADEVENT}")]);
    // RFC 5465 5: MessageNew and MessageExpunge together; FlagChange needs both.
    let r = c.cmd("b", "NOTIFY SET (personal (MessageNew))");
    assert_eq!(
        r,
        vec!["b BAD MessageNew and MessageExpunge must be together"]
    );
    let r = c.cmd("b", "NOTIFY SET (selected (MessageExpunge))");
    assert_eq!(
        r,
        vec!["b BAD MessageNew and MessageExpunge must be together"]
    );
    let r = c.cmd("d", "NOTIFY SET (subtree INBOX (FlagChange))");
    assert_eq!(
        r,
        vec!["d BAD FlagChange requires MessageNew and MessageExpunge"]
    );
    let r = c.cmd("d", "NOTIFY SET (personal (AnnotationChange MailboxName))");
    assert_eq!(
        r,
        vec!["d BAD FlagChange requires MessageNew and MessageExpunge"]
    );
    // RFC 5465 6.1: one selected filter, message events only; fetch-atts only there.
    let r = c.cmd(
        "e",
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
    );
    assert_eq!(r, vec!["e BAD Duplicate selected filter"]);
    let r = c.cmd("f", "NOTIFY SET (selected (MailboxName))");
    assert_eq!(
        r,
        vec!["f BAD Only message events are allowed for the selected mailbox"]
    );
    let r = c.cmd(
        "g",
        "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
    );
    assert_eq!(
        r,
        vec!["g BAD FETCH attributes are allowed only for the selected mailbox"]
    );
    let r = c.cmd(
        "h",
        "NOTIFY SET (selected (MessageNew (BODY[NOPE]) MessageExpunge))",
    );
    assert!(r[0].starts_with("h BAD"), "{r:?}");
    // Grammar errors.
    for bad in [
        "NOTIFY",
        "NOTIFY SET",
        "NOTIFY SET STATUS",
        "NOTIFY SET (selected)",
        "NOTIFY SET (bogus (MessageNew MessageExpunge))",
        "NOTIFY SET (mailboxes () (MailboxName))",
        "NOTIFY NONE NONE",
    ] {
        let r = c.cmd("s", bad);
        assert!(r[0].starts_with("s BAD"), "{bad}: {r:?}");
    }
    // Too many names: NO [NOTIFICATIONOVERFLOW] (Dovecot's limit of 100).
    let names: Vec<String> = (0..=mailcove::limits::NOTIFY_MAX_NAMES)
        .map(|i| format!("m{i}"))
        .collect();
    let r = c.cmd(
        "o",
        &format!("NOTIFY SET (mailboxes ({}) (MailboxName))", names.join(" ")),
    );
    assert_eq!(
        r,
        vec!["o NO [NOTIFICATIONOVERFLOW] Too many mailbox names."]
    );
    // A valid SET, and NONE, answer OK.
    ok(
        &mut c,
        "v",
        "NOTIFY SET (selected-delayed NONE) (personal NONE)",
    );
    ok(
        &mut c,
        "w",
        "NOTIFY SET (subtree INBOX (MessageNew MessageExpunge FlagChange))",
    );
    ok(&mut c, "x", "NOTIFY NONE");
}

#[test]
fn other_mailboxes_message_events_as_status() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    for m in ["Lists", "Lists/a", "Other"] {
        ok(&mut a, "cr", &format!("CREATE {m}"));
    }
    // RFC 5465 3.1: with STATUS, a STATUS for each watched mailbox before the tagged OK; INBOX
    // and Other are outside the subtree.
    let r = ok(
        &mut a,
        "n1",
        "NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge FlagChange))",
    );
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(
        line_matches(
            "* STATUS Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {*} UNSEEN 0)",
            &r[0]
        ),
        "{r:?}"
    );
    assert!(
        line_matches(
            "* STATUS Lists/a (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {*} UNSEEN 0)",
            &r[1]
        ),
        "{r:?}"
    );

    // MessageNew in another mailbox, pushed between commands (RFC 5465 5.2).
    append(&mut b, "Lists/a");
    expect(
        &mut a,
        "* STATUS Lists/a (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );
    // Other is not covered: the first thing A hears is the change to Lists.
    append(&mut b, "Other");
    append(&mut b, "INBOX");
    append(&mut b, "Lists");
    expect(
        &mut a,
        "* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );

    // In IDLE (RFC 5465 4: the same events): FlagChange (\Seen changes UNSEEN), then
    // MessageExpunge (5.3).
    a.send("i1 IDLE");
    expect(&mut a, "+ *");
    ok(&mut b, "s1", "SELECT Lists/a");
    ok(&mut b, "s2", "STORE 1 +FLAGS (\\Seen)");
    expect(
        &mut a,
        "* STATUS Lists/a (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 0)",
    );
    ok(&mut b, "s3", "STORE 1 +FLAGS (\\Deleted)");
    ok(&mut b, "s4", "EXPUNGE");
    expect(
        &mut a,
        "* STATUS Lists/a (MESSAGES 0 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 0)",
    );
    a.send("DONE");
    expect(&mut a, "i1 OK Idle completed.");

    // Told before the tagged answer of the next command when it happened meanwhile: after a
    // NOOP, the STATUS has arrived.
    ok(&mut b, "s5", "UNSELECT");
    append(&mut b, "Lists");
    let mut seen = noop(&mut a);
    if seen.is_empty() {
        // Pushed between commands but after the NOOP's answer: read it.
        seen.push(a.line());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        line_matches(
            "* STATUS Lists (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {*} UNSEEN 2)",
            &seen[0]
        ),
        "{seen:?}"
    );

    // With CONDSTORE enabled, HIGHESTMODSEQ too (RFC 5465 5.1, 5.2).
    ok(&mut a, "en", "ENABLE CONDSTORE");
    append(&mut b, "Lists");
    expect(
        &mut a,
        "* STATUS Lists (MESSAGES 3 UIDNEXT 4 UIDVALIDITY {*} UNSEEN 3 HIGHESTMODSEQ {*})",
    );

    // NOTIFY NONE stops it: nothing comes, not even before NOOP's answer.
    ok(&mut a, "n2", "NOTIFY NONE");
    append(&mut b, "Lists");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(noop(&mut a).is_empty());
}

#[test]
fn filters_cover_only_their_mailboxes() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    for m in ["a", "a/b", "c", "d"] {
        ok(&mut a, "cr", &format!("CREATE {m}"));
    }
    ok(&mut a, "su", "SUBSCRIBE c");
    // `mailboxes` is exact (RFC 5465 6.6), `subscribed` follows the subscriptions (6.4).
    ok(
        &mut a,
        "n1",
        "NOTIFY SET (mailboxes a (MessageNew MessageExpunge)) (subscribed (MessageNew MessageExpunge))",
    );
    append(&mut b, "a/b");
    append(&mut b, "d");
    append(&mut b, "c");
    expect(
        &mut a,
        "* STATUS c (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );
    append(&mut b, "a");
    expect(
        &mut a,
        "* STATUS a (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );
    // The subscription list is re-evaluated (6.4): d subscribed by B is covered from now on.
    ok(&mut b, "sd", "SUBSCRIBE d");
    append(&mut b, "d");
    expect(
        &mut a,
        "* STATUS d (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {*} UNSEEN 2)",
    );

    // `subtree` covers the children (6.5).
    ok(
        &mut a,
        "n2",
        "NOTIFY SET (subtree a (MessageNew MessageExpunge))",
    );
    append(&mut b, "c");
    append(&mut b, "a/b");
    expect(
        &mut a,
        "* STATUS a/b (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {*} UNSEEN 2)",
    );

    // `inboxes` is `personal` here (6.3): every mailbox, INBOX included.
    ok(
        &mut a,
        "n3",
        "NOTIFY SET (inboxes (MessageNew MessageExpunge))",
    );
    append(&mut b, "INBOX");
    expect(
        &mut a,
        "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );

    // The selected mailbox is not told as STATUS (3.1: SELECTED overrides the other groups, and
    // without it no message events for the selected mailbox are pushed).
    ok(&mut a, "se", "SELECT c");
    append(&mut b, "c");
    append(&mut b, "d");
    expect(
        &mut a,
        "* STATUS d (MESSAGES 3 UIDNEXT 4 UIDVALIDITY {*} UNSEEN 3)",
    );
}

#[test]
fn selected_mailbox_events() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    ok(&mut a, "s0", "SELECT INBOX");
    ok(
        &mut a,
        "n1",
        "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))",
    );
    // RFC 5465 5.2: EXISTS, then a FETCH with the requested attributes, without a command.
    append(&mut b, "INBOX");
    expect(&mut a, "* 1 EXISTS");
    expect(&mut a, "* 1 RECENT");
    expect(&mut a, "* 1 FETCH (UID 1 FLAGS (\\Recent))");
    // 5.1: a flag change is a FETCH with UID and FLAGS.
    ok(&mut b, "b1", "SELECT INBOX");
    ok(&mut b, "b2", "STORE 1 +FLAGS.SILENT (\\Flagged)");
    expect(&mut a, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))");
    // 5.3: with `selected`, the EXPUNGE is pushed at once.
    ok(&mut b, "b3", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    expect(
        &mut a,
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted \\Recent))",
    );
    ok(&mut b, "b4", "EXPUNGE");
    expect(&mut a, "* 1 EXPUNGE");

    // `selected-delayed` (6.1.2) holds the EXPUNGE until a command allows it: a LIST pushed for
    // a mailbox B creates afterwards arrives first, the EXPUNGE comes with the NOOP.
    ok(
        &mut a,
        "n2",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (personal (MailboxName))",
    );
    // B has INBOX selected read-write: it takes \Recent of the message (its own command's end
    // comes before A's NOOP), so A sees no RECENT change (RFC 3501 2.3.2).
    append(&mut b, "INBOX");
    let r = noop(&mut a);
    assert_eq!(r, vec!["* 1 EXISTS"]);
    ok(&mut b, "b5", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    ok(&mut b, "b6", "EXPUNGE");
    ok(&mut b, "b7", "CREATE Marker");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Marker");
    let r = noop(&mut a);
    assert_eq!(r, vec!["* 1 EXPUNGE"]);

    // In IDLE, `selected-delayed` events come at once (IDLE allows EXPUNGE). B leaves INBOX, so
    // A is the session that takes \Recent.
    ok(&mut b, "b8", "UNSELECT");
    a.send("i1 IDLE");
    expect(&mut a, "+ *");
    append(&mut b, "INBOX");
    expect(&mut a, "* 1 EXISTS");
    expect(&mut a, "* 1 RECENT");
    a.send("DONE");
    expect(&mut a, "i1 OK Idle completed.");
}

#[test]
fn mailbox_name_and_subscription_events_as_list() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    ok(
        &mut a,
        "n1",
        "NOTIFY SET (personal (MailboxName SubscriptionChange))",
    );
    // RFC 5465 5.4: created, renamed (OLDNAME), deleted (\NonExistent).
    ok(&mut b, "b1", "CREATE Foo");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Foo");
    ok(&mut b, "b2", "RENAME Foo Bar");
    expect(
        &mut a,
        "* LIST (\\HasNoChildren) \"/\" Bar (\"OLDNAME\" (Foo))",
    );
    // 5.5: \Subscribed if and only if subscribed after the change.
    ok(&mut b, "b3", "SUBSCRIBE Bar");
    expect(&mut a, "* LIST (\\HasNoChildren \\Subscribed) \"/\" Bar");
    ok(&mut b, "b4", "UNSUBSCRIBE Bar");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Bar");
    ok(&mut b, "b5", "DELETE Bar");
    expect(&mut a, "* LIST (\\NonExistent) \"/\" Bar");
    // 5: a client is not told what it did itself.
    let r = ok(&mut a, "a1", "CREATE Mine");
    assert_eq!(r.len(), 1, "{r:?}");
    // In IDLE.
    a.send("i1 IDLE");
    expect(&mut a, "+ *");
    ok(&mut b, "b6", "CREATE Baz");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Baz");
    a.send("DONE");
    expect(&mut a, "i1 OK Idle completed.");
    // 5.4: "the mailbox itself and its direct parent" are affected by a create or delete.
    ok(&mut b, "c1", "CREATE Baz/Sub");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Baz/Sub");
    expect(&mut a, "* LIST (\\HasChildren) \"/\" Baz");
    ok(&mut b, "c2", "DELETE Baz/Sub");
    expect(&mut a, "* LIST (\\NonExistent) \"/\" Baz/Sub");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Baz");
    // Scoped: a mailbox outside `mailboxes` is not told; the marker inside it is first.
    ok(
        &mut a,
        "n2",
        "NOTIFY SET (mailboxes (Kept Watched) (MailboxName))",
    );
    ok(&mut b, "b7", "CREATE Elsewhere");
    ok(&mut b, "b8", "CREATE Watched");
    expect(&mut a, "* LIST (\\HasNoChildren) \"/\" Watched");
    // After NOOP too (told before the tagged answer or just before it was asked).
    ok(&mut b, "b9", "RENAME Watched Kept");
    let mut r = noop(&mut a);
    if r.is_empty() {
        r.push(a.line());
    }
    assert_eq!(
        r,
        vec!["* LIST (\\HasNoChildren) \"/\" Kept (\"OLDNAME\" (Watched))"]
    );
}

#[test]
fn a_session_that_falls_behind_gets_notificationoverflow() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    ok(&mut a, "n1", "NOTIFY SET (personal (SubscriptionChange))");
    // A's session reads no events while its APPEND waits for the literal's data.
    a.send(&format!("ap APPEND INBOX {{{}}}", MSG.len()));
    expect(&mut a, "+ *");
    for i in 0..mailcove::limits::NOTIFY_FEED_CAPACITY + 10 {
        ok(&mut b, "sb", &format!("SUBSCRIBE x{i}"));
    }
    a.send_raw(MSG);
    a.send_raw(b"\r\n");
    let r = a.until("ap ");
    // RFC 5465 5.8: told once, and NOTIFY is off as after NOTIFY NONE.
    let overflow: Vec<&String> = r
        .iter()
        .filter(|l| l.starts_with("* OK [NOTIFICATIONOVERFLOW]"))
        .collect();
    assert_eq!(overflow.len(), 1, "{r:?}");
    assert!(r.last().is_some_and(|l| l.starts_with("ap OK")), "{r:?}");
    ok(&mut b, "sc", "SUBSCRIBE after");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = noop(&mut a);
    assert!(
        r.iter().all(|l| !l.starts_with("* LIST")),
        "NOTIFY must be off after the overflow: {r:?}"
    );
}

#[test]
fn external_delivery_into_a_folder_is_noticed() {
    if skip_unless_maildir("external_delivery_into_a_folder_is_noticed") {
        return;
    }
    let s = Server::start();
    let mut a = login_demo(&s);
    ok(&mut a, "c1", "CREATE Lists");
    ok(&mut a, "s0", "SELECT INBOX");
    ok(
        &mut a,
        "n1",
        "NOTIFY SET (personal (MessageNew MessageExpunge))",
    );
    // An MTA writes the file into new/ of a folder nobody has selected: one inotify watch set
    // for the user sees it.
    let new = s.maildir("demo").join(".Lists").join("new");
    std::fs::write(new.join("1733000000.M1P1.test"), MSG).unwrap();
    expect(
        &mut a,
        "* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );
    // And a folder created after NOTIFY SET is watched too.
    ok(&mut a, "c2", "CREATE Later");
    let new = s.maildir("demo").join(".Later").join("new");
    std::fs::write(new.join("1733000001.M2P1.test"), MSG).unwrap();
    expect(
        &mut a,
        "* STATUS Later (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {*} UNSEEN 1)",
    );
}

/// RFC 5465 5.9/5.10 with METADATA (RFC 5464 4.4.2): a second session's SETMETADATA reaches a
/// session watching MailboxMetadataChange / ServerMetadataChange as an unsolicited
/// `* METADATA mailbox entry`, between commands and in IDLE; a mailbox outside the filter is
/// not reported, and the session that made the change is not told.
#[test]
fn metadata_change_events() {
    let s = Server::start();
    let mut a = login_demo(&s);
    let mut b = login_demo(&s);
    ok(&mut b, "b0", "CREATE Other");
    ok(
        &mut a,
        "n1",
        "NOTIFY SET (mailboxes INBOX (MailboxMetadataChange ServerMetadataChange))",
    );
    ok(
        &mut b,
        "b1",
        "SETMETADATA INBOX (/private/comment \"read me\")",
    );
    expect(&mut a, "* METADATA INBOX /private/comment");
    ok(
        &mut b,
        "b2",
        "SETMETADATA \"\" (/shared/vendor/x/note \"n\")",
    );
    expect(&mut a, "* METADATA \"\" /shared/vendor/x/note");
    // Outside the filter: nothing.
    ok(
        &mut b,
        "b3",
        "SETMETADATA Other (/private/comment \"elsewhere\")",
    );
    assert_eq!(noop(&mut a), Vec::<String>::new());
    // In IDLE, and a removal (NIL) is a change too.
    a.send("i1 IDLE");
    expect(&mut a, "+ *");
    ok(&mut b, "b4", "SETMETADATA INBOX (/private/comment NIL)");
    expect(&mut a, "* METADATA INBOX /private/comment");
    a.send("DONE");
    expect(&mut a, "i1 OK Idle completed.");
    // Its own change is not reported back.
    let r = ok(
        &mut a,
        "a1",
        "SETMETADATA INBOX (/private/comment \"mine\")",
    );
    assert_eq!(r.len(), 1, "{r:?}");
}
