//! Compact versioned binary form of [`MessageInfo`], for the storage layer to
//! persist so FETCH ENVELOPE/BODYSTRUCTURE of a large mailbox never re-parses.
//!
//! Written by hand (no serde format crate needed): magic `MCMI`, a version
//! byte, then LEB128 integers and length-prefixed byte strings. Children are
//! not stored; they are rebuilt from parent indices, which must point to an
//! earlier part, so a blob can only describe a tree. A blob that is truncated,
//! has trailing bytes, a different version, or breaks the structural rules
//! (message parts have one child, leaves none, nesting and part count within
//! limits) is refused with `None`, and the caller re-parses the message.

use super::{
    Address, ByteRange, ContentInfo, Disposition, Envelope, MessageInfo, Param, Part, PartKind,
    Size,
};
use crate::limits::{MAX_ENVELOPE_ADDRESSES, MAX_MIME_CACHE_BYTES, MAX_MIME_DEPTH, MAX_MIME_PARTS};

const MAGIC: &[u8; 4] = b"MCMI";
const VERSION: u8 = 1;

struct W(Vec<u8>);

impl W {
    fn u(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.bytes(b);
            }
        }
    }
    fn params(&mut self, ps: &[Param]) {
        self.u(ps.len() as u64);
        for p in ps {
            self.bytes(&p.name);
            self.bytes(&p.value);
        }
    }
    fn addrs(&mut self, l: &[Address]) {
        self.u(l.len() as u64);
        for a in l {
            self.opt(a.name.as_deref());
            self.opt(a.adl.as_deref());
            self.opt(a.mailbox.as_deref());
            self.opt(a.host.as_deref());
        }
    }
}

struct R<'a> {
    s: &'a [u8],
    i: usize,
}

impl R<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.s.get(self.i)?;
        self.i += 1;
        Some(b)
    }
    fn u(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u()?).ok()?;
        (n <= self.s.len().saturating_sub(self.i)).then_some(n)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.len()?;
        let b = self.s.get(self.i..self.i + n)?.to_vec();
        self.i += n;
        Some(b)
    }
    fn opt(&mut self) -> Option<Option<Vec<u8>>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.bytes()?)),
            _ => None,
        }
    }
    fn params(&mut self) -> Option<Vec<Param>> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push(Param {
                name: self.bytes()?,
                value: self.bytes()?,
            });
        }
        Some(v)
    }
    fn addrs(&mut self) -> Option<Vec<Address>> {
        let n = self.len()?;
        // The parser never keeps more; a blob with more is damaged or foreign.
        if n > MAX_ENVELOPE_ADDRESSES {
            return None;
        }
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push(Address {
                name: self.opt()?,
                adl: self.opt()?,
                mailbox: self.opt()?,
                host: self.opt()?,
            });
        }
        Some(v)
    }
    fn range(&mut self) -> Option<ByteRange> {
        let start = self.u()?;
        let end = self.u()?;
        (start <= end).then_some(ByteRange { start, end })
    }
    fn size(&mut self) -> Option<Size> {
        Some(Size {
            virtual_len: self.u()?,
            lines: self.u()?,
        })
    }
}

impl MessageInfo {
    /// Serialises the structure for the storage cache.
    pub fn to_cache_bytes(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(256));
        w.0.extend_from_slice(MAGIC);
        w.0.push(VERSION);
        w.u(self.parts.len() as u64);
        for p in &self.parts {
            w.u(p.parent.map_or(0, |x| u64::from(x) + 1));
            w.0.push(match p.kind {
                PartKind::Leaf => 0,
                PartKind::Multipart => 1,
                PartKind::Message => 2,
            });
            w.0.push(u8::from(p.digest_default));
            w.u(p.header.start);
            w.u(p.header.end);
            w.u(p.header_size.virtual_len);
            w.u(p.header_size.lines);
            w.u(p.body.start);
            w.u(p.body.end);
            w.u(p.body_size.virtual_len);
            w.u(p.body_size.lines);
            let c = &p.content;
            w.opt(c.ctype.as_deref());
            w.opt(c.subtype.as_deref());
            w.params(&c.params);
            w.opt(c.id.as_deref());
            w.opt(c.description.as_deref());
            w.opt(c.encoding.as_deref());
            w.opt(c.md5.as_deref());
            match &c.disposition {
                None => w.0.push(0),
                Some(d) => {
                    w.0.push(1);
                    w.bytes(&d.value);
                    w.params(&d.params);
                }
            }
            w.u(c.language.len() as u64);
            for l in &c.language {
                w.bytes(l);
            }
            w.opt(c.location.as_deref());
            match &p.envelope {
                None => w.0.push(0),
                Some(e) => {
                    w.0.push(1);
                    w.opt(e.date.as_deref());
                    w.opt(e.subject.as_deref());
                    for l in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
                        w.addrs(l);
                    }
                    w.opt(e.in_reply_to.as_deref());
                    w.opt(e.message_id.as_deref());
                }
            }
        }
        w.0
    }

    /// Reads a blob written by [`MessageInfo::to_cache_bytes`]; `None` when it
    /// is not a valid blob of this version.
    pub fn from_cache_bytes(blob: &[u8]) -> Option<MessageInfo> {
        if blob.len() > MAX_MIME_CACHE_BYTES {
            return None;
        }
        let mut r = R { s: blob, i: 0 };
        if blob.get(..4)? != MAGIC || *blob.get(4)? != VERSION {
            return None;
        }
        r.i = 5;
        let n = r.len()?;
        if n == 0 || n > MAX_MIME_PARTS {
            return None;
        }
        let mut parts: Vec<Part> = Vec::with_capacity(n);
        let mut depth: Vec<usize> = Vec::with_capacity(n);
        for idx in 0..n {
            let parent = match r.u()? {
                0 => None,
                x => Some(u32::try_from(x - 1).ok()?),
            };
            // The root and only the root has no parent; parents come first.
            match parent {
                None if idx != 0 => return None,
                Some(p) if p as usize >= idx => return None,
                _ => {}
            }
            let kind = match r.byte()? {
                0 => PartKind::Leaf,
                1 => PartKind::Multipart,
                2 => PartKind::Message,
                _ => return None,
            };
            let digest_default = match r.byte()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let header = r.range()?;
            let header_size = r.size()?;
            let body = r.range()?;
            let body_size = r.size()?;
            // A part's header precedes its body; otherwise `Part::whole` is an
            // inverted range and FETCH BODY[] would announce bytes it cannot send.
            // The whole part's size must be a number too (RFC822.SIZE, BODY[]).
            if header.end > body.start
                || header_size
                    .virtual_len
                    .checked_add(body_size.virtual_len)
                    .is_none()
            {
                return None;
            }
            let mut c = ContentInfo {
                ctype: r.opt()?,
                subtype: r.opt()?,
                params: r.params()?,
                id: r.opt()?,
                description: r.opt()?,
                encoding: r.opt()?,
                md5: r.opt()?,
                ..ContentInfo::default()
            };
            c.disposition = match r.byte()? {
                0 => None,
                1 => Some(Disposition {
                    value: r.bytes()?,
                    params: r.params()?,
                }),
                _ => return None,
            };
            let nl = r.len()?;
            for _ in 0..nl {
                c.language.push(r.bytes()?);
            }
            c.location = r.opt()?;
            let envelope = match r.byte()? {
                0 => None,
                1 => Some(Box::new(Envelope {
                    date: r.opt()?,
                    subject: r.opt()?,
                    from: r.addrs()?,
                    sender: r.addrs()?,
                    reply_to: r.addrs()?,
                    to: r.addrs()?,
                    cc: r.addrs()?,
                    bcc: r.addrs()?,
                    in_reply_to: r.opt()?,
                    message_id: r.opt()?,
                })),
                _ => return None,
            };
            let d = match parent {
                None => 0,
                Some(p) => {
                    let pp = parts.get_mut(p as usize)?;
                    if pp.kind == PartKind::Leaf
                        || (pp.kind == PartKind::Message && !pp.children.is_empty())
                    {
                        return None;
                    }
                    pp.children.push(idx as u32);
                    depth.get(p as usize)? + 1
                }
            };
            if d > MAX_MIME_DEPTH {
                return None;
            }
            depth.push(d);
            parts.push(Part {
                parent,
                children: Vec::new(),
                kind,
                header,
                header_size,
                body,
                body_size,
                content: c,
                digest_default,
                envelope,
            });
        }
        if r.i != blob.len() {
            return None;
        }
        if parts
            .iter()
            .any(|p| p.kind == PartKind::Message && p.children.len() != 1)
        {
            return None;
        }
        Some(MessageInfo { parts })
    }
}
