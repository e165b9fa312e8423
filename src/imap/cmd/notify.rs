//! NOTIFY (RFC 5465 3.1): `NOTIFY SET [STATUS] (filter events)...` replaces what the session is
//! told about; `NOTIFY NONE` stops it. The delivery side is [`crate::imap::notify`].
//!
//! Checks, in the order they are made:
//!
//! * an event name this server does not know: `NO [BADEVENT (every supported event)]` (RFC 5465
//!   3.1 MUST; Dovecot answers a BAD for an unknown name instead, but then a client cannot learn
//!   which events exist, which is what the code is for);
//! * more than one selected filter, a non-message event under it, FETCH attributes anywhere
//!   else, MessageNew without MessageExpunge (or the reverse), FlagChange or AnnotationChange
//!   without both: BAD (RFC 5465 5, 6.1; Dovecot's sentences);
//! * more than [`NOTIFY_MAX_NAMES`] mailbox names: `NO [NOTIFICATIONOVERFLOW]` (Dovecot).
//!
//! A successful NOTIFY SET is an implicit NOOP (the command table's refresh does it) and, with
//! STATUS, sends a STATUS for every watched mailbox other than the selected one first.

use std::num::NonZeroU32;

use super::Reply;
use crate::imap::fetch::plan::FetchPlan;
use crate::imap::names;
use crate::imap::notify::{
    ANNOTATION_CHANGE, FLAG_CHANGE, Filter, Group, MAILBOX_METADATA_CHANGE, MAILBOX_NAME,
    MESSAGE_EVENTS, MESSAGE_EXPUNGE, MESSAGE_NEW, NotifyState, SERVER_METADATA_CHANGE,
    SUBSCRIPTION_CHANGE, SelectedSpec, matches, write_status,
};
use crate::imap::proto::types::{FetchAttr, NotifyEvent, NotifyFilter, NotifySet, SequenceSet};
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};
use crate::limits::NOTIFY_MAX_NAMES;

fn mask(e: &NotifyEvent) -> u8 {
    match e {
        NotifyEvent::MessageNew(_) => MESSAGE_NEW,
        NotifyEvent::MessageExpunge => MESSAGE_EXPUNGE,
        NotifyEvent::FlagChange => FLAG_CHANGE,
        NotifyEvent::AnnotationChange => ANNOTATION_CHANGE,
        NotifyEvent::MailboxName => MAILBOX_NAME,
        NotifyEvent::SubscriptionChange => SUBSCRIPTION_CHANGE,
        NotifyEvent::MailboxMetadataChange => MAILBOX_METADATA_CHANGE,
        NotifyEvent::ServerMetadataChange => SERVER_METADATA_CHANGE,
        NotifyEvent::Unknown => 0,
    }
}

/// NOTIFY SET / NOTIFY NONE.
pub async fn notify(s: &mut Session, set: Option<Box<NotifySet>>) -> Result<Reply, ImapError> {
    let Some(set) = set else {
        s.notify = None;
        return Reply::ok("NOTIFY completed.");
    };
    if set
        .groups
        .iter()
        .any(|g| g.events.contains(&NotifyEvent::Unknown))
    {
        return Err(ImapError::BadEvent);
    }
    let form = s.name_form();
    let mut selected: Option<SelectedSpec> = None;
    let mut groups = Vec::new();
    let mut names_given = 0usize;
    for g in &set.groups {
        let events = g.events.iter().fold(0u8, |m, e| m | mask(e));
        let fetch: Vec<FetchAttr> = g
            .events
            .iter()
            .filter_map(|e| match e {
                NotifyEvent::MessageNew(a) if !a.is_empty() => Some(a.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let new = events & MESSAGE_NEW != 0;
        if new != (events & MESSAGE_EXPUNGE != 0) {
            return Err(ImapError::Parse(
                "MessageNew and MessageExpunge must be together",
            ));
        }
        if events & (FLAG_CHANGE | ANNOTATION_CHANGE) != 0 && !new {
            return Err(ImapError::Parse(
                "FlagChange requires MessageNew and MessageExpunge",
            ));
        }
        if g.filter.is_selected() {
            if selected.is_some() {
                return Err(ImapError::Parse("Duplicate selected filter"));
            }
            if events & !MESSAGE_EVENTS != 0 {
                return Err(ImapError::Parse(
                    "Only message events are allowed for the selected mailbox",
                ));
            }
            if !fetch.is_empty() {
                // Refused now rather than at the first new message.
                FetchPlan::new(&fetch, true, None)?;
            }
            selected = Some(SelectedSpec {
                immediate: g.filter == NotifyFilter::Selected,
                events,
                fetch,
            });
            continue;
        }
        if !fetch.is_empty() {
            return Err(ImapError::Parse(
                "FETCH attributes are allowed only for the selected mailbox",
            ));
        }
        let convert = |list: &[crate::imap::proto::types::Mailbox]| {
            list.iter()
                .map(|m| names::from_wire(m, form))
                .collect::<Result<Vec<String>, ImapError>>()
        };
        let filter = match &g.filter {
            NotifyFilter::Personal | NotifyFilter::Inboxes => Filter::Personal,
            NotifyFilter::Subscribed => Filter::Subscribed,
            NotifyFilter::Subtree(list) => {
                names_given += list.len();
                Filter::Subtree(convert(list)?)
            }
            NotifyFilter::Mailboxes(list) => {
                names_given += list.len();
                Filter::Mailboxes(convert(list)?)
            }
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => continue,
        };
        if events != 0 {
            groups.push(Group { filter, events });
        }
    }
    if names_given > NOTIFY_MAX_NAMES {
        return Err(ImapError::NotificationOverflow("Too many mailbox names"));
    }
    let store = s.store()?;
    // Only other mailboxes need the feed: watching just the selected one costs nothing more.
    let feed = if groups.is_empty() {
        None
    } else {
        Some(store.subscribe_changes().await?)
    };
    let mut state = NotifyState::new(groups, selected, feed);
    s.notify = None;
    if set.status {
        initial_status(s, &mut state).await?;
    }
    s.notify = Some(Box::new(state));
    Reply::ok("NOTIFY completed.")
}

/// RFC 5465 3.1: with STATUS, a STATUS for each existing, selectable mailbox other than the
/// selected one for which a message event is asked.
async fn initial_status(s: &mut Session, n: &mut NotifyState) -> Result<(), ImapError> {
    let store = s.store()?;
    let sep = store.separator();
    let want = n.groups.iter().any(|g| g.events & MESSAGE_EVENTS != 0);
    if !want {
        return Ok(());
    }
    let subs = if n.groups.iter().any(|g| g.filter == Filter::Subscribed) {
        Some(store.subscriptions().await?)
    } else {
        None
    };
    let selected = match &s.state {
        State::Selected(_, sel) => Some(sel.name.clone()),
        _ => None,
    };
    for info in store.list().await? {
        if info.noselect || selected.as_deref() == Some(info.name.as_str()) {
            continue;
        }
        let covered = n.groups.iter().any(|g| {
            g.events & MESSAGE_EVENTS != 0 && matches(&g.filter, &info.name, sep, subs.as_deref())
        });
        if !covered {
            continue;
        }
        // A mailbox gone in between is simply not told (RFC 5465 3.1: ignore what does not
        // exist).
        if let Ok(st) = store.status(&info.name).await {
            write_status(s, n, &info.name, &st);
        }
    }
    Ok(())
}

/// `UID FETCH first:last (attrs)` for messages that arrived in the selected mailbox, with the
/// attributes of `MessageNew (...)` (RFC 5465 5.2); the answer's own tagged line is not sent.
pub async fn fetch_new(
    s: &mut Session,
    first: u32,
    last: u32,
    attrs: &[FetchAttr],
) -> Result<(), ImapError> {
    let (Some(a), Some(b)) = (NonZeroU32::new(first), NonZeroU32::new(last)) else {
        return Ok(());
    };
    super::fetch::fetch(s, true, &SequenceSet::range(a, b), attrs, None, false).await?;
    Ok(())
}
