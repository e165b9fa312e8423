//! NOTIFY (RFC 5465): what a session watches and how the user's change feed becomes untagged
//! responses.
//!
//! The command itself is `cmd/notify.rs`; this module holds the session's [`NotifyState`] and
//! the three moments events are told:
//!
//! * between commands: the session loop waits on [`wait`] beside the socket, so a change is
//!   pushed at once (RFC 5465 3.1: the client "listens for event notifications all the time");
//! * in IDLE, the same way;
//! * at the end of every command, before its tagged answer ([`drain`]): what arrived while the
//!   command ran.
//!
//! Other mailboxes' message events become `* STATUS`; MailboxName and SubscriptionChange become
//! `* LIST`; metadata changes `* METADATA`. The selected mailbox is told as IDLE tells it today
//! (EXISTS/EXPUNGE/FETCH, through [`crate::storage::View`]), plus the MessageNew FETCH
//! attributes. A session costs one feed cursor and a few remembered STATUS lines
//! ([`crate::limits::NOTIFY_STATUS_MEMORY`]), never a watch per mailbox.

use std::sync::Arc;

use super::names;
use super::proto::encode::{self, ListKind};
use super::proto::types::{FetchAttr, MailboxAttr, StatusItem};
use super::response::ImapError;
use super::session::{Session, State};
use crate::limits::{NOTIFY_BATCH, NOTIFY_STATUS_MEMORY};
use crate::storage::{Change, ChangeKind, FeedError, FeedSubscription, MailboxInfo, MailboxStatus};

/// `MessageNew`
pub const MESSAGE_NEW: u8 = 1;
/// `MessageExpunge`
pub const MESSAGE_EXPUNGE: u8 = 2;
/// `FlagChange`
pub const FLAG_CHANGE: u8 = 4;
/// `AnnotationChange`
pub const ANNOTATION_CHANGE: u8 = 8;
/// `MailboxName`
pub const MAILBOX_NAME: u8 = 16;
/// `SubscriptionChange`
pub const SUBSCRIPTION_CHANGE: u8 = 32;
/// `MailboxMetadataChange`
pub const MAILBOX_METADATA_CHANGE: u8 = 64;
/// `ServerMetadataChange`
pub const SERVER_METADATA_CHANGE: u8 = 128;
/// The `message-event`s.
pub const MESSAGE_EVENTS: u8 = MESSAGE_NEW | MESSAGE_EXPUNGE | FLAG_CHANGE | ANNOTATION_CHANGE;

/// Which mailboxes a group covers (names as storage knows them: UTF-8, wire separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `personal` and `inboxes` (which mailcove cannot tell apart: RFC 5465 6.3 says treat it
    /// as `personal` then; Dovecot does the same).
    Personal,
    /// `subscribed`, evaluated against the subscriptions at the time of each event.
    Subscribed,
    /// `subtree`: these mailboxes and everything below them.
    Subtree(Vec<String>),
    /// `mailboxes`: exactly these.
    Mailboxes(Vec<String>),
}

/// One event group of NOTIFY SET other than the selected mailbox's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Which mailboxes.
    pub filter: Filter,
    /// Which events (the constants above).
    pub events: u8,
}

/// The `selected` / `selected-delayed` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedSpec {
    /// `selected`: changes are pushed between commands. `selected-delayed` keeps today's
    /// behaviour (told at the next command or in IDLE), which is what RFC 5465 6.1.2 asks of
    /// expunges and allows for the rest.
    pub immediate: bool,
    /// Which events.
    pub events: u8,
    /// `MessageNew (fetch-att ...)`: fetched for each new message after its EXISTS.
    pub fetch: Vec<FetchAttr>,
}

/// What a session asked for with NOTIFY SET, and its cursor into the user's feed.
pub struct NotifyState {
    /// Groups for mailboxes other than the selected one.
    pub groups: Vec<Group>,
    /// The selected mailbox's group, if any.
    pub selected: Option<SelectedSpec>,
    /// The feed cursor; `None` when only the selected mailbox is watched.
    pub feed: Option<FeedSubscription>,
    /// The last STATUS values told per mailbox (most recent first), so one change seen twice
    /// (in process and by inotify) is told once.
    sent: Vec<(String, StatusValues)>,
}

/// The values an unsolicited STATUS carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusValues {
    messages: u32,
    uidnext: u32,
    uidvalidity: u32,
    unseen: u32,
    highest_modseq: Option<u64>,
}

impl NotifyState {
    /// A new state; `feed` is needed only when `groups` is not empty.
    pub fn new(
        groups: Vec<Group>,
        selected: Option<SelectedSpec>,
        feed: Option<FeedSubscription>,
    ) -> Self {
        NotifyState {
            groups,
            selected,
            feed,
            sent: Vec::new(),
        }
    }

    /// True when some group covers `name` for one of `events`.
    fn wants(&self, name: &str, events: u8, sep: char, subs: Option<&[String]>) -> bool {
        self.groups
            .iter()
            .any(|g| g.events & events != 0 && matches(&g.filter, name, sep, subs))
    }

    /// True when a group uses the `subscribed` filter (events then need the subscriptions).
    fn uses_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|g| matches!(g.filter, Filter::Subscribed))
    }

    /// Remembers `values` as told for `name`; false when they were told last time already.
    fn remember(&mut self, name: &str, values: StatusValues) -> bool {
        if let Some(i) = self.sent.iter().position(|(n, _)| n == name) {
            let (n, old) = self.sent.remove(i);
            self.sent.insert(0, (n, values));
            return old != values;
        }
        self.sent.insert(0, (name.to_owned(), values));
        self.sent.truncate(NOTIFY_STATUS_MEMORY);
        true
    }
}

/// True when `filter` covers the mailbox `name`.
pub fn matches(filter: &Filter, name: &str, sep: char, subs: Option<&[String]>) -> bool {
    match filter {
        Filter::Personal => true,
        Filter::Subscribed => subs.is_some_and(|s| s.iter().any(|n| n == name)),
        Filter::Mailboxes(list) => list.iter().any(|n| n == name),
        Filter::Subtree(list) => list.iter().any(|n| {
            name == n
                || name
                    .strip_prefix(n.as_str())
                    .is_some_and(|rest| rest.starts_with(sep))
        }),
    }
}

/// Why [`wait`] returned.
pub enum Wake {
    /// An event of the feed (or the news that events were lost).
    Feed(Result<Arc<Change>, FeedError>),
    /// The selected mailbox changed and NOTIFY asked for `selected` events.
    Selected,
}

/// Waits for the next thing to tell between commands: a feed event, or (with `selected`, when
/// `with_selected`) a change of the selected mailbox. Never returns without NOTIFY.
pub async fn wait(
    notify: &mut Option<Box<NotifyState>>,
    state: &mut State,
    with_selected: bool,
) -> Wake {
    let Some(n) = notify.as_deref_mut() else {
        return std::future::pending().await;
    };
    let watch_selected = with_selected
        && n.selected
            .as_ref()
            .is_some_and(|s| s.immediate && s.events != 0);
    let view = match state {
        State::Selected(_, sel) if watch_selected => Some(&mut sel.view),
        _ => None,
    };
    let feed = n.feed.as_mut();
    tokio::select! {
        r = async {
            match feed {
                Some(f) => f.recv().await,
                None => std::future::pending().await,
            }
        } => Wake::Feed(r),
        () = async {
            match view {
                Some(v) => v.changed().await,
                None => std::future::pending().await,
            }
        } => Wake::Selected,
    }
}

/// Waits for the next feed event only (IDLE watches the selected mailbox itself).
pub async fn wait_feed(notify: &mut Option<Box<NotifyState>>) -> Wake {
    match notify.as_deref_mut().and_then(|n| n.feed.as_mut()) {
        Some(f) => Wake::Feed(f.recv().await),
        None => std::future::pending().await,
    }
}

/// Tells what woke [`wait`].
pub async fn woke(s: &mut Session, wake: Wake) {
    match wake {
        Wake::Selected => {
            if let Err(e) = refresh_selected(s).await {
                tracing::warn!(error = ?e, "refreshing the selected mailbox failed");
            }
        }
        Wake::Feed(first) => deliver(s, Some(first)).await,
    }
}

/// Tells the events that arrived while a command ran (before its tagged answer).
pub async fn drain(s: &mut Session) {
    if s.notify.as_ref().is_some_and(|n| n.feed.is_some()) {
        deliver(s, None).await;
    }
}

/// Brings the selected mailbox up to date as [`Session::refresh`] does, then sends the
/// MessageNew FETCH attributes of NOTIFY for the messages that arrived (RFC 5465 5.2).
pub async fn refresh_selected(s: &mut Session) -> Result<(), ImapError> {
    let before = match &s.state {
        State::Selected(_, sel) => Some(sel.view.uidnext()),
        _ => None,
    };
    s.refresh().await?;
    let fetch = s
        .notify
        .as_ref()
        .and_then(|n| n.selected.as_ref())
        .filter(|sel| sel.events & MESSAGE_NEW != 0 && !sel.fetch.is_empty())
        .map(|sel| sel.fetch.clone());
    if let (Some(before), Some(attrs), State::Selected(_, sel)) = (before, fetch, &s.state) {
        let after = sel.view.uidnext();
        if after > before {
            super::cmd::notify::fetch_new(s, before, after - 1, &attrs).await?;
        }
    }
    Ok(())
}

/// Takes `first` and what else is waiting (up to [`NOTIFY_BATCH`] events) from the feed and
/// writes what the session asked to be told.
async fn deliver(s: &mut Session, first: Option<Result<Arc<Change>, FeedError>>) {
    let Some(mut n) = s.notify.take() else {
        return;
    };
    let mut changes = Vec::new();
    let mut overflow = false;
    if let Some(first) = first {
        match first {
            Ok(c) => changes.push(c),
            Err(FeedError::Overflow) => overflow = true,
            Err(FeedError::Closed) => n.feed = None,
        }
    }
    while !overflow && changes.len() < NOTIFY_BATCH {
        let Some(feed) = n.feed.as_mut() else {
            break;
        };
        match feed.try_recv() {
            Ok(Some(c)) => changes.push(c),
            Ok(None) => break,
            Err(FeedError::Overflow) => overflow = true,
            Err(FeedError::Closed) => n.feed = None,
        }
    }
    if overflow {
        // RFC 5465 5.8: say so and behave as after NOTIFY NONE.
        encode::untagged(
            s.conn.out(),
            encode::Status::Ok,
            Some(&encode::Code::NotificationOverflow),
            "Too many events; NOTIFY is now off",
        );
        return;
    }
    if let Err(e) = tell(s, &mut n, &changes).await {
        tracing::debug!(error = ?e, "NOTIFY could not tell a change");
    }
    s.notify = Some(n);
}

/// What a batch of changes becomes.
async fn tell(
    s: &mut Session,
    n: &mut NotifyState,
    changes: &[Arc<Change>],
) -> Result<(), ImapError> {
    let store = s.store()?;
    let sep = store.separator();
    let own = n.feed.as_ref().map_or(0, FeedSubscription::origin);
    let selected = match &s.state {
        State::Selected(_, sel) => Some(sel.name.clone()),
        _ => None,
    };
    let subs = if n.uses_subscriptions() {
        Some(store.subscriptions().await?)
    } else {
        None
    };
    let subs = subs.as_deref();
    let mut status_for: Vec<&str> = Vec::new();
    let mut lists: Vec<(&str, Option<&str>)> = Vec::new();
    let mut metadata: Vec<(Option<&str>, &[String])> = Vec::new();
    for c in changes {
        // RFC 5465 5: the server SHOULD NOT tell a client what it did itself.
        if c.origin == own && own != 0 {
            continue;
        }
        let Some(name) = c.mailbox.as_deref() else {
            if let ChangeKind::MetadataChanged { entries } = &c.kind
                && n.groups
                    .iter()
                    .any(|g| g.events & SERVER_METADATA_CHANGE != 0)
            {
                metadata.push((None, entries));
            }
            continue;
        };
        let wanted = match &c.kind {
            ChangeKind::MessageNew => MESSAGE_NEW,
            ChangeKind::MessageExpunge => MESSAGE_EXPUNGE,
            ChangeKind::FlagChange => FLAG_CHANGE,
            ChangeKind::MessagesChanged => MESSAGE_NEW | MESSAGE_EXPUNGE | FLAG_CHANGE,
            ChangeKind::MailboxCreated | ChangeKind::MailboxDeleted => MAILBOX_NAME,
            ChangeKind::MailboxRenamed { old } => {
                if n.wants(name, MAILBOX_NAME, sep, subs) || n.wants(old, MAILBOX_NAME, sep, subs) {
                    lists.push((name, Some(old)));
                }
                continue;
            }
            ChangeKind::SubscriptionChanged => {
                // The `subscribed` filter covers a mailbox leaving the subscriptions too.
                let covered = n.groups.iter().any(|g| {
                    g.events & SUBSCRIPTION_CHANGE != 0
                        && (matches!(g.filter, Filter::Subscribed)
                            || matches(&g.filter, name, sep, subs))
                });
                if covered {
                    lists.push((name, None));
                }
                continue;
            }
            ChangeKind::MetadataChanged { entries } => {
                if n.wants(name, MAILBOX_METADATA_CHANGE, sep, subs) {
                    metadata.push((Some(name), entries));
                }
                continue;
            }
        };
        if wanted == MAILBOX_NAME {
            if n.wants(name, MAILBOX_NAME, sep, subs) {
                lists.push((name, None));
            }
            // RFC 5465 5.4: the direct parent is affected too (its \HasChildren, or its
            // existence when it was only implied by the child).
            if let Some((parent, _)) = name.rsplit_once(sep)
                && n.wants(parent, MAILBOX_NAME, sep, subs)
            {
                lists.push((parent, None));
            }
            continue;
        }
        // The selected mailbox's messages are told through its view (RFC 5465 3.1: SELECTED
        // overrides the other groups for it).
        if selected.as_deref() == Some(name) || status_for.contains(&name) {
            continue;
        }
        if n.wants(name, wanted, sep, subs) {
            status_for.push(name);
        }
    }
    for name in status_for {
        let Ok(st) = store.status(name).await else {
            continue;
        };
        write_status(s, n, name, &st);
    }
    if !lists.is_empty() {
        let all = store.list().await?;
        let subs = store.subscriptions().await?;
        for (name, old) in lists {
            write_list(s, &all, &subs, sep, name, old);
        }
    }
    let form = s.name_form();
    for (mailbox, entries) in metadata {
        write_metadata(s.conn.out(), form, mailbox, entries);
    }
    Ok(())
}

/// `* STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ])`, unless the same
/// values were told last time. One item set serves every message event: RFC 5465 5.2 and 5.3
/// ask for MESSAGES and UIDNEXT, 5.1 for UIDVALIDITY and, when the client enabled CONDSTORE,
/// HIGHESTMODSEQ; UNSEEN is what a flag change shows without CONDSTORE (5.1 allows it), and
/// Dovecot sends the same four.
pub fn write_status(s: &mut Session, n: &mut NotifyState, name: &str, st: &MailboxStatus) {
    let values = StatusValues {
        messages: st.messages,
        uidnext: st.uidnext,
        uidvalidity: st.uidvalidity,
        unseen: st.unseen,
        highest_modseq: s.enabled.condstore.then_some(st.highest_modseq),
    };
    if !n.remember(name, values) {
        return;
    }
    let mut items = vec![
        (StatusItem::Messages, u64::from(st.messages)),
        (StatusItem::UidNext, u64::from(st.uidnext)),
        (StatusItem::UidValidity, u64::from(st.uidvalidity)),
        (StatusItem::Unseen, u64::from(st.unseen)),
    ];
    if let Some(m) = values.highest_modseq {
        items.push((StatusItem::HighestModSeq, m));
    }
    let wire = names::to_wire(name, s.name_form());
    encode::status(s.conn.out(), &wire, &items);
}

/// `* LIST (attrs) "/" name [("OLDNAME" ("old"))]` for a MailboxName or SubscriptionChange event
/// (RFC 5465 5.4, 5.5): the attributes as the mailbox is now, `\NonExistent` when it is gone,
/// `\Subscribed` when it is subscribed.
fn write_list(
    s: &mut Session,
    all: &[MailboxInfo],
    subs: &[String],
    sep: char,
    name: &str,
    old: Option<&str>,
) {
    let mut attrs = match all.iter().find(|m| m.name == name) {
        Some(info) => super::cmd::mailbox_attrs(info),
        None => vec![MailboxAttr::NonExistent],
    };
    if subs.iter().any(|n| n == name) {
        attrs.push(MailboxAttr::Subscribed);
    }
    let form = s.name_form();
    let wire = names::to_wire(name, form);
    let delimiter = u8::try_from(sep).ok();
    let Some(old) = old else {
        encode::list(
            s.conn.out(),
            ListKind::List,
            &attrs,
            delimiter,
            &wire,
            false,
        );
        return;
    };
    // The OLDNAME extended item (RFC 5465 10.1) goes after the name: write the line without its
    // end, then the item.
    let out = s.conn.out();
    encode::list(out, ListKind::List, &attrs, delimiter, &wire, false);
    out.truncate(out.len() - 2);
    out.extend_from_slice(b" (\"OLDNAME\" (");
    encode::write_mailbox(out, &names::to_wire(old, form));
    out.extend_from_slice(b"))\r\n");
}

/// `* METADATA name entry ...` (RFC 5464 4.4.2, unsolicited form): the names of the changed
/// entries, `""` for the server.
fn write_metadata(
    out: &mut Vec<u8>,
    form: names::NameForm,
    mailbox: Option<&str>,
    entries: &[String],
) {
    if entries.is_empty() {
        return;
    }
    let wire = mailbox.map(|m| names::to_wire(m, form));
    out.extend_from_slice(b"* METADATA ");
    match &wire {
        Some(w) => encode::write_mailbox(out, w),
        None => out.extend_from_slice(b"\"\""),
    }
    for e in entries {
        out.push(b' ');
        encode::write_astring(out, e.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_cover_what_rfc_5465_6_says() {
        let subs = vec!["Lists/a".to_owned()];
        let sub = Filter::Subtree(vec!["Lists".into()]);
        assert!(matches(&sub, "Lists", '/', None));
        assert!(matches(&sub, "Lists/a/b", '/', None));
        assert!(!matches(&sub, "Listserv", '/', None));
        assert!(!matches(&sub, "INBOX", '/', None));
        let exact = Filter::Mailboxes(vec!["Lists".into(), "a*".into()]);
        assert!(matches(&exact, "Lists", '/', None));
        assert!(!matches(&exact, "Lists/a", '/', None));
        // RFC 5465 6.6: no wildcard expansion.
        assert!(matches(&exact, "a*", '/', None));
        assert!(!matches(&exact, "ab", '/', None));
        assert!(matches(&Filter::Subscribed, "Lists/a", '/', Some(&subs)));
        assert!(!matches(&Filter::Subscribed, "Lists", '/', Some(&subs)));
        assert!(matches(&Filter::Personal, "anything", '/', None));
    }

    #[test]
    fn metadata_changes_are_told_as_rfc_5464_unsolicited_metadata() {
        let mut out = Vec::new();
        let entries = vec!["/shared/comment".to_owned(), "/private/x y".to_owned()];
        write_metadata(&mut out, names::NameForm::ModifiedUtf7, None, &entries);
        write_metadata(
            &mut out,
            names::NameForm::ModifiedUtf7,
            Some("Entw\u{fc}rfe"),
            &entries[..1],
        );
        // Nothing to name, nothing sent (the entry list of RFC 5464 4.4.2 is not empty).
        write_metadata(&mut out, names::NameForm::ModifiedUtf7, Some("INBOX"), &[]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "* METADATA \"\" /shared/comment \"/private/x y\"\r\n\
             * METADATA Entw&APw-rfe /shared/comment\r\n"
        );
    }

    #[test]
    fn the_same_status_is_told_once_and_memory_is_bounded() {
        let mut n = NotifyState::new(Vec::new(), None, None);
        let v = StatusValues {
            messages: 1,
            uidnext: 2,
            uidvalidity: 3,
            unseen: 1,
            highest_modseq: None,
        };
        assert!(n.remember("a", v));
        assert!(!n.remember("a", v));
        assert!(n.remember("a", StatusValues { messages: 2, ..v }));
        for i in 0..NOTIFY_STATUS_MEMORY * 2 {
            n.remember(&format!("m{i}"), v);
        }
        assert_eq!(n.sent.len(), NOTIFY_STATUS_MEMORY);
    }
}
