//! SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677) and their -PLUS variants (RFC 9266
//! `tls-exporter`) through the real binary, over IMAP AUTHENTICATE and POP3 AUTH.
//!
//! Clients: curl on this machine (7.88, no libgsasl) cannot do SCRAM, so the client side is
//! written twice, independently of the server's code: a Python driver on `imaplib.authenticate`
//! and `poplib` with hashlib/hmac, and (for -PLUS, because Python's `ssl` cannot export keying
//! material) a Rust client on the `hmac`/`sha2` crates with rustls's `export_keying_material`.
//! The keys are written by `mailcove user add --scheme`, and one entry in Dovecot's format is
//! made by the Python side, as a site migrating from Dovecot would bring it.

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{
    BIN, Client, Server, cheap_argon2, output_with_stdin, run_transcript, scram_client,
    user_add_line,
};
use serde_json::Value;

/// The Python client: `python3 - PROTO PORT MECH USER PASSWORD MODE`; prints one JSON object.
/// MODE: `login`, `tamper` (flip a bit of the proof), `salt` (read server-first, then cancel),
/// `replay` (log in, then send that client-final again in a new exchange with the same client
/// nonce), `authzid=NAME`, `yflag` (gs2 `y,,`), `dovecot-entry` (print a users-file password
/// field in Dovecot's format for PASSWORD, with MECH's hash, and exit).
const PY_CLIENT: &str = r#"
import base64, hashlib, hmac, imaplib, json, os, poplib, sys

proto, port, mech, user, password, mode = sys.argv[1:7]
port = int(port)
H = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech]

def b64(b):
    return base64.b64encode(b).decode()

if mode == "dovecot-entry":
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac(H, password.encode(), salt, 4096)
    ck = hmac.new(salted, b"Client Key", H).digest()
    stored = hashlib.new(H, ck).digest()
    server = hmac.new(salted, b"Server Key", H).digest()
    print("{%s}4096,%s,%s,%s" % (mech, b64(salt), b64(stored), b64(server)))
    sys.exit(0)

if mode == "check-entry":
    # USER is a stored field "{MECH}iter,salt,StoredKey,ServerKey": does PASSWORD give it?
    prefix = "{%s}" % mech
    assert user.startswith(prefix), user
    it, salt, stored, server = user[len(prefix):].split(",")
    salted = hashlib.pbkdf2_hmac(H, password.encode(), base64.b64decode(salt), int(it))
    ck = hmac.new(salted, b"Client Key", H).digest()
    ok = (hashlib.new(H, ck).digest() == base64.b64decode(stored)
          and hmac.new(salted, b"Server Key", H).digest() == base64.b64decode(server))
    print(json.dumps({"match": ok, "iterations": int(it), "salt_len": len(base64.b64decode(salt))}))
    sys.exit(0)

class Scram:
    def __init__(self, gs2="n,,", nonce=None):
        self.gs2 = gs2
        self.cnonce = nonce or b64(os.urandom(18))
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.bare = "n=%s,r=%s" % (name, self.cnonce)
        self.server_sig = None
        self.server_first = None

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first, tamper=False):
        sf = server_first.decode()
        self.server_first = sf
        attrs = dict(a.split("=", 1) for a in sf.split(","))
        nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.cnonce) and len(nonce) > len(self.cnonce), sf
        salted = hashlib.pbkdf2_hmac(H, password.encode(), salt, it)
        ck = hmac.new(salted, b"Client Key", H).digest()
        stored = hashlib.new(H, ck).digest()
        without = "c=%s,r=%s" % (b64(self.gs2.encode()), nonce)
        am = ",".join([self.bare, sf, without]).encode()
        sig = hmac.new(stored, am, H).digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        if tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        server_key = hmac.new(salted, b"Server Key", H).digest()
        self.server_sig = hmac.new(server_key, am, H).digest()
        return ("%s,p=%s" % (without, b64(proof))).encode()

    def verified(self, data):
        return data.decode() == "v=" + b64(self.server_sig)

def salt_of(sf):
    attrs = dict(a.split("=", 1) for a in sf.decode().split(","))
    return attrs["s"], int(attrs["i"])

def run_imap(scram, mode, saved_final=None):
    out = {"ok": False, "verified": None, "error": "", "final": None}
    M = imaplib.IMAP4("127.0.0.1", port)
    steps = []
    def answer(challenge):
        steps.append(challenge)
        if len(steps) == 1:
            return scram.first()
        if len(steps) == 2:
            if mode == "salt":
                out["salt"], out["iterations"] = salt_of(challenge)
                return None  # imaplib sends "*"
            if saved_final is not None:
                return saved_final
            fin = scram.final(challenge, tamper=(mode == "tamper"))
            out["final"] = fin.decode()
            return fin
        out["verified"] = scram.verified(challenge)
        return b""
    try:
        typ, data = M.authenticate(mech, answer)
        out["ok"] = typ == "OK"
        out["response"] = data[0].decode()
        # Logged in for real: a command of the authenticated state works.
        typ, _ = M.select("INBOX")
        out["selected"] = typ == "OK"
        M.logout()
    except imaplib.IMAP4.error as e:
        out["error"] = str(e)
    return out

def run_pop3(scram, mode, saved_final=None):
    out = {"ok": False, "verified": None, "error": "", "final": None}
    P = poplib.POP3("127.0.0.1", port)
    def challenge(resp):
        if not resp.startswith(b"+ ") and resp != b"+":
            raise poplib.error_proto(resp)
        return base64.b64decode(resp[2:])
    try:
        challenge(P._shortcmd("AUTH " + mech))
        sf = challenge(P._shortcmd(b64(scram.first())))
        if mode == "salt":
            out["salt"], out["iterations"] = salt_of(sf)
            P._shortcmd("*")
        if saved_final is not None:
            fin = saved_final
        else:
            fin = scram.final(sf, tamper=(mode == "tamper"))
            out["final"] = fin.decode()
        out["verified"] = scram.verified(challenge(P._shortcmd(b64(fin))))
        resp = P._shortcmd("")
        out["ok"] = resp.startswith(b"+OK")
        out["response"] = resp.decode()
        out["stat"] = list(P.stat())
        P.quit()
    except poplib.error_proto as e:
        out["error"] = str(e)
    return out

run = run_imap if proto == "imap" else run_pop3
if mode == "replay":
    first = Scram()
    a = run(first, "login")
    again = Scram(nonce=first.cnonce)
    b = run(again, "login", saved_final=a["final"].encode())
    print(json.dumps({"first": a, "replay": b}))
elif mode.startswith("authzid="):
    print(json.dumps(run(Scram(gs2="n,a=%s," % mode[8:]), "login")))
elif mode == "yflag":
    print(json.dumps(run(Scram(gs2="y,,"), "login")))
else:
    print(json.dumps(run(Scram(), mode)))
"#;

fn python(args: &[&str]) -> String {
    let out = output_with_stdin(
        Command::new("python3").arg("-").args(args),
        PY_CLIENT.as_bytes(),
    );
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn py(proto: &str, port: u16, mech: &str, user: &str, password: &str, mode: &str) -> Value {
    let out = python(&[proto, &port.to_string(), mech, user, password, mode]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn users() -> Vec<String> {
    let s256 = user_add_line("SCRAM-SHA-256", "s256", "pencil");
    assert!(s256.starts_with("s256:{SCRAM-SHA-256}4096,"), "{s256}");
    let s1 = user_add_line("scram-sha-1", "s1", "sesame");
    assert!(s1.starts_with("s1:{SCRAM-SHA-1}4096,"), "{s1}");
    let dovecot = python(&["-", "0", "SCRAM-SHA-256", "-", "d0vec0t", "dovecot-entry"]);
    vec![
        format!("demo:{}::::::", cheap_argon2("demo")),
        s256,
        s1,
        format!("dove:{}", dovecot.trim()),
        format!("argon:{}", cheap_argon2("argonpw")),
        "plain:{PLAIN}plainpw".to_owned(),
    ]
}

fn start(allow_plaintext_schemes: bool) -> Server {
    Server::builder()
        .users(&users())
        .config(&format!(
            "[auth]\nusers_file = \"$DIR/users\"\nfailure_delay_ms = 20\nfailure_delay_max_ms = 40\nhash_threads = 2\nallow_plaintext_schemes = {allow_plaintext_schemes}\nscram_mechanisms = [\"SCRAM-SHA-256\", \"scram-sha-1\"]\n"
        ))
        .start()
}

/// Whether a log line has `key=value` (quoted or not, as the formatter writes it).
fn has_field(log: &str, key: &str, value: &str) -> bool {
    log.contains(&format!("{key}=\"{value}\"")) || log.contains(&format!("{key}={value} "))
}

fn ok(v: &Value) -> bool {
    v["ok"].as_bool().unwrap_or(false)
}

#[test]
fn scram_logins_over_imap_and_pop3_with_both_hashes() {
    let s = start(false);
    for (mech, user, pw) in [
        ("SCRAM-SHA-256", "s256", "pencil"),
        ("SCRAM-SHA-1", "s1", "sesame"),
        ("SCRAM-SHA-256", "dove", "d0vec0t"),
    ] {
        let r = py("imap", s.ports.imap, mech, user, pw, "login");
        assert!(ok(&r), "{mech} {user} over IMAP: {r}");
        // The server proved it knows the keys (RFC 5802 section 3, ServerSignature).
        assert_eq!(r["verified"], Value::Bool(true), "{r}");
        assert!(r["response"].as_str().unwrap().contains("Logged in"), "{r}");
        assert_eq!(r["selected"], Value::Bool(true), "{r}");
        let r = py("pop3", s.ports.pop3, mech, user, pw, "login");
        assert!(ok(&r), "{mech} {user} over POP3: {r}");
        assert_eq!(r["verified"], Value::Bool(true), "{r}");
        assert_eq!(r["stat"], serde_json::json!([0, 0]), "{r}");
    }
    // The login log line names the mechanism.
    let log = s.wait_log(|l| has_field(l, "mechanism", "SCRAM-SHA-1"));
    assert!(has_field(&log, "mechanism", "SCRAM-SHA-256"), "{log}");

    // A SCRAM entry logs in with a plain password too (PBKDF2 derived again), and only with the
    // right one.
    let mut c = s.imap();
    c.line();
    run_transcript(
        &mut c,
        "C: a LOGIN s256 wrong\nS: a NO [AUTHENTICATIONFAILED] *\nC: b LOGIN s256 pencil\nS: b OK [CAPABILITY {*}] Logged in",
    );
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER s1\nS: +OK\nC: PASS sesame\nS: +OK Logged in, 0 messages.",
    );
}

#[test]
fn failures_look_like_a_wrong_password() {
    let s = start(false);
    for proto in ["imap", "pop3"] {
        let port = if proto == "imap" {
            s.ports.imap
        } else {
            s.ports.pop3
        };
        for (mech, user, pw, mode) in [
            // Wrong password.
            ("SCRAM-SHA-256", "s256", "pencil2", "login"),
            // Keys of the other hash only.
            ("SCRAM-SHA-1", "s256", "pencil", "login"),
            // Unknown user.
            ("SCRAM-SHA-256", "nobody", "pencil", "login"),
            // Argon2id: SCRAM cannot use it.
            ("SCRAM-SHA-256", "argon", "argonpw", "login"),
            // {PLAIN} with allow_plaintext_schemes off.
            ("SCRAM-SHA-256", "plain", "plainpw", "login"),
            // Right password, proof altered on the way.
            ("SCRAM-SHA-256", "s256", "pencil", "tamper"),
            // Someone else as authzid (no master users).
            ("SCRAM-SHA-256", "s256", "pencil", "authzid=s1"),
        ] {
            let r = py(proto, port, mech, user, pw, mode);
            assert!(!ok(&r), "{proto} {mech} {user} {mode} got in: {r}");
            let err = r["error"].as_str().unwrap();
            if proto == "imap" {
                assert!(err.contains("[AUTHENTICATIONFAILED]"), "{mode} {user}: {r}");
            } else {
                assert!(
                    err.contains("-ERR [AUTH] Authentication failed."),
                    "{user}: {r}"
                );
            }
        }
        // The authzid may name the user itself.
        let r = py(
            proto,
            port,
            "SCRAM-SHA-256",
            "s256",
            "pencil",
            "authzid=s256",
        );
        assert!(ok(&r), "{r}");
        // Without TLS the server offers no -PLUS, so "y" (client could bind) is fine.
        let r = py(proto, port, "SCRAM-SHA-1", "s1", "sesame", "yflag");
        assert!(ok(&r), "{r}");
    }
    let log = s.log();
    assert!(log.contains("wrong password (SCRAM proof)"), "{log}");
    assert!(log.contains("unknown user"), "{log}");
    assert!(
        log.contains("stored hash cannot be used for SCRAM"),
        "{log}"
    );
    assert!(!log.contains("pencil2"), "password in the log: {log}");
}

#[test]
fn a_replayed_client_final_fails() {
    let s = start(false);
    for (proto, port) in [("imap", s.ports.imap), ("pop3", s.ports.pop3)] {
        let r = py(proto, port, "SCRAM-SHA-256", "s256", "pencil", "replay");
        assert!(ok(&r["first"]), "{r}");
        assert!(
            !ok(&r["replay"]),
            "{proto}: a replayed client-final got in: {r}"
        );
        // The replay was answered by a failed login, not by a protocol error.
        let err = r["replay"]["error"].as_str().unwrap();
        assert!(
            err.contains("[AUTHENTICATIONFAILED]") || err.contains("-ERR [AUTH]"),
            "{r}"
        );
    }
    assert!(s.log().contains("SCRAM nonce mismatch (replayed message)"));
}

#[test]
fn unknown_users_get_a_stable_fake_salt() {
    let s = start(true);
    let salt = |user: &str, mech: &str| {
        let r = py("imap", s.ports.imap, mech, user, "x", "salt");
        (
            r["salt"].as_str().unwrap().to_owned(),
            r["iterations"].as_u64().unwrap(),
        )
    };
    // A real user: the salt of the stored entry.
    let (s256_salt, _) = salt("s256", "SCRAM-SHA-256");
    let running = std::fs::read_to_string(s.path().join("users")).unwrap();
    let entry = running.lines().find(|l| l.starts_with("s256:")).unwrap();
    assert_eq!(entry.split(',').nth(1).unwrap(), s256_salt, "{entry}");
    // Unknown and Argon2id users: the same salt every time, 4096 iterations, 16 bytes like a
    // real one; different users get different salts.
    for user in ["nobody", "argon"] {
        let (a, i) = salt(user, "SCRAM-SHA-256");
        assert_eq!(salt(user, "SCRAM-SHA-256"), (a.clone(), i));
        assert_eq!(i, 4096);
        assert_eq!(B64.decode(&a).unwrap().len(), 16);
        assert_ne!(a, salt("nobody2", "SCRAM-SHA-256").0);
    }
    // {PLAIN} users log in with SCRAM when plaintext schemes are allowed (as Dovecot).
    for proto in ["imap", "pop3"] {
        let port = if proto == "imap" {
            s.ports.imap
        } else {
            s.ports.pop3
        };
        let r = py(proto, port, "SCRAM-SHA-256", "plain", "plainpw", "login");
        assert!(ok(&r), "{r}");
        let r = py(proto, port, "SCRAM-SHA-1", "plain", "wrong", "login");
        assert!(!ok(&r), "{r}");
    }
}

#[test]
fn scram_is_offered_without_tls_and_plus_only_with_it() {
    let s = start(false);
    // A remote client without TLS: PLAIN and LOGIN are refused, SCRAM is offered and works.
    let mut c = Client::plain(s.ports.imap_remote);
    let greeting = c.line();
    assert!(greeting.contains("LOGINDISABLED"), "{greeting}");
    assert!(
        greeting.contains(" AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256]"),
        "{greeting}"
    );
    assert!(!greeting.contains("PLUS"), "{greeting}");
    // -PLUS without TLS is not a mechanism this connection has.
    run_transcript(
        &mut c,
        "C: a AUTHENTICATE SCRAM-SHA-256-PLUS\nS: a NO *\nC: b AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\nS: b NO [PRIVACYREQUIRED] *",
    );
    let r = py(
        "imap",
        s.ports.imap_remote,
        "SCRAM-SHA-256",
        "s256",
        "pencil",
        "login",
    );
    assert!(ok(&r), "{r}");
    let r = py(
        "pop3",
        s.ports.pop3_remote,
        "SCRAM-SHA-1",
        "s1",
        "sesame",
        "login",
    );
    assert!(ok(&r), "{r}");
    let mut c = Client::plain(s.ports.pop3_remote);
    c.line();
    run_transcript(
        &mut c,
        "C: AUTH\nS: +OK\nS: SCRAM-SHA-1\nS: SCRAM-SHA-256\nS: .\nC: AUTH SCRAM-SHA-1-PLUS\nS: -ERR Unsupported authentication mechanism.",
    );
    // Over TLS (1.3) the -PLUS variants are offered, after STARTTLS too.
    let mut c = s.imaps();
    let greeting = c.line();
    assert!(
        greeting.contains(
            " AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-1-PLUS AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-256-PLUS"
        ),
        "{greeting}"
    );
    let mut c = Client::plain(s.ports.imap_remote);
    c.line();
    run_transcript(&mut c, "C: a STARTTLS\nS: a OK *");
    c.upgrade(&s.cert.der);
    c.send("b CAPABILITY");
    let caps = c.line();
    assert!(caps.contains(" AUTH=SCRAM-SHA-256-PLUS"), "{caps}");
    assert!(caps.contains(" AUTH=PLAIN"), "{caps}");
}

// ---- -PLUS over TLS, with a Rust client (Python's ssl cannot export keying material) ----

/// One SCRAM-SHA-256(-PLUS) exchange on `c` (IMAP if `imap`, else POP3): `gs2` is the gs2
/// header, `binding` the channel binding data put after it in `c=`. Returns the server's final
/// answer line.
fn rust_scram(
    c: &mut Client,
    imap: bool,
    mech: &str,
    gs2: &str,
    binding: &[u8],
    password: &str,
) -> String {
    let challenge = |c: &mut Client| {
        let l = c.line();
        let data = l
            .strip_prefix("+ ")
            .unwrap_or_else(|| panic!("expected a challenge, got {l}"));
        String::from_utf8(B64.decode(data).unwrap()).unwrap()
    };
    c.send(&if imap {
        format!("a AUTHENTICATE {mech}")
    } else {
        format!("AUTH {mech}")
    });
    assert_eq!(challenge(c), "");
    let bare = "n=s256,r=rustclientnonce0123";
    c.send(&B64.encode(format!("{gs2}{bare}")));
    // A channel binding refused up front ends the exchange here.
    let l = c.line();
    let Some(data) = l.strip_prefix("+ ") else {
        return l;
    };
    let server_first = String::from_utf8(B64.decode(data).unwrap()).unwrap();
    let (nonce, salt, iterations) = scram_client::server_first_attrs(&server_first);
    assert!(nonce.starts_with("rustclientnonce0123"), "{server_first}");
    let salt = B64.decode(salt).unwrap();
    let mut cbind = gs2.as_bytes().to_vec();
    cbind.extend_from_slice(binding);
    let without = format!("c={},r={nonce}", B64.encode(&cbind));
    let auth_message = format!("{bare},{server_first},{without}");
    let (proof, signature) =
        scram_client::proof_and_signature(password, &salt, iterations, &auth_message);
    c.send(&B64.encode(format!("{without},p={}", B64.encode(proof))));
    let l = c.line();
    let Some(v) = l.strip_prefix("+ ") else {
        return l;
    };
    let expected = format!("v={}", B64.encode(signature));
    assert_eq!(String::from_utf8(B64.decode(v).unwrap()).unwrap(), expected);
    c.send("");
    c.line()
}

/// Ends a logged-in session and waits for the answer, so its POP3 maildrop lock is released.
fn quit(mut c: Client, imap: bool) {
    c.send(if imap { "z LOGOUT" } else { "QUIT" });
    let mut l = c.line();
    while l.starts_with('*') {
        l = c.line();
    }
    assert!(l.starts_with("z OK") || l.starts_with("+OK"), "{l}");
}

fn exporter(c: &mut Client) -> Vec<u8> {
    // RFC 9266 section 2: label "EXPORTER-Channel-Binding", empty context, 32 bytes.
    c.export_keying_material(b"EXPORTER-Channel-Binding", Some(b""), 32)
}

#[test]
fn plus_binds_to_the_tls_channel() {
    let s = start(false);
    for imap in [true, false] {
        let fresh = || {
            let mut c = if imap { s.imaps() } else { s.pop3s() };
            c.line();
            c
        };
        let ok_line = |l: &str| {
            if imap {
                l.starts_with("a OK [CAPABILITY ")
            } else {
                l.starts_with("+OK Logged in")
            }
        };
        let failed = |l: &str| {
            if imap {
                l.starts_with("a NO [AUTHENTICATIONFAILED]")
            } else {
                l.starts_with("-ERR [AUTH] Authentication failed.")
            }
        };
        // SCRAM-SHA-256-PLUS on a new connection with gs2 header `gs2` and that connection's
        // own tls-exporter data: the connection and the final line.
        let plus_on_own_channel = |gs2: &str, password: &str| {
            let mut c = fresh();
            let cb = exporter(&mut c);
            let l = rust_scram(&mut c, imap, "SCRAM-SHA-256-PLUS", gs2, &cb, password);
            (c, l)
        };
        // The right binding: in.
        let (c, l) = plus_on_own_channel("p=tls-exporter,,", "pencil");
        assert!(ok_line(&l), "{l}");
        quit(c, imap);
        // The binding of another TLS connection (what a man in the middle would have): out.
        let mut other = fresh();
        let other_cb = exporter(&mut other);
        let mut c = fresh();
        assert_ne!(exporter(&mut c), other_cb);
        let l = rust_scram(
            &mut c,
            imap,
            "SCRAM-SHA-256-PLUS",
            "p=tls-exporter,,",
            &other_cb,
            "pencil",
        );
        assert!(failed(&l), "{l}");
        // A binding type the server does not have.
        let (_, l) = plus_on_own_channel("p=tls-unique,,", "pencil");
        assert!(failed(&l), "{l}");
        // "y" where -PLUS is offered: a downgrade (RFC 5802 section 6).
        let mut c = fresh();
        let l = rust_scram(&mut c, imap, "SCRAM-SHA-256", "y,,", b"", "pencil");
        assert!(failed(&l), "{l}");
        // A client that cannot bind ("n") still logs in without -PLUS.
        let mut c = fresh();
        let l = rust_scram(&mut c, imap, "SCRAM-SHA-256", "n,,", b"", "pencil");
        assert!(ok_line(&l), "{l}");
        quit(c, imap);
        // The right binding with the wrong password.
        let (_, l) = plus_on_own_channel("p=tls-exporter,,", "pencil!");
        assert!(failed(&l), "{l}");
    }
    let log = s.log();
    assert!(log.contains("SCRAM channel binding mismatch"), "{log}");
    assert!(log.contains("SCRAM channel binding downgrade"), "{log}");
    assert!(has_field(&log, "mechanism", "SCRAM-SHA-256-PLUS"), "{log}");
}

#[test]
fn malformed_messages_are_protocol_errors() {
    let s = start(false);
    let mut c = s.imap();
    c.line();
    // gs2 header without its second comma; an unknown mandatory extension; not base64.
    for (tag, msg) in [("a", "n"), ("b", "n,,m=x,n=s256,r=abc")] {
        c.send(&format!("{tag} AUTHENTICATE SCRAM-SHA-256"));
        assert_eq!(c.line(), "+ ");
        c.send(&B64.encode(msg));
        let l = c.line();
        assert!(l.starts_with(&format!("{tag} BAD")), "{msg}: {l}");
    }
    run_transcript(
        &mut c,
        "C: c AUTHENTICATE SCRAM-SHA-1\nS: + \nC: not base64!\nS: c BAD *\nC: d AUTHENTICATE SCRAM-SHA-1\nS: + \nC: *\nS: d BAD *",
    );
    // SASL-IR: the client-first message in the command.
    let ir = B64.encode("n,,n=s256,r=abcdef");
    c.send(&format!("e AUTHENTICATE SCRAM-SHA-256 {ir}"));
    let l = c.line();
    assert!(l.starts_with("+ "), "{l}");
    let sf = String::from_utf8(B64.decode(&l[2..]).unwrap()).unwrap();
    assert!(sf.starts_with("r=abcdef"), "{sf}");
    assert!(sf.ends_with(",i=4096"), "{sf}");
    c.send("*");
    assert!(c.line().starts_with("e BAD"));
    // POP3: the same grammar errors are -ERR.
    let mut c = s.pop3();
    c.line();
    c.send(&format!("AUTH SCRAM-SHA-256 {}", B64.encode("n,,n=s256")));
    assert_eq!(c.line(), "-ERR Invalid base64 or malformed SASL data.");
}

#[test]
fn scram_is_off_unless_configured() {
    // The default configuration, as Dovecot's auth_mechanisms = plain.
    let s = Server::builder().users(&users()).start();
    let mut c = s.imaps();
    let greeting = c.line();
    assert!(!greeting.contains("SCRAM"), "{greeting}");
    run_transcript(
        &mut c,
        "C: a AUTHENTICATE SCRAM-SHA-256\nS: a NO Unsupported authentication mechanism.\nC: b AUTHENTICATE SCRAM-SHA-1-PLUS\nS: b NO Unsupported authentication mechanism.\nC: c LOGIN s256 pencil\nS: c OK [CAPABILITY {*}] Logged in",
    );
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: AUTH\nS: +OK\nS: PLAIN\nS: LOGIN\nS: .\nC: AUTH SCRAM-SHA-256\nS: -ERR Unsupported authentication mechanism.",
    );
    let r = py(
        "pop3",
        s.ports.pop3,
        "SCRAM-SHA-256",
        "s256",
        "pencil",
        "login",
    );
    assert!(!ok(&r), "{r}");
}

#[test]
fn hash_password_prints_keys_another_implementation_accepts() {
    for scheme in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let out = output_with_stdin(
            Command::new(BIN).args(["hash-password", "--scheme", scheme]),
            b"p\xc3\xa4ss word\n",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = String::from_utf8(out.stdout).unwrap();
        let field = field.trim();
        assert!(field.starts_with(&format!("{{{scheme}}}4096,")), "{field}");
        // Python's hashlib derives the same keys from the password, and not from another one.
        let v: Value = serde_json::from_str(
            python(&["-", "0", scheme, field, "päss word", "check-entry"]).trim(),
        )
        .unwrap();
        assert_eq!(v["match"], Value::Bool(true), "{v}");
        assert_eq!(v["iterations"], 4096);
        assert_eq!(v["salt_len"], 16);
        let v: Value = serde_json::from_str(
            python(&["-", "0", scheme, field, "pass word", "check-entry"]).trim(),
        )
        .unwrap();
        assert_eq!(v["match"], Value::Bool(false), "{v}");
    }
}
