//! A slapd of the test's own for the LDAP tests (tests/auth_ldap.rs): Debian's slapd started
//! from a temp dir on loopback ports, as the current user, with a mdb database loaded by
//! slapadd from the hand-written directory below. The system's slapd is never used.
//!
//! Passwords are hashed by the tools that write them in real directories: slappasswd for
//! {SSHA} and {CRYPT} (glibc SHA-512 crypt), `mailcove hash-password` for {ARGON2ID}.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailcove::config::LdapConfig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const SUFFIX: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const SERVICE_DN: &str = "cn=mailcove,dc=example,dc=org";
pub const SERVICE_PW: &str = "service secret";
/// A uid made of every filter metacharacter: found only when escaping is exact.
pub const ODD_UID: &str = "o*(x)\\y";
/// A uid outside ASCII (RFC 4515 escapes its UTF-8 bytes).
pub const UTF8_UID: &str = "zo\u{eb}";

/// Passwords, one per user.
pub const ANN_PW: &str = "ann's SSHA password";
pub const BOB_PW: &str = "bob crypt pw";
pub const CYD_PW: &str = "cyd argon2 pw";
pub const DEE_PW: &str = "dee bare crypt";
pub const ODD_PW: &str = "odd one";

#[path = "../common/pki.rs"]
mod pki;
pub use pki::make_pki;

// tests/auth_ldap_login.rs also has tests/common, which loads the same file.
#[allow(clippy::duplicate_mod)]
#[path = "../common/port.rs"]
mod port;
pub use port::unused_loopback_port as free_port;

pub fn slappasswd(scheme: &str, password: &str) -> String {
    let mut cmd = Command::new("/usr/sbin/slappasswd");
    cmd.args(["-h", scheme, "-s", password]);
    if scheme == "{CRYPT}" {
        // glibc SHA-512 crypt with a 16-character salt.
        cmd.args(["-c", "$6$%.16s"]);
    }
    let out = cmd.output().expect("slappasswd (Debian package slapd)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn argon2id(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcove"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("{ARGON2ID}$argon2id$"), "{hash}");
    hash
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The hashes as stored, so tests compare lookups with them.
pub struct Hashes {
    pub ann: String,
    pub bob: String,
    pub cyd: String,
    pub dee_bare: String,
}

pub fn ldif(h: &Hashes) -> String {
    let service = slappasswd("{SSHA}", SERVICE_PW);
    let odd = slappasswd("{SSHA}", ODD_PW);
    let zoe = slappasswd("{SSHA}", "zoe pw");
    let person = |uid: &str, num: u32, pw: &str, extra: &str| {
        format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuidNumber: {num}\ngidNumber: 100\n\
             homeDirectory: /home/{uid}\nuserPassword: {pw}\n{extra}\n"
        )
    };
    let mut out = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: mailcove\nuserPassword: {service}\n\n"
    );
    out += &person(
        "ann",
        1001,
        &h.ann,
        "mail: ann@example.org\nemployeeNumber: 1048576\n\
         departmentNumber: 127.0.0.0/8\ndepartmentNumber: ::1\n",
    );
    out += &person("bob", 1002, &h.bob, "");
    out += &person("cyd", 1003, &h.cyd, "");
    out += &person("dee", 1004, &h.dee_bare, "");
    // The odd uid: `\` is escaped in the DN (RFC 4514), the others need no escaping there.
    out += &format!(
        "dn: uid=o*(x)\\5cy,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         uid: {ODD_UID}\ncn: odd\nsn: odd\nuidNumber: 1005\ngidNumber: 100\n\
         homeDirectory: /home/odd\nuserPassword: {odd}\n\n"
    );
    out += &format!(
        "dn:: {}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         uid:: {}\ncn: zoe\nsn: zoe\nuidNumber: 1006\ngidNumber: 100\n\
         homeDirectory: /home/zoe\nuserPassword: {zoe}\n\n",
        b64(&format!("uid={UTF8_UID},{PEOPLE}")),
        b64(UTF8_UID)
    );
    out
}

/// A slapd of our own.
pub struct Slapd {
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    pub port: u16,
    pub tls_port: u16,
    child: Option<Child>,
    /// The CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// A CA that did not.
    pub other_ca_file: PathBuf,
    pub hashes: Arc<Hashes>,
}

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let pki = make_pki();
        std::fs::write(d.join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(d.join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(d.join("key.pem"), &pki.key_pem).unwrap();
        std::fs::write(d.join("other-ca.pem"), make_pki().ca_pem).unwrap();
        let conf = d.join("slapd.conf");
        let dp = d.display();
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {dp}/slapd.pid\nargsfile {dp}/slapd.args\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 TLSCACertificateFile {dp}/ca.pem\n\
                 TLSCertificateFile {dp}/cert.pem\nTLSCertificateKeyFile {dp}/key.pem\n\
                 database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\n\
                 rootdn \"cn=admin,{SUFFIX}\"\ndirectory {dp}/db\n\
                 access to attrs=userPassword\n  by dn.exact=\"{SERVICE_DN}\" read\n  by anonymous auth\n  by self write\n  by * none\n\
                 access to *\n  by * read\n"
            ),
        )
        .unwrap();
        let hashes = Hashes {
            ann: slappasswd("{SSHA}", ANN_PW),
            bob: slappasswd("{CRYPT}", BOB_PW),
            cyd: argon2id(CYD_PW),
            dee_bare: slappasswd("{CRYPT}", DEE_PW)
                .strip_prefix("{CRYPT}")
                .unwrap()
                .to_owned(),
        };
        std::fs::write(d.join("data.ldif"), ldif(&hashes)).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(out.status.success(), "slapadd: {out:?}");
        let mut s = Slapd {
            conf,
            port: free_port(),
            tls_port: free_port(),
            child: None,
            ca_file: d.join("ca.pem"),
            other_ca_file: d.join("other-ca.pem"),
            hashes: Arc::new(hashes),
            dir,
        };
        s.run();
        s
    }

    /// Starts slapd (again) on the same ports and waits until it accepts connections.
    pub fn run(&mut self) {
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(&self.conf)
            .args(["-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/sbin/slapd (Debian package slapd)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.port, self.tls_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "slapd did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Stops slapd with SIGSTOP (a hung server: the kernel still accepts TCP connections) and
    /// waits until every thread of it is stopped, so no request slips through.
    pub fn freeze(&self) {
        let pid = self.pid();
        kill(pid, Signal::SIGSTOP).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            let all_stopped = tasks.flatten().all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // The state follows the parenthesised command name.
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                state.starts_with('T') || state.starts_with('t')
            });
            if all_stopped {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets a frozen slapd run again.
    pub fn thaw(&self) {
        kill(self.pid(), Signal::SIGCONT).unwrap();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> LdapConfig {
        LdapConfig {
            uris: self.uri(),
            dn: SERVICE_DN.into(),
            dnpass: SERVICE_PW.into(),
            base: PEOPLE.into(),
            ..LdapConfig::default()
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
