//! CATENATE URL parts (RFC 4469 3): a URL ([`crate::imap::url`]) resolved to the octets of a
//! message or part of the logged-in user's own mail, read in bounded chunks through the FETCH
//! section machinery ([`SectionCopy`]), so a URL part copies exactly what `UID FETCH uid
//! BODY.PEEK[section]<partial>` would send.
//!
//! Every failure to resolve (malformed, absolute or foreign URL, missing mailbox, wrong
//! UIDVALIDITY, expunged or missing UID, bad or missing section) answers the same `NO [BADURL "url"]`
//! (RFC 4469 4.1), so a URL cannot probe what exists.

use std::sync::Arc;

use crate::imap::fetch::plan::Item;
use crate::imap::fetch::{FetchPlan, Scratch, SectionCopy, structure};
use crate::imap::proto::parse::parse_command;
use crate::imap::proto::types::CommandBody;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};
use crate::imap::url::parse_message_url;
use crate::storage::{OpenOptions, StorageError, UserStore, View};

/// How a URL part's mailbox is opened: read-only, `\Recent` untouched, no watching.
const URL_VIEW: OpenOptions = OpenOptions {
    read_only: true,
    claim_recent: false,
    watch: false,
};

/// A resolved URL part being read.
pub struct UrlSource {
    /// The octets, chunk by chunk.
    pub copy: SectionCopy,
    /// Its buffers.
    pub scratch: Scratch,
    /// Keeps the mailbox open while it is read.
    _view: View,
}

/// Resolves the URL `raw` (as the client sent it) for the user of `store`.
pub async fn resolve(
    s: &Session,
    store: &Arc<dyn UserStore>,
    raw: &[u8],
) -> Result<UrlSource, ImapError> {
    let bad = || ImapError::BadUrl(String::from_utf8_lossy(raw).into_owned());
    let url = parse_message_url(raw).map_err(|_| bad())?;
    let selected = match &s.state {
        State::Selected(_, sel) => Some(sel.view.name().to_owned()),
        _ => None,
    };
    let name = url.mailbox_name(selected.as_deref()).ok_or_else(bad)?;
    let view = store.open(&name, URL_VIEW).await.map_err(|_| bad())?;
    if url.uidvalidity.is_some_and(|v| v != view.uidvalidity()) {
        return Err(bad());
    }
    let meta = view.messages().find(url.uid).cloned().ok_or_else(bad)?;
    // The section through the FETCH grammar and plan: one section resolver for both.
    let section = url.section.as_deref().unwrap_or("");
    if section
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'[' || b == b']')
    {
        return Err(bad());
    }
    let fetch = format!("x UID FETCH 1 BODY.PEEK[{section}]\r\n");
    let attrs = match parse_command(fetch.as_bytes()) {
        Ok(c) => match c.body {
            CommandBody::Fetch { attrs, .. } if attrs.len() == 1 => attrs,
            _ => return Err(bad()),
        },
        Err(_) => return Err(bad()),
    };
    let plan = FetchPlan::new(&attrs, false, None).map_err(|_| bad())?;
    let mut item = plan
        .items
        .iter()
        .find_map(|i| match i {
            Item::Section(s) => Some(s.clone()),
            _ => None,
        })
        .ok_or_else(bad)?;
    // RFC 5092 `partial-range`: a missing length means to the end, as a FETCH count past it.
    item.partial = url.partial.map(|(o, l)| (o, l.unwrap_or(u64::MAX)));
    let info = if item.is_whole_message() {
        None
    } else {
        let max = s.shared.config().limits.max_message_size;
        let group = structure::load(&view, &[(1, meta.clone())], plan.wanted, max).await?;
        match group.structures.into_iter().next() {
            Some(Ok(st)) => st.info,
            _ => return Err(bad()),
        }
    };
    let mut msg = match view.open_message(meta.uid, 0).await {
        Ok(m) => m,
        Err(StorageError::Expunged) => return Err(bad()),
        Err(e) => return Err(e.into()),
    };
    let mut scratch = Scratch::new();
    let copy = SectionCopy::open(&item, info.as_ref(), &mut msg, &mut scratch).await?;
    if !copy.exists {
        // RFC 4469 4.1: an invalid body part is a BADURL (its example: `;section=1.5.9`).
        return Err(bad());
    }
    Ok(UrlSource {
        copy,
        scratch,
        _view: view,
    })
}
