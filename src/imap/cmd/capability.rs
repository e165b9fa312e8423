//! CAPABILITY (RFC 3501 6.1.1): the list depends on the state; the list itself is built in
//! [`crate::imap::capability`].

use super::Reply;
use crate::imap::capability;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// CAPABILITY.
pub fn capability(s: &mut Session) -> Result<Reply, ImapError> {
    let caps = match s.state {
        State::NotAuthenticated => {
            capability::before_login(&s.shared, &s.conn, s.starttls_possible())
        }
        _ => capability::after_login(&s.shared),
    };
    s.untagged(&format!("CAPABILITY {caps}"));
    Reply::ok("Capability completed.")
}
