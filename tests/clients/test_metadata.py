"""METADATA (RFC 5464) with Python's imaplib as a real client. imaplib has no METADATA helper,
so the commands go through its generic command path (`_simple_command`), which is what a script
using imaplib against mailcove would do: SETMETADATA and GETMETADATA round-trip a mailbox entry,
the configured /shared/admin server entry reads back and refuses a change with [NOPERM], MAXSIZE
reports [METADATA LONGENTRIES n] in the tagged OK, and an invalid entry name is BAD.

Expected answers are worked out by hand from RFC 5464 and the values set here.
"""

import imaplib

import pytest

ADMIN = "mailto:postmaster@example.org"


def test_imaplib_setmetadata_getmetadata(make_server):
    server = make_server(extra=f'[imap]\nmetadata_admin = "{ADMIN}"\n')
    m = imaplib.IMAP4("127.0.0.1", server.imap)
    m.login("demo", "demo")
    typ, data = m.capability()
    assert "METADATA" in data[0].decode().upper().split()
    # RFC 5464 5: both are `command-auth`.
    imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
    imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))

    typ, _ = m._simple_command("SETMETADATA", "INBOX", '(/private/comment "Hello from imaplib")')
    assert typ == "OK"
    typ, data = m._simple_command("GETMETADATA", "INBOX", "/private/comment")
    assert typ == "OK"
    typ, data = m._untagged_response(typ, data, "METADATA")
    assert data == [b'INBOX (/private/comment "Hello from imaplib")']

    typ, data = m._simple_command("GETMETADATA", '""', "(/shared/admin /shared/comment)")
    typ, data = m._untagged_response(typ, data, "METADATA")
    assert data == [f'"" (/shared/admin "{ADMIN}" /shared/comment NIL)'.encode()]
    typ, data = m._simple_command("SETMETADATA", '""', '(/shared/admin "mailto:me@example.org")')
    assert typ == "NO" and data[0].startswith(b"[NOPERM]"), data

    # "Hello from imaplib" is 18 octets: over MAXSIZE 5, so left out and named in the OK.
    typ, data = m._simple_command("GETMETADATA", "INBOX", "(MAXSIZE 5)", "/private/comment")
    assert typ == "OK"
    typ, data = m._untagged_response(typ, data, "METADATA")
    assert data == [b"LONGENTRIES 18"]

    with pytest.raises(imaplib.IMAP4.error):
        m._simple_command("GETMETADATA", "INBOX", "/private//comment")
    typ, _ = m._simple_command("SETMETADATA", "INBOX", "(/private/comment NIL)")
    assert typ == "OK"
    typ, data = m._simple_command("GETMETADATA", "INBOX", "/private/comment")
    typ, data = m._untagged_response(typ, data, "METADATA")
    assert data == [b"INBOX (/private/comment NIL)"]
    m.logout()
