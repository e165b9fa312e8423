//! SIGKILL during many concurrent LMTP deliveries: after a restart, every message whose DATA got
//! a 250 is present and intact, and nothing visible is a partial or unknown message.

mod common;
mod lmtp_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use lmtp_support::{stamped, stored, users};

const CONNECTIONS: usize = 8;

/// The message thread `t` sends as its `n`th: distinct, and large enough (~32 KiB) that a
/// kill often lands while it is being written.
fn message(t: usize, n: usize) -> Vec<u8> {
    let mut m = format!("Message-ID: <{t}.{n}@crash.test>\r\nSubject: crash {t} {n}\r\n\r\n");
    for line in 0..400 {
        m.push_str(&format!(
            "{t:02} {n:05} {line:04} the quick brown fox jumps over\r\n"
        ));
    }
    m.into_bytes()
}

/// Delivers messages on one connection until `stop`, returning the ones acknowledged with 250.
/// Any I/O error (the server was killed) ends the loop without failing.
fn sender(port: u16, t: usize, stop: &AtomicBool, acked_total: &AtomicUsize) -> Vec<usize> {
    let mut acked = Vec::new();
    let Ok(sock) = TcpStream::connect(("127.0.0.1", port)) else {
        return acked;
    };
    let _ = sock.set_read_timeout(Some(common::IO_TIMEOUT));
    let Ok(mut w) = sock.try_clone() else {
        return acked;
    };
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    let mut read = |r: &mut BufReader<TcpStream>| -> Option<String> {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    };
    if read(&mut r).is_none() || w.write_all(b"LHLO crash\r\n").is_err() {
        return acked;
    }
    for _ in 0..6 {
        if read(&mut r).is_none() {
            return acked;
        }
    }
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut wire = b"MAIL FROM:<crash@test>\r\nRCPT TO:<demo>\r\nDATA\r\n".to_vec();
        wire.extend_from_slice(&message(t, n));
        wire.extend_from_slice(b".\r\n");
        if w.write_all(&wire).is_err() {
            return acked;
        }
        let mut replies = Vec::new();
        for _ in 0..4 {
            match read(&mut r) {
                Some(l) => replies.push(l),
                None => return acked,
            }
        }
        assert_eq!(
            replies.first().map(String::as_str),
            Some("250 2.1.0 OK"),
            "{replies:?}"
        );
        if replies.get(3).map(String::as_str) == Some("250 2.0.0 <demo> Saved") {
            acked.push(n);
            acked_total.fetch_add(1, Ordering::Relaxed);
        }
        n += 1;
    }
    acked
}

#[test]
fn sigkill_during_concurrent_deliveries_loses_no_acknowledged_message() {
    let (mut s, port) = lmtp_support::start(Server::builder().users(&users()));
    let stop = AtomicBool::new(false);
    let acked_total = AtomicUsize::new(0);
    let acked: Vec<(usize, Vec<usize>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|t| {
                let (stop, acked_total) = (&stop, &acked_total);
                scope.spawn(move || (t, sender(port, t, stop, acked_total)))
            })
            .collect();
        // Kill once deliveries are well under way, while every connection is mid-stream.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked_total.load(Ordering::Relaxed) < 40 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.kill();
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let acked_count: usize = acked.iter().map(|(_, v)| v.len()).sum();
    assert!(
        acked_count >= 40,
        "deliveries were under way: {acked_count}"
    );

    s.restart();
    // Every possible message, as it would be stored.
    let expected = |t: usize, n: usize| stamped("crash@test", "demo", &message(t, n));
    let on_disk: Vec<Vec<u8>> = stored(&s.maildir("demo"), "");
    let on_disk_set: BTreeSet<&Vec<u8>> = on_disk.iter().collect();
    for (t, ns) in &acked {
        for &n in ns {
            assert!(
                on_disk_set.contains(&expected(t.to_owned(), n)),
                "acknowledged message {t}.{n} is missing or damaged"
            );
        }
    }
    // Nothing visible is partial or foreign: each file is one complete message that was sent
    // (at most one unacknowledged message per connection may have completed before the kill).
    let max_n = acked
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        + 2;
    let mut possible = BTreeSet::new();
    for t in 0..CONNECTIONS {
        for n in 0..=max_n {
            possible.insert(expected(t, n));
        }
    }
    for f in &on_disk {
        assert!(
            possible.contains(f),
            "a visible message is not one complete sent message ({} bytes): {:?}",
            f.len(),
            String::from_utf8_lossy(f.get(..120).unwrap_or(f))
        );
    }
    assert_eq!(
        on_disk_set.len(),
        on_disk.len(),
        "no message was stored twice"
    );
    eprintln!(
        "acknowledged {acked_count}, visible after restart {}",
        on_disk.len()
    );
    assert!(on_disk.len() >= acked_count);
    assert!(on_disk.len() <= acked_count + CONNECTIONS);

    // The restarted daemon serves them all, intact, over POP3.
    let mut p = s.pop3();
    p.line();
    p.send("USER demo");
    p.line();
    p.send("PASS pw");
    assert!(p.line().starts_with("+OK"));
    p.send("STAT");
    let stat = p.line();
    assert!(
        stat.starts_with(&format!("+OK {} ", on_disk.len())),
        "{stat}"
    );
    for i in 1..=on_disk.len() {
        p.send(&format!("RETR {i}"));
        assert!(p.line().starts_with("+OK"));
        let got: String = p.multiline().iter().map(|l| format!("{l}\r\n")).collect();
        assert!(
            on_disk_set.contains(&got.into_bytes()),
            "POP3 message {i} differs from every stored file"
        );
    }
    p.send("QUIT");
    p.line();
}
