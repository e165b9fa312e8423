"""QUOTA (RFC 9208) with Python's imaplib as a real client: getquotaroot() and getquota() parse
what the server sends, for a user without limits and for one with a `userdb_quota_rule`, and an
APPEND over the limit fails with [OVERQUOTA].

Expected numbers are worked out by hand: STORAGE is the stored bytes in KiB, rounded up.
"""

import time

import imaplib


def set_rule(server, user, rule):
    """Gives `user` a quota rule in the users file; the server re-reads the changed file."""
    users = server.dir / "users"
    lines = users.read_text().splitlines()
    lines = [l + f"userdb_quota_rule={rule}" if l.startswith(user + ":") else l for l in lines]
    # The users file is checked for changes at most once a second.
    time.sleep(1.1)
    users.write_text("\n".join(lines) + "\n")


def test_imaplib_getquotaroot_getquota_and_overquota(make_server):
    server = make_server(users=(("demo", "demo"), ("full", "pw")))
    set_rule(server, "full", "*:storage=2K:messages=2")

    m = imaplib.IMAP4("127.0.0.1", server.imap)
    m.login("demo", "demo")
    typ, data = m.capability()
    caps = data[0].decode().upper().split()
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps and "QUOTA=RES-MESSAGE" in caps
    assert "QUOTASET" not in caps
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data == [[b'INBOX ""'], [b'"" ()']]
    typ, data = m.getquota('""')
    assert (typ, data) == ("OK", [b'"" ()'])
    typ, data = m.setquota('""', "(STORAGE 1)")
    assert typ == "NO" and data[0].startswith(b"[NOPERM]")
    m.logout()

    m = imaplib.IMAP4("127.0.0.1", server.imap)
    m.login("full", "pw")
    body = b"Subject: q\r\n\r\n" + b"z" * 1486 + b"\r\n"  # 1502 bytes
    assert len(body) == 1502
    typ, _ = m.append("INBOX", None, None, body)
    assert typ == "OK"
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data == [[b'INBOX ""'], [b'"" (STORAGE 2 2 MESSAGE 1 2)']]
    # 1502 + 1502 bytes would pass 2048.
    typ, data = m.append("INBOX", None, None, body)
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    typ, data = m.getquota('""')
    assert (typ, data) == ("OK", [b'"" (STORAGE 2 2 MESSAGE 1 2)'])
    m.logout()
