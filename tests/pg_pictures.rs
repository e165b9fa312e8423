//! The PostgreSQL backend refreshes a mailbox from the picture it last read plus what changed
//! since (rows above its HIGHESTMODSEQ, expunge tombstones above it), instead of reading the whole
//! mailbox (src/storage/postgres/picture.rs). Three nodes on one database: node 1 keeps a view
//! open and refreshes it incrementally, node 2 changes the mailbox (APPEND, flags, keywords,
//! EXPUNGE, MOVE in and out), and node 3 reads the mailbox whole with a fresh process's empty
//! cache. After every round node 1's picture must equal node 3's exactly, including after the
//! tombstone window was trimmed past node 1's picture (then it is read whole again).

#[path = "common/postgres.rs"]
mod pg_server;

use std::sync::Arc;

use bytes::Bytes;
use mailcove::storage::postgres::{PgOptions, PgStorage};
use mailcove::storage::{
    AppendMessage, MessageMeta, OpenOptions, Result, Storage, StorageUser, StoreOp, StoreRequest,
    SystemFlags, UserStore, View,
};

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("storage error: {e}"))
}

/// A fresh database and two nodes' stores of the same user on it.
async fn two_nodes() -> (String, Arc<dyn UserStore>, Arc<dyn UserStore>) {
    let url = tokio::task::spawn_blocking(pg_server::fresh_database)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one = node(&url).await;
    let two = node(&url).await;
    (url, one, two)
}

async fn node(url: &str) -> Arc<dyn UserStore> {
    let mut o = PgOptions::new(url);
    o.max_connections = 4;
    o.fts = false;
    let storage = ok(PgStorage::connect(o).await);
    let user = StorageUser {
        name: "pic".to_owned(),
        ..Default::default()
    };
    ok(storage.user(&user).await)
}

async fn append(u: &dyn UserStore, mailbox: &str, n: u32) -> u32 {
    let m = AppendMessage {
        data: Bytes::from(format!("Subject: {n}\r\n\r\nbody {n}\r\n")),
        flags: SystemFlags::EMPTY,
        keywords: Vec::new(),
        internal_date: Some(1_700_000_000 + i64::from(n)),
    };
    ok(u.append(mailbox, m).await).uid
}

fn req(op: StoreOp, flags: SystemFlags, keywords: &[&str]) -> StoreRequest {
    StoreRequest {
        op,
        flags,
        keywords: keywords.iter().map(|s| (*s).to_owned()).collect(),
        unchanged_since: None,
    }
}

/// What a picture says of each message, keywords by name (tables may differ in order).
fn picture(v: &View) -> Vec<(u32, u8, Vec<String>, u64, u64)> {
    let names = v.keywords();
    v.messages()
        .iter()
        .map(|m: &MessageMeta| {
            let mut kw: Vec<String> = m
                .flags
                .keywords
                .iter()
                .filter_map(|i| names.get(i).cloned())
                .collect();
            kw.sort();
            (m.uid, m.flags.system.0, kw, m.modseq, m.phys_size)
        })
        .collect()
}

async fn whole(url: &str) -> (Vec<(u32, u8, Vec<String>, u64, u64)>, u64, u32) {
    let fresh = node(url).await;
    let v = ok(fresh.open("INBOX", OpenOptions::EXAMINE).await);
    (picture(&v), v.highest_modseq(), v.uidnext())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refreshes_equal_a_whole_read() {
    let (url, one, two) = two_nodes().await;
    ok(two.create("Other", None).await);
    for n in 1..=40 {
        append(&*two, "INBOX", n).await;
    }
    let mut watched = ok(one.open("INBOX", OpenOptions::EXAMINE).await);
    let mut writer = ok(two.open("INBOX", OpenOptions::SELECT).await);
    let mut next = 41;
    for round in 0u32..12 {
        // A different mix each round, from a fixed pattern (no randomness to reproduce).
        let present: Vec<u32> = writer.messages().iter().map(|m| m.uid).collect();
        let pick = |k: u32| -> Vec<u32> {
            present
                .iter()
                .copied()
                .filter(|u| (u + round) % k == 0)
                .collect()
        };
        ok(writer
            .store(&pick(3), req(StoreOp::Add, SystemFlags::SEEN, &["$Label1"]))
            .await);
        ok(writer
            .store(&pick(5), req(StoreOp::Remove, SystemFlags::SEEN, &[]))
            .await);
        ok(writer
            .store(
                &pick(7),
                req(
                    StoreOp::Replace,
                    SystemFlags::FLAGGED,
                    &[&format!("k{round}")],
                ),
            )
            .await);
        let doomed = pick(11);
        ok(writer
            .store(&doomed, req(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await);
        ok(writer.expunge(Some(&doomed)).await);
        for _ in 0..3 {
            append(&*two, "INBOX", next).await;
            next += 1;
        }
        // In and out by MOVE: a tombstone here, a new UID there.
        append(&*two, "Other", next).await;
        next += 1;
        let mut other = ok(two.open("Other", OpenOptions::SELECT).await);
        let last = other.messages().last_uid().unwrap_or(0);
        ok(other.move_to(&[last], "INBOX").await);
        ok(writer.refresh().await);
        let first = writer.messages().get(0).map(|m| m.uid);
        if let Some(first) = first {
            ok(writer.move_to(&[first], "Other").await);
        }

        ok(watched.refresh().await);
        let (want, modseq, uidnext) = whole(&url).await;
        assert_eq!(picture(&watched), want, "round {round}");
        assert_eq!(watched.highest_modseq(), modseq, "round {round}");
        assert_eq!(watched.uidnext(), uidnext, "round {round}");
    }

    // Push INBOX's tombstones past the window: node 1's picture is then older than what is
    // remembered, so its refresh must read the mailbox whole, and still be right. Many
    // messages cheaply: double "Other" by copying it onto itself, all \Deleted, copy them into
    // INBOX and expunge them there at once (one tombstone each).
    let mut other = ok(two.open("Other", OpenOptions::SELECT).await);
    let all: Vec<u32> = other.messages().iter().map(|m| m.uid).collect();
    ok(other
        .store(&all, req(StoreOp::Add, SystemFlags::DELETED, &[]))
        .await);
    while other.messages().len() <= mailcove::limits::VANISHED_WINDOW {
        let all: Vec<u32> = other.messages().iter().map(|m| m.uid).collect();
        ok(other.copy(&all, "Other").await);
        ok(other.refresh().await);
    }
    let all: Vec<u32> = other.messages().iter().map(|m| m.uid).collect();
    ok(other.copy(&all, "INBOX").await);
    ok(writer.refresh().await);
    ok(writer.expunge(None).await);
    ok(watched.refresh().await);
    let (want, modseq, _) = whole(&url).await;
    assert_eq!(
        picture(&watched),
        want,
        "after the tombstone window moved on"
    );
    assert_eq!(watched.highest_modseq(), modseq);
}

/// Sizes, whole content and head of message `uid` opened with `max_head`.
async fn read(v: &View, uid: u32, max_head: usize) -> (u64, u64, Vec<u8>, (Vec<u8>, bool)) {
    let m = ok(v.open_message(uid, max_head).await);
    let all = ok(m.read_all().await);
    (
        m.phys_size,
        m.virt_size,
        all,
        (m.head.bytes, m.head.complete),
    )
}

/// A message whose content names its mailbox and number, `pad` bytes of body more.
async fn append_body(u: &dyn UserStore, mailbox: &str, n: u32, pad: usize) -> u32 {
    let m = AppendMessage {
        data: Bytes::from(message_text(mailbox, n, pad)),
        flags: SystemFlags::EMPTY,
        keywords: Vec::new(),
        internal_date: None,
    };
    ok(u.append(mailbox, m).await).uid
}

fn message_text(mailbox: &str, n: u32, pad: usize) -> String {
    format!("Subject: {mailbox} {n}\r\n\r\n{}\r\n", "x".repeat(pad))
}

/// A warm open (this process's picture current) is one statement without a lock: it must
/// still see what another node committed, and `\Recent` is claimed by exactly one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_opens_see_other_nodes_and_claim_recent_once() {
    let (url, one, two) = two_nodes().await;
    for n in 1..=3 {
        append(&*two, "INBOX", n).await;
    }
    let first = ok(one.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!((first.len(), first.recent_count()), (3, 3));
    // Warm: nothing changed, nothing to claim (the picture is reused).
    let again = ok(one.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!((again.len(), again.recent_count()), (3, 0));
    assert_eq!(picture(&again), picture(&first));
    // Another node appends and flags: the next warm open on node 1 sees both.
    let uid = append(&*two, "INBOX", 4).await;
    // (A POP3 view: it writes without claiming \Recent.)
    let mut w = ok(two.open("INBOX", OpenOptions::POP3).await);
    ok(
        w.store(&[1], req(StoreOp::Add, SystemFlags::FLAGGED, &["$Seen1"]))
            .await,
    );
    let examine = ok(one.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(examine.len(), 4);
    assert!(examine.is_recent(uid), "EXAMINE reports unclaimed \\Recent");
    let (want, modseq, uidnext) = whole(&url).await;
    assert_eq!(picture(&examine), want);
    assert_eq!(
        (examine.highest_modseq(), examine.uidnext()),
        (modseq, uidnext)
    );
    // Two sessions (one per node) SELECT: one of them gets the new message as \Recent.
    let a = ok(one.open("INBOX", OpenOptions::SELECT).await);
    let b = ok(two.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(a.recent_count() + b.recent_count(), 1);
    let c = ok(one.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!((c.len(), c.recent_count()), (4, 0));
    assert_eq!(picture(&c), want);
}

/// Opens in ascending UID order are served from a read-ahead: it must hold the opened
/// mailbox's messages only, whole and with their own sizes, pass over large messages, and be
/// dropped once a refresh saw the mailbox change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_ahead_serves_this_mailboxs_messages_whole() {
    let (_, one, two) = two_nodes().await;
    ok(two.create("Other", None).await);
    let big = mailcove::limits::PG_READ_AHEAD_MESSAGE_BYTES + 10;
    let pad = |n: u32| if n == 5 { big } else { n as usize * 100 };
    for n in 1..=12 {
        // Same UIDs in both mailboxes, different content and sizes.
        append_body(&*two, "INBOX", n, pad(n)).await;
        append_body(&*two, "Other", n, pad(n) + 7).await;
    }
    let mut inbox = ok(one.open("INBOX", OpenOptions::POP3).await);
    let other = ok(one.open("Other", OpenOptions::POP3).await);
    for uid in 1..=8u32 {
        // Interleaved: each view's opens are ascending on their own.
        for (v, name, extra) in [(&inbox, "INBOX", 0), (&other, "Other", 7)] {
            let want = message_text(name, uid, pad(uid) + extra);
            for max_head in [0, 64, 1 << 20] {
                if max_head != 0 && uid % 2 == 0 {
                    continue;
                }
                let (phys, virt, all, head) = read(v, uid, max_head).await;
                assert_eq!(
                    String::from_utf8_lossy(&all),
                    want,
                    "{name} {uid} head {max_head}"
                );
                assert_eq!((phys, virt), (want.len() as u64, want.len() as u64));
                let h = max_head.min(want.len() + 1);
                assert_eq!(head.0, want.as_bytes()[..h.min(want.len())]);
                assert_eq!(head.1, max_head > want.len(), "{name} {uid}");
            }
        }
    }
    // Another node expunges INBOX 10 (read ahead by now): once node 1's view refreshed and
    // saw it, the open answers Expunged as for any message gone.
    let mut w = ok(two.open("INBOX", OpenOptions::SELECT).await);
    ok(w.store(&[10], req(StoreOp::Add, SystemFlags::DELETED, &[]))
        .await);
    ok(w.expunge(Some(&[10])).await);
    ok(inbox.refresh().await);
    let (_, _, nine, _) = read(&inbox, 9, 0).await;
    assert_eq!(
        String::from_utf8_lossy(&nine),
        message_text("INBOX", 9, 900)
    );
    assert!(matches!(
        inbox.open_message(10, 0).await,
        Err(mailcove::storage::StorageError::Expunged)
    ));
    for uid in 11..=12 {
        let (_, _, all, _) = read(&inbox, uid, 0).await;
        assert_eq!(
            String::from_utf8_lossy(&all),
            message_text("INBOX", uid, pad(uid))
        );
    }
}
