//! `mailcove mailbox list|status|create|delete|rename`: a user's mailbox tree, as the IMAP
//! commands LIST, STATUS, CREATE, DELETE and RENAME see and change it (the same storage calls,
//! so the same rules: RFC 3501 6.3, and INBOX renamed moves its messages).
//!
//! Mailbox names are UTF-8 with the configured separator, as storage takes them (not modified
//! UTF-7: that is the IMAP wire form only).

use clap::Subcommand;

use super::output::Cell;
use super::{Target, selectable_or, start};
use crate::storage::SpecialUse;

/// `mailcove mailbox ...`.
#[derive(Debug, Subcommand)]
pub enum MailboxCmd {
    /// List the mailboxes: name, special use, subscribed, selectable, has children.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Show message counts, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ and size of mailboxes.
    Status {
        #[command(flatten)]
        target: Target,
        /// Mailboxes; every selectable one when none is named.
        mailboxes: Vec<String>,
    },
    /// Create mailboxes (missing parents are implied, as IMAP CREATE does).
    Create {
        #[command(flatten)]
        target: Target,
        /// Mark the mailbox with a special use (RFC 6154), e.g. `\Archive` or `Archive`.
        #[arg(long = "special-use")]
        special_use: Option<String>,
        /// Subscribe to the new mailboxes too.
        #[arg(long, short = 's')]
        subscribe: bool,
        /// Mailboxes to create.
        #[arg(required = true)]
        mailboxes: Vec<String>,
    },
    /// Delete mailboxes and their messages (children stay, as IMAP DELETE does).
    Delete {
        #[command(flatten)]
        target: Target,
        /// Also remove them from the subscriptions.
        #[arg(long, short = 's')]
        unsubscribe: bool,
        /// Mailboxes to delete.
        #[arg(required = true)]
        mailboxes: Vec<String>,
    },
    /// Rename a mailbox with its children; renaming INBOX moves its messages into a new mailbox.
    Rename {
        #[command(flatten)]
        target: Target,
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
}

/// Runs a `mailcove mailbox` command.
pub fn run(cmd: MailboxCmd) -> Result<(), String> {
    match cmd {
        MailboxCmd::List { target } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(
                &[
                    "mailbox",
                    "special_use",
                    "subscribed",
                    "selectable",
                    "children",
                ],
                async |_, _, store| {
                    let list = store.list().await.map_err(|e| e.to_string())?;
                    Ok(list
                        .into_iter()
                        .map(|m| {
                            vec![
                                Cell::text(m.name),
                                m.special_use
                                    .map_or(Cell::Null, |u| Cell::text(u.attribute())),
                                Cell::Bool(m.subscribed),
                                Cell::Bool(!m.noselect),
                                Cell::Bool(m.has_children),
                            ]
                        })
                        .collect())
                },
            )
        }
        MailboxCmd::Status { target, mailboxes } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(
                &[
                    "mailbox",
                    "messages",
                    "recent",
                    "unseen",
                    "deleted",
                    "uidnext",
                    "uidvalidity",
                    "highestmodseq",
                    "size",
                ],
                async |_, _, store| {
                    let mut rows = Vec::new();
                    for name in selectable_or(&*store, &mailboxes).await? {
                        let st = store
                            .status(&name)
                            .await
                            .map_err(|e| format!("{name}: {e}"))?;
                        rows.push(vec![
                            Cell::text(name),
                            Cell::Int(st.messages.into()),
                            Cell::Int(st.recent.into()),
                            Cell::Int(st.unseen.into()),
                            Cell::Int(st.deleted.into()),
                            Cell::Int(st.uidnext.into()),
                            Cell::Int(st.uidvalidity.into()),
                            Cell::Int(st.highest_modseq),
                            Cell::Int(st.size),
                        ]);
                    }
                    Ok(rows)
                },
            )
        }
        MailboxCmd::Create {
            target,
            special_use,
            subscribe,
            mailboxes,
        } => {
            let use_ = special_use.as_deref().map(parse_special_use).transpose()?;
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(&["mailbox", "result"], async |_, _, store| {
                let mut rows = Vec::new();
                for name in &mailboxes {
                    store
                        .create(name, use_)
                        .await
                        .map_err(|e| format!("{name}: {e}"))?;
                    if subscribe {
                        store
                            .subscribe(name)
                            .await
                            .map_err(|e| format!("{name}: {e}"))?;
                    }
                    rows.push(vec![Cell::text(name.clone()), Cell::text("created")]);
                }
                Ok(rows)
            })
        }
        MailboxCmd::Delete {
            target,
            unsubscribe,
            mailboxes,
        } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(&["mailbox", "result"], async |_, _, store| {
                let mut rows = Vec::new();
                for name in &mailboxes {
                    store
                        .delete(name)
                        .await
                        .map_err(|e| format!("{name}: {e}"))?;
                    if unsubscribe {
                        store
                            .unsubscribe(name)
                            .await
                            .map_err(|e| format!("{name}: {e}"))?;
                    }
                    rows.push(vec![Cell::text(name.clone()), Cell::text("deleted")]);
                }
                Ok(rows)
            })
        }
        MailboxCmd::Rename { target, from, to } => {
            let (admin, ()) = start(&target, |_| Ok(()))?;
            admin.run_and_print(&["mailbox", "renamed_to"], async |_, _, store| {
                store
                    .rename(&from, &to)
                    .await
                    .map_err(|e| format!("{from}: {e}"))?;
                Ok(vec![vec![Cell::text(from.clone()), Cell::text(to.clone())]])
            })
        }
    }
}

/// `\Archive`, `Archive` or `archive` as a special use.
fn parse_special_use(s: &str) -> Result<SpecialUse, String> {
    let attr = if s.starts_with('\\') {
        s.to_string()
    } else {
        format!("\\{s}")
    };
    SpecialUse::from_attribute(&attr).ok_or_else(|| {
        format!(
            "unknown special use {s:?}: one of \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash"
        )
    })
}
