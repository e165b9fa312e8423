//! Admin functions for the `user` CLI: add, change password, delete and
//! list users of the passwd-file, hash a password, read a password.
//!
//! Edits are atomic and minimal: the file is read and validated (an invalid
//! file is not edited, so a mistake is not compounded), only the affected
//! line is added, changed or removed, and every other byte (comments, blank
//! lines, other users, line endings) is written back unchanged. The new
//! content goes to a temporary file in the same directory with the original
//! mode and owner, is fsynced, renamed over the original, and the directory
//! is fsynced, so a crash leaves either the old or the new file. Concurrent
//! mailcove edits are serialized by an exclusive `flock` on the directory.
//! A symlinked users file is edited at its target.
//!
//! A running server notices the new file by its changed inode (see the
//! module docs of [`crate::auth`]).

use std::fs;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use super::passwd::{self, is_ignored_line, line_username, normalize, validate_username};
use super::{Argon2Params, AuthError, UserInfo, scheme};
use crate::limits::{MAX_PASSWORD_LEN, MAX_USERS_FILE_SIZE};

/// The scheme prefix of the password fields mailcove writes; prepend it to
/// [`hash_password`]'s result for a passwd-file line (`doveadm pw` prints
/// the same form).
pub const ARGON2ID_SCHEME_PREFIX: &str = "{ARGON2ID}";

/// The scheme of a password field the admin commands write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordScheme {
    /// `{ARGON2ID}` with the configured costs (the default).
    #[default]
    Argon2id,
    /// `{SCRAM-SHA-1}` / `{SCRAM-SHA-256}` keys in Dovecot's format, with
    /// `limits::DEFAULT_SCRAM_ITERATIONS`: the user can then log in with SCRAM as well as with
    /// a plain password.
    Scram(super::scram::ScramHash),
}

impl PasswordScheme {
    /// The scheme named `name` (`ARGON2ID`, `SCRAM-SHA-256`, `SCRAM-SHA-1`; case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("ARGON2ID") {
            Some(Self::Argon2id)
        } else {
            super::scram::ScramHash::from_scheme(name).map(Self::Scram)
        }
    }
}

/// A complete password field (`{SCHEME}...`) for `password` in `scheme`.
pub fn stored_password(
    password: &[u8],
    scheme: PasswordScheme,
    params: &Argon2Params,
) -> Result<String, AuthError> {
    match scheme {
        PasswordScheme::Argon2id => Ok(format!(
            "{ARGON2ID_SCHEME_PREFIX}{}",
            hash_password(password, params)?
        )),
        PasswordScheme::Scram(hash) => {
            if password.len() > MAX_PASSWORD_LEN {
                return Err(AuthError::Hash("password too long".into()));
            }
            super::scram::ScramKeys::generate(hash, password, None)
                .map(|k| k.to_stored())
                .map_err(|e| AuthError::Hash(e.into()))
        }
    }
}

/// Mode of a users file created by `user_add`: it holds password hashes.
const NEW_FILE_MODE: u32 = 0o600;

/// Hashes `password` with Argon2id (random salt, `params` costs) into a PHC
/// string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`. Prefix `{ARGON2ID}`
/// for a passwd-file password field.
pub fn hash_password(password: &[u8], params: &Argon2Params) -> Result<String, AuthError> {
    params.validate()?;
    scheme::hash_argon2id(password, params)
}

/// Adds user `name` with an Argon2id hash of `password` and the given extra
/// fields (`key=value` or `key`). Creates the file (mode 0600) if missing.
/// Refuses an invalid name, an existing user (case-insensitively) or an
/// extra field with whitespace.
pub fn user_add(
    path: &Path,
    name: &str,
    password: &[u8],
    extra: &[String],
    params: &Argon2Params,
) -> Result<(), AuthError> {
    user_add_scheme(
        path,
        name,
        password,
        extra,
        params,
        PasswordScheme::Argon2id,
    )
}

/// [`user_add`] with the password stored in `scheme`.
pub fn user_add_scheme(
    path: &Path,
    name: &str,
    password: &[u8],
    extra: &[String],
    params: &Argon2Params,
    scheme: PasswordScheme,
) -> Result<(), AuthError> {
    validate_username(name).map_err(AuthError::InvalidUsername)?;
    for field in extra {
        validate_extra_field(field)?;
    }
    let field = stored_password(password, scheme, params)?;
    edit(path, true, |content| {
        if find_user_line(content, name).is_some() {
            return Err(AuthError::UserExists(name.to_owned()));
        }
        let mut line = format!("{name}:{field}");
        if !extra.is_empty() {
            line.push_str("::::::");
            line.push_str(&extra.join(" "));
        }
        line.push('\n');
        if !content.is_empty() && !content.ends_with(b"\n") {
            content.push(b'\n');
        }
        content.extend_from_slice(line.as_bytes());
        Ok(())
    })
}

/// Replaces user `name`'s password field with an Argon2id hash of
/// `password`, leaving the rest of the line as it was.
pub fn user_passwd(
    path: &Path,
    name: &str,
    password: &[u8],
    params: &Argon2Params,
) -> Result<(), AuthError> {
    user_passwd_scheme(path, name, password, params, PasswordScheme::Argon2id)
}

/// [`user_passwd`] with the password stored in `scheme`.
pub fn user_passwd_scheme(
    path: &Path,
    name: &str,
    password: &[u8],
    params: &Argon2Params,
    scheme: PasswordScheme,
) -> Result<(), AuthError> {
    let field = stored_password(password, scheme, params)?;
    edit(path, false, |content| {
        let (start, end) =
            find_user_line(content, name).ok_or_else(|| AuthError::UnknownUser(name.to_owned()))?;
        let line = content.get(start..end).unwrap_or_default();
        // The password field runs from after the first ':' to the next ':'
        // or the end of the line's text (before "\r\n" / "\n").
        let text_end = line
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(line.len());
        let mut new_line = Vec::with_capacity(line.len() + field.len());
        match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let pw_start = colon + 1;
                let pw_end = line
                    .get(pw_start..text_end)
                    .and_then(|rest| rest.iter().position(|&b| b == b':'))
                    .map_or(text_end, |p| pw_start + p);
                new_line.extend_from_slice(line.get(..pw_start).unwrap_or_default());
                new_line.extend_from_slice(field.as_bytes());
                new_line.extend_from_slice(line.get(pw_end..).unwrap_or_default());
            }
            None => {
                new_line.extend_from_slice(line.get(..text_end).unwrap_or_default());
                new_line.push(b':');
                new_line.extend_from_slice(field.as_bytes());
                new_line.extend_from_slice(line.get(text_end..).unwrap_or_default());
            }
        }
        content.splice(start..end, new_line);
        Ok(())
    })
}

/// Removes user `name`'s line.
pub fn user_del(path: &Path, name: &str) -> Result<(), AuthError> {
    edit(path, false, |content| {
        let (start, end) =
            find_user_line(content, name).ok_or_else(|| AuthError::UnknownUser(name.to_owned()))?;
        content.drain(start..end);
        Ok(())
    })
}

/// All users of the file, in file order (no password data).
pub fn user_list(path: &Path) -> Result<Vec<UserInfo>, AuthError> {
    let (data, _) = read_existing(path)?;
    let db = passwd::parse(&data, path)?;
    Ok(db.entries().map(|e| e.info.clone()).collect())
}

/// Reads a new password: from the terminal without echo (asked twice when
/// `confirm`), or one line of stdin when stdin is not a terminal (for
/// scripts: `echo pw | mailcove user add`). Never from the command line.
/// Empty passwords are refused.
pub fn read_password(confirm: bool) -> io::Result<Vec<u8>> {
    let password = if io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Retype password: ")?);
            if *first != *again {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "passwords do not match",
                ));
            }
        }
        first.as_bytes().to_vec()
    } else {
        read_password_line(&mut io::stdin().lock())?
    };
    if password.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty password",
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "password longer than limits::MAX_PASSWORD_LEN",
        ));
    }
    Ok(password)
}

/// One line (without `\n` / `\r\n`) of at most `MAX_PASSWORD_LEN` bytes.
pub(crate) fn read_password_line(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Zeroizing::new(Vec::new());
    reader
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() > MAX_PASSWORD_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "password longer than limits::MAX_PASSWORD_LEN",
        ));
    }
    Ok(line.to_vec())
}

fn validate_extra_field(field: &str) -> Result<(), AuthError> {
    let bad = field.is_empty()
        || field.starts_with('=')
        || field.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(AuthError::InvalidExtraField(field.to_owned()));
    }
    // A quota rule is checked now, so `user add` never writes a line the server then refuses.
    if let Some((key, value)) = field.split_once('=')
        && super::quota_rule::is_quota_rule_key(key)
    {
        super::quota_rule::parse(value).map_err(AuthError::InvalidQuotaRule)?;
    }
    Ok(())
}

/// Byte range (including its line ending) of `name`'s line, if any.
fn find_user_line(content: &[u8], name: &str) -> Option<(usize, usize)> {
    let wanted = normalize(name);
    let mut start = 0;
    for line in content.split_inclusive(|&b| b == b'\n') {
        let end = start + line.len();
        // The file was validated, so every line is UTF-8.
        if let Ok(text) = std::str::from_utf8(line) {
            let text = text.trim_end_matches(['\n', '\r']);
            if !is_ignored_line(text) && normalize(line_username(text)) == wanted {
                return Some((start, end));
            }
        }
        start = end;
    }
    None
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's bytes and metadata; bounded like the server's read.
fn read_existing(path: &Path) -> Result<(Vec<u8>, fs::Metadata), AuthError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    let mut data = Vec::new();
    file.take(MAX_USERS_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io_error(path))?;
    if data.len() as u64 > MAX_USERS_FILE_SIZE {
        return Err(AuthError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok((data, meta))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Reads, validates, changes with `change`, and atomically replaces `path`.
fn edit(
    path: &Path,
    create: bool,
    change: impl FnOnce(&mut Vec<u8>) -> Result<(), AuthError>,
) -> Result<(), AuthError> {
    // Edit a symlink's target, not replace the link with a file.
    let path: PathBuf = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => path.to_path_buf(),
        Err(e) => return Err(io_error(path)(e)),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir_file = fs::File::open(&dir).map_err(io_error(&dir))?;
    let _lock = nix::fcntl::Flock::lock(dir_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io_error(&dir)(io::Error::from(errno)))?;

    let (mut content, mode, owner) = match read_existing(&path) {
        Ok((data, meta)) => (
            data,
            meta.permissions().mode() & 0o7777,
            Some((meta.uid(), meta.gid())),
        ),
        Err(AuthError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound && create => {
            (Vec::new(), NEW_FILE_MODE, None)
        }
        Err(e) => return Err(e),
    };
    passwd::parse(&content, &path)?;
    change(&mut content)?;
    // Never write a file the server would refuse.
    passwd::parse(&content, &path)?;
    write_atomically(&path, &dir, &content, mode, owner)
}

fn write_atomically(
    path: &Path,
    dir: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), AuthError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".to_owned());
    let tmp = dir.join(format!(
        ".{file_name}.mailcove-tmp.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        // The umask may have narrowed the creation mode; restore it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_error(&tmp))?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata().map_err(io_error(&tmp))?;
            if meta.uid() != uid || meta.gid() != gid {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(io_error(&tmp))?;
                // chown may clear set-id bits; mode must be exactly the old one.
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(io_error(&tmp))?;
            }
        }
        file.write_all(content).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, path).map_err(io_error(path))
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless after a failure.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_line_from_non_tty_input() {
        let mut input = io::Cursor::new(b"s3cret\r\nignored\n".to_vec());
        assert_eq!(read_password_line(&mut input).unwrap(), b"s3cret");
        let mut input = io::Cursor::new(b"no newline".to_vec());
        assert_eq!(read_password_line(&mut input).unwrap(), b"no newline");
        let mut input = io::Cursor::new(vec![b'x'; MAX_PASSWORD_LEN + 10]);
        assert!(read_password_line(&mut input).is_err());
    }

    #[test]
    fn extra_field_validation() {
        assert!(validate_extra_field("userdb_quota_rule=*:storage=1G").is_ok());
        assert!(validate_extra_field("userdb_quota_rule=*:storage=1Q").is_err());
        assert!(validate_extra_field("nologin").is_ok());
        assert!(validate_extra_field("a b").is_err());
        assert!(validate_extra_field("=v").is_err());
        assert!(validate_extra_field("").is_err());
        assert!(validate_extra_field("a\nb").is_err());
    }
}
