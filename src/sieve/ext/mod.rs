//! The extensions: which exist, which command or test each brings, and one file per extension
//! with its own logic. Extensions without logic of their own are handled where they act:
//! `fileinto`, `reject`/`ereject`, `copy`, `mailbox` (`:create`, `mailboxexists`) and
//! `special-use` in the interpreter's action list (`super::interp`), `relational` and `regex`
//! in `super::match_types`, `comparator-i;ascii-numeric` in `super::comparators`,
//! `subaddress` in `super::address`.

pub mod body;
pub mod date;
pub mod duplicate;
pub mod editheader;
pub mod encoded_character;
pub mod imap4flags;
pub mod include;
pub mod spamtest;
pub mod vacation;
pub mod variables;

/// Every extension `require` accepts, as the ManageSieve `SIEVE` capability lists them.
pub const SUPPORTED: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "imap4flags",
    "copy",
    "body",
    "variables",
    "vacation",
    "vacation-seconds",
    "relational",
    "comparator-i;ascii-numeric",
    "subaddress",
    "date",
    "index",
    "mailbox",
    "mboxmetadata",
    "servermetadata",
    "include",
    "environment",
    "spamtest",
    "spamtestplus",
    "virustest",
    "duplicate",
    "editheader",
    "ihave",
    "special-use",
    "regex",
];

/// Whether `require` accepts `name` (lowercase). The two base comparators may be required
/// although they need not be (RFC 5228 section 2.7.3).
pub fn is_supported(name: &str) -> bool {
    SUPPORTED.contains(&name) || matches!(name, "comparator-i;octet" | "comparator-i;ascii-casemap")
}

/// Extensions that requiring `name` brings along: "spamtestplus" includes "spamtest"
/// (RFC 5235 section 3.2), "vacation-seconds" includes "vacation" (RFC 6131 section 2).
pub fn implies(name: &str) -> &'static [&'static str] {
    match name {
        "spamtestplus" => &["spamtest"],
        "vacation-seconds" => &["vacation"],
        _ => &[],
    }
}

/// The extension(s) a command needs (`a+b` when both).
pub fn command_extension(name: &str) -> Option<&'static str> {
    Some(match name {
        "fileinto" => "fileinto",
        "reject" => "reject",
        "ereject" => "ereject",
        "setflag" | "addflag" | "removeflag" => "imap4flags",
        "set" => "variables",
        "vacation" => "vacation",
        "include" | "return" => "include",
        "global" => "include+variables",
        "addheader" | "deleteheader" => "editheader",
        "error" => "ihave",
        _ => return None,
    })
}

/// The extension a test needs.
pub fn test_extension(name: &str) -> Option<&'static str> {
    Some(match name {
        "envelope" => "envelope",
        "body" => "body",
        "date" | "currentdate" => "date",
        "string" => "variables",
        "hasflag" => "imap4flags",
        "mailboxexists" => "mailbox",
        "metadata" | "metadataexists" => "mboxmetadata",
        "servermetadata" | "servermetadataexists" => "servermetadata",
        "environment" => "environment",
        "spamtest" => "spamtest",
        "virustest" => "virustest",
        "duplicate" => "duplicate",
        "specialuse_exists" => "special-use",
        _ => return None,
    })
}

/// A plausible `redirect` target: `local@domain`, no spaces or angle brackets (RFC 5228
/// section 4.2 asks for a valid RFC 5322 address; a bare one is what Pigeonhole accepts too).
pub fn redirect_address_ok(addr: &str) -> bool {
    let a = addr.trim();
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !a
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || matches!(b, b'<' | b'>' | b',' | b'\0'))
        }
        None => false,
    }
}
