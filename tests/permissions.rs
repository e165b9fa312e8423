//! Clear permission errors (issue 19): a mail root the daemon's user cannot write is reported by
//! `check-config` (exit 1) and at start-up with the path, the user, the owner found and the
//! `chown` that fixes it; a permission failure at login is logged with the path, the user the
//! daemon runs as and the owner and mode of the directory that lacks the permission.
//!
//! Needs root (to own the mail root as root and run the daemon as `nobody`) and Maildir files.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nix::unistd::{Gid, Uid, chown};

fn can_run(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root to give the mail root away");
        return false;
    }
    !skip_unless_maildir(test)
}

fn own_by_root(p: &Path, mode: u32) {
    chown(p, Some(Uid::from_raw(0)), Some(Gid::from_raw(0))).unwrap();
    chmod(p, mode);
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(out.success());
}

#[test]
fn check_config_names_the_path_the_owner_and_the_chown() {
    if !can_run("check_config_names_the_path_the_owner_and_the_chown") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let root = dir.path().join("mail");
    std::fs::create_dir(&root).unwrap();
    own_by_root(&root, 0o700);
    let cfg = dir.path().join("mailcove.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nuser = \"nobody\"\ngroup = \"nogroup\"\n\n[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:143\"\ntls = \"none\"\n\n[mail]\nlocation = \"{}/%n\"\n",
            root.display()
        ),
    )
    .unwrap();
    let check = || {
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check();
    assert_eq!(code, Some(1), "{err}");
    let r = root.display();
    assert!(
        err.contains(&format!(
            "mail root {r} is not writable by the mail user: running as user nobody, group nogroup: missing +wx permission on {r}, owned by root:root (uid 0, gid 0) with mode 0700"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("fix: chown -R nobody:nogroup {r}")),
        "{err}"
    );
    // A directory above the root that nobody may search: named, with chmod as the fix.
    chmod(&root, 0o755);
    chmod(dir.path(), 0o700);
    let (code, err) = check();
    assert_eq!(code, Some(1), "{err}");
    let d = dir.path().display();
    assert!(
        err.contains(&format!("missing +x permission on {d}, owned by root:root")),
        "{err}"
    );
    assert!(err.contains(&format!("fix: chmod o+x {d}")), "{err}");
    // After the fix it passes.
    chmod(dir.path(), 0o755);
    chown(
        &root,
        Some(Uid::from_raw(65534)),
        Some(Gid::from_raw(65534)),
    )
    .unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn start_up_and_login_log_the_path_the_user_and_the_owner() {
    if !can_run("start_up_and_login_log_the_path_the_user_and_the_owner") {
        return;
    }
    let mut s = Server::start();
    let root = s.path().join("mail");
    assert!(root.is_dir(), "the daemon creates the mail root");
    s.kill();
    own_by_root(&root, 0o700);
    s.restart();
    let r = root.display();
    let log = s.log();
    assert!(
        log.contains(&format!(
            "mail root {r} is not writable by the mail user: running as user nobody, group nogroup: missing +wx permission on {r}, owned by root:root (uid 0, gid 0) with mode 0700; fix: chown -R nobody:nogroup {r}"
        )),
        "{log}"
    );
    // Logged, not fatal: the daemon serves, and LOGIN gets the fixed internal-error sentence.
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let answer = c.cmd("a1", "LOGIN demo demo");
    assert!(
        answer.last().unwrap().starts_with("a1 NO [UNAVAILABLE]"),
        "{answer:?}"
    );
    let log = s.wait_log(|l| l.contains("permission denied;"));
    assert!(
        log.contains(&format!(
            "create maildir {r}/demo/cur: permission denied; running as user nobody, group nogroup: missing +x permission on {r}, owned by root:root (uid 0, gid 0) with mode 0700"
        )),
        "{log}"
    );

    // The per-user case: the root is fine, but the user's own directory was left to root
    // (a copy or a first run as root).
    s.kill();
    chown_tree(&root, 65534, 65534);
    chmod(&root, 0o700);
    let user_dir = root.join("demo");
    std::fs::create_dir_all(user_dir.join("cur")).unwrap();
    std::fs::create_dir_all(user_dir.join("new")).unwrap();
    std::fs::create_dir_all(user_dir.join("tmp")).unwrap();
    chown_tree(&user_dir, 0, 0);
    chmod(&user_dir, 0o755);
    s.restart();
    assert!(!s.log().contains("is not writable"), "{}", s.log());
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let answer = c.cmd("a1", "LOGIN demo demo");
    assert!(
        answer.last().unwrap().starts_with("a1 NO [UNAVAILABLE]"),
        "{answer:?}"
    );
    let log = s.wait_log(|l| l.contains("permission denied;"));
    let u = user_dir.display();
    assert!(
        log.contains(&format!("{u}/"))
            && log.contains(&format!(
                "missing +w permission on {u}, owned by root:root (uid 0, gid 0) with mode 0755"
            )),
        "{log}"
    );
}
