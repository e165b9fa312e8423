"""Roundcube's own IMAP library (rcube_imap_generic from Debian's roundcube-core, run with
php-cli) sorting and threading on mailcove the way the webmail's message list does.

The corpus is five hand-written messages; every expected order below is worked out by hand from
RFC 5256 (base subjects, sent dates in UTC, first addresses, References chains) and written in
the comments, never read back from the server.
"""

import imaplib
import json
import os
import pathlib
import subprocess

ROUNDCUBE_LIB = os.environ.get("ROUNDCUBE_LIB") or str(
    pathlib.Path(__file__).resolve().parents[2]
    / "target" / "roundcube" / "usr" / "share" / "roundcube" / "program" / "lib" / "Roundcube"
)
DRIVER = str(pathlib.Path(__file__).resolve().parent / "roundcube_client.php")


def message(date, subject, sender, msgid, refs=None):
    lines = [
        f"Date: {date}",
        f"From: {sender}",
        "To: Alice <alice@example.org>",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
    ]
    if refs:
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
        lines.append(f"In-Reply-To: <{refs[-1]}>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", "Hello.", ""]
    return "\r\n".join(lines).encode()


# UID: (sent date, subject, from, Message-ID, References)
CORPUS = [
    # 1: sent 2023-01-02 10:00Z, base subject "meeting", thread root.
    message("Mon, 2 Jan 2023 10:00:00 +0000", "Meeting", "Zed Zulu <zed@example.org>", "a@x"),
    # 2: sent 2023-01-01 09:00Z (the earliest), a reply to 1.
    message("Sun, 1 Jan 2023 09:00:00 +0000", "Re: Meeting", "Bob <bob@example.org>", "b@x",
            ["a@x"]),
    # 3: sent 2023-01-03 07:00Z (08:00 +0100); "[list] " is a subj-blob, base "agenda".
    message("Tue, 3 Jan 2023 08:00:00 +0100", "[list] Agenda", "alice <alice@example.org>",
            "c@x"),
    # 4: sent 2023-01-04 05:00Z (00:00 -0500); a forward (no References) of base "agenda".
    message("Wed, 4 Jan 2023 00:00:00 -0500", "Fwd: Agenda", "carol@example.org", "d@x"),
    # 5: sent 2023-01-05 12:00Z; a reply to 2 (References a@x b@x).
    message("Thu, 5 Jan 2023 12:00:00 +0000", "Re: Re: Meeting", "Bob <bob@example.org>", "e@x",
            ["a@x", "b@x"]),
]


def run_roundcube(server):
    out = subprocess.run(
        ["php", DRIVER, ROUNDCUBE_LIB, "127.0.0.1", str(server.imap), "demo", "demo", "INBOX"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(out.stdout)


def test_roundcube_sorts_and_threads_the_message_list(server):
    c = imaplib.IMAP4("127.0.0.1", server.imap)
    c.login("demo", "demo")
    sizes = []
    for i, m in enumerate(CORPUS):
        # INTERNALDATE rises with the UID, so ARRIVAL is append order.
        when = imaplib.Time2Internaldate(1700000000 + 60 * i)
        typ, _ = c.append("INBOX", None, when, m)
        assert typ == "OK"
        sizes.append(len(m))
    c.logout()

    got = run_roundcube(server)
    for cap in ["SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
                "THREAD=REFS", "ESORT", "CONTEXT=SORT", "I18NLEVEL=1", "WITHIN"]:
        assert cap in got["capabilities"], cap

    sort = got["sort"]
    assert sort["ARRIVAL"] == [1, 2, 3, 4, 5]
    # Sent dates in UTC: 2 (01-01), 1 (01-02), 3 (01-03 07:00Z), 4 (01-04 05:00Z), 5 (01-05).
    assert sort["DATE"] == [2, 1, 3, 4, 5]
    # Base subjects: agenda (3, 4), meeting (1, 2, 5); ties by sequence number.
    assert sort["SUBJECT"] == [3, 4, 1, 2, 5]
    # Roundcube asks DISPLAYFROM when SORT=DISPLAY is offered: "alice", "Bob" (2, 5),
    # "carol@example.org" (no display name: the address), "Zed Zulu", compared case-blind.
    assert sort["FROM"] == [3, 2, 5, 4, 1]
    # Every To is the same, no Cc at all: sequence order.
    assert sort["TO"] == [1, 2, 3, 4, 5]
    assert sort["CC"] == [1, 2, 3, 4, 5]
    assert sort["SIZE"] == sorted(range(1, 6), key=lambda uid: (sizes[uid - 1], uid))

    thread = got["thread"]
    # REFERENCES: 1 -> 2 -> 5 by References; 4 has none but its base subject "agenda" equals
    # root 3's and it is a forward while 3 is not, so the subject merge makes it 3's child.
    # Roots by date: 1 (01-02) before 3 (01-03).
    assert thread["REFERENCES"] == {"1": {"2": {"5": []}}, "3": {"4": []}}
    # ORDEREDSUBJECT: by base subject, earliest first as parent, the rest its children by
    # date; threads by their first message's date: meeting (2, 01-01) before agenda (3).
    assert thread["ORDEREDSUBJECT"] == {"2": {"1": [], "5": []}, "3": {"4": []}}
    # REFS (Dovecot's): REFERENCES without the subject merge, threads ordered by their newest
    # message: 3 (01-03), 4 (01-04), then 1's thread (newest 5, 01-05).
    assert thread["REFS"] == {"3": [], "4": [], "1": {"2": {"5": []}}}
    # The trees above compare as dicts; the order of threads is checked here.
    order = got["thread_order"]
    assert order["REFERENCES"] == [1, 2, 5, 3, 4]
    assert order["ORDEREDSUBJECT"] == [2, 1, 5, 3, 4]
    assert order["REFS"] == [3, 4, 1, 2, 5]
    assert got["search_count"] == 5
