//! Per-message sort and thread keys: what SORT (RFC 5256 section 3, RFC 5957) and THREAD
//! (RFC 5256 section 4) compare, computed once per message from its header, kept in the
//! storage cache ([`SORT_KEYS_CACHE`]) and loaded for a list of messages by [`load`].
//!
//! Strings are stored in their `i;unicode-casemap` form ([`crate::mime::casemap`]), the
//! collation RFC 5256 section 7 requires, so comparing two keys is a byte comparison.

use bytes::Bytes;

use super::order::{mask, ranks, string_key};
use crate::imap::fetch::structure::text_of;
use crate::imap::proto::types::{SortCriterion, SortKey};
use crate::imap::search::Hit;
use crate::imap::selected::Selected;
use crate::imap::workers::{by_bytes, join_all, read_and_compute, shares};
use crate::limits::{
    MAX_HEADER_BYTES, MAX_MSGID_BYTES, MAX_SORT_KEY_BYTES, MAX_THREAD_REFERENCES, SEARCH_WORKERS,
    SORT_BATCH,
};
use crate::mime::casemap::casemap_into;
use crate::mime::subject::base_subject;
use crate::mime::{Address, decode_header_value, fields, parse_address_list, unfold};
use crate::storage::{CacheField, ReadPart, StorageError};

/// The storage cache field holding a message's header keys (see [`cache_blob`]). 16 is
/// SEARCH's; the blob's magic makes a clash with another user of the number read as a miss.
pub const SORT_KEYS_CACHE: CacheField = CacheField(17);

const CACHE_MAGIC: &[u8] = b"MCSORT1\n";

/// Which keys a caller needs: [`load`] reads no header when only metadata keys are asked and
/// fills only the asked fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMask(u16);

impl KeyMask {
    /// [`Keys::arrival`] (INTERNALDATE).
    pub const ARRIVAL: KeyMask = KeyMask(1);
    /// [`Keys::sent`] (Date:, else INTERNALDATE).
    pub const SENT: KeyMask = KeyMask(1 << 1);
    /// [`Keys::size`].
    pub const SIZE: KeyMask = KeyMask(1 << 2);
    /// [`Keys::subject`] and [`Keys::is_reply`].
    pub const SUBJECT: KeyMask = KeyMask(1 << 3);
    /// [`Keys::from`].
    pub const FROM: KeyMask = KeyMask(1 << 4);
    /// [`Keys::to`].
    pub const TO: KeyMask = KeyMask(1 << 5);
    /// [`Keys::cc`].
    pub const CC: KeyMask = KeyMask(1 << 6);
    /// [`Keys::display_from`].
    pub const DISPLAY_FROM: KeyMask = KeyMask(1 << 7);
    /// [`Keys::display_to`].
    pub const DISPLAY_TO: KeyMask = KeyMask(1 << 8);
    /// [`Keys::message_id`], [`Keys::references`] and [`Keys::in_reply_to`].
    pub const IDS: KeyMask = KeyMask(1 << 9);
    /// Every key.
    pub const ALL: KeyMask = KeyMask(0x3ff);
    /// What THREAD (ORDEREDSUBJECT and REFERENCES) needs.
    pub const THREAD: KeyMask = KeyMask(Self::SENT.0 | Self::SUBJECT.0 | Self::IDS.0);

    /// No key.
    pub const fn empty() -> KeyMask {
        KeyMask(0)
    }

    /// Both masks' keys.
    pub const fn union(self, other: KeyMask) -> KeyMask {
        KeyMask(self.0 | other.0)
    }

    /// Whether every key of `other` is in `self`.
    pub const fn contains(self, other: KeyMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any of these keys is a string or id from the header (beyond the sent date).
    pub const fn needs_header_strings(self) -> bool {
        self.0 & !(Self::ARRIVAL.0 | Self::SIZE.0 | Self::SENT.0) != 0
    }

    /// Whether any of these keys comes from the header.
    pub const fn needs_header(self) -> bool {
        self.0 & !(Self::ARRIVAL.0 | Self::SIZE.0) != 0
    }
}

impl std::ops::BitOr for KeyMask {
    type Output = KeyMask;
    fn bitor(self, rhs: KeyMask) -> KeyMask {
        self.union(rhs)
    }
}

/// The keys of one message. Fields not asked for in the [`KeyMask`] are left empty (zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Modseq.
    pub modseq: u64,
    /// INTERNALDATE, Unix seconds (ARRIVAL); 0 when gone.
    pub arrival: i64,
    /// Sent date, Unix seconds in UTC (RFC 5256 section 2.2): the `Date:` header adjusted by
    /// its zone, INTERNALDATE when the header is missing or unusable.
    pub sent: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// Base subject (RFC 5256 section 2.1), casemapped.
    pub subject: Box<str>,
    /// Whether the subject marks a reply or forward (RFC 5256 section 4, REFERENCES).
    pub is_reply: bool,
    /// addr-mailbox of the first From address, casemapped; empty when none.
    pub from: Box<str>,
    /// addr-mailbox of the first To address, casemapped.
    pub to: Box<str>,
    /// addr-mailbox of the first Cc address, casemapped.
    pub cc: Box<str>,
    /// RFC 5957 display value of the first From address, casemapped.
    pub display_from: Box<str>,
    /// RFC 5957 display value of the first To address, casemapped.
    pub display_to: Box<str>,
    /// The first `<...>` of Message-ID:, without brackets (case kept).
    pub message_id: Option<Box<str>>,
    /// The msg-ids of References:, in header order (at most [`MAX_THREAD_REFERENCES`], the
    /// last ones).
    pub references: Vec<Box<str>>,
    /// The msg-ids of In-Reply-To:, in header order (RFC 5256 uses the first).
    pub in_reply_to: Vec<Box<str>>,
}

/// What the header gives: the cached part of [`Keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HeaderKeys {
    sent: Option<i64>,
    subject: Box<str>,
    is_reply: bool,
    /// Made from a cached ENVELOPE, which has no References: the ids are not known.
    no_ids: bool,
    /// Only the sent date was computed (a SORT by DATE, ARRIVAL or SIZE alone): every other key
    /// is unknown, so whoever wants one reads the header again.
    date_only: bool,
    from: Box<str>,
    to: Box<str>,
    cc: Box<str>,
    display_from: Box<str>,
    display_to: Box<str>,
    message_id: Option<Box<str>>,
    references: Vec<Box<str>>,
    in_reply_to: Vec<Box<str>>,
}

/// `s` casemapped, cut to [`MAX_SORT_KEY_BYTES`] at a character boundary.
fn sort_string(s: &str) -> Box<str> {
    let mut out = String::with_capacity(s.len().min(MAX_SORT_KEY_BYTES));
    casemap_into(s, &mut out);
    if out.len() > MAX_SORT_KEY_BYTES {
        let mut cut = MAX_SORT_KEY_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.into_boxed_str()
}

/// RFC 5256 section 2.2: the date and time of a `Date:` value in UTC. An invalid zone counts as
/// UTC, an invalid time as 00:00:00; `None` when there is no usable date at all.
fn sent_seconds(value: &[u8]) -> Option<i64> {
    let s = String::from_utf8_lossy(value);
    let mut dt = mail_parser::DateTime::parse_rfc822(&s)?;
    if !((1..=12).contains(&dt.month) && (1..=31).contains(&dt.day)) {
        return None;
    }
    if dt.hour > 23 || dt.minute > 59 || dt.second > 60 {
        (dt.hour, dt.minute, dt.second) = (0, 0, 0);
    }
    if dt.tz_hour > 23 || dt.tz_minute > 59 {
        (dt.tz_hour, dt.tz_minute) = (0, 0);
    }
    Some(dt.to_timestamp())
}

/// The msg-ids (`<...>`, brackets removed, folding whitespace dropped) of a header value, in
/// order. Text between them (comments, phrases in broken In-Reply-To headers) is skipped; an
/// empty or overlong id is not one.
fn msg_ids(value: &[u8]) -> Vec<Box<str>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = memchr::memchr(b'<', rest) {
        let after = rest.get(open + 1..).unwrap_or_default();
        let Some(close) = memchr::memchr(b'>', after) else {
            break;
        };
        let inner = after.get(..close).unwrap_or_default();
        rest = after.get(close + 1..).unwrap_or_default();
        // "<a <b@c>": the id starts at the last '<'.
        let inner = match memchr::memrchr(b'<', inner) {
            Some(i) => inner.get(i + 1..).unwrap_or_default(),
            None => inner,
        };
        let id: Vec<u8> = inner
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if id.is_empty() || id.len() > MAX_MSGID_BYTES {
            continue;
        }
        out.push(String::from_utf8_lossy(&id).into());
    }
    out
}

/// RFC 5957 section 3: the decoded display name, else `mailbox@host`, else the mailbox.
fn display_value(a: &Address) -> String {
    if let Some(name) = a.name.as_deref() {
        let decoded = decode_header_value(name);
        if !decoded.is_empty() {
            return decoded;
        }
    }
    match (a.mailbox.as_deref(), a.host.as_deref()) {
        (Some(m), Some(h)) => {
            format!(
                "{}@{}",
                String::from_utf8_lossy(m),
                String::from_utf8_lossy(h)
            )
        }
        (Some(m), None) => String::from_utf8_lossy(m).into_owned(),
        _ => String::new(),
    }
}

/// The sort string of an address's addr-mailbox (empty without an address).
fn mailbox_key(a: &Option<Address>) -> Box<str> {
    let m = a.as_ref().and_then(|a| a.mailbox.as_deref());
    sort_string(&String::from_utf8_lossy(m.unwrap_or_default()))
}

/// The sort string of an address's RFC 5957 display value.
fn display_key(a: &Option<Address>) -> Box<str> {
    sort_string(&a.as_ref().map(display_value).unwrap_or_default())
}

impl HeaderKeys {
    /// The keys of `want` from a header block: only the sent date when that is all the header
    /// must give (the common SORT by DATE, where the address and subject parsing and casemapping
    /// of [`HeaderKeys::of`] would be most of the work), else every key.
    fn of_masked(header: &[u8], want: KeyMask) -> HeaderKeys {
        if want.needs_header_strings() {
            return Self::of(header);
        }
        let mut date = None;
        for f in fields(header) {
            if f.name.eq_ignore_ascii_case(b"Date") {
                date = Some(f.raw_value);
            }
        }
        HeaderKeys {
            sent: date.and_then(|d| sent_seconds(&unfold(d))),
            date_only: true,
            ..HeaderKeys::default()
        }
    }

    /// The keys of a header block. Where a field occurs more than once the last counts, as in
    /// ENVELOPE (RFC 5957 derives the display values from ENVELOPE).
    fn of(header: &[u8]) -> HeaderKeys {
        let (mut date, mut subject, mut from, mut to, mut cc) = (None, None, None, None, None);
        let (mut id, mut refs, mut irt) = (None, None, None);
        for f in fields(header) {
            let slot = match f.name.len() {
                2 if f.name.eq_ignore_ascii_case(b"To") => &mut to,
                2 if f.name.eq_ignore_ascii_case(b"Cc") => &mut cc,
                4 if f.name.eq_ignore_ascii_case(b"From") => &mut from,
                4 if f.name.eq_ignore_ascii_case(b"Date") => &mut date,
                7 if f.name.eq_ignore_ascii_case(b"Subject") => &mut subject,
                10 if f.name.eq_ignore_ascii_case(b"Message-ID") => &mut id,
                10 if f.name.eq_ignore_ascii_case(b"References") => &mut refs,
                11 if f.name.eq_ignore_ascii_case(b"In-Reply-To") => &mut irt,
                _ => continue,
            };
            *slot = Some(f.raw_value);
        }
        let first = |v: Option<&[u8]>| v.and_then(|v| parse_address_list(v).into_iter().next());
        let (from, to, cc) = (first(from), first(to), first(cc));
        let (base, is_reply) = subject.map(base_subject).unwrap_or_default();
        let mut references = refs.map(|v| msg_ids(&unfold(v))).unwrap_or_default();
        if references.len() > MAX_THREAD_REFERENCES {
            references.drain(..references.len() - MAX_THREAD_REFERENCES);
        }
        let mut in_reply_to = irt.map(|v| msg_ids(&unfold(v))).unwrap_or_default();
        in_reply_to.truncate(MAX_THREAD_REFERENCES);
        HeaderKeys {
            sent: date.and_then(|d| sent_seconds(&unfold(d))),
            subject: sort_string(&base),
            is_reply,
            no_ids: false,
            date_only: false,
            from: mailbox_key(&from),
            to: mailbox_key(&to),
            cc: mailbox_key(&cc),
            display_from: display_key(&from),
            display_to: display_key(&to),
            message_id: id.and_then(|v| msg_ids(&unfold(v)).into_iter().next()),
            references,
            in_reply_to,
        }
    }

    /// The cache entry: the magic, the sent date (`i64` LE, `i64::MIN` for none), a flags byte
    /// (bit 0: is_reply; bit 1: the ids are not known, see [`HeaderKeys::from_envelope`]; bit 2:
    /// only the date is known, see [`HeaderKeys::of_masked`]), the seven strings (subject, from, to, cc, display_from, display_to,
    /// message_id; empty = none) each as `u16` LE length + UTF-8, then references and
    /// in_reply_to each as a `u16` LE count of such strings. Every string is bounded by the
    /// limits above, so the entry is too.
    fn blob(&self) -> Bytes {
        let mut b = Vec::with_capacity(64 + self.subject.len());
        b.extend_from_slice(CACHE_MAGIC);
        b.extend_from_slice(&self.sent.unwrap_or(i64::MIN).to_le_bytes());
        b.push(
            u8::from(self.is_reply) | u8::from(self.no_ids) << 1 | u8::from(self.date_only) << 2,
        );
        let put = |b: &mut Vec<u8>, s: &str| {
            let len = u16::try_from(s.len()).unwrap_or(0);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(s.as_bytes().get(..usize::from(len)).unwrap_or_default());
        };
        for s in [
            &self.subject,
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ] {
            put(&mut b, s);
        }
        put(&mut b, self.message_id.as_deref().unwrap_or_default());
        for list in [&self.references, &self.in_reply_to] {
            let n = u16::try_from(list.len()).unwrap_or(0);
            b.extend_from_slice(&n.to_le_bytes());
            for s in list.iter().take(usize::from(n)) {
                put(&mut b, s);
            }
        }
        Bytes::from(b)
    }

    /// A whole cache entry read back (see [`HeaderKeys::from_blob_masked`]).
    #[cfg(test)]
    fn from_blob(blob: &[u8]) -> Option<HeaderKeys> {
        Self::from_blob_masked(blob, KeyMask::ALL)
    }

    /// A cache entry read back, materialising only the keys of `want`; `None` when it is not a
    /// well-formed entry of this version (another user of the field number, a truncated or
    /// padded blob, invalid UTF-8 in a key read). The other keys are walked over, so a
    /// malformed blob is still refused, but neither checked as UTF-8 nor copied.
    fn from_blob_masked(blob: &[u8], want: KeyMask) -> Option<HeaderKeys> {
        let mut r = Reader {
            b: blob.strip_prefix(CACHE_MAGIC)?,
        };
        let sent = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let flags = *r.take(1)?.first()?;
        // Bit 0: is_reply; bit 1: made without the ids (a miss for whoever wants them); bit 2:
        // only the sent date (a miss for whoever wants any other header key).
        if flags > 7
            || (flags & 2 != 0 && want.contains(KeyMask::IDS))
            || (flags & 4 != 0 && want.needs_header_strings())
        {
            return None;
        }
        let mut k = HeaderKeys {
            sent: (sent != i64::MIN).then_some(sent),
            is_reply: flags & 1 != 0,
            no_ids: flags & 2 != 0,
            date_only: flags & 4 != 0,
            ..HeaderKeys::default()
        };
        for (slot, mask) in [
            (&mut k.subject, KeyMask::SUBJECT),
            (&mut k.from, KeyMask::FROM),
            (&mut k.to, KeyMask::TO),
            (&mut k.cc, KeyMask::CC),
            (&mut k.display_from, KeyMask::DISPLAY_FROM),
            (&mut k.display_to, KeyMask::DISPLAY_TO),
        ] {
            if let Some(v) = r.string(want.contains(mask))? {
                *slot = v;
            }
        }
        let ids = want.contains(KeyMask::IDS);
        k.message_id = r.string(ids)?.filter(|id| !id.is_empty());
        for list in [&mut k.references, &mut k.in_reply_to] {
            let n = r.u16()?;
            for _ in 0..n {
                if let Some(v) = r.string(ids)? {
                    list.push(v);
                }
            }
        }
        r.b.is_empty().then_some(k)
    }
}

impl HeaderKeys {
    /// The keys of a cached ENVELOPE text (what FETCH ENVELOPE wrote to the storage cache, see
    /// [`crate::imap::fetch::structure`]): the same fields, last occurrence, as
    /// [`HeaderKeys::of`] reads, so a mailbox whose envelopes are cached needs no header read for
    /// SORT. ENVELOPE has no References, so the ids are marked unknown (`None` for THREAD).
    /// `None` when the text does not parse.
    fn from_envelope(text: &[u8]) -> Option<HeaderKeys> {
        let mut p = Envelope { b: text, i: 0 };
        p.byte(b'(')?;
        let date = p.nstring()?;
        p.byte(b' ')?;
        let subject = p.nstring()?;
        let mut lists: [Vec<Address>; 6] = Default::default();
        for list in &mut lists {
            p.byte(b' ')?;
            *list = p.addresses()?;
        }
        p.byte(b' ')?;
        let in_reply_to = p.nstring()?;
        p.byte(b' ')?;
        let message_id = p.nstring()?;
        p.byte(b')')?;
        if p.i != text.len() {
            return None;
        }
        let [from, _sender, _reply_to, to, cc, _bcc] = lists;
        let first = |l: Vec<Address>| l.into_iter().next();
        let (from, to, cc) = (first(from), first(to), first(cc));
        let (base, is_reply) = subject.as_deref().map(base_subject).unwrap_or_default();
        let mut in_reply_to = in_reply_to.map(|v| msg_ids(&v)).unwrap_or_default();
        in_reply_to.truncate(MAX_THREAD_REFERENCES);
        Some(HeaderKeys {
            sent: date.and_then(|d| sent_seconds(&d)),
            subject: sort_string(&base),
            is_reply,
            no_ids: true,
            date_only: false,
            from: mailbox_key(&from),
            to: mailbox_key(&to),
            cc: mailbox_key(&cc),
            display_from: display_key(&from),
            display_to: display_key(&to),
            message_id: message_id.and_then(|v| msg_ids(&v).into_iter().next()),
            references: Vec::new(),
            in_reply_to,
        })
    }
}

/// A reader of the ENVELOPE text mailcove writes: `NIL`, quoted strings with `\\`/`\"` escapes,
/// `{n}\r\n` literals and address lists.
struct Envelope<'a> {
    b: &'a [u8],
    i: usize,
}

impl Envelope<'_> {
    fn byte(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn nstring(&mut self) -> Option<Option<Vec<u8>>> {
        match self.b.get(self.i)? {
            b'N' => {
                (self.b.get(self.i..self.i + 3) == Some(b"NIL")).then(|| self.i += 3)?;
                Some(None)
            }
            b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.i += 1;
                            return Some(Some(out));
                        }
                        b'\\' => {
                            out.push(*self.b.get(self.i + 1)?);
                            self.i += 2;
                        }
                        c => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            b'{' => {
                let rest = self.b.get(self.i + 1..)?;
                let close = memchr::memchr(b'}', rest)?;
                let n: usize = std::str::from_utf8(rest.get(..close)?).ok()?.parse().ok()?;
                let start = self.i + 1 + close + 1;
                (self.b.get(start..start + 2) == Some(b"\r\n")).then_some(())?;
                let body = self.b.get(start + 2..start.checked_add(2 + n)?)?;
                self.i = start + 2 + n;
                Some(Some(body.to_vec()))
            }
            _ => None,
        }
    }

    fn addresses(&mut self) -> Option<Vec<Address>> {
        if self.nstring_nil() {
            return Some(Vec::new());
        }
        self.byte(b'(')?;
        let mut out = Vec::new();
        while self.byte(b')').is_none() {
            self.byte(b'(')?;
            let name = self.nstring()?;
            self.byte(b' ')?;
            let adl = self.nstring()?;
            self.byte(b' ')?;
            let mailbox = self.nstring()?;
            self.byte(b' ')?;
            let host = self.nstring()?;
            self.byte(b')')?;
            out.push(Address {
                name,
                adl,
                mailbox,
                host,
            });
        }
        Some(out)
    }

    fn nstring_nil(&mut self) -> bool {
        let nil = self.b.get(self.i..self.i + 3) == Some(b"NIL");
        if nil {
            self.i += 3;
        }
        nil
    }
}

/// Where the sent date and the six sort strings sit in a cache entry, found without copying
/// (for [`columns`]).
struct Located {
    sent: Option<i64>,
    /// Byte ranges of subject, from, to, cc, display_from, display_to.
    strings: [(usize, usize); 6],
}

/// Walks a cache entry like [`HeaderKeys::from_blob_masked`] (refusing the same malformed
/// entries, except that strings are not checked as UTF-8: they are only compared as bytes).
fn locate(blob: &[u8]) -> Option<Located> {
    let mut pos = CACHE_MAGIC.len();
    if !blob.starts_with(CACHE_MAGIC) {
        return None;
    }
    let sent = i64::from_le_bytes(blob.get(pos..pos + 8)?.try_into().ok()?);
    let flags = *blob.get(pos + 8)?;
    if flags > 3 {
        return None;
    }
    pos += 9;
    let len_at = |pos: &mut usize| -> Option<usize> {
        let n = u16::from_le_bytes(blob.get(*pos..*pos + 2)?.try_into().ok()?);
        *pos += 2;
        Some(usize::from(n))
    };
    let mut strings = [(0, 0); 6];
    for slot in &mut strings {
        let n = len_at(&mut pos)?;
        *slot = (pos, pos + n);
        pos += n;
    }
    // message_id, then the two lists.
    pos += len_at(&mut pos)?;
    for _ in 0..2 {
        for _ in 0..len_at(&mut pos)? {
            pos += len_at(&mut pos)?;
        }
    }
    (pos == blob.len()).then_some(Located {
        sent: (sent != i64::MIN).then_some(sent),
        strings,
    })
}

/// The slot of a string key in [`Located::strings`].
fn string_slot(key: SortKey) -> usize {
    match key {
        SortKey::From => 1,
        SortKey::To => 2,
        SortKey::Cc => 3,
        SortKey::DisplayFrom => 4,
        SortKey::DisplayTo => 5,
        _ => 0,
    }
}

/// One integer column per criterion for the messages `hits` (in order), for
/// [`super::order::order_columns`]: what [`load`] + `order` compute, without materialising
/// [`Keys`] for messages whose cache entry is there (their strings are ranked where they lie in
/// the entries). Messages without an entry go through [`load`], which also stores theirs.
pub(crate) async fn columns(
    sel: &mut Selected,
    hits: &[Hit],
    criteria: &[SortCriterion],
) -> Result<Vec<Vec<i64>>, StorageError> {
    let want = mask(criteria);
    let n = hits.len();
    // The usable entries (checked by `locate`, which is cheap enough to run again per column:
    // keeping only the `Bytes` keeps this list small).
    let mut blobs: Vec<Option<Bytes>> = Vec::with_capacity(n);
    // For each message: its index in `loaded` when it has no usable entry.
    let mut slot: Vec<usize> = vec![usize::MAX; n];
    let mut loaded: Vec<Keys> = Vec::new();
    if want.needs_header() {
        for chunk in hits.chunks(SORT_BATCH) {
            let uids: Vec<u32> = chunk.iter().map(|h| h.uid).collect();
            let got = match sel.view.cache_get(&uids, SORT_KEYS_CACHE).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "sort key cache unreadable");
                    Vec::new()
                }
            };
            for j in 0..chunk.len() {
                let entry = got.get(j).cloned().flatten();
                blobs.push(entry.filter(|b| locate(b).is_some()));
            }
        }
        let misses: Vec<Hit> = blobs
            .iter()
            .zip(hits)
            .filter(|(b, _)| b.is_none())
            .map(|(_, h)| *h)
            .collect();
        if !misses.is_empty() {
            loaded = load(sel, &misses, want).await?;
            let mut next = 0;
            for (i, b) in blobs.iter().enumerate() {
                if b.is_none()
                    && let Some(s) = slot.get_mut(i)
                {
                    *s = next;
                    next += 1;
                }
            }
        }
    }
    let uids: Vec<u32> = hits.iter().map(|h| h.uid).collect();
    // INTERNALDATE: for ARRIVAL, and for cached entries without a sent date.
    let need_dates = want.contains(KeyMask::ARRIVAL)
        || (want.contains(KeyMask::SENT)
            && blobs
                .iter()
                .flatten()
                .any(|b| locate(b).is_some_and(|l| l.sent.is_none())));
    let dates = if need_dates {
        Some(sel.view.internal_dates(&uids).await?)
    } else {
        None
    };
    let date_of = |uid: u32| dates.as_ref().and_then(|d| d.get(uid)).unwrap_or(0);
    let keys_of = |i: usize| slot.get(i).and_then(|&s| loaded.get(s));
    let entry = |i: usize| blobs.get(i).and_then(Option::as_deref).and_then(locate);
    let mut out = Vec::with_capacity(criteria.len());
    for c in criteria {
        let col: Vec<i64> = match c.key {
            SortKey::Arrival => uids.iter().map(|&u| date_of(u)).collect(),
            SortKey::Size => hits
                .iter()
                .map(|h| {
                    let size = sel.view.get(h.seq).filter(|m| m.uid == h.uid);
                    i64::try_from(size.map_or(0, |m| m.virt_size)).unwrap_or(i64::MAX)
                })
                .collect(),
            SortKey::Date => (0..n)
                .map(|i| match (entry(i), keys_of(i)) {
                    (Some(l), _) => l
                        .sent
                        .unwrap_or_else(|| uids.get(i).map_or(0, |&u| date_of(u))),
                    (None, Some(k)) => k.sent,
                    (None, None) => 0,
                })
                .collect(),
            key => {
                let text = string_key(key);
                let at = string_slot(key);
                ranks((0..n).map(|i| {
                    match (blobs.get(i).and_then(Option::as_ref), keys_of(i)) {
                        (Some(b), _) => locate(b)
                            .and_then(|l| l.strings.get(at).copied())
                            .and_then(|(s, e)| b.get(s..e))
                            .unwrap_or_default(),
                        (None, Some(k)) => text(k),
                        (None, None) => &b""[..],
                    }
                }))
            }
        };
        out.push(col);
    }
    Ok(out)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.b.get(..n)?, self.b.get(n..)?);
        self.b = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    /// The next string: `Some(None)` when it is skipped (`keep` false), `None` when malformed.
    fn string(&mut self, keep: bool) -> Option<Option<Box<str>>> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        if !keep {
            return Some(None);
        }
        Some(Some(std::str::from_utf8(bytes).ok()?.into()))
    }
}

/// The [`SORT_KEYS_CACHE`] entry for a header block: whoever reads a header anyway may store
/// it, so a later SORT or THREAD opens no file.
pub fn cache_blob(header: &[u8]) -> Bytes {
    HeaderKeys::of(header).blob()
}

impl Keys {
    /// Takes the asked header keys; true when the sent date was asked and the header has none
    /// (the caller then uses INTERNALDATE).
    fn fill(&mut self, h: HeaderKeys, want: KeyMask) -> bool {
        let no_sent = want.contains(KeyMask::SENT) && h.sent.is_none();
        if want.contains(KeyMask::SENT) {
            self.sent = h.sent.unwrap_or(0);
        }
        if want.contains(KeyMask::SUBJECT) {
            self.subject = h.subject;
            self.is_reply = h.is_reply;
        }
        if want.contains(KeyMask::FROM) {
            self.from = h.from;
        }
        if want.contains(KeyMask::TO) {
            self.to = h.to;
        }
        if want.contains(KeyMask::CC) {
            self.cc = h.cc;
        }
        if want.contains(KeyMask::DISPLAY_FROM) {
            self.display_from = h.display_from;
        }
        if want.contains(KeyMask::DISPLAY_TO) {
            self.display_to = h.display_to;
        }
        if want.contains(KeyMask::IDS) {
            self.message_id = h.message_id;
            self.references = h.references;
            self.in_reply_to = h.in_reply_to;
        }
        no_sent
    }
}

/// The keys `want` of the messages `hits` (of the selected mailbox, ascending), in the same
/// order. Cached keys are used where there are any; the other messages' header blocks are read
/// in batches of [`SORT_BATCH`] over [`SEARCH_WORKERS`] lanes, their keys computed on
/// [`crate::compute`] and stored in the cache. A message expunged meanwhile keeps empty keys.
pub async fn load(
    sel: &mut Selected,
    hits: &[Hit],
    want: KeyMask,
) -> Result<Vec<Keys>, StorageError> {
    let mut keys: Vec<Keys> = hits
        .iter()
        .map(|h| Keys {
            seq: h.seq,
            uid: h.uid,
            modseq: h.modseq,
            size: sel
                .view
                .get(h.seq)
                .filter(|m| m.uid == h.uid)
                .map_or(0, |m| m.virt_size),
            ..Keys::default()
        })
        .collect();
    if want.contains(KeyMask::ARRIVAL) {
        let uids: Vec<u32> = hits.iter().map(|h| h.uid).collect();
        let dates = sel.view.internal_dates(&uids).await?;
        for k in &mut keys {
            k.arrival = dates.get(k.uid).unwrap_or(0);
        }
    }
    if !want.needs_header() {
        return Ok(keys);
    }
    // Messages without a usable Date: (indices into `keys`).
    let mut no_sent: Vec<usize> = Vec::new();
    for (n, chunk) in keys.chunks_mut(SORT_BATCH).enumerate() {
        let base = n * SORT_BATCH;
        no_sent.extend(
            load_batch(sel, chunk, want)
                .await?
                .into_iter()
                .map(|i| base + i),
        );
    }
    if no_sent.is_empty() {
        return Ok(keys);
    }
    // RFC 5256 section 2.2: INTERNALDATE instead. Only these messages' dates are read: on
    // Maildir a date not known yet costs a file status each.
    if want.contains(KeyMask::ARRIVAL) {
        for &i in &no_sent {
            if let Some(k) = keys.get_mut(i) {
                k.sent = k.arrival;
            }
        }
    } else {
        let uids: Vec<u32> = no_sent
            .iter()
            .filter_map(|&i| keys.get(i))
            .map(|k| k.uid)
            .collect();
        let dates = sel.view.internal_dates(&uids).await?;
        for &i in &no_sent {
            if let Some(k) = keys.get_mut(i) {
                k.sent = dates.get(k.uid).unwrap_or(0);
            }
        }
    }
    Ok(keys)
}

/// One batch of [`load`]: cache hits, then the misses read and their entries stored. Returns
/// the indices (in `batch`) of the messages whose sent date is to come from INTERNALDATE.
async fn load_batch(
    sel: &Selected,
    batch: &mut [Keys],
    want: KeyMask,
) -> Result<Vec<usize>, StorageError> {
    let uids: Vec<u32> = batch.iter().map(|k| k.uid).collect();
    let cached = match sel.view.cache_get(&uids, SORT_KEYS_CACHE).await {
        Ok(c) => c,
        Err(e) => {
            // The cache only saves work; without it the headers are read.
            tracing::warn!(error = %e, "sort key cache unreadable");
            Vec::new()
        }
    };
    let mut no_sent = Vec::new();
    // (index in batch, uid, size to read)
    let mut misses: Vec<(usize, u32, u64)> = Vec::new();
    for (i, k) in batch.iter_mut().enumerate() {
        match cached
            .get(i)
            .and_then(Option::as_deref)
            .and_then(|b| HeaderKeys::from_blob_masked(b, want))
        {
            Some(h) => {
                if k.fill(h, want) {
                    no_sent.push(i);
                }
            }
            None => {
                let size = sel
                    .view
                    .get(k.seq)
                    .map_or(0, |m| m.phys_size.min(MAX_HEADER_BYTES as u64));
                misses.push((i, k.uid, size));
            }
        }
    }
    let mut to_cache: Vec<(u32, Bytes)> = Vec::new();
    if !want.contains(KeyMask::IDS) && !misses.is_empty() {
        // A FETCH ENVELOPE may have cached what SORT needs: no header to read then.
        let uids: Vec<u32> = misses.iter().map(|m| m.1).collect();
        let envelopes = match sel.view.cache_get(&uids, CacheField::ENVELOPE).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "envelope cache unreadable");
                Vec::new()
            }
        };
        let mut still = Vec::with_capacity(misses.len());
        for (j, m) in misses.into_iter().enumerate() {
            let Some(k) = batch.get_mut(m.0) else {
                continue;
            };
            let keys = envelopes
                .get(j)
                .and_then(Option::as_ref)
                .and_then(|e| text_of(e, k.size))
                .and_then(|t| HeaderKeys::from_envelope(&t));
            match keys {
                Some(h) => {
                    let blob = h.blob();
                    if k.fill(h, want) {
                        no_sent.push(m.0);
                    }
                    to_cache.push((m.1, blob));
                }
                None => still.push(m),
            }
        }
        misses = still;
    }
    if misses.is_empty() {
        put_cache(sel, to_cache).await;
        return Ok(no_sent);
    }
    let mut lanes = Vec::with_capacity(SEARCH_WORKERS);
    for share in shares(misses, SEARCH_WORKERS, |_| 1) {
        let pieces = by_bytes(share, MAX_HEADER_BYTES as u64, |m| m.2);
        let stage = move |piece: Vec<(usize, u32, u64)>, raws: Vec<Option<Bytes>>| {
            piece
                .into_iter()
                .zip(raws)
                .filter_map(|((i, uid, _), raw)| {
                    let h = HeaderKeys::of_masked(&raw?, want);
                    let blob = h.blob();
                    Some((i, uid, h, blob))
                })
                .collect::<Vec<_>>()
        };
        lanes.push(read_and_compute(
            &sel.view,
            pieces,
            |m| m.1,
            ReadPart::Header,
            stage,
        ));
    }
    for lane in join_all(lanes).await {
        for piece in lane? {
            for (i, uid, h, blob) in piece {
                if let Some(k) = batch.get_mut(i)
                    && k.fill(h, want)
                {
                    no_sent.push(i);
                }
                to_cache.push((uid, blob));
            }
        }
    }
    put_cache(sel, to_cache).await;
    Ok(no_sent)
}

/// Stores fresh key entries; the cache only saves work, so a failure is logged, not returned.
async fn put_cache(sel: &Selected, entries: Vec<(u32, Bytes)>) {
    if !entries.is_empty()
        && let Err(e) = sel.view.cache_put(SORT_KEYS_CACHE, entries).await
    {
        tracing::warn!(error = %e, "sort key cache not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(header: &str) -> HeaderKeys {
        HeaderKeys::of(header.as_bytes())
    }

    #[test]
    fn header_keys_follow_rfc5256_and_rfc5957() {
        let h = of("From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>, b@x\r\n\
To: undisclosed:;\r\nCc: \"Ann Lee\" <ann@x>\r\n\
Subject: Re: [list] Fwd: =?utf-8?q?=C3=84rger?= (fwd)\r\n\
Date: 31 Dec 2000 16:01:33 -0800\r\n\
Message-ID: <one@x> <two@x>\r\nReferences: <r1@x>\r\n <r2@x> (c)\r\nIn-Reply-To: Bob's message <r2@x>\r\n\r\n");
        // RFC 5256 2.2 example: 31 Dec 2000 16:01:33 -0800 is 1 Jan 2001 00:01:33 UTC.
        assert_eq!(h.sent, Some(978_307_293));
        assert_eq!(&*h.subject, "A\u{308}RGER");
        assert!(h.is_reply);
        // addr-mailbox is the local part.
        assert_eq!(&*h.from, "JOERG");
        assert_eq!(&*h.display_from, "JO\u{308}RG");
        // A group: its first address is the group start, whose addr-mailbox is the name.
        assert_eq!(&*h.to, "UNDISCLOSED");
        assert_eq!(&*h.display_to, "UNDISCLOSED");
        assert_eq!(&*h.cc, "ANN");
        assert_eq!(h.message_id.as_deref(), Some("one@x"));
        let refs: Vec<&str> = h.references.iter().map(|s| &**s).collect();
        assert_eq!(refs, ["r1@x", "r2@x"]);
        let irt: Vec<&str> = h.in_reply_to.iter().map(|s| &**s).collect();
        assert_eq!(irt, ["r2@x"]);
    }

    #[test]
    fn missing_fields_are_empty_and_dates_degrade_per_rfc5256() {
        let h = of("X: y\r\n\r\n");
        assert_eq!(h, HeaderKeys::default());
        assert_eq!(of("Date: not a date\r\n\r\n").sent, None);
        // An unknown zone is UTC.
        assert_eq!(
            of("Date: Thu, 1 Jan 1970 00:01:00 XYZ\r\n\r\n").sent,
            Some(60)
        );
        // Without a name the display value is the address.
        assert_eq!(
            &*of("From: bob@Example.ORG\r\n\r\n").display_from,
            "BOB@EXAMPLE.ORG"
        );
        // The last field counts, as ENVELOPE's.
        assert_eq!(&*of("Subject: a\r\nSubject: b\r\n\r\n").subject, "B");
    }

    #[test]
    fn strings_are_capped() {
        let long = "x".repeat(3 * MAX_SORT_KEY_BYTES);
        let h = of(&format!("Subject: {long}\r\nMessage-ID: <{long}>\r\n\r\n"));
        assert_eq!(h.subject.len(), MAX_SORT_KEY_BYTES);
        assert_eq!(h.message_id, None);
        let refs: String = (0..MAX_THREAD_REFERENCES + 5)
            .map(|i| format!(" <{i}@x>"))
            .collect();
        let h = of(&format!("References:{refs}\r\n\r\n"));
        assert_eq!(h.references.len(), MAX_THREAD_REFERENCES);
        assert_eq!(h.references.first().map(|s| &**s), Some("5@x"));
    }

    #[test]
    fn a_date_only_entry_serves_date_sorts_and_misses_for_the_rest() {
        let header = b"From: a@b\r\nSubject: x\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n";
        let date = HeaderKeys::of_masked(header, KeyMask::SENT | KeyMask::ARRIVAL | KeyMask::SIZE);
        assert_eq!(date.sent, Some(760_686_745));
        assert!(date.date_only && date.subject.is_empty() && date.from.is_empty());
        let blob = date.blob();
        assert_eq!(
            HeaderKeys::from_blob_masked(&blob, KeyMask::SENT).map(|k| k.sent),
            Some(Some(760_686_745))
        );
        for other in [
            KeyMask::SUBJECT,
            KeyMask::FROM,
            KeyMask::IDS,
            KeyMask::THREAD,
        ] {
            assert_eq!(HeaderKeys::from_blob_masked(&blob, other), None);
        }
        // Anything beyond the date reads every key, as before.
        assert_eq!(
            HeaderKeys::of_masked(header, KeyMask::SUBJECT),
            of(std::str::from_utf8(header).unwrap_or_default())
        );
    }

    #[test]
    fn blob_round_trips_and_refuses_foreign_data() {
        let h = of(
            "From: a@b\r\nSubject: Re: x\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
References: <a@b> <c@d>\r\nMessage-ID: <m@x>\r\n\r\n",
        );
        let blob = h.blob();
        assert_eq!(HeaderKeys::from_blob(&blob), Some(h.clone()));
        assert_eq!(
            HeaderKeys::from_blob(&HeaderKeys::default().blob()),
            Some(HeaderKeys::default())
        );
        assert_eq!(
            HeaderKeys::from_blob(blob.get(..blob.len() - 1).unwrap_or_default()),
            None
        );
        let mut padded = blob.to_vec();
        padded.push(0);
        assert_eq!(HeaderKeys::from_blob(&padded), None);
        assert_eq!(HeaderKeys::from_blob(b"MCSEARCH2\r\nxxxxxxxx"), None);
        // Only the asked keys are materialised.
        let only = HeaderKeys::from_blob_masked(&blob, KeyMask::SENT);
        assert_eq!(
            only,
            Some(HeaderKeys {
                sent: h.sent,
                is_reply: h.is_reply,
                ..HeaderKeys::default()
            })
        );
        let from = HeaderKeys::from_blob_masked(&blob, KeyMask::FROM).map(|k| k.from);
        assert_eq!(from, Some(h.from.clone()));
        assert_eq!(HeaderKeys::from_blob_masked(&padded, KeyMask::SENT), None);
        assert_eq!(
            cache_blob(b"From: a@b\r\n\r\n"),
            of("From: a@b\r\n\r\n").blob()
        );
    }

    #[test]
    fn envelope_text_gives_the_header_keys_but_the_ids() {
        let header = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>, b@x\r\n\
To: undisclosed:;\r\nCc: \"Ann \\\"Q\\\" Lee\" <ann@x>\r\n\
Subject: Re: [list] Fwd: =?utf-8?q?=C3=84rger?= (fwd)\r\n\
Date: 31 Dec 2000 16:01:33 -0800\r\nMessage-ID: <one@x>\r\n\
References: <r1@x>\r\nIn-Reply-To: <r2@x>\r\n\r\n";
        let info = crate::mime::MessageInfo::parse(header.as_bytes());
        let mut text = Vec::new();
        crate::mime::write_envelope(&mut text, info.envelope());
        let Some(env) = HeaderKeys::from_envelope(&text) else {
            panic!("own envelope refused: {}", String::from_utf8_lossy(&text));
        };
        let want = of(header);
        assert_eq!(
            env,
            HeaderKeys {
                no_ids: true,
                references: Vec::new(),
                ..want.clone()
            }
        );
        // A literal (8-bit or line breaks) reads like a quoted string.
        let lit = b"(NIL {3}\r\n\xc3\x84x NIL NIL NIL NIL NIL NIL NIL NIL)";
        assert_eq!(
            HeaderKeys::from_envelope(lit).map(|k| k.subject),
            Some(sort_string("\u{c4}x"))
        );
        // Such an entry is a miss for THREAD, which needs the ids, and a hit for SORT.
        let blob = env.blob();
        assert_eq!(HeaderKeys::from_blob_masked(&blob, KeyMask::THREAD), None);
        assert_eq!(
            HeaderKeys::from_blob_masked(&blob, KeyMask::SUBJECT).map(|k| k.subject),
            Some(want.subject)
        );
        for bad in [
            &b""[..],
            b"(NIL",
            b"(NIL NIL)",
            b"(\"a NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        ] {
            assert_eq!(HeaderKeys::from_envelope(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn located_strings_are_the_decoded_ones() {
        for header in [
            "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\nTo: a@b\r\nCc: c@d\r\n\
Subject: Re: x\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nReferences: <a@b> <c@d>\r\n\r\n",
            "X: y\r\n\r\n",
        ] {
            let h = of(header);
            let blob = h.blob();
            let Some(l) = locate(&blob) else {
                panic!("own blob refused");
            };
            assert_eq!(l.sent, h.sent);
            let strings: Vec<&[u8]> = l
                .strings
                .iter()
                .map(|&(s, e)| blob.get(s..e).unwrap_or_default())
                .collect();
            let want: Vec<&[u8]> = [
                &h.subject,
                &h.from,
                &h.to,
                &h.cc,
                &h.display_from,
                &h.display_to,
            ]
            .iter()
            .map(|s| s.as_bytes())
            .collect();
            assert_eq!(strings, want);
            assert!(locate(blob.get(..blob.len() - 1).unwrap_or_default()).is_none());
            let mut padded = blob.to_vec();
            padded.push(0);
            assert!(locate(&padded).is_none());
        }
        assert!(locate(b"MCSEARCH3\r\n").is_none());
    }

    #[test]
    fn mask_says_when_the_header_is_needed() {
        assert!(!(KeyMask::ARRIVAL | KeyMask::SIZE).needs_header());
        assert!(KeyMask::SENT.needs_header());
        assert!(KeyMask::THREAD.contains(KeyMask::IDS));
        assert!(!KeyMask::empty().needs_header());
    }
}
