"""The foundation with real client libraries: Python's imaplib and poplib over implicit TLS and
STARTTLS/STLS, and curl, each verifying the server certificate against the test CA."""

import imaplib
import poplib
import subprocess


def test_poplib_over_implicit_tls_and_stls(server):
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    assert "USER" in caps and "UIDL" in caps and "TOP" in caps
    assert "STLS" not in caps
    p.user("demo")
    assert p.pass_("demo").startswith(b"+OK")
    assert p.stat() == (0, 0)
    p.quit()

    p = poplib.POP3("127.0.0.1", server.pop3)
    assert "STLS" in p.capa()
    p.stls(context=server.ssl_context())
    assert "STLS" not in p.capa()
    p.user("demo")
    p.pass_("demo")
    p.quit()


def test_poplib_wrong_password_is_an_auth_error(server):
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    p.user("demo")
    try:
        p.pass_("nope")
        raise AssertionError("login with a wrong password succeeded")
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR [AUTH]")


def test_imaplib_over_implicit_tls_and_starttls(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())
    assert "IMAP4REV1" in m.capabilities
    assert "AUTH=PLAIN" in m.capabilities
    typ, _ = m.login("demo", "demo")
    assert typ == "OK"
    m.logout()

    m = imaplib.IMAP4("127.0.0.1", server.imap)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=server.ssl_context())
    assert "STARTTLS" not in m.capabilities
    typ, _ = m.authenticate("PLAIN", lambda _: b"\0demo\0demo")
    assert typ == "OK"
    m.logout()


def test_imaplib_wrong_password(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())
    try:
        m.login("demo", "wrong")
        raise AssertionError("login with a wrong password succeeded")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e)


def test_curl_talks_pop3s_and_imaps(server):
    out = subprocess.run(
        ["curl", "-sS", "--cacert", server.cert, f"pop3s://localhost:{server.pop3s}/",
         "-u", "demo:demo"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""  # an empty maildrop lists nothing
    bad = subprocess.run(
        ["curl", "-sS", "--cacert", server.cert, f"pop3s://localhost:{server.pop3s}/",
         "-u", "demo:wrong"],
        capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 67, (bad.returncode, bad.stderr)  # CURLE_LOGIN_DENIED
