//! `mailcove expunge -u USER MAILBOX SEARCH-KEYS...`: removes the messages of a mailbox that a
//! search matches, e.g. `mailcove expunge -A Trash SAVEDBEFORE 1-Jan-2026` or
//! `mailcove expunge -u ann INBOX SEEN BEFORE 1-Jan-2026`.
//!
//! The keys are those of IMAP SEARCH (RFC 3501 6.4.4 and the extensions mailcove serves:
//! MODSEQ, OLDER/YOUNGER, SAVEDBEFORE, EMAILID, ...), joined with spaces and parsed by the very
//! parser the SEARCH command uses ([`crate::imap::proto::parse::parse_search_program`]), then
//! compiled and run by the SEARCH engine ([`crate::imap::search`]) on a view of the mailbox, so
//! a query answers here exactly as `UID SEARCH` would. Sequence numbers in a query are those of
//! that view (every message, in UID order); `$` (a saved result) has nothing to refer to and
//! matches nothing.
//!
//! The matches are then marked `\Deleted` and expunged by UID (as `UID EXPUNGE`, RFC 4315):
//! messages that were `\Deleted` before but do not match stay. Sessions with the mailbox
//! selected are told of the expunges as of any other session's.

use crate::imap::proto::parse::parse_search_program;
use crate::imap::proto::types::SearchKey;
use crate::imap::search::{self, Program};
use crate::imap::selected::Selected;
use crate::storage::{OpenOptions, StoreOp, StoreRequest, SystemFlags, UserStore};

use super::output::{Cell, uid_set};
use super::{Target, start};

/// `mailcove expunge` arguments.
#[derive(Debug, clap::Args)]
pub struct ExpungeArgs {
    #[command(flatten)]
    target: Target,
    /// Mailbox to expunge from.
    mailbox: String,
    /// IMAP SEARCH keys, e.g. `SEEN BEFORE 1-Jan-2026` (quote strings with spaces for IMAP:
    /// `'SUBJECT "weekly report"'`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    query: Vec<String>,
}

/// How the view is opened: read-write, without taking `\Recent` from the user's next session,
/// without watching for changes (the command is over before any would matter).
const EXPUNGE_OPEN: OpenOptions = OpenOptions {
    read_only: false,
    claim_recent: false,
    watch: false,
};

/// Runs `mailcove expunge`.
pub fn run(args: ExpungeArgs) -> Result<(), String> {
    let key = parse_query(&args.query)?;
    let (admin, ()) = start(&args.target, |_| Ok(()))?;
    let mailbox = args.mailbox;
    admin.run_and_print(&["mailbox", "expunged", "uids"], async |_, _, store| {
        let uids = expunge(&*store, &mailbox, &key).await?;
        Ok(vec![vec![
            Cell::text(mailbox.clone()),
            Cell::Int(uids.len() as u64),
            Cell::text(uid_set(&uids)),
        ]])
    })
}

/// The query words joined with spaces and parsed as a SEARCH program.
pub(crate) fn parse_query(words: &[String]) -> Result<SearchKey, String> {
    let text = words.join(" ");
    parse_search_program(text.as_bytes())
        .map_err(|e| format!("search query: {} (at byte {})", e.message, e.offset))
}

/// Expunges the messages of `mailbox` that `key` matches; returns their UIDs, ascending.
pub(crate) async fn expunge(
    store: &dyn UserStore,
    mailbox: &str,
    key: &SearchKey,
) -> Result<Vec<u32>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("{mailbox}: {e}");
    let view = store
        .open(mailbox, EXPUNGE_OPEN)
        .await
        .map_err(|e| failed(&e))?;
    let mut sel = Selected::new(view, mailbox.to_string());
    let prog = Program::compile(key, None, &mut sel)
        .await
        .map_err(|e| failed(&e))?;
    let hits: Vec<u32> = search::run(&sel, &prog)
        .await
        .map_err(|e| failed(&e))?
        .into_iter()
        .map(|h| h.uid)
        .collect();
    if hits.is_empty() {
        return Ok(hits);
    }
    let mark = StoreRequest {
        op: StoreOp::Add,
        flags: SystemFlags::DELETED,
        keywords: Vec::new(),
        unchanged_since: None,
    };
    sel.view.store(&hits, mark).await.map_err(|e| failed(&e))?;
    sel.view
        .expunge(Some(&hits))
        .await
        .map_err(|e| failed(&e))?;
    // What left the mailbox: a hit another session expunged meanwhile is gone too.
    Ok(hits
        .into_iter()
        .filter(|u| sel.view.seq_of(*u).is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_are_one_search_program() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let key = parse_query(&words("SEEN BEFORE 1-Jan-2026"));
        assert!(
            matches!(key, Ok(SearchKey::And(ref k)) if k.len() == 2),
            "{key:?}"
        );
        let err = parse_query(&words("SEEN BEFORE 31-Feb-2026"));
        assert!(err.is_err_and(|e| e.starts_with("search query: ")));
        assert!(parse_query(&words("NOSUCHKEY")).is_err());
        assert!(parse_query(&[r#"SUBJECT "weekly report""#.to_string()]).is_ok());
    }
}
