//! CAPABILITY (RFC 5804 section 2.4), also the greeting and the answer after STARTTLS.
//!
//! - `SASL` lists exactly the mechanisms IMAP offers on the same connection
//!   ([`super::authenticate::mechanisms`]): PLAIN, LOGIN (and OAUTHBEARER, XOAUTH2 with
//!   `[auth.oauth2] enabled`) only where plaintext credentials may be used, so without TLS off
//!   loopback only the SCRAM ones `[auth] scram_mechanisms` enables remain (an empty list when
//!   there are none, as Dovecot sends it, so a client upgrades first); -PLUS only on TLS 1.3.
//!   After login it is empty (no re-authentication).
//! - `SIEVE` is [`crate::sieve::extensions`]; `NOTIFY` only when `enotify` is one of them.
//! - `STARTTLS` only while it can be used; `OWNER` only after login.

use crate::config::TlsMode;
use crate::limits;
use crate::managesieve::response::{SieveError, Status, push_response, push_string};
use crate::managesieve::session::{Args, Next, Session, State};

/// CAPABILITY.
pub fn run(s: &mut Session, args: Args) -> Result<Next, SieveError> {
    args.finish()?;
    write(s);
    push_response(s.conn.out(), Status::Ok, None, "Capability completed.");
    Ok(Next::Continue)
}

/// True while STARTTLS can be used on this connection.
pub fn starttls_possible(s: &Session) -> bool {
    matches!(s.state, State::NonAuth)
        && s.listener.tls == TlsMode::Starttls
        && !s.conn.is_tls()
        && s.shared.tls.current().is_some()
}

/// Appends the capability lines (without the final OK).
pub fn write(s: &mut Session) {
    let sasl = if matches!(s.state, State::NonAuth) {
        super::authenticate::mechanisms(&s.shared, &s.conn).join(" ")
    } else {
        String::new()
    };
    let extensions = crate::sieve::extensions().join(" ");
    let notify = crate::sieve::extensions().contains(&"enotify");
    let starttls = starttls_possible(s);
    let owner = match &s.state {
        State::Auth { login, .. } => Some(login.user.name.clone()),
        State::NonAuth => None,
    };
    let line = |out: &mut Vec<u8>, name: &str, value: Option<&str>| {
        push_string(out, name.as_bytes());
        if let Some(v) = value {
            out.push(b' ');
            push_string(out, v.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    };
    let out = s.conn.out();
    line(
        out,
        "IMPLEMENTATION",
        Some(&format!("mailcove {}", env!("CARGO_PKG_VERSION"))),
    );
    line(out, "SIEVE", Some(&extensions));
    if notify {
        line(out, "NOTIFY", Some("mailto"));
    }
    line(out, "SASL", Some(&sasl));
    if starttls {
        line(out, "STARTTLS", None);
    }
    line(
        out,
        "MAXREDIRECTS",
        Some(&limits::MANAGESIEVE_MAXREDIRECTS.to_string()),
    );
    if let Some(owner) = &owner {
        line(out, "OWNER", Some(owner));
    }
    line(out, "VERSION", Some("1.0"));
    line(out, "UNAUTHENTICATE", None);
}
