"""IMAP with real clients over TLS: Python imaplib (incl. IDLE on a raw socket), IMAPClient, mbsync
syncing a local Maildir both ways, and curl. Each checks byte-exact content and counts."""

import email
import imaplib
import os
import pathlib
import socket
import ssl
import subprocess
import textwrap
import time

import imapclient

MSGS = [
    b"From: Alice <alice@example.org>\r\nTo: demo@example.org\r\nSubject: first\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
    b"Hello one.\r\n.leading dot line\r\n",
    b"From: Bob <bob@example.org>\r\nTo: demo@example.org\r\nSubject: =?UTF-8?B?w6Rwc3Rl?=\r\n"
    b"Date: Tue, 02 Jan 2024 11:00:00 +0000\r\nMessage-ID: <2@example.org>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nzweiter Teil\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQF\r\n--XX--\r\n",
]


def imaps(server):
    return imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())


def test_imaplib_append_fetch_search_store_copy_expunge(server):
    m = imaps(server)
    m.login("demo", "demo")
    for i, msg in enumerate(MSGS):
        typ, data = m.append("INBOX", "(\\Seen)" if i == 0 else None,
                             imaplib.Time2Internaldate(1700000000 + i), msg)
        assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"2"])
    typ, data = m.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    bodies = [part[1] for part in data if isinstance(part, tuple)]
    assert bodies == MSGS
    sizes = [int(part[0].split(b"RFC822.SIZE ")[1].split()[0]) for part in data if isinstance(part, tuple)]
    assert sizes == [len(m_) for m_ in MSGS]
    assert m.search(None, "UNSEEN") == ("OK", [b"2"])
    m.literal = "äpste".encode()
    assert m.search("UTF-8", "SUBJECT") == ("OK", [b"2"])
    assert m.search(None, "BODY", "zweiter") == ("OK", [b"2"])
    assert m.search(None, "FROM", "alice") == ("OK", [b"1"])
    typ, data = m.fetch("2", "(BODY.PEEK[2] BODYSTRUCTURE)")
    assert data[0][1] == b"AAECAwQF"
    assert b'("application" "octet-stream" NIL NIL NIL "base64" 8' in data[1] or \
        b'("application" "octet-stream" NIL NIL NIL "base64" 8' in data[0][0]
    typ, data = m.store("2", "+FLAGS", "(\\Flagged $Work)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Work" in data[0]
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert (typ, data) == ("OK", [b"1"])
    assert m.status("Archive", "(MESSAGES)") == ("OK", [b"Archive (MESSAGES 2)"])
    m.logout()


def test_idle_sees_an_append_from_another_session(server):
    ctx = server.ssl_context()
    raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.imaps)), server_hostname="localhost")
    raw.settimeout(20)
    f = raw.makefile("rb")

    def send(line):
        raw.sendall(line + b"\r\n")

    def until(tag):
        lines = []
        while True:
            line = f.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag):
                return lines

    f.readline()
    send(b"a LOGIN demo demo")
    until(b"a ")
    send(b"b SELECT INBOX")
    until(b"b OK")
    send(b"c IDLE")
    assert f.readline().startswith(b"+ ")
    other = imaps(server)
    other.login("demo", "demo")
    other.append("INBOX", None, None, MSGS[0])
    t = time.time()
    assert f.readline() == b"* 1 EXISTS\r\n"
    assert time.time() - t < 5
    send(b"DONE")
    assert until(b"c ")[-1].startswith(b"c OK")
    send(b"d LOGOUT")
    until(b"d ")
    other.logout()


def test_imapclient_folders_fetch_and_move(server):
    c = imapclient.IMAPClient("127.0.0.1", port=server.imaps, ssl=True, ssl_context=server.ssl_context())
    c.login("demo", "demo")
    folders = {f[2] for f in c.list_folders()}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= folders
    assert c.find_special_folder(b"\\Sent") == "Sent"
    c.create_folder("Projekte/Übersicht")
    assert "Projekte/Übersicht" in {f[2] for f in c.list_folders()}
    c.append("Projekte/Übersicht", MSGS[1], flags=[b"\\Draft"])
    c.select_folder("Projekte/Übersicht")
    [uid] = c.search(["ALL"])
    got = c.fetch([uid], ["BODY.PEEK[]", "FLAGS", "ENVELOPE"])[uid]
    assert got[b"BODY[]"] == MSGS[1]
    assert b"\\Draft" in got[b"FLAGS"]
    assert got[b"ENVELOPE"].subject == b"=?UTF-8?B?w6Rwc3Rl?="
    c.move([uid], "INBOX")
    assert c.search(["ALL"]) == []
    assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 1
    c.logout()


def write_mbsync_config(server, local, path):
    path.write_text(textwrap.dedent(f"""\
        IMAPAccount test
        Host localhost
        Port {server.imaps}
        User demo
        Pass demo
        SSLType IMAPS
        CertificateFile {server.cert}

        IMAPStore remote
        Account test

        MaildirStore local
        Path {local}/
        Inbox {local}/INBOX
        SubFolders Verbatim

        Channel sync
        Far :remote:
        Near :local:
        Patterns *
        Create Both
        Expunge Both
        SyncState *
        """))


def maildir_messages(folder):
    out = {}
    for sub in ("cur", "new"):
        d = folder / sub
        if d.is_dir():
            for p in d.iterdir():
                out[p.name] = p.read_bytes()
    return out


def canonical(msg):
    """mbsync stores local copies with LF line ends and adds an X-TUID header to track
    uploads; those are its own changes. Everything else must be byte-identical."""
    lines = msg.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(b"X-TUID: "))


def run_mbsync(cfg):
    r = subprocess.run(["mbsync", "-c", str(cfg), "-a"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_mbsync_syncs_both_ways_and_a_second_run_changes_nothing(server, tmp_path):
    m = imaps(server)
    m.login("demo", "demo")
    for msg in MSGS:
        m.append("INBOX", None, None, msg)
    m.logout()
    local = tmp_path / "mail"
    local.mkdir()
    cfg = tmp_path / "mbsyncrc"
    write_mbsync_config(server, local, cfg)
    run_mbsync(cfg)
    pulled = sorted(canonical(v) for v in maildir_messages(local / "INBOX").values())
    assert pulled == sorted(canonical(v) for v in MSGS)
    # A message written locally goes up to the server.
    new = b"From: me@example.org\r\nSubject: from mbsync\r\n\r\nlocal\r\n"
    (local / "INBOX" / "new" / "1700000000.1.local").write_bytes(new)
    run_mbsync(cfg)
    m = imaps(server)
    m.login("demo", "demo")
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    on_server = [part[1] for part in data if isinstance(part, tuple)]
    # The messages that came from the server are untouched there.
    assert on_server[:2] == MSGS
    assert canonical(on_server[2]) == canonical(new)
    m.logout()
    # Nothing changed on either side, so a further run changes nothing anywhere.
    def server_state():
        m = imaps(server)
        m.login("demo", "demo")
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(UID FLAGS)")
        m.logout()
        return data

    before_local = maildir_messages(local / "INBOX")
    before_server = server_state()
    run_mbsync(cfg)
    assert maildir_messages(local / "INBOX") == before_local
    assert server_state() == before_server
    assert len(before_server) == 3


def test_curl_fetches_a_message_and_lists_mailboxes(server):
    m = imaps(server)
    m.login("demo", "demo")
    m.append("INBOX", None, None, MSGS[0])
    m.logout()
    base = f"imaps://localhost:{server.imaps}"
    common = ["curl", "-sS", "--cacert", server.cert, "-u", "demo:demo"]
    listing = subprocess.run(common + [base + "/"], capture_output=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    names = [line.rsplit(b" ", 1)[-1].strip(b'"') for line in listing.stdout.splitlines()]
    assert b"INBOX" in names and b"Sent" in names
    body = subprocess.run(common + [base + "/INBOX;UID=1"], capture_output=True, timeout=30)
    assert body.returncode == 0, body.stderr
    assert body.stdout == MSGS[0]


def test_imaplib_fetch_preview(server):
    """RFC 8970 PREVIEW through imaplib: CAPABILITY names it; PREVIEW (LAZY) is NIL before the
    preview was made; PREVIEW makes it (quoted line left out, a literal since it is not ASCII);
    then PREVIEW (LAZY) has it."""
    m = imaps(server)
    m.login("demo", "demo")
    typ, data = m.capability()
    assert typ == "OK" and b"PREVIEW" in data[0].split()
    msg = ("Subject: preview\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Gr\u00fc\u00dfe,\r\n> zitiert\r\nbis bald\r\n").encode()
    typ, _ = m.append("INBOX", None, None, msg)
    assert typ == "OK"
    m.select("INBOX")
    assert m.fetch("1", "(PREVIEW (LAZY))") == ("OK", [b"1 (PREVIEW NIL)"])
    want = "Gr\u00fc\u00dfe, bis bald".encode()
    typ, data = m.fetch("1", "(PREVIEW)")
    assert typ == "OK"
    assert data[0] == (b"1 (PREVIEW {%d}" % len(want), want)
    typ, data = m.fetch("1", "(UID PREVIEW (LAZY))")
    assert typ == "OK"
    assert data[0] == (b"1 (UID 1 PREVIEW {%d}" % len(want), want)
    m.logout()


def test_imaplib_utf8_accept_names_envelope_and_search(server):
    """RFC 6855 with imaplib's own UTF8=ACCEPT mode (enable() switches it to UTF-8): names are
    UTF-8 quoted strings, ENVELOPE carries the raw UTF-8 headers, SEARCH takes UTF-8 without
    CHARSET; a legacy imaplib session sees modified UTF-7 and a 7-bit ENVELOPE."""
    msg = ("From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n"
           "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHallo\r\n").encode()
    legacy = imaps(server)
    legacy.login("demo", "demo")
    assert legacy.append("INBOX", None, None, msg)[0] == "OK"
    m = imaps(server)
    m.login("demo", "demo")
    assert b"UTF8=ACCEPT" in m.capability()[1][0].split()
    typ, data = m.enable("UTF8=ACCEPT")
    assert typ == "OK" and m.utf8_enabled, data
    assert m.create('"Entwürfe"')[0] == "OK"
    typ, data = m.list('""', '"Entw*"')
    assert data == ['(\\HasNoChildren) "/" "Entwürfe"'.encode()], data
    typ, data = legacy.list('""', "Entw*")
    assert data == [b'(\\HasNoChildren) "/" Entw&APw-rfe'], data
    assert m.select("INBOX", readonly=True)[0] == "OK"
    typ, data = m.fetch("1", "ENVELOPE")
    # 8-bit strings come as literals: imaplib returns (prefix, literal) pairs.
    flat = b"".join(p if isinstance(p, bytes) else b"".join(p) for p in data)
    assert "Grüße".encode() in flat and "bücher.example".encode() in flat, data
    typ, data = m.search(None, 'SUBJECT "Grüße"')
    assert data == [b"1"], data
    assert legacy.select("INBOX", readonly=True)[0] == "OK"
    typ, data = legacy.fetch("1", "ENVELOPE")
    assert all(b < 0x80 for b in data[0]), data
    assert b"=?utf-8?b?R3LDvMOfZQ==?=" in data[0], data
    m.logout()
    legacy.logout()
