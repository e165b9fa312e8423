//! Message structure: the MIME part tree, ENVELOPE, BODY/BODYSTRUCTURE, FETCH
//! sections, LF→CRLF streaming and the text SEARCH looks at.
//!
//! # Design
//!
//! A stored message is parsed once ([`MessageInfo::parse`]) into a flat arena of
//! [`Part`]s (index 0 is the message itself, children always have larger
//! indices than their parent). Each part records the *physical* byte ranges of
//! its header and body in the stored file, its *virtual* sizes (what an IMAP
//! client receives, where every bare LF becomes CRLF) and the decoded
//! `Content-*` data BODYSTRUCTURE needs; message roots (the message and the
//! message inside every message/rfc822 part) also carry their [`Envelope`].
//! Nothing of the body is copied: FETCH streams physical ranges through
//! [`LfToCrlf`], so a 50 MiB attachment never sits in memory twice.
//!
//! The structure scanner (`parse.rs`) is our own and follows Dovecot's
//! `message-parser.c` semantics, because clients compare sizes and part numbers
//! with what Dovecot produced for the same Maildir:
//! - a boundary line is `--` + an open boundary as a *prefix* of the line; the
//!   longest open boundary wins, so an inner part with a missing close
//!   delimiter is ended by its parent's boundary;
//! - the `[CR]LF` before a boundary line belongs to the boundary, not the body;
//! - a header cut short by a boundary line ends there and the body is empty;
//! - `Content-*` headers count only in MIME parts (`MIME-Version` or
//!   `Content-Type` present, or the parent is a multipart); a part without
//!   `Content-Type` is text/plain, or message/rfc822 inside multipart/digest.
//!
//! mail-parser 0.11 is used for what it does exactly: RFC 2047 words, charset
//! conversion, quoted-printable and base64 decoding (SEARCH) and Date: parsing.
//! Its own part tree (`MessageParser::parse`) is never used here: its offsets
//! fold boundary line ends differently from IMAP's rules, and it is not safe on
//! hostile nesting — it has no depth limit for unencoded message/rfc822 or
//! multipart nesting, and in our check a 10,000-level nested message/rfc822
//! message (470 KB) parsed fine but dropping the result overflowed a 2 MiB
//! thread stack (tokio's default) through recursive `Drop` of nested
//! `Message` values. Our scanner is iterative (no recursion at all) and stops
//! descending at [`crate::limits::MAX_MIME_DEPTH`] and
//! [`crate::limits::MAX_MIME_PARTS`], keeping deeper containers as opaque leaves.

#![deny(missing_docs)]

mod address;
mod binary;
mod cache;
pub mod casemap;
mod crlf;
pub mod decode;
mod header;
mod parse;
mod preview;
mod search;
mod section;
pub mod subject;
mod write;

pub use binary::{BinarySegment, UnknownCte, binary_header};
pub use crlf::{LfToCrlf, has_bare_lf, partial_window, virtual_len};
pub use header::header_fields;
pub use preview::{PreviewSource, message_preview, part_preview, preview_sources};
pub use search::{
    SentDate, address_search_text, contains_folded, decode_header_value, header_search_values_in,
    header_text_in, header_values_in, is_address_field, search_fields_in,
};
pub use section::{SectionPlan, SectionSpec, SectionText};
pub use write::{write_body, write_envelope};
// For the sort keys (crate::imap::sort::keys), which read the same fields ENVELOPE does.
pub(crate) use address::parse_address_list;
pub(crate) use header::{fields, unfold};
// For Sieve's `body :content` (crate::sieve::ext::body), which decodes parts as SEARCH does.
pub(crate) use search::decoded_text;

/// A half-open range `[start, end)` of byte offsets in the stored message file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Number of physical bytes in the range.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of this range inside `raw`, or an empty slice when the range
    /// does not fit (a cache entry that does not belong to this file).
    pub fn slice<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        let (Ok(s), Ok(e)) = (usize::try_from(self.start), usize::try_from(self.end)) else {
            return &[];
        };
        raw.get(s..e).unwrap_or(&[])
    }
}

/// Size of a byte range as an IMAP client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Size {
    /// Bytes after every bare LF has become CRLF.
    pub virtual_len: u64,
    /// Number of LFs (text lines, as Dovecot counts them).
    pub lines: u64,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.virtual_len += other.virtual_len;
        self.lines += other.lines;
    }
}

/// What a part contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A single part (text, attachment, or a container kept opaque by a limit).
    Leaf,
    /// multipart/*: the children are the body parts (possibly none when the
    /// boundary never appears or a limit was hit).
    Multipart,
    /// message/rfc822: exactly one child, the encapsulated message.
    Message,
}

/// One MIME parameter (`name=value`), after RFC 2231 continuations were joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as written (`name*` when RFC 2231 charset-encoded).
    pub name: Vec<u8>,
    /// Value, unquoted.
    pub value: Vec<u8>,
}

/// `Content-Disposition`: the disposition token and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ... as written.
    pub value: Vec<u8>,
    /// Parameters (filename, ...).
    pub params: Vec<Param>,
}

/// The `Content-*` data of one part, as written in its header (unfolded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentInfo {
    /// Media type as written (case kept, as Dovecot does); `None` = default.
    pub ctype: Option<Vec<u8>>,
    /// Media subtype as written; `None` when missing.
    pub subtype: Option<Vec<u8>>,
    /// Content-Type parameters.
    pub params: Vec<Param>,
    /// Content-ID.
    pub id: Option<Vec<u8>>,
    /// Content-Description.
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding token; `None` = 7bit (also when invalid).
    pub encoding: Option<Vec<u8>>,
    /// Content-MD5.
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition.
    pub disposition: Option<Disposition>,
    /// Content-Language tags.
    pub language: Vec<Vec<u8>>,
    /// Content-Location.
    pub location: Option<Vec<u8>>,
}

impl ContentInfo {
    /// The value of Content-Type parameter `name` (case-insensitive).
    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_slice())
    }

    /// True when the media type is `text` (or missing, which means text/plain).
    pub fn is_text(&self) -> bool {
        self.ctype
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case(b"text"))
    }
}

/// One ENVELOPE address: `(name adl mailbox host)`. Group start is
/// `(NIL NIL "group" NIL)`, group end `(NIL NIL NIL NIL)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name (phrase, encoded-words left as they are) or `None`.
    pub name: Option<Vec<u8>>,
    /// Source route (`@a,@b`) or `None`.
    pub adl: Option<Vec<u8>>,
    /// Local part, or the group name at a group start.
    pub mailbox: Option<Vec<u8>>,
    /// Domain; `None` marks group syntax.
    pub host: Option<Vec<u8>>,
}

/// RFC 3501 ENVELOPE data of one message: raw (unfolded) header values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Date:
    pub date: Option<Vec<u8>>,
    /// Subject:
    pub subject: Option<Vec<u8>>,
    /// From:
    pub from: Vec<Address>,
    /// Sender: (empty = use From when writing)
    pub sender: Vec<Address>,
    /// Reply-To: (empty = use From when writing)
    pub reply_to: Vec<Address>,
    /// To:
    pub to: Vec<Address>,
    /// Cc:
    pub cc: Vec<Address>,
    /// Bcc:
    pub bcc: Vec<Address>,
    /// In-Reply-To:
    pub in_reply_to: Option<Vec<u8>>,
    /// Message-ID:
    pub message_id: Option<Vec<u8>>,
}

/// One node of the part tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Index of the parent part, `None` for the message itself.
    pub parent: Option<u32>,
    /// Indices of the children, in order.
    pub children: Vec<u32>,
    /// What the part contains.
    pub kind: PartKind,
    /// Physical range of the header, including the blank line ending it.
    pub header: ByteRange,
    /// Virtual size of the header.
    pub header_size: Size,
    /// Physical range of the body.
    pub body: ByteRange,
    /// Virtual size and lines of the body.
    pub body_size: Size,
    /// Content-* data (defaults when the part is not MIME).
    pub content: ContentInfo,
    /// True when the part defaulted to message/rfc822 (no Content-Type in a
    /// multipart/digest).
    pub digest_default: bool,
    /// The envelope, for message roots: the message itself and the child of
    /// every message/rfc822 part.
    pub envelope: Option<Box<Envelope>>,
}

impl Part {
    fn new(parent: Option<u32>) -> Part {
        Part {
            parent,
            children: Vec::new(),
            kind: PartKind::Leaf,
            header: ByteRange::default(),
            header_size: Size::default(),
            body: ByteRange::default(),
            body_size: Size::default(),
            content: ContentInfo::default(),
            digest_default: false,
            envelope: None,
        }
    }

    /// Physical range of the whole part (header and body).
    pub fn whole(&self) -> ByteRange {
        ByteRange {
            start: self.header.start,
            end: self.body.end,
        }
    }
}

/// The parsed structure of one stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Part arena; `parts[0]` is the message itself.
    pub parts: Vec<Part>,
}

impl MessageInfo {
    /// Parses the raw stored bytes of a message (bare LF or CRLF line ends).
    /// Never fails: broken MIME gives the best structure Dovecot would give.
    pub fn parse(raw: &[u8]) -> MessageInfo {
        parse::parse(raw)
    }

    /// [`MessageInfo::parse`] without the envelopes: the same parts, ranges and content fields,
    /// and [`MessageInfo::envelope`] empty. For SEARCH, which reads the header fields it needs
    /// itself, so that parsing the addresses of every message is not part of a body search.
    pub fn parse_structure(raw: &[u8]) -> MessageInfo {
        parse::parse_with(raw, false)
    }

    /// The message part (index 0).
    pub fn root(&self) -> &Part {
        // `parse` and `from_cache_bytes` never produce an empty arena; the
        // fallback keeps this total anyway.
        self.parts.first().unwrap_or(&EMPTY_PART)
    }

    /// Part at `index`, if any.
    pub fn part(&self, index: u32) -> Option<&Part> {
        self.parts.get(index as usize)
    }

    /// The message's ENVELOPE data.
    pub fn envelope(&self) -> &Envelope {
        self.root().envelope.as_deref().unwrap_or(&EMPTY_ENVELOPE)
    }

    /// RFC822.SIZE: virtual size of the whole message.
    pub fn virtual_size(&self) -> u64 {
        let r = self.root();
        // Saturating: a structure built by hand need not come from a real file.
        r.header_size
            .virtual_len
            .saturating_add(r.body_size.virtual_len)
    }
}

static EMPTY_ENVELOPE: Envelope = Envelope {
    date: None,
    subject: None,
    from: Vec::new(),
    sender: Vec::new(),
    reply_to: Vec::new(),
    to: Vec::new(),
    cc: Vec::new(),
    bcc: Vec::new(),
    in_reply_to: None,
    message_id: None,
};

static EMPTY_PART: Part = Part {
    parent: None,
    children: Vec::new(),
    kind: PartKind::Leaf,
    header: ByteRange { start: 0, end: 0 },
    header_size: Size {
        virtual_len: 0,
        lines: 0,
    },
    body: ByteRange { start: 0, end: 0 },
    body_size: Size {
        virtual_len: 0,
        lines: 0,
    },
    content: ContentInfo {
        ctype: None,
        subtype: None,
        params: Vec::new(),
        id: None,
        description: None,
        encoding: None,
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
    },
    digest_default: false,
    envelope: None,
};
