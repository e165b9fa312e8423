//! Turning the parsed FETCH attribute list into what one message's response needs: the items in
//! the order they are written, and whether the message file, its MIME structure or a `\Seen`
//! change are needed at all (so `FETCH 1:* FLAGS` never opens a file).

use std::collections::{HashMap, HashSet};

use super::structure::Wanted;
use crate::imap::proto::encode::write_section;
use crate::imap::proto::types::{FetchAttr, Partial, Section, SectionText};
use crate::imap::response::ImapError;
use crate::mime::{self, SectionSpec};
use crate::storage::{InternalDates, MessageObject};

/// The text specifier of a section, owned (the mime module borrows it per use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// The whole part (`BODY[]`, `BODY[1.2]`).
    Full,
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)` (`not` = `.NOT`).
    Fields {
        /// Field names as the client sent them.
        names: Vec<Vec<u8>>,
        /// True for `HEADER.FIELDS.NOT`.
        not: bool,
    },
    /// `TEXT`
    Text,
    /// `MIME`
    Mime,
}

/// One body-section item: which bytes, which window, and the attribute it answers (for the
/// response name: `BODY[...]<origin>`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`).
#[derive(Debug, Clone)]
pub struct SectionItem {
    /// The attribute as the client sent it.
    pub attr: FetchAttr,
    /// Part numbers; empty for the whole message.
    pub path: Vec<u32>,
    /// What of the part.
    pub text: Text,
    /// `<origin.count>`, if given.
    pub partial: Option<(u64, u64)>,
}

impl SectionItem {
    /// True for the whole message (`BODY[]`, `RFC822`): served from the file alone, with the
    /// storage's virtual size, so it always matches RFC822.SIZE.
    pub fn is_whole_message(&self) -> bool {
        self.path.is_empty() && self.text == Text::Full
    }

    /// Calls `f` with the mime module's view of this section.
    pub fn with_spec<R>(&self, f: impl FnOnce(&SectionSpec<'_>) -> R) -> R {
        let names: Vec<&[u8]> = match &self.text {
            Text::Fields { names, .. } => names.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        };
        let text = match &self.text {
            Text::Full => mime::SectionText::Full,
            Text::Header => mime::SectionText::Header,
            Text::Fields { not: false, .. } => mime::SectionText::HeaderFields(&names),
            Text::Fields { not: true, .. } => mime::SectionText::HeaderFieldsNot(&names),
            Text::Text => mime::SectionText::Text,
            Text::Mime => mime::SectionText::Mime,
        };
        f(&SectionSpec {
            path: &self.path,
            text,
        })
    }

    /// The names of HEADER.FIELDS[.NOT], borrowed as the mime module wants them.
    pub fn field_names(&self) -> Vec<&[u8]> {
        match &self.text {
            Text::Fields { names, .. } => names.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        }
    }
}

/// One item of a FETCH response, in the order it is written.
#[derive(Debug, Clone)]
pub enum Item {
    /// `UID n`
    Uid,
    /// `FLAGS (...)`
    Flags,
    /// `INTERNALDATE "..."`
    InternalDate,
    /// `RFC822.SIZE n`
    Rfc822Size,
    /// `MODSEQ (n)` (RFC 7162)
    ModSeq,
    /// `ENVELOPE (...)`
    Envelope,
    /// `BODY (...)` (non-extensible structure)
    Body,
    /// `BODYSTRUCTURE (...)`
    BodyStructure,
    /// A body section.
    Section(SectionItem),
    /// `PREVIEW` (RFC 8970); `lazy`: only a cached preview, else NIL.
    Preview {
        /// `PREVIEW (LAZY)`
        lazy: bool,
    },
    /// `SAVEDATE "..."` or `SAVEDATE NIL` (RFC 8514)
    SaveDate,
    /// `EMAILID (id)` (RFC 8474)
    EmailId,
    /// `THREADID (id)` or `THREADID NIL` (RFC 8474)
    ThreadId,
    /// `BINARY[part]<partial>` (RFC 3516).
    Binary(BinaryItem),
    /// `BINARY.SIZE[part]` (RFC 3516).
    BinarySize(BinaryItem),
}

/// One BINARY or BINARY.SIZE item (RFC 3516).
#[derive(Debug, Clone)]
pub struct BinaryItem {
    /// The attribute as the client sent it.
    pub attr: FetchAttr,
    /// Part numbers; empty for the whole message.
    pub path: Vec<u32>,
    /// `<origin.count>` in decoded octets, if given.
    pub partial: Option<(u64, u64)>,
}

fn binary_item(attr: &FetchAttr) -> BinaryItem {
    let (part, p) = match attr {
        FetchAttr::Binary { part, partial, .. } => (part.as_slice(), *partial),
        FetchAttr::BinarySize { part } => (part.as_slice(), None),
        _ => (&[][..], None),
    };
    BinaryItem {
        attr: attr.clone(),
        path: part.iter().map(|n| n.get()).collect(),
        partial: partial(p),
    }
}

/// What every message of one FETCH command needs.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    /// Items to write, duplicates removed, `UID` first for UID FETCH.
    pub items: Vec<Item>,
    /// Some item needs the MIME structure (ENVELOPE, BODY[STRUCTURE], a section other than the
    /// whole message).
    pub needs_structure: bool,
    /// Some item reads the message file.
    pub needs_file: bool,
    /// Some item sets `\Seen` (RFC822, RFC822.TEXT, BODY[...] without PEEK).
    pub sets_seen: bool,
    /// FLAGS was asked for, so the implicit FLAGS after a `\Seen` change is not added again.
    pub has_flags: bool,
    /// CHANGEDSINCE (RFC 7162 3.1.4.1): only messages with a greater mod-sequence.
    pub changed_since: Option<u64>,
    /// Which parts of the MIME structure the items need.
    pub wanted: Wanted,
    /// The INTERNALDATEs of the messages fetched, read before the run when INTERNALDATE is
    /// asked for (`crate::imap::cmd::fetch`); a message without one is answered as expunged.
    pub internal_dates: Option<InternalDates>,
    /// The client enabled UTF8=ACCEPT (RFC 6855): ENVELOPE, BODY and BODYSTRUCTURE go out with
    /// header text as stored. Off by default, so they are downgraded to 7-bit
    /// (`super::downgrade`) unless the FETCH command says otherwise.
    pub utf8_accept: bool,
    /// SAVEDATE, EMAILID and THREADID of the messages fetched, read before the run when one of
    /// them is asked for (`crate::imap::cmd::fetch`); a message without them is answered as
    /// expunged.
    pub objects: Option<HashMap<u32, MessageObject>>,
}

impl FetchPlan {
    /// Some item is answered from [`FetchPlan::objects`].
    pub fn needs_objects(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::SaveDate | Item::EmailId | Item::ThreadId))
    }

    /// The structure is needed only to make previews that are not cached yet (PREVIEW without
    /// ENVELOPE, BODY, BODYSTRUCTURE, a section or BINARY): a group of messages whose previews
    /// are all cached is written without loading any structure.
    pub fn structure_only_for_preview(&self) -> bool {
        self.needs_structure
            && self.items.iter().all(|i| match i {
                Item::Envelope
                | Item::Body
                | Item::BodyStructure
                | Item::Binary(_)
                | Item::BinarySize(_) => false,
                Item::Section(s) => s.is_whole_message(),
                _ => true,
            })
    }

    /// `Some(lazy)` when PREVIEW is asked for: `Some(true)` for `PREVIEW (LAZY)` alone, which
    /// never reads a message.
    pub fn preview(&self) -> Option<bool> {
        self.items.iter().find_map(|i| match i {
            Item::Preview { lazy } => Some(*lazy),
            _ => None,
        })
    }

    /// Once CONDSTORE is enabled, a response that reports a `\Seen` this FETCH set also carries
    /// UID and MODSEQ (RFC 7162 3.2.4).
    pub fn report_seen_changes(&mut self) {
        if !self.sets_seen {
            return;
        }
        if !self.items.iter().any(|i| matches!(i, Item::Uid)) {
            self.items.insert(0, Item::Uid);
        }
        if !self.items.iter().any(|i| matches!(i, Item::ModSeq)) {
            self.items.push(Item::ModSeq);
        }
    }
}

fn partial(p: Option<Partial>) -> Option<(u64, u64)> {
    p.map(|p| (u64::from(p.origin), u64::from(p.count.get())))
}

/// The key under which an item appears in the response; two attributes with the same key would
/// produce the same response item, so only the first is kept (as Dovecot does).
fn response_key(item: &Item) -> Vec<u8> {
    match item {
        Item::Uid => b"UID".to_vec(),
        Item::Flags => b"FLAGS".to_vec(),
        Item::InternalDate => b"INTERNALDATE".to_vec(),
        Item::Rfc822Size => b"RFC822.SIZE".to_vec(),
        Item::ModSeq => b"MODSEQ".to_vec(),
        Item::Envelope => b"ENVELOPE".to_vec(),
        Item::Body => b"BODY".to_vec(),
        Item::BodyStructure => b"BODYSTRUCTURE".to_vec(),
        Item::Preview { .. } => b"PREVIEW".to_vec(),
        Item::SaveDate => b"SAVEDATE".to_vec(),
        Item::EmailId => b"EMAILID".to_vec(),
        Item::ThreadId => b"THREADID".to_vec(),
        Item::Section(s) => {
            let mut k = Vec::new();
            match &s.attr {
                FetchAttr::Rfc822 => k.extend_from_slice(b"RFC822"),
                FetchAttr::Rfc822Header => k.extend_from_slice(b"RFC822.HEADER"),
                FetchAttr::Rfc822Text => k.extend_from_slice(b"RFC822.TEXT"),
                FetchAttr::BodySection { section, .. } => {
                    k.extend_from_slice(b"BODY[");
                    write_section(&mut k, section);
                    k.push(b']');
                }
                _ => {}
            }
            if let Some((origin, _)) = s.partial {
                k.extend_from_slice(format!("<{origin}>").as_bytes());
            }
            k
        }
        Item::Binary(b) | Item::BinarySize(b) => {
            let mut k = if matches!(item, Item::Binary(_)) {
                b"BINARY[".to_vec()
            } else {
                b"BINARY.SIZE[".to_vec()
            };
            let path: Vec<String> = b.path.iter().map(u32::to_string).collect();
            k.extend_from_slice(path.join(".").as_bytes());
            k.push(b']');
            if let Some((origin, _)) = b.partial {
                k.extend_from_slice(format!("<{origin}>").as_bytes());
            }
            k
        }
    }
}

fn section_item(attr: &FetchAttr, section: &Section, p: Option<Partial>) -> SectionItem {
    let text = match &section.text {
        None => Text::Full,
        Some(SectionText::Header) => Text::Header,
        Some(SectionText::Text) => Text::Text,
        Some(SectionText::Mime) => Text::Mime,
        Some(SectionText::HeaderFields(n)) => Text::Fields {
            names: n.clone(),
            not: false,
        },
        Some(SectionText::HeaderFieldsNot(n)) => Text::Fields {
            names: n.clone(),
            not: true,
        },
    };
    SectionItem {
        attr: attr.clone(),
        path: section.part.iter().map(|n| n.get()).collect(),
        text,
        partial: partial(p),
    }
}

fn whole(attr: FetchAttr, text: Text) -> SectionItem {
    SectionItem {
        attr,
        path: Vec::new(),
        text,
        partial: None,
    }
}

impl FetchPlan {
    /// Builds the plan.
    pub fn new(
        attrs: &[FetchAttr],
        uid: bool,
        changed_since: Option<u64>,
    ) -> Result<FetchPlan, ImapError> {
        let mut items = Vec::with_capacity(attrs.len() + 2);
        if uid {
            // RFC 3501 6.4.8: UID FETCH responses always carry the UID.
            items.push(Item::Uid);
        }
        let mut sets_seen = false;
        for a in attrs {
            sets_seen |= a.sets_seen();
            items.push(match a {
                FetchAttr::Envelope => Item::Envelope,
                FetchAttr::Flags => Item::Flags,
                FetchAttr::InternalDate => Item::InternalDate,
                FetchAttr::Rfc822Size => Item::Rfc822Size,
                FetchAttr::Body => Item::Body,
                FetchAttr::BodyStructure => Item::BodyStructure,
                FetchAttr::Uid => Item::Uid,
                FetchAttr::ModSeq => Item::ModSeq,
                FetchAttr::SaveDate => Item::SaveDate,
                FetchAttr::EmailId => Item::EmailId,
                FetchAttr::ThreadId => Item::ThreadId,
                FetchAttr::Rfc822 => Item::Section(whole(a.clone(), Text::Full)),
                FetchAttr::Rfc822Header => Item::Section(whole(a.clone(), Text::Header)),
                FetchAttr::Rfc822Text => Item::Section(whole(a.clone(), Text::Text)),
                FetchAttr::BodySection {
                    section, partial, ..
                } => Item::Section(section_item(a, section, *partial)),
                FetchAttr::Binary { .. } => Item::Binary(binary_item(a)),
                FetchAttr::BinarySize { .. } => Item::BinarySize(binary_item(a)),
                FetchAttr::Preview { lazy } => Item::Preview { lazy: *lazy },
            });
        }
        if changed_since.is_some() {
            // RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ.
            items.push(Item::ModSeq);
        }
        if items
            .iter()
            .any(|i| matches!(i, Item::Preview { lazy: false }))
        {
            // `PREVIEW (LAZY) PREVIEW` answers one PREVIEW item: the one that may not be NIL.
            for i in &mut items {
                if let Item::Preview { lazy } = i {
                    *lazy = false;
                }
            }
        }
        let mut seen = HashSet::new();
        items.retain(|i| seen.insert(response_key(i)));
        let needs_structure = items.iter().any(|i| match i {
            Item::Envelope | Item::Body | Item::BodyStructure => true,
            Item::Section(s) => !s.is_whole_message(),
            // BINARY needs the parts' Content-Transfer-Encoding, even for BINARY[].
            Item::Binary(_) | Item::BinarySize(_) => true,
            // A preview is made from the structure; LAZY only looks in the cache.
            Item::Preview { lazy } => !lazy,
            _ => false,
        });
        let needs_file = items
            .iter()
            .any(|i| matches!(i, Item::Section(_) | Item::Binary(_) | Item::BinarySize(_)));
        let has_flags = items.iter().any(|i| matches!(i, Item::Flags));
        let wanted = Wanted {
            envelope: items.iter().any(|i| matches!(i, Item::Envelope)),
            body: items.iter().any(|i| matches!(i, Item::Body)),
            bodystructure: items.iter().any(|i| matches!(i, Item::BodyStructure)),
            info: items.iter().any(|i| {
                matches!(i, Item::Section(s) if !s.is_whole_message())
                    || matches!(i, Item::Binary(_) | Item::BinarySize(_))
                    || matches!(i, Item::Preview { lazy: false })
            }),
        };
        Ok(FetchPlan {
            items,
            needs_structure,
            needs_file,
            sets_seen,
            has_flags,
            changed_since,
            wanted,
            internal_dates: None,
            utf8_accept: false,
            objects: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn body(
        peek: bool,
        text: Option<SectionText>,
        part: &[u32],
        p: Option<(u32, u32)>,
    ) -> FetchAttr {
        FetchAttr::BodySection {
            peek,
            section: Section {
                part: part.iter().filter_map(|n| NonZeroU32::new(*n)).collect(),
                text,
            },
            partial: p
                .and_then(|(o, c)| NonZeroU32::new(c).map(|count| Partial { origin: o, count })),
        }
    }

    #[test]
    fn uid_fetch_puts_uid_first_once() {
        let p = FetchPlan::new(&[FetchAttr::Flags, FetchAttr::Uid], true, None);
        let p = p.map(|p| p.items.iter().map(response_key).collect::<Vec<_>>());
        assert_eq!(p.ok(), Some(vec![b"UID".to_vec(), b"FLAGS".to_vec()]));
    }

    #[test]
    fn duplicates_by_response_name_are_dropped_but_seen_is_kept() {
        let attrs = [
            body(true, None, &[], None),
            body(false, None, &[], None),
            body(true, None, &[], Some((0, 10))),
            body(true, None, &[], Some((0, 20))),
        ];
        let Ok(p) = FetchPlan::new(&attrs, false, None) else {
            panic!("plan refused")
        };
        let keys: Vec<_> = p.items.iter().map(response_key).collect();
        assert_eq!(keys, vec![b"BODY[]".to_vec(), b"BODY[]<0>".to_vec()]);
        assert!(p.sets_seen);
        assert!(p.needs_file);
        assert!(!p.needs_structure, "BODY[] is served without parsing");
    }

    #[test]
    fn structure_and_file_needs() {
        let Ok(p) = FetchPlan::new(&[FetchAttr::Flags, FetchAttr::Envelope], false, None) else {
            panic!("plan refused")
        };
        assert!(p.needs_structure && !p.needs_file && !p.sets_seen && p.has_flags);
        let Ok(p) = FetchPlan::new(&[FetchAttr::Rfc822Header], false, None) else {
            panic!("plan refused")
        };
        assert!(p.needs_structure && p.needs_file && !p.sets_seen);
        let Ok(p) = FetchPlan::new(
            &[body(false, Some(SectionText::Mime), &[1], None)],
            false,
            None,
        ) else {
            panic!("plan refused")
        };
        assert!(p.needs_structure && p.sets_seen);
    }

    #[test]
    fn binary_needs_structure_and_file_and_changedsince_adds_modseq() {
        let size = FetchAttr::BinarySize {
            part: vec![NonZeroU32::MIN],
        };
        let peek = FetchAttr::Binary {
            peek: true,
            part: Vec::new(),
            partial: None,
        };
        let Ok(p) = FetchPlan::new(&[size, peek], false, None) else {
            panic!("plan refused")
        };
        let keys: Vec<_> = p.items.iter().map(response_key).collect();
        assert_eq!(keys, vec![b"BINARY.SIZE[1]".to_vec(), b"BINARY[]".to_vec()]);
        assert!(p.needs_structure && p.needs_file && p.wanted.info && !p.sets_seen);
        let seen = FetchAttr::Binary {
            peek: false,
            part: vec![NonZeroU32::MIN],
            partial: None,
        };
        assert!(FetchPlan::new(&[seen], false, None).is_ok_and(|p| p.sets_seen));
        let Ok(p) = FetchPlan::new(&[FetchAttr::Flags], false, Some(5)) else {
            panic!("plan refused")
        };
        assert!(matches!(p.items.last(), Some(Item::ModSeq)));
    }

    #[test]
    fn preview_needs_the_structure_unless_lazy() {
        let lazy = FetchAttr::Preview { lazy: true };
        let now = FetchAttr::Preview { lazy: false };
        let Ok(p) = FetchPlan::new(&[FetchAttr::Flags, lazy.clone()], false, None) else {
            panic!("plan refused")
        };
        assert_eq!(p.preview(), Some(true));
        assert!(!p.needs_structure && !p.needs_file && !p.wanted.info && !p.sets_seen);
        let Ok(p) = FetchPlan::new(std::slice::from_ref(&now), true, None) else {
            panic!("plan refused")
        };
        assert_eq!(p.preview(), Some(false));
        assert!(p.needs_structure && p.wanted.info && !p.needs_file && !p.sets_seen);
        // Both forms in one command: one PREVIEW item, the one that is never NIL.
        let Ok(p) = FetchPlan::new(&[lazy, FetchAttr::Uid, now], false, None) else {
            panic!("plan refused")
        };
        let keys: Vec<_> = p.items.iter().map(response_key).collect();
        assert_eq!(keys, vec![b"PREVIEW".to_vec(), b"UID".to_vec()]);
        assert_eq!(p.preview(), Some(false));
        assert!(p.needs_structure && p.structure_only_for_preview());
        // With ENVELOPE the structure is needed whatever the preview cache holds.
        let Ok(p) = FetchPlan::new(
            &[FetchAttr::Envelope, FetchAttr::Preview { lazy: false }],
            false,
            None,
        ) else {
            panic!("plan refused")
        };
        assert!(p.needs_structure && !p.structure_only_for_preview());
    }
}
