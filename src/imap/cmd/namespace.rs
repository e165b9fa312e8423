//! NAMESPACE (RFC 2342).

use super::Reply;
use super::helpers::wire_separator;
use crate::imap::proto::encode::{self, Namespace};
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// NAMESPACE: one personal namespace with an empty prefix, as Dovecot's default, with the
/// separator of the user's store.
pub fn namespace(s: &mut Session) -> Result<Reply, ImapError> {
    let delimiter = wire_separator(s.store()?.separator())?;
    let personal = [Namespace {
        prefix: b"",
        delimiter: Some(delimiter),
    }];
    encode::namespace(s.conn.out(), Some(&personal), None, None);
    Reply::ok("Namespace completed.")
}
