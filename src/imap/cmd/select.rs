//! SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2): one handler, EXAMINE opens read-only.

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode::{self, Code, Status};
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::selected::Selected;
use crate::imap::session::Session;
use crate::storage::OpenOptions;

/// SELECT, or EXAMINE when `read_only`. A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
pub async fn select(
    s: &mut Session,
    mb: &Mailbox,
    read_only: bool,
    _condstore: bool,
) -> Result<Reply, ImapError> {
    let had_selection = s.unselect().is_some();
    if had_selection {
        // RFC 7162 3.2.11 wording, which Dovecot sends too: the old mailbox's responses end here.
        encode::untagged(
            s.conn.out(),
            Status::Ok,
            Some(&Code::Closed),
            "Previous mailbox closed.",
        );
    }
    let name = names::from_wire(mb)?;
    let store = s.store()?;
    let options = if read_only {
        OpenOptions::EXAMINE
    } else {
        OpenOptions::SELECT
    };
    let view = store.open(&name, options).await?;
    let sel = Selected::new(view, name);
    let out = s.conn.out();
    sel.write_flags(out);
    let v = &sel.view;
    encode::exists(out, v.len());
    encode::recent(out, v.recent_count());
    if let Some(unseen) = v.first_unseen() {
        encode::untagged(
            out,
            Status::Ok,
            Some(&Code::Unseen(unseen)),
            "First unseen.",
        );
    }
    encode::untagged(
        out,
        Status::Ok,
        Some(&Code::UidValidity(v.uidvalidity())),
        "UIDs valid",
    );
    encode::untagged(
        out,
        Status::Ok,
        Some(&Code::UidNext(v.uidnext())),
        "Predicted next UID",
    );
    let code = if read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    let text = if read_only {
        "Examine completed."
    } else {
        "Select completed."
    };
    s.select(sel);
    Ok(Reply::Ok(Some(code), text.to_string()))
}
