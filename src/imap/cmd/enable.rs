//! ENABLE (RFC 5161) of CONDSTORE and QRESYNC (RFC 7162 3.1, 3.2.3), UTF8=ACCEPT (RFC 6855 3)
//! and IMAP4rev2 (RFC 9051 Appendix A).

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::Atom;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// ENABLE: turns on CONDSTORE and QRESYNC (which implies CONDSTORE); other names are ignored
/// (RFC 5161 3.1). ENABLED lists only what this command turned on, as RFC 5161 3.1 advises.
/// RFC 5161 3.1 lets the server accept it in the selected state too, so the table row says
/// "authenticated"; there `ENABLE CONDSTORE` is a CONDSTORE enabling command like any other and
/// reports the mailbox's HIGHESTMODSEQ.
///
/// UTF8=ACCEPT: RFC 6855 3 makes `ENABLE UTF8=ACCEPT` valid only in the authenticated state, so
/// in the selected state the whole command is refused with `BAD` and nothing is enabled: names
/// and header data of the open mailbox would otherwise change form under the client mid-session.
///
/// IMAP4rev2: RFC 9051 6.3.1 says clients MUST NOT send ENABLE once a mailbox was selected
/// but lets the server skip the check. mailcove refuses `ENABLE IMAP4rev2` in the selected state
/// with `BAD`, as it does UTF8=ACCEPT: rev2 changes mailbox names to UTF-8 and drops `\Recent`
/// and RECENT, which must not change under a client in the middle of a selection.
pub fn enable(s: &mut Session, caps: &[Atom]) -> Result<Reply, ImapError> {
    let wants_utf8 = caps
        .iter()
        .any(|c| c.as_str().eq_ignore_ascii_case("UTF8=ACCEPT"));
    if wants_utf8 && matches!(s.state, State::Selected(..)) {
        return Err(ImapError::Parse(
            "ENABLE UTF8=ACCEPT is only valid in the authenticated state (RFC 6855 3).",
        ));
    }
    let wants_rev2 = caps
        .iter()
        .any(|c| c.as_str().eq_ignore_ascii_case("IMAP4rev2"));
    if wants_rev2 && !s.enabled.imap4rev2 && matches!(s.state, State::Selected(..)) {
        return Err(ImapError::Parse(
            "ENABLE IMAP4rev2 is only valid before a mailbox is selected (RFC 9051 6.3.1).",
        ));
    }
    let mut newly = Vec::new();
    for cap in caps {
        let name = cap.as_str();
        if name.eq_ignore_ascii_case("UTF8=ACCEPT") {
            if !s.enabled.utf8_accept {
                s.enabled.utf8_accept = true;
                newly.push("UTF8=ACCEPT");
            }
            continue;
        }
        if name.eq_ignore_ascii_case("IMAP4rev2") {
            if !s.enabled.imap4rev2 {
                s.enabled.imap4rev2 = true;
                newly.push("IMAP4rev2");
            }
            continue;
        }
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
    if newly
        .iter()
        .any(|n| *n != "UTF8=ACCEPT" && *n != "IMAP4rev2")
    {
        s.enable_condstore();
    }
    Reply::ok("Enabled.")
}
