//! The CAPABILITY list, which must name exactly what this server implements in the current state.

use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::plaintext_allowed;

/// Capabilities of an authenticated session: RFC 3501 plus every extension implemented.
const AUTHENTICATED: &[&str] = &[
    "IMAP4rev1",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CHILDREN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "STATUS=SIZE",
    "ESEARCH",
    "SEARCHRES",
    "CONTEXT=SEARCH",
    "CONDSTORE",
    "QRESYNC",
    "SORT",
    "SORT=DISPLAY",
    "I18NLEVEL=1",
    // RFC 5256 THREAD, and Dovecot's REFS (REFERENCES without the subject merge).
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "ESORT",
    "CONTEXT=SORT",
    "WITHIN",
    "MULTIAPPEND",
    "CATENATE",
    "URL-PARTIAL",
];

/// The capability list before login. `starttls` is true when STARTTLS may be used now.
pub fn before_login(shared: &Shared, conn: &Conn, starttls: bool) -> String {
    let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];
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

/// The capability list after login; APPENDLIMIT (RFC 7889) carries the configured message size.
pub fn after_login(shared: &Shared) -> String {
    format!(
        "{} APPENDLIMIT={}",
        AUTHENTICATED.join(" "),
        shared.config().limits.max_message_size
    )
}
