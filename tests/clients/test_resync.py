"""A real client resynchronising with CONDSTORE/QRESYNC (RFC 7162), issue 15: imapflow (npm,
tests/clients/resync/) opens INBOX and saves UIDVALIDITY and HIGHESTMODSEQ; while it is away a
second session (imaplib) changes flags, expunges and appends; imapflow reconnects with
`SELECT INBOX (QRESYNC (uidvalidity modseq))` and must learn exactly what changed, without
refetching every message.

tests/run-all installs imapflow with `npm ci` in tests/clients/resync (pinned by its
package-lock.json)."""

import imaplib
import json
import pathlib
import re
import subprocess

RESYNC = pathlib.Path(__file__).resolve().parent / "resync"

MESSAGES = 20
# Disjoint sets of UIDs (the mailbox gets UIDs 1..MESSAGES in order).
FLAGGED = {2, 5, 11}  # +FLAGS (\Flagged $Work)
UNSEEN = {3, 17}  # -FLAGS (\Seen)
EXPUNGED = {4, 9, 10, 18}


def flags_of(flags):
    """Sorted flags without \\Recent, which depends on which session selected first."""
    return sorted(f for f in flags if f.lower() != "\\recent")


def message(i):
    return (f"From: Alice <alice@example.org>\r\nTo: demo@example.org\r\nSubject: resync {i}\r\n"
            f"Message-ID: <resync.{i}@example.org>\r\n\r\nbody {i}\r\n").encode()


def imapflow(server, **state):
    assert (RESYNC / "node_modules" / "imapflow").is_dir(), (
        "imapflow is not installed: run `npm ci --prefix tests/clients/resync` (tests/run-all does)")
    args = dict(port=server.imaps, ca=server.cert, user="demo", pass_="demo", **state)
    args["pass"] = args.pop("pass_")
    r = subprocess.run(["node", str(RESYNC / "resync.mjs"), json.dumps(args)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def imapflow_watch(server, expunges, flags, act):
    """imapflow in IDLE on INBOX; `act()` runs once the server accepted IDLE."""
    args = dict(port=server.imaps, ca=server.cert, user="demo",
                watch=dict(expunges=expunges, flags=flags))
    args["pass"] = "demo"
    p = subprocess.Popen(["node", str(RESYNC / "resync.mjs"), json.dumps(args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = p.stdout.readline()
        assert ready == "READY\n", ready + p.stderr.read()
        act()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    return json.loads(out)


def imaplib_session(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.ssl_context())
    m.login("demo", "demo")
    return m


def server_state(server):
    """UID -> sorted flags, as a plain full fetch sees it."""
    m = imaplib_session(server)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    m.logout()
    out = {}
    for line in data:
        got = re.match(rb"\d+ \((?=.*UID (\d+))(?=.*FLAGS \(([^)]*)\))", line)
        assert got, line
        out[int(got[1])] = flags_of(got[2].decode().split())
    return out


def test_imapflow_resyncs_flags_expunges_and_new_mail_with_qresync(server):
    m = imaplib_session(server)
    for i in range(1, MESSAGES + 1):
        typ, _ = m.append("INBOX", "(\\Seen)", None, message(i))
        assert typ == "OK"
    m.logout()

    first = imapflow(server)
    assert "QRESYNC" in first["capabilities"] and "CONDSTORE" in first["capabilities"]
    assert "QRESYNC" in first["enabled"], first["enabled"]
    assert first["highestModseq"] is not None and first["uidValidity"] is not None
    saved = {int(uid): flags_of(flags) for uid, flags in first["messages"].items()}
    assert sorted(saved) == list(range(1, MESSAGES + 1))
    assert all(flags == ["\\Seen"] for flags in saved.values())

    # While imapflow is away, another session changes, expunges and appends.
    m = imaplib_session(server)
    m.select("INBOX")
    uids = lambda s: ",".join(str(u) for u in sorted(s))
    assert m.uid("STORE", uids(FLAGGED), "+FLAGS.SILENT", "(\\Flagged $Work)")[0] == "OK"
    assert m.uid("STORE", uids(UNSEEN), "-FLAGS.SILENT", "(\\Seen)")[0] == "OK"
    assert m.uid("STORE", uids(EXPUNGED), "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    typ, data = m.append("INBOX", None, None, message(MESSAGES + 1))
    assert typ == "OK"
    new_uid = MESSAGES + 1
    assert f"APPENDUID {first['uidValidity']} {new_uid}".encode() in data[0]
    m.logout()

    again = imapflow(server, uidValidity=first["uidValidity"],
                     highestModseq=first["highestModseq"])
    # The server accepted the QRESYNC parameters (same UIDVALIDITY, HIGHESTMODSEQ sent).
    assert again["qresync"] is True, again
    assert again["uidValidity"] == first["uidValidity"]
    assert int(again["highestModseq"]) > int(first["highestModseq"])
    # RFC 7162 3.2.5.1: the expunges arrive as VANISHED (EARLIER), UIDs only.
    assert sorted(v["uid"] for v in again["vanished"]) == sorted(EXPUNGED), again["vanished"]
    assert all(v["earlier"] for v in again["vanished"]), again["vanished"]
    # ...and the flag changes (and the new message, whose modseq is also newer) as FETCHes.
    want_flags = {}
    for uid in FLAGGED:
        want_flags[uid] = sorted(["\\Seen", "\\Flagged", "$Work"])
    for uid in UNSEEN:
        want_flags[uid] = []
    want_flags[new_uid] = []
    got_flags = {int(uid): flags_of(flags) for uid, flags in again["flags"].items()}
    assert got_flags == want_flags
    # Nothing was refetched: one FETCH per changed message, no FETCH command from the client.
    assert again["serverFetchLines"] == len(want_flags), again
    assert not [c for c in again["clientCommands"] if re.search(r"\bFETCH\b", c)], again

    # The client's resynchronised view is the server's state.
    view = {uid: flags for uid, flags in saved.items() if uid not in EXPUNGED}
    view.update(got_flags)
    assert view == server_state(server)
    assert again["exists"] == len(view)


def test_imapflow_in_idle_is_told_vanished_and_modseq_once_qresync_is_enabled(server):
    """RFC 7162 3.2.10.2: with QRESYNC enabled, an expunge by another session reaches an IDLE
    client as VANISHED (no EARLIER, it counts against EXISTS), and flag changes as FETCH with
    UID."""
    m = imaplib_session(server)
    for i in range(1, 6):
        assert m.append("INBOX", None, None, message(i))[0] == "OK"
    m.logout()

    def act():
        o = imaplib_session(server)
        o.select("INBOX")
        assert o.uid("STORE", "2", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
        assert o.uid("STORE", "3,4", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert o.expunge()[0] == "OK"
        o.logout()

    got = imapflow_watch(server, expunges=2, flags=1, act=act)
    assert got["complete"] is True, got
    assert "QRESYNC" in got["enabled"], got["enabled"]
    assert sorted(v["uid"] for v in got["vanished"]) == [3, 4], got["vanished"]
    assert all(v["vanished"] and not v["earlier"] for v in got["vanished"]), got["vanished"]
    flags = {int(uid): flags_of(f) for uid, f in got["flags"].items()}
    # The \Deleted on 3 and 4 may be told before they vanish (mailcove) or not (Dovecot, when
    # the expunge is already done by the time it looks): both are correct.
    assert {uid: f for uid, f in flags.items() if uid not in (3, 4)} == {2: ["\\Flagged"]}
    assert all(flags[uid] == ["\\Deleted"] for uid in (3, 4) if uid in flags), flags
    assert got["exists"] == 3
