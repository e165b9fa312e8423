//! LOGIN (RFC 3501 6.2.3), through the shared login path (penalty, user+IP cap, log line).

use super::Reply;
use super::helpers::finish_login;
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::server::login::plaintext_allowed;

/// LOGIN user password. Refused (`NO [PRIVACYREQUIRED]`) where plaintext is not allowed, which
/// CAPABILITY announces as LOGINDISABLED.
pub async fn login(s: &mut Session, user: &[u8], password: &[u8]) -> Result<Reply, ImapError> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(ImapError::PrivacyRequired);
    }
    let user = String::from_utf8_lossy(user).into_owned();
    finish_login(s, &user, password, "LOGIN").await
}
