//! `mailcove index rebuild -u USER [MAILBOX]`: rewrites what the backend keeps about a mailbox
//! besides the messages, from the messages ([`crate::storage::UserStore::rebuild_index`]).
//!
//! On Maildir that is `mailcove-index` and its log (rewritten after a full rescan of `cur/` and
//! `new/`, keeping every UID, flag, modseq and the UIDVALIDITY, so clients need not
//! resynchronise) and `mailcove-cache` (parsed MIME data, dropped and made again on demand).
//! The message files, `dovecot-keywords`, `mailcove-keywords`, `mailcove-mailboxid` and the
//! subscriptions are not touched. It runs under the mailbox lock, so it is safe while the daemon
//! serves the mailbox. Without MAILBOX every selectable mailbox of the user is rebuilt.

use clap::Subcommand;

use super::output::Cell;
use super::{Target, selectable_or, start};

/// `mailcove index ...`.
#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// Rebuild the index and drop the cache of a mailbox (all mailboxes when none is named),
    /// keeping UIDs, flags and UIDVALIDITY.
    Rebuild {
        #[command(flatten)]
        target: Target,
        /// Mailbox; every selectable one when none is named.
        mailbox: Option<String>,
        /// Rebuild the full-text index (docs/fts.md) instead: the mailbox's entries (all of the
        /// user's without MAILBOX, those of mailboxes gone included) are dropped and every
        /// message is indexed again.
        #[arg(long)]
        fts: bool,
    },
}

/// Runs a `mailcove index` command.
pub fn run(cmd: IndexCmd) -> Result<(), String> {
    let IndexCmd::Rebuild {
        target,
        mailbox,
        fts,
    } = cmd;
    let named: Vec<String> = mailbox.into_iter().collect();
    if fts {
        return rebuild_fts(&target, named);
    }
    let (admin, ()) = start(&target, |_| Ok(()))?;
    admin.run_and_print(
        &["mailbox", "messages", "uidvalidity", "uidnext"],
        async |_, _, store| {
            let mut rows = Vec::new();
            for name in selectable_or(&*store, &named).await? {
                let failed = |e: crate::storage::StorageError| format!("{name}: {e}");
                store.rebuild_index(&name).await.map_err(failed)?;
                let st = store.status(&name).await.map_err(failed)?;
                rows.push(vec![
                    Cell::text(name.clone()),
                    Cell::Int(st.messages.into()),
                    Cell::Int(st.uidvalidity.into()),
                    Cell::Int(st.uidnext.into()),
                ]);
            }
            Ok(rows)
        },
    )
}

/// `mailcove index rebuild --fts`: the full-text index of the named mailboxes (all when none).
fn rebuild_fts(target: &Target, named: Vec<String>) -> Result<(), String> {
    let (admin, ()) = start(target, |_| Ok(()))?;
    admin.run_and_print(&["mailbox", "messages", "indexed"], async |_, _, store| {
        let Some(fts) = store.fts().await.map_err(|e| e.to_string())? else {
            return Err("the full-text index is off ([mail] fts = false)".to_string());
        };
        if named.is_empty() {
            let f = fts.clone();
            crate::compute::run(move || f.clear())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        let mut rows = Vec::new();
        for name in selectable_or(&*store, &named).await? {
            let failed = |e: crate::storage::StorageError| format!("{name}: {e}");
            let indexed = crate::fts::indexer::rebuild(&*store, fts.clone(), &name)
                .await
                .map_err(failed)?;
            let st = store.status(&name).await.map_err(failed)?;
            rows.push(vec![
                Cell::text(name.clone()),
                Cell::Int(st.messages.into()),
                Cell::Int(u64::try_from(indexed).unwrap_or(u64::MAX)),
            ]);
        }
        Ok(rows)
    })
}
