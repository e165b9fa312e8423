//! Vacation (RFC 5230, RFC 6131) at delivery: whether to answer (RFC 3834 section 2, RFC 5230
//! sections 4.5 and 4.6) and the reply itself (RFC 5230 section 5, RFC 3834 section 3).
//!
//! No reply goes to:
//! * the null sender (RFC 5230 4.6, RFC 3834 2);
//! * a message with `Auto-Submitted` other than `no` (RFC 3834 5);
//! * `Precedence: bulk`, `list` or `junk`, or any `List-*` header (RFC 3834 2, RFC 2369): lists;
//! * system senders: `MAILER-DAEMON`, `LISTSERV`, `majordomo`, `owner-*`, `*-request`
//!   (RFC 5230 4.6 suggests it; Pigeonhole checks the same names);
//! * the user's own addresses (the recipient, `:addresses`, `:from`): no reply to oneself;
//! * a message that does not name the user in To, Cc or Bcc (RFC 5230 4.5): the user got it
//!   through a list or an alias and the sender did not write to them;
//! * a sender already answered under this handle within `:days`/`:seconds` (tracked per user,
//!   see [`super::tracking`]).

use mail_parser::{Message, MessageParser};

use crate::imap::proto::date::Date;

/// Why no reply is sent (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// MAIL FROM:<>.
    NullSender,
    /// Auto-Submitted is not `no`.
    AutoSubmitted,
    /// Precedence bulk/list/junk.
    Precedence,
    /// A List-* header.
    List,
    /// MAILER-DAEMON and friends.
    SystemSender,
    /// The sender is the user.
    OwnAddress,
    /// The user is not in To/Cc/Bcc.
    NotAddressed,
    /// Replied within the period already.
    AlreadyReplied,
}

/// The headers of `message` (the body is not needed).
pub fn parse_headers(message: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse_headers(message)
}

fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(l, _)| l)
}

fn same_address(a: &str, b: &str) -> bool {
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

/// The RFC 3834 / RFC 5230 checks that do not depend on tracking. `own` are the user's
/// addresses (recipient with and without detail, `:addresses`, `:from`).
pub fn check(sender: &str, message: &[u8], own: &[String]) -> Result<(), Skip> {
    if sender.is_empty() {
        return Err(Skip::NullSender);
    }
    let local = local_part(sender).to_ascii_lowercase();
    if ["mailer-daemon", "listserv", "majordomo"].contains(&local.as_str())
        || local.starts_with("owner-")
        || local.ends_with("-request")
    {
        return Err(Skip::SystemSender);
    }
    if own.iter().any(|a| same_address(a, sender)) {
        return Err(Skip::OwnAddress);
    }
    let Some(msg) = parse_headers(message) else {
        return Err(Skip::NotAddressed);
    };
    if let Some(v) = msg.header_raw("Auto-Submitted") {
        // RFC 3834 5: the value is a token with optional parameters; only `no` is a person.
        let token = v.split(';').next().unwrap_or_default().trim();
        if !token.eq_ignore_ascii_case("no") {
            return Err(Skip::AutoSubmitted);
        }
    }
    if let Some(v) = msg.header_raw("Precedence") {
        let v = v.trim().to_ascii_lowercase();
        if ["bulk", "list", "junk"].contains(&v.as_str()) {
            return Err(Skip::Precedence);
        }
    }
    let list_headers = [
        "List-Id",
        "List-Help",
        "List-Subscribe",
        "List-Unsubscribe",
        "List-Post",
        "List-Owner",
        "List-Archive",
    ];
    if list_headers.iter().any(|h| msg.header_raw(*h).is_some()) {
        return Err(Skip::List);
    }
    let addressed = [msg.to(), msg.cc(), msg.bcc()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .any(|a| own.iter().any(|o| same_address(o, a)));
    if !addressed {
        return Err(Skip::NotAddressed);
    }
    Ok(())
}

/// What the reply is made of.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    /// From: the recipient or `:from`.
    pub from: &'a str,
    /// To: the envelope sender.
    pub to: &'a str,
    /// `:subject`, if given.
    pub subject: Option<&'a str>,
    /// The reason: a text body, or with `mime` a MIME entity (headers and body).
    pub reason: &'a str,
    /// `:mime`.
    pub mime: bool,
    /// Our host name, for the Message-ID.
    pub hostname: &'a str,
}

/// Encodes a header value as an RFC 2047 encoded word when it is not plain ASCII.
fn header_text(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        return clean;
    }
    use base64::Engine;
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
    )
}

/// Builds the reply to `original` (RFC 5230 section 5, RFC 3834 section 3).
pub fn build(reply: &Reply<'_>, original: &[u8], now: std::time::SystemTime) -> Vec<u8> {
    let msg = parse_headers(original);
    let orig_subject = msg.as_ref().and_then(|m| m.subject()).unwrap_or_default();
    let subject = match reply.subject {
        Some(s) => s.to_string(),
        // RFC 5230 5.3: "Auto:" followed by the original subject.
        None => format!("Auto: {orig_subject}"),
    };
    let msgid = msg
        .as_ref()
        .and_then(|m| m.message_id())
        .map(str::to_string);
    let mut refs: Vec<String> = msg
        .as_ref()
        .and_then(|m| m.references().as_text_list().map(|l| l.to_vec()))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.into_owned())
        .collect();
    if refs.is_empty()
        && let Some(r) = msg.as_ref().and_then(|m| m.references().as_text())
    {
        refs.push(r.to_string());
    }
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let date = httpdate_rfc5322(secs);
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", header_text(reply.from)));
    out.push_str(&format!("To: <{}>\r\n", reply.to));
    out.push_str(&format!("Subject: {}\r\n", header_text(&subject)));
    out.push_str(&format!("Date: {date}\r\n"));
    let nonce: u64 = rand_u64();
    out.push_str(&format!(
        "Message-ID: <vacation.{secs}.{nonce:016x}@{}>\r\n",
        reply.hostname
    ));
    if let Some(id) = &msgid {
        out.push_str(&format!("In-Reply-To: <{id}>\r\n"));
        refs.push(id.clone());
    }
    if !refs.is_empty() {
        let list: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
        out.push_str(&format!("References: {}\r\n", list.join(" ")));
    }
    out.push_str("Auto-Submitted: auto-replied (vacation)\r\n");
    out.push_str("Precedence: bulk\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    if reply.mime {
        // The reason is a MIME entity: its own headers (Content-Type, ...) and body.
        let body = reply.reason.replace("\r\n", "\n").replace('\n', "\r\n");
        out.push_str(&body);
    } else {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        let body = reply.reason.replace("\r\n", "\n").replace('\n', "\r\n");
        out.push_str(&body);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// `Date:` in RFC 5322 form, UTC.
fn httpdate_rfc5322(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    let wd = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    // The calendar arithmetic of IMAP's dates; a year past 9999 (which four digits cannot
    // hold) is written as the epoch's day.
    let (y, m, d) = i64::try_from(days)
        .ok()
        .and_then(Date::from_days_since_epoch)
        .map_or((1970, 1, 1), |t| (t.year(), t.month(), t.day()));
    let mon = MONTHS.get(usize::from(m) - 1).copied().unwrap_or("Jan");
    format!(
        "{wd}, {d} {mon} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_header_is_rfc5322_in_utc() {
        // Day 0 was a Thursday; 837596665 is 1996-07-17 09:44:25 UTC (a Wednesday, day 9694);
        // 951782400 is day 11016, 2000-02-29 (a Tuesday: 2000 is a leap year).
        assert_eq!(httpdate_rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            httpdate_rfc5322(837_596_665),
            "Wed, 17 Jul 1996 09:44:25 +0000"
        );
        assert_eq!(
            httpdate_rfc5322(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }

    fn own() -> Vec<String> {
        vec!["demo@example.org".into(), "demo+x@example.org".into()]
    }

    const BASE: &str = "From: alice@example.com\r\nTo: Demo <demo@example.org>\r\nSubject: hi\r\nMessage-ID: <m1@example.com>\r\n\r\nbody\r\n";

    fn with(header: &str) -> Vec<u8> {
        format!("{header}\r\n{BASE}").into_bytes()
    }

    #[test]
    fn rfc3834_rules() {
        let ok = BASE.as_bytes();
        assert_eq!(check("alice@example.com", ok, &own()), Ok(()));
        assert_eq!(check("", ok, &own()), Err(Skip::NullSender));
        assert_eq!(
            check("MAILER-DAEMON@example.com", ok, &own()),
            Err(Skip::SystemSender)
        );
        assert_eq!(
            check("owner-list@example.com", ok, &own()),
            Err(Skip::SystemSender)
        );
        assert_eq!(
            check("list-request@example.com", ok, &own()),
            Err(Skip::SystemSender)
        );
        assert_eq!(check("Demo@Example.org", ok, &own()), Err(Skip::OwnAddress));
        let a = "alice@example.com";
        assert_eq!(
            check(a, &with("Auto-Submitted: auto-generated"), &own()),
            Err(Skip::AutoSubmitted)
        );
        assert_eq!(check(a, &with("Auto-Submitted: no"), &own()), Ok(()));
        assert_eq!(
            check(a, &with("Precedence: bulk"), &own()),
            Err(Skip::Precedence)
        );
        assert_eq!(
            check(a, &with("Precedence: junk"), &own()),
            Err(Skip::Precedence)
        );
        assert_eq!(
            check(a, &with("List-Id: <l.example.com>"), &own()),
            Err(Skip::List)
        );
        let other = b"From: alice@example.com\r\nTo: list@example.net\r\n\r\nx\r\n";
        assert_eq!(check(a, other, &own()), Err(Skip::NotAddressed));
        let cc = b"From: alice@example.com\r\nTo: x@y\r\nCc: demo+x@example.org\r\n\r\nx\r\n";
        assert_eq!(check(a, cc, &own()), Ok(()));
    }

    #[test]
    fn reply_headers() {
        let r = Reply {
            from: "demo@example.org",
            to: "alice@example.com",
            subject: None,
            reason: "I am away.\nBack soon.",
            mime: false,
            hostname: "mx.example.org",
        };
        let t0 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let out = String::from_utf8(build(&r, BASE.as_bytes(), t0)).unwrap();
        assert!(
            out.starts_with(
                "From: demo@example.org\r\nTo: <alice@example.com>\r\nSubject: Auto: hi\r\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{out}"
        );
        assert!(out.contains("In-Reply-To: <m1@example.com>\r\nReferences: <m1@example.com>\r\n"));
        assert!(out.contains("Auto-Submitted: auto-replied (vacation)\r\n"));
        assert!(
            out.ends_with("\r\n\r\nI am away.\r\nBack soon.\r\n"),
            "{out}"
        );
        let r = Reply {
            subject: Some("Abwesend – Urlaub"),
            ..r
        };
        let out = String::from_utf8(build(&r, BASE.as_bytes(), t0)).unwrap();
        assert!(out.contains("Subject: =?utf-8?B?"), "{out}");
    }
}
