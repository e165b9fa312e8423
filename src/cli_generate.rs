//! `mailcove generate man|completions DIR` (hidden): man pages (clap_mangen) and shell completions
//! (clap_complete) written from the clap definition of [`crate::cli::Cli`], so every subcommand,
//! including ones added later, gets a page and completes without anyone listing it here.
//! `packaging/build-deb` runs it before `cargo deb` puts the files into the package.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

/// Man page section. The binary is installed as /usr/sbin/mailcove (a daemon, as Dovecot's
/// /usr/sbin/dovecot); Debian policy 12.1 puts the pages of /usr/sbin programs in section 8.
pub const MAN_SECTION: &str = "8";

/// The shells completions are written for, with the file name each one's Debian location expects
/// (bash-completion: `completions/mailcove`; zsh: `vendor-completions/_mailcove`; fish:
/// `vendor_completions.d/mailcove.fish`). The bash file gets a `.bash` suffix here so the three sit
/// side by side; the package installs it without the suffix.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "mailcove.bash"),
    (Shell::Zsh, "_mailcove"),
    (Shell::Fish, "mailcove.fish"),
];

/// What to generate.
#[derive(Debug, Subcommand)]
pub enum GenerateCmd {
    /// One man page per (sub)command: mailcove.8, mailcove-serve.8, mailcove-user-add.8, ...
    Man {
        /// Directory to write into (created when missing).
        dir: PathBuf,
    },
    /// Completion scripts for bash, zsh and fish.
    Completions {
        /// Directory to write into (created when missing).
        dir: PathBuf,
    },
}

/// Runs one generator; prints each file written.
pub fn run(what: GenerateCmd) -> Result<(), String> {
    let files = match what {
        GenerateCmd::Man { dir } => man_pages(&dir),
        GenerateCmd::Completions { dir } => completions(&dir),
    }
    .map_err(|e| e.to_string())?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// The command line as clap sees it, built (display names such as `mailcove-user-add` set) and
/// without the `help` pseudo-subcommand, which needs no page of its own.
fn command() -> clap::Command {
    let mut cmd = crate::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes a page for the command and, recursively, for every subcommand that is not hidden.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(cmd: clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, out)?;
        }
        // No date: the page must not change between two builds of the same source.
        // Subcommands have no version of their own: name the program's in every footer.
        let man = clap_mangen::Man::new(cmd)
            .section(MAN_SECTION)
            .source(concat!("mailcove ", env!("CARGO_PKG_VERSION")))
            .manual("mailcove manual");
        out.push(man.generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    walk(command(), dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Writes the completion script of every shell in [`SHELLS`].
pub fn completions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (shell, name) in SHELLS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut command(), "mailcove", &mut buf);
        let path = dir.join(name);
        std::fs::write(&path, buf)?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible command path, as display names (`mailcove-user-add`) and as the words a user
    /// types after `mailcove` (`["user", "add"]`).
    fn visible(cmd: &clap::Command, words: Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        out.push((name, words.clone()));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut w = words.clone();
            w.push(sub.get_name().to_string());
            visible(sub, w, out);
        }
    }

    fn all_commands() -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        visible(&command(), Vec::new(), &mut out);
        out
    }

    #[test]
    fn one_man_page_per_visible_command_with_its_about_text() {
        let dir = tempfile::tempdir().unwrap();
        let files = man_pages(dir.path()).unwrap();
        let cmds = all_commands();
        // Fixed points of today's CLI; anything added later is covered by the loop below.
        for must in [
            "mailcove",
            "mailcove-serve",
            "mailcove-user-add",
            "mailcove-quota-recalc",
        ] {
            assert!(cmds.iter().any(|(n, _)| n == must), "{must} missing");
        }
        assert_eq!(files.len(), cmds.len(), "{files:?}");
        for (name, words) in &cmds {
            let path = dir.path().join(format!("{name}.{MAN_SECTION}"));
            let page = std::fs::read_to_string(&path).unwrap();
            // roff title line: .TH name section date(empty) source manual
            let th = format!(
                ".TH {name} {MAN_SECTION}  \"mailcove {}\" \"mailcove manual\"",
                env!("CARGO_PKG_VERSION")
            );
            assert!(page.contains(&th), "{name}: {page}");
            let mut cmd = command();
            for w in words {
                cmd = cmd.find_subcommand(w).unwrap().clone();
            }
            if let Some(about) = cmd.get_about() {
                // roff escapes '-' as '\-' ("Re-read" is written "Re\-read").
                let first = about.to_string();
                let first = first.split_whitespace().next().unwrap();
                let escaped = first.replace('-', "\\-");
                assert!(
                    page.contains(first) || page.contains(&escaped),
                    "{name} lacks {first:?}"
                );
            }
        }
        // The generator itself is hidden and gets no page.
        assert!(!dir.path().join("mailcove-generate.8").exists());
    }

    #[test]
    fn completions_name_every_visible_subcommand_in_all_three_shells() {
        let dir = tempfile::tempdir().unwrap();
        let files = completions(dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        let cmds = all_commands();
        for (_, file) in SHELLS {
            let script = std::fs::read_to_string(dir.path().join(file)).unwrap();
            for (_, words) in &cmds {
                if let Some(last) = words.last() {
                    assert!(script.contains(last.as_str()), "{file} lacks {last}");
                }
            }
        }
        let bash = std::fs::read_to_string(dir.path().join("mailcove.bash")).unwrap();
        assert!(bash.contains("complete -F _mailcove"), "{bash}");
        let zsh = std::fs::read_to_string(dir.path().join("_mailcove")).unwrap();
        assert!(zsh.starts_with("#compdef mailcove"), "{zsh}");
        let fish = std::fs::read_to_string(dir.path().join("mailcove.fish")).unwrap();
        assert!(fish.contains("complete -c mailcove"), "{fish}");
    }
}
