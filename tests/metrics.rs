//! The metrics endpoint (`[metrics] address`, docs/metrics.md) against the real binary: a scrape
//! before and after a known set of IMAP, POP3 and LMTP exchanges moves each counter by the amount
//! counted by hand from those exchanges; only `GET /metrics` is served; without `[metrics]` there
//! is no endpoint at all.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// An HTTP answer: status line, headers (lower-case names), body.
struct Http {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is and reads the answer to EOF (the endpoint closes every connection).
fn http(port: u16, request: &[u8]) -> Http {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(request).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_string(),
    }
}

/// One scrape: every sample line as `name{labels}` -> value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let r = http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: application/openmetrics-text\r\n\r\n",
    );
    assert_eq!(r.status, "HTTP/1.1 200 OK", "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    for family in [
        "mailcove_connections_active gauge",
        "mailcove_connections counter",
        "mailcove_logins counter",
        "mailcove_commands counter",
        "mailcove_command_duration_seconds histogram",
        "mailcove_lmtp_deliveries counter",
        "mailcove_bytes counter",
        "mailcove_auth_queue_depth gauge",
        "mailcove_inflight_message_bytes gauge",
        "mailcove_storage_operation_duration_seconds histogram",
        "process_resident_memory_bytes gauge",
        "process_open_fds gauge",
        "process_start_time_seconds gauge",
        "mailcove_uptime_seconds gauge",
    ] {
        assert!(
            r.body.contains(&format!("# TYPE {family}\n")),
            "no `# TYPE {family}`:\n{}",
            r.body
        );
        let name = family.split(' ').next().unwrap_or_default();
        assert!(
            r.body.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
    r.body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_string(), value.parse::<f64>().expect(l))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in the scrape"))
}

/// A plain-text client that counts every byte both ways, to compare with `mailcove_bytes_total`.
struct Counted {
    r: BufReader<TcpStream>,
    w: TcpStream,
    sent: usize,
    received: usize,
}

impl Counted {
    fn connect(port: u16) -> Counted {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Counted {
            w: tcp.try_clone().unwrap(),
            r: BufReader::new(tcp),
            sent: 0,
            received: 0,
        }
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.r.read_until(b'\n', &mut buf).unwrap();
        assert!(!buf.is_empty(), "the server closed the connection");
        self.received += buf.len();
        String::from_utf8_lossy(&buf).trim_end().to_string()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
        self.sent += bytes.len();
    }

    /// Sends `line` CRLF and reads lines until one starts with `until`; returns the last.
    fn exchange(&mut self, line: &str, until: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        loop {
            let l = self.line();
            if l.starts_with(until) {
                return l;
            }
        }
    }

    /// Reads to EOF (the server closes after LOGOUT/QUIT).
    fn finish(mut self) -> (usize, usize) {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).unwrap();
        self.received += rest.len();
        (self.sent, self.received)
    }
}

/// Listening TCP sockets the process `pid` holds: its socket inodes found in LISTEN state (0A) in
/// /proc/net/tcp{,6}.
fn listening_sockets(pid: i32) -> usize {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.push(inode.to_string());
            }
        }
    }
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                n += 1;
            }
        }
    }
    n
}

/// The six listeners of the test harness.
const HARNESS_LISTENERS: usize = 6;

#[test]
fn a_scrape_moves_by_what_the_sessions_did() {
    let (mport, lport) = (free_port(), free_port());
    let s = Server::builder()
        .config(&format!(
            "[metrics]\naddress = \"127.0.0.1:{mport}\"\n\n[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lport}\"\n"
        ))
        .start();
    // Its own listener, beside the six of the harness and the LMTP one.
    assert_eq!(listening_sockets(s.pid()), HARNESS_LISTENERS + 2);
    let before = scrape(mport);
    let backend = if memory_backend() {
        "memory"
    } else {
        "maildir"
    };

    // LMTP: one message for demo, one recipient that does not exist (RFC 2033: 550 at RCPT).
    let mut lmtp = Counted::connect(lport);
    assert!(lmtp.line().starts_with("220 "));
    assert!(lmtp.exchange("LHLO client", "250 ").starts_with("250 "));
    assert!(
        lmtp.exchange("MAIL FROM:<a@example.org>", "2")
            .starts_with("250")
    );
    assert!(lmtp.exchange("RCPT TO:<demo>", "2").starts_with("250"));
    assert!(lmtp.exchange("RCPT TO:<nobody>", "5").starts_with("550"));
    assert!(lmtp.exchange("DATA", "354").starts_with("354"));
    let delivered = lmtp.exchange(
        "Subject: counted\r\n\r\nHello metrics.\r\n.",
        "250 2.0.0 <demo>",
    );
    assert!(delivered.contains("Saved"), "{delivered}");
    assert!(lmtp.exchange("QUIT", "221").starts_with("221"));
    let (lmtp_sent, lmtp_received) = lmtp.finish();

    // IMAP, first a wrong password, then a session of five commands and a line the parser refuses.
    let mut bad = Counted::connect(s.ports.imap);
    assert!(bad.line().starts_with("* OK"));
    assert!(bad.exchange("a LOGIN demo wrong", "a ").starts_with("a NO"));
    assert!(bad.exchange("b LOGOUT", "b ").starts_with("b OK"));
    let (bad_sent, bad_received) = bad.finish();
    let mut imap = Counted::connect(s.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    assert!(imap.exchange("a LOGIN demo demo", "a ").starts_with("a OK"));
    assert!(imap.exchange("b SELECT INBOX", "b ").starts_with("b OK"));
    assert!(
        imap.exchange("c FETCH 1 (BODY.PEEK[])", "c ")
            .starts_with("c OK")
    );
    assert!(imap.exchange("d SELECT Nowhere", "d ").starts_with("d NO"));
    assert!(imap.exchange("e FROBNICATE", "e ").starts_with("e BAD"));
    assert!(imap.exchange("f LOGOUT", "f ").starts_with("f OK"));
    let (imap_sent, imap_received) = imap.finish();

    // POP3: USER/PASS, STAT, RETR of the message and of one that does not exist, QUIT.
    let mut pop = Counted::connect(s.ports.pop3);
    assert!(pop.line().starts_with("+OK"));
    assert!(pop.exchange("USER demo", "+OK").starts_with("+OK"));
    assert!(pop.exchange("PASS demo", "+OK").starts_with("+OK"));
    assert!(pop.exchange("STAT", "+OK 1 ").starts_with("+OK 1 "));
    assert_eq!(pop.exchange("RETR 1", "."), ".");
    assert!(pop.exchange("RETR 9", "-ERR").starts_with("-ERR"));
    assert!(pop.exchange("QUIT", "+OK").starts_with("+OK"));
    let (pop_sent, pop_received) = pop.finish();

    // The sessions end on the server a moment after the client saw EOF.
    let after = settled(mport);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    let expect = |series: &str, by: f64| {
        assert_eq!(moved(series), by, "{series}");
    };
    let cmd = |p: &str, c: &str, r: &str| {
        format!("mailcove_commands_total{{protocol=\"{p}\",command=\"{c}\",result=\"{r}\"}}")
    };

    expect(
        "mailcove_connections_total{protocol=\"imap\",tls=\"starttls\"}",
        2.0,
    );
    expect(
        "mailcove_connections_total{protocol=\"imap\",tls=\"implicit\"}",
        0.0,
    );
    expect(
        "mailcove_connections_total{protocol=\"pop3\",tls=\"starttls\"}",
        1.0,
    );
    expect(
        "mailcove_connections_total{protocol=\"lmtp\",tls=\"none\"}",
        1.0,
    );

    expect(
        "mailcove_logins_total{protocol=\"imap\",mechanism=\"LOGIN\",result=\"ok\"}",
        1.0,
    );
    expect(
        "mailcove_logins_total{protocol=\"imap\",mechanism=\"LOGIN\",result=\"failed\"}",
        1.0,
    );
    expect(
        "mailcove_logins_total{protocol=\"pop3\",mechanism=\"USER\",result=\"ok\"}",
        1.0,
    );
    expect(
        "mailcove_logins_total{protocol=\"pop3\",mechanism=\"USER\",result=\"failed\"}",
        0.0,
    );

    // IMAP: the tagged answer decides the result (RFC 3501 7.1); a line that is no command is
    // counted as `unknown`, and nothing else moves.
    expect(&cmd("imap", "LOGIN", "ok"), 1.0);
    expect(&cmd("imap", "LOGIN", "no"), 1.0);
    expect(&cmd("imap", "SELECT", "ok"), 1.0);
    expect(&cmd("imap", "SELECT", "no"), 1.0);
    expect(&cmd("imap", "FETCH", "ok"), 1.0);
    expect(&cmd("imap", "LOGOUT", "ok"), 2.0);
    expect(&cmd("imap", "unknown", "bad"), 1.0);
    expect(&cmd("imap", "NOOP", "ok"), 0.0);
    expect(
        "mailcove_command_duration_seconds_count{protocol=\"imap\",command=\"SELECT\"}",
        2.0,
    );
    expect(
        "mailcove_command_duration_seconds_bucket{le=\"+Inf\",protocol=\"imap\",command=\"LOGIN\"}",
        2.0,
    );

    // POP3: +OK is ok, -ERR is err.
    for (c, ok, err) in [
        ("USER", 1.0, 0.0),
        ("PASS", 1.0, 0.0),
        ("STAT", 1.0, 0.0),
        ("RETR", 1.0, 1.0),
        ("QUIT", 1.0, 0.0),
        ("DELE", 0.0, 0.0),
    ] {
        expect(&cmd("pop3", c, "ok"), ok);
        expect(&cmd("pop3", c, "err"), err);
    }

    // LMTP: a 4xx/5xx reply makes the command err.
    for (c, ok, err) in [
        ("LHLO", 1.0, 0.0),
        ("MAIL", 1.0, 0.0),
        ("RCPT", 1.0, 1.0),
        ("DATA", 1.0, 0.0),
        ("QUIT", 1.0, 0.0),
    ] {
        expect(&cmd("lmtp", c, "ok"), ok);
        expect(&cmd("lmtp", c, "err"), err);
    }
    expect("mailcove_lmtp_deliveries_total{result=\"delivered\"}", 1.0);
    expect("mailcove_lmtp_deliveries_total{result=\"permfail\"}", 0.0);
    expect("mailcove_lmtp_deliveries_total{result=\"tempfail\"}", 0.0);

    // Every byte of the plain-text sessions, both ways.
    expect(
        "mailcove_bytes_total{protocol=\"imap\",direction=\"in\"}",
        (bad_sent + imap_sent) as f64,
    );
    expect(
        "mailcove_bytes_total{protocol=\"imap\",direction=\"out\"}",
        (bad_received + imap_received) as f64,
    );
    expect(
        "mailcove_bytes_total{protocol=\"pop3\",direction=\"in\"}",
        pop_sent as f64,
    );
    expect(
        "mailcove_bytes_total{protocol=\"pop3\",direction=\"out\"}",
        pop_received as f64,
    );
    expect(
        "mailcove_bytes_total{protocol=\"lmtp\",direction=\"in\"}",
        lmtp_sent as f64,
    );
    expect(
        "mailcove_bytes_total{protocol=\"lmtp\",direction=\"out\"}",
        lmtp_received as f64,
    );

    // Storage: two IMAP SELECTs (one of a missing mailbox) and the POP3 maildrop opened; one
    // message stored; the IMAP FETCH and the POP3 RETR read it.
    let op = |o: &str| {
        format!(
            "mailcove_storage_operation_duration_seconds_count{{backend=\"{backend}\",op=\"{o}\"}}"
        )
    };
    expect(&op("open"), 3.0);
    expect(&op("append"), 1.0);
    expect(&op("fetch"), 2.0);
    expect(&op("copy"), 0.0);

    // Gauges at rest, and the process.
    assert_eq!(value(&after, "mailcove_auth_queue_depth"), 0.0);
    assert_eq!(value(&after, "mailcove_inflight_message_bytes"), 0.0);
    assert!(value(&after, "process_resident_memory_bytes") > 1e6);
    assert!(value(&after, "process_open_fds") >= (HARNESS_LISTENERS + 2) as f64);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&after, "process_start_time_seconds");
    assert!(
        started <= now && started > now - 600.0,
        "{started} vs {now}"
    );
    assert!(value(&after, "mailcove_uptime_seconds") <= now - started + 1.0);
}

#[test]
fn only_get_of_metrics_is_served() {
    let mport = free_port();
    let s = Server::builder()
        .config(&format!("[metrics]\naddress = \"127.0.0.1:{mport}\"\n"))
        .start();
    let status = |req: &[u8]| http(mport, req).status;
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(b"GET /metrics/x HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status(b"GET /favicon.ico HTTP/1.0\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    let post = http(
        mport,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(status(b"HELLO\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    // A head that never ends is cut off at the limit instead of being buffered.
    let mut long = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    long.resize(mailcove::limits::METRICS_MAX_REQUEST + 100, b'a');
    assert_eq!(
        status(&long),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // HEAD: the GET's headers without the body.
    let head = http(mport, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    assert!(head.body.is_empty());
    assert!(head.header("content-length").is_some_and(|n| n != "0"));
    // The mail listeners are unaffected by all this.
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
}

#[test]
fn without_a_metrics_section_there_is_no_endpoint() {
    let s = Server::start();
    assert_eq!(listening_sockets(s.pid()), HARNESS_LISTENERS);
    assert!(!s.log().contains("metrics listening"), "{}", s.log());
}

#[test]
fn a_bad_metrics_address_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:1143\"\ntls = \"none\"\n\n[metrics]\naddress = \"localhost:9180\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `metrics.address`"), "{err}");
    assert!(err.contains(":7:"), "the line of the key: {err}");
}

/// Waits until no session is counted as active; returns that scrape.
fn settled(mport: u16) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(mport);
        let active: f64 = ["imap", "pop3", "lmtp"]
            .iter()
            .map(|p| {
                value(
                    &m,
                    &format!("mailcove_connections_active{{protocol=\"{p}\"}}"),
                )
            })
            .sum();
        if active == 0.0 {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "sessions still counted as active"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn implicit_tls_is_labelled_by_the_listener_and_bytes_are_counted_inside_tls() {
    let mport = free_port();
    let s = Server::builder()
        .config(&format!("[metrics]\naddress = \"127.0.0.1:{mport}\"\n"))
        .start();
    let before = settled(mport);
    let mut c = s.imaps();
    assert!(c.line().starts_with("* OK"));
    c.send("a LOGOUT");
    assert!(c.line().starts_with("* BYE"));
    assert!(c.line().starts_with("a OK"));
    assert!(c.closed());
    let after = settled(mport);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved("mailcove_connections_total{protocol=\"imap\",tls=\"implicit\"}"),
        1.0
    );
    assert_eq!(
        moved("mailcove_connections_total{protocol=\"imap\",tls=\"starttls\"}"),
        0.0
    );
    // The protocol bytes, not the TLS records: exactly the one command line.
    assert_eq!(
        moved("mailcove_bytes_total{protocol=\"imap\",direction=\"in\"}"),
        "a LOGOUT\r\n".len() as f64
    );
    assert_eq!(
        moved("mailcove_commands_total{protocol=\"imap\",command=\"LOGOUT\",result=\"ok\"}"),
        1.0
    );
}

#[test]
fn idle_scrapers_cannot_hold_more_than_the_connection_cap() {
    let mport = free_port();
    let s = Server::builder()
        .config(&format!("[metrics]\naddress = \"127.0.0.1:{mport}\"\n"))
        .start();
    // Connections that never send a request hold every slot.
    let idle: Vec<TcpStream> = (0..mailcove::limits::METRICS_MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", mport)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more is closed at once, without an answer.
    let mut extra = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    extra.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    extra.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // Mail is served meanwhile.
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    assert_tagged_ok(&c.cmd("a", "LOGIN demo demo"));
    // Once the idle ones go, scrapes are answered again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut t = TcpStream::connect(("127.0.0.1", mport)).unwrap();
        t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        t.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = t.read_to_end(&mut answer);
        if answer.starts_with(b"HTTP/1.1 200 OK") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape answered after the idle ones left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
