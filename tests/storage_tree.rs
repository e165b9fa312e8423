//! Mailbox tree operations through the public storage API: create, list,
//! delete, rename (children, INBOX), subscriptions, special-use, invalid names.

#[path = "storage_common/mod.rs"]
mod common;

use common::*;
use mailcove::storage::{MailboxInfo, OpenOptions, SpecialUse, StorageError};

fn find<'a>(list: &'a [MailboxInfo], name: &str) -> Option<&'a MailboxInfo> {
    list.iter().find(|m| m.name == name)
}

#[tokio::test]
async fn create_and_list_with_implicit_parents() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "alice@example.org").await;
    let root = root(tmp.path(), "alice@example.org");

    ok(u.create("Sent", Some(SpecialUse::Sent)).await);
    ok(u.create("Work/Projects/2024/", None).await);
    ok(u.create("Entw\u{fc}rfe", Some(SpecialUse::Drafts)).await);
    ok(u.create("INBOX/Sub", None).await);

    let names = list_names(&root);
    for d in [
        ".Sent",
        ".Work.Projects.2024",
        ".Entw&APw-rfe",
        ".INBOX.Sub",
    ] {
        assert!(names.contains(&d.to_owned()), "{d} missing in {names:?}");
    }
    assert!(
        !names.contains(&".Work".to_owned()),
        "parents stay implicit on disk"
    );

    let list = ok(u.list().await);
    assert_eq!(list.first().map(|m| m.name.as_str()), Some("INBOX"));
    let inbox = find(&list, "INBOX").unwrap_or_else(|| panic!("no INBOX"));
    assert!(!inbox.noselect && inbox.has_children);
    let work = find(&list, "Work").unwrap_or_else(|| panic!("no Work"));
    assert!(work.noselect && work.has_children);
    let proj = find(&list, "Work/Projects").unwrap_or_else(|| panic!("no Work/Projects"));
    assert!(proj.noselect && proj.has_children);
    let leaf = find(&list, "Work/Projects/2024").unwrap_or_else(|| panic!("no leaf"));
    assert!(!leaf.noselect && !leaf.has_children);
    assert_eq!(
        find(&list, "Sent").and_then(|m| m.special_use),
        Some(SpecialUse::Sent)
    );
    assert_eq!(
        find(&list, "Entw\u{fc}rfe").and_then(|m| m.special_use),
        Some(SpecialUse::Drafts)
    );

    assert!(matches!(
        u.create("Sent", None).await,
        Err(StorageError::AlreadyExists)
    ));
    assert!(matches!(
        u.create("inbox", None).await,
        Err(StorageError::AlreadyExists)
    ));
    // A \Noselect implicit parent can be created for real.
    ok(u.create("Work", None).await);
    let list = ok(u.list().await);
    assert!(find(&list, "Work").is_some_and(|m| !m.noselect && m.has_children));

    // A folder whose disk name is not valid modified UTF-7 is not listed.
    assert!(std::fs::create_dir_all(root.join(".&AGE-").join("cur")).is_ok());
    assert!(std::fs::create_dir_all(root.join(".caf\u{e9}").join("cur")).is_ok());
    let list = ok(u.list().await);
    assert_eq!(list.len(), 7, "invalid folders must be ignored: {list:?}");
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "bob").await;
    let long = "x".repeat(256);
    let deep = vec!["a"; 40].join("/");
    for bad in [
        "",
        "..",
        "a/../b",
        "/a",
        "a//b",
        "a\0b",
        "a\tb",
        "a\u{7f}",
        "a.b",
        ".hidden",
        long.as_str(),
        deep.as_str(),
        "a/.",
        "\u{85}x",
    ] {
        let r = u.create(bad, None).await;
        assert!(
            matches!(r, Err(StorageError::InvalidName(_))),
            "{bad:?}: {r:?}"
        );
    }
    // A name whose modified UTF-7 form exceeds 255 bytes on disk.
    let wide = "\u{65e5}".repeat(100);
    assert!(matches!(
        u.create(&wide, None).await,
        Err(StorageError::InvalidName(_))
    ));
    assert!(matches!(
        u.open("..", OpenOptions::SELECT).await,
        Err(StorageError::InvalidName(_))
    ));
    assert!(matches!(
        u.rename("a", "../x").await,
        Err(StorageError::InvalidName(_))
    ));
    // Nothing escaped the user's directory.
    assert_eq!(list_names(tmp.path()), vec!["bob".to_owned()]);
}

#[tokio::test]
async fn delete_rules() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "carol").await;
    assert!(matches!(
        u.delete("INBOX").await,
        Err(StorageError::Cannot(_))
    ));
    assert!(matches!(
        u.delete("nope").await,
        Err(StorageError::NonExistent)
    ));
    ok(u.create("P", Some(SpecialUse::Trash)).await);
    ok(u.create("P/C", None).await);
    append(&*u, "P", "in P").await;
    ok(u.delete("P").await);
    let list = ok(u.list().await);
    let p = find(&list, "P").unwrap_or_else(|| panic!("P vanished"));
    assert!(p.noselect && p.has_children && p.special_use.is_none());
    assert!(matches!(u.delete("P").await, Err(StorageError::Cannot(_))));
    assert!(matches!(
        u.status("P").await,
        Err(StorageError::NonExistent)
    ));
    ok(u.delete("P/C").await);
    assert!(find(&ok(u.list().await), "P").is_none());
    // Recreated mailbox gets a new UIDVALIDITY.
    ok(u.create("Q", None).await);
    let v1 = ok(u.status("Q").await).uidvalidity;
    ok(u.delete("Q").await);
    ok(u.create("Q", None).await);
    let v2 = ok(u.status("Q").await).uidvalidity;
    assert!(v2 > v1);
}

#[tokio::test]
async fn rename_moves_children() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "dave").await;
    ok(u.create("A", Some(SpecialUse::Archive)).await);
    ok(u.create("A/B", None).await);
    ok(u.create("A/B/C", None).await);
    ok(u.create("Other", None).await);
    append(&*u, "A/B", "hello").await;
    let before = ok(u.status("A/B").await);

    assert!(matches!(
        u.rename("A", "Other").await,
        Err(StorageError::AlreadyExists)
    ));
    assert!(matches!(
        u.rename("A", "A/B/X").await,
        Err(StorageError::Cannot(_))
    ));
    assert!(matches!(
        u.rename("Nope", "Z").await,
        Err(StorageError::NonExistent)
    ));
    assert!(matches!(
        u.rename("A", "INBOX").await,
        Err(StorageError::AlreadyExists)
    ));

    ok(u.rename("A", "Z/Y").await);
    let list = ok(u.list().await);
    for gone in ["A", "A/B", "A/B/C"] {
        assert!(find(&list, gone).is_none(), "{gone} still listed");
    }
    for there in ["Z/Y", "Z/Y/B", "Z/Y/B/C"] {
        assert!(
            find(&list, there).is_some_and(|m| !m.noselect),
            "{there} missing"
        );
    }
    assert!(find(&list, "Z").is_some_and(|m| m.noselect));
    assert_eq!(
        find(&list, "Z/Y").and_then(|m| m.special_use),
        Some(SpecialUse::Archive)
    );
    let after = ok(u.status("Z/Y/B").await);
    assert_eq!(after.messages, 1);
    assert_eq!(
        after.uidvalidity, before.uidvalidity,
        "a rename keeps UIDs valid"
    );
}

#[tokio::test]
async fn rename_inbox_moves_messages_only() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "erin").await;
    ok(u.create("INBOX/Keep", None).await);
    let mut bodies = Vec::new();
    for i in 0..3 {
        let body = format!("message {i}");
        append(&*u, "INBOX", &body).await;
        bodies.push(body);
    }
    append(&*u, "INBOX/Keep", "child").await;
    ok(u.rename("INBOX", "Old").await);
    assert_eq!(ok(u.status("INBOX").await).messages, 0);
    assert_eq!(ok(u.status("INBOX/Keep").await).messages, 1);
    let old = ok(u.open("Old", OpenOptions::EXAMINE).await);
    assert_eq!(old.len(), 3);
    for (seq, body) in (1..=3).zip(&bodies) {
        let uid = old.get(seq).map(|m| m.uid).unwrap_or(0);
        let data = read_all(&old, uid).await;
        assert!(String::from_utf8_lossy(&data).contains(body.as_str()));
    }
    assert!(matches!(
        u.rename("INBOX", "Old").await,
        Err(StorageError::AlreadyExists)
    ));
}

#[tokio::test]
async fn subscriptions_in_dovecot_format() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "frank").await;
    ok(u.create("Lists/Rust", None).await);
    ok(u.subscribe("Lists/Rust").await);
    ok(u.subscribe("INBOX").await);
    ok(u.subscribe("Gone").await);
    ok(u.subscribe("Gone").await);
    let subs = ok(u.subscriptions().await);
    assert_eq!(subs, vec!["Lists/Rust", "INBOX", "Gone"]);
    let file = std::fs::read_to_string(root(tmp.path(), "frank").join("subscriptions"))
        .unwrap_or_default();
    assert_eq!(file, "V\t2\n\nLists\tRust\nINBOX\nGone\n");
    let list = ok(u.list().await);
    assert!(find(&list, "Lists/Rust").is_some_and(|m| m.subscribed));
    assert!(find(&list, "Lists").is_some_and(|m| !m.subscribed));
    ok(u.unsubscribe("Gone").await);
    assert_eq!(ok(u.subscriptions().await), vec!["Lists/Rust", "INBOX"]);
    assert!(matches!(
        u.subscribe("a//b").await,
        Err(StorageError::InvalidName(_))
    ));
}

#[tokio::test]
async fn autocreate_and_location_template() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.location = "~/Maildir".into();
    o.autocreate = vec![
        ("Sent".into(), Some(SpecialUse::Sent)),
        ("Trash".into(), Some(SpecialUse::Trash)),
    ];
    let st = mailcove::storage::maildir::MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let mut who = user("gina");
    who.home = Some(tmp.path().join("home/gina"));
    use mailcove::storage::Storage;
    let u = st.user(&who).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(tmp.path().join("home/gina/Maildir/.Sent/cur").is_dir());
    let list = ok(u.list().await);
    assert!(
        find(&list, "Trash")
            .is_some_and(|m| m.special_use == Some(SpecialUse::Trash) && m.subscribed)
    );
    // Users whose names would leave the tree are refused.
    let mut evil = user("../root");
    evil.home = Some(tmp.path().to_path_buf());
    assert!(st.user(&evil).await.is_err());
    assert!(st.user(&user("nohome")).await.is_err());
}

#[tokio::test]
async fn dot_as_wire_separator() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut o = options(tmp.path());
    o.separator = '.';
    let st = mailcove::storage::maildir::MaildirStorage::new(o).unwrap_or_else(|e| panic!("{e}"));
    let u = login(&st, "hal").await;
    assert_eq!(u.separator(), '.');
    ok(u.create("Lists.Rust", None).await);
    assert!(root(tmp.path(), "hal").join(".Lists.Rust/cur").is_dir());
    let list = ok(u.list().await);
    assert!(find(&list, "Lists").is_some_and(|m| m.noselect && m.has_children));
    assert!(find(&list, "Lists.Rust").is_some());
    assert!(matches!(
        u.create("a/b", None).await,
        Err(StorageError::InvalidName(_))
    ));
    // The default is '/'.
    let st = storage(tmp.path());
    assert_eq!(login(&st, "hal").await.separator(), '/');
    let mut bad = options(tmp.path());
    bad.separator = 'x';
    assert!(mailcove::storage::maildir::MaildirStorage::new(bad).is_err());
}

#[tokio::test]
async fn backend_is_usable_as_trait_objects() {
    use mailcove::storage::Storage;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The daemon holds the backend as Arc<dyn Storage>; nothing below
    // names the Maildir types.
    let st: Arc<dyn Storage> = Arc::new(storage(tmp.path()));
    let u = st
        .user(&user("ivan"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ok(u.create("Box", None).await);
    append(&*u, "Box", "via dyn").await;
    let v = ok(u.open("Box", OpenOptions::EXAMINE).await);
    assert_eq!(v.len(), 1);
    assert_eq!(v.name(), "Box");
}

#[tokio::test]
async fn version_1_subscriptions_are_read() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let st = storage(tmp.path());
    let u = login(&st, "judy").await;
    let file = root(tmp.path(), "judy").join("subscriptions");
    // Dovecot 1.x: one name per line, Maildir++ separator, modified UTF-7.
    assert!(std::fs::write(&file, "Sent\nWork.Projects\nEntw&APw-rfe\ninbox\n").is_ok());
    assert_eq!(
        ok(u.subscriptions().await),
        vec!["Sent", "Work/Projects", "Entw\u{fc}rfe", "INBOX"]
    );
    // Changing them writes version 2.
    ok(u.unsubscribe("Sent").await);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(text, "V\t2\n\nWork\tProjects\nEntw\u{fc}rfe\nINBOX\n");
}
