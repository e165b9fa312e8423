//! The HAProxy PROXY protocol (v1 text, v2 binary; HAProxy's doc/proxy-protocol.txt) on
//! listeners with `proxy_protocol = true`, against the real binary: the address in the header
//! becomes the client's for the per-IP connection cap, the plaintext policy and the log; a
//! header from an address outside `server.proxy_trusted_networks`, a truncated, slow, oversized
//! or garbage header closes the connection without a greeting; listeners without the flag never
//! read a header.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Ports of the extra PROXY listeners.
struct ProxyPorts {
    imap: u16,
    imaps: u16,
    pop3: u16,
}

/// A server with PROXY listeners for IMAP (STARTTLS), IMAP (implicit TLS) and POP3, trusting
/// `trusted`, plus `extra` config.
fn server(trusted: &str, extra: &str) -> (Server, ProxyPorts) {
    let p = ProxyPorts {
        imap: free_port(),
        imaps: free_port(),
        pop3: free_port(),
    };
    let listeners = format!(
        "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:{}\"\ntls = \"starttls\"\nproxy_protocol = true\n\n\
         [[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:{}\"\ntls = \"implicit\"\nproxy_protocol = true\n\n\
         [[listener]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:{}\"\ntls = \"starttls\"\nproxy_protocol = true\n",
        p.imap, p.imaps, p.pop3
    );
    let s = Server::builder()
        .server(&format!("proxy_trusted_networks = {trusted}"))
        .config(extra)
        .config(&listeners)
        .start();
    (s, p)
}

fn v1(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let proto = if src.contains(':') { "TCP6" } else { "TCP4" };
    format!("PROXY {proto} {src} {dst} {sport} {dport}\r\n").into_bytes()
}

/// A v2 PROXY (command 1) header over TCP for `src` -> `dst`, with `tlvs` appended.
fn v2(src: &str, sport: u16, dst: &str, dport: u16, tlvs: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::IpAddr, std::net::IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let (fam, mut block) = match (s, d) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            (0x11u8, [s.octets().to_vec(), d.octets().to_vec()].concat())
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            (0x21u8, [s.octets().to_vec(), d.octets().to_vec()].concat())
        }
        _ => panic!("mixed families"),
    };
    block.extend_from_slice(&sport.to_be_bytes());
    block.extend_from_slice(&dport.to_be_bytes());
    block.extend_from_slice(tlvs);
    v2_raw(0x21, fam, &block)
}

fn v2_raw(ver_cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// `PP2_TYPE_SSL` with `PP2_CLIENT_SSL` set and verify = 0: the proxy terminated TLS.
const SSL_TLV: &[u8] = &[0x20, 0, 5, 0x01, 0, 0, 0, 0];

/// Sends `bytes` on a new connection to `port` and asserts the server closes it without sending
/// anything, within `within` (so a server that waits forever fails rather than passes).
fn assert_closed_silently(port: u16, bytes: &[u8], half_close: bool, within: Duration) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(within)).unwrap();
    tcp.write_all(bytes).unwrap();
    if half_close {
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let start = Instant::now();
    let mut got = Vec::new();
    match tcp.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "connection not closed after {:?}: {e} (read {got:?})",
            start.elapsed()
        ),
    }
    assert!(
        got.is_empty(),
        "server answered: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_v1_address_is_the_client_for_the_per_ip_cap_and_the_log() {
    let (s, p) = server(
        r#"["127.0.0.1/32", "::1/128"]"#,
        "[limits]\nmax_connections_per_ip = 1\n",
    );
    let mut a = Client::plain_after(p.imap, &v1("192.0.2.10", "10.0.0.1", 40001, 143));
    assert!(a.line().starts_with("* OK"), "first from 192.0.2.10");
    // A second connection "from" the same client is over its cap, although the TCP peer (the
    // proxy, 127.0.0.1) is the same as for the third, which is another client and admitted.
    let mut b = Client::plain_after(p.imap, &v1("192.0.2.10", "10.0.0.1", 40002, 143));
    let refused = b.line();
    assert!(
        refused.starts_with("* BYE [UNAVAILABLE] Too many connections from your IP"),
        "{refused}"
    );
    let mut c = Client::plain_after(p.imap, &v1("192.0.2.11", "10.0.0.1", 40003, 143));
    assert!(c.line().starts_with("* OK"), "192.0.2.11 is another client");
    // Loopback itself has no connection counted yet: a direct client is admitted.
    let mut direct = s.imap();
    assert!(direct.line().starts_with("* OK"));
    // The log names the client from the header and the proxy it came through.
    let log = s.wait_log(|l| l.contains("remote=192.0.2.11:40003"));
    assert!(log.contains("remote=192.0.2.10:40001"), "{log}");
    assert!(log.contains("proxy=127.0.0.1:"), "{log}");
    drop(a);
}

#[test]
fn v1_tcp6_and_v2_ipv6_give_the_ipv6_client() {
    let (s, p) = server(r#"["127.0.0.0/8"]"#, "");
    let mut a = Client::plain_after(p.imap, &v1("2001:db8::5", "2001:db8::1", 40010, 143));
    assert!(a.line().starts_with("* OK"));
    let mut b = Client::plain_after(p.imap, &v2("2001:db8::6", 40011, "2001:db8::1", 143, &[]));
    assert!(b.line().starts_with("* OK"));
    let log = s.wait_log(|l| l.contains("remote=[2001:db8::6]:40011"));
    assert!(log.contains("remote=[2001:db8::5]:40010"), "{log}");
}

#[test]
fn a_proxied_client_is_remote_unless_the_proxy_says_it_used_tls() {
    let (s, p) = server(r#"["127.0.0.1"]"#, "");
    // From 192.0.2.20 without TLS: not loopback, not TLS, so plaintext LOGIN is refused
    // (RFC 3501 6.2.3: LOGINDISABLED; RFC 5530 PRIVACYREQUIRED).
    let mut c = Client::plain_after(p.imap, &v2("192.0.2.20", 40020, "10.0.0.1", 143, &[]));
    let greeting = c.line();
    assert!(greeting.contains("LOGINDISABLED"), "{greeting}");
    let r = c.cmd("a1", "LOGIN demo demo");
    assert!(
        r.last().unwrap().starts_with("a1 NO [PRIVACYREQUIRED]"),
        "{r:?}"
    );
    // PP2_TYPE_SSL with PP2_CLIENT_SSL: the proxy terminated TLS, so LOGIN is allowed, as
    // Dovecot treats such a connection as secured.
    let mut t = Client::plain_after(p.imap, &v2("192.0.2.21", 40021, "10.0.0.1", 143, SSL_TLV));
    let greeting = t.line();
    assert!(!greeting.contains("LOGINDISABLED"), "{greeting}");
    assert_tagged_ok(&t.cmd("a1", "LOGIN demo demo"));
    let log = s.wait_log(|l| l.contains("login") && l.contains("remote=192.0.2.21:40021"));
    assert!(log.contains("user=demo"), "{log}");
}

#[test]
fn v2_local_keeps_the_socket_address() {
    let (s, p) = server(r#"["127.0.0.1/32"]"#, "");
    // LOCAL (a proxy's health check) with an address block that must be ignored.
    let mut block = vec![203, 0, 113, 9, 10, 0, 0, 1];
    block.extend_from_slice(&[0x9c, 0x40, 0, 143]);
    let mut c = Client::plain_after(p.imap, &v2_raw(0x20, 0x11, &block));
    let greeting = c.line();
    // The client is the proxy on loopback: plaintext LOGIN is allowed there.
    assert!(!greeting.contains("LOGINDISABLED"), "{greeting}");
    assert_tagged_ok(&c.cmd("a1", "LOGIN demo demo"));
    let log = s.wait_log(|l| l.contains("login") && l.contains("user=demo"));
    assert!(!log.contains("203.0.113.9"), "{log}");
}

#[test]
fn bad_headers_close_the_connection_and_the_server_lives_on() {
    let (s, p) = server(r#"["127.0.0.1/32"]"#, "");
    let quick = Duration::from_secs(10);
    // Truncated, then the proxy closes: v1 and v2.
    assert_closed_silently(p.imap, b"PROXY TCP4 192.0.2.1", true, quick);
    let whole = v2("192.0.2.1", 1, "10.0.0.1", 143, &[]);
    assert_closed_silently(p.imap, &whole[..20], true, quick);
    // Truncated and left open: closed after the header timeout (3 s), not held forever.
    let start = Instant::now();
    assert_closed_silently(p.imap, &whole[..14], false, quick);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Garbage: a mail client talking straight to a PROXY listener, an HTTP request, a v1 line
    // too long, a v2 header declaring more than the limit, a v2 header of version 1.
    assert_closed_silently(p.imap, b"a1 LOGIN demo demo\r\n", false, quick);
    assert_closed_silently(p.pop3, b"USER demo\r\n", false, quick);
    assert_closed_silently(p.imap, b"GET / HTTP/1.0\r\n\r\n", false, quick);
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(120));
    assert_closed_silently(p.imap, long.as_bytes(), false, quick);
    let mut huge = V2_SIG.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_closed_silently(p.imap, &huge, false, quick);
    let mut v1bin = whole.clone();
    v1bin[12] = 0x11;
    assert_closed_silently(p.imap, &v1bin, false, quick);
    let log = s.wait_log(|l| l.matches("no valid PROXY header").count() >= 9);
    assert!(
        log.contains("timed out") || log.contains("no complete PROXY header"),
        "{log}"
    );
    // Still serving.
    let mut c = Client::plain_after(p.imap, &v1("192.0.2.2", "10.0.0.1", 5, 143));
    assert!(c.line().starts_with("* OK"));
}

#[test]
fn a_header_from_an_untrusted_address_is_refused() {
    let (s, p) = server(r#"["10.0.0.0/8", "2001:db8::/32"]"#, "");
    assert_closed_silently(
        p.imap,
        &v1("192.0.2.1", "10.0.0.1", 1, 143),
        false,
        Duration::from_secs(10),
    );
    assert_closed_silently(
        p.pop3,
        &v2("192.0.2.1", 1, "10.0.0.1", 110, &[]),
        false,
        Duration::from_secs(10),
    );
    let log = s.wait_log(|l| l.matches("not in server.proxy_trusted_networks").count() >= 2);
    assert!(log.contains("proxy=127.0.0.1:"), "{log}");
    // The ordinary listeners are unaffected.
    assert!(s.imap().line().starts_with("* OK"));
}

#[test]
fn implicit_tls_after_the_header() {
    let (s, p) = server(r#"["127.0.0.1/32"]"#, "");
    let mut c = Client::tls_after(
        p.imaps,
        &s.cert.der,
        &v1("192.0.2.30", "10.0.0.1", 40030, 993),
    );
    assert!(c.line().starts_with("* OK"));
    assert!(c.tls_version().is_some());
    assert_tagged_ok(&c.cmd("a1", "LOGIN demo demo"));
    let log = s.wait_log(|l| l.contains("login") && l.contains("remote=192.0.2.30:40030"));
    assert!(log.contains("tls=true"), "{log}");
}

#[test]
fn pop3_behind_a_proxy() {
    let (s, p) = server(
        r#"["127.0.0.1/32"]"#,
        "[limits]\nmax_connections_per_ip = 1\n",
    );
    let mut a = Client::plain_after(p.pop3, &v2("192.0.2.40", 40040, "10.0.0.1", 110, SSL_TLV));
    assert!(a.line().starts_with("+OK"));
    run_transcript(&mut a, "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK *");
    let mut b = Client::plain_after(p.pop3, &v1("192.0.2.40", "10.0.0.1", 40041, 110));
    let refused = b.line();
    assert!(
        refused.starts_with("-ERR [SYS/TEMP] Too many connections from your IP"),
        "{refused}"
    );
    let log = s.wait_log(|l| l.contains("remote=192.0.2.40:40040") && l.contains("login"));
    assert!(log.contains("proto=pop3"), "{log}");
}

#[test]
fn lmtp_over_tcp_behind_a_proxy() {
    // Dovecot allows haproxy on any inet listener; for LMTP the address reaches the logs.
    let port = free_port();
    let (s, _) = server(
        r#"["127.0.0.1/32"]"#,
        &format!(
            "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{port}\"\nproxy_protocol = true\n"
        ),
    );
    let mut c = Client::plain_after(port, &v1("192.0.2.50", "10.0.0.1", 40050, 24));
    let greeting = c.line();
    assert!(greeting.starts_with("220 "), "{greeting}");
    c.send("QUIT");
    assert!(c.line().starts_with("221"));
    let log = s.wait_log(|l| l.contains("remote=192.0.2.50:40050"));
    assert!(log.contains("proto=lmtp"), "{log}");
    // Untrusted and headerless LMTP connections are closed unanswered too.
    assert_closed_silently(
        port,
        b"LHLO mta.example\r\n",
        false,
        Duration::from_secs(10),
    );
}

#[test]
fn a_listener_without_the_flag_reads_no_header() {
    let s = Server::start();
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    c.send("PROXY TCP4 192.0.2.1 10.0.0.1 1 143");
    let answer = c.line();
    assert!(answer.contains("BAD"), "{answer}");
    let mut p = s.pop3();
    assert!(p.line().starts_with("+OK"));
    p.send("PROXY TCP4 192.0.2.1 10.0.0.1 1 110");
    let answer = p.line();
    assert!(answer.starts_with("-ERR"), "{answer}");
}

#[test]
fn check_config_refuses_a_proxy_listener_without_trusted_networks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    let check = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let listener = "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:143\"\ntls = \"none\"\nproxy_protocol = true\n";
    let (code, err) = check(listener);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("key `listener[0].proxy_protocol`: needs server.proxy_trusted_networks"),
        "{err}"
    );
    let (code, err) = check(&format!(
        "[server]\nproxy_trusted_networks = [\"10.0.0.0/8\", \"10.0.0.0/33\", \"proxy.example\"]\n{listener}"
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("key `server.proxy_trusted_networks[1]`: `10.0.0.0/33` is not a network"),
        "{err}"
    );
    assert!(
        err.contains("key `server.proxy_trusted_networks[2]`: `proxy.example` is not a network"),
        "{err}"
    );
    assert!(!err.contains("proxy_trusted_networks[0]"), "{err}");
    let (code, err) = check(&format!(
        "[server]\nproxy_trusted_networks = [\"10.0.0.0/8\", \"::1\"]\n{listener}"
    ));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check(
        "[server]\nproxy_trusted_networks = [\"10.0.0.0/8\"]\n[[listener]]\nprotocol = \"lmtp\"\npath = \"/run/mailcove/lmtp\"\nproxy_protocol = true\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("key `listener[0].proxy_protocol`: the PROXY protocol is for TCP listeners"),
        "{err}"
    );
}
