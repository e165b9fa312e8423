//! LIST (RFC 3501 6.3.8 with RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS).
//! LSUB is in `lsub.rs`.

use std::collections::BTreeSet;

use super::Reply;
use super::helpers::{full_pattern, status_items, status_mailbox_id, wire_separator};
use crate::imap::names;
use crate::imap::proto::encode::{self, ListKind};
use crate::imap::proto::types::{ListReturn, ListSelect, Mailbox, MailboxAttr, StatusItem};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::{MailboxInfo, SpecialUse};

/// The attributes LIST gives `b` whatever the command asked: `\Noselect`, children, special use.
/// NOTIFY's `* LIST` for a MailboxName event and IMAP4rev2's LIST on SELECT use it too.
pub(crate) fn mailbox_attrs(b: &MailboxInfo) -> Vec<MailboxAttr> {
    let mut attrs = Vec::new();
    if b.noselect {
        attrs.push(MailboxAttr::Noselect);
    }
    attrs.push(if b.has_children {
        MailboxAttr::HasChildren
    } else {
        MailboxAttr::HasNoChildren
    });
    if let Some(u) = b.special_use {
        attrs.push(special_attr(u));
    }
    attrs
}

fn special_attr(u: SpecialUse) -> MailboxAttr {
    match u {
        SpecialUse::All => MailboxAttr::All,
        SpecialUse::Archive => MailboxAttr::Archive,
        SpecialUse::Drafts => MailboxAttr::Drafts,
        SpecialUse::Flagged => MailboxAttr::Flagged,
        SpecialUse::Junk => MailboxAttr::Junk,
        SpecialUse::Sent => MailboxAttr::Sent,
        SpecialUse::Trash => MailboxAttr::Trash,
    }
}

struct Line {
    name: String,
    attrs: Vec<MailboxAttr>,
    childinfo: bool,
    selectable: bool,
}

/// LIST in its basic and extended forms.
pub async fn list(
    s: &mut Session,
    selection: Option<&[ListSelect]>,
    reference: &Mailbox,
    patterns: &[Vec<u8>],
    returns: Option<&[ListReturn]>,
) -> Result<Reply, ImapError> {
    let store = s.store()?;
    let sep = store.separator();
    let delimiter = wire_separator(sep)?;
    let selection = selection.unwrap_or(&[]);
    let returns = returns.unwrap_or(&[]);
    let sel_subscribed = selection.contains(&ListSelect::Subscribed);
    let sel_special = selection.contains(&ListSelect::SpecialUse);
    let recursive = selection.contains(&ListSelect::RecursiveMatch);
    let ret_subscribed = sel_subscribed || returns.contains(&ListReturn::Subscribed);
    let status: Option<&[StatusItem]> = returns.iter().find_map(|r| match r {
        ListReturn::Status(items) => Some(items.as_slice()),
        _ => None,
    });

    // `LIST "" ""`: the hierarchy delimiter and the root name (RFC 3501 6.3.8).
    if patterns.len() == 1 && patterns[0].is_empty() && selection.is_empty() {
        encode::list(
            s.conn.out(),
            ListKind::List,
            &[MailboxAttr::Noselect],
            Some(delimiter),
            b"",
            false,
        );
        return Reply::ok("List completed.");
    }

    // A reference or pattern that is not modified UTF-7 is no error: it is matched as sent. After
    // ENABLE UTF8=ACCEPT it is UTF-8, and 8-bit octets that are not UTF-8 are a BAD (RFC 6855 3).
    let form = s.name_form();
    let reference = names::list_pattern_from_wire(reference.as_bytes(), form)?;
    let pats: Vec<String> = patterns
        .iter()
        .map(|p| names::list_pattern_from_wire(p, form).map(|p| full_pattern(&reference, &p)))
        .collect::<Result<_, _>>()?;
    let matching = |name: &str| pats.iter().any(|p| names::matches(p, name, sep));

    let boxes: Vec<MailboxInfo> =
        crate::metrics::storage(crate::metrics::StorageOp::List, store.list()).await?;
    let subscriptions: BTreeSet<String> = if sel_subscribed || ret_subscribed {
        store.subscriptions().await?.into_iter().collect()
    } else {
        BTreeSet::new()
    };

    // RFC 5258 RECURSIVEMATCH, computed as Dovecot does (mailbox_list_iter_update): walking up
    // from each subscribed name, every matching ancestor has a subscribed child (CHILDINFO
    // when listed), but only the nearest one of a subscribed name that does not match itself
    // is listed for it. A parent whose subscribed child is already listed is not added: with
    // (a/test2 a/test2/test1) and only a/test2/test1 subscribed, only a/test2/test1 is listed.
    // RFC 5258's example 9 ("*" listing foo2 with CHILDINFO) would list it; Dovecot does not,
    // the client learns the same from the child's own line, and we follow Dovecot.
    let mut child_subscribed: BTreeSet<&str> = BTreeSet::new();
    let mut listed_for_child: BTreeSet<&str> = BTreeSet::new();
    if recursive && sel_subscribed {
        for name in &subscriptions {
            let mut add = !matching(name);
            let mut level = name.as_str();
            while let Some(i) = level.rfind(sep) {
                level = &level[..i];
                if matching(level) {
                    child_subscribed.insert(level);
                    if add {
                        listed_for_child.insert(level);
                        add = false;
                    }
                }
            }
        }
    }

    let mut lines: Vec<Line> = Vec::new();
    for b in &boxes {
        let subscribed = subscriptions.contains(&b.name);
        let mut attrs = mailbox_attrs(b);
        if ret_subscribed && subscribed {
            attrs.push(MailboxAttr::Subscribed);
        }
        let name_matches = matching(&b.name);
        let selected_by_filter =
            (!sel_subscribed || subscribed) && (!sel_special || b.special_use.is_some());
        if name_matches && selected_by_filter {
            lines.push(Line {
                name: b.name.clone(),
                attrs,
                childinfo: child_subscribed.contains(b.name.as_str()),
                selectable: !b.noselect,
            });
        } else if listed_for_child.contains(b.name.as_str()) {
            lines.push(Line {
                name: b.name.clone(),
                attrs,
                childinfo: true,
                selectable: false,
            });
        }
    }
    if sel_subscribed {
        // Subscribed names that do not exist are listed as \NonExistent (RFC 5258 3.1).
        for name in &subscriptions {
            if !boxes.iter().any(|b| &b.name == name) && matching(name) {
                lines.push(Line {
                    name: name.clone(),
                    attrs: vec![MailboxAttr::NonExistent, MailboxAttr::Subscribed],
                    childinfo: child_subscribed.contains(name.as_str()),
                    selectable: false,
                });
            }
        }
        // So are ancestors listed for a subscribed child that do not exist (nor are subscribed).
        for name in &listed_for_child {
            if !boxes.iter().any(|b| b.name == *name) && !subscriptions.contains(*name) {
                lines.push(Line {
                    name: (*name).to_owned(),
                    attrs: vec![MailboxAttr::NonExistent],
                    childinfo: true,
                    selectable: false,
                });
            }
        }
    }
    for line in lines {
        let wire = names::to_wire(&line.name, form);
        encode::list(
            s.conn.out(),
            ListKind::List,
            &line.attrs,
            Some(delimiter),
            &wire,
            line.childinfo,
        );
        if let Some(items) = status
            && line.selectable
        {
            // RFC 5819: a mailbox whose status cannot be read is still listed, without STATUS.
            if let Ok(values) = status_items(s, &line.name, items).await
                && let Ok(id) = status_mailbox_id(s, &line.name, items).await
            {
                encode::status_with_mailbox_id(s.conn.out(), &wire, &values, id.as_deref());
            }
        }
    }
    Reply::ok("List completed.")
}

/// The untagged LIST an IMAP4rev2 SELECT or EXAMINE returns for the mailbox it opens (RFC 9051
/// 6.3.2: "The list of mailbox attributes MUST be accurate"): the attributes a basic
/// `LIST "" name` gives it, that is `\HasChildren`/`\HasNoChildren` and its special use, under
/// the name as the store spells it. Costs one listing of the user's mailboxes, so only rev2
/// sessions pay it.
pub(super) async fn selected_list_line(s: &Session, name: &str) -> Result<Vec<u8>, ImapError> {
    let store = s.store()?;
    let delimiter = wire_separator(store.separator())?;
    let boxes = store.list().await?;
    // A selected mailbox is never \Noselect, so these are its children and special use.
    let attrs = boxes
        .iter()
        .find(|b| b.name == name)
        .map(mailbox_attrs)
        .unwrap_or_default();
    let mut out = Vec::new();
    let wire = names::to_wire(name, s.name_form());
    encode::list(
        &mut out,
        ListKind::List,
        &attrs,
        Some(delimiter),
        &wire,
        false,
    );
    Ok(out)
}
