//! Generated MIME-ish messages (deterministic pseudo-random mixes of headers,
//! boundaries, blank lines and CR/LF variants): the scanner never panics and
//! its part tree always satisfies the invariants FETCH relies on.

use mailcove::mime::{
    MessageInfo, PartKind, SectionPlan, SectionSpec, SectionText, virtual_len, write_body,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "Content-Type: multipart/mixed; boundary=a\n",
    "Content-Type: multipart/alternative; boundary=\"ab\"\n",
    "Content-Type: multipart/digest; boundary=d\n",
    "Content-Type: message/rfc822\n",
    "Content-Type: text/plain; charset=utf-8\n",
    "Content-Type: text\n",
    "Content-Type: application/x; name*0*=utf-8''%41; name*1=b\n",
    "MIME-Version: 1.0\n",
    "Subject: =?utf-8?q?x?=\n",
    "From: a@b, Grp: c@d;, <broken\n",
    " folded continuation\n",
    "\n",
    "\r\n",
    "--a\n",
    "--a--\n",
    "--ab\n",
    "--ab--\n",
    "--d\n",
    "--d--\n",
    "body text\n",
    "body without newline",
    "\r",
    "--\n",
    "\0\u{ff}\n",
];

fn check(raw: &[u8]) {
    let info = MessageInfo::parse(raw);
    let len = raw.len() as u64;
    let root = info.root();
    assert_eq!(root.header.start, 0);
    assert_eq!(root.body.end, len);
    assert_eq!(info.virtual_size(), virtual_len(raw));
    for (i, p) in info.parts.iter().enumerate() {
        assert!(
            p.header.start <= p.header.end
                && p.header.end <= p.body.start
                && p.body.start <= p.body.end
        );
        assert!(p.body.end <= len);
        assert_eq!(p.header_size.virtual_len, virtual_len(p.header.slice(raw)));
        assert_eq!(
            p.body_size.virtual_len,
            virtual_len(p.body.slice(raw)),
            "part {i}"
        );
        match p.kind {
            PartKind::Leaf => assert!(p.children.is_empty()),
            PartKind::Message => assert_eq!(p.children.len(), 1),
            PartKind::Multipart => {}
        }
        let mut prev_end = p.body.start;
        for &c in &p.children {
            let c = &info.parts[c as usize];
            assert_eq!(c.parent, Some(i as u32));
            assert!(c.header.start >= prev_end && c.body.end <= p.body.end);
            prev_end = c.body.end;
        }
    }
    let mut out = Vec::new();
    write_body(&mut out, &info, true);
    assert!(out.starts_with(b"(") && out.ends_with(b")"));
    assert_eq!(
        MessageInfo::from_cache_bytes(&info.to_cache_bytes()).as_ref(),
        Some(&info)
    );
    // Every path of up to three numbers resolves without panicking, and
    // announced sizes are what streaming yields.
    for a in 0..4u32 {
        for b in 0..3u32 {
            for path in [&[a][..], &[a, b], &[a, b, 1]] {
                for text in [
                    SectionText::Full,
                    SectionText::Mime,
                    SectionText::Header,
                    SectionText::Text,
                ] {
                    let spec = SectionSpec { path, text };
                    let bytes = info.section_bytes(raw, &spec);
                    if let SectionPlan::Range { virtual_len, .. } = info.resolve_section(&spec) {
                        assert_eq!(virtual_len, bytes.len() as u64);
                    }
                }
            }
        }
    }
}

#[test]
fn generated_messages_keep_the_invariants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let n = 1 + rng.next() % 40;
        let mut m = String::new();
        for _ in 0..n {
            m.push_str(rng.pick(PIECES));
        }
        check(m.as_bytes());
        let crlf = m.replace('\n', "\r\n");
        check(crlf.as_bytes());
    }
}
