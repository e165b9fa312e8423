//! The CAPABILITY list, which must name exactly what this server implements in the current state.

use crate::auth::sasl::Mechanism;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::plaintext_allowed;

/// Capabilities of an authenticated session: RFC 3501 plus every extension implemented.
const AUTHENTICATED: &[&str] = &[
    "IMAP4rev1",
    // RFC 9051 beside RFC 3501 (Appendix A): a client gets rev2 after `ENABLE IMAP4rev2`
    // (docs/imap4rev2.md); every other session is served as IMAP4rev1.
    "IMAP4rev2",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NOTIFY",
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CHILDREN",
    // RFC 4978; after login only, where the command is valid.
    "COMPRESS=DEFLATE",
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
    // RFC 6203: FUZZY and RELEVANCY, docs/fts.md.
    "SEARCH=FUZZY",
    // RFC 9208: GETQUOTA/GETQUOTAROOT and STATUS DELETED/DELETED-STORAGE; no QUOTASET, since
    // SETQUOTA is refused.
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "PREVIEW",
    // RFC 6855: UTF-8 mailbox names and header data after ENABLE, 7-bit ENVELOPE/BODYSTRUCTURE
    // before (docs/ext-utf8.md). RFC 6855 4 also asks for NO to an APPEND with 8-bit headers from
    // a client that did not enable; mailcove accepts it, as Dovecot does, because migration tools
    // copying old mail with raw 8-bit headers do not enable UTF-8 and refusing would lose mail.
    "UTF8=ACCEPT",
    // RFC 8474 and RFC 8514: docs/ext-objectid.md.
    "OBJECTID",
    "SAVEDATE",
    // RFC 3516: FETCH BINARY/BINARY.PEEK/BINARY.SIZE and APPEND with literal8.
    "BINARY",
    "MULTIAPPEND",
    "CATENATE",
    "URL-PARTIAL",
    // RFC 5464: mailbox and server entries (docs/ext-metadata.md). METADATA covers both, so
    // METADATA-SERVER (server entries only) is not announced, as in Dovecot.
    "METADATA",
];

/// The capability list before login. `starttls` is true when STARTTLS may be used now.
pub fn before_login(shared: &Shared, conn: &Conn, starttls: bool) -> String {
    let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];
    // RFC 9051 Appendix A: IMAP4rev2 beside IMAP4rev1, before login too.
    caps.insert(1, "IMAP4rev2");
    if starttls {
        caps.push("STARTTLS");
    }
    if plaintext_allowed(shared, conn) {
        caps.push("AUTH=PLAIN");
        caps.push("AUTH=LOGIN");
        // A bearer token is a credential: offered where PLAIN is, as Dovecot does.
        if shared.config().auth.oauth2.enabled {
            caps.push("AUTH=OAUTHBEARER");
            caps.push("AUTH=XOAUTH2");
        }
    } else {
        // RFC 3501 6.2.3 / RFC 2595: LOGIN is refused here, so say so.
        caps.push("LOGINDISABLED");
    }
    // SCRAM does not expose the password: offered without TLS too, as Dovecot (see
    // server::scram); -PLUS only where the connection has a channel binding.
    for m in crate::server::scram::mechanisms(shared, conn) {
        caps.push(match m {
            Mechanism::ScramSha1 => "AUTH=SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "AUTH=SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "AUTH=SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "AUTH=SCRAM-SHA-256-PLUS",
            Mechanism::Plain | Mechanism::Login | Mechanism::OAuthBearer | Mechanism::XOAuth2 => {
                continue;
            }
        });
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
