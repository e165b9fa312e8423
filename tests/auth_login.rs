//! Logins against a real users file: every scheme (hashes generated here
//! with the crates, and fixed hashes made by other tools), plaintext policy,
//! uniform failures, the penalty delay and the hashing pool under load.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::PasswordHasher as _;
use mailcove::auth::{
    Argon2Params, AuthFailure, AuthOptions, Authenticator, TempFailReason, admin,
};

const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn small_argon2() -> Argon2Params {
    Argon2Params {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    }
}

fn opts(path: &Path) -> AuthOptions {
    let mut o = AuthOptions::new(path);
    o.argon2 = small_argon2();
    o.failure_delay = Duration::from_millis(1);
    o.failure_delay_max = Duration::from_millis(2);
    o.hash_threads = 2;
    o
}

fn users_file(dir: &tempfile::TempDir, lines: &[String]) -> PathBuf {
    let path = dir.path().join("users");
    let mut content = lines.join("\n");
    content.push('\n');
    std::fs::write(&path, content).unwrap();
    path
}

async fn login(auth: &Authenticator, user: &str, pw: &str) -> Result<String, AuthFailure> {
    auth.authenticate(user, pw.as_bytes(), REMOTE)
        .await
        .map(|u| u.name)
}

#[tokio::test]
async fn generated_hashes_of_every_scheme_verify() {
    let argon2id = admin::hash_password(b"id-pw", &small_argon2()).unwrap();
    assert!(argon2id.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
    let argon2i = argon2::Argon2::new(
        argon2::Algorithm::Argon2i,
        argon2::Version::V0x13,
        argon2::Params::new(256, 1, 1, None).unwrap(),
    )
    .hash_password_with_salt(b"i-pw", b"0123456789abcdef")
    .unwrap()
    .to_string();
    assert!(argon2i.starts_with("$argon2i$"));
    let sha512 = sha_crypt::ShaCrypt::new(
        sha_crypt::Algorithm::Sha512Crypt,
        sha_crypt::Params::new(5000).unwrap(),
    )
    .hash_password_with_salt(b"512-pw", b"saltsalt")
    .unwrap()
    .to_string();
    assert!(sha512.starts_with("$6$"));
    let sha256 = sha_crypt::ShaCrypt::new(
        sha_crypt::Algorithm::Sha256Crypt,
        sha_crypt::Params::new(6000).unwrap(),
    )
    .hash_password_with_salt(b"256-pw", b"saltsalt")
    .unwrap()
    .to_string();
    assert!(sha256.starts_with("$5$rounds=6000$"));
    let bcrypt_hash = bcrypt::hash("blf-pw", 4).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = users_file(
        &dir,
        &[
            format!("u-argon2id:{{ARGON2ID}}{argon2id}"),
            format!("u-argon2i:{{ARGON2I}}{argon2i}"),
            format!("u-sha512:{{SHA512-CRYPT}}{sha512}"),
            format!("u-sha256:{{SHA256-CRYPT}}{sha256}"),
            format!("u-blf:{{BLF-CRYPT}}{bcrypt_hash}"),
            // No {SCHEME}: CRYPT, detected by prefix.
            format!("c-argon2id:{argon2id}"),
            format!("c-sha512:{sha512}"),
            format!("c-blf:{bcrypt_hash}"),
            format!("c-pam:{sha256}[13]"),
        ],
    );
    let auth = Authenticator::new(opts(&path)).unwrap();
    for (user, pw) in [
        ("u-argon2id", "id-pw"),
        ("u-argon2i", "i-pw"),
        ("u-sha512", "512-pw"),
        ("u-sha256", "256-pw"),
        ("u-blf", "blf-pw"),
        ("c-argon2id", "id-pw"),
        ("c-sha512", "512-pw"),
        ("c-blf", "blf-pw"),
        ("c-pam", "256-pw"),
    ] {
        assert_eq!(login(&auth, user, pw).await, Ok(user.to_owned()), "{user}");
        assert_eq!(
            login(&auth, user, "wrong").await,
            Err(AuthFailure::Invalid),
            "{user} with a wrong password"
        );
    }
}

#[tokio::test]
async fn fixed_hashes_from_other_tools_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = users_file(
        &dir,
        &[
            // `openssl passwd -6 -salt saltstring 'Hello world!'` (also the
            // SHA-crypt specification's first test vector).
            "sha512:{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1".into(),
            // glibc crypt(3), rounds=10000 and the salt cut at 16 characters.
            "sha512r:{SHA512-CRYPT}$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.".into(),
            // `openssl passwd -5 -salt saltstring 'Hello world!'`.
            "sha256:{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5".into(),
            "sha256r:$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA".into(),
            // Python bcrypt / glibc crypt(3); Dovecot writes the same with $2y$.
            "blf:{BLF-CRYPT}$2y$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie".into(),
            "blf2b:$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie".into(),
            // Reference-implementation output (PHC test vectors of the argon2 crate).
            "id:{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc".into(),
            // Same source: argon2i, t=1, m=64 MiB, salt "somesalt" zero-padded to 16 bytes.
            "i:{ARGON2I}$argon2i$v=19$m=65536,t=1,p=1$c29tZXNhbHQAAAAAAAAAAA$+r0d29hqEB0yasKr55ZgICsQGSkl0v0kgwhd+U3wyRo".into(),
        ],
    );
    let auth = Authenticator::new(opts(&path)).unwrap();
    for (user, pw) in [
        ("sha512", "Hello world!"),
        ("sha512r", "Hello world!"),
        ("sha256", "Hello world!"),
        ("sha256r", "Hello world!"),
        ("blf", "correctbatteryhorsestapler"),
        ("blf2b", "correctbatteryhorsestapler"),
        ("id", "password"),
        ("i", "password"),
    ] {
        assert_eq!(login(&auth, user, pw).await, Ok(user.to_owned()), "{user}");
    }
    assert_eq!(
        login(&auth, "id", "passwore").await,
        Err(AuthFailure::Invalid)
    );
    assert_eq!(
        login(&auth, "sha512", "hello world!").await,
        Err(AuthFailure::Invalid)
    );
}

#[tokio::test]
async fn plaintext_refused_by_default_allowed_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = users_file(
        &dir,
        &[
            "p:{PLAIN}secret".into(),
            "c:{CLEARTEXT}other".into(),
            "l:{plain}lower".into(),
        ],
    );
    let auth = Authenticator::new(opts(&path)).unwrap();
    for (user, pw) in [("p", "secret"), ("c", "other"), ("l", "lower")] {
        assert_eq!(login(&auth, user, pw).await, Err(AuthFailure::Invalid));
    }
    let mut allow = opts(&path);
    allow.allow_plaintext_schemes = true;
    auth.reload(allow).unwrap();
    for (user, pw) in [("p", "secret"), ("c", "other"), ("l", "lower")] {
        assert_eq!(login(&auth, user, pw).await, Ok(user.to_owned()));
    }
    assert_eq!(login(&auth, "p", "secre").await, Err(AuthFailure::Invalid));
    assert_eq!(
        login(&auth, "p", "secret ").await,
        Err(AuthFailure::Invalid)
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unusable_accounts_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let hash = admin::hash_password(b"right", &small_argon2()).unwrap();
    let path = users_file(
        &dir,
        &[
            format!("alice:{{ARGON2ID}}{hash}"),
            "locked:*".into(),
            "empty:".into(),
            "md5:{MD5-CRYPT}$1$abcdefgh$0123456789012345678901".into(),
            "des:abJnggxhB/yWI".into(),
            format!("nologin:{{ARGON2ID}}{hash}:::::: nologin"),
            format!("netbound:{{ARGON2ID}}{hash}:::::: allow_nets=10.0.0.0/8"),
        ],
    );
    let auth = Authenticator::new(opts(&path)).unwrap();
    assert_eq!(login(&auth, "ALICE", "right").await, Ok("alice".into()));
    for (user, pw) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("nosuchuser", "right"),
        ("locked", "*"),
        ("empty", ""),
        ("md5", "anything"),
        ("des", "anything"),
        ("nologin", "right"),
        ("netbound", "right"),
    ] {
        assert_eq!(
            login(&auth, user, pw).await,
            Err(AuthFailure::Invalid),
            "{user}"
        );
    }
    let long_user = "u".repeat(10_000);
    assert_eq!(
        login(&auth, &long_user, "x").await,
        Err(AuthFailure::Invalid)
    );
    let long_pw = "p".repeat(mailcove::limits::MAX_PASSWORD_LEN + 1);
    assert_eq!(
        login(&auth, "alice", &long_pw).await,
        Err(AuthFailure::Invalid)
    );
    let inside: IpAddr = "10.9.8.7".parse().unwrap();
    assert_eq!(
        auth.authenticate("netbound", b"right", inside)
            .await
            .map(|u| u.name),
        Ok("netbound".into())
    );
}

#[tokio::test(start_paused = true)]
async fn failure_delay_doubles_caps_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let path = users_file(&dir, &["p:{PLAIN}pw".into()]);
    let mut o = opts(&path);
    o.allow_plaintext_schemes = true;
    o.failure_delay = Duration::from_secs(2);
    o.failure_delay_max = Duration::from_secs(5);
    let auth = Authenticator::new(o).unwrap();

    // Paused clock: sleeps complete by auto-advancing virtual time, so the
    // virtual time elapsed is exactly the penalty slept.
    for expected in [2, 4, 5, 5] {
        assert_eq!(
            auth.next_failure_delay(REMOTE),
            Duration::from_secs(expected)
        );
        let start = tokio::time::Instant::now();
        assert_eq!(login(&auth, "p", "bad").await, Err(AuthFailure::Invalid));
        let slept = start.elapsed();
        assert!(
            slept >= Duration::from_secs(expected) && slept < Duration::from_secs(expected + 1),
            "expected {expected}s, slept {slept:?}"
        );
    }
    assert_eq!(auth.failures(REMOTE), 4);
    // Another address is not penalized for REMOTE's failures.
    let other: IpAddr = "198.51.100.1".parse().unwrap();
    assert_eq!(auth.next_failure_delay(other), Duration::from_secs(2));

    // Success answers without delay and resets the count.
    let start = tokio::time::Instant::now();
    assert_eq!(login(&auth, "p", "pw").await, Ok("p".into()));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(auth.failures(REMOTE), 0);
    assert_eq!(auth.next_failure_delay(REMOTE), Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_logins_at_once_are_bounded_not_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let hash = admin::hash_password(b"pw", &small_argon2()).unwrap();
    let path = users_file(&dir, &[format!("alice:{{ARGON2ID}}{hash}")]);
    let mut o = opts(&path);
    o.hash_threads = 2;
    o.max_queued = 20;
    let auth = Arc::new(Authenticator::new(o).unwrap());

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let auth = Arc::clone(&auth);
        tasks.push(tokio::spawn(async move {
            auth.authenticate("alice", b"pw", REMOTE).await
        }));
    }
    // The runtime keeps serving other tasks while hashing runs.
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move { tx.send(42) });
    assert_eq!(rx.await, Ok(42));

    let (mut ok, mut overloaded) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => {
                assert_eq!(user.name, "alice");
                ok += 1;
            }
            Err(AuthFailure::TempFail(TempFailReason::Overloaded)) => overloaded += 1,
            Err(other) => panic!("unexpected failure {other:?}"),
        }
    }
    assert_eq!(ok + overloaded, 200);
    // The first hash_threads + max_queued always get a place.
    assert!(ok >= 22, "only {ok} logins got through");
    // A correct login never counts as a failure.
    assert_eq!(auth.failures(REMOTE), 0);
}
