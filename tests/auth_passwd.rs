//! The users file in Dovecot's passwd-file format, read from a real file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mailcove::auth::{Argon2Params, AuthError, AuthOptions, Authenticator, admin};

fn opts(path: &Path) -> AuthOptions {
    let mut o = AuthOptions::new(path);
    o.argon2 = Argon2Params {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };
    o.failure_delay = Duration::from_millis(1);
    o.failure_delay_max = Duration::from_millis(2);
    o.hash_threads = 2;
    o
}

fn write(dir: &tempfile::TempDir, content: &str) -> PathBuf {
    let path = dir.path().join("users");
    std::fs::write(&path, content).unwrap();
    path
}

const DOVECOT_FILE: &str = "\
# Dovecot passwd-file, as an existing deployment has it

alice:{PLAIN}alicepw:1000:1000::/home/alice
bob:{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1:1001:1001:Bob B,,,:/home/bob:/bin/false:userdb_quota_rule=*:storage=1G userdb_mail=maildir:~/Maildir nodelay
Carol@Example.ORG:{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc::::::
dave
:no user on this line is skipped
erin:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1:::::: userdb_home=/srv/erin\r
frank:{PLAIN}x:0:0
#trailing comment";

#[test]
fn parses_dovecot_file_with_comments_blanks_missing_and_extra_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, DOVECOT_FILE);
    let auth = Authenticator::new(opts(&path)).unwrap();
    assert_eq!(auth.user_count(), 6);

    let alice = auth.lookup("alice").unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!((alice.uid, alice.gid), (Some(1000), Some(1000)));
    assert_eq!(alice.home.as_deref(), Some(Path::new("/home/alice")));
    assert!(alice.extra.is_empty());

    let bob = auth.lookup("BOB").unwrap();
    assert_eq!(bob.name, "bob");
    assert_eq!((bob.uid, bob.gid), (Some(1001), Some(1001)));
    assert_eq!(bob.home.as_deref(), Some(Path::new("/home/bob")));
    assert_eq!(
        bob.extra,
        vec![
            (
                "userdb_quota_rule".to_owned(),
                Some("*:storage=1G".to_owned())
            ),
            (
                "userdb_mail".to_owned(),
                Some("maildir:~/Maildir".to_owned())
            ),
            ("nodelay".to_owned(), None),
        ]
    );
    assert_eq!(bob.field("quota_rule"), Some("*:storage=1G"));
    assert_eq!(bob.field("mail"), Some("maildir:~/Maildir"));
    assert_eq!(bob.field("nodelay"), Some(""));

    // user@domain entries: matched case-insensitively, never by bare name.
    let carol = auth.lookup("carol@example.org").unwrap();
    assert_eq!(carol.name, "Carol@Example.ORG");
    assert_eq!((carol.uid, carol.gid, carol.home), (None, None, None));
    assert!(carol.extra.is_empty());
    assert!(auth.lookup("carol").is_none());
    assert!(auth.lookup("CAROL@EXAMPLE.ORG").is_some());

    // Only a user name: every other field missing.
    let dave = auth.lookup("dave").unwrap();
    assert_eq!((dave.uid, dave.gid, dave.home), (None, None, None));

    // CRLF line ending stripped; extra fields after empty fields.
    let erin = auth.lookup("erin").unwrap();
    assert_eq!(erin.field("home"), Some("/srv/erin"));
    assert_eq!(erin.home, None);

    // Last line without newline.
    assert_eq!(auth.lookup("frank").unwrap().uid, Some(0));

    assert!(auth.lookup("#trailing comment").is_none());
    assert!(auth.lookup("").is_none());
    assert!(auth.lookup("nobody").is_none());

    let listed: Vec<String> = admin::user_list(&path)
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(
        listed,
        ["alice", "bob", "Carol@Example.ORG", "dave", "erin", "frank"]
    );
}

#[test]
fn system_user_and_group_names_resolve_in_uid_gid_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "sys:{PLAIN}x:root:root\n");
    let auth = Authenticator::new(opts(&path)).unwrap();
    let sys = auth.lookup("sys").unwrap();
    assert_eq!((sys.uid, sys.gid), (Some(0), Some(0)));
}

#[test]
fn invalid_file_is_refused_with_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "# c\nok:{PLAIN}x\nbad:{PLAIN}x:4294967296\n");
    match Authenticator::new(opts(&path)) {
        Err(AuthError::Parse { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let path = write(&dir, "dup:x\nDUP:y\n");
    assert!(matches!(
        Authenticator::new(opts(&path)),
        Err(AuthError::Parse { line: 2, .. })
    ));
    let missing = dir.path().join("absent");
    assert!(matches!(
        Authenticator::new(opts(&missing)),
        Err(AuthError::Io { .. })
    ));
}

#[test]
fn file_changes_are_picked_up_and_broken_versions_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "alice:{PLAIN}x\n");
    let auth = Authenticator::new(opts(&path)).unwrap();
    assert!(auth.lookup("bob").is_none());

    // An unchanged file is not re-read.
    assert!(!auth.check_for_changes().unwrap());

    // Rewritten in place.
    std::fs::write(&path, "alice:{PLAIN}x\nbob:{PLAIN}y\n").unwrap();
    assert!(auth.check_for_changes().unwrap());
    assert!(auth.lookup("bob").is_some());

    // A broken version keeps the previous users and reports the error, once.
    std::fs::write(&path, "alice:{PLAIN}x\nbroken line:\n").unwrap();
    assert!(matches!(
        auth.check_for_changes(),
        Err(AuthError::Parse { line: 2, .. })
    ));
    assert!(auth.lookup("bob").is_some());
    assert!(!auth.check_for_changes().unwrap());

    // Replaced by rename (as the admin tools and most editors do).
    let tmp = dir.path().join("users.new");
    std::fs::write(&tmp, "carol:{PLAIN}z\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(auth.check_for_changes().unwrap());
    assert!(auth.lookup("carol").is_some());
    assert!(auth.lookup("alice").is_none());
}

#[test]
fn lookup_rereads_a_changed_file_after_the_check_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "alice:{PLAIN}x\n");
    let auth = Authenticator::new(opts(&path)).unwrap();
    assert!(auth.lookup("alice").is_some());
    std::fs::write(&path, "alice:{PLAIN}x\nbob:{PLAIN}y\n").unwrap();
    // Waits out USERS_FILE_CHECK_INTERVAL_MS; no timing is asserted.
    std::thread::sleep(Duration::from_millis(
        mailcove::limits::USERS_FILE_CHECK_INTERVAL_MS + 100,
    ));
    assert!(auth.lookup("bob").is_some());
}

#[test]
fn reload_keeps_old_users_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "alice:{PLAIN}x\n");
    let auth = Authenticator::new(opts(&path)).unwrap();

    std::fs::write(&path, "alice:{PLAIN}x\nbob:{PLAIN}y\n").unwrap();
    auth.reload(opts(&path)).unwrap();
    assert!(auth.lookup("bob").is_some());

    std::fs::write(&path, "alice:{PLAIN}x:notanumber:\n").unwrap();
    assert!(auth.reload(opts(&path)).is_err());
    assert!(auth.lookup("bob").is_some());

    // Invalid options are refused without touching anything.
    let mut bad = opts(&path);
    bad.hash_threads = 0;
    assert!(matches!(
        auth.reload(bad),
        Err(AuthError::InvalidOptions(_))
    ));
    assert!(auth.lookup("bob").is_some());

    // Reload may point at another file.
    let other = dir.path().join("other");
    std::fs::write(&other, "zed:{PLAIN}z\n").unwrap();
    auth.reload(opts(&other)).unwrap();
    assert!(auth.lookup("zed").is_some());
    assert!(auth.lookup("alice").is_none());
}
