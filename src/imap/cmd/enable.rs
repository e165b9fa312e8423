//! ENABLE (RFC 5161).

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::Atom;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// ENABLE: no extension that needs enabling is implemented yet, so the ENABLED list is empty,
/// which RFC 5161 3.1 allows for capabilities the server does not support. RFC 5161 3.1 lets the
/// server accept it in the selected state too, so the table row says "authenticated".
pub fn enable(s: &mut Session, _caps: &[Atom]) -> Result<Reply, ImapError> {
    encode::enabled(s.conn.out(), &[]);
    Reply::ok("Enabled.")
}
