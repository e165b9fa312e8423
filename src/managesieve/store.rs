//! The write side of a user's Sieve scripts, in Pigeonhole's layout so delivery and a migrating
//! Dovecot site read them unchanged:
//!
//! - `DIR/NAME.sieve`, one file per script (`DIR` is `~/sieve` by default);
//! - the active script is the symlink `LINK` (`~/.dovecot.sieve`) to it, relative as Pigeonhole
//!   writes it (`sieve/NAME.sieve`); no link means no active script;
//! - files being written live in `DIR/tmp/` until they are complete.
//!
//! Every change is durable before it is acknowledged: a script is written to a temporary file,
//! fsynced, renamed into place and the directory fsynced; the active link is replaced by
//! renaming a new link over it (never removed first), then its directory fsynced. RENAMESCRIPT
//! of the active script hard-links the new name, moves the link, then removes the old name, so
//! the link never dangles.
//!
//! The functions block; sessions call them through `spawn_blocking`.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::ScriptLocation;
use crate::limits;

/// The file suffix of a script.
pub const SUFFIX: &str = ".sieve";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No script by that name.
    #[error("no such script")]
    NonExistent,
    /// The new name is taken.
    #[error("script already exists")]
    AlreadyExists,
    /// The script is the active one.
    #[error("script is active")]
    Active,
    /// Over `max_script_size`.
    #[error("script too large")]
    QuotaMaxSize(usize),
    /// Over `max_scripts`.
    #[error("too many scripts")]
    QuotaMaxScripts(usize),
    /// The active path exists and is not a symlink.
    #[error("active script path is not a symlink")]
    ActiveNotLink,
    /// A file-system error, with what was being done.
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
}

type Result<T> = std::result::Result<T, StoreError>;

fn io(what: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::Io(what, e)
}

/// Checks a script name against RFC 5804 section 1.6 and what a file name can hold.
pub fn validate_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.chars().count() > limits::MANAGESIEVE_MAX_NAME_CHARS
        || name.len() > limits::MANAGESIEVE_MAX_NAME_BYTES
    {
        return Err("name too long");
    }
    if name
        .chars()
        .any(|c| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}'))
    {
        return Err("control characters are not allowed");
    }
    // Not in RFC 5804, but a name is a file name: as Pigeonhole's file storage, no `/`; and no
    // leading `.`, so `.`/`..` and hidden files (temporary files of other tools) are impossible.
    if name.contains('/') {
        return Err("'/' is not allowed");
    }
    if name.starts_with('.') {
        return Err("a name may not start with '.'");
    }
    Ok(())
}

/// One user's scripts.
#[derive(Debug, Clone)]
pub struct ScriptStore {
    dir: PathBuf,
    active: PathBuf,
    max_size: usize,
    max_scripts: usize,
}

impl ScriptStore {
    /// The store at `loc` with the configured quota.
    pub fn new(loc: ScriptLocation, max_size: usize, max_scripts: usize) -> Self {
        ScriptStore {
            dir: loc.dir,
            active: loc.active,
            max_size,
            max_scripts,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    /// Every script name, sorted, with whether it is the active one.
    pub fn list(&self) -> Result<Vec<(String, bool)>> {
        let active = self.active_name()?;
        let mut names = self.names()?;
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| {
                let is_active = active.as_deref() == Some(n.as_str());
                (n, is_active)
            })
            .collect())
    }

    /// Names of the `*.sieve` regular files in the directory (none if it does not exist).
    fn names(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Io("list scripts", e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io("list scripts"))?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|f| f.strip_suffix(SUFFIX))
                .map(str::to_string)
            else {
                continue;
            };
            if validate_name(&name).is_ok() && entry.file_type().is_ok_and(|t| t.is_file()) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The active script's name: what the link points to, if it is `DIR/NAME.sieve` and exists.
    pub fn active_name(&self) -> Result<Option<String>> {
        let target = match fs::read_link(&self.active) {
            Ok(t) => t,
            // Missing, or a regular file (not ours to name): no active script by name.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::Io("read active link", e)),
        };
        let base = self.active.parent().unwrap_or(Path::new("/"));
        let resolved = normalise(&base.join(&target));
        let Some(name) = resolved
            .file_name()
            .and_then(OsStr::to_str)
            .and_then(|f| f.strip_suffix(SUFFIX))
        else {
            return Ok(None);
        };
        if resolved.parent() != Some(normalise(&self.dir).as_path())
            || validate_name(name).is_err()
            || !self.path(name).is_file()
        {
            return Ok(None);
        }
        Ok(Some(name.to_string()))
    }

    /// The script's source.
    pub fn get(&self, name: &str) -> Result<Vec<u8>> {
        match fs::read(self.path(name)) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NonExistent),
            Err(e) => Err(StoreError::Io("read script", e)),
        }
    }

    /// Whether a script `name` of `size` octets may be stored (HAVESPACE, and before PUTSCRIPT).
    pub fn check_space(&self, name: &str, size: u64) -> Result<()> {
        if size > self.max_size as u64 {
            return Err(StoreError::QuotaMaxSize(self.max_size));
        }
        let names = self.names()?;
        if !names.iter().any(|n| n == name) && names.len() >= self.max_scripts {
            return Err(StoreError::QuotaMaxScripts(self.max_scripts));
        }
        Ok(())
    }

    /// Stores (or replaces) `name` durably. The caller has compiled it.
    pub fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.check_space(name, data.len() as u64)?;
        self.ensure_dirs()?;
        let tmp = self.dir.join("tmp").join(tmp_name(name));
        let res = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .mode(0o600)
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(name))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(io("write script"))?;
        fsync_dir(&self.dir).map_err(io("sync script directory"))
    }

    /// Removes `name`; refused for the active script.
    pub fn delete(&self, name: &str) -> Result<()> {
        if self.active_name()?.as_deref() == Some(name) {
            return Err(StoreError::Active);
        }
        match fs::remove_file(self.path(name)) {
            Ok(()) => fsync_dir(&self.dir).map_err(io("sync script directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NonExistent),
            Err(e) => Err(StoreError::Io("delete script", e)),
        }
    }

    /// Renames `old` to `new`; the active script stays active under its new name.
    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        let (from, to) = (self.path(old), self.path(new));
        if !from.is_file() {
            return Err(StoreError::NonExistent);
        }
        if old == new {
            return Ok(());
        }
        // link() fails if `new` exists, atomically, where a check-then-rename would race.
        match fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NonExistent),
            Err(e) => return Err(StoreError::Io("rename script", e)),
        }
        fsync_dir(&self.dir).map_err(io("sync script directory"))?;
        if self.active_name()?.as_deref() == Some(old) {
            self.set_active(Some(new))?;
        }
        fs::remove_file(&from).map_err(io("rename script"))?;
        fsync_dir(&self.dir).map_err(io("sync script directory"))
    }

    /// Makes `name` the active script, or deactivates with `None`.
    pub fn set_active(&self, name: Option<&str>) -> Result<()> {
        let link_dir = self.active.parent().unwrap_or(Path::new("/"));
        match fs::symlink_metadata(&self.active) {
            Ok(m) if !m.file_type().is_symlink() => return Err(StoreError::ActiveNotLink),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if name.is_none() {
                    return Ok(());
                }
            }
            Err(e) => return Err(StoreError::Io("read active link", e)),
        }
        let Some(name) = name else {
            fs::remove_file(&self.active).map_err(io("deactivate script"))?;
            return fsync_dir(link_dir).map_err(io("sync active link directory"));
        };
        if !self.path(name).is_file() {
            return Err(StoreError::NonExistent);
        }
        let target = relative(link_dir, &self.path(name));
        let link_name = self
            .active
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("active");
        let tmp = link_dir.join(tmp_name(link_name));
        let res =
            std::os::unix::fs::symlink(&target, &tmp).and_then(|()| fs::rename(&tmp, &self.active));
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(io("activate script"))?;
        fsync_dir(link_dir).map_err(io("sync active link directory"))
    }

    /// Creates `DIR` and `DIR/tmp` (mode 0700), durably.
    fn ensure_dirs(&self) -> Result<()> {
        let tmp = self.dir.join("tmp");
        if tmp.is_dir() {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)
            .map_err(io("create script directory"))?;
        fsync_dir(&self.dir).map_err(io("sync script directory"))?;
        if let Some(parent) = self.dir.parent() {
            fsync_dir(parent).map_err(io("sync script directory"))?;
        }
        Ok(())
    }
}

/// A temporary name unique per process and call, starting with `.` so no reader takes it for a
/// script or link.
fn tmp_name(base: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(".{base}.tmp.{}.{seq}", std::process::id())
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `path` with `.` and `..` resolved lexically (symlinks are not followed).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` relative to directory `from` (`sieve/NAME.sieve` for the default layout), as Pigeonhole
/// writes the active link; absolute when the two share nothing.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (normalise(from), normalise(to));
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to;
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, max_size: usize, max_scripts: usize) -> ScriptStore {
        ScriptStore::new(
            ScriptLocation {
                dir: dir.join("sieve"),
                active: dir.join(".dovecot.sieve"),
            },
            max_size,
            max_scripts,
        )
    }

    #[test]
    fn names_follow_rfc5804_and_fit_a_file_name() {
        assert!(validate_name("vacation").is_ok());
        assert!(validate_name("Ferien – Büro").is_ok());
        assert!(validate_name(&"a".repeat(limits::MANAGESIEVE_MAX_NAME_CHARS)).is_ok());
        assert!(validate_name(&"é".repeat(124)).is_ok());
        for bad in [
            "",
            "a\tb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}",
            "a/b",
            ".hidden",
            "..",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(limits::MANAGESIEVE_MAX_NAME_CHARS + 1)).is_err());
        // 128 characters of four octets each do not fit a file name: refused, never truncated.
        assert!(validate_name(&"😀".repeat(100)).is_err());
    }

    #[test]
    fn relative_links_as_pigeonhole_writes_them() {
        assert_eq!(
            relative(Path::new("/home/u"), Path::new("/home/u/sieve/a.sieve")),
            PathBuf::from("sieve/a.sieve")
        );
        assert_eq!(
            relative(Path::new("/home/u/x"), Path::new("/home/u/sieve/a.sieve")),
            PathBuf::from("../sieve/a.sieve")
        );
    }

    #[test]
    fn the_layout_is_pigeonholes_and_every_change_lands() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path(), 100, 2);
        assert_eq!(s.list().unwrap(), vec![]);
        s.put("one", b"keep;\r\n").unwrap();
        assert_eq!(
            fs::read(t.path().join("sieve/one.sieve")).unwrap(),
            b"keep;\r\n"
        );
        s.set_active(Some("one")).unwrap();
        assert_eq!(
            fs::read_link(t.path().join(".dovecot.sieve")).unwrap(),
            PathBuf::from("sieve/one.sieve")
        );
        assert_eq!(s.list().unwrap(), vec![("one".to_string(), true)]);
        assert!(matches!(s.delete("one"), Err(StoreError::Active)));
        s.put("two", b"discard;").unwrap();
        assert!(matches!(
            s.put("three", b"x"),
            Err(StoreError::QuotaMaxScripts(2))
        ));
        // Replacing an existing script does not count as one more.
        s.put("two", b"stop;").unwrap();
        assert!(matches!(
            s.put("two", &[b'x'; 101]),
            Err(StoreError::QuotaMaxSize(100))
        ));
        assert!(matches!(
            s.rename("one", "two"),
            Err(StoreError::AlreadyExists)
        ));
        assert!(matches!(
            s.rename("nope", "x"),
            Err(StoreError::NonExistent)
        ));
        s.rename("one", "uno").unwrap();
        assert_eq!(
            fs::read_link(t.path().join(".dovecot.sieve")).unwrap(),
            PathBuf::from("sieve/uno.sieve")
        );
        assert_eq!(
            s.list().unwrap(),
            vec![("two".to_string(), false), ("uno".to_string(), true)]
        );
        s.set_active(None).unwrap();
        assert!(fs::symlink_metadata(t.path().join(".dovecot.sieve")).is_err());
        s.set_active(None).unwrap();
        s.delete("uno").unwrap();
        assert!(matches!(s.get("uno"), Err(StoreError::NonExistent)));
        assert_eq!(s.get("two").unwrap(), b"stop;");
        // Nothing but the scripts and the (empty) tmp directory is left behind.
        let mut left: Vec<_> = fs::read_dir(t.path().join("sieve"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["tmp", "two.sieve"]);
        assert_eq!(fs::read_dir(t.path().join("sieve/tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_regular_active_file_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path(), 100, 10);
        s.put("a", b"keep;").unwrap();
        fs::write(t.path().join(".dovecot.sieve"), b"keep;").unwrap();
        assert_eq!(s.active_name().unwrap(), None);
        assert!(matches!(
            s.set_active(Some("a")),
            Err(StoreError::ActiveNotLink)
        ));
        assert_eq!(fs::read(t.path().join(".dovecot.sieve")).unwrap(), b"keep;");
    }
}
