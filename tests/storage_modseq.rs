//! Maildir MODSEQ durability (RFC 7162): HIGHESTMODSEQ and the remembered expunges survive log
//! compaction and a restart, and a rebuild that keeps the UIDVALIDITY (adopting Dovecot's
//! `dovecot-uidlist`, first or again) never hands out a modseq a client may already hold.

#[path = "storage_common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use mailcove::storage::maildir::MaildirStorage;
use mailcove::storage::{OpenOptions, StoreOp, StoreRequest, SystemFlags, Vanished, View};

const FIXTURE: &str = "tests/fixtures/maildir/dovecot-user";

fn copy_tree(from: &Path, to: &Path) {
    assert!(std::fs::create_dir_all(to).is_ok());
    let rd = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for ent in rd.flatten() {
        let target = to.join(ent.file_name());
        if ent.path().is_dir() {
            copy_tree(&ent.path(), &target);
        } else {
            assert!(std::fs::copy(ent.path(), &target).is_ok());
        }
    }
}

fn flags(op: StoreOp, flags: SystemFlags) -> StoreRequest {
    StoreRequest {
        op,
        flags,
        keywords: Vec::new(),
        unchanged_since: None,
    }
}

fn modseqs(v: &View) -> Vec<(u32, u64)> {
    v.messages().iter().map(|m| (m.uid, m.modseq)).collect()
}

async fn delete(v: &mut View, uids: &[u32]) {
    ok(v.store(uids, flags(StoreOp::Add, SystemFlags::DELETED))
        .await);
    ok(v.expunge(Some(uids)).await);
}

#[tokio::test]
async fn modseqs_and_the_expunge_window_survive_compaction_and_restart() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false; // a thousand operations; the crash test checks durability
    let root = root(tmp.path(), "dana");
    let log = root.join("mailcove-index.log");
    let base = root.join("mailcove-index");
    let st = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "dana").await;
    for i in 0..20 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let h0 = v.highest_modseq();
    delete(&mut v, &[3, 7]).await;
    let h1 = v.highest_modseq();
    assert_eq!(ok(v.vanished_since(h0).await), Vanished::Exact(vec![3, 7]));
    assert_eq!(ok(v.vanished_since(h1 - 1).await), Vanished::Exact(vec![7]));

    // Flag changes until the log has been folded into the base at least once.
    let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    let mut compactions = 0;
    let mut last_len = 0;
    for round in 0..120 {
        let op = if round % 2 == 0 {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        ok(v.store(&uids, flags(op, SystemFlags::SEEN)).await);
        let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if len < last_len {
            compactions += 1;
        }
        last_len = len;
    }
    assert!(compactions >= 1, "the log was never compacted");
    let text = String::from_utf8_lossy(&std::fs::read(&base).unwrap_or_default()).into_owned();
    assert!(
        text.starts_with("mailcove-index 3 "),
        "{}",
        text.lines().next().unwrap_or("")
    );
    assert!(text.contains("\nX 3 "), "the base remembers the expunges");
    assert_eq!(
        ok(v.vanished_since(h0).await),
        Vanished::Exact(vec![3, 7]),
        "compaction forgets nothing"
    );
    // One more expunge, after the compaction, lives in the log only.
    delete(&mut v, &[11]).await;
    let h2 = v.highest_modseq();
    let before = modseqs(&v);
    drop(v);
    drop(u);
    drop(st);

    // A new instance (a restart) reads base and log: the same modseqs, the same answers.
    let st = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "dana").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(v.highest_modseq(), h2);
    assert_eq!(ok(u.status("INBOX").await).highest_modseq, h2);
    assert_eq!(modseqs(&v), before);
    assert_eq!(
        ok(v.vanished_since(h0).await),
        Vanished::Exact(vec![3, 7, 11])
    );
    assert_eq!(ok(v.vanished_since(h1).await), Vanished::Exact(vec![11]));
    assert_eq!(ok(v.vanished_since(h2).await), Vanished::Exact(vec![]));
    // And it goes on from there, never repeating one.
    ok(v.store(&[1], flags(StoreOp::Add, SystemFlags::FLAGGED))
        .await);
    assert!(v.highest_modseq() > h2);
    let uid = append(&*u, "INBOX", "after restart").await;
    ok(v.refresh().await);
    let m = v.messages().find(uid).map(|m| m.modseq).unwrap_or(0);
    assert!(m > h2 + 1, "{m} must be above {}", h2 + 1);
}

#[tokio::test]
async fn a_readopted_uidlist_keeps_its_uidvalidity_and_modseqs_still_only_go_up() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path().join("erin");
    copy_tree(Path::new(FIXTURE), &root);
    let mut o = options(tmp.path());
    o.location = format!("{}/%n", tmp.path().display());

    let (uidvalidity, high) = {
        let st = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
        let u = login(&st, "erin").await;
        let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
        assert_eq!(v.uidvalidity(), 1_700_000_000, "Dovecot's UIDVALIDITY");
        let start = v.highest_modseq();
        // Dovecot's own modseqs are small counters a client may hold: ours start above them.
        assert!(start > 1_000_000_000, "adopted at {start}");
        assert!(v.messages().iter().all(|m| m.modseq == start));
        // What Dovecot expunged we never knew: a client coming with its modseq hears Unknown.
        assert_eq!(ok(v.vanished_since(42).await), Vanished::Unknown);
        assert_eq!(ok(v.vanished_since(start).await), Vanished::Exact(vec![]));
        ok(v.store(&[1], flags(StoreOp::Add, SystemFlags::FLAGGED))
            .await);
        delete(&mut v, &[5]).await;
        assert_eq!(ok(v.vanished_since(start).await), Vanished::Exact(vec![5]));
        (v.uidvalidity(), v.highest_modseq())
    };

    // The administrator removes our index; the uidlist is adopted again, same UIDVALIDITY.
    for f in ["mailcove-index", "mailcove-index.log"] {
        assert!(std::fs::remove_file(root.join(f)).is_ok(), "{f}");
    }
    // The clock moves on (it is what the new start is taken from).
    std::thread::sleep(std::time::Duration::from_millis(2));
    let st = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "erin").await;
    let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(v.uidvalidity(), uidvalidity);
    assert!(
        v.highest_modseq() > high,
        "{} must be above {high}: a client holding {high} would miss changes",
        v.highest_modseq()
    );
    assert!(v.messages().iter().all(|m| m.modseq > high));
    assert_eq!(
        ok(v.vanished_since(high).await),
        Vanished::Unknown,
        "the expunges before the rebuild are not known any more"
    );
}

/// `text` (a whole base) with its END line's checksum recomputed.
fn reseal(text: &str) -> Vec<u8> {
    let end = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    let body = text.get(..end).unwrap_or_default();
    format!("{body}END {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
}

#[tokio::test]
async fn a_base_from_before_the_window_answers_unknown_below_its_highestmodseq() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false;
    let base = root(tmp.path(), "fred").join("mailcove-index");
    let (h0, compacted) = {
        let st = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
        let u = login(&st, "fred").await;
        for i in 0..20 {
            append(&*u, "INBOX", &format!("m{i}")).await;
        }
        let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
        let h0 = v.highest_modseq();
        delete(&mut v, &[4]).await;
        let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        let mut round = 0;
        // Until a compaction has written the expunge into the base.
        while !String::from_utf8_lossy(&std::fs::read(&base).unwrap_or_default()).contains("\nX 4 ")
        {
            let op = if round % 2 == 0 {
                StoreOp::Add
            } else {
                StoreOp::Remove
            };
            ok(v.store(&uids, flags(op, SystemFlags::SEEN)).await);
            round += 1;
            assert!(round < 500, "the log was never compacted");
        }
        (h0, v.highest_modseq())
    };
    // The base as a build before the window wrote it: no X lines, no F, version 1.
    let text = String::from_utf8_lossy(&std::fs::read(&base).unwrap_or_default()).into_owned();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("X "))
        .map(|l| {
            if l.starts_with("mailcove-index 3 ") {
                let l = l.replacen("mailcove-index 3 ", "mailcove-index 1 ", 1);
                l.split(' ')
                    .filter(|f| !f.starts_with('F'))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert!(!old.contains(" F"), "{}", old.lines().next().unwrap_or(""));
    assert!(std::fs::write(&base, reseal(&old)).is_ok());

    let st = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "fred").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let base_high = v.highest_modseq();
    assert!(base_high >= compacted && compacted > h0);
    assert!(v.seq_of(4).is_none());
    assert_eq!(
        ok(v.vanished_since(h0).await),
        Vanished::Unknown,
        "what the old base forgot is not made up"
    );
    delete(&mut v, &[9]).await;
    assert_eq!(
        ok(v.vanished_since(base_high).await),
        Vanished::Exact(vec![9])
    );
}
