//! Changes made outside this storage instance: files an MTA drops into
//! `new/` or `cur/`, flag renames and removals by another process, a second
//! mailcove instance (as `mailcove deliver` is), change notification for
//! IDLE, and damaged index files.

#[path = "storage_common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use mailcove::storage::{
    OpenOptions, StorageError, StoreOp, StoreRequest, SystemFlags, Vanished, View,
};

/// Guards against a hang; the tests do not measure time.
const WAKE_LIMIT: Duration = Duration::from_secs(10);

fn drop_file(dir: &Path, name: &str, body: &str, mtime: i64) {
    let p = dir.join(name);
    assert!(std::fs::write(&p, body).is_ok());
    let f = std::fs::OpenOptions::new().write(true).open(&p);
    let t = std::time::UNIX_EPOCH + Duration::from_secs(mtime as u64);
    assert!(f.and_then(|f| f.set_modified(t)).is_ok());
}

async fn wait_change(v: &mut View) {
    if tokio::time::timeout(WAKE_LIMIT, v.changed()).await.is_err() {
        panic!("no change notification");
    }
}

#[tokio::test]
async fn files_dropped_into_new_and_cur_get_uids_in_arrival_order() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "alice").await;
    append(&*u, "INBOX", "ours").await;
    let root = root(tmp.path(), "alice");
    // Later mtime but alphabetically first: arrival order wins.
    drop_file(
        &root.join("new"),
        "1000.a.host",
        "Subject: second\n\nb\n",
        1_700_000_200,
    );
    drop_file(
        &root.join("new"),
        "2000.b.host",
        "Subject: first\n\na\n",
        1_700_000_100,
    );
    drop_file(
        &root.join("cur"),
        "3000.c.host:2,FS",
        "Subject: third\n\nc\n",
        1_700_000_300,
    );

    let s = ok(u.status("INBOX").await);
    assert_eq!((s.messages, s.uidnext, s.unseen), (4, 5, 3));
    // STATUS does not move files; a view does.
    assert_eq!(list_names(&root.join("new")).len(), 2);
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert!(list_names(&root.join("new")).is_empty());
    assert!(list_names(&root.join("cur")).contains(&"2000.b.host:2,".to_owned()));
    let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    let dates: Vec<i64> = ok(v.internal_dates(&uids).await)
        .iter()
        .map(|d| d.1)
        .collect();
    assert_eq!(
        dates,
        vec![1_700_000_000, 1_700_000_100, 1_700_000_200, 1_700_000_300]
    );
    let m4 = v.get(4).cloned().unwrap_or_else(|| panic!("missing"));
    assert_eq!(m4.uid, 4);
    assert!(m4.flags.system.contains(SystemFlags::FLAGGED));
    assert_eq!(m4.phys_size, 18);
    assert_eq!(m4.virt_size, 21, "W= computed by scanning the file");
    assert!(String::from_utf8_lossy(&read_all(&v, 2).await).contains("first"));
    assert_eq!(v.recent_count(), 4, "no session had seen any of them yet");
}

#[tokio::test]
async fn another_process_flag_rename_and_removal_are_seen() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "bob").await;
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let cur = root(tmp.path(), "bob").join("cur");
    // Picked by content: unique names are not zero-padded (`M<usecs>`), so their sort order
    // need not be the delivery order.
    let first = file_with_subject(&cur, "m0");
    let renamed = format!("{}T", first); // ":2," + T = \Deleted
    let status = std::process::Command::new("mv")
        .arg(cur.join(&first))
        .arg(cur.join(&renamed))
        .status();
    assert!(status.is_ok_and(|s| s.success()), "mv failed");
    wait_change(&mut v).await;
    let d = ok(v.refresh().await);
    assert_eq!(d.flag_changes, vec![1]);
    assert!(
        v.get(1)
            .is_some_and(|m| m.flags.system.contains(SystemFlags::DELETED))
    );
    let modseq = v.get(1).map(|m| m.modseq).unwrap_or(0);
    assert!(modseq > 3, "a foreign flag change gets a new modseq");

    // Our own store on a file someone just renamed again still works.
    let again = format!("{}S", renamed);
    assert!(std::fs::rename(cur.join(&renamed), cur.join(&again)).is_ok());
    let out = ok(v
        .store(
            &[1],
            StoreRequest {
                op: StoreOp::Add,
                flags: SystemFlags::FLAGGED,
                keywords: vec![],
                unchanged_since: None,
            },
        )
        .await);
    let flags = out
        .updated
        .first()
        .map(|(_, u)| u.flags.system)
        .unwrap_or_default();
    assert!(flags.contains(SystemFlags::SEEN) && flags.contains(SystemFlags::FLAGGED));

    // A file removed by another process: reading it says Expunged, refresh reports it.
    let before = v.highest_modseq();
    let second = file_with_subject(&cur, "m1");
    assert!(std::fs::remove_file(cur.join(second)).is_ok());
    assert!(matches!(
        v.open_message(2, 0).await,
        Err(StorageError::Expunged)
    ));
    let d = ok(v.refresh().await);
    assert_eq!(d.expunged_uids, vec![2]);
    // It takes a modseq and is remembered for QRESYNC like an expunge of ours.
    assert!(v.highest_modseq() > before);
    assert_eq!(ok(v.vanished_since(before).await), Vanished::Exact(vec![2]));
}

#[tokio::test]
async fn second_instance_shares_uids_and_wakes_idle() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let daemon = storage(tmp.path());
    let u = login(&daemon, "carol").await;
    append(&*u, "INBOX", "first").await;
    let mut idle = ok(u.open("INBOX", OpenOptions::SELECT).await);

    // Same process, other session.
    append(&*u, "INBOX", "second").await;
    wait_change(&mut idle).await;
    assert_eq!(ok(idle.refresh().await).exists, Some(2));

    // A separate storage instance shares nothing in memory with the first,
    // exactly like `mailcove deliver` in another process.
    let deliver = storage(tmp.path());
    let d = login(&deliver, "carol").await;
    let uid = append(&*d, "INBOX", "delivered").await;
    assert_eq!(uid, 3);
    wait_change(&mut idle).await;
    let delta = ok(idle.refresh().await);
    assert_eq!(delta.exists, Some(3));
    assert_eq!(idle.get(3).map(|m| m.uid), Some(3));

    // An MTA writing straight into new/.
    let new = root(tmp.path(), "carol").join("new");
    drop_file(&new, "9999.mta.host", "Subject: mta\n\nx\n", 1_700_000_000);
    wait_change(&mut idle).await;
    // The event may arrive before the rename completes; refresh until seen.
    let mut seen = false;
    for _ in 0..50 {
        if ok(idle.refresh().await).exists == Some(4) {
            seen = true;
            break;
        }
        wait_change(&mut idle).await;
    }
    assert!(seen);
    assert_eq!(idle.get(4).map(|m| m.uid), Some(4));

    // The other instance sees flags set here.
    let mut other = ok(d.open("INBOX", OpenOptions::EXAMINE).await);
    let mut idle2 = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(idle2
        .store(
            &[1],
            StoreRequest {
                op: StoreOp::Add,
                flags: SystemFlags::SEEN,
                keywords: vec!["Shared".into()],
                unchanged_since: None,
            },
        )
        .await);
    let delta = ok(other.refresh().await);
    assert_eq!(delta.flag_changes, vec![1]);
    assert!(delta.keywords_changed);
    assert_eq!(other.keywords().to_vec(), vec!["Shared".to_owned()]);
}

#[tokio::test]
async fn damaged_index_is_repaired() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root(tmp.path(), "dave");
    {
        let st = storage(tmp.path());
        let u = login(&st, "dave").await;
        for i in 0..3 {
            append(&*u, "INBOX", &format!("m{i}")).await;
        }
    }
    let before = {
        let st = storage(tmp.path());
        let u = login(&st, "dave").await;
        ok(u.status("INBOX").await)
    };
    // A torn record at the end of the log is cut off; nothing else changes.
    let log = root.join("mailcove-index.log");
    let mut text = std::fs::read(&log).unwrap_or_default();
    text.extend_from_slice(b"A 99 1 1 1 1 0 c torn");
    assert!(std::fs::write(&log, &text).is_ok());
    {
        let st = storage(tmp.path());
        let u = login(&st, "dave").await;
        assert_eq!(ok(u.status("INBOX").await), before);
        append(&*u, "INBOX", "after repair").await;
        let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
        let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 2, 3, 4]);
    }
    // A corrupt base is rebuilt from the files, with a new UIDVALIDITY
    // (the old UIDs cannot be trusted), and every message is still there.
    let base = root.join("mailcove-index");
    let mut data = std::fs::read(&base).unwrap_or_default();
    if let Some(b) = data.get_mut(40) {
        *b ^= 0x55;
    }
    assert!(std::fs::write(&base, &data).is_ok());
    let st = storage(tmp.path());
    let u = login(&st, "dave").await;
    let s = ok(u.status("INBOX").await);
    assert_eq!(s.messages, 4);
    assert_ne!(s.uidvalidity, before.uidvalidity);
}

#[tokio::test]
async fn mailbox_replaced_by_another_process_changes_uidvalidity() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "erin").await;
    ok(u.create("Q", None).await);
    append(&*u, "Q", "old").await;
    let mut v = ok(u.open("Q", OpenOptions::SELECT).await);
    let other = storage(tmp.path());
    let o = login(&other, "erin").await;
    ok(o.delete("Q").await);
    assert!(matches!(v.refresh().await, Err(StorageError::NonExistent)));
    ok(o.create("Q", None).await);
    append(&*o, "Q", "new").await;
    let d = ok(v.refresh().await);
    assert!(d.uidvalidity_changed, "{d:?}");
}

/// The name of the message file in `dir` whose Subject is `subject`.
fn file_with_subject(dir: &std::path::Path, subject: &str) -> String {
    let want = format!("Subject: {subject}\r\n");
    list_names(dir)
        .into_iter()
        .find(|n| std::fs::read_to_string(dir.join(n)).is_ok_and(|t| t.contains(&want)))
        .unwrap_or_else(|| panic!("no message with Subject {subject} in {}", dir.display()))
}

#[tokio::test]
async fn names_that_are_not_messages_are_left_out_of_listings() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root(tmp.path(), "olga");
    {
        let st = storage(tmp.path());
        let _ = login(&st, "olga").await;
    }
    let cur = root.join("cur");
    let odd: [&[u8]; 4] = [
        b".hidden:2,S",
        b"1700000001.M1P1.bad\x07bell:2,",
        b"1700000002.M2P1.bad\xffutf8:2,",
        "1700000003.M3P1.c1\u{85}ctl:2,".as_bytes(),
    ];
    for name in odd {
        let p = cur.join(std::ffi::OsStr::from_bytes(name));
        assert!(std::fs::write(&p, "Subject: odd\n\nx\n").is_ok());
    }
    drop_file(
        &cur,
        "1700000004.M4P1.good:2,S",
        "Subject: a\n\nx\n",
        1_700_000_004,
    );
    drop_file(
        &cur,
        "1700000005.M5P1.gööd,S=14,W=17:2,",
        "Subject: b\n\nx\n",
        1_700_000_005,
    );
    // First look (no index of ours yet), then a rescan of a changed cur/.
    for mb_files in [2u32, 3] {
        let _ = std::fs::remove_file(root.join("mailcove-index"));
        let _ = std::fs::remove_file(root.join("mailcove-index.log"));
        let st = storage(tmp.path());
        let u = login(&st, "olga").await;
        let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
        assert_eq!(v.len(), mb_files, "only the two (then three) messages");
        drop_file(
            &cur,
            "1700000006.M6P1.late:2,",
            "Subject: c\n\nx\n",
            1_700_000_006,
        );
        let mut v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
        ok(v.refresh().await);
        assert_eq!(v.len(), 3, "a rescan lists the same way");
    }
}
