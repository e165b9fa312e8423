//! Maildir file names: `<unique>[,S=<size>][,W=<vsize>][:2,<flags>]`.
//!
//! Flags are the letters D (draft) F (flagged) P (passed) R (replied)
//! S (seen) T (trashed), then keyword letters `a`..`z` indexing the
//! mailbox's `dovecot-keywords`, all in ASCII order. Letters we do not map
//! (P, other capitals) are kept as they are on renames.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::{Flags, SystemFlags};

const SYSTEM_LETTERS: [(char, SystemFlags); 5] = [
    ('D', SystemFlags::DRAFT),
    ('F', SystemFlags::FLAGGED),
    ('R', SystemFlags::ANSWERED),
    ('S', SystemFlags::SEEN),
    ('T', SystemFlags::DELETED),
];

/// The part of a name that never changes (before the `:` of the info part).
pub(crate) fn base_of(name: &str) -> &str {
    match memchr::memchr(b':', name.as_bytes()) {
        Some(i) => name.get(..i).unwrap_or(name),
        None => name,
    }
}

/// The flag letters after `:2,` (empty when there is no info part).
pub(crate) fn flag_letters(name: &str) -> &str {
    // memchr, not str::split_once: this runs for every message on load.
    let b = name.as_bytes();
    let mut from = 0;
    while let Some(i) = b.get(from..).and_then(|r| memchr::memchr(b':', r)) {
        let at = from + i;
        if b.get(at + 1..at + 3) == Some(b"2,") {
            return name.get(at + 3..).unwrap_or("");
        }
        from = at + 1;
    }
    ""
}

/// `,S=` and `,W=` values of a name's base.
pub(crate) fn sizes(name: &str) -> (Option<u64>, Option<u64>) {
    // Bytes, not str::split: this runs for every file of a first SELECT.
    let parse = |v: &[u8]| std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
    let mut s = None;
    let mut w = None;
    for field in base_of(name).as_bytes().split(|b| *b == b',').skip(1) {
        match field {
            [b'S', b'=', v @ ..] => s = parse(v),
            [b'W', b'=', v @ ..] => w = parse(v),
            _ => {}
        }
    }
    (s, w)
}

/// The delivery time a Maildir unique name starts with (`<secs>.<rest>`),
/// which orders files whose mtime was not read, as Dovecot orders them.
pub(crate) fn delivery_time(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    let secs = b.get(..memchr::memchr(b'.', b)?)?;
    if secs.is_empty() || secs.len() > 18 || !secs.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most 18 digits: no overflow.
    Some(
        secs.iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
    )
}

/// Flags of a name; keyword letters beyond `keyword_count` are ignored.
pub(crate) fn flags_of(name: &str, keyword_count: usize) -> Flags {
    let mut flags = Flags::default();
    for c in flag_letters(name).chars() {
        if let Some((_, f)) = SYSTEM_LETTERS.iter().find(|(l, _)| *l == c) {
            flags.system = flags.system.union(*f);
        } else if c.is_ascii_lowercase() {
            let i = (c as usize) - ('a' as usize);
            if i < keyword_count {
                flags.keywords.insert(i);
            }
        }
    }
    flags
}

/// The name of `old` carrying `flags`, keeping letters we do not map:
/// `P` and other capitals, and keyword letters at or beyond
/// `keyword_count` (keywords whose names `dovecot-keywords` lacks).
pub(crate) fn with_flags(old: &str, flags: &Flags, keyword_count: usize) -> String {
    let unknown_keyword =
        |c: char| c.is_ascii_lowercase() && (c as usize - 'a' as usize) >= keyword_count;
    let mut letters: Vec<char> = flag_letters(old)
        .chars()
        .filter(|c| {
            c.is_ascii_graphic()
                && !SYSTEM_LETTERS.iter().any(|(l, _)| l == c)
                && (!c.is_ascii_lowercase() || unknown_keyword(*c))
        })
        .collect();
    for (l, f) in SYSTEM_LETTERS {
        if flags.system.contains(f) {
            letters.push(l);
        }
    }
    for i in flags.keywords.iter().take_while(|i| *i < 26) {
        if let Some(c) = u8::try_from(i).ok().map(|i| char::from(b'a' + i)) {
            letters.push(c);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    let mut s = String::with_capacity(old.len() + 8);
    s.push_str(base_of(old));
    s.push_str(":2,");
    s.extend(letters);
    s
}

fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        // As Dovecot: '/' and ':' cannot appear in a maildir name.
        let h: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '/' => "\\057".to_owned(),
                ':' => "\\072".to_owned(),
                ',' => "\\054".to_owned(),
                c if c.is_ascii_graphic() => c.to_string(),
                _ => String::new(),
            })
            .collect();
        if h.is_empty() {
            "localhost".to_owned()
        } else {
            h
        }
    })
}

/// A new unique name: `<secs>.M<usecs>P<pid>Q<n>.<host>`.
pub(crate) fn new_unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        q,
        hostname()
    )
}

/// A new unique base name with sizes: `<unique>,S=<phys>,W=<virt>`.
pub(crate) fn new_base(phys: u64, virt: u64) -> String {
    format!("{},S={phys},W={virt}", new_unique())
}

/// Counts bare LFs (not preceded by CR) across chunks of a stream.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct VirtualCounter {
    bare_lf: u64,
    prev_cr: bool,
}

impl VirtualCounter {
    /// Feeds the next chunk.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        for i in memchr::memchr_iter(b'\n', chunk) {
            let cr = if i == 0 {
                self.prev_cr
            } else {
                chunk.get(i - 1) == Some(&b'\r')
            };
            if !cr {
                self.bare_lf += 1;
            }
        }
        if let Some(last) = chunk.last() {
            self.prev_cr = *last == b'\r';
        }
    }
    /// Bare LFs seen so far.
    pub(crate) fn bare_lf(&self) -> u64 {
        self.bare_lf
    }
}

/// The size a client is sent: every LF not preceded by CR counts as CRLF.
pub(crate) fn virtual_size(data: &[u8]) -> u64 {
    let mut bare = 0u64;
    for i in memchr::memchr_iter(b'\n', data) {
        if i == 0 || data.get(i - 1) != Some(&b'\r') {
            bare += 1;
        }
    }
    data.len() as u64 + bare
}

/// Streaming form of [`virtual_size`] for files on disk.
pub(crate) fn virtual_size_of(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut counter = VirtualCounter::default();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total + counter.bare_lf());
        }
        counter.feed(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::KeywordSet;

    #[test]
    fn parses_and_renames() {
        let n = "1700000000.M1P2Q3.host,S=120,W=124:2,PSab";
        assert_eq!(base_of(n), "1700000000.M1P2Q3.host,S=120,W=124");
        assert_eq!(sizes(n), (Some(120), Some(124)));
        let f = flags_of(n, 2);
        assert!(f.system.contains(SystemFlags::SEEN));
        assert_eq!(f.keywords, KeywordSet::from_iter([0, 1]));
        let g = Flags {
            system: SystemFlags::DELETED.union(SystemFlags::ANSWERED),
            keywords: KeywordSet::from_iter([2]),
        };
        assert_eq!(
            with_flags(n, &g, 3),
            "1700000000.M1P2Q3.host,S=120,W=124:2,PRTc"
        );
        assert_eq!(with_flags("x", &Flags::default(), 0), "x:2,");
        // 'z' names no known keyword: it survives a flag change.
        assert_eq!(with_flags("x:2,Sz", &Flags::default(), 2), "x:2,z");
        assert_eq!(sizes("x"), (None, None));
    }

    #[test]
    fn delivery_times() {
        assert_eq!(
            delivery_time("1700000000.M1P2.host,S=3,W=4:2,S"),
            Some(1_700_000_000)
        );
        assert_eq!(delivery_time("x1700.M1P2.host"), None);
        assert_eq!(delivery_time(".M1P2.host"), None);
        assert_eq!(delivery_time("1700"), None);
    }

    #[test]
    fn virtual_sizes() {
        assert_eq!(virtual_size(b"a\nb\r\nc\n"), 9);
        assert_eq!(virtual_size(b"\n"), 2);
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { panic!("tempdir") };
        let p = dir.path().join("m");
        assert!(std::fs::write(&p, b"a\r\n\nb\n").is_ok());
        assert_eq!(virtual_size_of(&p).ok(), Some(virtual_size(b"a\r\n\nb\n")));
    }
}
