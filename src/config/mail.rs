//! `[mail]`: where and how mail is stored, quotas, and the mailboxes created at first login.

use serde::{Deserialize, Serialize};

use super::Problems;

/// `[mail]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MailConfig {
    /// Maildir location template: `%u` user, `%n` local part, `%d` domain, `~` home directory.
    pub location: String,
    /// Hierarchy separator shown to IMAP clients.
    pub separator: char,
    /// fsync messages and directories before acknowledging (never turn off in production).
    pub fsync: bool,
    /// Default quota in bytes per user; 0 is unlimited.
    pub quota_bytes: u64,
    /// Default quota in messages per user; 0 is unlimited.
    pub quota_messages: u64,
    /// Mailboxes created at first login, with their special-use attribute.
    pub autocreate: Vec<AutocreateMailbox>,
    /// Keep a full-text index for SEARCH BODY/TEXT and the header keys (docs/fts.md).
    pub fts: bool,
    /// With a `postgresql://` location: a file whose first line is the database password
    /// (docs/postgresql.md); empty for none.
    pub postgresql_password_file: String,
    /// With a `postgresql://` location: how long a POP3 maildrop lease lasts without renewal,
    /// which is how long a node that died keeps its users' maildrops locked (docs/postgresql.md).
    pub postgresql_pop3_lease_secs: u64,
    /// With a `postgresql://` location: send and LISTEN for change notices between nodes
    /// (NOTIFY). Off, nodes learn of each other's changes by the catch-up poll only: for a
    /// connection pooler in transaction mode (PgBouncer), where LISTEN does not work.
    pub postgresql_notify: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            location: "~/Maildir".to_string(),
            separator: '/',
            fsync: true,
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: vec![
                AutocreateMailbox::new("Drafts", "\\Drafts"),
                AutocreateMailbox::new("Sent", "\\Sent"),
                AutocreateMailbox::new("Trash", "\\Trash"),
                AutocreateMailbox::new("Junk", "\\Junk"),
                AutocreateMailbox::new("Archive", "\\Archive"),
            ],
            fts: true,
            postgresql_password_file: String::new(),
            postgresql_pop3_lease_secs: crate::limits::POP3_LEASE_SECS,
            postgresql_notify: true,
        }
    }
}

/// One `[[mail.autocreate]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutocreateMailbox {
    /// Mailbox name as clients see it.
    pub name: String,
    /// RFC 6154 attribute such as `\Sent`, or empty for none.
    #[serde(default)]
    pub special_use: String,
    /// Subscribe the user to it as well.
    #[serde(default = "yes")]
    pub subscribe: bool,
}

fn yes() -> bool {
    true
}

impl AutocreateMailbox {
    fn new(name: &str, special_use: &str) -> Self {
        AutocreateMailbox {
            name: name.to_string(),
            special_use: special_use.to_string(),
            subscribe: true,
        }
    }
}

/// Special-use attributes of RFC 6154 that mailcove stores.
pub const SPECIAL_USE_ATTRIBUTES: &[&str] = &[
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

impl MailConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        if self.location.trim().is_empty() {
            out.add("mail.location", "must not be empty");
        }
        if !self.postgresql_password_file.is_empty()
            && !crate::storage::postgres::is_location(&self.location)
        {
            out.add(
                "mail.postgresql_password_file",
                "only used with a postgresql:// location",
            );
        }
        if self.postgresql_pop3_lease_secs < crate::limits::POP3_LEASE_MIN_SECS {
            out.add(
                "mail.postgresql_pop3_lease_secs",
                format!(
                    "must be at least {} (the lease is renewed every third of it)",
                    crate::limits::POP3_LEASE_MIN_SECS
                ),
            );
        }
        if crate::storage::postgres::is_location(&self.location)
            && let Err(e) =
                crate::storage::postgres::PgOptions::new(self.location.clone()).check_location()
        {
            out.add("mail.location", e);
        }
        let sep = self.separator;
        if !(sep.is_ascii_punctuation()) || sep == '"' || sep == '\\' || sep == '%' || sep == '*' {
            out.add(
                "mail.separator",
                format!("`{sep}` cannot be a hierarchy separator; use / or ."),
            );
        }
        for (i, a) in self.autocreate.iter().enumerate() {
            a.validate(i, out);
        }
    }
}

impl AutocreateMailbox {
    /// Checks `mail.autocreate[i]`.
    fn validate(&self, i: usize, out: &mut Problems) {
        if self.name.is_empty() || self.name.eq_ignore_ascii_case("INBOX") {
            out.add(
                format!("mail.autocreate[{i}].name"),
                "must name a mailbox other than INBOX",
            );
        }
        if !self.special_use.is_empty()
            && !SPECIAL_USE_ATTRIBUTES.contains(&self.special_use.as_str())
        {
            out.add(
                format!("mail.autocreate[{i}].special_use"),
                format!("must be one of {}", SPECIAL_USE_ATTRIBUTES.join(" ")),
            );
        }
    }
}
