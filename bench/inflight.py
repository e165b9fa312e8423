#!/usr/bin/env python3
"""Memory of messages in flight (issue 14): a load script, not a timed test.

Starts the given mailcove binary (use a release build: bench/inflight does) on loopback ports
with a temporary config and mail directory, then:

1. opens IMAP_CONNS (200) logged-in IMAP connections, each sends 49 MB of a 50 MB APPEND literal
   and pauses; prints the server's RSS (VmRSS, and the peak VmHWM) from /proc/PID/status;
2. closes them (the partial messages must vanish from tmp/), then runs LMTP_CONNS (100)
   concurrent 10 MB LMTP deliveries: RSS with all of them paused just before the end of DATA,
   then after every delivery was acknowledged.

Target (issue 14): under 300 MB in both phases. Data is generated once (one 1 MiB buffer sent
again and again). The mail directory and the spool go to BENCH_DIR (default: the system temp
dir): about 10 GB of partial messages exist at once in phase 1.

Connection limits in the config used: max_connections_per_ip = 400 (default 200), 20 users so
that max_userip_connections stays at its default of 10 per user and address.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

MIB = 1024 * 1024
IMAP_CONNS = int(os.environ.get("IMAP_CONNS", "200"))
LITERAL = 50 * MIB
SENT = 49 * MIB
LMTP_CONNS = int(os.environ.get("LMTP_CONNS", "100"))
LMTP_SIZE = 10 * MIB
USERS = 20
# One buffer reused for every byte sent: 1 MiB of 64-byte CRLF lines (no line starts with '.').
LINE = b"0123456789 the quick brown fox jumps over the lazy dog 0123456\r\n"
BLOCK = LINE * (MIB // len(LINE))
assert len(BLOCK) == MIB


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields["VmRSS"], fields["VmHWM"]


def mb(kb_field):
    return int(kb_field.split()[0]) / 1024


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")

    def line(self):
        l = self.f.readline()
        if not l:
            raise EOFError("server closed the connection")
        return l.decode(errors="replace").rstrip("\r\n")

    def until(self, prefix):
        while True:
            l = self.line()
            if l.startswith(prefix):
                return l

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.f.close()
        self.s.close()


def start(bin_path, base):
    imap, lmtp = free_port(), free_port()
    with open(os.path.join(base, "users"), "w") as f:
        for i in range(USERS):
            f.write(f"bench{i}:{{PLAIN}}x::::::\n")
    config = f"""
[server]
hostname = "bench"
user = "nobody"
group = "nogroup"

[[listener]]
protocol = "imap"
address = "127.0.0.1:{imap}"
tls = "none"

[[listener]]
protocol = "lmtp"
address = "127.0.0.1:{lmtp}"

[mail]
location = "{base}/mail/%n"
fsync = false

[auth]
users_file = "{base}/users"
allow_plaintext_schemes = true

[limits]
max_connections_per_ip = 400

[logging]
level = "warn"
"""
    with open(os.path.join(base, "mailcove.toml"), "w") as f:
        f.write(config)
    os.chmod(base, 0o755)
    os.chmod(os.path.join(base, "users"), 0o644)
    log = open(os.path.join(base, "server.log"), "w")
    # The LMTP spool's unlinked files go here; the server runs as nobody.
    spool = os.path.join(base, "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o1777)
    env = dict(os.environ, MAILCOVE_LOG="info", TMPDIR=spool)
    child = subprocess.Popen(
        [bin_path, "serve", "--config", os.path.join(base, "mailcove.toml")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
    )
    deadline = time.time() + 30
    while "mailcove started" not in open(os.path.join(base, "server.log")).read():
        if child.poll() is not None or time.time() > deadline:
            sys.exit("mailcove did not start:\n" + open(os.path.join(base, "server.log")).read())
        time.sleep(0.05)
    return child, imap, lmtp


def imap_paused(port, i):
    c = Conn(port)
    c.line()
    c.send(f"l LOGIN bench{i % USERS} x\r\n".encode())
    ok = c.until("l ")
    assert ok.startswith("l OK"), ok
    c.send(f"a APPEND INBOX {{{LITERAL}}}\r\n".encode())
    cont = c.line()
    assert cont.startswith("+"), cont
    for _ in range(SENT // MIB):
        c.send(BLOCK)
    return c


def lmtp_paused(port, i):
    c = Conn(port)
    c.line()
    c.send(b"LHLO bench\r\n")
    c.until("250 ")
    c.send(f"MAIL FROM:<load@example.net>\r\nRCPT TO:<bench{i % USERS}>\r\nDATA\r\n".encode())
    for want in ("250", "250", "354"):
        l = c.line()
        assert l.startswith(want), l
    c.send(b"Subject: load\r\n\r\n")
    for _ in range(LMTP_SIZE // MIB - 1):
        c.send(BLOCK)
    c.send(BLOCK[: MIB - len(LINE)])
    return c


def lmtp_finish(c):
    c.send(LINE + b".\r\n")
    l = c.line()
    assert l.startswith("250"), l
    c.close()


def main():
    bin_path = sys.argv[1]
    base = tempfile.mkdtemp(prefix="mailcove-inflight-", dir=os.environ.get("BENCH_DIR"))
    child, imap, lmtp = start(bin_path, base)
    try:
        print(f"server pid {child.pid}; idle RSS {mb(rss(child.pid)[0]):.0f} MB")
        t = time.time()
        with ThreadPoolExecutor(16) as pool:
            conns = list(pool.map(lambda i: imap_paused(imap, i), range(IMAP_CONNS)))
        time.sleep(2)
        now, peak = rss(child.pid)
        print(f"IMAP: {IMAP_CONNS} connections each paused after {SENT // MIB} MB of a "
              f"{LITERAL // MIB} MB APPEND literal ({time.time() - t:.0f} s): "
              f"RSS {mb(now):.0f} MB, peak {mb(peak):.0f} MB")
        for c in conns:
            c.close()
        deadline = time.time() + 60
        def partial():
            mail = os.path.join(base, "mail")
            return sum(len(os.listdir(os.path.join(mail, u, "tmp")))
                       for u in os.listdir(mail) if os.path.isdir(os.path.join(mail, u, "tmp")))
        while partial() and time.time() < deadline:
            time.sleep(0.2)
        print(f"after disconnecting: {partial()} partial messages left in tmp/, "
              f"RSS {mb(rss(child.pid)[0]):.0f} MB")

        t = time.time()
        with ThreadPoolExecutor(16) as pool:
            conns = list(pool.map(lambda i: lmtp_paused(lmtp, i), range(LMTP_CONNS)))
        time.sleep(2)
        now, peak = rss(child.pid)
        print(f"LMTP: {LMTP_CONNS} concurrent {LMTP_SIZE // MIB} MB deliveries paused before "
              f"the end of DATA ({time.time() - t:.0f} s): RSS {mb(now):.0f} MB, "
              f"peak {mb(peak):.0f} MB")
        t = time.time()
        with ThreadPoolExecutor(LMTP_CONNS) as pool:
            list(pool.map(lmtp_finish, conns))
        now, peak = rss(child.pid)
        print(f"LMTP: all {LMTP_CONNS} delivered ({time.time() - t:.0f} s): "
              f"RSS {mb(now):.0f} MB, peak over the whole run {mb(peak):.0f} MB")
    finally:
        child.kill()
        child.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
