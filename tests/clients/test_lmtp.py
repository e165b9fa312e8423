"""Delivery with Python's smtplib.LMTP as a real client: several recipients in one transaction,
one unknown and one over quota, each reply checked, and the stored bytes compared exactly.

smtplib.LMTP.data() reads only the first per-recipient reply after the final "."; the others
(RFC 2033 section 4.2) are read with getreply(), as an LMTP client must.
"""

import pathlib
import smtplib
import time

import imaplib
import poplib

MESSAGE = b"From: sender@example.net\r\nSubject: lmtp\r\n\r\n.leading dot\r\nbody\r\n"


def lmtp_listeners(port):
    return (
        f'[[listener]]\nprotocol = "lmtp"\naddress = "127.0.0.1:{port}"\n\n'
        '[[listener]]\nprotocol = "lmtp"\npath = "$DIR/lmtp.sock"\nmode = "0666"\n'
    )


from conftest import free_port  # noqa: E402  (one port registry for the whole run)


def stored(maildir):
    out = []
    for sub in ("new", "cur"):
        d = pathlib.Path(maildir) / sub
        if d.is_dir():
            out.extend(p.read_bytes() for p in d.iterdir())
    return sorted(out)


def add_quota(server, user, rule):
    """Gives `user` a quota in the users file; the server re-reads the changed file."""
    users = server.dir / "users"
    lines = users.read_text().splitlines()
    lines = [l + f"userdb_quota_rule={rule}" if l.startswith(user + ":") else l for l in lines]
    # The users file is checked for changes at most once a second.
    time.sleep(1.1)
    users.write_text("\n".join(lines) + "\n")


def expected(sender, rcpt):
    return f"Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n".encode() + MESSAGE


def test_smtplib_lmtp_several_recipients_each_reply_and_bytes(make_server):
    port = free_port()
    server = make_server(users=(("demo", "demo"), ("alice", "pw"), ("full", "pw")),
                         extra=lmtp_listeners(port))
    add_quota(server, "full", "*:storage=10b")

    lmtp = smtplib.LMTP("127.0.0.1", port)
    code, _ = lmtp.ehlo("client.example")  # smtplib sends LHLO for LMTP
    assert code == 250
    assert lmtp.has_extn("pipelining") and lmtp.has_extn("enhancedstatuscodes")
    assert lmtp.has_extn("8bitmime") and lmtp.has_extn("chunking")
    assert int(lmtp.esmtp_features["size"]) > 0

    assert lmtp.mail("sender@example.net")[0] == 250
    assert lmtp.rcpt("demo@example.com")[0] == 250
    code, msg = lmtp.rcpt("ghost@example.com")
    assert (code, msg) == (550, b"5.1.1 <ghost@example.com> User doesn't exist")
    assert lmtp.rcpt("full")[0] == 250  # size unknown yet: refused after DATA
    assert lmtp.rcpt("alice@EXAMPLE.com")[0] == 250

    first = lmtp.data(MESSAGE)
    replies = [first] + [lmtp.getreply() for _ in range(2)]
    assert replies == [
        (250, b"2.0.0 <demo@example.com> Saved"),
        (552, b"5.2.2 <full> Quota exceeded (mailbox for user is full)"),
        (250, b"2.0.0 <alice@EXAMPLE.com> Saved"),
    ]
    lmtp.quit()

    assert stored(server.maildir("demo")) == [expected("sender@example.net", "demo@example.com")]
    assert stored(server.maildir("alice")) == [expected("sender@example.net", "alice@EXAMPLE.com")]
    assert stored(server.maildir("full")) == []


def test_smtplib_lmtp_over_the_unix_socket_with_sendmail(make_server):
    server = make_server(extra=lmtp_listeners(free_port()))
    lmtp = smtplib.LMTP(str(server.dir / "lmtp.sock"))
    # sendmail() with one recipient reads exactly one DATA reply, which is all LMTP sends.
    refused = lmtp.sendmail("a@example.net", ["demo"], MESSAGE)
    assert refused == {}
    try:
        lmtp.sendmail("a@example.net", ["nobody"], MESSAGE)
        raise AssertionError("an unknown recipient was accepted")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["nobody"][0] == 550
    lmtp.quit()
    assert stored(server.maildir("demo")) == [expected("a@example.net", "demo")]


def test_delivered_message_reads_back_byte_exact_over_imap_and_pop3(make_server):
    port = free_port()
    server = make_server(extra=lmtp_listeners(port))
    lmtp = smtplib.LMTP("127.0.0.1", port)
    assert lmtp.sendmail("sender@example.net", ["demo@example.org"], MESSAGE) == {}
    lmtp.quit()
    want = expected("sender@example.net", "demo@example.org")
    m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())
    m.login("demo", "demo")
    assert m.select("INBOX") == ("OK", [b"1"])
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert data[0][1] == want
    assert b"RFC822.SIZE %d" % len(want) in data[0][0]
    m.logout()
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    p.user("demo")
    p.pass_("demo")
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == want
    assert octets == len(want)
    assert p.list(1).split()[2] == str(len(want)).encode()
    p.quit()
