//! The command table: one row per command the parser knows, giving its name, the states it is
//! valid in (RFC 3501 section 6 and each extension's RFC) and its flags. [`spec`] is the only
//! place a parsed command is classified; it is an exhaustive `match` without a catch-all, so a new
//! [`CommandBody`] variant does not compile until it has a row here.
//!
//! The idea is Dovecot's `imap-commands.c` (`{ "UID FETCH", cmd_fetch, COMMAND_FLAG_BREAKS_SEQS }`):
//! the session loop reads the state check and the "may report EXPUNGE" decision from the row
//! instead of from predicates spread over the code.

use crate::imap::proto::types::CommandBody;

/// The states a command is valid in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Any state (CAPABILITY, NOOP, LOGOUT, ID).
    Any,
    /// Not authenticated only (STARTTLS, LOGIN, AUTHENTICATE).
    NotAuthenticated,
    /// Authenticated or selected (RFC 3501 6.3: "authenticated state" commands are valid in the
    /// selected state too).
    Authenticated,
    /// Selected only.
    Selected,
}

/// What the session loop must know about a command besides its states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// The command opens a mailbox (SELECT, EXAMINE): its answer comes from the sync that opened
    /// the view, and refreshing again before the tagged answer would only cost a second sync (the
    /// next command reports what changed).
    pub opens_mailbox: bool,
    /// RFC 3501 7.4.1: no EXPUNGE may be sent while answering this command (FETCH, STORE,
    /// SEARCH; their UID forms may). Such a command also keeps sequence numbers still, so the
    /// client's numbers stay valid.
    pub keeps_sequences: bool,
    /// Parsed but not implemented: answered `BAD ... is not supported` once the state allows it.
    /// No row has it since COMPRESS and QUOTA were served; a row sets it with
    /// `Flags { unsupported: true, ..Flags::NONE }`.
    pub unsupported: bool,
}

impl Flags {
    /// No flag set: the command may be answered after the selected mailbox's changes.
    const NONE: Flags = Flags {
        opens_mailbox: false,
        keeps_sequences: false,
        unsupported: false,
    };
    const OPENS_MAILBOX: Flags = Flags {
        opens_mailbox: true,
        ..Flags::NONE
    };
    const KEEPS_SEQUENCES: Flags = Flags {
        keeps_sequences: true,
        ..Flags::NONE
    };
}

/// One row of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name as a client writes it (upper case, `UID FETCH` for UID forms).
    pub name: &'static str,
    /// Where it is valid.
    pub states: States,
    /// Its flags.
    pub flags: Flags,
}

impl CommandSpec {
    /// True when the selected mailbox's changes (EXPUNGE included) are reported before this
    /// command's tagged answer.
    pub fn reports_changes(&self) -> bool {
        !self.flags.keeps_sequences && !self.flags.opens_mailbox
    }
}

macro_rules! table {
    ($($id:ident = $name:literal, $states:ident, $flags:ident;)*) => {
        $(
            #[doc = concat!("`", $name, "`.")]
            pub static $id: CommandSpec = CommandSpec {
                name: $name,
                states: States::$states,
                flags: Flags::$flags,
            };
        )*
        /// Every row, in table order (for the tests that check the table against the parser, and
        /// the metrics' command labels).
        pub static ALL: &[&CommandSpec] = &[$(&$id),*];
    };
}

table! {
    // Any state: RFC 3501 6.1, RFC 2971 (ID).
    CAPABILITY = "CAPABILITY", Any, NONE;
    NOOP = "NOOP", Any, NONE;
    LOGOUT = "LOGOUT", Any, NONE;
    ID = "ID", Any, NONE;
    // Not authenticated: RFC 3501 6.2.
    STARTTLS = "STARTTLS", NotAuthenticated, NONE;
    AUTHENTICATE = "AUTHENTICATE", NotAuthenticated, NONE;
    LOGIN = "LOGIN", NotAuthenticated, NONE;
    // Authenticated (and selected): RFC 3501 6.3 and extensions.
    ENABLE = "ENABLE", Authenticated, NONE;
    NAMESPACE = "NAMESPACE", Authenticated, NONE;
    IDLE = "IDLE", Authenticated, NONE;
    // RFC 5465 8: `command-auth =/ notify`.
    NOTIFY = "NOTIFY", Authenticated, NONE;
    // RFC 4978 section 5: `command-auth =/ compress`, so not before login (Dovecot too).
    COMPRESS = "COMPRESS", Authenticated, NONE;
    SELECT = "SELECT", Authenticated, OPENS_MAILBOX;
    EXAMINE = "EXAMINE", Authenticated, OPENS_MAILBOX;
    CREATE = "CREATE", Authenticated, NONE;
    DELETE = "DELETE", Authenticated, NONE;
    RENAME = "RENAME", Authenticated, NONE;
    SUBSCRIBE = "SUBSCRIBE", Authenticated, NONE;
    UNSUBSCRIBE = "UNSUBSCRIBE", Authenticated, NONE;
    LIST = "LIST", Authenticated, NONE;
    LSUB = "LSUB", Authenticated, NONE;
    STATUS = "STATUS", Authenticated, NONE;
    APPEND = "APPEND", Authenticated, NONE;
    GETQUOTA = "GETQUOTA", Authenticated, NONE;
    GETQUOTAROOT = "GETQUOTAROOT", Authenticated, NONE;
    SETQUOTA = "SETQUOTA", Authenticated, NONE;
    // RFC 5464 4.2, 4.3: `command-auth =/ setmetadata / getmetadata`.
    GETMETADATA = "GETMETADATA", Authenticated, NONE;
    SETMETADATA = "SETMETADATA", Authenticated, NONE;
    // Selected: RFC 3501 6.4, RFC 3691 (UNSELECT), RFC 4315 (UID EXPUNGE), RFC 6851 (MOVE).
    CHECK = "CHECK", Selected, NONE;
    CLOSE = "CLOSE", Selected, NONE;
    UNSELECT = "UNSELECT", Selected, NONE;
    EXPUNGE = "EXPUNGE", Selected, NONE;
    UID_EXPUNGE = "UID EXPUNGE", Selected, NONE;
    SEARCH = "SEARCH", Selected, KEEPS_SEQUENCES;
    UID_SEARCH = "UID SEARCH", Selected, NONE;
    SORT = "SORT", Selected, KEEPS_SEQUENCES;
    UID_SORT = "UID SORT", Selected, NONE;
    FETCH = "FETCH", Selected, KEEPS_SEQUENCES;
    UID_FETCH = "UID FETCH", Selected, NONE;
    STORE = "STORE", Selected, KEEPS_SEQUENCES;
    UID_STORE = "UID STORE", Selected, NONE;
    COPY = "COPY", Selected, NONE;
    UID_COPY = "UID COPY", Selected, NONE;
    MOVE = "MOVE", Selected, NONE;
    UID_MOVE = "UID MOVE", Selected, NONE;
    // RFC 5256: THREAD is a SEARCH variant, so it keeps sequence numbers like SEARCH.
    THREAD = "THREAD", Selected, KEEPS_SEQUENCES;
    UID_THREAD = "UID THREAD", Selected, NONE;
    // RFC 5267 4.3.5.
    CANCELUPDATE = "CANCELUPDATE", Selected, NONE;
}

/// The row of a parsed command. No catch-all arm: classifying a new command is a compile error
/// until it is done here.
pub fn spec(body: &CommandBody) -> &'static CommandSpec {
    use CommandBody as C;
    match body {
        C::Capability => &CAPABILITY,
        C::Noop => &NOOP,
        C::Logout => &LOGOUT,
        C::Id { .. } => &ID,
        C::StartTls => &STARTTLS,
        C::Authenticate { .. } => &AUTHENTICATE,
        C::Login { .. } => &LOGIN,
        C::Enable { .. } => &ENABLE,
        C::Namespace => &NAMESPACE,
        C::Idle => &IDLE,
        C::Notify { .. } => &NOTIFY,
        C::Compress { .. } => &COMPRESS,
        C::Select { .. } => &SELECT,
        C::Examine { .. } => &EXAMINE,
        C::Create { .. } => &CREATE,
        C::Delete { .. } => &DELETE,
        C::Rename { .. } => &RENAME,
        C::Subscribe { .. } => &SUBSCRIBE,
        C::Unsubscribe { .. } => &UNSUBSCRIBE,
        C::List { .. } => &LIST,
        C::Lsub { .. } => &LSUB,
        C::Status { .. } => &STATUS,
        C::Append { .. } => &APPEND,
        C::GetQuota { .. } => &GETQUOTA,
        C::GetQuotaRoot { .. } => &GETQUOTAROOT,
        C::SetQuota { .. } => &SETQUOTA,
        C::GetMetadata { .. } => &GETMETADATA,
        C::SetMetadata { .. } => &SETMETADATA,
        C::Check => &CHECK,
        C::Close => &CLOSE,
        C::Unselect => &UNSELECT,
        C::Expunge { uids: None } => &EXPUNGE,
        C::Expunge { uids: Some(_) } => &UID_EXPUNGE,
        C::Search { uid: false, .. } => &SEARCH,
        C::Search { uid: true, .. } => &UID_SEARCH,
        C::Sort { uid: false, .. } => &SORT,
        C::Sort { uid: true, .. } => &UID_SORT,
        C::Fetch { uid: false, .. } => &FETCH,
        C::Fetch { uid: true, .. } => &UID_FETCH,
        C::Store { uid: false, .. } => &STORE,
        C::Store { uid: true, .. } => &UID_STORE,
        C::Copy { uid: false, .. } => &COPY,
        C::Copy { uid: true, .. } => &UID_COPY,
        C::Move { uid: false, .. } => &MOVE,
        C::Move { uid: true, .. } => &UID_MOVE,
        C::Thread { uid: false, .. } => &THREAD,
        C::Thread { uid: true, .. } => &UID_THREAD,
        C::CancelUpdate { .. } => &CANCELUPDATE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::proto::parse::parse_command;

    /// One valid line for every command name (and UID form) the parser knows.
    const EVERY_COMMAND: &[&str] = &[
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "ID NIL",
        "STARTTLS",
        "AUTHENTICATE PLAIN",
        "LOGIN u p",
        "ENABLE CONDSTORE",
        "NAMESPACE",
        "IDLE",
        "COMPRESS DEFLATE",
        "SELECT INBOX",
        "EXAMINE INBOX",
        "CREATE a",
        "DELETE a",
        "RENAME a b",
        "SUBSCRIBE a",
        "UNSUBSCRIBE a",
        "LIST \"\" *",
        "LSUB \"\" *",
        "STATUS INBOX (MESSAGES)",
        "APPEND INBOX {1+}\r\nx",
        "GETQUOTA \"\"",
        "GETQUOTAROOT INBOX",
        "SETQUOTA \"\" (STORAGE 512)",
        "GETMETADATA \"\" /shared/comment",
        "SETMETADATA INBOX (/private/comment NIL)",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "UID EXPUNGE 1",
        "SEARCH ALL",
        "UID SEARCH ALL",
        "SORT (DATE) UTF-8 ALL",
        "UID SORT (DATE) UTF-8 ALL",
        "FETCH 1 FLAGS",
        "UID FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "UID STORE 1 +FLAGS (\\Seen)",
        "COPY 1 a",
        "UID COPY 1 a",
        "MOVE 1 a",
        "UID MOVE 1 a",
        "THREAD REFERENCES UTF-8 ALL",
        "UID THREAD REFS US-ASCII ALL",
        "CANCELUPDATE \"a\"",
        "NOTIFY NONE",
    ];

    #[test]
    fn every_parsed_command_has_the_row_of_its_name_and_every_row_is_reachable() {
        let mut reached = Vec::new();
        for line in EVERY_COMMAND {
            let command = parse_command(format!("t {line}\r\n").as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e:?}"));
            let row = spec(&command.body);
            assert_eq!(row.name, command.body.name(), "{line}");
            assert!(
                line.starts_with(row.name),
                "{line} classified as {}",
                row.name
            );
            reached.push(row.name);
        }
        for row in ALL {
            assert!(
                reached.contains(&row.name),
                "no test line reaches {}",
                row.name
            );
        }
        let mut names: Vec<_> = ALL.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "duplicate names in the table");
    }

    #[test]
    fn only_sequence_number_forms_keep_expunges_back() {
        // RFC 3501 7.4.1: FETCH, STORE and SEARCH must not be answered with EXPUNGE; the UID
        // forms may, and so may everything else. RFC 5256 3: likewise THREAD, not UID THREAD.
        for row in ALL {
            let forbidden = matches!(row.name, "FETCH" | "STORE" | "SEARCH" | "SORT" | "THREAD");
            assert_eq!(row.flags.keeps_sequences, forbidden, "{}", row.name);
        }
        assert!(!SELECT.reports_changes() && !EXAMINE.reports_changes());
        assert!(NOOP.reports_changes() && UID_FETCH.reports_changes());
        assert!(!FETCH.reports_changes());
    }
}
