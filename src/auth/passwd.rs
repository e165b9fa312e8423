//! Reading Dovecot's passwd-file format.
//!
//! `user:password:uid:gid:(gecos):home:(shell):extra_fields`, as Dovecot
//! documents it: empty lines and lines starting with `#` are ignored (so are
//! lines starting with `:`, which have no user name, as Dovecot does); fields
//! may be empty and trailing ones missing; everything after the seventh `:` is
//! the extra fields, so their values may contain `:`
//! (`userdb_quota_rule=*:storage=1G`); extra fields are space-separated
//! `key=value` or bare `key`; gecos and shell are unused.
//!
//! Unlike Dovecot, which logs a bad line and skips that user, a bad line makes
//! the whole load fail with its line number: at startup the admin sees it at
//! once, and on reload the previous users stay in force instead of some users
//! silently disappearing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::scheme::StoredHash;
use super::{AuthError, UserInfo};
use crate::limits::{MAX_USERNAME_LEN, MAX_USERS_FILE_LINE};

/// One user of the users file.
#[derive(Debug)]
pub(crate) struct PasswdEntry {
    /// What callers get back (name as written in the file, uid, gid, home, extra).
    pub(crate) info: UserInfo,
    /// The classified password field.
    pub(crate) hash: StoredHash,
    /// Set once the "cannot log in because of its scheme" warning was logged.
    pub(crate) warned: AtomicBool,
}

/// The parsed users file, indexed by lower-cased user name.
#[derive(Debug, Default)]
pub(crate) struct UserDb {
    entries: Vec<PasswdEntry>,
    index: HashMap<String, usize>,
}

impl UserDb {
    /// Finds a user by name, ASCII case-insensitively (Dovecot's default
    /// `auth_username_format = %Lu`). `user` never matches `user@domain`.
    pub(crate) fn get(&self, name: &str) -> Option<&PasswdEntry> {
        self.index
            .get(&normalize(name))
            .and_then(|&i| self.entries.get(i))
    }

    /// All users in file order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &PasswdEntry> {
        self.entries.iter()
    }

    /// Number of users.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The key user names are compared by.
pub(crate) fn normalize(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Checks a user name: non-empty, at most `MAX_USERNAME_LEN` bytes, no `:`,
/// no whitespace or control characters, not starting with `#` (it would read
/// as a comment).
pub(crate) fn validate_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty user name");
    }
    if name.len() > MAX_USERNAME_LEN {
        return Err("user name longer than limits::MAX_USERNAME_LEN");
    }
    if name.starts_with('#') {
        return Err("user name starts with '#'");
    }
    if name
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err("user name contains ':', whitespace or a control character");
    }
    Ok(())
}

/// Whether a raw line carries no user (blank, comment, or no name), exactly
/// the lines the admin tools leave alone when looking for a user.
pub(crate) fn is_ignored_line(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with('#') || line.starts_with(':')
}

/// The user name of a non-ignored line.
pub(crate) fn line_username(line: &str) -> &str {
    line.split(':').next().unwrap_or(line)
}

/// Parses a whole users file. `path` is only used in error messages.
pub(crate) fn parse(data: &[u8], path: &Path) -> Result<UserDb, AuthError> {
    let mut db = UserDb::default();
    for (number, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line_no = number + 1;
        let err = |reason: String| AuthError::Parse {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        if raw.len() > MAX_USERS_FILE_LINE {
            return Err(err("line longer than limits::MAX_USERS_FILE_LINE".into()));
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| err("line is not UTF-8".into()))?;
        if is_ignored_line(line) {
            continue;
        }
        let entry = parse_line(line).map_err(err)?;
        let key = normalize(&entry.info.name);
        if db.index.contains_key(&key) {
            return Err(err(format!(
                "user {:?} appears more than once",
                entry.info.name
            )));
        }
        db.index.insert(key, db.entries.len());
        db.entries.push(entry);
    }
    Ok(db)
}

fn parse_line(line: &str) -> Result<PasswdEntry, String> {
    let mut fields = line.splitn(8, ':');
    let mut next = || fields.next().unwrap_or("");
    let name = next();
    let password = next();
    let uid = next();
    let gid = next();
    let _gecos = next();
    let home = next();
    let _shell = next();
    let extra = next();

    validate_username(name).map_err(|r| format!("{r}: {name:?}"))?;
    let uid = parse_id(uid, IdKind::User)?;
    let gid = parse_id(gid, IdKind::Group)?;
    let home = (!home.is_empty()).then(|| PathBuf::from(home));
    let extra = parse_extra_fields(extra)?;
    super::quota_rule::validate_fields(&extra)?;
    Ok(PasswdEntry {
        info: UserInfo {
            name: name.to_owned(),
            uid,
            gid,
            home,
            extra,
        },
        hash: StoredHash::parse(password),
        warned: AtomicBool::new(false),
    })
}

#[derive(Clone, Copy)]
enum IdKind {
    User,
    Group,
}

/// A uid/gid field: empty, a number, or (as Dovecot allows) a system user or
/// group name resolved once at load time.
fn parse_id(field: &str, kind: IdKind) -> Result<Option<u32>, String> {
    if field.is_empty() {
        return Ok(None);
    }
    if field.bytes().all(|b| b.is_ascii_digit()) {
        return field
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("id {field:?} out of range"));
    }
    let resolved = match kind {
        IdKind::User => nix::unistd::User::from_name(field)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw()),
        IdKind::Group => nix::unistd::Group::from_name(field)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
    };
    resolved.map(Some).ok_or_else(|| match kind {
        IdKind::User => format!("unknown system user {field:?} in uid field"),
        IdKind::Group => format!("unknown system group {field:?} in gid field"),
    })
}

/// Space-separated `key=value` or bare `key` fields.
pub(crate) fn parse_extra_fields(extra: &str) -> Result<Vec<(String, Option<String>)>, String> {
    extra
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(|field| {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (field, None),
            };
            if key.is_empty() {
                return Err(format!("extra field {field:?} has an empty key"));
            }
            Ok((key.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_lines_with_their_number() {
        let data = b"# ok\nalice:{PLAIN}x\nbob:{PLAIN}x:notanumber_surely_absent\n";
        match parse(data, Path::new("users")) {
            Err(AuthError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a parse error, got {other:?}"),
        }
        match parse(b"a:x\nA:y\n", Path::new("users")) {
            Err(AuthError::Parse { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("more than once"));
            }
            other => panic!("expected a duplicate error, got {other:?}"),
        }
        assert!(parse(b"bad\xffname:x\n", Path::new("users")).is_err());
        assert!(parse(b"a b:x\n", Path::new("users")).is_err());
        assert!(parse(b"a:x:1:1::/h::=v\n", Path::new("users")).is_err());
        // A quota rule mailcove cannot apply exactly refuses the file, naming the line.
        match parse(
            b"a:x::::::userdb_quota_rule=*:storage=1G\nb:x::::::userdb_quota_rule=*:storage=lots\n",
            Path::new("users"),
        ) {
            Err(AuthError::Parse { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("invalid size"), "{reason}");
            }
            other => panic!("expected a quota rule error, got {other:?}"),
        }
    }

    #[test]
    fn username_validation() {
        assert!(validate_username("alice@example.org").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a:b").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("a\tb").is_err());
        assert!(validate_username("a\u{7f}").is_err());
        assert!(validate_username("#a").is_err());
        assert!(validate_username(&"a".repeat(255)).is_ok());
        assert!(validate_username(&"a".repeat(256)).is_err());
    }
}
