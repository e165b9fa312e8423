//! Message operations through the public storage API: append, views and
//! deltas, \Recent, store (keywords, CONDSTORE), expunge, copy, move,
//! reading, status, cache, quota and POP3 helpers.

#[path = "storage_common/mod.rs"]
mod common;

use bytes::Bytes;
use common::*;
use mailcove::limits::MAX_KEYWORDS_PER_MAILBOX;
use mailcove::storage::{
    AppendMessage, CacheField, OpenOptions, ReadPart, StorageError, StoreOp, StoreRequest,
    SystemFlags,
};

fn store(op: StoreOp, flags: SystemFlags, keywords: &[&str]) -> StoreRequest {
    StoreRequest {
        op,
        flags,
        keywords: keywords.iter().map(|s| (*s).to_owned()).collect(),
        unchanged_since: None,
    }
}

#[tokio::test]
async fn append_read_and_sizes() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "alice").await;
    let data = b"Subject: lf\n\nline one\nline two\r\n".to_vec();
    let r = ok(u
        .append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(data.clone()),
                flags: SystemFlags::SEEN.union(SystemFlags::FLAGGED),
                keywords: vec!["$Forwarded".into(), "Work".into()],
                internal_date: Some(1_600_000_000),
            },
        )
        .await);
    assert_eq!(r.uid, 1);
    let mut view = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(view.uidvalidity(), r.uidvalidity);
    assert_eq!(view.len(), 1);
    assert_eq!(view.uidnext(), 2);
    let m = view.get(1).cloned().unwrap_or_else(|| panic!("no message"));
    assert_eq!(m.uid, 1);
    assert_eq!(m.phys_size, data.len() as u64);
    assert_eq!(
        m.virt_size,
        data.len() as u64 + 3,
        "three bare LFs count as CRLF"
    );
    assert_eq!(
        ok(view.internal_dates(&[1]).await).get(1),
        Some(1_600_000_000)
    );
    assert!(
        m.flags.system.contains(SystemFlags::SEEN) && m.flags.system.contains(SystemFlags::FLAGGED)
    );
    assert_eq!(
        view.keyword_names(&m.flags.keywords),
        vec!["$Forwarded", "Work"]
    );
    assert_eq!(read_all(&view, 1).await, data);

    let f = ok(view.open_message(1, 0).await);
    assert_eq!(ok(f.header().await), b"Subject: lf\n\n".to_vec());
    assert_eq!(ok(f.read(13, 8).await), b"line one".to_vec());
    // Read along with the open: the same bytes.
    let f = ok(view.open_message(1, 16).await);
    assert_eq!(f.head.bytes, data[..16].to_vec());
    assert_eq!(ok(f.read(13, 8).await), b"line one".to_vec());
    // Many at once, headers or capped, and an expunged UID answered None.
    let got = ok(view.read_messages(vec![1, 99], ReadPart::Header).await);
    assert_eq!(
        got,
        vec![Some(Bytes::from_static(b"Subject: lf\n\n")), None]
    );
    let got = ok(view
        .read_messages(vec![1], ReadPart::Whole { cap: 21 })
        .await);
    assert_eq!(got, vec![Some(Bytes::copy_from_slice(&data[..21]))]);

    // On disk: Dovecot-compatible name and keyword file.
    let cur = root(tmp.path(), "alice").join("cur");
    let names = list_names(&cur);
    assert_eq!(names.len(), 1);
    let name = names.first().cloned().unwrap_or_default();
    assert!(
        name.ends_with(&format!(",S={},W={}:2,FSab", data.len(), data.len() + 3)),
        "{name}"
    );
    let kw = std::fs::read_to_string(root(tmp.path(), "alice").join("dovecot-keywords"))
        .unwrap_or_default();
    assert_eq!(kw, "0 $Forwarded\n1 Work\n");
    assert!(matches!(
        u.append("Nope", msg("x")).await,
        Err(StorageError::NonExistent)
    ));
}

#[tokio::test]
async fn recent_belongs_to_one_session_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "bob").await;
    append(&*u, "INBOX", "one").await;
    assert_eq!(ok(u.status("INBOX").await).recent, 1);
    let examine = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(
        examine.recent_count(),
        1,
        "EXAMINE sees \\Recent but does not take it"
    );
    let mut a = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(a.recent_count(), 1);
    assert!(a.is_recent(1));
    let mut b = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(b.recent_count(), 0);
    append(&*u, "INBOX", "two").await;
    let d = ok(b.refresh().await);
    assert_eq!(d.exists, Some(2));
    assert_eq!(d.recent, Some(1));
    let d = ok(a.refresh().await);
    assert_eq!(d.exists, Some(2));
    assert_eq!(a.recent_count(), 1, "the second message went to b");
    assert_eq!(ok(u.status("INBOX").await).recent, 0);
    drop((a, b, examine));
    drop(u);
    drop(st);
    let st = storage(tmp.path());
    let u = login(&st, "bob").await;
    let c = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(
        c.recent_count(),
        0,
        "old mail is not recent again after a restart"
    );
}

#[tokio::test]
async fn store_keywords_and_condstore() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "carol").await;
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let hms0 = v.highest_modseq();
    let out = ok(v
        .store(&[1, 2], store(StoreOp::Add, SystemFlags::SEEN, &["Todo"]))
        .await);
    assert!(out.keywords_changed);
    assert_eq!(out.updated.len(), 2);
    let (seq, upd) = out.updated[0].clone();
    assert_eq!(seq, 1);
    assert!(upd.modseq > hms0);
    assert!(
        v.get(1)
            .is_some_and(|m| m.flags.system.contains(SystemFlags::SEEN))
    );
    assert_eq!(v.keywords().to_vec(), vec!["Todo".to_owned()]);
    assert!(v.can_create_keywords());
    assert!(v.highest_modseq() >= upd.modseq);

    // Case-insensitive keyword match, remove, replace.
    let out = ok(v
        .store(&[1], store(StoreOp::Remove, SystemFlags::EMPTY, &["todo"]))
        .await);
    assert!(out.updated.iter().all(|(_, u)| u.flags.keywords.is_empty()));
    let out = ok(v
        .store(
            &[3],
            store(
                StoreOp::Replace,
                SystemFlags::DELETED.union(SystemFlags::ANSWERED),
                &[],
            ),
        )
        .await);
    assert_eq!(
        out.updated[0].1.flags.system,
        SystemFlags::DELETED.union(SystemFlags::ANSWERED)
    );

    // UNCHANGEDSINCE: message 2 changed after modseq hms0.
    let mut req = store(StoreOp::Add, SystemFlags::FLAGGED, &[]);
    req.unchanged_since = Some(hms0);
    let out = ok(v.store(&[1, 2], req).await);
    assert_eq!(out.failed, vec![1, 2]);
    let mut req = store(StoreOp::Add, SystemFlags::FLAGGED, &[]);
    req.unchanged_since = Some(v.highest_modseq());
    let out = ok(v.store(&[2, 99], req).await);
    assert!(out.failed.is_empty());
    assert_eq!(out.updated.len(), 1, "unknown UIDs are skipped");

    // Own changes are not reported again by refresh.
    let d = ok(v.refresh().await);
    assert!(d.flag_changes.is_empty(), "{d:?}");

    // MAX_KEYWORDS_PER_MAILBOX at most; a STORE that would pass it creates none.
    let too_many: Vec<String> = (0..MAX_KEYWORDS_PER_MAILBOX)
        .map(|i| format!("k{i}"))
        .collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let r = v
        .store(&[1], store(StoreOp::Add, SystemFlags::EMPTY, &refs))
        .await;
    assert!(matches!(r, Err(StorageError::Invalid(_))));
    assert_eq!(v.keywords().len(), 1, "a refused STORE creates no keyword");
    assert!(v.can_create_keywords());
    // Beyond the 26 file-name letters, keywords live in the index: 30 more are fine.
    let refs: Vec<&str> = refs.iter().take(30).copied().collect();
    let out = ok(v
        .store(&[1], store(StoreOp::Add, SystemFlags::EMPTY, &refs))
        .await);
    assert_eq!(
        out.updated.first().map(|(_, u)| u.flags.keywords.len()),
        Some(30)
    );
    assert_eq!(v.keywords().len(), 31);
    assert!(v.can_create_keywords());
    let r = v
        .store(&[1], store(StoreOp::Add, SystemFlags::EMPTY, &["bad word"]))
        .await;
    assert!(matches!(r, Err(StorageError::Invalid(_))));

    let mut ro = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert!(matches!(
        ro.store(&[1], store(StoreOp::Add, SystemFlags::SEEN, &[]))
            .await,
        Err(StorageError::ReadOnly)
    ));
    assert!(matches!(
        ro.expunge(None).await,
        Err(StorageError::ReadOnly)
    ));
}

#[tokio::test]
async fn deltas_between_sessions_and_expunged_reads() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "dave").await;
    for i in 0..5 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut a = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let mut b = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(
        b.store(&[2, 4], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(b.store(&[5], store(StoreOp::Add, SystemFlags::SEEN, &[]))
        .await);
    // a's picture does not move until it refreshes.
    assert!(
        a.get(2)
            .is_some_and(|m| !m.flags.system.contains(SystemFlags::DELETED))
    );
    let d = ok(b.expunge(None).await);
    assert_eq!(d.expunged, vec![4, 2], "descending sequence numbers");
    assert_eq!(d.expunged_uids, vec![2, 4]);
    assert_eq!(b.len(), 3);
    assert_eq!(a.len(), 5);
    assert!(matches!(
        a.open_message(2, 0).await,
        Err(StorageError::Expunged)
    ));
    assert_eq!(
        read_all(&a, 3).await.len() as u64,
        a.get(3).map(|m| m.phys_size).unwrap_or(0)
    );
    let d = ok(a.refresh().await);
    assert_eq!(d.expunged, vec![4, 2]);
    assert_eq!(d.flag_changes, vec![3], "uid 5 is now sequence 3");
    assert_eq!(d.exists, None);
    assert_eq!(a.len(), 3);
    assert_eq!(a.seq_of(5), Some(3));
    // UID EXPUNGE only touches \Deleted messages of the set.
    ok(
        a.store(&[1, 3], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    let d = ok(a.expunge(Some(&[3, 5])).await);
    assert_eq!(d.expunged_uids, vec![3]);
    assert_eq!(a.len(), 2);
    let s = ok(u.status("INBOX").await);
    assert_eq!((s.messages, s.uidnext), (2, 6));
}

#[tokio::test]
async fn copy_and_move_keep_flags_dates_and_bytes() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "erin").await;
    ok(u.create("Archive", None).await);
    ok(u.create("Trash", None).await);
    for i in 0..4 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(v.store(
        &[2],
        store(StoreOp::Add, SystemFlags::FLAGGED, &["Important"]),
    )
    .await);
    let original = read_all(&v, 2).await;
    let c = ok(v.copy(&[2, 3, 77], "Archive").await);
    assert_eq!(c.mapping, vec![(2, 1), (3, 2)]);
    assert_eq!(c.uidvalidity, ok(u.status("Archive").await).uidvalidity);
    let mut arch = ok(u.open("Archive", OpenOptions::EXAMINE).await);
    let m = arch
        .get(1)
        .cloned()
        .unwrap_or_else(|| panic!("copy missing"));
    assert!(m.flags.system.contains(SystemFlags::FLAGGED));
    assert_eq!(arch.keyword_names(&m.flags.keywords), vec!["Important"]);
    assert_eq!(
        ok(arch.internal_dates(&[m.uid]).await).get(m.uid),
        Some(1_700_000_000)
    );
    assert_eq!(read_all(&arch, 1).await, original);
    assert!(matches!(
        v.copy(&[1], "Nope").await,
        Err(StorageError::NonExistent)
    ));

    let (res, delta) = ok(v.move_to(&[1, 4], "Trash").await);
    assert_eq!(res.mapping, vec![(1, 1), (4, 2)]);
    assert_eq!(delta.expunged, vec![4, 1]);
    assert_eq!(v.len(), 2);
    assert_eq!(ok(u.status("Trash").await).messages, 2);
    assert_eq!(ok(u.status("INBOX").await).messages, 2);
}

#[tokio::test]
async fn status_counts() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "frank").await;
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::POP3).await);
    ok(v.store(&[1], store(StoreOp::Add, SystemFlags::SEEN, &[]))
        .await);
    let s = ok(u.status("INBOX").await);
    assert_eq!(s.messages, 3);
    assert_eq!(s.unseen, 2);
    assert_eq!(s.recent, 3, "a POP3 view does not take \\Recent");
    assert_eq!(s.uidnext, 4);
    let total: u64 = v.messages().iter().map(|m| m.virt_size).sum();
    assert_eq!(s.size, total);
    assert!(s.highest_modseq >= 4);
    assert_eq!(v.first_unseen(), Some(2));
}

#[tokio::test]
async fn cache_round_trip_and_invalidation() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "gina").await;
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(v.cache_put(
        CacheField::BODYSTRUCTURE,
        vec![
            (1, Bytes::from_static(b"(\"text\" \"plain\")")),
            (2, Bytes::from_static(b"bs2")),
        ],
    )
    .await);
    let got = ok(v.cache_get(&[1, 2, 3], CacheField::BODYSTRUCTURE).await);
    assert_eq!(got[0].as_deref(), Some(&b"(\"text\" \"plain\")"[..]));
    assert_eq!(got[2], None);
    assert_eq!(ok(v.cache_get(&[1], CacheField::ENVELOPE).await)[0], None);
    ok(
        v.store(&[2], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    drop(v);
    drop(u);
    drop(st);
    // Persisted across a restart; the expunged message's entry is gone.
    let st = storage(tmp.path());
    let u = login(&st, "gina").await;
    let v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let got = ok(v.cache_get(&[1, 2], CacheField::BODYSTRUCTURE).await);
    assert_eq!(got[0].as_deref(), Some(&b"(\"text\" \"plain\")"[..]));
    assert_eq!(got[1], None);
}

#[tokio::test]
async fn quota_refusals() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let mut who = user("hank");
    who.quota_messages = Some(3);
    use mailcove::storage::Storage;
    let u = st.user(&who).await.unwrap_or_else(|e| panic!("{e}"));
    ok(u.create("Other", None).await);
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    assert!(matches!(
        u.append("INBOX", msg("over")).await,
        Err(StorageError::OverQuota)
    ));
    let q = ok(u.quota().await);
    assert_eq!((q.messages_used, q.messages_limit), (3, Some(3)));
    assert!(q.bytes_used > 0 && q.bytes_limit.is_none());
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert!(matches!(
        v.copy(&[1], "Other").await,
        Err(StorageError::OverQuota)
    ));
    // A move does not grow usage, so it is allowed.
    ok(v.move_to(&[1], "Other").await);
    ok(
        v.store(&[2], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    assert_eq!(ok(u.quota().await).messages_used, 2);
    append(&*u, "INBOX", "fits again").await;

    // Byte limit, from the per-user override.
    let mut small = user("ivy");
    small.quota_bytes = Some(100);
    let u = st.user(&small).await.unwrap_or_else(|e| panic!("{e}"));
    append(&*u, "INBOX", "short").await;
    let big = AppendMessage {
        data: Bytes::from(vec![b'x'; 200]),
        ..AppendMessage::default()
    };
    assert!(matches!(
        u.append("INBOX", big).await,
        Err(StorageError::OverQuota)
    ));
    // maildirsize stays a Maildir++ file.
    let text =
        std::fs::read_to_string(root(tmp.path(), "ivy").join("maildirsize")).unwrap_or_default();
    assert!(text.starts_with("100S,0C\n"), "{text}");
}

#[tokio::test]
async fn pop3_lock_and_keep_days() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "jack").await;
    let guard = ok(u.pop3_lock().await);
    assert!(matches!(u.pop3_lock().await, Err(StorageError::InUse)));
    // Another "process" (a separate storage instance) is refused too.
    let st2 = storage(tmp.path());
    let u2 = login(&st2, "jack").await;
    assert!(matches!(u2.pop3_lock().await, Err(StorageError::InUse)));
    drop(guard);
    let _g = ok(u2.pop3_lock().await);

    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let v = ok(u.open("INBOX", OpenOptions::POP3).await);
    ok(v.pop3_mark_downloaded(&[1, 2]).await);
    assert!(ok(u.pop3_expire(1).await).is_empty(), "downloaded just now");
    assert_eq!(ok(u.pop3_expire(0).await), vec![1, 2]);
    assert_eq!(ok(u.status("INBOX").await).messages, 1);
}

#[tokio::test]
async fn mail_is_private_to_the_mail_user() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "kate").await;
    ok(u.create("Private", None).await);
    append(&*u, "Private", "secret").await;
    let dir = root(tmp.path(), "kate").join(".Private");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode(&dir.join("cur")), 0o700);
    let name = list_names(&dir.join("cur")).pop().unwrap_or_default();
    assert_eq!(mode(&dir.join("cur").join(name)), 0o600);
    assert_eq!(mode(&dir.join("mailcove-index")), 0o600);
}

#[tokio::test]
async fn streamed_append() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let mut who = user("liz");
    who.quota_bytes = Some(10_000);
    use mailcove::storage::Storage;
    let u = st.user(&who).await.unwrap_or_else(|e| panic!("{e}"));
    let chunks: [&[u8]; 4] = [b"Subject: s\r", b"\n\r\nline\n", b"more\r", b"\n"];
    let mut w = ok(u.append_stream("INBOX").await);
    for c in chunks {
        ok(w.write(c).await);
    }
    assert_eq!(w.len(), 25);
    let r = ok(w
        .commit(
            SystemFlags::SEEN,
            vec!["Streamed".into()],
            Some(1_650_000_000),
        )
        .await);
    let mut v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let m = v.get(1).cloned().unwrap_or_else(|| panic!("not stored"));
    assert_eq!(m.uid, r.uid);
    assert_eq!(
        (m.phys_size, m.virt_size),
        (25, 26),
        "one bare LF, CR LF split across writes"
    );
    assert_eq!(
        ok(v.internal_dates(&[m.uid]).await).get(m.uid),
        Some(1_650_000_000)
    );
    assert_eq!(v.keyword_names(&m.flags.keywords), vec!["Streamed"]);
    assert_eq!(read_all(&v, r.uid).await, chunks.concat());

    // Dropped before commit: nothing stored, nothing left in tmp/.
    let mut w = ok(u.append_stream("INBOX").await);
    ok(w.write(b"abandoned").await);
    drop(w);
    let tmpdir = root(tmp.path(), "liz").join("tmp");
    assert!(list_names(&tmpdir).is_empty());
    // Over the byte quota while streaming.
    let mut w = ok(u.append_stream("INBOX").await);
    let big = vec![b'x'; 4096];
    let mut failed = false;
    for _ in 0..5 {
        if let Err(e) = w.write(&big).await {
            assert!(matches!(e, StorageError::OverQuota));
            failed = true;
            break;
        }
    }
    assert!(failed, "quota not enforced while streaming");
    drop(w);
    assert_eq!(ok(u.status("INBOX").await).messages, 1);
    assert!(list_names(&tmpdir).is_empty());
    assert!(matches!(
        u.append_stream("Nope").await.map(|_| ()),
        Err(StorageError::NonExistent)
    ));
}
