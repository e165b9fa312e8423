"""Starts the real mailcove binary for the real-client tests (imaplib, poplib, fetchmail, ...).

Each test gets a fresh server in a temporary directory: free loopback ports, a self-signed
certificate made with openssl, a users file with argon2id hashes made by `mailcove hash-password`.
"""

import os
import pathlib
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("MAILCOVE_BIN") or str(
    pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "mailcove"
)

CHEAP_AUTH = """
[auth]
users_file = "{dir}/users"
failure_delay_ms = 50
failure_delay_max_ms = 200
argon2_m_cost_kib = 64
argon2_t_cost = 1
argon2_p_cost = 1
"""


_GIVEN = set()


# Where ports are drawn from: below Linux's ephemeral range (32768 and up), which the kernel hands
# out for bind(0) and every outgoing connection, and below the Rust suites' 15000-32000
# (tests/common/port.rs), which tests/run-all runs beside these tests.
PORTS = range(10000, 15000)


def free_port():
    """A free loopback port, never one already handed out in this run. Drawn at random outside
    the ephemeral range: a port probed there can be taken by another process's outgoing connection
    before the server binds it ("Address already in use")."""
    while True:
        port = random.choice(PORTS)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


class Server:
    def __init__(self, users=(("demo", "demo"),), extra=""):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mailcove-client-"))
        os.chmod(self.dir, 0o755)
        self.imap, self.imaps, self.pop3, self.pop3s = (free_port() for _ in range(4))
        d = self.dir
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
            check=True, capture_output=True,
        )
        os.chmod(d / "key.pem", 0o644)
        self.cert = str(d / "cert.pem")
        auth = CHEAP_AUTH.format(dir=d)
        (d / "hash.toml").write_text(
            f'[[listener]]\nprotocol = "imap"\naddress = "127.0.0.1:1"\ntls = "none"\n{auth}'
        )
        lines = []
        for name, pw in users:
            h = subprocess.run([BIN, "hash-password", "--config", str(d / "hash.toml")],
                               input=pw + "\n", capture_output=True, text=True, check=True)
            lines.append(f"{name}:{h.stdout.strip()}::::::")
        (d / "users").write_text("\n".join(lines) + "\n")
        os.chmod(d / "users", 0o644)
        cfg = f"""
[server]
hostname = "localhost"
user = "nobody"
group = "nogroup"
shutdown_grace_secs = 3

[[listener]]
protocol = "imap"
address = "127.0.0.1:{self.imap}"
tls = "starttls"

[[listener]]
protocol = "imap"
address = "127.0.0.1:{self.imaps}"
tls = "implicit"

[[listener]]
protocol = "pop3"
address = "127.0.0.1:{self.pop3}"
tls = "starttls"

[[listener]]
protocol = "pop3"
address = "127.0.0.1:{self.pop3s}"
tls = "implicit"

[tls]
certificate = "{d}/cert.pem"
key = "{d}/key.pem"

[mail]
location = "{d}/mail/%n"
{auth}
{extra.replace("$DIR", str(d))}
"""
        (d / "mailcove.toml").write_text(cfg)
        self.log_path = d / "server.log"
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, MAILCOVE_LOG="debug")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(self.dir / "mailcove.toml")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "w"), env=env,
        )
        deadline = time.time() + 30
        while "mailcove started" not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError("mailcove exited:\n" + self.log())
            if time.time() > deadline:
                raise RuntimeError("mailcove did not start:\n" + self.log())
            time.sleep(0.02)

    def log(self):
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def maildir(self, user="demo"):
        return self.dir / "mail" / user

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.cleanup()


@pytest.fixture
def make_server():
    made = []

    def make(**kw):
        s = Server(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
