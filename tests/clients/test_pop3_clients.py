"""Real POP3 clients against the running binary: Python poplib (plain, STLS, implicit TLS),
fetchmail (with and without `keep`), getmail6 and mpop.

Each test delivers mail into the user's Maildir the way an MTA does (tmp/ then rename into new/),
lets the client download it, then checks the messages the client wrote to disk, what the server's
deletion policy did to the files on the server, and that a second run downloads nothing new.
"""

import os
import pathlib
import poplib
import pwd
import subprocess
import time

import pytest

SEQ = [0]


def login_once(server):
    """Logs in once so the server creates the Maildir with its own owner."""
    p = poplib.POP3("127.0.0.1", server.pop3)
    p.user("demo")
    p.pass_("demo")
    p.quit()


def deliver(server, data, user="demo"):
    root = server.maildir(user)
    SEQ[0] += 1
    name = f"{int(time.time())}.M{SEQ[0]}P{os.getpid()}.clienttest"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    st = root.stat()
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, root / "new" / name)
    return name


def stored(server, user="demo"):
    """{base name: maildir flags} of the user's INBOX on the server."""
    out = {}
    for sub in ("new", "cur"):
        for p in (server.maildir(user) / sub).iterdir():
            base, _, flags = p.name.partition(":2,")
            out[base] = flags
    return out


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf(data):
    return data.replace(b"\r\n", b"\n")


def sample_messages(tag):
    return [
        f"From: alice@example.org\nTo: demo@example.org\nSubject: {tag} plain\n"
        f"Message-ID: <{tag}-1@example.org>\n\nfirst body {tag}\n".encode(),
        f"From: bob@example.org\r\nTo: demo@example.org\r\nSubject: {tag} dots\r\n"
        f"Message-ID: <{tag}-2@example.org>\r\n\r\n.\r\n..two\r\n.three {tag}\r\n".encode(),
        f"From: carol@example.org\nTo: demo@example.org\nSubject: {tag} 8bit\n"
        f"Message-ID: <{tag}-3@example.org>\nContent-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln {tag}\n".encode(),
    ]


def files_in(directory):
    d = pathlib.Path(directory)
    return sorted(p for p in d.rglob("*") if p.is_file())


def assert_each_written_once(out_files, messages):
    """Every message is in exactly one output file, byte for byte apart from line ends and headers
    the client prepends (Received:, Delivered-To:, Return-Path:)."""
    bodies = [lf(p.read_bytes()) for p in out_files]
    assert len(bodies) == len(messages), [b[:200] for b in bodies]
    for m in messages:
        hits = [b for b in bodies if b.endswith(lf(m))]
        assert len(hits) == 1, (m, [b[:300] for b in bodies])


# ---------- Python poplib ----------


def test_poplib_stls_full_session_sizes_and_deletion(server):
    login_once(server)
    msgs = sample_messages("poplib")
    names = [deliver(server, m) for m in msgs]
    p = poplib.POP3("127.0.0.1", server.pop3)
    caps = p.capa()
    for want in ("STLS", "TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
        assert want in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    p.stls(context=server.ssl_context())
    assert "STLS" not in p.capa()
    p.user("demo")
    assert p.pass_("demo") == b"+OK Logged in, 3 messages."
    count, total = p.stat()
    assert count == 3 and total == sum(len(crlf(m)) for m in msgs)
    _, listing, _ = p.list()
    sizes = [int(line.split()[1]) for line in listing]
    for n, m in enumerate(msgs, start=1):
        resp, lines, octets = p.retr(n)
        assert resp == f"+OK {sizes[n - 1]} octets".encode()
        # poplib un-stuffs and counts each line with its CRLF: exactly the announced size.
        assert octets == sizes[n - 1]
        assert b"\r\n".join(lines) + b"\r\n" == crlf(m)
    _, uidls, _ = p.uidl()
    assert len({u.split()[1] for u in uidls}) == 3
    assert p.uidl(2).split()[2] == uidls[1].split()[1]
    _, top, _ = p.top(2, 1)
    assert top[-2:] == [b"", b"."]  # the body's first line is "." (stuffed on the wire)
    p.dele(1)
    with pytest.raises(poplib.error_proto, match=r"Message 1 is deleted"):
        p.retr(1)
    p.rset()
    for n in (1, 2, 3):
        p.dele(n)
    assert p.quit().startswith(b"+OK")
    assert stored(server) == {}, names
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    p.user("demo")
    p.pass_("demo")
    assert p.stat() == (0, 0)
    p.quit()


def test_poplib_pop3s_uidls_are_stable_and_in_use_is_reported(server):
    login_once(server)
    for m in sample_messages("stable"):
        deliver(server, m)
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    p.user("demo")
    p.pass_("demo")
    first = p.uidl()[1]
    q = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    q.user("demo")
    with pytest.raises(poplib.error_proto) as e:
        q.pass_("demo")
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    q.quit()
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=server.ssl_context())
    p.user("demo")
    p.pass_("demo")
    assert p.uidl()[1] == first
    p.quit()


# ---------- fetchmail ----------


def run_fetchmail(server, tmp_path, keep, transport):
    out = tmp_path / "fetched"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "{out}/msg.$$.$(date +%s%N)"\n')
    mda.chmod(0o755)
    # fetchmail negotiates STLS itself when sslproto is given without ssl.
    if transport == "stls":
        port, tls = server.pop3, "sslproto tls1.2+"
    else:
        port, tls = server.pop3s, "ssl"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'set no bouncemail\nset idfile "{tmp_path}/fetchids"\n'
        f"poll localhost via 127.0.0.1 protocol pop3 port {port} uidl timeout 30\n"
        f'  user "demo" there with password "demo" is "root" here\n'
        f'  {tls} sslcertck sslcertfile "{server.cert}" sslcommonname "localhost"\n'
        f'  {"keep" if keep else "nokeep"} norewrite\n'
        f'  mda "{mda}"\n'
    )
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(tmp_path), HOME=str(tmp_path))
    r = subprocess.run(
        ["fetchmail", "--nodetach", "--nosyslog", "--invisible", "-f", str(rc)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    return r, out


@pytest.mark.parametrize("keep,transport", [(False, "stls"), (True, "pop3s")])
def test_fetchmail(server, tmp_path, keep, transport):
    login_once(server)
    msgs = sample_messages(f"fetchmail-{keep}")
    for m in msgs:
        deliver(server, m)
    r, out = run_fetchmail(server, tmp_path, keep, transport)
    assert r.returncode == 0, r.stdout + r.stderr
    written = files_in(out)
    assert_each_written_once(written, msgs)
    on_server = stored(server)
    if keep:
        # Left on the server untouched: with keep, fetchmail reads by TOP n 99999999, not RETR,
        # so not even \Seen is set.
        assert len(on_server) == 3 and all(f == "" for f in on_server.values()), on_server
    else:
        assert on_server == {}
    # Second run: nothing new (exit code 1 is fetchmail's "no mail").
    r, out = run_fetchmail(server, tmp_path, keep, transport)
    assert r.returncode == 1, r.stdout + r.stderr
    assert files_in(out) == written


# ---------- getmail6 ----------


def run_getmail(server, tmp_path, delete):
    gdir = tmp_path / "getmail"
    # Under the server's directory (0755), which a delivery as nobody can reach; tmp_path is 0700.
    dest = server.dir / "getmail-Maildir"
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    gdir.mkdir(exist_ok=True)
    # getmail refuses to deliver as root: deliver as nobody into a Maildir nobody owns.
    as_user = ""
    if os.geteuid() == 0:
        as_user = "user = nobody\n"
        nobody = pwd.getpwnam("nobody")
        for p in [dest, *dest.iterdir()]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    (gdir / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\n"
        f"port = {server.pop3s}\nusername = demo\npassword = demo\nca_certs = {server.cert}\n\n"
        f"[destination]\ntype = Maildir\npath = {dest}/\n{as_user}\n"
        f"[options]\nverbose = 0\nread_all = false\ndelete = {str(delete).lower()}\n"
        "delivered_to = false\nreceived = false\n"
    )
    r = subprocess.run(
        ["getmail", "--getmaildir", str(gdir), "--rcfile", "getmailrc"],
        capture_output=True, text=True, timeout=120,
    )
    return r, dest


def test_getmail6_into_a_maildir_with_the_keep_policy_on_the_server(make_server, tmp_path):
    server = make_server(extra='[pop3]\ndelete_policy = "keep"\n')
    login_once(server)
    msgs = sample_messages("getmail")
    for m in msgs:
        deliver(server, m)
    r, dest = run_getmail(server, tmp_path, delete=True)
    assert r.returncode == 0, r.stdout + r.stderr
    written = files_in(dest)
    assert_each_written_once(written, msgs)
    # The client deleted them; the server's keep policy kept them as \Deleted \Seen for IMAP.
    on_server = stored(server)
    assert len(on_server) == 3 and all("S" in f and "T" in f for f in on_server.values())
    r, dest = run_getmail(server, tmp_path, delete=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_in(dest) == written


# ---------- mpop ----------


def run_mpop(server, tmp_path, keep):
    dest = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "mpoprc"
    conf.write_text(
        "account default\nhost localhost\n"
        f"port {server.pop3}\ntls on\ntls_starttls on\ntls_trust_file {server.cert}\n"
        "auth user\nuser demo\npassword demo\n"
        f"keep {'on' if keep else 'off'}\ndelivery maildir {dest}\n"
        f"uidls_file {tmp_path}/mpop_uidls\n"
    )
    conf.chmod(0o600)
    r = subprocess.run(
        ["mpop", "-C", str(conf), "--quiet"], capture_output=True, text=True, timeout=120,
    )
    return r, dest


@pytest.mark.parametrize("keep", [False, True])
def test_mpop_into_a_maildir(server, tmp_path, keep):
    login_once(server)
    msgs = sample_messages(f"mpop-{keep}")
    for m in msgs:
        deliver(server, m)
    r, dest = run_mpop(server, tmp_path, keep)
    assert r.returncode == 0, r.stdout + r.stderr
    written = files_in(dest)
    assert_each_written_once(written, msgs)
    on_server = stored(server)
    if keep:
        assert len(on_server) == 3 and all("T" not in f for f in on_server.values())
    else:
        assert on_server == {}
    r, dest = run_mpop(server, tmp_path, keep)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_in(dest) == written
