//! Many tasks (and a second storage instance, standing in for another
//! process) appending, storing and expunging on one mailbox while others
//! read: UIDs stay unique and ascending, nothing appended is lost, and every
//! view's deltas replay exactly into its new picture.

#[path = "storage_common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use mailcove::storage::{
    AppendMessage, OpenOptions, StorageError, StoreOp, StoreRequest, SystemFlags, UserStore,
};

const APPENDERS: usize = 6;
const PER_APPENDER: usize = 30;

fn tagged(tag: &str) -> AppendMessage {
    AppendMessage {
        data: Bytes::from(format!("Subject: {tag}\nX-Tag: {tag}\n\nbody of {tag}\n")),
        ..AppendMessage::default()
    }
}

async fn read_tag(view: &mailcove::storage::View, uid: u32) -> Result<String, StorageError> {
    let f = view.open_message(uid, 0).await?;
    let s = String::from_utf8(f.read_all().await?)
        .map_err(|e| StorageError::Temporary(e.to_string()))?;
    let tag = s
        .lines()
        .find_map(|l| l.strip_prefix("X-Tag: "))
        .unwrap_or_default()
        .to_owned();
    Ok(tag)
}

async fn appender(u: Arc<dyn UserStore>, id: usize) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for i in 0..PER_APPENDER {
        let tag = if i % 3 == 0 {
            format!("del-{id}-{i}")
        } else {
            format!("keep-{id}-{i}")
        };
        let r = ok(u.append("INBOX", tagged(&tag)).await);
        if let Some((last, _)) = out.last() {
            assert!(r.uid > *last, "UIDs of one writer must ascend");
        }
        out.push((r.uid, tag));
        tokio::task::yield_now().await;
    }
    out
}

/// Deletes messages tagged `del-` and expunges, over and over.
async fn deleter(u: Arc<dyn UserStore>, rounds: usize) {
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    for _ in 0..rounds {
        ok(v.refresh().await);
        let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        let mut doomed = Vec::new();
        for uid in uids {
            match read_tag(&v, uid).await {
                Ok(tag) if tag.starts_with("del-") => doomed.push(uid),
                Ok(_) | Err(StorageError::Expunged) => {}
                Err(e) => panic!("read during deletes: {e}"),
            }
        }
        let req = StoreRequest {
            op: StoreOp::Add,
            flags: SystemFlags::DELETED,
            keywords: vec![],
            unchanged_since: None,
        };
        ok(v.store(&doomed, req).await);
        ok(v.expunge(None).await);
        tokio::task::yield_now().await;
    }
}

/// Sets \Seen and a keyword on everything it sees.
async fn flagger(u: Arc<dyn UserStore>, rounds: usize) {
    let mut v = ok(u.open("INBOX", OpenOptions::SELECT).await);
    for r in 0..rounds {
        ok(v.refresh().await);
        let uids: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        let req = StoreRequest {
            op: if r % 2 == 0 {
                StoreOp::Add
            } else {
                StoreOp::Remove
            },
            flags: SystemFlags::SEEN,
            keywords: vec!["Busy".into()],
            unchanged_since: None,
        };
        ok(v.store(&uids, req).await);
        tokio::task::yield_now().await;
    }
}

/// Replays every delta into its own model and checks it against the view.
async fn reader(u: Arc<dyn UserStore>, rounds: usize) {
    let mut v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let mut model: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    for _ in 0..rounds {
        let d = ok(v.refresh().await);
        for seq in &d.expunged {
            let i = (*seq as usize)
                .checked_sub(1)
                .unwrap_or_else(|| panic!("seq 0"));
            assert!(i < model.len(), "EXPUNGE {seq} beyond {}", model.len());
            model.remove(i);
        }
        let now: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
        assert!(now.windows(2).all(|w| w[0] < w[1]), "UIDs not ascending");
        assert_eq!(&now[..model.len()], &model[..], "expunges did not replay");
        match d.exists {
            Some(n) => assert_eq!(n as usize, now.len()),
            None => assert_eq!(model.len(), now.len(), "new messages without EXISTS"),
        }
        for seq in &d.flag_changes {
            assert!((*seq as usize) <= now.len());
        }
        model = now;
        // Whatever the view lists can be read, or is reported expunged.
        if let Some(uid) = model.last().copied() {
            match read_tag(&v, uid).await {
                Ok(tag) => assert!(!tag.is_empty()),
                Err(StorageError::Expunged) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let other = storage(tmp.path());
    let u = login(&st, "alice").await;
    let u_other = login(&other, "alice").await;

    let mut appenders = Vec::new();
    for id in 0..APPENDERS {
        let who = if id % 2 == 0 {
            u.clone()
        } else {
            u_other.clone()
        };
        appenders.push(tokio::spawn(appender(who, id)));
    }
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(tokio::spawn(reader(u.clone(), 40)));
    }
    others.push(tokio::spawn(reader(u_other.clone(), 40)));
    others.push(tokio::spawn(flagger(u.clone(), 15)));
    others.push(tokio::spawn(flagger(u_other.clone(), 15)));
    others.push(tokio::spawn(deleter(u.clone(), 8)));

    let mut appended: BTreeMap<u32, String> = BTreeMap::new();
    for h in appenders {
        for (uid, tag) in h.await.unwrap_or_else(|e| panic!("appender: {e}")) {
            assert!(appended.insert(uid, tag).is_none(), "UID {uid} given twice");
        }
    }
    for h in others {
        if let Err(e) = h.await {
            panic!("task failed: {e}");
        }
    }
    assert_eq!(appended.len(), APPENDERS * PER_APPENDER);

    // Final cleanup pass, then exactly the kept messages must remain.
    deleter(u.clone(), 1).await;
    let v = ok(u.open("INBOX", OpenOptions::EXAMINE).await);
    let want: Vec<u32> = appended
        .iter()
        .filter(|(_, t)| t.starts_with("keep-"))
        .map(|(u, _)| *u)
        .collect();
    let have: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    assert_eq!(have, want, "lost or extra messages");
    let mut tags = HashSet::new();
    for uid in &have {
        let tag = read_tag(&v, *uid).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(&tag),
            appended.get(uid),
            "UID {uid} has the wrong content"
        );
        assert!(tags.insert(tag));
    }
    // The other instance agrees.
    let v2 = ok(u_other.open("INBOX", OpenOptions::EXAMINE).await);
    let have2: Vec<u32> = v2.messages().iter().map(|m| m.uid).collect();
    assert_eq!(have2, want);
    let s = ok(u.status("INBOX").await);
    assert_eq!(s.messages as usize, want.len());
    assert!(s.uidnext as usize > appended.len());
}
