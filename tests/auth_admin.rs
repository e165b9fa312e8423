//! Admin edits of a real users file: atomic, minimal, mode-preserving, and
//! picked up by a running Authenticator.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mailcove::auth::{Argon2Params, AuthError, AuthFailure, AuthOptions, Authenticator, admin};

const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn params() -> Argon2Params {
    Argon2Params {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    }
}

fn opts(path: &Path) -> AuthOptions {
    let mut o = AuthOptions::new(path);
    o.argon2 = params();
    o.failure_delay = Duration::from_millis(1);
    o.failure_delay_max = Duration::from_millis(2);
    o.hash_threads = 1;
    o
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const ORIGINAL: &str = "# mail users, managed by hand and by mailcove\r\n\
\n\
alice:{PLAIN}alicepw:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\n\
#  bob:disabled for now\n\
carol:{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1\r\n\
dave\n\
# last comment, no newline";

#[test]
fn add_passwd_del_change_only_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    std::fs::write(&path, ORIGINAL).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    // add: appended after a newline the file lacked; nothing else touched.
    admin::user_add(
        &path,
        "erin@example.org",
        b"erin-pw",
        &[
            "userdb_mail=maildir:~/Mail".to_owned(),
            "nodelay".to_owned(),
        ],
        &params(),
    )
    .unwrap();
    let after_add = std::fs::read_to_string(&path).unwrap();
    let (head, added) = after_add.split_at(ORIGINAL.len() + 1);
    assert_eq!(head, format!("{ORIGINAL}\n"));
    assert!(added.starts_with("erin@example.org:{ARGON2ID}$argon2id$v=19$m=256,t=1,p=1$"));
    assert!(added.ends_with("::::::userdb_mail=maildir:~/Mail nodelay\n"));
    assert_eq!(added.matches('\n').count(), 1);
    assert_eq!(mode(&path), 0o640);

    // passwd: only carol's password field changes; her CRLF stays.
    admin::user_passwd(&path, "CAROL", b"new-carol", &params()).unwrap();
    let after_passwd = std::fs::read_to_string(&path).unwrap();
    let carol_old = ORIGINAL
        .split('\n')
        .find(|l| l.starts_with("carol:"))
        .unwrap();
    let carol_new = after_passwd
        .split('\n')
        .find(|l| l.starts_with("carol:"))
        .unwrap();
    assert!(carol_new.starts_with("carol:{ARGON2ID}$argon2id$"));
    assert!(carol_new.ends_with('\r'));
    assert_eq!(
        after_passwd.replacen(carol_new, carol_old, 1),
        after_add,
        "only carol's line may change"
    );
    assert_eq!(mode(&path), 0o640);

    // passwd keeps every later field of the line.
    admin::user_passwd(&path, "alice", b"alice-new", &params()).unwrap();
    let alice = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("alice:"))
        .unwrap()
        .to_owned();
    assert!(alice.starts_with("alice:{ARGON2ID}$argon2id$"));
    assert!(alice.ends_with(":1000:1000::/home/alice::userdb_quota_rule=*:storage=1G"));

    // passwd on a line with only a name gives it a password field.
    admin::user_passwd(&path, "dave", b"dave-pw", &params()).unwrap();
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.contains("\ndave:{ARGON2ID}$argon2id$"));

    // del: exactly the line goes, comments and blank lines stay.
    let before_del = std::fs::read_to_string(&path).unwrap();
    admin::user_del(&path, "Erin@Example.org").unwrap();
    let after_del = std::fs::read_to_string(&path).unwrap();
    let erin_line = before_del
        .split_inclusive('\n')
        .find(|l| l.starts_with("erin@"))
        .unwrap();
    assert_eq!(after_del, before_del.replacen(erin_line, "", 1));
    assert_eq!(mode(&path), 0o640);
    assert!(after_del.starts_with("# mail users, managed by hand and by mailcove\r\n\n"));
    assert!(after_del.contains("#  bob:disabled for now\n"));

    let names: Vec<String> = admin::user_list(&path)
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "carol", "dave"]);

    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "users")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn refusals_leave_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    std::fs::write(&path, ORIGINAL).unwrap();

    assert!(matches!(
        admin::user_add(&path, "ALICE", b"x", &[], &params()),
        Err(AuthError::UserExists(_))
    ));
    assert!(matches!(
        admin::user_del(&path, "nobody"),
        Err(AuthError::UnknownUser(_))
    ));
    assert!(matches!(
        admin::user_passwd(&path, "nobody", b"x", &params()),
        Err(AuthError::UnknownUser(_))
    ));
    // A commented-out user is not a user.
    assert!(matches!(
        admin::user_del(&path, "bob"),
        Err(AuthError::UnknownUser(_))
    ));
    for bad in [
        "",
        "a:b",
        "a b",
        "tab\tname",
        "new\nline",
        "#comment",
        "bell\u{7}",
    ] {
        assert!(
            matches!(
                admin::user_add(&path, bad, b"x", &[], &params()),
                Err(AuthError::InvalidUsername(_))
            ),
            "{bad:?}"
        );
    }
    let too_long = "a".repeat(256);
    assert!(matches!(
        admin::user_add(&path, &too_long, b"x", &[], &params()),
        Err(AuthError::InvalidUsername(_))
    ));
    assert!(matches!(
        admin::user_add(&path, "ok", b"x", &["two words".to_owned()], &params()),
        Err(AuthError::InvalidExtraField(_))
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);

    // An invalid file is not edited at all.
    std::fs::write(&path, "x:y:notanumber\n").unwrap();
    assert!(matches!(
        admin::user_add(&path, "new", b"x", &[], &params()),
        Err(AuthError::Parse { line: 1, .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "x:y:notanumber\n");
}

#[test]
fn add_creates_a_private_file_and_edits_through_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    admin::user_add(&path, "first", b"pw", &[], &params()).unwrap();
    assert_eq!(mode(&path), 0o600);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.starts_with("first:{ARGON2ID}$argon2id$"));
    assert!(content.ends_with('\n'));
    assert_eq!(content.matches('\n').count(), 1);

    let link = dir.path().join("users.link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    admin::user_add(&link, "second", b"pw", &[], &params()).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(admin::user_list(&path).unwrap().len(), 2);
}

#[tokio::test]
async fn running_server_sees_admin_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    admin::user_add(&path, "alice", b"old", &[], &params()).unwrap();
    let auth = Authenticator::new(opts(&path)).unwrap();
    assert!(auth.authenticate("alice", b"old", REMOTE).await.is_ok());

    admin::user_passwd(&path, "alice", b"new", &params()).unwrap();
    admin::user_add(&path, "bob", b"bobpw", &[], &params()).unwrap();
    assert!(auth.check_for_changes().unwrap());
    assert_eq!(
        auth.authenticate("alice", b"old", REMOTE)
            .await
            .map(|u| u.name),
        Err(AuthFailure::Invalid)
    );
    assert_eq!(
        auth.authenticate("alice", b"new", REMOTE)
            .await
            .map(|u| u.name),
        Ok("alice".to_owned())
    );
    assert_eq!(
        auth.authenticate("bob", b"bobpw", REMOTE)
            .await
            .map(|u| u.name),
        Ok("bob".to_owned())
    );

    admin::user_del(&path, "bob").unwrap();
    assert!(auth.check_for_changes().unwrap());
    assert!(auth.lookup("bob").is_none());
}

#[test]
fn hash_password_gives_argon2id_phc_with_configured_costs() {
    let phc = admin::hash_password(b"pw", &params()).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
    let other = admin::hash_password(b"pw", &params()).unwrap();
    assert_ne!(phc, other, "salts must be random");
    let bad = Argon2Params {
        m_cost_kib: 1,
        t_cost: 1,
        p_cost: 1,
    };
    assert!(matches!(
        admin::hash_password(b"pw", &bad),
        Err(AuthError::InvalidOptions(_))
    ));
}
