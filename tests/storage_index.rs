//! The index under load: log compaction while another instance follows,
//! and removal of stale `tmp/` leftovers.

#[path = "storage_common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use mailcove::storage::maildir::MaildirStorage;
use mailcove::storage::{OpenOptions, StoreOp, StoreRequest, SystemFlags};

#[tokio::test]
async fn compaction_is_followed_by_other_instances() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false; // thousands of operations; durability is the crash test's job
    let a = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
    let b = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let ua = login(&a, "alice").await;
    let ub = login(&b, "alice").await;
    for i in 0..50 {
        append(&*ua, "INBOX", &format!("m{i}")).await;
    }
    let mut va = ok(ua.open("INBOX", OpenOptions::SELECT).await);
    let mut vb = ok(ub.open("INBOX", OpenOptions::EXAMINE).await);
    let log = root(tmp.path(), "alice").join("mailcove-index.log");
    let mut compactions = 0;
    let mut last_len = 0;
    for round in 0..60u32 {
        let uids: Vec<u32> = (1..=50).collect();
        let req = StoreRequest {
            op: if round % 2 == 0 {
                StoreOp::Add
            } else {
                StoreOp::Remove
            },
            flags: SystemFlags::SEEN,
            keywords: vec![format!("k{}", round % 3)],
            unchanged_since: None,
        };
        ok(va.store(&uids, req).await);
        let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if len < last_len {
            compactions += 1;
        }
        last_len = len;
        // The follower sees exactly what the writer has.
        ok(vb.refresh().await);
        let fa: Vec<_> = va
            .messages()
            .iter()
            .map(|m| (m.uid, m.flags.clone(), m.modseq))
            .collect();
        let fb: Vec<_> = vb
            .messages()
            .iter()
            .map(|m| (m.uid, m.flags.clone(), m.modseq))
            .collect();
        assert_eq!(fa.len(), 50);
        let kb: Vec<String> = vb.keywords().to_vec();
        assert_eq!(kb, va.keywords().to_vec());
        assert_eq!(
            fa.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
            fb.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>()
        );
        assert_eq!(fa, fb, "round {round}");
    }
    assert!(compactions >= 2, "the log was never compacted");
    assert_eq!(ok(va.refresh().await).flag_changes.len(), 0);
    // A fresh instance reads the compacted base plus log.
    let c = MaildirStorage::new(options(tmp.path())).unwrap_or_else(|e| panic!("{e}"));
    let uc = login(&c, "alice").await;
    let vc = ok(uc.open("INBOX", OpenOptions::EXAMINE).await);
    let fa: Vec<_> = va
        .messages()
        .iter()
        .map(|m| (m.uid, m.flags.clone(), m.modseq))
        .collect();
    let fc: Vec<_> = vc
        .messages()
        .iter()
        .map(|m| (m.uid, m.flags.clone(), m.modseq))
        .collect();
    assert_eq!(fa, fc);
    assert_eq!(vc.highest_modseq(), va.highest_modseq());
}

#[tokio::test]
async fn tmp_files_of_live_writers_survive_another_process_starting() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "bob").await;
    let tmpdir = root(tmp.path(), "bob").join("tmp");
    // A writer's file with an old mtime (appends set mtime to INTERNALDATE,
    // copies hard-link old files): its ctime is fresh, so it must stay.
    let live = tmpdir.join("2.M2P2.writing");
    assert!(std::fs::write(&live, b"being written").is_ok());
    let past = std::time::SystemTime::now() - Duration::from_secs(37 * 3600);
    let f = std::fs::OpenOptions::new().write(true).open(&live);
    assert!(f.and_then(|f| f.set_modified(past)).is_ok());
    let v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert!(v.is_empty(), "tmp/ files are never messages");
    assert!(live.exists(), "a file being written was removed");
}

#[tokio::test]
async fn crash_between_compaction_renames_is_harmless() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false;
    let root = root(tmp.path(), "carl");
    let log = root.join("mailcove-index.log");
    let (stale_log, want) = {
        let st = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
        let u = login(&st, "carl").await;
        for i in 0..20 {
            append(&*u, "INBOX", &format!("m{i}")).await;
        }
        let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
        // Keep the log as it was before the next compaction...
        let mut stale = std::fs::read(&log).unwrap_or_default();
        let mut compacted = false;
        for round in 0..1200u32 {
            let req = StoreRequest {
                op: if (round / 20) % 2 == 0 {
                    StoreOp::Add
                } else {
                    StoreOp::Remove
                },
                flags: SystemFlags::FLAGGED,
                keywords: vec![],
                unchanged_since: None,
            };
            ok(v.store(&[1 + round % 20], req).await);
            let now = std::fs::read(&log).unwrap_or_default();
            if now.len() < stale.len() {
                compacted = true;
                break;
            }
            stale = now;
        }
        assert!(compacted, "no compaction happened");
        let want: Vec<_> = v
            .messages()
            .iter()
            .map(|m| (m.uid, m.flags.clone(), m.modseq))
            .collect();
        (stale, want)
    };
    // ...and put it back, as if the process died after renaming the new
    // base into place but before replacing the log.
    assert!(std::fs::write(&log, &stale_log).is_ok());
    let st = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "carl").await;
    let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let got: Vec<_> = v
        .messages()
        .iter()
        .map(|m| (m.uid, m.flags.clone(), m.modseq))
        .collect();
    assert_eq!(got, want, "a stale log was replayed over the new base");
    append(&*u, "INBOX", "after").await;
    assert_eq!(ok(u.status("INBOX").await).messages, 21);
}

#[tokio::test]
async fn maildir_without_new_and_tmp_still_works() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "dora").await;
    let folder = root(tmp.path(), "dora").join(".Imported");
    assert!(std::fs::create_dir_all(folder.join("cur")).is_ok());
    assert!(
        std::fs::write(
            folder.join("cur").join("1.imported:2,S"),
            "Subject: x\n\nx\n"
        )
        .is_ok()
    );
    let s = ok(u.status("Imported").await);
    assert_eq!(s.messages, 1);
    append(&*u, "Imported", "fresh").await;
    assert_eq!(ok(u.status("Imported").await).messages, 2);
}

#[tokio::test]
async fn maildirsize_stays_small_and_right() {
    use mailcove::storage::{AppendMessage, Storage};
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false;
    let st = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = st
        .user(&user("quinn"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = root(tmp.path(), "quinn").join("maildirsize");
    // No limit, so nothing reads the file while mail arrives: only its
    // writers can keep it small.
    assert_eq!(ok(u.quota().await).messages_used, 0);
    assert!(path.exists());
    let mut bytes = 0u64;
    for i in 0..1200u32 {
        let data = bytes::Bytes::from(format!("Subject: {i}\n\n{i}\n"));
        bytes += data.len() as u64;
        let msg = AppendMessage {
            data,
            ..AppendMessage::default()
        };
        ok(u.append("INBOX", msg).await);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 5120 + 64, "maildirsize grew to {len} bytes");
    }
    let q = ok(u.quota().await);
    assert_eq!((q.messages_used, q.bytes_used), (1200, bytes));
}

#[tokio::test]
async fn damage_inside_the_log_means_a_new_uidvalidity() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "eve").await;
    for i in 0..5 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let before = ok(u.status("INBOX").await);
    drop(u);
    drop(st);
    // Flip a byte in the first record (not the last): later records are
    // intact, so this is damage, not a torn write.
    let log = root(tmp.path(), "eve").join("mailcove-index.log");
    let mut data = std::fs::read(&log).unwrap_or_default();
    let first_record = data.iter().position(|b| *b == b'\n').unwrap_or(0) + 5;
    if let Some(b) = data.get_mut(first_record) {
        *b ^= 1;
    }
    assert!(std::fs::write(&log, &data).is_ok());
    let st = storage(tmp.path());
    let u = login(&st, "eve").await;
    let after = ok(u.status("INBOX").await);
    assert_eq!(after.messages, 5, "every message is still there");
    assert_ne!(after.uidvalidity, before.uidvalidity);
    assert_eq!(append(&*u, "INBOX", "next").await, 6);
}

#[tokio::test]
async fn first_look_at_a_big_maildir_writes_one_index_that_survives_a_lost_log_header() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root(tmp.path(), "ivy");
    {
        let st = storage(tmp.path());
        let _ = login(&st, "ivy").await;
    }
    // More files than one stat thread takes, dropped in by another tool:
    // dates (mtimes) in reverse name order, some names without sizes.
    let n = 2600u32;
    let body = "Subject: x\n\nhello\n";
    // (order time, name, mtime) of each file: files with both sizes in
    // their names are not stat-ed at the first look and are ordered by the
    // delivery time their names start with; the others by mtime.
    let mut order: Vec<(i64, String, i64)> = Vec::new();
    let mut sized = 0usize;
    for i in 0..n {
        let (dir, name) = if i % 7 == 0 {
            ("new", format!("{}.M{i}P1.tool", 1_600_000_000 + i))
        } else if i % 5 == 0 {
            ("cur", format!("{}.M{i}P1.tool:2,S", 1_600_000_000 + i))
        } else {
            let (s, w) = (body.len(), body.len() + 3);
            (
                "cur",
                format!("{}.M{i}P1.tool,S={s},W={w}:2,", 1_600_000_000 + i),
            )
        };
        let mtime = 2_000_000_000 - i64::from(i);
        if name.contains(",W=") {
            sized += 1;
            order.push((1_600_000_000 + i64::from(i), name.clone(), mtime));
        } else {
            order.push((mtime, name.clone(), mtime));
        }
        let path = root.join(dir).join(name);
        assert!(std::fs::write(&path, body).is_ok());
        let date = std::time::UNIX_EPOCH + Duration::from_secs(u64::from(2_000_000_000 - i));
        let f = std::fs::File::options().write(true).open(&path);
        assert!(f.and_then(|f| f.set_modified(date)).is_ok());
    }
    let (uidvalidity, first) = {
        let st = storage(tmp.path());
        let u = login(&st, "ivy").await;
        let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
        assert_eq!(v.len(), n);
        assert_eq!(v.recent_count(), n, "nobody had seen them");
        let unknown = (v.messages().iter())
            .filter(|m| !m.internal_date.is_read())
            .count();
        assert_eq!(
            unknown, sized,
            "only files without sizes in the name were stat-ed"
        );
        let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        let dates = ok(v.internal_dates(&uids).await);
        let metas: Vec<_> = v.messages().iter().cloned().collect();
        // UIDs follow the order times; each date is the file's mtime.
        order.sort();
        for (k, m) in metas.iter().enumerate() {
            assert_eq!(m.uid, k as u32 + 1);
            assert_eq!(dates.get(m.uid), order.get(k).map(|o| o.2));
            assert_eq!(m.phys_size, body.len() as u64);
            assert_eq!(m.virt_size, body.len() as u64 + 3);
        }
        (v.uidvalidity(), metas)
    };
    // The log's header line is written without an fsync (its first record
    // is synced with it); a crash may lose it. The base has everything,
    // \Recent claims included.
    let log = root.join("mailcove-index.log");
    assert!(std::fs::write(&log, b"").is_ok());
    let st = storage(tmp.path());
    let u = login(&st, "ivy").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(v.uidvalidity(), uidvalidity);
    assert_eq!(v.recent_count(), 0, "the first SELECT's claim was kept");
    let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    ok(v.internal_dates(&uids).await);
    let again: Vec<_> = v.messages().iter().cloned().collect();
    assert_eq!(again, first);
    assert_eq!(append(&*u, "INBOX", "after").await, n + 1);
    drop((v, u, st));
    let st = storage(tmp.path());
    let u = login(&st, "ivy").await;
    let s = ok(u.status("INBOX").await);
    assert_eq!(
        (s.messages, s.uidnext, s.uidvalidity),
        (n + 1, n + 2, uidvalidity)
    );
}

/// Drops `n` delivered-looking files into `root/cur` (sizes in the names).
fn drop_files(root: &std::path::Path, n: u32) {
    let body = "Subject: x\n\nhello\n";
    for i in 0..n {
        let (s, w) = (body.len(), body.len() + 3);
        let name = format!("{}.M{i}P7.tool,S={s},W={w}:2,S", 1_700_000_000 + i);
        assert!(std::fs::write(root.join("cur").join(name), body).is_ok());
    }
}

/// (UIDVALIDITY, UIDs) of INBOX as a fresh process (new storage) sees it.
async fn fresh_look(base: &std::path::Path, who: &str) -> (u32, Vec<u32>) {
    let st = storage(base);
    let u = login(&st, who).await;
    let v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    (
        v.uidvalidity(),
        v.messages().iter().map(|m| m.uid).collect(),
    )
}

#[tokio::test]
async fn first_index_lost_in_a_crash_is_rebuilt_under_a_newer_uidvalidity() {
    // A mailbox's first index is written without an fsync (its UIDVALIDITY
    // is brand new). A power loss may then leave it torn, empty or missing:
    // each must be noticed and rebuilt under a newer UIDVALIDITY, so no
    // client keeps UIDs that could now name other messages.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root(tmp.path(), "una");
    {
        let st = storage(tmp.path());
        let _ = login(&st, "una").await;
    }
    let n = 300u32;
    drop_files(&root, n);
    let base = root.join("mailcove-index");
    let log = root.join("mailcove-index.log");
    let all: Vec<u32> = (1..=n).collect();
    let mut last = 0u32;
    for damage in ["torn", "empty", "missing", "missing with its log"] {
        // Start each round from a mailbox mailcove has never indexed.
        let _ = std::fs::remove_file(&base);
        let _ = std::fs::remove_file(&log);
        let (v1, uids) = fresh_look(tmp.path(), "una").await;
        assert!(v1 > last, "{damage}: UIDVALIDITY {v1} not above {last}");
        assert_eq!(uids, all);
        let text = std::fs::read(&base).unwrap_or_default();
        let first_line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        assert!(
            String::from_utf8_lossy(first_line).ends_with(" S1"),
            "the first index says it was not synced"
        );
        match damage {
            "torn" => {
                let f = std::fs::OpenOptions::new().write(true).open(&base);
                assert!(f.and_then(|f| f.set_len(text.len() as u64 / 2)).is_ok());
            }
            "empty" => assert!(std::fs::write(&base, b"").is_ok()),
            "missing" => assert!(std::fs::remove_file(&base).is_ok()),
            _ => {
                assert!(std::fs::remove_file(&base).is_ok());
                assert!(std::fs::remove_file(&log).is_ok());
            }
        }
        let (v2, uids) = fresh_look(tmp.path(), "una").await;
        assert!(v2 > v1, "{damage}: rebuilt under {v2}, not above {v1}");
        assert_eq!(uids, all, "{damage}: every message is still there");
        last = v2;
    }
    // Once a change is logged the index was made durable first; after a
    // (clean) restart the UIDVALIDITY and the change are kept.
    let _ = std::fs::remove_file(&base);
    let _ = std::fs::remove_file(&log);
    let (v1, _) = fresh_look(tmp.path(), "una").await;
    {
        let st = storage(tmp.path());
        let u = login(&st, "una").await;
        assert_eq!(append(&*u, "INBOX", "later").await, n + 1);
    }
    let (v2, uids) = fresh_look(tmp.path(), "una").await;
    assert_eq!(v2, v1);
    assert_eq!(uids.len() as u32, n + 1);
}
