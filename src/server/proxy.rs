//! The HAProxy PROXY protocol, versions 1 (text) and 2 (binary), read on listeners that set
//! `proxy_protocol = true` before the greeting and before any TLS handshake.
//!
//! Specification: HAProxy's `doc/proxy-protocol.txt` ("The PROXY protocol, Versions 1 & 2").
//! The parser ([`parse`]) is pure and says how many more bytes it certainly needs, so the reader
//! ([`read_header`]) never reads a byte past the header: what follows belongs to TLS or to the
//! mail protocol. Every length is bounded ([`limits::PROXY_V1_MAX_BYTES`],
//! [`limits::PROXY_V2_MAX_PAYLOAD`]) and the read has a deadline
//! ([`limits::PROXY_HEADER_TIMEOUT_SECS`]).
//!
//! Written here rather than taken from the `ppp` crate: `ppp` 2.3 pulls in a second major
//! version of `thiserror`, declares no minimum Rust version, and the framing (read exactly the
//! header and nothing more, under a deadline) has to be ours anyway; the parse is small and has a
//! fuzz target (`fuzz/fuzz_targets/proxy_header.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::limits;

/// The 12-byte signature that starts a version 2 header (spec section 2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part of a version 2 header: signature, version/command, family, length.
const V2_FIXED: usize = 16;
/// What a version 1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The shortest version 1 header, `PROXY UNKNOWN\r\n`.
const V1_MIN: usize = 15;
/// Address block sizes of version 2 (section 2.2): IPv4, IPv6 and Unix socket addresses.
const V2_INET_LEN: usize = 12;
const V2_INET6_LEN: usize = 36;
const V2_UNIX_LEN: usize = 216;
/// `PP2_TYPE_SSL` (section 2.2.5) and its `PP2_CLIENT_SSL` bit: the client reached the proxy
/// over TLS.
const PP2_TYPE_SSL: u8 = 0x20;
const PP2_CLIENT_SSL: u8 = 0x01;

/// What a complete header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// The client's and the proxy's (destination) addresses, or None when the header keeps the
    /// socket's own (v1 `UNKNOWN`, v2 `LOCAL`, v2 `AF_UNSPEC` or `AF_UNIX`).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// v2 only: a `PP2_TYPE_SSL` TLV with `PP2_CLIENT_SSL` set (the proxy terminated TLS).
    pub client_tls: bool,
}

/// The parse of a buffer's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete header of this many bytes.
    Done(ProxyHeader, usize),
    /// Not complete: at least this many more bytes are needed (never 0).
    Need(usize),
}

/// Why a header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The bytes are neither a v1 nor a v2 header.
    #[error("no PROXY protocol header")]
    NotProxy,
    /// A v1 line without its CRLF within 107 bytes.
    #[error("PROXY v1 header longer than {} bytes", limits::PROXY_V1_MAX_BYTES)]
    V1TooLong,
    /// A v1 line that breaks the grammar.
    #[error("malformed PROXY v1 header: {0}")]
    V1Malformed(&'static str),
    /// A v2 header whose declared length is above the limit.
    #[error("PROXY v2 header declares {0} bytes, more than {max}", max = limits::PROXY_V2_MAX_PAYLOAD)]
    V2TooLong(usize),
    /// A v2 header that breaks the format.
    #[error("malformed PROXY v2 header: {0}")]
    V2Malformed(&'static str),
    /// The peer closed the connection inside the header.
    #[error("connection closed inside the PROXY header")]
    Truncated,
    /// No complete header within the deadline.
    #[error("no complete PROXY header within {0} s")]
    Timeout(u64),
    /// Reading failed.
    #[error("reading the PROXY header: {0}")]
    Io(std::io::Error),
}

/// Parses the start of `buf` as a PROXY header of either version.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.is_empty() {
        // Both versions are at least this long.
        return Ok(Parsed::Need(V2_SIGNATURE.len()));
    }
    let head = &buf[..buf.len().min(V2_SIGNATURE.len())];
    if V2_SIGNATURE.starts_with(head) {
        return parse_v2(buf);
    }
    let head = &buf[..buf.len().min(V1_PREFIX.len())];
    if V1_PREFIX.starts_with(head) {
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

/// Version 1 (section 2.1): `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN...\r\n`,
/// at most 107 bytes with the CRLF, fields separated by exactly one space.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(limits::PROXY_V1_MAX_BYTES)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= limits::PROXY_V1_MAX_BYTES {
            return Err(ProxyError::V1TooLong);
        }
        // Byte by byte past the minimum: the line's end is not known in advance.
        return Ok(Parsed::Need(V1_MIN.saturating_sub(buf.len()).max(1)));
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(ProxyError::V1Malformed("line does not end in CRLF"));
    }
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..lf - 1])
        .map_err(|_| ProxyError::V1Malformed("not ASCII"))?;
    let used = lf + 1;
    let mut fields = line.split(' ');
    let proto = fields.next().unwrap_or("");
    if proto == "UNKNOWN" {
        // "the receiver must ignore anything presented before the CRLF is found".
        return Ok(Parsed::Done(
            ProxyHeader {
                version: 1,
                addresses: None,
                client_tls: false,
            },
            used,
        ));
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => {
            return Err(ProxyError::V1Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::V1Malformed("needs exactly four address fields"));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        let ip = if v6 {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        ip.map_err(|_| ProxyError::V1Malformed("address does not match the protocol"))
    };
    let src = SocketAddr::new(ip(src)?, v1_port(sport)?);
    let dst = SocketAddr::new(ip(dst)?, v1_port(dport)?);
    Ok(Parsed::Done(
        ProxyHeader {
            version: 1,
            addresses: Some((src, dst)),
            client_tls: false,
        },
        used,
    ))
}

/// A v1 port: 1 to 5 decimal digits, 0..=65535. The spec forbids leading zeros; HAProxy never
/// sends them, so they are refused rather than guessed at.
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(ProxyError::V1Malformed("port is not a number 0-65535"));
    }
    s.parse()
        .map_err(|_| ProxyError::V1Malformed("port is not a number 0-65535"))
}

/// Version 2 (section 2.2): the signature, version 2 with command LOCAL (0) or PROXY (1), the
/// address family and transport, a big-endian length, the address block, then TLVs.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < V2_FIXED {
        return Ok(Parsed::Need(V2_FIXED - buf.len()));
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Malformed("version is not 2"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => {
            return Err(ProxyError::V2Malformed(
                "command is neither LOCAL nor PROXY",
            ));
        }
    };
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > limits::PROXY_V2_MAX_PAYLOAD {
        return Err(ProxyError::V2TooLong(len));
    }
    let total = V2_FIXED + len;
    if buf.len() < total {
        return Ok(Parsed::Need(total - buf.len()));
    }
    let payload = &buf[V2_FIXED..total];
    let mut header = ProxyHeader {
        version: 2,
        addresses: None,
        client_tls: false,
    };
    if local {
        // "The receiver must accept this connection as valid and must use the real connection
        // endpoints and discard the protocol block including the family which is ignored."
        return Ok(Parsed::Done(header, total));
    }
    let (family, transport) = (fam >> 4, fam & 0x0f);
    // 0 UNSPEC and 1 STREAM; a DGRAM (2) header cannot describe a TCP connection.
    if transport > 1 {
        return Err(ProxyError::V2Malformed("transport is not STREAM"));
    }
    let addr_len = match family {
        // AF_UNSPEC: unknown protocol, the receiver ignores the address block and the TLVs.
        0 => return Ok(Parsed::Done(header, total)),
        1 => V2_INET_LEN,
        2 => V2_INET6_LEN,
        3 => V2_UNIX_LEN,
        _ => return Err(ProxyError::V2Malformed("unknown address family")),
    };
    if payload.len() < addr_len {
        return Err(ProxyError::V2Malformed(
            "length shorter than the address block",
        ));
    }
    let a = &payload[..addr_len];
    header.addresses = match family {
        1 => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        2 => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        // AF_UNIX: no IP address to take; the socket's own addresses stay.
        _ => None,
    };
    header.client_tls = scan_tlvs(&payload[addr_len..])?;
    Ok(Parsed::Done(header, total))
}

/// Walks the TLVs after the address block (section 2.2.x): type, 2-byte length, value. Every
/// TLV must fit in what the header declared. Returns whether `PP2_TYPE_SSL` says the client
/// used TLS; other types (ALPN, authority, CRC32C, unique id, cloud-specific ones) are skipped.
fn scan_tlvs(mut tlvs: &[u8]) -> Result<bool, ProxyError> {
    let mut client_tls = false;
    while !tlvs.is_empty() {
        if tlvs.len() < 3 {
            return Err(ProxyError::V2Malformed("truncated TLV"));
        }
        let kind = tlvs[0];
        let len = usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
        let Some(value) = tlvs.get(3..3 + len) else {
            return Err(ProxyError::V2Malformed("TLV longer than the header"));
        };
        if kind == PP2_TYPE_SSL && value.first().is_some_and(|c| c & PP2_CLIENT_SSL != 0) {
            client_tls = true;
        }
        tlvs = &tlvs[3 + len..];
    }
    Ok(client_tls)
}

/// Reads exactly one PROXY header from `stream`, within [`limits::PROXY_HEADER_TIMEOUT_SECS`],
/// and not a byte more.
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyError> {
    let secs = limits::PROXY_HEADER_TIMEOUT_SECS;
    match tokio::time::timeout(Duration::from_secs(secs), read_exact_header(stream)).await {
        Ok(r) => r,
        Err(_) => Err(ProxyError::Timeout(secs)),
    }
}

async fn read_exact_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<ProxyHeader, ProxyError> {
    // Both versions are at least 12 bytes long, so the first read may ask for that many.
    let mut buf = Vec::with_capacity(V2_FIXED);
    let mut need = V2_SIGNATURE.len();
    loop {
        let start = buf.len();
        buf.resize(start + need, 0);
        match stream.read_exact(&mut buf[start..]).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ProxyError::Truncated);
            }
            Err(e) => return Err(ProxyError::Io(e)),
        }
        match parse(&buf)? {
            Parsed::Done(h, _) => return Ok(h),
            Parsed::Need(n) => need = n,
        }
    }
}

/// Whether `ip` (a peer address) lies in one of `nets`. IPv4-mapped IPv6 peers of a dual-stack
/// listener are compared as the IPv4 address they are.
pub fn trusted(ip: IpAddr, nets: &[ipnet::IpNet]) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn inet4_payload() -> Vec<u8> {
        let mut p = vec![192, 0, 2, 1, 10, 0, 0, 1];
        p.extend_from_slice(&56324u16.to_be_bytes());
        p.extend_from_slice(&143u16.to_be_bytes());
        p
    }

    fn done(buf: &[u8]) -> (ProxyHeader, usize) {
        match parse(buf) {
            Ok(Parsed::Done(h, n)) => (h, n),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_headers_of_the_spec() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "PROXY TCP4 192.0.2.1 10.0.0.1 56324 143\r\n",
                Some(("192.0.2.1:56324", "10.0.0.1:143")),
            ),
            (
                "PROXY TCP6 2001:db8::1 2001:db8::2 4000 993\r\n",
                Some(("[2001:db8::1]:4000", "[2001:db8::2]:993")),
            ),
            (
                "PROXY TCP4 255.255.255.255 255.255.255.255 65535 0\r\n",
                Some(("255.255.255.255:65535", "255.255.255.255:0")),
            ),
            ("PROXY UNKNOWN\r\n", None),
            (
                "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
                None,
            ),
        ];
        for (text, want) in cases {
            let mut buf = text.as_bytes().to_vec();
            buf.extend_from_slice(b"A1 CAPABILITY\r\n");
            let (h, n) = done(&buf);
            assert_eq!(n, text.len(), "{text}");
            assert_eq!(h.version, 1);
            assert_eq!(h.addresses, want.map(|(s, d)| (sa(s), sa(d))), "{text}");
        }
    }

    #[test]
    fn v1_bad_headers_are_refused() {
        let cases: &[&str] = &[
            "PROXY TCP4 192.0.2.1 10.0.0.1 56324 143\n",
            "PROXY TCP5 192.0.2.1 10.0.0.1 56324 143\r\n",
            "PROXY TCP4 2001:db8::1 10.0.0.1 56324 143\r\n",
            "PROXY TCP6 192.0.2.1 10.0.0.1 56324 143\r\n",
            "PROXY TCP4 192.0.2.1 10.0.0.1 56324\r\n",
            "PROXY TCP4 192.0.2.1 10.0.0.1 56324 143 9\r\n",
            "PROXY TCP4 192.0.2.1  10.0.0.1 56324 143\r\n",
            "PROXY TCP4 192.0.2.1 10.0.0.1 65536 143\r\n",
            "PROXY TCP4 192.0.2.1 10.0.0.1 +5 143\r\n",
            "PROXY TCP4 192.0.2.1 10.0.0.1 0143 143\r\n",
            "PROXY tcp4 192.0.2.1 10.0.0.1 1 143\r\n",
            "PROXY \r\n",
            "proxy TCP4 192.0.2.1 10.0.0.1 1 143\r\n",
            "A1 LOGIN demo demo\r\n",
            "GET / HTTP/1.0\r\n",
        ];
        for c in cases {
            assert!(parse(c.as_bytes()).is_err(), "{c:?} was accepted");
        }
        let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
        assert!(matches!(parse(long.as_bytes()), Err(ProxyError::V1TooLong)));
    }

    #[test]
    fn v1_at_the_107_byte_limit() {
        // Exactly 107 bytes with the CRLF is the longest the spec allows.
        let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(107 - 16));
        assert_eq!(line.len(), 107);
        assert_eq!(done(line.as_bytes()).1, 107);
        let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(107 - 15));
        assert!(matches!(parse(line.as_bytes()), Err(ProxyError::V1TooLong)));
    }

    #[test]
    fn v2_headers() {
        let (h, n) = done(&v2(1, 0x11, &inet4_payload()));
        assert_eq!(n, 28);
        assert_eq!(
            h.addresses,
            Some((sa("192.0.2.1:56324"), sa("10.0.0.1:143")))
        );
        assert!(!h.client_tls);

        let mut p6 = Vec::new();
        p6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        p6.extend_from_slice(&4000u16.to_be_bytes());
        p6.extend_from_slice(&993u16.to_be_bytes());
        let (h, n) = done(&v2(1, 0x21, &p6));
        assert_eq!(n, 16 + 36);
        assert_eq!(
            h.addresses,
            Some((sa("[2001:db8::1]:4000"), sa("[2001:db8::2]:993")))
        );

        // LOCAL (a health check): the real endpoints, whatever the block holds.
        let (h, n) = done(&v2(0, 0x11, &inet4_payload()));
        assert_eq!((h.addresses, n), (None, 28));
        let (h, _) = done(&v2(0, 0xff, b"anything"));
        assert_eq!(h.addresses, None);
        // AF_UNSPEC and AF_UNIX keep the socket's addresses.
        assert_eq!(done(&v2(1, 0x00, b"")).0.addresses, None);
        assert_eq!(done(&v2(1, 0x31, &[0u8; 216])).0.addresses, None);

        // TLVs: an ALPN one is skipped, PP2_TYPE_SSL with the client bit is noted.
        let mut p = inet4_payload();
        p.extend_from_slice(&[0x01, 0, 4]);
        p.extend_from_slice(b"imap");
        p.extend_from_slice(&[0x20, 0, 5, 0x01, 0, 0, 0, 0]);
        let (h, n) = done(&v2(1, 0x11, &p));
        assert!(h.client_tls);
        assert_eq!(n, 16 + p.len());
        // The bytes after the header are not part of it.
        let mut more = v2(1, 0x11, &inet4_payload());
        more.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(done(&more).1, 28);
    }

    #[test]
    fn v2_bad_headers_are_refused() {
        let mut bad_version = v2(1, 0x11, &inet4_payload());
        bad_version[12] = 0x11;
        let mut bad_tlv = inet4_payload();
        bad_tlv.extend_from_slice(&[0x01, 0, 9, b'x']);
        let mut short_tlv = inet4_payload();
        short_tlv.extend_from_slice(&[0x01, 0]);
        let cases = [
            bad_version,
            v2(2, 0x11, &inet4_payload()),
            v2(1, 0x12, &inet4_payload()),
            v2(1, 0x41, &inet4_payload()),
            v2(1, 0x11, &inet4_payload()[..11]),
            v2(1, 0x21, &inet4_payload()),
            v2(1, 0x11, &bad_tlv),
            v2(1, 0x11, &short_tlv),
        ];
        for c in &cases {
            assert!(parse(c).is_err(), "{c:?} was accepted");
        }
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&huge), Err(ProxyError::V2TooLong(65535))));
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let mut p = inet4_payload();
        p.extend_from_slice(&[0x20, 0, 5, 0x01, 0, 0, 0, 0]);
        let headers = [
            v2(1, 0x11, &p),
            b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 993\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
        ];
        for h in &headers {
            for cut in 0..h.len() {
                match parse(&h[..cut]) {
                    // The reader may read this many without passing the header's end.
                    Ok(Parsed::Need(n)) => assert!(n >= 1 && cut + n <= h.len(), "{cut} {n}"),
                    other => panic!("prefix {cut} of {h:?}: {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn the_reader_stops_at_the_header_end() {
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 143\r\nA1 NOOP\r\n";
        let h = read_header(&mut input).await.unwrap();
        assert_eq!(h.addresses.unwrap().0, sa("192.0.2.1:56324"));
        assert_eq!(input, b"A1 NOOP\r\n");
        let mut bytes = v2(1, 0x11, &inet4_payload());
        bytes.extend_from_slice(b"rest");
        let mut input: &[u8] = &bytes;
        read_header(&mut input).await.unwrap();
        assert_eq!(input, b"rest");
        let mut truncated: &[u8] = b"PROXY TCP4 192.0.2.1";
        assert!(matches!(
            read_header(&mut truncated).await,
            Err(ProxyError::Truncated)
        ));
    }

    #[test]
    fn trusted_networks_match_mapped_addresses() {
        let nets: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(trusted("10.1.2.3".parse().unwrap(), &nets));
        assert!(trusted("::ffff:10.1.2.3".parse().unwrap(), &nets));
        assert!(trusted("::1".parse().unwrap(), &nets));
        assert!(!trusted("127.0.0.1".parse().unwrap(), &nets));
        assert!(!trusted("11.0.0.1".parse().unwrap(), &[]));
    }
}
