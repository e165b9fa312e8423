//! A Maildir written by Dovecot opens as it is: same UIDVALIDITY, UIDs,
//! flags and keywords, folders and subscriptions.

#[path = "storage_common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use mailcove::storage::{OpenOptions, SystemFlags, View};

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

fn flags_of(v: &View, uid: u32) -> (SystemFlags, Vec<String>) {
    let seq = v.seq_of(uid).unwrap_or_else(|| panic!("uid {uid} missing"));
    let m = v
        .get(seq)
        .cloned()
        .unwrap_or_else(|| panic!("seq {seq} missing"));
    let kws = v
        .keyword_names(&m.flags.keywords)
        .into_iter()
        .map(str::to_owned)
        .collect();
    (m.flags.system, kws)
}

fn check_inbox(v: &View) {
    assert_eq!(v.uidvalidity(), 1_700_000_000);
    let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    assert_eq!(
        uids,
        vec![1, 2, 5, 7, 8],
        "Dovecot's UIDs kept, the unseen new/ file gets N"
    );
    assert_eq!(v.uidnext(), 9);
    assert_eq!(
        v.keywords().iter().map(String::as_str).collect::<Vec<_>>(),
        vec!["$Forwarded", "$Junk", "Work"]
    );
    assert_eq!(flags_of(v, 1), (SystemFlags::SEEN, vec![]));
    let fas = SystemFlags::FLAGGED
        .union(SystemFlags::ANSWERED)
        .union(SystemFlags::SEEN);
    assert_eq!(flags_of(v, 2), (fas, vec!["$Forwarded".to_owned()]));
    assert_eq!(
        flags_of(v, 5),
        (SystemFlags::DELETED, vec!["Work".to_owned()])
    );
    assert_eq!(flags_of(v, 7), (SystemFlags::EMPTY, vec![]));
    let m2 = v.get(2).cloned().unwrap_or_else(|| panic!("no seq 2"));
    assert_eq!((m2.phys_size, m2.virt_size), (110, 110));
    let m7 = v.get(4).cloned().unwrap_or_else(|| panic!("no seq 4"));
    assert_eq!((m7.phys_size, m7.virt_size), (106, 114));
}

#[tokio::test]
async fn dovecot_maildir_opens_with_same_uids_flags_keywords() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path().join("migrated");
    copy_tree(Path::new(FIXTURE), &root);
    let uidlist_before = std::fs::read(root.join("dovecot-uidlist")).unwrap_or_default();
    let mut o = options(tmp.path());
    o.location = format!("{}/%n", tmp.path().display());
    let st = mailcove::storage::maildir::MaildirStorage::new(o.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "migrated").await;

    let inbox = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    check_inbox(&inbox);
    let on_disk =
        std::fs::read(root.join("cur/1699990002.M2P4242.mail.example.org,S=110,W=110:2,FRSa"))
            .unwrap_or_default();
    assert_eq!(read_all(&inbox, 2).await, on_disk);

    let sent = ok(u.open("Sent", OpenOptions::EXAMINE).await);
    assert_eq!(sent.uidvalidity(), 1_700_000_001);
    assert_eq!(
        sent.messages().iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        flags_of(&sent, 2).0,
        SystemFlags::ANSWERED.union(SystemFlags::SEEN)
    );
    let proj = ok(u.open("Work/Projects", OpenOptions::EXAMINE).await);
    assert_eq!(proj.uidvalidity(), 1_700_000_002);
    assert_eq!(flags_of(&proj, 1).1, vec!["Urgent".to_owned()]);
    let drafts = ok(u.status("Entw\u{fc}rfe").await);
    assert_eq!(
        (drafts.uidvalidity, drafts.messages, drafts.uidnext),
        (1_700_000_003, 0, 1)
    );

    let list = ok(u.list().await);
    let names: Vec<(&str, bool, bool)> = list
        .iter()
        .map(|m| (m.name.as_str(), m.noselect, m.subscribed))
        .collect();
    assert_eq!(
        names,
        vec![
            ("INBOX", false, false),
            ("Entw\u{fc}rfe", false, true),
            ("Sent", false, true),
            ("Work", true, false),
            ("Work/Projects", false, true),
        ]
    );
    // Dovecot's own files are left as they were.
    assert_eq!(
        std::fs::read(root.join("dovecot-uidlist")).unwrap_or_default(),
        uidlist_before
    );
    drop((inbox, sent, proj, u, st));

    // A restart reads our index and sees the same mailbox.
    let st = mailcove::storage::maildir::MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "migrated").await;
    let inbox = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    check_inbox(&inbox);
}

#[tokio::test]
async fn a_damaged_index_never_readopts_a_stale_uidlist() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path().join("again");
    copy_tree(Path::new(FIXTURE), &root);
    let mut o = options(tmp.path());
    o.location = format!("{}/%n", tmp.path().display());
    {
        let st = mailcove::storage::maildir::MaildirStorage::new(o.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let u = login(&st, "again").await;
        // UID 9 is given after adoption; Dovecot's uidlist knows nothing of it.
        assert_eq!(append(&*u, "INBOX", "after migration").await, 9);
    }
    let base = root.join("mailcove-index");
    let mut data = std::fs::read(&base).unwrap_or_default();
    if let Some(b) = data.get_mut(50) {
        *b ^= 0x20;
    }
    assert!(std::fs::write(&base, &data).is_ok());
    let st = mailcove::storage::maildir::MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "again").await;
    let s = ok(u.status("INBOX").await);
    assert_eq!(s.messages, 6, "every message is still there");
    assert_ne!(
        s.uidvalidity, 1_700_000_000,
        "UIDs may have been reused: the UIDVALIDITY must change"
    );
}
