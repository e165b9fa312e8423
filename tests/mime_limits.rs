//! Hostile nesting: 10,000 nested multiparts, 10,000 nested message/rfc822
//! parts and 20,000 sibling parts must give bounded answers (deeper parts kept
//! as opaque leaves) without deep recursion. Each case runs on a thread with a
//! small stack so that recursion proportional to the input would overflow.

use mailcove::limits::{MAX_MIME_DEPTH, MAX_MIME_PARTS};
use mailcove::mime::{MessageInfo, PartKind, SectionSpec, SectionText, virtual_len, write_body};

fn on_small_stack<F: FnOnce() + Send + 'static>(f: F) {
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic or overflow");
}

fn max_depth(info: &MessageInfo) -> usize {
    (0..info.parts.len())
        .map(|mut i| {
            let mut d = 0;
            while let Some(p) = info.parts[i].parent {
                d += 1;
                i = p as usize;
            }
            d
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn ten_thousand_nested_multiparts() {
    on_small_stack(|| {
        const N: usize = 10_000;
        let mut m = String::from("MIME-Version: 1.0\n");
        for i in 0..N {
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}z\"\n\n--b{i}z\n"
            ));
        }
        m.push_str("Content-Type: text/plain\n\nleaf\n");
        for i in (0..N).rev() {
            m.push_str(&format!("--b{i}z--\n"));
        }
        let raw = m.into_bytes();
        let info = MessageInfo::parse(&raw);
        assert_eq!(info.parts.len(), MAX_MIME_DEPTH + 1);
        assert_eq!(max_depth(&info), MAX_MIME_DEPTH);
        let deepest = info.parts.last().expect("parts");
        assert_eq!(deepest.kind, PartKind::Multipart);
        assert!(deepest.children.is_empty());
        assert_eq!(info.virtual_size(), virtual_len(&raw));

        let mut bs = Vec::new();
        write_body(&mut bs, &info, true);
        let mut prefix = "(".repeat(MAX_MIME_DEPTH + 2);
        prefix.push_str(
            "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)",
        );
        assert!(
            bs.starts_with(prefix.as_bytes()),
            "{}",
            String::from_utf8_lossy(&bs[..300])
        );
        assert_eq!(
            bs.iter().filter(|&&b| b == b'(').count(),
            bs.iter().filter(|&&b| b == b')').count()
        );

        let again = MessageInfo::from_cache_bytes(&info.to_cache_bytes()).expect("cache");
        assert_eq!(again, info);
        // Sections below the limit resolve; deeper numbers do not exist.
        let deep: Vec<u32> = vec![1; MAX_MIME_DEPTH + 5];
        let spec = SectionSpec {
            path: &deep,
            text: SectionText::Full,
        };
        assert_eq!(info.section_bytes(&raw, &spec), Vec::<u8>::new());
    });
}

#[test]
fn ten_thousand_nested_messages() {
    on_small_stack(|| {
        const N: usize = 10_000;
        let mut m = String::new();
        for i in 0..N {
            m.push_str(&format!(
                "Subject: level {i}\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
            ));
        }
        m.push_str("Subject: bottom\n\nbottom text\n");
        let raw = m.into_bytes();
        let info = MessageInfo::parse(&raw);
        assert_eq!(info.parts.len(), MAX_MIME_DEPTH + 1);
        assert_eq!(max_depth(&info), MAX_MIME_DEPTH);
        assert_eq!(info.parts.last().map(|p| p.kind), Some(PartKind::Leaf));
        assert_eq!(info.virtual_size(), virtual_len(&raw));

        let mut bs = Vec::new();
        write_body(&mut bs, &info, true);
        let s = String::from_utf8_lossy(&bs);
        assert_eq!(s.matches("\"message\" \"rfc822\"").count(), MAX_MIME_DEPTH);
        assert_eq!(s.matches("\"application\" \"octet-stream\"").count(), 1);
        // Envelopes are those of the encapsulated messages: levels 1..=100;
        // the message at level 100 is the opaque leaf, nothing below is read.
        assert!(
            !s.contains("\"level 0\"") && s.contains("\"level 1\"") && s.contains("\"level 100\"")
        );
        assert!(!s.contains("\"level 101\""));
        assert_eq!(
            MessageInfo::from_cache_bytes(&info.to_cache_bytes()).as_ref(),
            Some(&info)
        );
    });
}

#[test]
fn too_many_sibling_parts() {
    on_small_stack(|| {
        let mut m =
            String::from("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n");
        for i in 0..20_000 {
            m.push_str(&format!("--x\n\npart {i}\n"));
        }
        m.push_str("--x--\n");
        let raw = m.into_bytes();
        let info = MessageInfo::parse(&raw);
        assert_eq!(info.parts.len(), MAX_MIME_PARTS);
        assert_eq!(info.root().children.len(), MAX_MIME_PARTS - 1);
        // The rest of the message stays in the multipart's body: nothing lost.
        assert_eq!(info.root().body.end, raw.len() as u64);
        assert_eq!(info.virtual_size(), virtual_len(&raw));
        let mut bs = Vec::new();
        write_body(&mut bs, &info, false);
        assert!(bs.ends_with(b" \"mixed\")"));
    });
}

#[test]
fn boundaries_that_prefix_each_other_stay_bounded() {
    // "--b100" also matches the open boundary "b10" (a boundary need only be
    // a prefix of the line), which re-opens parts over and over.
    on_small_stack(|| {
        let mut m = String::from("MIME-Version: 1.0\n");
        for i in 0..10_000 {
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
            ));
        }
        let raw = m.into_bytes();
        let info = MessageInfo::parse(&raw);
        assert!(info.parts.len() <= MAX_MIME_PARTS);
        assert!(max_depth(&info) <= MAX_MIME_DEPTH);
        assert_eq!(info.virtual_size(), virtual_len(&raw));
        let mut bs = Vec::new();
        write_body(&mut bs, &info, true);
        assert_eq!(
            bs.iter().filter(|&&b| b == b'(').count(),
            bs.iter().filter(|&&b| b == b')').count()
        );
    });
}
