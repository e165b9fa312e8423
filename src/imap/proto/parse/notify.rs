//! NOTIFY (RFC 5465 section 8):
//!
//! ```text
//! notify          = "NOTIFY" SP (notify-set / notify-none)
//! notify-set      = "SET" [status-indicator] SP event-groups
//! notify-none     = "NONE"
//! status-indicator = SP "STATUS"
//! event-groups    = event-group *(SP event-group)
//! event-group     = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" / "subscribed" /
//!                   ( "subtree" SP one-or-more-mailbox ) / ( "mailboxes" SP one-or-more-mailbox )
//! one-or-more-mailbox = mailbox / many-mailboxes
//! many-mailboxes  = "(" mailbox *(SP mailbox) ")"
//! events          = ( "(" event *(SP event) ")" ) / "NONE"
//! event           = message-event / mailbox-event / user-event / event-ext
//! message-event   = ( "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")" ] ) / "MessageExpunge"
//!                   / "FlagChange" / "AnnotationChange"
//! ```
//!
//! The grammar only: which events may be combined, and that only one selected filter and only
//! message events under it are allowed, is the handler's check (those are BAD too, but with a
//! sentence that says which rule).

use nom::Parser;

use super::core::{atom, keyword, mailbox, sp};
use super::fetch::fetch_atts;
use super::{PResult, ParseErrorKind, ctx, error, failure};
use crate::imap::proto::types::{
    CommandBody, Mailbox, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet,
};
use crate::limits::NOTIFY_MAX_GROUPS;

/// The arguments of NOTIFY, after the command name.
pub(crate) fn notify(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, _) = sp(i)?;
    let (rest, word) = ctx("NOTIFY needs SET or NONE", atom).parse(rest)?;
    match word.as_str().to_ascii_uppercase().as_str() {
        "NONE" => Ok((rest, CommandBody::Notify { set: None })),
        "SET" => {
            let (rest, set) = notify_set(rest)?;
            Ok((
                rest,
                CommandBody::Notify {
                    set: Some(Box::new(set)),
                },
            ))
        }
        _ => Err(error(rest, "NOTIFY needs SET or NONE")),
    }
}

/// `[status-indicator] SP event-groups`
fn notify_set(i: &[u8]) -> PResult<'_, NotifySet> {
    let (mut rest, status) = match (sp, keyword("STATUS")).parse(i) {
        Ok((r, _)) => (r, true),
        Err(_) => (i, false),
    };
    let mut groups = Vec::new();
    while let Ok((r, _)) = sp(rest) {
        if !r.starts_with(b"(") {
            break;
        }
        if groups.len() >= NOTIFY_MAX_GROUPS {
            return Err(failure(
                r,
                ParseErrorKind::TooMany,
                "too many NOTIFY event groups",
            ));
        }
        let (r, g) = event_group(r)?;
        groups.push(g);
        rest = r;
    }
    if groups.is_empty() {
        return Err(error(rest, "NOTIFY SET needs at least one event group"));
    }
    Ok((rest, NotifySet { status, groups }))
}

/// `"(" filter-mailboxes SP events ")"`
fn event_group(i: &[u8]) -> PResult<'_, NotifyGroup> {
    let Some(rest) = i.strip_prefix(b"(") else {
        return Err(error(i, "expected ( to open a NOTIFY event group"));
    };
    let (rest, filter) = filter_mailboxes(rest)?;
    let (rest, _) = ctx("expected the events of a NOTIFY event group", sp).parse(rest)?;
    let (rest, events) = events(rest)?;
    let Some(rest) = rest.strip_prefix(b")") else {
        return Err(error(rest, "expected ) to close a NOTIFY event group"));
    };
    Ok((rest, NotifyGroup { filter, events }))
}

fn filter_mailboxes(i: &[u8]) -> PResult<'_, NotifyFilter> {
    let (rest, word) = ctx("expected a NOTIFY mailbox filter", atom).parse(i)?;
    let filter = match word.as_str().to_ascii_lowercase().as_str() {
        "selected" => NotifyFilter::Selected,
        "selected-delayed" => NotifyFilter::SelectedDelayed,
        "inboxes" => NotifyFilter::Inboxes,
        "personal" => NotifyFilter::Personal,
        "subscribed" => NotifyFilter::Subscribed,
        "subtree" => {
            let (rest, names) = one_or_more_mailbox(rest)?;
            return Ok((rest, NotifyFilter::Subtree(names)));
        }
        "mailboxes" => {
            let (rest, names) = one_or_more_mailbox(rest)?;
            return Ok((rest, NotifyFilter::Mailboxes(names)));
        }
        _ => return Err(error(i, "unknown NOTIFY mailbox filter")),
    };
    Ok((rest, filter))
}

/// `SP (mailbox / "(" mailbox *(SP mailbox) ")")`
fn one_or_more_mailbox(i: &[u8]) -> PResult<'_, Vec<Mailbox>> {
    let (rest, _) = ctx("expected mailbox names", sp).parse(i)?;
    let Some(mut rest) = rest.strip_prefix(b"(") else {
        let (rest, m) = ctx("expected a mailbox name", mailbox).parse(rest)?;
        return Ok((rest, vec![m]));
    };
    let mut names = Vec::new();
    loop {
        let (r, m) = ctx("expected a mailbox name", mailbox).parse(rest)?;
        names.push(m);
        if let Some(r) = r.strip_prefix(b" ") {
            rest = r;
        } else if let Some(r) = r.strip_prefix(b")") {
            return Ok((r, names));
        } else {
            return Err(error(r, "expected ) to close the mailbox list"));
        }
    }
}

/// `events = ( "(" event *(SP event) ")" ) / "NONE"`; NONE is an empty list.
fn events(i: &[u8]) -> PResult<'_, Vec<NotifyEvent>> {
    let Some(mut rest) = i.strip_prefix(b"(") else {
        let (rest, _) =
            ctx("expected a list of NOTIFY events or NONE", keyword("NONE")).parse(i)?;
        return Ok((rest, Vec::new()));
    };
    let mut out = Vec::new();
    loop {
        let (r, e) = event(rest)?;
        out.push(e);
        if let Some(r) = r.strip_prefix(b" ") {
            rest = r;
        } else if let Some(r) = r.strip_prefix(b")") {
            return Ok((r, out));
        } else {
            return Err(error(r, "expected ) to close the NOTIFY event list"));
        }
    }
}

fn event(i: &[u8]) -> PResult<'_, NotifyEvent> {
    let (rest, name) = ctx("expected a NOTIFY event name", atom).parse(i)?;
    let e = match name.as_str().to_ascii_lowercase().as_str() {
        "messagenew" => {
            if let Some(list) = rest.strip_prefix(b" ").filter(|r| r.starts_with(b"(")) {
                // fetch_atts takes the list form from its opening parenthesis.
                let (r, attrs) = fetch_atts(list)?;
                return Ok((r, NotifyEvent::MessageNew(attrs)));
            }
            NotifyEvent::MessageNew(Vec::new())
        }
        "messageexpunge" => NotifyEvent::MessageExpunge,
        "flagchange" => NotifyEvent::FlagChange,
        "annotationchange" => NotifyEvent::AnnotationChange,
        "mailboxname" => NotifyEvent::MailboxName,
        "subscriptionchange" => NotifyEvent::SubscriptionChange,
        "mailboxmetadatachange" => NotifyEvent::MailboxMetadataChange,
        "servermetadatachange" => NotifyEvent::ServerMetadataChange,
        _ => NotifyEvent::Unknown,
    };
    Ok((rest, e))
}

#[cfg(test)]
mod tests {
    use super::super::parse_command;
    use crate::imap::proto::types::{CommandBody, FetchAttr, NotifyEvent, NotifyFilter};

    fn set(line: &str) -> crate::imap::proto::types::NotifySet {
        match parse_command(format!("a {line}\r\n").as_bytes()) {
            Ok(c) => match c.body {
                CommandBody::Notify { set: Some(s) } => *s,
                other => panic!("not a NOTIFY SET: {other:?}"),
            },
            Err(e) => panic!("{line}: {e}"),
        }
    }

    fn bad(line: &str) {
        assert!(
            parse_command(format!("a {line}\r\n").as_bytes()).is_err(),
            "{line} should not parse"
        );
    }

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 5465 3.1, with the parentheses the grammar of section 8 requires around each
        // event list (the RFC's example leaves them out; Dovecot requires them too).
        let s = set(
            "notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))",
        );
        assert!(s.status);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[0].filter, NotifyFilter::Selected);
        match &s.groups[0].events[0] {
            NotifyEvent::MessageNew(attrs) => {
                assert_eq!(attrs.len(), 2);
                assert_eq!(attrs[0], FetchAttr::Uid);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.groups[0].events[1], NotifyEvent::MessageExpunge);
        assert!(matches!(&s.groups[1].filter, NotifyFilter::Subtree(v) if v.len() == 1));
        bad("notify set (subtree Lists MessageNew)");
        // RFC 5465 6.
        let s = set(
            "notify set (mailboxes INBOX (Messagenew messageExpunge)) (personal (SubscriptionChange))",
        );
        assert!(!s.status);
        assert_eq!(s.groups[1].filter, NotifyFilter::Personal);
        assert_eq!(s.groups[1].events, vec![NotifyEvent::SubscriptionChange]);
        let s = set(
            "NOTIFY SET (subtree (a b/c) NONE) (selected-delayed (MessageNew MessageExpunge FlagChange))",
        );
        assert!(s.groups[0].events.is_empty());
        assert!(matches!(&s.groups[0].filter, NotifyFilter::Subtree(v) if v.len() == 2));
        assert_eq!(s.groups[1].filter, NotifyFilter::SelectedDelayed);
        let s = set("NOTIFY SET (inboxes (FooEvent MailboxName))");
        assert_eq!(s.groups[0].events[0], NotifyEvent::Unknown);
        assert!(matches!(
            parse_command(b"a NOTIFY NONE\r\n").map(|c| c.body),
            Ok(CommandBody::Notify { set: None })
        ));
    }

    #[test]
    fn malformed_notify_is_refused() {
        for line in [
            "NOTIFY",
            "NOTIFY SET",
            "NOTIFY SET STATUS",
            "NOTIFY FOO",
            "NOTIFY NONE extra",
            "NOTIFY SET (selected)",
            "NOTIFY SET (selected MessageNew)",
            "NOTIFY SET (bogus (MessageNew))",
            "NOTIFY SET (subtree (MessageNew))",
            "NOTIFY SET (mailboxes () (MessageNew))",
            "NOTIFY SET (selected (MessageNew (bogus)))",
            "NOTIFY SET (selected (MessageNew MessageExpunge)",
            "NOTIFY SET (selected ())",
            "NOTIFY SET(selected (MessageNew MessageExpunge))",
        ] {
            bad(line);
        }
        let many = "(personal (MailboxName)) ".repeat(crate::limits::NOTIFY_MAX_GROUPS + 1);
        bad(&format!("NOTIFY SET {}", many.trim_end()));
    }
}
