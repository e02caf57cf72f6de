"""A real Dovecot (IMAP and POP3) on 127.0.0.1 for tests: its own instance, never the system's.

`DovecotServer.start()` writes a complete configuration into a directory of its own (no
include of /etc/dovecot) and runs `dovecot -F -c CONF` in the foreground as a child process.
Four listeners, each on a free loopback port:

- `imap_port`: IMAP, STARTTLS offered, plain-text login allowed (as a careless server does);
- `imaps_port`: IMAP with TLS from the first byte;
- `pop3_port`: POP3, STLS offered, plain-text login allowed;
- `pop3s_port`: POP3 with TLS from the first byte.

Its certificate is for `localhost` and 127.0.0.1, signed by the tests' CA (tests/support/
certs.py), which the system does not trust. Users live in a passwd-file (`user_add` makes a
new one, so each test starts with an empty mailbox); their mail is Maildir storage in the
temporary directory, and `deliver` puts raw mail into a user's INBOX (or another folder) the
way a delivery agent does: written into tmp/, renamed into new/.

Needs the packages `scripts/test-prereqs` installs (dovecot-imapd, dovecot-pop3d), and root
(the instance drops to the `dovecot`/`dovenull` users like the system's).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from tests.support.certs import CertAuthority

DOVECOT = Path("/usr/sbin/dovecot")
PREREQS_HINT = "run scripts/test-prereqs (make test does)"
# Generous for a loaded 2-core CI machine; a healthy start takes well under a second.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
PORT_ATTEMPTS = 3
# The user mail belongs to: Dovecot refuses uid 0 for mail (first_valid_uid).
MAIL_USER = "nobody"
# Users made before the start, handed out one per test (user_add).
USER_POOL = 200

_deliveries = itertools.count()


class DovecotError(RuntimeError):
    """The test Dovecot could not be started or did not behave."""


class DovecotPrerequisiteError(DovecotError):
    """Something Dovecot needs (root, the packages) is missing."""


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _is_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class DovecotServer:
    host = "127.0.0.1"
    hostname = "localhost"

    def __init__(
        self,
        *,
        ca: CertAuthority,
        imap_capability: str = "",
        token_subject: Callable[[str], str | None] | None = None,
    ) -> None:
        """`imap_capability` replaces the capabilities announced after login (a server
        without MOVE, say); Dovecot's own by default. With `token_subject` (the test OAuth
        provider's: whose an access token is), Dovecot also takes XOAUTH2 and OAUTHBEARER
        logins, asking that through its oauth2 passdb's token introspection (RFC 7662)."""
        self.ca = ca
        self.imap_capability = imap_capability
        self._introspection = _IntrospectionServer(token_subject) if token_subject else None
        self.directory = Path(tempfile.mkdtemp(prefix="postroom-dovecot-"))
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._free_users: list[tuple[str, str]] = []
        self._users = self.directory / "etc" / "users"
        self._log = self.directory / "log" / "dovecot.log"
        self._mail_uid = pwd.getpwnam(MAIL_USER).pw_uid
        self._mail_gid = pwd.getpwnam(MAIL_USER).pw_gid

    def __repr__(self) -> str:
        return (
            f"<DovecotServer imap={self.imap_port} imaps={self.imaps_port} "
            f"pop3={self.pop3_port} pop3s={self.pop3s_port}>"
        )

    # -- users and mail ----------------------------------------------------------------------

    def user_add(self) -> tuple[str, str]:
        """A user of its own with an empty mailbox: (login, password).

        The users are written before Dovecot starts: it notices a changed passwd-file by its
        modification time, which can miss a second change within the same second."""
        if not self._free_users:
            raise DovecotError(f"All {USER_POOL} test users were used; raise USER_POOL.")
        return self._free_users.pop(0)

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        root = self.directory / "home" / user / "Maildir"
        return root if folder == "INBOX" else root / f".{folder.replace('/', '.')}"

    def deliver(self, user: str, raw: bytes, *, folder: str = "INBOX") -> Path:
        """Put one mail into `folder` as a delivery agent would (tmp/, then new/)."""
        box = self.maildir(user, folder)
        for sub in ("tmp", "new", "cur"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        self._chown_tree(self.directory / "home" / user)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_deliveries)}.postroom-tests"
        temporary = box / "tmp" / name
        temporary.write_bytes(raw.replace(b"\r\n", b"\n"))  # Maildir files use bare LF
        os.chown(temporary, self._mail_uid, self._mail_gid)
        final = box / "new" / name
        temporary.rename(final)
        return final

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The mails in `folder` as stored, oldest first (new/ and cur/)."""
        box = self.maildir(user, folder)
        paths = [p for sub in ("new", "cur") if (box / sub).is_dir() for p in (box / sub).iterdir()]
        return [p.read_bytes() for p in sorted(paths, key=lambda p: p.name)]

    def _chown_tree(self, top: Path) -> None:
        for path in (top, *top.rglob("*")):
            os.chown(path, self._mail_uid, self._mail_gid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return f"(no log yet at {self._log})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DovecotServer:
        """Configure and start the instance; on any failure leave nothing running."""
        try:
            _check_prerequisites()
            if self._introspection is not None:
                self._introspection.start()
            self._write_static_files()
            self._start_on_free_ports()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._introspection is not None:
            self._introspection.stop()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # the master stops its children, then exits
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_on_free_ports(self) -> None:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            ports = _free_ports(4)
            self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = ports
            conf = self.directory / "etc" / "dovecot.conf"
            conf.write_text(self._config())
            log = (self.directory / "log" / "stderr.log").open("ab")
            self._process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(conf)], stdout=log, stderr=log
            )
            log.close()
            if self._wait_listening(ports):
                return
            self._stop_process()
            if attempt == PORT_ATTEMPTS:
                stderr = (self.directory / "log" / "stderr.log").read_text(errors="replace")
                raise DovecotError(
                    f"Dovecot did not listen on {ports} within {START_TIMEOUT}s.\n"
                    f"{stderr}\n{self.log_tail()}"
                )

    def _wait_listening(self, ports: list[int]) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if all(_is_listening(port) for port in ports):
                return True
            time.sleep(POLL_INTERVAL)
        return False

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT)
            if process.poll() is None:
                process.kill()
                process.wait()

    def _write_static_files(self) -> None:
        # The mail processes run as MAIL_USER and must reach the homes below the directory.
        self.directory.chmod(0o755)
        for sub in ("etc", "log", "run", "state", "home", "tls"):
            (self.directory / sub).mkdir(exist_ok=True)
            (self.directory / sub).chmod(0o755)
        os.chown(self.directory / "home", self._mail_uid, self._mail_gid)
        self._free_users = [
            (f"bounces{n}-{secrets.token_hex(3)}@example.com", f"pw-{secrets.token_urlsafe(9)}")
            for n in range(USER_POOL)
        ]
        self._users.write_text(
            "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in self._free_users)
        )
        self._users.chmod(0o644)
        issued = self.ca.issue((self.hostname, self.host), stem="dovecot")
        shutil.copyfile(issued.cert_path, self.directory / "tls" / "server.pem")
        shutil.copyfile(issued.key_path, self.directory / "tls" / "server.key")
        (self.directory / "tls" / "server.key").chmod(0o600)

    def _config(self) -> str:
        d = self.directory
        return f"""\
# Written by tests/support/dovecot.py for one test session; not the system's Dovecot.
instance_name = postroom-test-{d.name}
base_dir = {d}/run
state_dir = {d}/state
log_path = {self._log}
protocols = imap pop3
listen = {self.host}
default_internal_user = dovecot
default_login_user = dovenull
ssl = yes
ssl_cert = <{d}/tls/server.pem
ssl_key = <{d}/tls/server.key
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
# The plain listeners take a password without TLS: Postroom's "None" security is tested on it.
disable_plaintext_auth = no
# A refused login answers at once (the default waits 2 s to slow down guessing).
auth_failure_delay = 0
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self._introspection else ""}
{f"imap_capability = {self.imap_capability}" if self.imap_capability else ""}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self._users}
}}
{self._oauth2_passdb()}userdb {{
  driver = static
  args = uid={self._mail_uid} gid={self._mail_gid} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
# Maildir++'s own hierarchy delimiter "." (not Gmail's "/"), so Postroom's translation of
# "Postroom/Processed" is exercised.
namespace inbox {{
  inbox = yes
}}
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
# Nothing else: no LMTP, no submission, no doveadm listener.
service lmtp {{
  unix_listener lmtp {{
    mode = 0
  }}
}}
"""

    def _oauth2_passdb(self) -> str:
        if self._introspection is None:
            return ""
        settings = self.directory / "etc" / "oauth2.conf"
        settings.write_text(
            f"introspection_url = {self._introspection.url}\n"
            "introspection_mode = post\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        return (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {settings}\n}}\n"
        )


class _IntrospectionServer:
    """Token introspection (RFC 7662) for Dovecot's oauth2 passdb: POST token=... answers
    {"active": true, "username": <the token's account>}, or {"active": false}."""

    def __init__(self, token_subject: Callable[[str], str | None]) -> None:
        token_of = token_subject

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                subject = token_of(form.get("token", ""))
                answer = {"active": True, "username": subject} if subject else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # Dovecot's log says what happened

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/introspect"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _check_prerequisites() -> None:
    missing = [
        path
        for path in (DOVECOT, Path("/usr/lib/dovecot/imap"), Path("/usr/lib/dovecot/pop3"))
        if not path.exists()
    ]
    if missing:
        raise DovecotPrerequisiteError(
            f"Dovecot is missing ({', '.join(map(str, missing))}): {PREREQS_HINT}."
        )
    if os.geteuid() != 0:
        raise DovecotPrerequisiteError(
            "The test Dovecot needs root (it drops to the dovecot and dovenull users)."
        )


def dovecot_session(ca: CertAuthority) -> Iterator[DovecotServer]:
    """The body of a session fixture: start a Dovecot, fail (never skip) when it cannot run."""
    import pytest

    server = DovecotServer(ca=ca)
    try:
        server.start()
    except DovecotError as error:
        problem = str(error)
    else:
        problem = ""
    if problem:  # failed outside the except block, so pytest shows only this message
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
