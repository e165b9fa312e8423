//! Keywords past the 26 Maildir file-name letters through the storage API: APPEND and COPY
//! carry them, another instance follows them through the log, and they survive the log's
//! compaction into a base (written as version 2 only while some message has them).

#[path = "storage_common/mod.rs"]
mod common;

use common::*;
use mailcove::storage::maildir::MaildirStorage;
use mailcove::storage::{AppendMessage, OpenOptions, StoreOp, StoreRequest, SystemFlags, View};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i}")).collect()
}

fn store(op: StoreOp, keywords: &[String]) -> StoreRequest {
    StoreRequest {
        op,
        flags: SystemFlags::EMPTY,
        keywords: keywords.to_vec(),
        unchanged_since: None,
    }
}

/// Keyword names of `uid` in `v`, sorted.
fn keywords_of(v: &View, uid: u32) -> Vec<String> {
    let m = v
        .seq_of(uid)
        .and_then(|s| v.get(s))
        .unwrap_or_else(|| panic!("uid {uid} missing"));
    let mut k: Vec<String> = v
        .keyword_names(&m.flags.keywords)
        .into_iter()
        .map(str::to_owned)
        .collect();
    k.sort();
    k
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn keywords_past_the_letters_follow_appends_copies_instances_and_compaction() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.fsync = false; // a thousand log records to force a compaction
    let a = MaildirStorage::new(o.clone()).unwrap_or_else(|e| panic!("{e}"));
    let b = MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let ua = login(&a, "kim").await;
    let ub = login(&b, "kim").await;
    let all = names(60);
    // APPEND with 40 keywords: 26 become letters, 14 go to the index.
    let r = ok(ua
        .append(
            "INBOX",
            AppendMessage {
                keywords: all[..40].to_vec(),
                ..msg("first")
            },
        )
        .await);
    let second = append(&*ua, "INBOX", "second").await;
    let mut va = ok(ua.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(keywords_of(&va, r.uid), sorted(all[..40].to_vec()));
    assert!(va.can_create_keywords());
    // The other instance reads the same from the log.
    let mut vb = ok(ub.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(keywords_of(&vb, r.uid), sorted(all[..40].to_vec()));

    // STORE of keywords that exist only past the letters, then a change it must notice.
    ok(va.store(&[second], store(StoreOp::Add, &all[50..60])).await);
    assert_eq!(keywords_of(&va, second), sorted(all[50..60].to_vec()));
    let d = ok(vb.refresh().await);
    assert!(d.keywords_changed, "{d:?}");
    assert_eq!(d.flag_changes, vec![2], "{d:?}");
    assert_eq!(keywords_of(&vb, second), sorted(all[50..60].to_vec()));

    // COPY carries them into a mailbox with its own table.
    ok(ua.create("Archive", None).await);
    let c = ok(va.copy(&[r.uid, second], "Archive").await);
    let arch = ok(ua.open("Archive", OpenOptions::EXAMINE).await);
    let (from_first, from_second) = (c.mapping[0].1, c.mapping[1].1);
    assert_eq!(keywords_of(&arch, from_first), sorted(all[..40].to_vec()));
    assert_eq!(
        keywords_of(&arch, from_second),
        sorted(all[50..60].to_vec())
    );

    // Enough records to fold the log into a new base (INDEX_LOG_COMPACT_MIN is 1000).
    let dir = root(tmp.path(), "kim");
    let base = dir.join("mailcove-index");
    for i in 0..1100 {
        let op = if i % 2 == 0 {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        let req = StoreRequest {
            op,
            flags: SystemFlags::FLAGGED,
            keywords: Vec::new(),
            unchanged_since: None,
        };
        ok(va.store(&[r.uid], req).await);
    }
    let text = std::fs::read_to_string(&base).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.starts_with("mailcove-index 2 "), "{}", &text[..60]);
    // k50.. were the 41st.. keywords created: indexes 40..50.
    assert!(text.contains(&format!("\nK {second} 40-49\n")), "{text}");
    // A new instance loads the base.
    let c2 = MaildirStorage::new(options(tmp.path())).unwrap_or_else(|e| panic!("{e}"));
    let uc = login(&c2, "kim").await;
    let vc = ok(uc.open("INBOX", OpenOptions::EXAMINE).await);
    assert_eq!(keywords_of(&vc, r.uid), sorted(all[..40].to_vec()));
    assert_eq!(keywords_of(&vc, second), sorted(all[50..60].to_vec()));
    ok(vb.refresh().await);
    assert_eq!(keywords_of(&vb, second), sorted(all[50..60].to_vec()));

    // Once no message has any, the next base is version 1 again.
    ok(va
        .store(&[r.uid], store(StoreOp::Remove, &all[26..40]))
        .await);
    ok(va.store(&[second], store(StoreOp::Remove, &all)).await);
    assert_eq!(keywords_of(&va, second), Vec::<String>::new());
    assert_eq!(keywords_of(&va, r.uid), sorted(all[..26].to_vec()));
    for i in 0..1100 {
        let op = if i % 2 == 0 {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        let req = StoreRequest {
            op,
            flags: SystemFlags::SEEN,
            keywords: Vec::new(),
            unchanged_since: None,
        };
        ok(va.store(&[second], req).await);
    }
    let text = std::fs::read_to_string(&base).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.starts_with("mailcove-index 1 "), "{}", &text[..60]);
    ok(vb.refresh().await);
    assert_eq!(keywords_of(&vb, r.uid), sorted(all[..26].to_vec()));
    assert_eq!(keywords_of(&vb, second), Vec::<String>::new());
}

/// New keywords past the letters are appended to `mailcove-keywords` (one STORE's new names in
/// one write, not the whole table again); a torn last line, as a crash mid-append leaves it, is
/// not read as a keyword, and the next new keyword writes the whole file again without it.
#[tokio::test]
async fn new_keywords_past_the_letters_are_appended_and_a_torn_tail_is_ignored() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = storage(tmp.path());
    let ua = login(&a, "ann").await;
    let uid = append(&*ua, "INBOX", "one").await;
    let mut va = ok(ua.open("INBOX", OpenOptions::SELECT).await);
    let all = names(40);
    ok(va.store(&[uid], store(StoreOp::Add, &all[..30])).await);
    let file = root(tmp.path(), "ann").join("mailcove-keywords");
    let read = || std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    let inode = || std::fs::metadata(&file).map_or(0, |m| m.ino());
    assert_eq!(read(), "26 k26\n27 k27\n28 k28\n29 k29\n");
    let first = inode();
    // One STORE creating two: both appended, the file is the same file.
    ok(va.store(&[uid], store(StoreOp::Add, &all[30..32])).await);
    assert_eq!(read(), "26 k26\n27 k27\n28 k28\n29 k29\n30 k30\n31 k31\n");
    assert_eq!(inode(), first, "appended, not replaced");

    // A crash in the middle of appending "32 Important\n".
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap_or_else(|e| panic!("{e}"));
    std::io::Write::write_all(&mut f, b"32 Impor").unwrap_or_else(|e| panic!("{e}"));
    drop(f);
    let b = storage(tmp.path());
    let ub = login(&b, "ann").await;
    let mut vb = ok(ub.open("INBOX", OpenOptions::SELECT).await);
    assert_eq!(vb.keywords().to_vec(), all[..32].to_vec());
    assert_eq!(keywords_of(&vb, uid), sorted(all[..32].to_vec()));
    let important = vec!["Important".to_owned()];
    ok(vb.store(&[uid], store(StoreOp::Add, &important)).await);
    let mut want: String = (26..32).map(|i| format!("{i} k{i}\n")).collect();
    want.push_str("32 Important\n");
    assert_eq!(read(), want, "rewritten whole, without the torn line");
    // The first instance and a new one both see it.
    ok(va.refresh().await);
    let mut expect = all[..32].to_vec();
    expect.push("Important".to_owned());
    assert_eq!(keywords_of(&va, uid), sorted(expect.clone()));
    let c = storage(tmp.path());
    let vc = ok(login(&c, "ann")
        .await
        .open("INBOX", OpenOptions::EXAMINE)
        .await);
    assert_eq!(vc.keywords().to_vec(), expect);
    assert_eq!(keywords_of(&vc, uid), sorted(expect));
}
