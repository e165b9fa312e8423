//! mailcove's per-mailbox index: `mailcove-index` (a full picture, rewritten
//! atomically) plus `mailcove-index.log` (records appended since, each line
//! carrying its own CRC-32 so a torn write is detected and cut off).
//!
//! Both are text, one line per message or record, so an administrator can
//! read them. The log and the base carry a generation number: compaction
//! writes a base of generation g+1, then a fresh log of g+1; a log whose
//! generation is older than the base is ignored (its records are already in
//! the base), which makes a crash between the two renames harmless.
//!
//! Keywords beyond the 26 a file name can carry as letters are kept here too:
//! `K` records in the log, `K` lines at the end of a base (whose magic then
//! says version 2), each naming a message's keyword indexes from 26 on. Their
//! names are in [`KEYWORDS_FILE`].

use std::fmt::Write as _;

use crate::limits::{INDEX_WRITE_CHUNK, MAX_KEYWORDS_PER_MAILBOX};
use crate::storage::{InternalDate, KeywordSet, Result, StorageError};

/// Name of the base file.
pub(crate) const BASE_FILE: &str = "mailcove-index";
/// Name of the log file.
pub(crate) const LOG_FILE: &str = "mailcove-index.log";
/// Name of the lock file (flock'd by every writer and syncer).
pub(crate) const LOCK_FILE: &str = "mailcove-index.lock";
/// Names of the keywords from index 26 on (`<index> <name>` per line, as
/// `dovecot-keywords` holds the first 26, which file names carry as letters).
pub(crate) const KEYWORDS_FILE: &str = "mailcove-keywords";

const BASE_MAGIC: &str = "mailcove-index 1";
/// A base with `K` lines (keywords beyond the letters). Builds that know only
/// version 1 read it as damage and rebuild under a new UIDVALIDITY: clients
/// resynchronise, no UID is ever given to two messages. Without such
/// keywords the base is still written as version 1.
const BASE_MAGIC_KEYWORDS: &str = "mailcove-index 2";
const LOG_MAGIC: &str = "mailcove-log 1";
/// The date field of a message whose mtime was not read yet.
const UNKNOWN_DATE: char = '?';

/// Mailbox-wide values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Header {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    /// Messages with a UID at or above this have not been seen by any view.
    pub first_recent: u32,
    pub generation: u64,
    /// `cur/` mtime (ns) when we last knew every file in it.
    pub cur_mtime: i64,
    /// `cur_mtime` was recorded so soon after the change that a later change
    /// in the same clock tick would not move it: rescan once it has settled.
    pub cur_uncertain: bool,
    /// The base was written without an fsync (the first index of a
    /// mailbox, under a UIDVALIDITY chosen for it): it is made durable
    /// before the first record is appended to its log. Stored in the base
    /// only (`S1`), never in log records.
    pub unsynced: bool,
}

/// One message as the index stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub uid: u32,
    pub modseq: u64,
    pub date: InternalDate,
    pub phys: u64,
    pub virt: u64,
    /// First POP3 download, Unix seconds; 0 = never.
    pub dl: i64,
    pub in_new: bool,
    pub name: String,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Append(Entry),
    Rename {
        uid: u32,
        modseq: u64,
        in_new: bool,
        name: String,
    },
    Expunge {
        uid: u32,
        modseq: u64,
    },
    Header(Header),
    Pop3 {
        uid: u32,
        dl: i64,
    },
    /// The keywords of `uid` from index 26 on (those its file name cannot
    /// carry) are now `keywords`; an `R` record for the same change comes first.
    /// Older builds see a damaged record: a last one is cut off (the keywords
    /// are lost), one followed by others rebuilds under a new UIDVALIDITY.
    Keywords {
        uid: u32,
        modseq: u64,
        keywords: KeywordSet,
    },
}

fn loc(in_new: bool) -> char {
    if in_new { 'n' } else { 'c' }
}

fn header_fields(h: &Header) -> String {
    format!(
        "V{} N{} M{} R{} C{} U{}",
        h.uidvalidity,
        h.uidnext,
        h.highest_modseq,
        h.first_recent,
        h.cur_mtime,
        u8::from(h.cur_uncertain)
    )
}

fn parse_header_fields(fields: &str, h: &mut Header) -> Option<()> {
    for f in fields.split(' ') {
        let (k, v) = f.split_at_checked(1)?;
        match k {
            "V" => h.uidvalidity = v.parse().ok()?,
            "N" => h.uidnext = v.parse().ok()?,
            "M" => h.highest_modseq = v.parse().ok()?,
            "R" => h.first_recent = v.parse().ok()?,
            "G" => h.generation = v.parse().ok()?,
            "C" => h.cur_mtime = v.parse().ok()?,
            "U" => h.cur_uncertain = v == "1",
            "S" => h.unsynced = v == "1",
            _ => {}
        }
    }
    Some(())
}

impl Entry {
    /// The entry as a borrowed one.
    pub(crate) fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            uid: self.uid,
            modseq: self.modseq,
            date: self.date,
            phys: self.phys,
            virt: self.virt,
            dl: self.dl,
            in_new: self.in_new,
            name: &self.name,
        }
    }
}

fn entry_line(out: &mut String, e: EntryRef<'_>) {
    // By hand rather than `writeln!`: a base of 100,000 lines is written
    // on a mailbox's first SELECT, and the formatting machinery was a
    // visible part of that.
    push_u64(out, u64::from(e.uid));
    out.push(' ');
    push_u64(out, e.modseq);
    out.push(' ');
    push_date(out, e.date);
    out.push(' ');
    push_u64(out, e.phys);
    out.push(' ');
    push_u64(out, e.virt);
    out.push(' ');
    push_i64(out, e.dl);
    out.push(' ');
    out.push(loc(e.in_new));
    out.push(' ');
    out.push_str(e.name);
    out.push('\n');
}

/// A date, or `?` for one not read yet ([`InternalDate::NOT_READ`]).
/// Indexes written before dates could be unknown hold numbers only, and
/// read the same; an older mailcove reads `?` as damage and rebuilds.
fn push_date(out: &mut String, date: InternalDate) {
    match date.get() {
        Some(d) => push_i64(out, d),
        None => out.push(UNKNOWN_DATE),
    }
}

fn parse_date(s: &str) -> Option<InternalDate> {
    if s.len() == 1 && s.starts_with(UNKNOWN_DATE) {
        return Some(InternalDate::NOT_READ);
    }
    s.parse::<i64>().ok().map(InternalDate::at)
}

/// Keyword indexes: `-` for none; else comma-separated single indexes and runs of three or more
/// as `a-b` (`26,27,30-99`); or, when that is longer, `x` and a hex bitmap whose nibble `j`
/// holds keywords `4j..4j+3`, lowest bit first. A message carrying every one of the 10,000
/// keywords a mailbox may have then costs 2.5 KB of index, not 50.
fn push_keywords(out: &mut String, set: &KeywordSet) {
    if set.is_empty() {
        out.push('-');
        return;
    }
    let start = out.len();
    let mut iter = set.iter().peekable();
    while let Some(a) = iter.next() {
        let mut b = a;
        while iter.next_if_eq(&(b + 1)).is_some() {
            b += 1;
        }
        if out.len() > start {
            out.push(',');
        }
        push_u64(out, a as u64);
        match b - a {
            0 => {}
            1 => {
                out.push(',');
                push_u64(out, b as u64);
            }
            _ => {
                out.push('-');
                push_u64(out, b as u64);
            }
        }
    }
    let nibbles = set.iter().last().unwrap_or(0) / 4 + 1;
    if out.len() - start > nibbles + 1 {
        out.truncate(start);
        out.push('x');
        for j in 0..nibbles {
            let nibble = (0..4)
                .filter(|bit| set.contains(4 * j + bit))
                .fold(0u32, |n, bit| n | 1 << bit);
            out.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
    }
}

/// Parses [`push_keywords`]; an index at or beyond the per-mailbox limit is damage.
fn parse_keywords(s: &str) -> Option<KeywordSet> {
    if s == "-" {
        return Some(KeywordSet::new());
    }
    let index = |n: &str| {
        n.parse::<usize>()
            .ok()
            .filter(|i| *i < MAX_KEYWORDS_PER_MAILBOX)
    };
    let mut set = KeywordSet::new();
    if let Some(hex) = s.strip_prefix('x') {
        if hex.is_empty() || hex.len() > MAX_KEYWORDS_PER_MAILBOX.div_ceil(4) {
            return None;
        }
        for (j, c) in hex.chars().enumerate() {
            let nibble = c.to_digit(16)?;
            for bit in (0..4).filter(|bit| nibble & (1 << bit) != 0) {
                let i = 4 * j + bit;
                if i >= MAX_KEYWORDS_PER_MAILBOX {
                    return None;
                }
                set.insert(i);
            }
        }
        return Some(set);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                if a > b {
                    return None;
                }
                for i in a..=b {
                    set.insert(i);
                }
            }
            None => set.insert(index(part)?),
        }
    }
    Some(set)
}

fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let digits = crate::digits::decimal(&mut buf, v);
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// A borrowed entry, so loading 100,000 lines allocates only the names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    pub uid: u32,
    pub modseq: u64,
    pub date: InternalDate,
    pub phys: u64,
    pub virt: u64,
    pub dl: i64,
    pub in_new: bool,
    pub name: &'a str,
}

fn parse_entry(line: &str) -> Option<Entry> {
    parse_entry_ref(line).map(|e| Entry {
        uid: e.uid,
        modseq: e.modseq,
        date: e.date,
        phys: e.phys,
        virt: e.virt,
        dl: e.dl,
        in_new: e.in_new,
        name: e.name.to_owned(),
    })
}

fn parse_entry_ref(line: &str) -> Option<EntryRef<'_>> {
    let mut it = line.splitn(8, ' ');
    let uid = it.next()?.parse().ok()?;
    let modseq = it.next()?.parse().ok()?;
    let date = parse_date(it.next()?)?;
    let phys = it.next()?.parse().ok()?;
    let virt = it.next()?.parse().ok()?;
    let dl = it.next()?.parse().ok()?;
    let in_new = match it.next()? {
        "n" => true,
        "c" => false,
        _ => return None,
    };
    let name = it.next()?;
    if name.is_empty() {
        return None;
    }
    Some(EntryRef {
        uid,
        modseq,
        date,
        phys,
        virt,
        dl,
        in_new,
        name,
    })
}

/// Serialises a full base file of `count` entries (tests; the mailbox
/// streams it with [`write_base`]).
#[cfg(test)]
pub(crate) fn format_base<'a>(
    h: &Header,
    count: usize,
    entries: impl Iterator<Item = EntryRef<'a>>,
    keywords: &[(u32, KeywordSet)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(count.saturating_mul(96).saturating_add(128));
    let _ = write_base(&mut out, h, entries, keywords);
    out
}

/// Writes a full base file to `w`, formatting through a buffer of
/// [`INDEX_WRITE_CHUNK`] bytes with a running CRC.
///
/// A 100,000-message base is 7 MB: formatting it whole into fresh memory
/// cost a page fault every 4 KB, and a chunk that stays in the CPU cache
/// does not.
///
/// `keywords` are the messages' keywords from index 26 on (those with any):
/// written as `K` lines after the entries, in a version 2 base.
pub(crate) fn write_base<'a>(
    w: &mut impl std::io::Write,
    h: &Header,
    entries: impl Iterator<Item = EntryRef<'a>>,
    keywords: &[(u32, KeywordSet)],
) -> std::io::Result<()> {
    let mut crc = crc32fast::Hasher::new();
    let mut out = String::with_capacity(INDEX_WRITE_CHUNK + 512);
    let unsynced = if h.unsynced { " S1" } else { "" };
    let magic = if keywords.is_empty() {
        BASE_MAGIC
    } else {
        BASE_MAGIC_KEYWORDS
    };
    let _ = writeln!(
        out,
        "{magic} G{} {}{unsynced}",
        h.generation,
        header_fields(h)
    );
    for e in entries {
        entry_line(&mut out, e);
        if out.len() >= INDEX_WRITE_CHUNK {
            crc.update(out.as_bytes());
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    for (uid, set) in keywords {
        out.push_str("K ");
        push_u64(&mut out, u64::from(*uid));
        out.push(' ');
        push_keywords(&mut out, set);
        out.push('\n');
        if out.len() >= INDEX_WRITE_CHUNK {
            crc.update(out.as_bytes());
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    crc.update(out.as_bytes());
    let _ = writeln!(out, "END {:08x}", crc.finalize());
    w.write_all(out.as_bytes())
}

/// Parses a base file into owned entries (tests).
#[cfg(test)]
pub(crate) fn parse_base(data: &[u8]) -> Result<(Header, Vec<Entry>)> {
    let mut entries = Vec::new();
    let (h, _) = parse_base_with(data, |e| {
        entries.push(Entry {
            uid: e.uid,
            modseq: e.modseq,
            date: e.date,
            phys: e.phys,
            virt: e.virt,
            dl: e.dl,
            in_new: e.in_new,
            name: e.name.to_owned(),
        })
    })?;
    Ok((h, entries))
}

/// Parses a base file, handing each entry to `f` in UID order; returns the
/// header and the keywords from index 26 on of the messages that have any.
/// Any damage is `Corrupt` (the caller then discards what `f` collected and
/// rebuilds).
pub(crate) fn parse_base_with(
    data: &[u8],
    mut f: impl FnMut(EntryRef<'_>),
) -> Result<(Header, Vec<(u32, KeywordSet)>)> {
    let corrupt = |why: &str| StorageError::Corrupt(format!("{BASE_FILE}: {why}"));
    let text = std::str::from_utf8(data).map_err(|_| corrupt("not UTF-8"))?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or_else(|| corrupt("too short"))?;
    let (body, trailer) = text.split_at(body_end);
    let want = trailer
        .trim_end()
        .strip_prefix("END ")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| corrupt("no trailer"))?;
    if crc32fast::hash(body.as_bytes()) != want {
        return Err(corrupt("checksum mismatch"));
    }
    let mut lines = body.lines();
    let first = lines.next().ok_or_else(|| corrupt("empty"))?;
    let (fields, with_keywords) = match first.strip_prefix(BASE_MAGIC_KEYWORDS) {
        Some(rest) => (rest, true),
        None => (
            first
                .strip_prefix(BASE_MAGIC)
                .ok_or_else(|| corrupt("bad magic"))?,
            false,
        ),
    };
    let mut h = Header::default();
    parse_header_fields(fields.trim_start(), &mut h).ok_or_else(|| corrupt("bad header"))?;
    let mut last_uid = 0;
    let mut keywords = Vec::new();
    for line in lines {
        if with_keywords && let Some(rest) = line.strip_prefix("K ") {
            let bad = || corrupt("bad keywords");
            let (uid, set) = rest.split_once(' ').ok_or_else(bad)?;
            let uid: u32 = uid.parse().map_err(|_| bad())?;
            keywords.push((uid, parse_keywords(set).ok_or_else(bad)?));
            continue;
        }
        if !keywords.is_empty() {
            return Err(corrupt("entry after keywords"));
        }
        let e = parse_entry_ref(line).ok_or_else(|| corrupt("bad entry"))?;
        if e.uid <= last_uid {
            return Err(corrupt("UIDs not ascending"));
        }
        last_uid = e.uid;
        f(e);
    }
    Ok((h, keywords))
}

/// The first line of a log of `generation`.
pub(crate) fn log_header(generation: u64) -> String {
    format!("{LOG_MAGIC} G{generation}\n")
}

/// Parses a log's first line; returns its generation and length.
pub(crate) fn parse_log_header(data: &[u8]) -> Option<(u64, usize)> {
    let nl = memchr::memchr(b'\n', data)?;
    let line = std::str::from_utf8(data.get(..nl)?).ok()?;
    let g = line.strip_prefix(LOG_MAGIC)?.trim().strip_prefix('G')?;
    Some((g.parse().ok()?, nl + 1))
}

/// Appends one record line (with its CRC) to `out`.
pub(crate) fn format_record(out: &mut String, r: &Record) {
    let mut body = String::new();
    match r {
        Record::Append(e) => {
            body.push_str("A ");
            entry_line(&mut body, e.as_ref());
            body.pop();
        }
        Record::Rename {
            uid,
            modseq,
            in_new,
            name,
        } => {
            let _ = write!(body, "R {uid} {modseq} {} {name}", loc(*in_new));
        }
        Record::Expunge { uid, modseq } => {
            let _ = write!(body, "X {uid} {modseq}");
        }
        Record::Header(h) => {
            let _ = write!(body, "H {}", header_fields(h));
        }
        Record::Pop3 { uid, dl } => {
            let _ = write!(body, "P {uid} {dl}");
        }
        Record::Keywords {
            uid,
            modseq,
            keywords,
        } => {
            let _ = write!(body, "K {uid} {modseq} ");
            push_keywords(&mut body, keywords);
        }
    }
    let crc = crc32fast::hash(body.as_bytes());
    let _ = writeln!(out, "{body} #{crc:08x}");
}

fn parse_record(line: &str) -> Option<Record> {
    let (body, crc) = line.rsplit_once(" #")?;
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(body.as_bytes()) {
        return None;
    }
    let (kind, rest) = body.split_once(' ')?;
    match kind {
        "A" => parse_entry(rest).map(Record::Append),
        "R" => {
            let mut it = rest.splitn(4, ' ');
            let uid = it.next()?.parse().ok()?;
            let modseq = it.next()?.parse().ok()?;
            let in_new = it.next()? == "n";
            let name = it.next()?.to_owned();
            Some(Record::Rename {
                uid,
                modseq,
                in_new,
                name,
            })
        }
        "X" => {
            let (u, m) = rest.split_once(' ')?;
            Some(Record::Expunge {
                uid: u.parse().ok()?,
                modseq: m.parse().ok()?,
            })
        }
        "H" => {
            let mut h = Header::default();
            parse_header_fields(rest, &mut h)?;
            Some(Record::Header(h))
        }
        "P" => {
            let (u, d) = rest.split_once(' ')?;
            Some(Record::Pop3 {
                uid: u.parse().ok()?,
                dl: d.parse().ok()?,
            })
        }
        "K" => {
            let mut it = rest.splitn(3, ' ');
            Some(Record::Keywords {
                uid: it.next()?.parse().ok()?,
                modseq: it.next()?.parse().ok()?,
                keywords: parse_keywords(it.next()?)?,
            })
        }
        _ => None,
    }
}

/// Parses records from `data` (which starts at a record boundary). Returns
/// the records and how many bytes were good; anything after that is a torn
/// or damaged tail.
pub(crate) fn parse_log(data: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut good = 0usize;
    while let Some(rel) = data.get(good..).and_then(|d| memchr::memchr(b'\n', d)) {
        let line = data.get(good..good + rel).unwrap_or_default();
        let Some(r) = std::str::from_utf8(line).ok().and_then(parse_record) else {
            break;
        };
        records.push(r);
        good += rel + 1;
    }
    (records, good)
}

/// True when a valid record follows the damaged line at `bad` (damage in
/// the middle of the log rather than a torn last write).
pub(crate) fn valid_record_after(data: &[u8], bad: usize) -> bool {
    let Some(rest) = data.get(bad..) else {
        return false;
    };
    let Some(nl) = memchr::memchr(b'\n', rest) else {
        return false;
    };
    rest.get(nl + 1..).is_some_and(|after| {
        after
            .split(|b| *b == b'\n')
            .any(|l| std::str::from_utf8(l).ok().and_then(parse_record).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uid: u32) -> Entry {
        Entry {
            uid,
            modseq: 3,
            date: InternalDate::at(1_700_000_000),
            phys: 10,
            virt: 12,
            dl: 0,
            in_new: false,
            name: format!("{uid}.M1P1.h,S=10:2,S"),
        }
    }

    #[test]
    fn base_round_trip_and_damage() {
        let h = Header {
            uidvalidity: 7,
            uidnext: 3,
            highest_modseq: 3,
            first_recent: 2,
            generation: 4,
            cur_mtime: 99,
            cur_uncertain: true,
            unsynced: false,
        };
        let data = format_base(&h, 2, [entry(1), entry(2)].iter().map(Entry::as_ref), &[]);
        let parsed = parse_base(&data);
        assert!(matches!(&parsed, Ok((h2, e)) if *h2 == h && e.len() == 2 && e[1] == entry(2)));
        assert!(
            !String::from_utf8_lossy(&data).contains(" S"),
            "old readers see the old header"
        );
        let h1 = Header {
            unsynced: true,
            ..h
        };
        let data1 = format_base(&h1, 0, std::iter::empty(), &[]);
        assert!(matches!(parse_base(&data1), Ok((h2, _)) if h2 == h1));
        // Log records never carry it (nor the generation).
        let mut rec = String::new();
        format_record(&mut rec, &Record::Header(h1));
        let want = Header { generation: 0, ..h };
        assert_eq!(parse_log(rec.as_bytes()).0, vec![Record::Header(want)]);
        let mut bad = data.clone();
        if let Some(b) = bad.get_mut(30) {
            *b ^= 1;
        }
        assert!(parse_base(&bad).is_err());
        assert!(parse_base(&data[..data.len() - 3]).is_err());
    }

    #[test]
    fn unknown_dates_round_trip_and_old_lines_still_parse() {
        let h = Header::default();
        let mut e = entry(1);
        e.date = InternalDate::NOT_READ;
        let data = format_base(&h, 2, [e.clone(), entry(2)].iter().map(Entry::as_ref), &[]);
        assert!(String::from_utf8_lossy(&data).contains(" 3 ? 10 12 "));
        let parsed = parse_base(&data);
        assert!(matches!(&parsed, Ok((_, v)) if v[0] == e && v[1] == entry(2)));
        let mut s = String::new();
        format_record(&mut s, &Record::Append(e.clone()));
        assert_eq!(parse_log(s.as_bytes()).0, vec![Record::Append(e)]);
        // A line as the code before unknown dates wrote it.
        let old = parse_entry_ref("5 3 1700000000 10 12 0 c 5.M1P1.h,S=10:2,S");
        assert_eq!(old.map(|e| e.date), Some(InternalDate::at(1_700_000_000)));
        assert!(parse_entry_ref("5 3 ?? 10 12 0 c x").is_none());
    }

    #[test]
    fn keywords_beyond_the_letters_round_trip_in_base_and_log() {
        let h = Header::default();
        let entries = [entry(1), entry(2), entry(3)];
        let kws = vec![
            (1, KeywordSet::from_iter([26, 27, 9_999])),
            (3, KeywordSet::from_iter([500])),
        ];
        let data = format_base(&h, 3, entries.iter().map(Entry::as_ref), &kws);
        let text = String::from_utf8_lossy(&data).into_owned();
        assert!(text.starts_with("mailcove-index 2 "), "{text}");
        assert!(text.contains("\nK 1 26,27,9999\nK 3 500\nEND "), "{text}");
        let mut seen = Vec::new();
        let parsed = parse_base_with(&data, |e| seen.push(e.uid));
        assert!(matches!(&parsed, Ok((_, k)) if *k == kws), "{parsed:?}");
        assert_eq!(seen, vec![1, 2, 3]);
        // Without such keywords the base stays version 1, as older builds read it.
        let plain = format_base(&h, 3, entries.iter().map(Entry::as_ref), &[]);
        assert!(String::from_utf8_lossy(&plain).starts_with("mailcove-index 1 "));
        // A version 1 base cannot carry K lines; indexes past the limit are damage.
        let v1_with_k = text.replacen("mailcove-index 2", "mailcove-index 1", 1);
        assert!(parse_base(&reseal(&v1_with_k)).is_err());
        assert!(parse_base(&reseal(&text)).is_ok());
        let too_big = text.replace("9999", "10000");
        assert!(parse_base(&reseal(&too_big)).is_err());
        // Log records.
        let recs = vec![
            Record::Keywords {
                uid: 4,
                modseq: 9,
                keywords: KeywordSet::from_iter([30, 31]),
            },
            Record::Keywords {
                uid: 4,
                modseq: 10,
                keywords: KeywordSet::new(),
            },
        ];
        let mut s = String::new();
        for r in &recs {
            format_record(&mut s, r);
        }
        assert!(s.starts_with("K 4 9 30,31 #"), "{s}");
        assert!(s.contains("\nK 4 10 - #"), "{s}");
        assert_eq!(parse_log(s.as_bytes()).0, recs);
    }

    #[test]
    fn keyword_sets_are_written_as_runs_or_a_bitmap_whichever_is_shorter() {
        let text = |set: &KeywordSet| {
            let mut s = String::new();
            push_keywords(&mut s, set);
            s
        };
        let cases = [
            (KeywordSet::from_iter([26, 27, 9_999]), "26,27,9999"),
            (KeywordSet::from_iter(26..1_000), "26-999"),
            (KeywordSet::from_iter([26, 28, 29, 30, 40]), "26,28-30,40"),
            // Every other keyword up to 40: the list would be longer than 11 nibbles.
            (KeywordSet::from_iter((26..=40).step_by(2)), "x00000045551"),
        ];
        for (set, want) in &cases {
            assert_eq!(text(set), *want);
            assert_eq!(parse_keywords(want).as_ref(), Some(set), "{want}");
        }
        // The worst case: every other one of the 10,000 keywords in 2.5 KB.
        let alternate = KeywordSet::from_iter((26..MAX_KEYWORDS_PER_MAILBOX).step_by(2));
        let s = text(&alternate);
        assert!(s.starts_with('x') && s.len() <= 2_501, "{}", s.len());
        assert_eq!(parse_keywords(&s), Some(alternate));
        // Damage: reversed runs, bits past the limit, non-hex digits.
        for bad in [
            "30-26",
            "9999-10000",
            "xg",
            "x",
            &format!("x{}", "f".repeat(2_501)),
        ] {
            assert_eq!(parse_keywords(bad), None, "{bad}");
        }
    }

    /// `text` with its END line's checksum recomputed.
    fn reseal(text: &str) -> Vec<u8> {
        let end = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
        let body = text.get(..end).unwrap_or_default();
        format!("{body}END {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
    }

    #[test]
    fn numbers_are_written_as_writeln_would() {
        for v in [0i64, 7, 10, 1_700_000_000, -1, -86_400, i64::MIN, i64::MAX] {
            let mut s = String::new();
            push_i64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        let mut s = String::new();
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
    }

    #[test]
    fn log_torn_tail_is_cut() {
        let mut s = String::new();
        format_record(&mut s, &Record::Append(entry(5)));
        format_record(
            &mut s,
            &Record::Rename {
                uid: 5,
                modseq: 4,
                in_new: false,
                name: "x y:2,S".into(),
            },
        );
        format_record(&mut s, &Record::Expunge { uid: 5, modseq: 6 });
        let full = s.len();
        let (recs, good) = parse_log(s.as_bytes());
        assert_eq!((recs.len(), good), (3, full));
        let torn = &s.as_bytes()[..full - 4];
        let (recs, good) = parse_log(torn);
        assert_eq!(recs.len(), 2);
        assert!(good < full);
        assert!(!valid_record_after(torn, good), "a torn end is only a tail");
        // Damage in the second record, with a valid third one after it.
        let mut mid = s.clone().into_bytes();
        let second = s.find('\n').unwrap_or(0) + 3;
        if let Some(b) = mid.get_mut(second) {
            *b ^= 1;
        }
        let (recs, good) = parse_log(&mid);
        assert_eq!(recs.len(), 1);
        assert!(valid_record_after(&mid, good));
        assert_eq!(
            parse_log_header(log_header(9).as_bytes()).map(|g| g.0),
            Some(9)
        );
    }
}
