//! GETQUOTAROOT (RFC 9208 4.1.2): the quota roots of a mailbox, each with its QUOTA.

use super::Reply;
use super::getquota::{ROOT, write_quota};
use crate::imap::names;
use crate::imap::proto::encode;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// GETQUOTAROOT mailbox: `* QUOTAROOT mailbox ""` and `* QUOTA "" (...)`. Every mailbox of the
/// user, existing or not, is under the one root `""`: RFC 9208 4.1.2 says the mailbox need not
/// exist, so a client can learn the root of a mailbox it is about to create.
pub async fn getquotaroot(s: &mut Session, mb: &Mailbox) -> Result<Reply, ImapError> {
    let form = s.name_form();
    let name = names::from_wire(mb, form)?;
    let usage = s.store()?.quota().await?;
    let out = s.conn.out();
    encode::quotaroot(out, &names::to_wire(&name, form), &[ROOT]);
    write_quota(out, &usage);
    Reply::ok("Getquotaroot completed.")
}
