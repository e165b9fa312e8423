//! One storage conformance suite, run against every backend through the public storage API.
//!
//! Each case is a plain `async fn case(b: &Backend)`; [`backend_suite!`] instantiates every case
//! for one backend, so a new backend adds one line at the bottom (and a constructor on
//! [`Backend`]). The cases state what the protocol layers rely on: UID and UIDVALIDITY rules,
//! flags and keywords, COPY/MOVE/EXPUNGE, what concurrent sessions are told, APPEND from 0 bytes
//! to 50 MB, quota accounting, and errors that leave nothing half-done.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mailcove::limits::{MAX_METADATA_ENTRIES, MAX_METADATA_USER_BYTES, MAX_METADATA_VALUE_BYTES};
use mailcove::storage::maildir::{MaildirOptions, MaildirStorage};
use mailcove::storage::memory::{MemoryOptions, MemoryStorage};
use mailcove::storage::{
    AppendMessage, CacheField, Change, ChangeKind, DeliveryId, FeedError, OpenOptions,
    PendingAppend, ReadPart, Result, Storage, StorageError, StorageUser, StoreOp, StoreRequest,
    SystemFlags, UserStore, Vanished, View,
};
use mailcove::storage::{
    IMPORT_OTHER_UIDVALIDITY, IMPORT_UID_BELOW_UIDNEXT, ImportMessage, SpecialUse,
};
use mailcove::storage::{MetadataChange, MetadataLimit, MetadataMap};

#[path = "common/postgres.rs"]
mod pg_server;

/// A backend under test, with whatever it needs kept alive (Maildir's temporary directory).
pub struct Backend {
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
    /// Stores a repeated LMTP delivery once (`AppendStream::set_delivery`).
    remembers_deliveries: bool,
}

impl Backend {
    fn maildir() -> Backend {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut o = MaildirOptions::new(format!("{}/%n", dir.path().display()));
        // Durability is not what this suite checks (storage_crash.rs does).
        o.fsync = false;
        let storage = MaildirStorage::new(o).unwrap_or_else(|e| panic!("maildir: {e}"));
        Backend {
            storage: Arc::new(storage),
            _dir: Some(dir),
            remembers_deliveries: false,
        }
    }

    fn memory() -> Backend {
        let storage =
            MemoryStorage::new(MemoryOptions::default()).unwrap_or_else(|e| panic!("memory: {e}"));
        Backend {
            storage: Arc::new(storage),
            _dir: None,
            remembers_deliveries: false,
        }
    }

    /// The PostgreSQL backend on a fresh database of the test process's own server
    /// (tests/common/postgres.rs), schema made by the backend at its first start.
    async fn postgres() -> Backend {
        let url = tokio::task::spawn_blocking(pg_server::fresh_database)
            .await
            .unwrap_or_else(|e| panic!("postgres: {e}"));
        let mut o = mailcove::storage::postgres::PgOptions::new(url);
        o.max_connections = 4;
        let storage = mailcove::storage::postgres::PgStorage::connect(o)
            .await
            .unwrap_or_else(|e| panic!("postgres: {e}"));
        Backend {
            storage: Arc::new(storage),
            _dir: None,
            remembers_deliveries: true,
        }
    }

    async fn user(&self, name: &str) -> Arc<dyn UserStore> {
        self.user_with_quota(name, None, None).await
    }

    async fn user_with_quota(
        &self,
        name: &str,
        bytes: Option<u64>,
        messages: Option<u64>,
    ) -> Arc<dyn UserStore> {
        let user = StorageUser {
            name: name.to_owned(),
            home: None,
            quota_bytes: bytes,
            quota_messages: messages,
            location: None,
        };
        ok(self.storage.user(&user).await)
    }
}

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("storage error: {e}"))
}

fn msg(body: &str) -> AppendMessage {
    AppendMessage {
        data: Bytes::from(format!(
            "From: a@example.org\r\nSubject: {body}\r\n\r\n{body}\r\n"
        )),
        flags: SystemFlags::EMPTY,
        keywords: Vec::new(),
        internal_date: Some(1_700_000_000),
    }
}

async fn append(u: &dyn UserStore, mailbox: &str, body: &str) -> u32 {
    ok(u.append(mailbox, msg(body)).await).uid
}

fn store(op: StoreOp, flags: SystemFlags, keywords: &[&str]) -> StoreRequest {
    StoreRequest {
        op,
        flags,
        keywords: keywords.iter().map(|s| (*s).to_owned()).collect(),
        unchanged_since: None,
    }
}

/// A whole message read through the storage API (the one place that knows how content is read).
async fn read_message(view: &View, uid: u32) -> Result<Vec<u8>> {
    let m = view.open_message(uid, 0).await?;
    let out = m.read_all().await?;
    assert_eq!(out.len() as u64, m.phys_size, "size told = bytes read");
    assert_eq!(m.content.len(), m.phys_size);
    Ok(out)
}

fn uids(view: &View) -> Vec<u32> {
    view.messages().iter().map(|m| m.uid).collect()
}

fn names(list: &[mailcove::storage::MailboxInfo]) -> Vec<(String, bool, bool)> {
    list.iter()
        .map(|m| (m.name.clone(), m.noselect, m.has_children))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// UIDs ascend and are never reused; UIDVALIDITY is stable, and new when a name is reused.
async fn uid_and_uidvalidity_rules(b: &Backend) {
    let u = b.user("uids").await;
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.messages, st.uidnext), (0, 1));
    assert_ne!(st.uidvalidity, 0);
    let first = ok(u.append("INBOX", msg("one")).await);
    assert_eq!(first.uid, 1);
    assert_eq!(first.uidvalidity, st.uidvalidity);
    assert_eq!(append(&*u, "INBOX", "two").await, 2);
    assert_eq!(append(&*u, "INBOX", "three").await, 3);
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(v.uidvalidity(), st.uidvalidity);
    assert_eq!(v.uidnext(), 4);
    assert_eq!(uids(&v), vec![1, 2, 3]);
    // Expunging the highest UID does not make it available again.
    ok(
        v.store(&[3], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    assert_eq!(append(&*u, "INBOX", "four").await, 4);
    ok(v.refresh().await);
    assert_eq!(uids(&v), vec![1, 2, 4]);
    assert_eq!(v.uidnext(), 5);
    assert_eq!(ok(u.status("INBOX").await).uidnext, 5);

    // A mailbox deleted and created again under the same name gets a new UIDVALIDITY.
    ok(u.create("Box", None).await);
    let old = ok(u.status("Box").await).uidvalidity;
    append(&*u, "Box", "x").await;
    ok(u.delete("Box").await);
    ok(u.create("Box", None).await);
    let st = ok(u.status("Box").await);
    assert_ne!(st.uidvalidity, old);
    assert_eq!((st.messages, st.uidnext), (0, 1));
    // Different mailboxes have their own UID spaces.
    assert_eq!(append(&*u, "Box", "y").await, 1);
}

/// System flags, keywords (case-insensitive, created on demand, bounded) and modseqs.
async fn flags_and_keywords(b: &Backend) {
    let u = b.user("flags").await;
    let r = ok(u
        .append(
            "INBOX",
            AppendMessage {
                flags: SystemFlags::SEEN.union(SystemFlags::DRAFT),
                keywords: vec!["$Forwarded".into(), "Work".into()],
                ..msg("one")
            },
        )
        .await);
    append(&*u, "INBOX", "two").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let m = v.get(1).cloned().unwrap_or_else(|| panic!("no message 1"));
    assert_eq!(m.uid, r.uid);
    assert_eq!(m.flags.system, SystemFlags::SEEN.union(SystemFlags::DRAFT));
    assert_eq!(
        v.keyword_names(&m.flags.keywords),
        vec!["$Forwarded", "Work"]
    );
    let dates = ok(v.internal_dates(&[m.uid]).await);
    assert_eq!(dates.get(m.uid), Some(1_700_000_000));

    let hms = v.highest_modseq();
    // Add, with a keyword matched case-insensitively: no new keyword.
    let out = ok(v
        .store(
            &[1, 2],
            store(StoreOp::Add, SystemFlags::FLAGGED, &["work"]),
        )
        .await);
    assert!(!out.keywords_changed);
    assert_eq!(out.updated.len(), 2);
    let modseqs: Vec<u64> = out.updated.iter().map(|(_, u)| u.modseq).collect();
    assert!(modseqs.iter().all(|m| *m > hms), "{modseqs:?} > {hms}");
    assert_ne!(modseqs[0], modseqs[1], "each change has its own modseq");
    assert_eq!(
        v.keyword_names(&out.updated[1].1.flags.keywords),
        vec!["Work"]
    );
    // A no-op store reports the message, with its modseq unchanged.
    let again = ok(v
        .store(&[2], store(StoreOp::Add, SystemFlags::FLAGGED, &[]))
        .await);
    assert_eq!(again.updated[0].1.modseq, out.updated[1].1.modseq);
    // Remove and replace.
    let out = ok(v
        .store(&[1], store(StoreOp::Remove, SystemFlags::SEEN, &["WORK"]))
        .await);
    let f = &out.updated[0].1.flags;
    assert_eq!(f.system, SystemFlags::DRAFT.union(SystemFlags::FLAGGED));
    assert_eq!(v.keyword_names(&f.keywords), vec!["$Forwarded"]);
    let out = ok(v
        .store(
            &[1],
            store(StoreOp::Replace, SystemFlags::ANSWERED, &["New"]),
        )
        .await);
    assert!(out.keywords_changed);
    assert_eq!(out.updated[0].1.flags.system, SystemFlags::ANSWERED);
    assert_eq!(
        v.keyword_names(&out.updated[0].1.flags.keywords),
        vec!["New"]
    );
    // Removing an unknown keyword creates nothing.
    let before = v.keywords().len();
    ok(v.store(
        &[1],
        store(StoreOp::Remove, SystemFlags::EMPTY, &["Unknown"]),
    )
    .await);
    assert_eq!(v.keywords().len(), before);

    // UNCHANGEDSINCE: message 1 changed after `hms`, message 2 did not change since its modseq.
    let m2 = v.get(2).map(|m| m.modseq).unwrap_or_default();
    let mut req = store(StoreOp::Add, SystemFlags::SEEN, &[]);
    req.unchanged_since = Some(m2);
    let out = ok(v.store(&[1, 2, 99], req).await);
    assert_eq!(out.failed, vec![1]);
    assert_eq!(out.updated.len(), 1, "unknown UIDs are skipped");
    assert!(
        v.get(1)
            .is_some_and(|m| !m.flags.system.contains(SystemFlags::SEEN)),
        "a failed UNCHANGEDSINCE leaves the message alone"
    );

    // Keywords are bounded per mailbox; the refusal creates none of them.
    let bad = v
        .store(&[1], store(StoreOp::Add, SystemFlags::EMPTY, &["bad word"]))
        .await;
    assert!(matches!(bad, Err(StorageError::Invalid(_))), "{bad:?}");
    // The first 1,000 one per STORE, as a client tagging messages adds them; then a hundred new
    // ones per STORE up to the bound (a STORE that would pass it creates none of its names, and
    // the rest go one at a time), so every backend gets to the bound in reasonable time.
    let mut n = 0;
    let mut batch = 1;
    while v.can_create_keywords() {
        if n == 1_000 {
            batch = 100;
        }
        let names: Vec<String> = (n + 1..=n + batch).map(|i| format!("k{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let before = v.keywords().len();
        match v
            .store(&[2], store(StoreOp::Add, SystemFlags::EMPTY, &names))
            .await
        {
            Ok(_) => n += batch,
            Err(StorageError::Invalid(_)) if batch > 1 => {
                assert_eq!(v.keywords().len(), before, "a refused STORE creates none");
                batch = 1;
            }
            Err(e) => panic!("keyword k{}: {e:?}", n + 1),
        }
        assert!(n <= 10_000, "no keyword bound");
    }
    assert!(
        n >= 1_000,
        "at least 1,000 keywords in one mailbox, got {n}"
    );
    let full = v.keywords().len();
    let r = v
        .store(
            &[2],
            store(StoreOp::Add, SystemFlags::EMPTY, &["one-too-many"]),
        )
        .await;
    assert!(matches!(r, Err(StorageError::Invalid(_))), "{r:?}");
    assert_eq!(v.keywords().len(), full);
    ok(v.refresh().await);
    assert_eq!(v.keywords().len(), full, "nothing created behind the view");

    // A read-only view refuses writes.
    let mut ro = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let r = ro
        .store(&[1], store(StoreOp::Add, SystemFlags::SEEN, &[]))
        .await;
    assert!(matches!(r, Err(StorageError::ReadOnly)));
}

/// EXPUNGE removes only `\Deleted` messages (of the given UIDs for UID EXPUNGE) and reports
/// sequence numbers in an order valid while they are sent.
async fn expunge_semantics(b: &Backend) {
    let u = b.user("expunge").await;
    for i in 1..=5 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let used = ok(u.quota().await);
    assert_eq!(used.messages_used, 5);
    ok(
        v.store(&[2, 4, 5], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    // UID EXPUNGE 1:4 leaves UID 5 although it is \Deleted.
    let d = ok(v.expunge(Some(&[1, 2, 3, 4])).await);
    assert_eq!(d.expunged, vec![4, 2], "descending sequence numbers");
    assert_eq!(d.expunged_uids, vec![2, 4]);
    assert_eq!(uids(&v), vec![1, 3, 5]);
    let d = ok(v.expunge(None).await);
    assert_eq!(d.expunged, vec![3]);
    assert_eq!(uids(&v), vec![1, 3]);
    // Nothing to expunge: an empty delta.
    assert!(ok(v.expunge(None).await).is_empty());
    let after = ok(u.quota().await);
    assert_eq!(after.messages_used, 2);
    assert!(after.bytes_used < used.bytes_used);
    // An expunged message cannot be opened.
    assert!(matches!(
        read_message(&v, 2).await,
        Err(StorageError::Expunged)
    ));
    let st = ok(u.status("INBOX").await);
    assert_eq!(st.messages, 2);
}

/// COPY keeps bytes, flags, keywords and INTERNALDATE, maps UIDs in source order, and leaves the
/// source alone; MOVE removes the sources and tells the view.
async fn copy_and_move_semantics(b: &Backend) {
    let u = b.user("copy").await;
    ok(u.create("Dest", None).await);
    append(&*u, "Dest", "already there").await;
    let r = ok(u
        .append(
            "INBOX",
            AppendMessage {
                flags: SystemFlags::FLAGGED,
                keywords: vec!["Work".into()],
                internal_date: Some(1_600_000_000),
                ..msg("first")
            },
        )
        .await);
    append(&*u, "INBOX", "second").await;
    append(&*u, "INBOX", "third").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let original = ok(read_message(&v, r.uid).await);

    let c = ok(v.copy(&[3, 1, 99], "Dest").await);
    assert_eq!(c.uidvalidity, ok(u.status("Dest").await).uidvalidity);
    assert_eq!(
        c.mapping,
        vec![(1, 2), (3, 3)],
        "source UID order, unknown skipped"
    );
    assert_eq!(uids(&v), vec![1, 2, 3], "COPY leaves the source");
    let mut d = ok(u.open("Dest", OpenOptions::EXAMINE).await);
    assert_eq!(uids(&d), vec![1, 2, 3]);
    let m = d.get(2).cloned().unwrap_or_else(|| panic!("no copy"));
    assert_eq!(m.flags.system, SystemFlags::FLAGGED);
    assert_eq!(d.keyword_names(&m.flags.keywords), vec!["Work"]);
    let dates = ok(d.internal_dates(&[m.uid]).await);
    assert_eq!(dates.get(m.uid), Some(1_600_000_000));
    assert_eq!(ok(read_message(&d, 2).await), original);
    assert_eq!(ok(u.quota().await).messages_used, 6);

    // MOVE: into Dest, the view is told of the expunges at once.
    let (c, delta) = ok(v.move_to(&[2, 3], "Dest").await);
    assert_eq!(c.mapping, vec![(2, 4), (3, 5)]);
    assert_eq!(delta.expunged, vec![3, 2]);
    assert_eq!(uids(&v), vec![1]);
    assert_eq!(
        ok(u.quota().await).messages_used,
        6,
        "a move changes no usage"
    );
    assert_eq!(ok(u.status("Dest").await).messages, 5);

    // COPY into the same mailbox makes new UIDs there.
    let c = ok(v.copy(&[1], "INBOX").await);
    assert_eq!(c.mapping, vec![(1, 4)]);
    ok(v.refresh().await);
    assert_eq!(uids(&v), vec![1, 4]);
    assert_eq!(ok(read_message(&v, 4).await), original);
}

/// Two sessions on one mailbox: what each is told by refresh, `\Recent` claimed by one, IDLE's
/// wait woken by the other session's change.
async fn concurrent_sessions(b: &Backend) {
    let u = b.user("sessions").await;
    append(&*u, "INBOX", "one").await;
    assert_eq!(ok(u.status("INBOX").await).recent, 1);
    let mut examine = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    // RFC 3501 2.3.2: the first session notified sees \Recent; a read-only one does not take it.
    assert_eq!(examine.recent_count(), 1, "EXAMINE sees \\Recent");
    assert!(examine.is_recent(1));
    assert_eq!(ok(u.status("INBOX").await).recent, 1, "EXAMINE takes none");
    let again = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(again.recent_count(), 1, "nor does a second EXAMINE");
    drop(again);
    let mut a = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let mut bv = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(a.recent_count(), 1);
    assert_eq!(bv.recent_count(), 0, "\\Recent belongs to one session");
    assert_eq!(ok(u.status("INBOX").await).recent, 0);

    // The first wait starts watching and returns at once; the next one waits for a change.
    tokio::time::timeout(Duration::from_secs(5), a.changed())
        .await
        .unwrap_or_else(|_| panic!("first changed() must return at once"));
    let u2 = u.clone();
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        append(&*u2, "INBOX", "two").await
    });
    tokio::time::timeout(Duration::from_secs(10), a.changed())
        .await
        .unwrap_or_else(|_| panic!("another session's append did not wake the waiting view"));
    assert_eq!(appender.await.unwrap_or_else(|e| panic!("{e}")), 2);

    // The read-only view keeps what it saw and is offered the new message too, counted once.
    let d = ok(examine.refresh().await);
    assert_eq!(d.exists, Some(2));
    assert_eq!(examine.recent_count(), 2);
    assert_eq!(ok(examine.refresh().await).recent, None);
    assert_eq!(
        examine.recent_count(),
        2,
        "a refresh does not count a UID twice"
    );

    // b refreshes first and takes \Recent for the new message.
    let d = ok(bv.refresh().await);
    assert_eq!(d.exists, Some(2));
    assert_eq!(d.recent, Some(1));
    let d = ok(a.refresh().await);
    assert_eq!(d.exists, Some(2));
    assert_eq!(
        a.recent_count(),
        1,
        "the new message went to the other session"
    );

    // A flag change by a is reported to b, not back to a.
    ok(
        a.store(&[1], store(StoreOp::Add, SystemFlags::SEEN, &["Tag"]))
            .await,
    );
    let d = ok(bv.refresh().await);
    assert_eq!(d.flag_changes, vec![1]);
    assert!(d.keywords_changed);
    assert!(
        bv.get(1)
            .is_some_and(|m| m.flags.system.contains(SystemFlags::SEEN))
    );
    assert!(
        ok(a.refresh().await).is_empty(),
        "own changes are not told again"
    );

    // An expunge by b: a hears of it only when it refreshes, with the sequence number it knew.
    ok(bv
        .store(&[1], store(StoreOp::Add, SystemFlags::DELETED, &[]))
        .await);
    ok(bv.expunge(None).await);
    assert_eq!(a.len(), 2, "a view changes only when refreshed");
    let d = ok(a.refresh().await);
    assert_eq!(d.expunged, vec![1]);
    assert_eq!(d.flag_changes, Vec::<u32>::new());
    assert_eq!(uids(&a), vec![2]);
    drop(examine);
}

/// APPEND of 0 bytes, of bare-LF text, and of 50 MB streamed; sizes as IMAP reports them.
async fn append_from_empty_to_50_mb(b: &Backend) {
    let u = b.user("sizes").await;
    let empty = ok(u
        .append(
            "INBOX",
            AppendMessage {
                data: Bytes::new(),
                ..msg("")
            },
        )
        .await);
    let lf = b"Subject: lf\n\nline one\nline two\r\n".to_vec();
    let lf_uid = ok(u
        .append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(lf.clone()),
                ..msg("")
            },
        )
        .await)
    .uid;

    // 50 MB, streamed in 64 KiB writes.
    let big_len = 50 * 1024 * 1024;
    let pattern: Vec<u8> = (0..64 * 1024)
        .map(|i| {
            if i % 80 == 79 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    let mut s = ok(u.append_stream("INBOX").await);
    assert!(s.is_empty());
    let mut written = 0usize;
    while written < big_len {
        let n = pattern.len().min(big_len - written);
        ok(s.write(&pattern[..n]).await);
        written += n;
    }
    assert_eq!(s.len(), big_len as u64);
    let big = ok(s
        .commit(SystemFlags::SEEN, vec!["Big".into()], Some(1_650_000_000))
        .await);
    assert_eq!(big.uid, 3);

    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(uids(&v), vec![empty.uid, lf_uid, big.uid]);
    let m = v
        .get(1)
        .cloned()
        .unwrap_or_else(|| panic!("no empty message"));
    assert_eq!((m.phys_size, m.virt_size), (0, 0));
    assert_eq!(ok(read_message(&v, empty.uid).await), Vec::<u8>::new());
    let m = v.get(2).cloned().unwrap_or_else(|| panic!("no LF message"));
    assert_eq!(m.phys_size, lf.len() as u64);
    assert_eq!(m.virt_size, lf.len() as u64 + 3, "bare LFs count as CRLF");
    assert_eq!(ok(read_message(&v, lf_uid).await), lf);
    let m = v
        .get(3)
        .cloned()
        .unwrap_or_else(|| panic!("no big message"));
    assert_eq!(m.phys_size, big_len as u64);
    let bare_lf = (0..big_len).filter(|i| i % (64 * 1024) % 80 == 79).count() as u64;
    assert_eq!(m.virt_size, big_len as u64 + bare_lf);
    let dates = ok(v.internal_dates(&[m.uid]).await);
    assert_eq!(dates.get(m.uid), Some(1_650_000_000));
    assert!(m.flags.system.contains(SystemFlags::SEEN));
    let data = ok(read_message(&v, big.uid).await);
    assert!(
        data.chunks(pattern.len()).all(|c| c == &pattern[..c.len()]),
        "the 50 MB message reads back as written"
    );
    assert_eq!(ok(u.quota().await).bytes_used, (lf.len() + big_len) as u64);

    // A stream dropped before commit stores nothing.
    let mut s = ok(u.append_stream("INBOX").await);
    ok(s.write(b"Subject: never\r\n\r\n").await);
    drop(s);
    assert_eq!(ok(u.status("INBOX").await).messages, 3);
    assert_eq!(ok(u.status("INBOX").await).uidnext, 4);
}

/// Reads of a multi-megabyte message in any order and size return exactly its bytes: forward
/// in small pieces (as a FETCH streams a body), backwards, across one and several boundaries of
/// whatever units a backend stores content in (PostgreSQL: 1 MiB chunks), at and past the end.
async fn ranged_reads_of_a_large_message(b: &Backend) {
    let u = b.user("ranges").await;
    let len = 3 * 1024 * 1024 + 12_345;
    // Every 4-byte window differs, so a piece read from the wrong place cannot match.
    let data: Vec<u8> = (0..len as u32)
        .flat_map(|i| (i / 4).to_be_bytes().into_iter().nth((i % 4) as usize))
        .collect();
    let uid = ok(u
        .append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(data.clone()),
                ..msg("")
            },
        )
        .await)
    .uid;
    let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let m = ok(v.open_message(uid, 100).await);
    assert_eq!(m.phys_size, len as u64);
    let c = m.content.clone();
    let want = |from: usize, n: usize| data[from.min(len)..(from + n).min(len)].to_vec();
    // Forward in 128 KiB pieces, then 100,000-byte pieces (not aligned to anything).
    for step in [128 * 1024, 100_000] {
        let mut got = Vec::new();
        let mut at = 0;
        while at < len {
            let piece = ok(c.read_at(at as u64, step, Vec::new()).await);
            assert_eq!(piece, want(at, step), "forward read at {at} of {step}");
            got.extend_from_slice(&piece);
            at += step;
        }
        assert_eq!(got.len(), len);
    }
    // Backwards, and jumping about.
    let mut at = len;
    while at > 0 {
        let from = at.saturating_sub(300_000);
        let piece = ok(c.read_at(from as u64, at - from, Vec::new()).await);
        assert_eq!(piece, want(from, at - from), "backward read at {from}");
        at = from;
    }
    let mib = 1024 * 1024;
    for (from, n) in [
        (mib - 1, 2),
        (mib - 10, 20),
        (2 * mib - 5, 5),
        (10, 3 * mib),
        (mib / 2, 2 * mib + 1),
        (0, len),
        (len - 1, 10),
        (len, 10),
        (len + 100, 10),
        (5, 0),
    ] {
        let piece = ok(c.read_at(from as u64, n, b"stale".to_vec()).await);
        assert_eq!(piece, want(from, n), "read of {n} at {from}");
    }
    assert_eq!(ok(m.read_all().await), data);
}

/// Usage follows appends, copies, expunges; limits refuse before anything is stored.
async fn quota_accounting(b: &Backend) {
    let one = msg("fits").data.len() as u64;
    let u = b
        .user_with_quota("quota", Some(3 * one + 10), Some(4))
        .await;
    ok(u.create("Other", None).await);
    let q = ok(u.quota().await);
    assert_eq!(q.bytes_limit, Some(3 * one + 10));
    assert_eq!(q.messages_limit, Some(4));
    assert_eq!((q.bytes_used, q.messages_used), (0, 0));
    append(&*u, "INBOX", "fits").await;
    append(&*u, "INBOX", "fits").await;
    let q = ok(u.quota().await);
    assert_eq!((q.bytes_used, q.messages_used), (2 * one, 2));

    // A copy of two would pass the byte limit: refused, nothing copied.
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let r = v.copy(&[1, 2], "Other").await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert_eq!(ok(u.status("Other").await).messages, 0);
    assert_eq!(ok(u.quota().await).messages_used, 2);
    // One fits.
    ok(v.copy(&[1], "Other").await);
    assert_eq!(ok(u.quota().await).bytes_used, 3 * one);
    // The next append passes the byte limit.
    let r = u.append("INBOX", msg("fits")).await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert_eq!(ok(u.status("INBOX").await).messages, 2);
    // A stream whose announced size cannot fit is refused before any byte is sent (APPEND
    // answers before its `+`), one that fits is accepted; 10 bytes of room are left.
    let mut s = ok(u.append_stream("INBOX").await);
    let r = s.reserve(11);
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert!(s.reserve(10).is_ok());
    drop(s);
    // A stream is refused as soon as its bytes cannot fit; nothing is stored.
    let mut s = ok(u.append_stream("INBOX").await);
    let r = s.write(&vec![b'x'; 2 * one as usize]).await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    drop(s);
    assert_eq!(ok(u.status("INBOX").await).messages, 2);
    // A move changes nothing; an expunge gives the room back.
    ok(v.move_to(&[2], "Other").await);
    assert_eq!(ok(u.quota().await).bytes_used, 3 * one);
    ok(
        v.store(&[1], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    let q = ok(u.quota().await);
    assert_eq!((q.bytes_used, q.messages_used), (2 * one, 2));
    append(&*u, "INBOX", "fits").await;
    // The message limit: 3 stored, a copy of 2 would make 5.
    let mut o = ok(u.open("Other", OpenOptions::SELECT).await);
    ok(o.refresh().await);
    let all = uids(&o);
    let r = o.copy(&all, "INBOX").await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert_eq!(ok(u.quota().await).messages_used, 3);
}

/// STATUS counts the `\Deleted` messages and their physical bytes (RFC 9208 DELETED and
/// DELETED-STORAGE), and follows STORE and EXPUNGE.
async fn status_deleted_counts(b: &Backend) {
    let u = b.user("deleted").await;
    let one = msg("one").data.len() as u64;
    let three = msg("three").data.len() as u64;
    append(&*u, "INBOX", "one").await;
    append(&*u, "INBOX", "two").await;
    append(&*u, "INBOX", "three").await;
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.deleted, st.deleted_bytes), (0, 0));
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(
        v.store(&[1, 3], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    let st = ok(u.status("INBOX").await);
    assert_eq!(
        (st.messages, st.deleted, st.deleted_bytes),
        (3, 2, one + three)
    );
    ok(
        v.store(&[1], store(StoreOp::Remove, SystemFlags::DELETED, &[]))
            .await,
    );
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.deleted, st.deleted_bytes), (1, three));
    ok(v.expunge(None).await);
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.messages, st.deleted, st.deleted_bytes), (2, 0, 0));
}

/// A recalculation from the messages agrees with the usage kept incrementally, whatever
/// happened before (appends to several mailboxes, copies, moves, expunges, a deleted mailbox),
/// and the incremental usage goes on from it.
async fn quota_recalc_matches_incremental_usage(b: &Backend) {
    let u = b.user_with_quota("recalc", Some(1 << 20), None).await;
    ok(u.create("A", None).await);
    ok(u.create("B", None).await);
    for i in 0..4 {
        append(&*u, "INBOX", &format!("inbox {i}")).await;
    }
    append(&*u, "A", "in a").await;
    append(&*u, "B", "in b, longer than the others").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(v.copy(&[1, 2], "A").await);
    ok(v.move_to(&[3], "B").await);
    ok(
        v.store(&[4], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    drop(v);
    ok(u.delete("B").await);
    let kept = ok(u.quota().await);
    // INBOX: messages 1 and 2; A: "in a" and the copies of 1 and 2.
    let want: u64 = ["inbox 0", "inbox 1", "in a", "inbox 0", "inbox 1"]
        .iter()
        .map(|b| msg(b).data.len() as u64)
        .sum();
    assert_eq!((kept.bytes_used, kept.messages_used), (want, 5));
    let again = ok(u.quota_recalc().await);
    assert_eq!(again, kept);
    append(&*u, "A", "after").await;
    let after = ok(u.quota().await);
    assert_eq!(
        (after.bytes_used, after.messages_used),
        (want + msg("after").data.len() as u64, 6)
    );
    assert_eq!(ok(u.quota_recalc().await), after);
}

/// Failing operations leave everything as it was.
async fn errors_leave_nothing_half_done(b: &Backend) {
    let u = b.user("errors").await;
    ok(u.create("A", None).await);
    ok(u.create("A/Child", None).await);
    ok(u.create("B", None).await);
    append(&*u, "A", "in a").await;
    let before = names(&ok(u.list().await));
    let quota = ok(u.quota().await);

    let r = u.rename("A", "B").await;
    assert!(matches!(r, Err(StorageError::AlreadyExists)), "{r:?}");
    let r = u.rename("A", "A/Child/Deeper").await;
    assert!(matches!(r, Err(StorageError::Cannot(_))), "{r:?}");
    let r = u.rename("Missing", "C").await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = u.rename("A", "INBOX").await;
    assert!(matches!(r, Err(StorageError::AlreadyExists)), "{r:?}");
    let r = u.create("A", None).await;
    assert!(matches!(r, Err(StorageError::AlreadyExists)), "{r:?}");
    let r = u.create("inbox", None).await;
    assert!(matches!(r, Err(StorageError::AlreadyExists)), "{r:?}");
    let r = u.delete("INBOX").await;
    assert!(matches!(r, Err(StorageError::Cannot(_))), "{r:?}");
    let r = u.delete("Missing").await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = u.create("bad//name", None).await;
    assert!(matches!(r, Err(StorageError::InvalidName(_))), "{r:?}");
    let r = u.append("Missing", msg("x")).await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = u.append_stream("Missing").await.map(|_| ());
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = u.open("Missing", OpenOptions::SELECT).await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = u.status("Missing").await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");

    let mut v = ok(u.open("A", OpenOptions::SELECT).await);
    let r = v.copy(&[1], "Missing").await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    let r = v.move_to(&[1], "Missing").await;
    assert!(matches!(r, Err(StorageError::NonExistent)), "{r:?}");
    assert_eq!(uids(&v), vec![1], "a failed MOVE expunges nothing");
    // An append with a bad keyword stores nothing.
    let r = u
        .append(
            "A",
            AppendMessage {
                keywords: vec!["bad word".into()],
                ..msg("x")
            },
        )
        .await;
    assert!(matches!(r, Err(StorageError::Invalid(_))), "{r:?}");
    assert!(ok(v.refresh().await).is_empty());
    assert_eq!(uids(&v), vec![1]);

    assert_eq!(names(&ok(u.list().await)), before);
    assert_eq!(ok(u.quota().await), quota);
    assert_eq!(ok(u.status("A").await).messages, 1);
}

/// A streamed message of `body`, ready for a batch.
async fn pending(u: &dyn UserStore, mailbox: &str, body: &str, keywords: &[&str]) -> PendingAppend {
    let data = msg(body).data;
    let mut stream = ok(u.append_stream(mailbox).await);
    ok(stream.reserve(data.len() as u64));
    // Two writes, as a literal arriving in chunks.
    let (a, b) = data.split_at(data.len() / 2);
    ok(stream.write(a).await);
    ok(stream.write(b).await);
    PendingAppend {
        stream,
        flags: SystemFlags::SEEN,
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        internal_date: Some(1_700_000_000),
    }
}

/// MULTIAPPEND (RFC 3502): a batch is stored all or none, with consecutive UIDs in batch order;
/// quota is checked over the whole batch.
async fn commit_many_all_or_none(b: &Backend) {
    let u = b.user_with_quota("batch", None, Some(4)).await;
    ok(u.create("Other", None).await);
    append(&*u, "INBOX", "before").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let quota = ok(u.quota().await);

    // Over quota on the 4th message (1 stored + 4 > 4): nothing stored.
    let mut batch = Vec::new();
    for body in ["a", "b", "c", "d"] {
        batch.push(pending(&*u, "INBOX", body, &[]).await);
    }
    let r = u.commit_many(batch).await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert!(ok(v.refresh().await).is_empty());
    assert_eq!(uids(&v), vec![1]);
    assert_eq!(ok(u.quota().await), quota);

    // A bad keyword in the middle: nothing stored.
    let batch = vec![
        pending(&*u, "INBOX", "a", &[]).await,
        pending(&*u, "INBOX", "b", &["bad word"]).await,
        pending(&*u, "INBOX", "c", &[]).await,
    ];
    let r = u.commit_many(batch).await;
    assert!(matches!(r, Err(StorageError::Invalid(_))), "{r:?}");
    assert!(ok(v.refresh().await).is_empty());
    assert_eq!(ok(u.quota().await), quota);

    // Streams of two mailboxes are not one batch.
    let batch = vec![
        pending(&*u, "INBOX", "a", &[]).await,
        pending(&*u, "Other", "b", &[]).await,
    ];
    assert!(u.commit_many(batch).await.is_err());
    assert_eq!(ok(u.status("Other").await).messages, 0);
    assert!(ok(v.refresh().await).is_empty());

    // Three fit: consecutive UIDs after the one stored, in batch order, all seen at once.
    let batch = vec![
        pending(&*u, "INBOX", "a", &["$Work"]).await,
        pending(&*u, "INBOX", "b", &[]).await,
        pending(&*u, "INBOX", "c", &[]).await,
    ];
    let r = ok(u.commit_many(batch).await);
    assert_eq!(r.uids.len(), 3);
    assert!(r.uids[0] > 1 && r.uids[1] == r.uids[0] + 1 && r.uids[2] == r.uids[1] + 1);
    assert_eq!(r.uidvalidity, v.uidvalidity());
    ok(v.refresh().await);
    assert_eq!(uids(&v), [vec![1], r.uids.clone()].concat());
    for (uid, body) in r.uids.iter().zip(["a", "b", "c"]) {
        assert_eq!(ok(read_message(&v, *uid).await), msg(body).data.to_vec());
    }
    let m = v.messages();
    assert!(
        m.iter()
            .skip(1)
            .all(|m| m.flags.system.contains(SystemFlags::SEEN))
    );
    let q = ok(u.quota().await);
    assert_eq!(q.messages_used, 4);
    assert_eq!(
        q.bytes_used,
        quota.bytes_used
            + ["a", "b", "c"]
                .iter()
                .map(|b| msg(b).data.len() as u64)
                .sum::<u64>()
    );
}

/// LIST with implicit parents, DELETE keeping children, RENAME with children, INBOX rename,
/// subscriptions and special use.
async fn mailbox_tree(b: &Backend) {
    let u = b.user("tree").await;
    ok(u.create("Work/Projects/2024/", None).await);
    ok(u.create("Sent", Some(mailcove::storage::SpecialUse::Sent))
        .await);
    let list = ok(u.list().await);
    assert_eq!(
        names(&list),
        vec![
            ("INBOX".into(), false, false),
            ("Sent".into(), false, false),
            ("Work".into(), true, true),
            ("Work/Projects".into(), true, true),
            ("Work/Projects/2024".into(), false, false),
        ]
    );
    assert_eq!(
        list.iter()
            .find(|m| m.name == "Sent")
            .and_then(|m| m.special_use),
        Some(mailcove::storage::SpecialUse::Sent)
    );
    // Deleting a parent that has children keeps them; it lists as \Noselect.
    ok(u.create("Work/Projects", None).await);
    append(&*u, "Work/Projects/2024", "deep").await;
    ok(u.delete("Work/Projects").await);
    let r = u.delete("Work").await;
    assert!(matches!(r, Err(StorageError::Cannot(_))), "{r:?}");
    // With the one reason both backends share, which IMAP4rev2 answers with [HASCHILDREN].
    assert!(
        matches!(r, Err(StorageError::Cannot(why)) if why == mailcove::storage::HAS_CHILDREN_NOT_SELECTABLE),
        "{r:?}"
    );
    assert!(
        names(&ok(u.list().await)).contains(&("Work/Projects".into(), true, true)),
        "a deleted parent stays as \\Noselect"
    );
    // Rename moves the children, keeping their messages.
    ok(u.rename("Work", "Job").await);
    let list = names(&ok(u.list().await));
    assert!(
        !list.iter().any(|(n, ..)| n.starts_with("Work")),
        "{list:?}"
    );
    assert!(list.contains(&("Job/Projects/2024".into(), false, false)));
    assert_eq!(ok(u.status("Job/Projects/2024").await).messages, 1);
    // Renaming INBOX moves its messages into a new mailbox and leaves INBOX, empty.
    append(&*u, "INBOX", "one").await;
    append(&*u, "INBOX", "two").await;
    ok(u.rename("INBOX", "Old").await);
    assert_eq!(ok(u.status("INBOX").await).messages, 0);
    assert_eq!(ok(u.status("Old").await).messages, 2);
    // Subscriptions are names, existing or not.
    ok(u.subscribe("Sent").await);
    ok(u.subscribe("Nowhere").await);
    ok(u.subscribe("Sent").await);
    let mut subs = ok(u.subscriptions().await);
    subs.sort();
    assert_eq!(subs, vec!["Nowhere".to_owned(), "Sent".to_owned()]);
    assert!(
        ok(u.list().await)
            .iter()
            .any(|m| m.name == "Sent" && m.subscribed)
    );
    ok(u.unsubscribe("Nowhere").await);
    assert_eq!(ok(u.subscriptions().await), vec!["Sent".to_owned()]);
    assert_eq!(u.separator(), '/');
}

/// The POP3 maildrop lock is exclusive per user and released on drop; keep-days expiry removes
/// only messages downloaded long enough ago.
async fn pop3_lock_and_expiry(b: &Backend) {
    let u = b.user("pop").await;
    let lock = ok(u.pop3_lock().await);
    let again = b.user("pop").await;
    assert!(matches!(again.pop3_lock().await, Err(StorageError::InUse)));
    let other = b.user("someone-else").await;
    let other_lock = ok(other.pop3_lock().await);
    drop(lock);
    let relock = ok(again.pop3_lock().await);
    drop((relock, other_lock));

    for i in 1..=3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let v = ok(u.open("INBOX", OpenOptions::POP3).await);
    ok(v.pop3_mark_downloaded(&[1, 3]).await);
    assert!(ok(u.pop3_expire(1).await).is_empty(), "downloaded just now");
    assert_eq!(ok(u.pop3_expire(0).await), vec![1, 3]);
    assert_eq!(ok(u.status("INBOX").await).messages, 1);
    assert_eq!(ok(u.quota().await).messages_used, 1);
}

/// The structure cache returns what was put, per field, and drops expunged messages' entries.
async fn structure_cache(b: &Backend) {
    let u = b.user("cache").await;
    append(&*u, "INBOX", "one").await;
    append(&*u, "INBOX", "two").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(
        ok(v.cache_get(&[1, 2], CacheField::ENVELOPE).await),
        vec![None, None]
    );
    ok(v.cache_put(
        CacheField::ENVELOPE,
        vec![
            (1, Bytes::from_static(b"env1")),
            (2, Bytes::from_static(b"env2")),
        ],
    )
    .await);
    ok(
        v.cache_put(CacheField::BODY, vec![(2, Bytes::from_static(b"body2"))])
            .await,
    );
    assert_eq!(
        ok(v.cache_get(&[2, 1], CacheField::ENVELOPE).await),
        vec![
            Some(Bytes::from_static(b"env2")),
            Some(Bytes::from_static(b"env1"))
        ]
    );
    assert_eq!(
        ok(v.cache_get(&[1, 2], CacheField::BODY).await),
        vec![None, Some(Bytes::from_static(b"body2"))]
    );
    ok(
        v.store(&[1], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    ok(
        v.cache_put(CacheField::ENVELOPE, vec![(1, Bytes::from_static(b"late"))])
            .await,
    );
    assert_eq!(
        ok(v.cache_get(&[1], CacheField::ENVELOPE).await),
        vec![None]
    );
}

/// Message content by range: heads read with the open, ranges, headers and capped batches, and
/// `None` (or `Expunged`) for what is gone.
async fn message_content(b: &Backend) {
    let u = b.user("content").await;
    let text = b"Subject: range\r\nX: y\r\n\r\nbody line\nlast".to_vec();
    let no_blank = b"Subject: only a header\r\n".to_vec();
    for data in [&text, &no_blank] {
        ok(u.append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(data.clone()),
                ..msg("")
            },
        )
        .await);
    }
    append(&*u, "INBOX", "gone").await;
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(
        v.store(&[3], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);

    // A head asked with the open: all of a small message (and known complete), or a prefix.
    let m = ok(v.open_message(1, 1 << 20).await);
    assert_eq!(m.head.bytes, text);
    assert!(m.head.complete);
    assert_eq!(m.phys_size, text.len() as u64);
    assert_eq!(m.virt_size, text.len() as u64 + 1);
    let m = ok(v.open_message(1, 7).await);
    assert_eq!(m.head.bytes, &text[..7]);
    assert!(!m.head.complete);
    assert_eq!(ok(m.read(9, 5).await), &text[9..14]);
    assert_eq!(ok(m.read(text.len() as u64 - 4, 100).await), b"last");
    assert_eq!(ok(m.read(text.len() as u64 + 10, 4).await), b"");
    assert_eq!(
        ok(m.content.read_at(17, 3, Vec::new()).await),
        &text[17..20]
    );
    assert_eq!(ok(m.header().await), &text[..24]);
    assert!(matches!(
        v.open_message(3, 0).await,
        Err(StorageError::Expunged)
    ));

    // Many at once: headers (through the blank line, or all of a message without one) and
    // capped wholes; None for the expunged one.
    let got = ok(v.read_messages(vec![1, 3, 2], ReadPart::Header).await);
    assert_eq!(
        got,
        vec![
            Some(Bytes::from(text[..24].to_vec())),
            None,
            Some(Bytes::from(no_blank.clone()))
        ]
    );
    let got = ok(v
        .read_messages(vec![2, 1], ReadPart::Whole { cap: 10 })
        .await);
    assert_eq!(
        got,
        vec![
            Some(Bytes::from(no_blank[..10].to_vec())),
            Some(Bytes::from(text[..10].to_vec()))
        ]
    );
    let got = ok(v
        .read_messages(vec![1], ReadPart::Whole { cap: 1 << 20 })
        .await);
    assert_eq!(got, vec![Some(Bytes::from(text.clone()))]);
}

// ---------------------------------------------------------------------------------------------
// MODSEQ and VANISHED (RFC 7162).

/// The modseq of one message as a fresh view shows it.
async fn modseq_of(u: &dyn UserStore, mailbox: &str, uid: u32) -> u64 {
    let v = ok(u.open(mailbox, OpenOptions::EXAMINE).await);
    v.messages()
        .find(uid)
        .map(|m| m.modseq)
        .unwrap_or_else(|| panic!("{mailbox} has no UID {uid}"))
}

async fn highest(u: &dyn UserStore, mailbox: &str) -> u64 {
    ok(u.status(mailbox).await).highest_modseq
}

/// Every APPEND, flag or keyword change, COPY/MOVE-in and expunge takes a new, strictly greater
/// modseq; a STORE that changes nothing keeps it; UNCHANGEDSINCE refuses newer messages.
async fn modseqs_strictly_increase(b: &Backend) {
    let u = b.user("modseq").await;
    ok(u.create("Dest", None).await);
    let h0 = highest(&*u, "INBOX").await;
    assert!(
        h0 >= 1,
        "a new mailbox has a valid HIGHESTMODSEQ (no NOMODSEQ)"
    );
    let one = append(&*u, "INBOX", "one").await;
    let h1 = highest(&*u, "INBOX").await;
    assert!(h1 > h0, "APPEND: {h1} > {h0}");
    assert_eq!(modseq_of(&*u, "INBOX", one).await, h1);
    let two = append(&*u, "INBOX", "two").await;
    let h2 = highest(&*u, "INBOX").await;
    assert!(h2 > h1);
    assert_eq!(modseq_of(&*u, "INBOX", two).await, h2);

    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(v.highest_modseq(), h2);
    // A flag change.
    let out = ok(v
        .store(&[one], store(StoreOp::Add, SystemFlags::SEEN, &[]))
        .await);
    let h3 = highest(&*u, "INBOX").await;
    assert!(h3 > h2);
    assert_eq!(
        out.updated
            .iter()
            .map(|(_, m)| m.modseq)
            .collect::<Vec<_>>(),
        vec![h3]
    );
    assert_eq!(v.highest_modseq(), h3, "the view follows its own STORE");
    // A keyword change.
    ok(
        v.store(&[one], store(StoreOp::Add, SystemFlags::EMPTY, &["Work"]))
            .await,
    );
    let h4 = highest(&*u, "INBOX").await;
    assert!(h4 > h3);
    assert_eq!(modseq_of(&*u, "INBOX", one).await, h4);
    // A STORE that changes nothing keeps the modseq, and is still reported with it.
    let out = ok(v
        .store(&[one], store(StoreOp::Add, SystemFlags::SEEN, &["work"]))
        .await);
    assert_eq!(
        out.updated
            .iter()
            .map(|(_, m)| m.modseq)
            .collect::<Vec<_>>(),
        vec![h4]
    );
    assert_eq!(
        highest(&*u, "INBOX").await,
        h4,
        "nothing changed, no new modseq"
    );
    // Several messages changed by one STORE each get their own new modseq.
    let out = ok(v
        .store(&[one, two], store(StoreOp::Add, SystemFlags::FLAGGED, &[]))
        .await);
    let got: Vec<u64> = out.updated.iter().map(|(_, m)| m.modseq).collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| *m > h4), "{got:?} > {h4}");
    assert_ne!(got.first(), got.get(1), "one modseq per changed message");
    let h5 = highest(&*u, "INBOX").await;
    assert_eq!(got.iter().max().copied(), Some(h5));
    // UNCHANGEDSINCE: a message changed after the given modseq is not touched.
    let two_ms = modseq_of(&*u, "INBOX", two).await;
    let mut req = store(StoreOp::Add, SystemFlags::ANSWERED, &[]);
    req.unchanged_since = Some(two_ms - 1);
    let out = ok(v.store(&[two], req.clone()).await);
    assert_eq!(out.failed, vec![two]);
    assert!(out.updated.is_empty());
    assert_eq!(
        highest(&*u, "INBOX").await,
        h5,
        "a refused STORE changes nothing"
    );
    req.unchanged_since = Some(two_ms);
    let out = ok(v.store(&[two], req).await);
    assert!(out.failed.is_empty());
    let h6 = highest(&*u, "INBOX").await;
    assert!(h6 > h5);

    // COPY into Dest: new modseqs there, the source keeps its own.
    let d0 = highest(&*u, "Dest").await;
    let c = ok(v.copy(&[one], "Dest").await);
    let d1 = highest(&*u, "Dest").await;
    assert!(d1 > d0, "COPY-in: {d1} > {d0}");
    let (_, copied) = c
        .mapping
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no copy"));
    assert_eq!(modseq_of(&*u, "Dest", copied).await, d1);
    assert_eq!(
        highest(&*u, "INBOX").await,
        h6,
        "COPY does not change the source"
    );
    // MOVE: both sides move forward.
    let c = ok(v.move_to(&[two], "Dest").await).0;
    let d2 = highest(&*u, "Dest").await;
    assert!(d2 > d1, "MOVE-in");
    let (_, moved) = c
        .mapping
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no move"));
    assert_eq!(modseq_of(&*u, "Dest", moved).await, d2);
    let h7 = highest(&*u, "INBOX").await;
    assert!(h7 > h6, "MOVE-out is an expunge: {h7} > {h6}");
    assert_eq!(
        v.highest_modseq(),
        h7,
        "the move's refresh brings the view forward"
    );
    // EXPUNGE.
    ok(
        v.store(&[one], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    let h8 = highest(&*u, "INBOX").await;
    ok(v.expunge(None).await);
    let h9 = highest(&*u, "INBOX").await;
    assert!(h9 > h8, "EXPUNGE: {h9} > {h8}");
    assert_eq!(v.highest_modseq(), h9);
    // Nothing to expunge: no new modseq.
    ok(v.expunge(None).await);
    assert_eq!(highest(&*u, "INBOX").await, h9);
}

/// `vanished_since` answers exactly inside the remembered window, `Unknown` below it.
async fn vanished_window(b: &Backend) {
    let u = b.user("vanished").await;
    for i in 1..=5 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let before = v.highest_modseq();
    assert_eq!(ok(v.vanished_since(before).await), Vanished::Exact(vec![]));
    assert_eq!(
        ok(v.vanished_since(1).await),
        Vanished::Exact(vec![]),
        "nothing ever expunged"
    );
    ok(
        v.store(&[4, 2], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    let flagged = v.highest_modseq();
    ok(v.expunge(Some(&[4])).await);
    let mid = v.highest_modseq();
    ok(v.expunge(None).await);
    let after = v.highest_modseq();
    assert!(before < flagged && flagged < mid && mid < after);
    assert_eq!(
        ok(v.vanished_since(before).await),
        Vanished::Exact(vec![2, 4])
    );
    assert_eq!(
        ok(v.vanished_since(flagged).await),
        Vanished::Exact(vec![2, 4])
    );
    assert_eq!(ok(v.vanished_since(mid).await), Vanished::Exact(vec![2]));
    assert_eq!(ok(v.vanished_since(after).await), Vanished::Exact(vec![]));

    // Push the window past its bound with one big expunge (copies double the mailbox cheaply).
    let window = mailcove::limits::VANISHED_WINDOW;
    while v.len() as usize <= window {
        let all = uids(&v);
        ok(v.copy(&all, "INBOX").await);
        ok(v.refresh().await);
    }
    let before_mass = v.highest_modseq();
    let all = uids(&v);
    let last = all.last().copied().unwrap_or_else(|| panic!("empty"));
    ok(
        v.store(&all, store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    let flagged = v.highest_modseq();
    ok(v.expunge(None).await);
    assert!(v.is_empty());
    let end = v.highest_modseq();
    assert_eq!(
        end - flagged,
        all.len() as u64,
        "one modseq per expunged message"
    );
    assert_eq!(ok(v.vanished_since(before).await), Vanished::Unknown);
    assert_eq!(ok(v.vanished_since(before_mass).await), Vanished::Unknown);
    assert_eq!(
        ok(v.vanished_since(end - 1).await),
        Vanished::Exact(vec![last])
    );
    match ok(v.vanished_since(end - window as u64).await) {
        Vanished::Exact(got) => {
            assert_eq!(got.len(), window, "the whole window is answered exactly");
            assert_eq!(got.last().copied(), Some(last));
            assert!(got.is_sorted(), "ascending");
        }
        Vanished::Unknown => panic!("the last {window} expunges must be remembered"),
    }
    assert_eq!(
        ok(v.vanished_since(end - window as u64 - 1).await),
        Vanished::Unknown
    );
}

/// Two sessions: one expunges, the other asks what vanished since its old HIGHESTMODSEQ; it is
/// told only once its picture has let the messages go.
async fn vanished_seen_from_another_view(b: &Backend) {
    let u = b.user("vanished2").await;
    for i in 1..=4 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut a = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let mut other = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let old = other.highest_modseq();
    // A message appended and expunged while the other view was not looking.
    let five = append(&*u, "INBOX", "m5").await;
    ok(a.refresh().await);
    ok(a.store(
        &[1, 3, five],
        store(StoreOp::Add, SystemFlags::DELETED, &[]),
    )
    .await);
    ok(a.expunge(None).await);
    assert_eq!(
        ok(a.vanished_since(old).await),
        Vanished::Exact(vec![1, 3, five])
    );
    // The other view still shows 1 and 3 (they are reported by its next refresh, as EXPUNGE or
    // VANISHED), so only the message it never saw is told now.
    assert_eq!(
        ok(other.vanished_since(old).await),
        Vanished::Exact(vec![five])
    );
    let d = ok(other.refresh().await);
    assert_eq!(d.expunged_uids, vec![1, 3]);
    assert!(other.highest_modseq() > old);
    assert_eq!(
        ok(other.vanished_since(old).await),
        Vanished::Exact(vec![1, 3, five])
    );
    assert_eq!(
        ok(other.vanished_since(other.highest_modseq()).await),
        Vanished::Exact(vec![])
    );
    // A view opened now (a client reconnecting with its old HIGHESTMODSEQ) gets the same answer.
    let fresh = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(
        ok(fresh.vanished_since(old).await),
        Vanished::Exact(vec![1, 3, five])
    );
    assert_eq!(fresh.highest_modseq(), other.highest_modseq());
    assert_eq!(highest(&*u, "INBOX").await, fresh.highest_modseq());
}

/// RFC 8474 OBJECTID and RFC 8514 SAVEDATE: MAILBOXID kept by RENAME and new after DELETE and
/// CREATE; EMAILID valid, distinct per APPEND and kept by COPY and MOVE; SAVEDATE the time of
/// the APPEND/COPY/MOVE while INTERNALDATE is carried over; THREADID not tracked.
async fn object_ids_and_save_dates(b: &Backend) {
    use mailcove::storage::is_object_id;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    };
    let u = b.user("objects").await;
    ok(u.create("A", None).await);
    ok(u.create("B", None).await);
    let inbox_id = ok(u.mailbox_id("INBOX").await);
    let a_id = ok(u.mailbox_id("A").await);
    let b_id = ok(u.mailbox_id("B").await);
    for id in [&inbox_id, &a_id, &b_id] {
        assert!(is_object_id(id), "{id:?}");
    }
    assert_ne!(a_id, b_id);
    assert_ne!(a_id, inbox_id);
    assert_eq!(ok(u.mailbox_id("A").await), a_id, "asked again, the same");
    assert!(matches!(
        u.mailbox_id("Nope").await,
        Err(StorageError::NonExistent)
    ));
    ok(u.rename("A", "Renamed").await);
    assert_eq!(ok(u.mailbox_id("Renamed").await), a_id, "RENAME keeps it");
    ok(u.delete("Renamed").await);
    ok(u.create("Renamed", None).await);
    let again = ok(u.mailbox_id("Renamed").await);
    assert_ne!(again, a_id, "a mailbox made again gets a new id");

    let before = now();
    append(&*u, "INBOX", "one").await;
    append(&*u, "INBOX", "one").await;
    let after = now();
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let objs = ok(v.objects(&[2, 99, 1]).await);
    assert_eq!(
        objs.iter().map(|o| o.uid).collect::<Vec<_>>(),
        vec![2, 1],
        "asked order, absent left out"
    );
    for o in &objs {
        assert!(is_object_id(&o.email_id), "{o:?}");
        assert_eq!(o.thread_id, None);
        let saved = o.save_date.unwrap_or_else(|| panic!("no save date: {o:?}"));
        assert!(before <= saved && saved <= after, "{o:?}");
    }
    // The same content appended twice is two messages (RFC 8474 5.1 allows either).
    assert_ne!(objs[0].email_id, objs[1].email_id);
    let id1 = objs[1].email_id.clone();
    let id2 = objs[0].email_id.clone();

    // Copies and moved messages keep EMAILID and INTERNALDATE; their save date is new. The
    // clock must move on for the difference to show: wait for the next second.
    let t = now();
    while now() == t {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let copy_start = now();
    let c = ok(v.copy(&[1], "B").await);
    let (m, _) = ok(v.move_to(&[2], "B").await);
    let copy_end = now();
    let mut d = ok(u.open("B", OpenOptions::EXAMINE).await);
    let c_uid = c.mapping[0].1;
    let m_uid = m.mapping[0].1;
    let got = ok(d.objects(&[c_uid, m_uid]).await);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].email_id, id1, "COPY keeps EMAILID");
    assert_eq!(got[1].email_id, id2, "MOVE keeps EMAILID");
    for o in &got {
        let saved = o.save_date.unwrap_or_else(|| panic!("no save date: {o:?}"));
        assert!(
            copy_start <= saved && saved <= copy_end,
            "new save date: {o:?}"
        );
    }
    let dates = ok(d.internal_dates(&[c_uid, m_uid]).await);
    assert_eq!(
        dates.get(c_uid),
        Some(1_700_000_000),
        "INTERNALDATE carried"
    );
    assert_eq!(
        dates.get(m_uid),
        Some(1_700_000_000),
        "INTERNALDATE carried"
    );
    // The source of the copy keeps its own save date.
    ok(v.refresh().await);
    let src = ok(v.objects(&[1]).await);
    assert_eq!(src[0].email_id, id1);
    assert!(src[0].save_date.is_some_and(|s| s <= after));
    // A flag change changes none of it.
    ok(d.refresh().await);
    drop(d);
    let mut w = ok(u.open("B", OpenOptions::SELECT).await);
    ok(
        w.store(&[c_uid], store(StoreOp::Add, SystemFlags::SEEN, &[]))
            .await,
    );
    assert_eq!(ok(w.objects(&[c_uid, m_uid]).await), got);
}

/// `rebuild_index` (`mailcove index rebuild`) leaves what clients see as it was: UIDs, flags,
/// keywords, UIDVALIDITY, UIDNEXT, modseqs and content; what was cached is gone after it. A
/// backend with nothing to rebuild says `Cannot`; a missing mailbox is `NonExistent`.
async fn index_rebuild_keeps_the_mailbox(b: &Backend) {
    let u = b.user("rebuild").await;
    for i in 0..3 {
        append(&*u, "INBOX", &format!("m{i}")).await;
    }
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(
        v.store(&[2], store(StoreOp::Add, SystemFlags::SEEN, &["kw"]))
            .await,
    );
    ok(
        v.cache_put(CacheField::ENVELOPE, vec![(1, Bytes::from_static(b"env"))])
            .await,
    );
    let before = ok(u.status("INBOX").await);
    let flags_before: Vec<_> = v
        .messages()
        .iter()
        .map(|m| (m.uid, m.flags.clone(), m.modseq))
        .collect();
    match u.rebuild_index("INBOX").await {
        Ok(()) => {
            let w = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
            assert_eq!(
                ok(w.cache_get(&[1], CacheField::ENVELOPE).await),
                vec![None]
            );
        }
        Err(StorageError::Cannot(_)) => {}
        Err(e) => panic!("rebuild_index: {e}"),
    }
    assert_eq!(ok(u.status("INBOX").await), before);
    let w = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(uids(&w), [1, 2, 3]);
    let flags_after: Vec<_> = w
        .messages()
        .iter()
        .map(|m| (m.uid, m.flags.clone(), m.modseq))
        .collect();
    assert_eq!(flags_after, flags_before);
    let second = w.get(2).map(|m| m.flags.keywords.clone());
    assert_eq!(w.keyword_names(&second.unwrap_or_default()), ["kw"]);
    assert_eq!(ok(read_message(&w, 2).await), msg("m1").data.to_vec());
    // The session that was open goes on: a new message gets the next UID.
    assert_eq!(append(&*u, "INBOX", "m3").await, 4);
    ok(v.refresh().await);
    assert_eq!(uids(&v), [1, 2, 3, 4]);
    assert!(matches!(
        u.rebuild_index("Nope").await,
        Err(StorageError::NonExistent)
    ));
}

// ---------------------------------------------------------------------------------------------
// Instantiation: every case for every backend.

/// Calls `$suite!($($args)*, [every case])`, the one list of cases.
fn entries(pairs: &[(&str, &[u8])]) -> MetadataMap {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}

fn set(name: &str, value: &[u8]) -> MetadataChange {
    (name.to_owned(), Some(value.to_vec()))
}

/// METADATA (RFC 5464): mailbox and server entries are apart, values are kept byte for byte,
/// `None` removes, and a mailbox that does not exist (or is only an implicit parent) has none.
async fn metadata_set_get_and_remove(b: &Backend) {
    let u = b.user("meta").await;
    ok(u.create("Work/Notes", None).await);
    assert_eq!(ok(u.metadata_get(None).await), MetadataMap::new());
    assert_eq!(ok(u.metadata_get(Some("INBOX")).await), MetadataMap::new());
    let binary: &[u8] = b"\0\r\n\tany \xff octet";
    ok(u.metadata_set(
        Some("INBOX"),
        vec![set("/private/comment", b"mine"), set("/shared/bin", binary)],
    )
    .await);
    ok(
        u.metadata_set(None, vec![set("/private/vendor/x/y", b"server")])
            .await,
    );
    ok(
        u.metadata_set(Some("Work/Notes"), vec![set("/shared/comment", b"")])
            .await,
    );
    assert_eq!(
        ok(u.metadata_get(Some("INBOX")).await),
        entries(&[("/private/comment", b"mine"), ("/shared/bin", binary)])
    );
    assert_eq!(
        ok(u.metadata_get(None).await),
        entries(&[("/private/vendor/x/y", b"server")])
    );
    assert_eq!(
        ok(u.metadata_get(Some("Work/Notes")).await),
        entries(&[("/shared/comment", b"")])
    );
    // Replace one, remove one, remove one that never was: all in one call.
    ok(u.metadata_set(
        Some("INBOX"),
        vec![
            set("/private/comment", b"changed"),
            ("/shared/bin".into(), None),
            ("/shared/never".into(), None),
        ],
    )
    .await);
    assert_eq!(
        ok(u.metadata_get(Some("INBOX")).await),
        entries(&[("/private/comment", b"changed")])
    );
    // Another user sees none of it.
    let other = b.user("meta2").await;
    assert_eq!(
        ok(other.metadata_get(Some("INBOX")).await),
        MetadataMap::new()
    );
    assert_eq!(ok(other.metadata_get(None).await), MetadataMap::new());
    // A missing mailbox, and `Work`, which only exists as the parent of `Work/Notes`.
    for name in ["Nowhere", "Work"] {
        let r = u.metadata_get(Some(name)).await;
        assert!(matches!(r, Err(StorageError::NonExistent)), "{name}: {r:?}");
        let r = u
            .metadata_set(Some(name), vec![set("/shared/a", b"x")])
            .await;
        assert!(matches!(r, Err(StorageError::NonExistent)), "{name}: {r:?}");
    }
    // A fresh store of the same user (a new login, or a restart for Maildir) sees the same.
    let again = b.user("meta").await;
    assert_eq!(
        ok(again.metadata_get(Some("INBOX")).await),
        entries(&[("/private/comment", b"changed")])
    );
}

/// RFC 5464 4.1: entries follow RENAME (children too), INBOX's are copied and INBOX keeps
/// them, and DELETE takes them along, so a mailbox created again has none.
async fn metadata_follows_rename_and_goes_with_delete(b: &Backend) {
    let u = b.user("metamove").await;
    ok(u.create("a", None).await);
    ok(u.create("a/b", None).await);
    ok(
        u.metadata_set(Some("a"), vec![set("/shared/comment", b"top")])
            .await,
    );
    ok(
        u.metadata_set(Some("a/b"), vec![set("/private/comment", b"child")])
            .await,
    );
    ok(u.rename("a", "c").await);
    assert_eq!(
        ok(u.metadata_get(Some("c")).await),
        entries(&[("/shared/comment", b"top")])
    );
    assert_eq!(
        ok(u.metadata_get(Some("c/b")).await),
        entries(&[("/private/comment", b"child")])
    );
    ok(u.create("a", None).await);
    assert_eq!(ok(u.metadata_get(Some("a")).await), MetadataMap::new());
    ok(u.delete("c/b").await);
    ok(u.create("c/b", None).await);
    assert_eq!(ok(u.metadata_get(Some("c/b")).await), MetadataMap::new());
    ok(
        u.metadata_set(Some("INBOX"), vec![set("/private/comment", b"inbox")])
            .await,
    );
    ok(u.rename("INBOX", "Old").await);
    let inbox = entries(&[("/private/comment", b"inbox")]);
    assert_eq!(ok(u.metadata_get(Some("INBOX")).await), inbox);
    assert_eq!(ok(u.metadata_get(Some("Old")).await), inbox);
}

/// The limits of RFC 5464 4.3, all or none: a value too big, a new entry past the count of a
/// mailbox, and past the bytes of the whole user (counted over every mailbox and the server).
async fn metadata_limits(b: &Backend) {
    let u = b.user("metalimits").await;
    ok(u.create("other", None).await);
    ok(
        u.metadata_set(Some("INBOX"), vec![set("/shared/keep", b"1")])
            .await,
    );
    let big = vec![b'x'; MAX_METADATA_VALUE_BYTES + 1];
    let r = u
        .metadata_set(
            Some("INBOX"),
            vec![set("/shared/keep", b"2"), set("/shared/big", &big)],
        )
        .await;
    assert!(
        matches!(r, Err(StorageError::Metadata(MetadataLimit::MaxSize(n))) if n == MAX_METADATA_VALUE_BYTES as u64),
        "{r:?}"
    );
    assert_eq!(
        ok(u.metadata_get(Some("INBOX")).await),
        entries(&[("/shared/keep", b"1")])
    );
    // The count: up to the limit on one mailbox, then TOOMANY; replacing still works.
    let many: Vec<MetadataChange> = (1..MAX_METADATA_ENTRIES)
        .map(|i| set(&format!("/shared/n{i:03}"), b""))
        .collect();
    ok(u.metadata_set(Some("INBOX"), many).await);
    let r = u
        .metadata_set(Some("INBOX"), vec![set("/shared/one-more", b"")])
        .await;
    assert!(
        matches!(r, Err(StorageError::Metadata(MetadataLimit::TooMany))),
        "{r:?}"
    );
    ok(
        u.metadata_set(Some("INBOX"), vec![set("/shared/keep", b"3")])
            .await,
    );
    ok(u.metadata_set(None, vec![set("/shared/one-more", b"")])
        .await);
    // Removing many at once always works.
    let gone: Vec<MetadataChange> = (1..MAX_METADATA_ENTRIES)
        .map(|i| (format!("/shared/n{i:03}"), None))
        .collect();
    ok(u.metadata_set(Some("INBOX"), gone).await);
    // The bytes: full values in INBOX and `other` until the user's total would pass.
    let full = vec![b'v'; MAX_METADATA_VALUE_BYTES];
    let per = (MAX_METADATA_VALUE_BYTES + "/private/fNN".len()) as u64;
    let used = mailcove::storage::metadata::map_bytes(&ok(u.metadata_get(Some("INBOX")).await))
        + mailcove::storage::metadata::map_bytes(&ok(u.metadata_get(None).await));
    let fit = (MAX_METADATA_USER_BYTES as u64 - used) / per;
    assert!(fit > 2, "the test needs room for a few values");
    for i in 0..fit {
        let mailbox = if i % 2 == 0 { "INBOX" } else { "other" };
        ok(u.metadata_set(
            Some(mailbox),
            vec![set(&format!("/private/f{i:02}"), &full)],
        )
        .await);
    }
    let r = u
        .metadata_set(Some("other"), vec![set("/private/fzz", &full)])
        .await;
    assert!(
        matches!(r, Err(StorageError::Metadata(MetadataLimit::TooMany))),
        "{r:?}"
    );
    // Removing is always allowed, and makes room.
    ok(
        u.metadata_set(Some("INBOX"), vec![("/private/f00".into(), None)])
            .await,
    );
    ok(
        u.metadata_set(Some("other"), vec![set("/private/fzz", &full)])
            .await,
    );
}

/// The next event of `sub` that `want` accepts (others are skipped: Maildir also reports its
/// own file moves), within five seconds.
async fn next_change(
    sub: &mut mailcove::storage::FeedSubscription,
    want: impl Fn(&mailcove::storage::Change) -> bool,
) -> mailcove::storage::Change {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Ok(c)) if want(&c) => return (*c).clone(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("feed failed: {e:?}"),
            Err(_) => panic!("no matching change within 5 s"),
        }
    }
}

fn is_change(mailbox: Option<&str>, kind: ChangeKind) -> impl Fn(&Change) -> bool {
    let mailbox = mailbox.map(str::to_owned);
    move |c: &Change| c.mailbox == mailbox && c.kind == kind
}

fn is_message_change(mailbox: &str) -> impl Fn(&Change) -> bool {
    let mailbox = mailbox.to_owned();
    move |c: &Change| c.mailbox.as_deref() == Some(mailbox.as_str()) && c.kind.is_message_event()
}

/// The per-user change feed (NOTIFY): one feed per user, shared by its sessions; each mailbox
/// event a second session causes reaches the first, named by mailbox; other users' changes do
/// not; a subscriber that falls behind learns it lost events.
async fn change_feed(b: &Backend) {
    let a = b.user("feeder").await;
    let other_session = b.user("feeder").await;
    let stranger = b.user("stranger").await;
    assert_ne!(a.origin(), other_session.origin());
    let mut sub = ok(a.subscribe_changes().await);
    assert_eq!(sub.origin(), a.origin());

    ok(other_session.create("Box", None).await);
    let c = next_change(&mut sub, is_change(Some("Box"), ChangeKind::MailboxCreated)).await;
    assert_eq!(c.origin, other_session.origin());

    append(&*other_session, "Box", "one").await;
    next_change(&mut sub, is_message_change("Box")).await;

    ok(other_session.subscribe("Box").await);
    next_change(
        &mut sub,
        is_change(Some("Box"), ChangeKind::SubscriptionChanged),
    )
    .await;
    ok(other_session.unsubscribe("Box").await);
    next_change(
        &mut sub,
        is_change(Some("Box"), ChangeKind::SubscriptionChanged),
    )
    .await;

    ok(other_session.rename("Box", "Renamed").await);
    next_change(
        &mut sub,
        is_change(
            Some("Renamed"),
            ChangeKind::MailboxRenamed { old: "Box".into() },
        ),
    )
    .await;
    // The feed follows the rename: messages of the new name are reported under it.
    append(&*other_session, "Renamed", "two").await;
    next_change(&mut sub, is_message_change("Renamed")).await;

    // Flags and expunges through a view of another session.
    let mut view = ok(other_session.open("Renamed", OpenOptions::SELECT).await);
    let first = uids(&view)[0];
    ok(view
        .store(&[first], store(StoreOp::Add, SystemFlags::DELETED, &[]))
        .await);
    next_change(&mut sub, is_message_change("Renamed")).await;
    ok(view.expunge(None).await);
    next_change(&mut sub, is_message_change("Renamed")).await;
    drop(view);

    let entries = vec!["/shared/comment".to_owned()];
    let meta = ChangeKind::MetadataChanged {
        entries: entries.clone(),
    };
    other_session.publish_metadata_change(None, &entries);
    next_change(&mut sub, is_change(None, meta.clone())).await;
    // The name is normalised as every other name of the feed (INBOX in upper case).
    other_session.publish_metadata_change(Some("inbox"), &entries);
    next_change(&mut sub, is_change(Some("INBOX"), meta)).await;

    // Another user's change is not in this user's feed: the next mailbox event is our own.
    ok(stranger.create("Elsewhere", None).await);
    ok(other_session.delete("Renamed").await);
    let c = next_change(&mut sub, |c| {
        matches!(
            c.kind,
            ChangeKind::MailboxCreated | ChangeKind::MailboxDeleted
        )
    })
    .await;
    assert_eq!(c.mailbox.as_deref(), Some("Renamed"));
    assert_eq!(c.kind, ChangeKind::MailboxDeleted);

    // A subscriber that does not read loses events and is told so; a new one starts afresh.
    for _ in 0..mailcove::limits::NOTIFY_FEED_CAPACITY + 10 {
        other_session.publish_metadata_change(None, &entries);
    }
    let mut lagged = false;
    loop {
        match sub.try_recv() {
            Err(FeedError::Overflow) => {
                lagged = true;
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(FeedError::Closed) => break,
        }
    }
    assert!(lagged, "a subscriber that fell behind must see Overflow");
    let mut fresh = ok(a.subscribe_changes().await);
    assert!(matches!(fresh.try_recv(), Ok(None)));
}

/// The full-text index (docs/fts.md): one per user, reached from the store and from every view
/// of its mailboxes; a mailbox's entries are keyed by its identity and UIDVALIDITY, so another
/// mailbox (or the same one made again) is not covered by them; a second store of the same user
/// sees what the first indexed; another user has an index of their own.
async fn full_text_index_per_user(b: &Backend) {
    use mailcove::fts::{FtsDoc, mailbox_key};
    let u = b.user("fts").await;
    ok(u.create("Other", None).await);
    append(&*u, "INBOX", "zanzibar").await;
    let Some(fts) = ok(u.fts().await) else {
        panic!("the index is on by default");
    };
    let v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    let Some(identity) = v.identity() else {
        panic!("a backend with an index names its mailboxes");
    };
    let key = mailbox_key(&identity, v.uidvalidity());
    let doc = FtsDoc {
        uid: 1,
        text: mailcove::mime::casemap::casemap("Trip to Zanzibar"),
    };
    let (f, k) = (fts.clone(), key.clone());
    ok(tokio::task::spawn_blocking(move || f.add(&k, vec![doc]))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    let Some(through_view) = ok(v.fts().await) else {
        panic!("the view reaches the user's index");
    };
    let other = ok(u.open("Other", OpenOptions::SELECT).await);
    let other_key = mailbox_key(&other.identity().unwrap_or_default(), other.uidvalidity());
    assert_ne!(key, other_key);
    let again = b.user("fts").await;
    let Some(from_again) = ok(again.fts().await) else {
        panic!("index off for a second store");
    };
    let stranger = b.user("fts2").await;
    let Some(theirs) = ok(stranger.fts().await) else {
        panic!("index off for another user");
    };
    let (k, ok_) = (key.clone(), other_key.clone());
    let got = tokio::task::spawn_blocking(move || {
        (
            through_view.candidates(&k, &mailcove::mime::casemap::casemap("zanz")),
            through_view.covered(&ok_),
            from_again.covered(&k),
            theirs.covered(&k),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok(got.0), Some(vec![1]));
    assert_eq!(ok(got.1), Vec::<u32>::new());
    assert_eq!(ok(got.2), vec![1]);
    assert_eq!(ok(got.3), Vec::<u32>::new());
}

/// One LMTP delivery of `body` into `mailbox` as delivery `id`: whether the backend remembers
/// deliveries, and the UID it answered.
async fn deliver(u: &dyn UserStore, mailbox: &str, id: DeliveryId, body: &str) -> (bool, u32) {
    let mut w = ok(u.append_stream(mailbox).await);
    let remembers = w.set_delivery(id);
    ok(
        w.write(format!("Subject: {body}\r\n\r\n{body}\r\n").as_bytes())
            .await,
    );
    let uid = ok(w.commit(SystemFlags::EMPTY, Vec::new(), None).await).uid;
    (remembers, uid)
}

/// An MTA retrying a delivery that was stored but not acknowledged: a backend that remembers
/// deliveries stores it once and answers the first UID; the same message to another
/// recipient, or into another mailbox, is another delivery. A backend that does not remember
/// them stores every copy, each with a new UID.
async fn lmtp_deliveries_stored_once(b: &Backend) {
    let u = b.user("deliveries").await;
    ok(u.create("Lists", None).await);
    let digest = [7u8; 32];
    let id = DeliveryId::new("a@example.org", "deliveries@example.org", &digest);
    let to_detail = DeliveryId::new("a@example.org", "deliveries+x@example.org", &digest);
    let (remembers, first) = deliver(&*u, "INBOX", id, "one").await;
    assert_eq!(remembers, b.remembers_deliveries);
    assert_eq!(
        u.remembers_deliveries(),
        remembers,
        "the store says what its appends do"
    );
    let (_, retried) = deliver(&*u, "INBOX", id, "one").await;
    let (_, other_rcpt) = deliver(&*u, "INBOX", to_detail, "one").await;
    let (_, other_box) = deliver(&*u, "Lists", id, "one").await;
    assert_eq!(other_box, 1);
    assert_eq!(ok(u.status("Lists").await).messages, 1);
    let inbox = ok(u.status("INBOX").await);
    if remembers {
        assert_eq!((first, retried, other_rcpt), (1, 1, 2));
        assert_eq!(inbox.messages, 2);
        assert_eq!(inbox.uidnext, 3);
        assert_eq!(ok(u.quota().await).messages_used, 3);
    } else {
        assert_eq!((first, retried, other_rcpt), (1, 2, 3));
        assert_eq!(inbox.messages, 3);
    }
}

/// A delivery that passed the early quota check but finds the quota used up at commit (another
/// one committed meanwhile) stores nothing: usage, UIDNEXT and the retry record stay as they
/// were, so the same delivery once there is room again is stored as new, with the next UID.
async fn delivery_over_quota_at_commit_stores_nothing(b: &Backend) {
    let u = b.user_with_quota("dquota", None, Some(1)).await;
    let digest = [9u8; 32];
    let first = DeliveryId::new("a@example.org", "dquota@example.org", &digest);
    let second = DeliveryId::new("b@example.org", "dquota@example.org", &digest);
    let mut w1 = ok(u.append_stream("INBOX").await);
    let mut w2 = ok(u.append_stream("INBOX").await);
    w1.set_delivery(first);
    w2.set_delivery(second);
    ok(w1.write(b"Subject: one\r\n\r\none\r\n").await);
    ok(w2.write(b"Subject: two\r\n\r\ntwo\r\n").await);
    assert_eq!(
        ok(w1.commit(SystemFlags::EMPTY, Vec::new(), None).await).uid,
        1
    );
    let quota = ok(u.quota().await);
    assert_eq!(quota.messages_used, 1);
    let r = w2.commit(SystemFlags::EMPTY, Vec::new(), None).await;
    assert!(matches!(r, Err(StorageError::OverQuota)), "{r:?}");
    assert_eq!(ok(u.quota().await), quota);
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.messages, st.uidnext), (1, 2));
    // Room again: the refused delivery was not recorded, so it is stored now, as UID 2.
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(
        v.store(&[1], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    assert_eq!(ok(u.quota().await).messages_used, 0);
    let (_, uid) = deliver(&*u, "INBOX", second, "two").await;
    assert_eq!(uid, 2);
    let q = ok(u.quota().await);
    assert_eq!(q.messages_used, 1);
}

/// A MULTIAPPEND batch holding the same bytes twice (and keywords on some messages): two
/// messages, both readable, each with its own keywords; expunging one leaves the other whole.
async fn batch_with_the_same_content_twice(b: &Backend) {
    let u = b.user("twice").await;
    let batch = vec![
        pending(&*u, "INBOX", "same", &["$A"]).await,
        pending(&*u, "INBOX", "other", &[]).await,
        pending(&*u, "INBOX", "same", &["$B", "$a"]).await,
    ];
    let r = ok(u.commit_many(batch).await);
    assert_eq!(r.uids, vec![1, 2, 3]);
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    for (uid, body) in [(1, "same"), (2, "other"), (3, "same")] {
        assert_eq!(ok(read_message(&v, uid).await), msg(body).data.to_vec());
    }
    let kws: Vec<Vec<String>> = v
        .messages()
        .iter()
        .map(|m| {
            let mut k: Vec<String> = v
                .keyword_names(&m.flags.keywords)
                .into_iter()
                .map(str::to_owned)
                .collect();
            k.sort();
            k
        })
        .collect();
    // Keywords compare case-insensitively: `$a` is the `$A` the batch made first.
    assert_eq!(kws, [vec!["$A"], vec![], vec!["$A", "$B"]]);
    ok(
        v.store(&[1], store(StoreOp::Add, SystemFlags::DELETED, &[]))
            .await,
    );
    ok(v.expunge(None).await);
    assert_eq!(ok(read_message(&v, 3).await), msg("same").data.to_vec());
    assert_eq!(
        ok(u.quota().await).bytes_used,
        (msg("same").data.len() + msg("other").data.len()) as u64
    );
}

fn imported(
    uid: u32,
    body: &str,
    flags: SystemFlags,
    keywords: &[&str],
    date: i64,
) -> ImportMessage {
    ImportMessage {
        uid,
        data: Bytes::from(format!("Subject: {body}\r\n\r\n{body}\r\n")),
        flags,
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        internal_date: date,
    }
}

/// Migration's import path (`mailcove migrate`): a mailbox made with a given UIDVALIDITY and
/// UIDNEXT, messages stored under their own UIDs with flags, keywords and INTERNALDATE, and the
/// UID rules that keep clients' caches valid: UIDs only ascend, UIDNEXT never goes back, and a
/// mailbox with messages never changes its UIDVALIDITY.
async fn import_keeps_uids_and_uidvalidity(b: &Backend) {
    let u = b.user("imp").await;
    ok(u.import_mailbox("Old", 1234, 5, Some(SpecialUse::Archive))
        .await);
    let st = ok(u.status("Old").await);
    assert_eq!((st.uidvalidity, st.uidnext, st.messages), (1234, 5, 0));
    let listed = ok(u.list().await);
    let old = listed.iter().find(|m| m.name == "Old");
    assert_eq!(old.and_then(|m| m.special_use), Some(SpecialUse::Archive));

    let seen_flagged = SystemFlags::SEEN.union(SystemFlags::FLAGGED);
    ok(u.import_messages(
        "Old",
        vec![
            imported(5, "five", seen_flagged, &["$Forwarded"], 1_000_000_000),
            imported(
                9,
                "nine",
                SystemFlags::DRAFT,
                &["Work", "$Junk"],
                1_100_000_000,
            ),
        ],
    )
    .await);
    let st = ok(u.status("Old").await);
    assert_eq!((st.uidvalidity, st.uidnext, st.messages), (1234, 10, 2));
    let mut view = ok(u.open("Old", OpenOptions::EXAMINE).await);
    assert_eq!(uids(&view), vec![5, 9]);
    let flags: Vec<(SystemFlags, Vec<String>)> = view
        .messages()
        .iter()
        .map(|m| {
            let mut k: Vec<String> = view
                .keyword_names(&m.flags.keywords)
                .into_iter()
                .map(str::to_owned)
                .collect();
            k.sort();
            (m.flags.system, k)
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (seen_flagged, vec!["$Forwarded".to_owned()]),
            (
                SystemFlags::DRAFT,
                vec!["$Junk".to_owned(), "Work".to_owned()]
            ),
        ]
    );
    let dates = ok(view.internal_dates(&[5, 9]).await);
    assert_eq!(
        (dates.get(5), dates.get(9)),
        (Some(1_000_000_000), Some(1_100_000_000))
    );
    assert_eq!(
        ok(read_message(&view, 9).await),
        b"Subject: nine\r\n\r\nnine\r\n".to_vec()
    );
    assert_eq!(ok(u.quota().await).messages_used, 2);

    // A UID not above every UID the mailbox had is refused, and nothing of the batch is stored.
    for batch in [
        vec![imported(9, "again", SystemFlags::EMPTY, &[], 1)],
        vec![imported(7, "below", SystemFlags::EMPTY, &[], 1)],
        vec![
            imported(12, "a", SystemFlags::EMPTY, &[], 1),
            imported(11, "b", SystemFlags::EMPTY, &[], 1),
        ],
    ] {
        match u.import_messages("Old", batch).await {
            Err(StorageError::Cannot(m)) => assert_eq!(m, IMPORT_UID_BELOW_UIDNEXT),
            other => panic!("import below UIDNEXT: {other:?}"),
        }
    }
    let st = ok(u.status("Old").await);
    assert_eq!((st.uidnext, st.messages), (10, 2));

    // The same UIDVALIDITY again raises UIDNEXT, never lowers it; APPEND then goes on from it.
    ok(u.import_mailbox("Old", 1234, 3, None).await);
    assert_eq!(ok(u.status("Old").await).uidnext, 10);
    ok(u.import_mailbox("Old", 1234, 20, None).await);
    assert_eq!(ok(u.status("Old").await).uidnext, 20);
    assert_eq!(append(&*u, "Old", "later").await, 20);
    ok(view.refresh().await);
    assert_eq!(uids(&view), vec![5, 9, 20]);

    // Another UIDVALIDITY is refused while the mailbox holds messages...
    match u.import_mailbox("Old", 999, 1, None).await {
        Err(StorageError::Cannot(m)) => assert_eq!(m, IMPORT_OTHER_UIDVALIDITY),
        other => panic!("UIDVALIDITY of a mailbox with messages changed: {other:?}"),
    }
    assert_eq!(ok(u.status("Old").await).uidvalidity, 1234);
    // ...and taken by an empty one (INBOX, made at login with a UIDVALIDITY of its own).
    ok(u.import_mailbox("INBOX", 4242, 7, None).await);
    let st = ok(u.status("INBOX").await);
    assert_eq!((st.uidvalidity, st.uidnext, st.messages), (4242, 7, 0));
    ok(
        u.import_messages("INBOX", vec![imported(7, "in", SystemFlags::SEEN, &[], 5)])
            .await,
    );
    let inbox = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!((inbox.uidvalidity(), uids(&inbox)), (4242, vec![7]));
    assert_eq!(ok(u.quota().await).messages_used, 4);
}

/// A message opened before another session expunges it can still be read whole, as a Maildir
/// file stays readable to whoever opened it: the IMAP layer has announced the literal's size
/// and must send that many bytes. The same content stored again meanwhile stays readable too.
async fn opened_messages_outlive_their_expunge(b: &Backend) {
    let u = b.user("outlive").await;
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(3 << 20));
    let small = "Subject: small\r\n\r\nsmall body\r\n".to_owned();
    for data in [&big, &small] {
        ok(u.append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(data.clone()),
                ..msg("")
            },
        )
        .await);
    }
    let reader = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    // Opened with no head read: everything is read after the expunge.
    let opened_big = ok(reader.open_message(1, 0).await);
    let opened_small = ok(reader.open_message(2, 0).await);
    let mut other = ok(u.open("INBOX", OpenOptions::SELECT).await);
    ok(other
        .store(&[1, 2], store(StoreOp::Add, SystemFlags::DELETED, &[]))
        .await);
    ok(other.expunge(None).await);
    assert_eq!(ok(u.status("INBOX").await).messages, 0);
    assert_eq!(ok(opened_big.read_all().await), big.as_bytes());
    assert_eq!(ok(opened_small.read_all().await), small.as_bytes());
    // Stored again after its release: a new message with the same bytes, read back whole.
    let again = ok(u
        .append(
            "INBOX",
            AppendMessage {
                data: Bytes::from(small.clone()),
                ..msg("")
            },
        )
        .await)
    .uid;
    let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(ok(read_message(&v, again).await), small.as_bytes());
    // A new open of an expunged message is refused.
    assert!(matches!(
        reader.open_message(1, 0).await,
        Err(StorageError::Expunged)
    ));
}

macro_rules! with_cases {
    ($suite:ident ! ($($args:tt)*)) => {
        $suite!($($args)*, [
            uid_and_uidvalidity_rules,
            flags_and_keywords,
            expunge_semantics,
            copy_and_move_semantics,
            concurrent_sessions,
            append_from_empty_to_50_mb,
            ranged_reads_of_a_large_message,
            quota_accounting,
            status_deleted_counts,
            quota_recalc_matches_incremental_usage,
            errors_leave_nothing_half_done,
            commit_many_all_or_none,
            mailbox_tree,
            pop3_lock_and_expiry,
            structure_cache,
            message_content,
            modseqs_strictly_increase,
            vanished_window,
            vanished_seen_from_another_view,
            object_ids_and_save_dates,
            index_rebuild_keeps_the_mailbox,
            metadata_set_get_and_remove,
            metadata_follows_rename_and_goes_with_delete,
            metadata_limits,
            change_feed,
            full_text_index_per_user,
            lmtp_deliveries_stored_once,
            delivery_over_quota_at_commit_stores_nothing,
            batch_with_the_same_content_twice,
            opened_messages_outlive_their_expunge,
            import_keeps_uids_and_uidvalidity,
        ]);
    };
}

/// A module `$name` with one test per case, each on a fresh backend from `$make`.
macro_rules! backend_suite {
    ($name:ident, $make:expr, [$($case:ident),* $(,)?]) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend: super::Backend = $make;
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

with_cases!(backend_suite!(maildir, super::Backend::maildir()));
with_cases!(backend_suite!(memory, super::Backend::memory()));
with_cases!(backend_suite!(postgres, super::Backend::postgres().await));
