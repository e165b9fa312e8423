//! Where delivery finds scripts (the read side of the script store; ManageSieve writes it):
//! Pigeonhole's layout, so a migrating site's scripts are found where they are.
//!
//! * The user's active script is what the `active` link of [`SieveConfig::locate`] points to.
//!   A missing link or a dangling one means no script, as Pigeonhole; a regular file there
//!   (older setups kept `~/.dovecot.sieve` as the script itself) is the script.
//! * `sieve_before`/`sieve_after` entries are files, or directories whose `*.sieve` files run
//!   in name order (byte order of the names, as Pigeonhole's `sieve_before` directories).
//! * `include :personal "x"` is `x.sieve` in the user's script directory; `:global` is
//!   `x.sieve` in `sieve_global`.

use std::path::{Path, PathBuf};

use crate::config::{ScriptLocation, SieveConfig};
use crate::limits::SIEVE_MAX_SCRIPTS_PER_DIRECTORY;

/// The user's active script file, if any: the target of the `active` link (or the file itself).
/// `None` when the link is missing or dangling.
pub fn active_script(loc: &ScriptLocation) -> Option<PathBuf> {
    // metadata() follows the link: a dangling link is NotFound, like a missing one.
    let meta = std::fs::metadata(&loc.active).ok()?;
    meta.is_file().then(|| loc.active.clone())
}

/// The script files of `sieve_before` or `sieve_after` entries, in run order. Entries that do not
/// exist are skipped (and logged by the caller's compile step as missing).
pub fn global_scripts(entries: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in entries {
        match std::fs::metadata(entry) {
            Ok(m) if m.is_dir() => out.extend(scripts_in_dir(entry)),
            Ok(m) if m.is_file() => out.push(entry.clone()),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(path = %entry.display(), error = %e, "sieve: global script missing");
            }
        }
    }
    out
}

/// `*.sieve` regular files of a directory in name order (at most
/// [`SIEVE_MAX_SCRIPTS_PER_DIRECTORY`]).
fn scripts_in_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "sieve")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
                && p.is_file()
        })
        .collect();
    names.sort();
    if names.len() > SIEVE_MAX_SCRIPTS_PER_DIRECTORY {
        tracing::warn!(dir = %dir.display(), limit = SIEVE_MAX_SCRIPTS_PER_DIRECTORY, "sieve: too many scripts in directory, the rest are ignored");
        names.truncate(SIEVE_MAX_SCRIPTS_PER_DIRECTORY);
    }
    names
}

/// The file of an included script `name` in `dir`; `None` for names that could leave the
/// directory (a `/`, a leading dot, control characters) or are empty.
pub fn include_path(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return None;
    }
    Some(dir.join(format!("{name}.sieve")))
}

/// Whether delivery has anything to run for a user: Sieve on, and a before/after script or an
/// active personal script. The no-script path costs one `stat` of the active link.
pub fn has_scripts(cfg: &SieveConfig, loc: Option<&ScriptLocation>) -> bool {
    cfg.enabled
        && (!cfg.sieve_before.is_empty()
            || !cfg.sieve_after.is_empty()
            || loc.is_some_and(|l| active_script(l).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_link_missing_dangling_and_present() {
        let d = tempfile::tempdir().unwrap();
        let loc = ScriptLocation {
            dir: d.path().join("sieve"),
            active: d.path().join(".dovecot.sieve"),
        };
        assert_eq!(active_script(&loc), None);
        std::fs::create_dir(&loc.dir).unwrap();
        std::os::unix::fs::symlink("sieve/main.sieve", &loc.active).unwrap();
        assert_eq!(active_script(&loc), None, "dangling link is no script");
        std::fs::write(loc.dir.join("main.sieve"), "keep;").unwrap();
        assert_eq!(active_script(&loc), Some(loc.active.clone()));
    }

    #[test]
    fn directories_run_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.sieve", "a.sieve", "c.txt", ".hidden.sieve", "10.sieve"] {
            std::fs::write(d.path().join(n), "keep;").unwrap();
        }
        let single = d.path().join("a.sieve");
        let got = global_scripts(&[
            d.path().to_path_buf(),
            single.clone(),
            "/nonexistent".into(),
        ]);
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["10.sieve", "a.sieve", "b.sieve", "a.sieve"]);
    }

    #[test]
    fn include_names_stay_in_their_directory() {
        let dir = Path::new("/s");
        assert_eq!(include_path(dir, "x"), Some(PathBuf::from("/s/x.sieve")));
        assert_eq!(include_path(dir, "../x"), None);
        assert_eq!(include_path(dir, ".x"), None);
        assert_eq!(include_path(dir, ""), None);
    }
}
