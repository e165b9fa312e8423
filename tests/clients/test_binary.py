"""FETCH BINARY (RFC 3516) through Python's imaplib, as a client that never heard of it would
send it: imaplib frames the `~{n}` literal8 of the answer like any literal."""

import imaplib

import pytest

MSG = (
    b"From: a@example.com\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9=\r\n!\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwBn\r\naGk=\r\n--b--\r\n"
)


def test_imaplib_fetches_decoded_parts(server):
    m = imaplib.IMAP4("127.0.0.1", server.imap)
    m.login("demo", "demo")
    typ, caps = m.capability()
    assert typ == "OK" and b"BINARY" in caps[0].split()
    typ, data = m.append("INBOX", None, None, MSG)
    assert typ == "OK"
    m.select("INBOX")
    # RFC 2045 6.7: =C3=A9 is é, "=" CRLF a soft line break.
    typ, data = m.fetch("1", "(BINARY.PEEK[1])")
    assert typ == "OK" and data[0][1] == "café!".encode()
    # NUL in the data: a literal8 (~{8}), which imaplib reads like any literal.
    typ, data = m.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2])")
    assert typ == "OK"
    assert data[0][0].endswith(b"BINARY[2] ~{8}")
    assert data[0][1] == b"\x00\x01\x02\x03\x00ghi"
    assert data[1] == b" BINARY.SIZE[2] 8)"
    # A plain literal must not carry NUL (only literal8 may, which imaplib cannot send).
    with pytest.raises(imaplib.IMAP4.error):
        m.append("INBOX", None, None, b"Subject: x\r\n\r\na\x00b\r\n")
    m.logout()
