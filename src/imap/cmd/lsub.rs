//! LSUB (RFC 3501 6.3.9).

use std::collections::BTreeSet;

use super::Reply;
use super::helpers::{full_pattern, wire_separator};
use crate::imap::names;
use crate::imap::proto::encode::{self, ListKind};
use crate::imap::proto::types::{Mailbox, MailboxAttr};
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// LSUB: subscribed names matching the pattern. With `%`, a parent of a matching subscribed name
/// that is not subscribed itself is listed as `\Noselect` (RFC 3501 6.3.9).
pub async fn lsub(
    s: &mut Session,
    reference: &Mailbox,
    pattern: &[u8],
) -> Result<Reply, ImapError> {
    let store = s.store()?;
    let sep = store.separator();
    let delimiter = wire_separator(sep)?;
    // As LIST (and Dovecot): a reference or pattern that is not modified UTF-7 is taken as sent.
    let form = s.name_form();
    let pattern = full_pattern(
        &names::list_pattern_from_wire(reference.as_bytes(), form)?,
        &names::list_pattern_from_wire(pattern, form)?,
    );
    let subscriptions: BTreeSet<String> = store.subscriptions().await?.into_iter().collect();
    let boxes = crate::metrics::storage(crate::metrics::StorageOp::List, store.list()).await?;
    let mut out: Vec<(String, Vec<MailboxAttr>)> = Vec::new();
    for name in &subscriptions {
        if names::matches(&pattern, name, sep) {
            let noselect = boxes
                .iter()
                .find(|b| &b.name == name)
                .is_some_and(|b| b.noselect);
            let attrs = if noselect {
                vec![MailboxAttr::Noselect]
            } else {
                Vec::new()
            };
            out.push((name.clone(), attrs));
        } else if pattern.contains('%') {
            let mut parent = name.as_str();
            while let Some(i) = parent.rfind(sep) {
                parent = &parent[..i];
                if names::matches(&pattern, parent, sep)
                    && !subscriptions.contains(parent)
                    && !out.iter().any(|(n, _)| n == parent)
                {
                    out.push((parent.to_string(), vec![MailboxAttr::Noselect]));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, attrs) in out {
        encode::list(
            s.conn.out(),
            ListKind::Lsub,
            &attrs,
            Some(delimiter),
            &names::to_wire(&name, form),
            false,
        );
    }
    Reply::ok("Lsub completed.")
}
