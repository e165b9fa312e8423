//! ENABLE (RFC 5161) of CONDSTORE and QRESYNC (RFC 7162 3.1, 3.2.3).

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::Atom;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// ENABLE: turns on CONDSTORE and QRESYNC (which implies CONDSTORE); other names are ignored
/// (RFC 5161 3.1). ENABLED lists only what this command turned on, as RFC 5161 3.1 advises.
/// RFC 5161 3.1 lets the server accept it in the selected state too, so the table row says
/// "authenticated"; there `ENABLE CONDSTORE` is a CONDSTORE enabling command like any other and
/// reports the mailbox's HIGHESTMODSEQ.
pub fn enable(s: &mut Session, caps: &[Atom]) -> Result<Reply, ImapError> {
    let mut newly = Vec::new();
    for cap in caps {
        let name = cap.as_str();
        if name.eq_ignore_ascii_case("CONDSTORE") && !s.enabled.condstore {
            if !newly.contains(&"CONDSTORE") {
                newly.push("CONDSTORE");
            }
        } else if name.eq_ignore_ascii_case("QRESYNC") && !s.enabled.qresync {
            s.enabled.qresync = true;
            newly.push("QRESYNC");
        }
    }
    // Written before the HIGHESTMODSEQ an enabling command in the selected state adds.
    encode::enabled(s.conn.out(), &newly);
    if !newly.is_empty() {
        s.enable_condstore();
    }
    Reply::ok("Enabled.")
}
