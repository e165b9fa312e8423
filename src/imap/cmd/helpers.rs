//! Helpers shared by more than one command file: the end of a successful LOGIN/AUTHENTICATE,
//! the user's hierarchy separator in its wire form, mailbox-name and LIST-pattern conversions,
//! and the STATUS item values (STATUS and LIST RETURN (STATUS)).

use super::Reply;
use crate::imap::capability;
use crate::imap::names::{self, NameForm};
use crate::imap::proto::encode::Code;
use crate::imap::proto::types::{Mailbox, StatusItem};
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State, UserCtx};
use crate::limits;
use crate::server::login::{self, LoginError};
use crate::storage::StorageError;

/// Checks the credentials of LOGIN or AUTHENTICATE and, when they are good, opens the user's
/// store and enters the authenticated state. The tagged OK carries the new CAPABILITY list.
pub async fn finish_login(
    s: &mut Session,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
) -> Result<Reply, ImapError> {
    let result = login::login_for(&s.shared, &s.conn, user, password, mechanism, "imap").await;
    complete_login(s, result).await
}

/// The session's side of a checked login (by password or by a SASL mechanism such as SCRAM):
/// open the user's store and answer OK with the capabilities, or map the failure.
pub async fn complete_login(
    s: &mut Session,
    result: Result<login::LoggedIn, LoginError>,
) -> Result<Reply, ImapError> {
    match result {
        Ok(login) => {
            let storage_user = crate::setup::storage_user(&login.user);
            let store = s.shared.storage.user(&storage_user).await?;
            s.state = State::Authenticated(Box::new(UserCtx { login, store }));
            let caps = capability::after_login(&s.shared)
                .split(' ')
                .map(str::to_string)
                .collect();
            Ok(Reply::Ok(Some(Code::Capability(caps)), "Logged in".into()))
        }
        Err(LoginError::PlaintextRefused) => Err(ImapError::PrivacyRequired),
        Err(LoginError::TempFail) => Err(ImapError::AuthTemp),
        Err(LoginError::UserIpLimit(n)) => {
            // As Dovecot: the session is ended with BYE rather than a NO that clients would
            // take for a wrong password.
            s.untagged(&format!(
                "BYE [UNAVAILABLE] Maximum number of connections from user+IP exceeded (limit {n})."
            ));
            s.conn.set_end(crate::server::sessions::EndReason::Closed);
            Ok(Reply::Close)
        }
        Err(LoginError::Invalid) => {
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                s.untagged("BYE Too many failed logins.");
                s.conn.set_end(crate::server::sessions::EndReason::Closed);
                return Ok(Reply::Close);
            }
            Err(ImapError::AuthFailed)
        }
    }
}

/// The user's hierarchy separator as the single byte LIST, LSUB and NAMESPACE carry. The store
/// decides the separator (never the config read behind its back); a non-ASCII one cannot be
/// sent and is an internal error, logged where errors are mapped.
pub fn wire_separator(sep: char) -> Result<u8, ImapError> {
    u8::try_from(sep).ok().filter(u8::is_ascii).ok_or_else(|| {
        StorageError::Temporary(format!("hierarchy separator {sep:?} is not ASCII")).into()
    })
}

/// The storage name of a mailbox to create or rename to: trailing separators are dropped
/// (RFC 3501 6.3.3), INBOX cannot be a new name, and the name must be Net-Unicode (RFC 6855 3,
/// see [`names::check_new_name`]).
pub fn new_mailbox_name(mb: &Mailbox, sep: char, form: NameForm) -> Result<String, ImapError> {
    let mut name = names::from_wire(mb, form)?;
    names::check_new_name(&name)?;
    while name.ends_with(sep) {
        name.pop();
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Err(StorageError::AlreadyExists.into());
    }
    Ok(name)
}

/// Joins reference and pattern as RFC 3501 6.3.8 describes (plain concatenation, as Dovecot).
pub fn full_pattern(reference: &str, pattern: &str) -> String {
    format!("{reference}{pattern}")
}

/// The values of STATUS items for `name` (STATUS, and LIST RETURN (STATUS) of RFC 5819).
pub async fn status_items(
    s: &Session,
    name: &str,
    items: &[StatusItem],
) -> Result<Vec<(StatusItem, u64)>, ImapError> {
    let st =
        crate::metrics::storage(crate::metrics::StorageOp::Status, s.store()?.status(name)).await?;
    items
        .iter()
        // MAILBOXID is a string: see `status_mailbox_id`.
        .filter_map(|item| {
            let v = match item {
                StatusItem::MailboxId => return None,
                StatusItem::Messages => u64::from(st.messages),
                StatusItem::Recent => u64::from(st.recent),
                StatusItem::UidNext => u64::from(st.uidnext),
                StatusItem::UidValidity => u64::from(st.uidvalidity),
                StatusItem::Unseen => u64::from(st.unseen),
                StatusItem::Size => st.size,
                StatusItem::HighestModSeq => st.highest_modseq,
                // RFC 9208 4.1.4: messages with \Deleted, and the storage an EXPUNGE would
                // free, in the units of the STORAGE resource (1024 octets, rounded up).
                StatusItem::Deleted => u64::from(st.deleted),
                StatusItem::DeletedStorage => super::getquota::kib(st.deleted_bytes),
            };
            Some(Ok((*item, v)))
        })
        .collect()
}

/// The MAILBOXID of `name` when `items` ask for it (STATUS and LIST RETURN (STATUS), RFC 8474
/// 4.3).
pub async fn status_mailbox_id(
    s: &Session,
    name: &str,
    items: &[StatusItem],
) -> Result<Option<String>, ImapError> {
    if !items.contains(&StatusItem::MailboxId) {
        return Ok(None);
    }
    Ok(Some(s.store()?.mailbox_id(name).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_separator_is_one_ascii_byte_or_an_error() {
        assert_eq!(wire_separator('/').ok(), Some(b'/'));
        assert_eq!(wire_separator('.').ok(), Some(b'.'));
        assert!(wire_separator('é').is_err());
        assert!(wire_separator('\u{2044}').is_err());
    }
}
