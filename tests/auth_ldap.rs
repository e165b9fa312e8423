//! The LDAP user database (`mailcove::auth::ldap`) against a real OpenLDAP `slapd`
//! (tests/ldap_common), driven through the `UserDatabase` trait on a tokio runtime. Every
//! expected value is read off the hand-written directory in tests/ldap_common.

mod ldap_common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap_common::*;
use mailcove::auth::db::{DbError, LookupRequest, UserDatabase};
use mailcove::auth::ldap;
use mailcove::auth::scheme::verify_stored_password;
use mailcove::config::{LdapConfig, LdapTlsRequireCert};
use mailcove::limits::{LDAP_RECONNECT_BACKOFF_MAX_MS, LDAP_REQUEST_TIMEOUT_MS};

fn req(user: &str) -> LookupRequest<'_> {
    LookupRequest {
        user,
        remote: Some(IpAddr::from([192, 0, 2, 7])),
        local: Some(IpAddr::from([127, 0, 0, 1])),
        service: "imap",
    }
}

fn open(cfg: &LdapConfig) -> Arc<dyn UserDatabase> {
    ldap::open(cfg).unwrap()
}

/// A lookup database and an `auth_bind` one on `slapd`, each checked to answer for ann while
/// the server is up.
async fn lookup_and_bind(slapd: &Slapd) -> (Arc<dyn UserDatabase>, Arc<dyn UserDatabase>) {
    let db = open(&slapd.config());
    let bind = open(&LdapConfig {
        auth_bind: true,
        ..slapd.config()
    });
    assert!(stored_password(&*db, "ann").await.is_some());
    assert!(
        bind.verify_password(req("ann"), ANN_PW.as_bytes())
            .unwrap()
            .await
            .unwrap()
            .is_some()
    );
    (db, bind)
}

async fn stored_password(db: &dyn UserDatabase, user: &str) -> Option<String> {
    db.password_lookup(req(user))
        .await
        .unwrap()
        .map(|r| r.password.expect("a stored password without auth_bind"))
}

#[tokio::test]
async fn password_lookup_returns_the_stored_hash_in_its_scheme() {
    let slapd = Slapd::start();
    let db = open(&slapd.config());
    assert_eq!(db.kind(), "ldap");
    let h = Arc::clone(&slapd.hashes);

    // {SSHA} as slappasswd wrote it; the project's scheme code verifies it.
    let rec = db.password_lookup(req("ann")).await.unwrap().unwrap();
    assert_eq!(rec.info.name, "ann");
    let ann = rec.password.unwrap();
    assert_eq!(ann, h.ann);
    assert!(ann.starts_with("{SSHA}"));
    assert!(verify_stored_password(&ann, ANN_PW.as_bytes()));
    assert!(!verify_stored_password(&ann, b"ann's SSHA passwor"));

    // {CRYPT}$6$ (glibc SHA-512 crypt).
    let bob = stored_password(&*db, "bob").await.unwrap();
    assert_eq!(bob, h.bob);
    assert!(bob.starts_with("{CRYPT}$6$"));
    assert!(verify_stored_password(&bob, BOB_PW.as_bytes()));
    assert!(!verify_stored_password(&bob, ANN_PW.as_bytes()));

    // {ARGON2ID}.
    let cyd = stored_password(&*db, "cyd").await.unwrap();
    assert_eq!(cyd, h.cyd);
    assert!(verify_stored_password(&cyd, CYD_PW.as_bytes()));
    assert!(!verify_stored_password(&cyd, BOB_PW.as_bytes()));

    // A bare value gets default_pass_scheme (CRYPT by default, as Dovecot's LDAP passdb).
    let dee = stored_password(&*db, "dee").await.unwrap();
    assert_eq!(dee, format!("{{CRYPT}}{}", h.dee_bare));
    assert!(verify_stored_password(&dee, DEE_PW.as_bytes()));
    let ssha_default = LdapConfig {
        default_pass_scheme: "ssha".into(),
        ..slapd.config()
    };
    let db2 = open(&ssha_default);
    assert_eq!(
        stored_password(&*db2, "dee").await.unwrap(),
        format!("{{SSHA}}{}", h.dee_bare)
    );

    // uid matching is case-insensitive in the directory; the name comes from uid=user.
    let rec = db.password_lookup(req("ANN")).await.unwrap().unwrap();
    assert_eq!(rec.info.name, "ann");
    assert!(db.password_lookup(req("nobody")).await.unwrap().is_none());
    // Anonymous searches may not read userPassword (the ACL says `by anonymous auth`): the
    // entry is found but cannot log in, "!" (locked) in users-file syntax.
    let anonymous = open(&LdapConfig {
        dn: String::new(),
        dnpass: String::new(),
        ..slapd.config()
    });
    let locked = stored_password(&*anonymous, "ann").await.unwrap();
    assert_eq!(locked, "!");
    assert!(!verify_stored_password(&locked, ANN_PW.as_bytes()));
    // Without auth_bind the database does not check passwords itself.
    assert!(db.verify_password(req("ann"), ANN_PW.as_bytes()).is_none());
}

#[tokio::test]
async fn filter_injection_is_only_a_user_name() {
    let slapd = Slapd::start();
    let db = open(&slapd.config());
    // Unescaped, each of these would match ann, every user, or break the filter.
    for hostile in [
        "*",
        "a*",
        "*)(uid=*",
        ")(uid=*",
        "ann)(uid=*",
        "ann)(|(uid=*",
        "\\",
        "ann\\",
        "\\2a",
        "ann\0",
        "\0",
        "(",
        ")",
    ] {
        assert_eq!(
            db.password_lookup(req(hostile)).await,
            Ok(None),
            "{hostile:?}"
        );
        assert_eq!(db.user_lookup(req(hostile)).await, Ok(None), "{hostile:?}");
    }
    // Escaping is exact: a uid made of the metacharacters is found by its own name, and a
    // non-ASCII uid by its UTF-8 bytes.
    let rec = db.password_lookup(req(ODD_UID)).await.unwrap().unwrap();
    assert_eq!(rec.info.name, ODD_UID);
    assert!(verify_stored_password(
        rec.password.as_deref().unwrap(),
        ODD_PW.as_bytes()
    ));
    let rec = db.user_lookup(req(UTF8_UID)).await.unwrap().unwrap();
    assert_eq!(rec.name, UTF8_UID);
    assert_eq!(rec.uid, Some(1006));

    // The same through auth bind.
    let bind = open(&LdapConfig {
        auth_bind: true,
        ..slapd.config()
    });
    for hostile in ["*", "*)(uid=*", "ann)(uid=*", "\\", "ann\0"] {
        let verdict = bind
            .verify_password(req(hostile), ANN_PW.as_bytes())
            .unwrap()
            .await;
        assert_eq!(verdict, Ok(None), "{hostile:?}");
    }
    let verdict = bind
        .verify_password(req(ODD_UID), ODD_PW.as_bytes())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(verdict.unwrap().info.name, ODD_UID);

    // And in a DN template (RFC 4514): "ann,ou=people" cannot pick another entry.
    let userdn = open(&LdapConfig {
        auth_bind: true,
        auth_bind_userdn: format!("uid=%u,{PEOPLE}"),
        ..slapd.config()
    });
    for hostile in ["ann,ou=people", "ann+cn=ann", "*"] {
        let verdict = userdn
            .verify_password(req(hostile), ANN_PW.as_bytes())
            .unwrap()
            .await;
        assert_eq!(verdict, Ok(None), "{hostile:?}");
    }
    let verdict = userdn
        .verify_password(req(ODD_UID), ODD_PW.as_bytes())
        .unwrap()
        .await
        .unwrap();
    assert!(verdict.is_some());
}

#[tokio::test]
async fn auth_bind_checks_the_password_at_the_server() {
    let slapd = Slapd::start();
    for userdn in ["", &format!("uid=%n,{PEOPLE}")] {
        let db = open(&LdapConfig {
            auth_bind: true,
            auth_bind_userdn: userdn.to_owned(),
            pass_filter: "(&(objectClass=posixAccount)(uid=%n))".into(),
            ..slapd.config()
        });
        let verify = |user: &'static str, pw: &'static [u8]| {
            let db = Arc::clone(&db);
            async move { db.verify_password(req(user), pw).unwrap().await }
        };
        let ok = verify("ann", ANN_PW.as_bytes()).await.unwrap().unwrap();
        assert_eq!(ok.password, None, "the server verified it");
        assert_eq!(ok.info.name, "ann");
        // %n: the domain part is not part of the uid.
        assert!(
            verify("ann@example.org", ANN_PW.as_bytes())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(verify("ann", b"wrong").await, Ok(None), "{userdn}");
        assert_eq!(verify("ann", BOB_PW.as_bytes()).await, Ok(None));
        assert_eq!(verify("nobody", ANN_PW.as_bytes()).await, Ok(None));
        // An empty password is never sent: it would be an unauthenticated bind.
        assert_eq!(verify("ann", b"").await, Ok(None), "{userdn}");
        // Binds reuse their connections: many in a row, right and wrong mixed.
        for i in 0..20 {
            let pw: &'static [u8] = if i % 2 == 0 { ANN_PW.as_bytes() } else { b"no" };
            assert_eq!(
                verify("ann", pw).await.unwrap().is_some(),
                i % 2 == 0,
                "bind {i}"
            );
        }
        // Password lookups in auth-bind mode carry no password.
        let rec = db.password_lookup(req("bob")).await.unwrap().unwrap();
        assert_eq!(rec.password, None);
    }
}

#[tokio::test]
async fn attributes_map_to_fields_with_templates() {
    let slapd = Slapd::start();
    let db = open(&LdapConfig {
        user_filter: "(&(objectClass=posixAccount)(uid=%n))".into(),
        user_attrs: "homeDirectory=home,uidNumber=uid,gidNumber=gid,\
                     employeeNumber=quota_rule=*:bytes=%$,=mail=maildir:/srv/mail/%d/%n,\
                     mail=userdb_email,missingAttr=never"
            .into(),
        pass_attrs: "uid=user,userPassword=password,departmentNumber=allow_nets,=userdb_service=%s"
            .into(),
        ..slapd.config()
    });
    let info = db
        .user_lookup(req("ann@example.org"))
        .await
        .unwrap()
        .unwrap();
    // No `user` mapping in user_attrs: the name as given.
    assert_eq!(info.name, "ann@example.org");
    assert_eq!(info.home.as_deref(), Some(Path::new("/home/ann")));
    assert_eq!(info.uid, Some(1001));
    assert_eq!(info.gid, Some(100));
    assert_eq!(info.field("quota_rule"), Some("*:bytes=1048576"));
    assert_eq!(
        info.field("mail"),
        Some("maildir:/srv/mail/example.org/ann")
    );
    assert_eq!(info.field("email"), Some("ann@example.org"));
    assert_eq!(info.field("never"), None);
    // bob has no employeeNumber: no quota_rule, the static field still set.
    let bob = db.user_lookup(req("bob")).await.unwrap().unwrap();
    assert_eq!(bob.field("quota_rule"), None);
    assert_eq!(bob.field("mail"), Some("maildir:/srv/mail//bob"));

    let rec = db.password_lookup(req("ann")).await.unwrap().unwrap();
    // Two values joined with a comma, as allow_nets lists nets.
    assert_eq!(rec.info.field("allow_nets"), Some("127.0.0.0/8,::1"));
    assert_eq!(rec.info.field("service"), Some("imap"));
    assert_eq!(rec.password.as_deref(), Some(slapd.hashes.ann.as_str()));
}

#[tokio::test]
async fn iterate_lists_every_user() {
    let slapd = Slapd::start();
    let db = open(&slapd.config());
    let mut users = db.iterate().await.unwrap();
    users.sort();
    let mut want = vec!["ann", "bob", "cyd", "dee", ODD_UID, UTF8_UID];
    want.sort();
    assert_eq!(users, want);
    let db = open(&LdapConfig {
        iterate_filter: "(&(objectClass=posixAccount)(uidNumber<=1002))".into(),
        ..slapd.config()
    });
    let mut users = db.iterate().await.unwrap();
    users.sort();
    assert_eq!(users, ["ann", "bob"]);
}

#[tokio::test]
async fn starttls_and_ldaps_check_the_certificate() {
    let slapd = Slapd::start();
    let starttls = LdapConfig {
        tls: true,
        tls_ca_cert_file: Some(slapd.ca_file.clone()),
        ..slapd.config()
    };
    let ldaps = LdapConfig {
        uris: format!("ldaps://127.0.0.1:{}", slapd.tls_port),
        tls_ca_cert_file: Some(slapd.ca_file.clone()),
        ..slapd.config()
    };
    for cfg in [&starttls, &ldaps] {
        let db = open(cfg);
        let ann = stored_password(&*db, "ann").await;
        assert_eq!(
            ann.as_deref(),
            Some(slapd.hashes.ann.as_str()),
            "{}",
            cfg.uris
        );
        // Auth binds use TLS as well.
        let bind = open(&LdapConfig {
            auth_bind: true,
            ..cfg.clone()
        });
        let ok = bind
            .verify_password(req("bob"), BOB_PW.as_bytes())
            .unwrap()
            .await;
        assert!(ok.unwrap().is_some(), "{}", cfg.uris);

        // A certificate from another CA is refused...
        let wrong_ca = LdapConfig {
            tls_ca_cert_file: Some(slapd.other_ca_file.clone()),
            ..cfg.clone()
        };
        let err = open(&wrong_ca).password_lookup(req("ann")).await;
        assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");
        // ...unless the admin said not to check (tls_require_cert = never).
        let unchecked = LdapConfig {
            tls_require_cert: LdapTlsRequireCert::Never,
            ..wrong_ca
        };
        assert!(stored_password(&*open(&unchecked), "ann").await.is_some());
    }
    // A CA file that cannot be read fails at open, naming the key.
    let missing = LdapConfig {
        tls_ca_cert_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..starttls
    };
    let err = ldap::open(&missing).err().unwrap().to_string();
    assert!(err.contains("auth.ldap.tls_ca_cert_file"), "{err}");
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable_and_comes_back() {
    // Nothing listens there.
    let nowhere = LdapConfig {
        uris: format!("ldap://127.0.0.1:{}", free_port()),
        base: PEOPLE.into(),
        ..LdapConfig::default()
    };
    let db = open(&nowhere);
    let err = db.password_lookup(req("ann")).await;
    assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");
    // During the backoff the answer is immediate.
    let t = Instant::now();
    let err = db.user_lookup(req("ann")).await;
    assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");
    assert!(t.elapsed() < Duration::from_millis(200));

    // A wrong service password is not a missing user.
    let mut slapd = Slapd::start();
    let bad_service = LdapConfig {
        dnpass: "wrong".into(),
        ..slapd.config()
    };
    let err = open(&bad_service).password_lookup(req("ann")).await;
    assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");

    // A second URI is tried when the first is down.
    let failover = LdapConfig {
        uris: format!("{} {}", nowhere.uris, slapd.uri()),
        ..slapd.config()
    };
    assert!(stored_password(&*open(&failover), "ann").await.is_some());

    let (db, bind) = lookup_and_bind(&slapd).await;
    slapd.stop();
    let err = db.password_lookup(req("ann")).await;
    assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");
    let err = bind
        .verify_password(req("ann"), ANN_PW.as_bytes())
        .unwrap()
        .await;
    assert!(matches!(err, Err(DbError::Unavailable(_))), "{err:?}");

    // Back up: the kept connections are dead, new ones are made once the backoff allows.
    slapd.run();
    let deadline = Instant::now() + Duration::from_millis(LDAP_RECONNECT_BACKOFF_MAX_MS + 5_000);
    loop {
        match db.password_lookup(req("ann")).await {
            Ok(Some(rec)) => {
                assert_eq!(rec.password.as_deref(), Some(slapd.hashes.ann.as_str()));
                break;
            }
            Err(DbError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("after restart: {other:?}"),
        }
    }
    loop {
        match bind
            .verify_password(req("ann"), ANN_PW.as_bytes())
            .unwrap()
            .await
        {
            Ok(Some(_)) => break,
            Err(DbError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("bind after restart: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_hung_server_times_out_within_the_limit() {
    let slapd = Slapd::start();
    let (db, bind) = lookup_and_bind(&slapd).await;
    slapd.freeze();
    let limit = Duration::from_millis(LDAP_REQUEST_TIMEOUT_MS);

    // On the kept service connection.
    let t = Instant::now();
    let err = db.password_lookup(req("bob")).await;
    let took = t.elapsed();
    assert_eq!(err, Err(DbError::Timeout));
    assert!(
        took >= limit && took < limit + Duration::from_secs(2),
        "{took:?}"
    );
    // On a kept bind connection.
    let t = Instant::now();
    let err = bind
        .verify_password(req("bob"), BOB_PW.as_bytes())
        .unwrap()
        .await;
    let took = t.elapsed();
    assert_eq!(err, Err(DbError::Timeout));
    assert!(
        took >= limit && took < limit + Duration::from_secs(2),
        "{took:?}"
    );
    // On a new database whose first connect reaches the stopped server (the kernel accepts
    // the TCP connection; nobody answers the bind).
    let fresh = open(&slapd.config());
    let t = Instant::now();
    let err = fresh.user_lookup(req("bob")).await;
    let took = t.elapsed();
    assert_eq!(err, Err(DbError::Timeout));
    assert!(took < limit + Duration::from_secs(2), "{took:?}");

    slapd.thaw();
    let deadline = Instant::now() + Duration::from_millis(LDAP_RECONNECT_BACKOFF_MAX_MS + 5_000);
    loop {
        match db.password_lookup(req("bob")).await {
            Ok(Some(rec)) => {
                assert_eq!(rec.password.as_deref(), Some(slapd.hashes.bob.as_str()));
                break;
            }
            Err(DbError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("after SIGCONT: {other:?}"),
        }
    }
}
