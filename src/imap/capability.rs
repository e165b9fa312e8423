//! The CAPABILITY list, which must name exactly what this server implements in the current state.

use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::plaintext_allowed;

/// Capabilities of an authenticated session (RFC 3501 plus the implemented extensions).
const AUTHENTICATED: &[&str] = &["IMAP4rev1", "LITERAL+", "ID", "ENABLE", "SASL-IR"];

/// The capability list before login. `starttls` is true when STARTTLS may be used now.
pub fn before_login(shared: &Shared, conn: &Conn, starttls: bool) -> String {
    let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE"];
    if starttls {
        caps.push("STARTTLS");
    }
    if plaintext_allowed(shared, conn) {
        caps.push("AUTH=PLAIN");
        caps.push("AUTH=LOGIN");
    } else {
        // RFC 3501 6.2.3 / RFC 2595: LOGIN is refused here, so say so.
        caps.push("LOGINDISABLED");
    }
    caps.join(" ")
}

/// The capability list after login.
pub fn after_login() -> String {
    AUTHENTICATED.join(" ")
}
