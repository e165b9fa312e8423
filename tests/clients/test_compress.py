"""COMPRESS=DEFLATE (RFC 4978) with a real client: Python's imaplib, which has no COMPRESS of its
own, taught it the usual way: after `COMPRESS DEFLATE` is answered OK, every write goes through
zlib.compressobj(wbits=-15) with a sync flush and every read through zlib.decompressobj(wbits=-15)
(raw DEFLATE, no zlib header). Over implicit TLS and after STARTTLS; content is checked byte for
byte and the compressed byte counts are compared with the plain sizes."""

import imaplib
import zlib

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class CompressMixin:
    """imaplib with COMPRESS=DEFLATE: overrides the three I/O primitives imaplib uses."""

    _z_out = None

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            self._z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._z_in = zlib.decompressobj(-15)
            self._z_buf = b""
            self.wire_in = 0
            self.wire_out = 0
        return typ, data

    def send(self, data):
        if self._z_out is None:
            return super().send(data)
        z = self._z_out.compress(data) + self._z_out.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(z)
        self.sock.sendall(z)

    def _z_fill(self):
        # read1 also hands over bytes the buffered file already read past the OK: the server
        # compresses from right after the OK's CRLF.
        chunk = self.file.read1(65536)
        if not chunk:
            raise self.abort("socket error: EOF")
        self.wire_in += len(chunk)
        self._z_buf += self._z_in.decompress(chunk)

    def read(self, size):
        if self._z_out is None:
            return super().read(size)
        while len(self._z_buf) < size:
            self._z_fill()
        data, self._z_buf = self._z_buf[:size], self._z_buf[size:]
        return data

    def readline(self):
        if self._z_out is None:
            return super().readline()
        while b"\n" not in self._z_buf:
            if len(self._z_buf) > imaplib._MAXLINE:
                raise self.error("got more than %d bytes" % imaplib._MAXLINE)
            self._z_fill()
        i = self._z_buf.index(b"\n") + 1
        line, self._z_buf = self._z_buf[:i], self._z_buf[i:]
        return line


class IMAP4Z(CompressMixin, imaplib.IMAP4):
    pass


class IMAP4Z_SSL(CompressMixin, imaplib.IMAP4_SSL):
    pass


def message(n, lines):
    words = ["the", "meeting", "moved", "to", "Thursday", "budget", "report", "attached",
             "regards", "numbers", "look", "fine"]
    body = "".join(
        "%05d %s\r\n" % (i, " ".join(words[(i * 7 + j * 3 + n) % len(words)] for j in range(12)))
        for i in range(lines)
    )
    return (
        "From: a@example.org\r\nTo: demo@example.org\r\nSubject: compressed %d\r\n"
        "Message-ID: <z%d@example.org>\r\n\r\n%s" % (n, n, body)
    ).encode()


def test_imaplib_over_implicit_tls_with_compress(server):
    m = IMAP4Z_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())
    m.login("demo", "demo")
    assert "COMPRESS=DEFLATE" in m.capabilities or b"COMPRESS=DEFLATE" in m.capability()[1][0]
    typ, data = m.compress()
    assert (typ, data) == ("OK", [b"DEFLATE active."])
    # A second COMPRESS is refused with the response code; the session stays compressed.
    assert m.compress() == ("NO", [b"[COMPRESSIONACTIVE] DEFLATE active via COMPRESS."])
    msgs = [message(1, 20), message(2, 30000), message(3, 2)]
    for msg in msgs:
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK" and b"APPENDUID" in data[0]
    sent = m.wire_out
    assert sent < sum(map(len, msgs)) // 2, sent
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])
    before = m.wire_in
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    bodies = [part[1] for part in data if isinstance(part, tuple)]
    assert bodies == msgs
    assert m.wire_in - before < sum(map(len, msgs)) // 2
    assert m.search(None, "SUBJECT", "compressed") == ("OK", [b"1 2 3"])
    assert m.logout()[0] == "BYE"


def test_imaplib_after_starttls_with_compress(server):
    m = IMAP4Z("127.0.0.1", server.imap)
    m.starttls(ssl_context=server.ssl_context())
    m.login("demo", "demo")
    assert m.compress()[0] == "OK"
    assert m.create("Projects")[0] == "OK"
    msg = message(7, 500)
    assert m.append("Projects", "(\\Seen)", None, msg)[0] == "OK"
    typ, data = m.status("Projects", "(MESSAGES)")
    assert typ == "OK" and data[0].endswith(b"(MESSAGES 1)")
    m.select("Projects")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"\\Seen" in data[0][0]
    assert data[0][1] == b"Subject: compressed 7\r\n\r\n"
    assert m.logout()[0] == "BYE"
