//! `cargo bench --bench storage`: builds a 100,000-message Maildir in a
//! temporary directory and prints how long the operations of issue 3 take
//! (targets, warm, on the 2-core reference box: open < 100 ms; all UIDs,
//! flags and sizes < 300 ms). `MAILCOVE_BENCH_MESSAGES` overrides the size.
//!
//! "Warm" means a new storage instance (nothing in memory, as after a
//! daemon restart or in another process) with the files in the page cache.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mailcove::storage::maildir::{MaildirOptions, MaildirStorage};
use mailcove::storage::{
    AppendMessage, CacheField, OpenOptions, Storage, StorageUser, StoreOp, StoreRequest,
    SystemFlags, UserStore,
};

fn user() -> StorageUser {
    StorageUser {
        name: "bench".into(),
        home: None,
        quota_bytes: None,
        quota_messages: None,
        location: None,
    }
}

fn message(i: usize) -> Bytes {
    let body_len = 300 + (i * 7919) % 3000;
    let mut m = format!(
        "From: sender{i}@example.org\r\nTo: bench@example.org\r\nSubject: message {i}\r\n\
         Date: Mon, 13 Nov 2023 10:00:00 +0000\r\nMessage-ID: <{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    m.extend((0..body_len).map(|j| {
        if j % 72 == 71 {
            b'\n'
        } else {
            b'a' + (j % 26) as u8
        }
    }));
    Bytes::from(m)
}

async fn login(storage: &MaildirStorage) -> std::sync::Arc<dyn UserStore> {
    match storage.user(&user()).await {
        Ok(u) => u,
        Err(e) => panic!("login: {e}"),
    }
}

fn storage(location: &str, fsync: bool) -> MaildirStorage {
    let mut o = MaildirOptions::new(location);
    o.fsync = fsync;
    MaildirStorage::new(o).unwrap_or_else(|e| panic!("storage: {e}"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("MAILCOVE_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // MAILCOVE_BENCH_DIR keeps the mailbox between runs (for profiling).
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = std::env::var_os("MAILCOVE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let location = format!("{}/%n", base.display());
    let reuse = base.join("bench/mailcove-index").exists();
    println!(
        "mailcove storage benchmark: {n} messages in {}",
        base.display()
    );
    if reuse {
        println!("reusing the mailbox built by an earlier run");
    }

    // Build (fsync off: this measures our code, not the disk).
    let st = storage(&location, false);
    let u = login(&st).await;
    let t = Instant::now();
    for i in (0..n).filter(|_| !reuse) {
        let flags = if i % 3 == 0 {
            SystemFlags::SEEN
        } else {
            SystemFlags::EMPTY
        };
        let msg = AppendMessage {
            data: message(i),
            flags,
            keywords: if i % 10 == 0 {
                vec!["$Label1".into()]
            } else {
                vec![]
            },
            internal_date: Some(1_600_000_000 + i as i64),
        };
        if let Err(e) = u.append("INBOX", msg).await {
            panic!("append {i}: {e}");
        }
    }
    let build = t.elapsed();
    if !reuse {
        println!(
            "build: {n} appends (fsync off) in {} = {:.0} appends/s",
            ms(build),
            n as f64 / build.as_secs_f64()
        );
    }
    drop(u);
    drop(st);

    // Appends with fsync on (what APPEND and delivery really cost).
    let st = storage(&location, true);
    let u = login(&st).await;
    let k = if reuse { 0 } else { 200 };
    let t = Instant::now();
    for i in 0..k {
        let msg = AppendMessage {
            data: message(n + i),
            ..AppendMessage::default()
        };
        if let Err(e) = u.append("INBOX", msg).await {
            panic!("append: {e}");
        }
    }
    let d = t.elapsed();
    if k > 0 {
        println!(
            "append with fsync: {k} in {} = {:.2} ms each",
            ms(d),
            d.as_secs_f64() * 1000.0 / k as f64
        );
    }
    let total = u.status("INBOX").await.map_or(0, |s| s.messages as usize);
    drop(u);
    drop(st);

    // Let cur/'s mtime settle so the next opener may trust it, as a
    // mailbox that was not written to in the last two seconds would.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = Instant::now();
    {
        let st = storage(&location, true);
        let u = login(&st).await;
        let v = u
            .open("INBOX", OpenOptions::EXAMINE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len() as usize, total);
    }
    println!(
        "first open after the writes (rescans cur/ once): {}",
        ms(t.elapsed())
    );

    // Warm open, and open + every UID, flag and size.
    let mut opens = Vec::new();
    let mut alls = Vec::new();
    let rounds: usize = std::env::var("MAILCOVE_BENCH_OPENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    for _ in 0..rounds {
        let st = storage(&location, true);
        let u = login(&st).await;
        let t = Instant::now();
        let v = u
            .open("INBOX", OpenOptions::EXAMINE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opened = t.elapsed();
        let mut sum = 0u64;
        let mut seen = 0u32;
        for m in v.messages().iter() {
            sum = sum.wrapping_add(u64::from(m.uid) ^ m.virt_size);
            if m.flags.system.contains(SystemFlags::SEEN) {
                seen += 1;
            }
        }
        let all = t.elapsed();
        assert!(sum != 0 && seen > 0 && v.len() as usize == total);
        opens.push(opened);
        alls.push(all);
    }
    println!(
        "warm open of {total} (new instance): median {} (target < 100 ms)",
        ms(median(opens))
    );
    println!(
        "warm open + all UIDs, flags, sizes: median {} (target < 300 ms)",
        ms(median(alls))
    );

    // STATUS without a view, in a new instance.
    let st = storage(&location, true);
    let u = login(&st).await;
    let t = Instant::now();
    let s = u.status("INBOX").await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "warm STATUS (new instance): {} ({} messages, {} unseen)",
        ms(t.elapsed()),
        s.messages,
        s.unseen
    );

    // Within one instance: more views, refresh, store.
    let mut v = u
        .open("INBOX", OpenOptions::SELECT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let d = v.refresh().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "refresh with nothing new (NOOP): {} (delta empty: {})",
        ms(t.elapsed()),
        d.is_empty()
    );
    let before = rss_kib();
    let t = Instant::now();
    let mut views = Vec::new();
    for _ in 0..50 {
        views.push(
            u.open("INBOX", OpenOptions::EXAMINE)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let per_view = (rss_kib().saturating_sub(before)) as f64 / 50.0;
    println!(
        "50 more views of the open mailbox: {} total, ~{per_view:.0} KiB RSS each (shared chunks)",
        ms(t.elapsed())
    );
    drop(views);
    let t = Instant::now();
    let req = StoreRequest {
        op: StoreOp::Add,
        flags: SystemFlags::FLAGGED,
        keywords: vec![],
        unchanged_since: None,
    };
    let uids: Vec<u32> = v.messages().iter().take(1000).map(|m| m.uid).collect();
    for uid in &uids {
        v.store(&[*uid], req.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let d = t.elapsed();
    println!(
        "STORE +FLAGS one message at a time: {:.3} ms each",
        d.as_secs_f64() * 1000.0 / 1000.0
    );
    let t = Instant::now();
    let d = v.refresh().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "refresh after own stores: {} ({} changes reported)",
        ms(t.elapsed()),
        d.flag_changes.len()
    );
    // Two seconds later the directory mtime recorded after our own renames
    // has settled and is verified by one rescan of cur/.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = Instant::now();
    let d = v.refresh().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "refresh 2 s after own writes (one verifying rescan of cur/): {} ({} changes)",
        ms(t.elapsed()),
        d.flag_changes.len()
    );
    // The same with a session in IDLE: inotify was watching before the
    // writes, so the settled record needs no rescan.
    let mut idle = u
        .open("INBOX", OpenOptions::EXAMINE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    idle.changed().await; // starts the watch
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let req = StoreRequest {
        op: StoreOp::Remove,
        flags: SystemFlags::FLAGGED,
        keywords: vec![],
        unchanged_since: None,
    };
    v.store(&uids, req).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = Instant::now();
    let d = v.refresh().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "the same while another session IDLEs (inotify covers it): {} ({} changes)",
        ms(t.elapsed()),
        d.flag_changes.len()
    );
    drop(idle);

    // Cache: put then fetch a 200-byte blob for every message.
    let all: Vec<u32> = v.messages().iter().map(|m| m.uid).collect();
    let t = Instant::now();
    for chunk in all.chunks(1000) {
        let entries = chunk
            .iter()
            .map(|uid| (*uid, Bytes::from(format!("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {uid} 10){:>120}", ""))))
            .collect();
        v.cache_put(CacheField::BODYSTRUCTURE, entries)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    println!("cache put for {} messages: {}", all.len(), ms(t.elapsed()));
    drop(v);
    drop(u);
    drop(st);
    let st = storage(&location, true);
    let u = login(&st).await;
    let v = u
        .open("INBOX", OpenOptions::EXAMINE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let mut hits = 0;
    for chunk in all.chunks(1000) {
        let got = v
            .cache_get(chunk, CacheField::BODYSTRUCTURE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        hits += got.iter().filter(|g| g.is_some()).count();
    }
    println!(
        "cache get (FETCH 1:* BODYSTRUCTURE) for {} messages, new instance: {} ({hits} hits)",
        all.len(),
        ms(t.elapsed())
    );
}
