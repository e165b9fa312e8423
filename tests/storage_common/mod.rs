//! Helpers shared by the storage integration tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use mailcove::storage::maildir::{MaildirOptions, MaildirStorage};
use mailcove::storage::{AppendMessage, Result, Storage, StorageUser, SystemFlags, UserStore};

pub fn user(name: &str) -> StorageUser {
    StorageUser {
        name: name.to_owned(),
        home: None,
        quota_bytes: None,
        quota_messages: None,
        location: None,
    }
}

pub fn options(base: &Path) -> MaildirOptions {
    let mut o = MaildirOptions::new(format!("{}/%d/%n", base.display()));
    o.fsync = true;
    o
}

pub fn storage(base: &Path) -> MaildirStorage {
    match MaildirStorage::new(options(base)) {
        Ok(s) => s,
        Err(e) => panic!("storage: {e}"),
    }
}

pub async fn login(storage: &MaildirStorage, name: &str) -> Arc<dyn UserStore> {
    match storage.user(&user(name)).await {
        Ok(u) => u,
        Err(e) => panic!("login {name}: {e}"),
    }
}

pub fn root(base: &Path, name: &str) -> PathBuf {
    let (n, d) = name.split_once('@').unwrap_or((name, ""));
    base.join(d).join(n)
}

pub fn msg(body: &str) -> AppendMessage {
    AppendMessage {
        data: Bytes::from(format!(
            "From: a@example.org\r\nSubject: {body}\r\n\r\n{body}\r\n"
        )),
        flags: SystemFlags::EMPTY,
        keywords: Vec::new(),
        internal_date: Some(1_700_000_000),
    }
}

pub async fn append(u: &dyn UserStore, mailbox: &str, body: &str) -> u32 {
    match u.append(mailbox, msg(body)).await {
        Ok(r) => r.uid,
        Err(e) => panic!("append to {mailbox}: {e}"),
    }
}

pub fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("storage error: {e}"),
    }
}

/// Reads a whole message through the storage API.
pub async fn read_all(view: &mailcove::storage::View, uid: u32) -> Vec<u8> {
    let f = ok(view.open_message(uid, 0).await);
    let out = ok(f.read_all().await);
    assert_eq!(out.len() as u64, f.phys_size);
    out
}

pub fn list_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
