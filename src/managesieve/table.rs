//! The ManageSieve command table (RFC 5804 section 4, `command-any`, `command-nonauth`,
//! `command-auth`): each command's name, handler and the state it is valid in.

/// Where a command may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Any state (`command-any`).
    Any,
    /// Before authentication only (`command-nonauth`).
    NonAuth,
    /// After authentication only (`command-auth`).
    Auth,
}

/// Which handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// [`super::cmd::capability`].
    Capability,
    /// [`super::cmd::logout`].
    Logout,
    /// [`super::cmd::noop`].
    Noop,
    /// [`super::cmd::authenticate`].
    Authenticate,
    /// [`super::cmd::starttls`].
    Starttls,
    /// [`super::cmd::getscript`].
    Getscript,
    /// [`super::cmd::setactive`].
    Setactive,
    /// [`super::cmd::listscripts`].
    Listscripts,
    /// [`super::cmd::deletescript`].
    Deletescript,
    /// [`super::cmd::putscript`].
    Putscript,
    /// [`super::cmd::checkscript`].
    Checkscript,
    /// [`super::cmd::havespace`].
    Havespace,
    /// [`super::cmd::renamescript`].
    Renamescript,
    /// [`super::cmd::unauthenticate`].
    Unauthenticate,
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// The command name (matched case-insensitively).
    pub name: &'static str,
    /// Its handler.
    pub cmd: Cmd,
    /// The state it is valid in.
    pub allowed: Allowed,
}

const fn row(name: &'static str, cmd: Cmd, allowed: Allowed) -> Row {
    Row { name, cmd, allowed }
}

/// Every command.
pub const TABLE: &[Row] = &[
    row("CAPABILITY", Cmd::Capability, Allowed::Any),
    row("LOGOUT", Cmd::Logout, Allowed::Any),
    row("NOOP", Cmd::Noop, Allowed::Any),
    row("AUTHENTICATE", Cmd::Authenticate, Allowed::NonAuth),
    row("STARTTLS", Cmd::Starttls, Allowed::NonAuth),
    row("GETSCRIPT", Cmd::Getscript, Allowed::Auth),
    row("SETACTIVE", Cmd::Setactive, Allowed::Auth),
    row("LISTSCRIPTS", Cmd::Listscripts, Allowed::Auth),
    row("DELETESCRIPT", Cmd::Deletescript, Allowed::Auth),
    row("PUTSCRIPT", Cmd::Putscript, Allowed::Auth),
    row("CHECKSCRIPT", Cmd::Checkscript, Allowed::Auth),
    row("HAVESPACE", Cmd::Havespace, Allowed::Auth),
    row("RENAMESCRIPT", Cmd::Renamescript, Allowed::Auth),
    row("UNAUTHENTICATE", Cmd::Unauthenticate, Allowed::Auth),
];

/// The command names, for metrics (the same as [`TABLE`], checked by a test).
pub const NAMES: &[&str] = &[
    "CAPABILITY",
    "LOGOUT",
    "NOOP",
    "AUTHENTICATE",
    "STARTTLS",
    "GETSCRIPT",
    "SETACTIVE",
    "LISTSCRIPTS",
    "DELETESCRIPT",
    "PUTSCRIPT",
    "CHECKSCRIPT",
    "HAVESPACE",
    "RENAMESCRIPT",
    "UNAUTHENTICATE",
];

/// The row of command `name`, case-insensitively.
pub fn lookup(name: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_table() {
        let names: Vec<_> = TABLE.iter().map(|r| r.name).collect();
        assert_eq!(names, NAMES);
        assert_eq!(lookup("putScript").map(|r| r.cmd), Some(Cmd::Putscript));
        assert!(lookup("LOGIN").is_none());
    }
}
