"""A real Postfix relay on 127.0.0.1 for tests: its own private instance, never the system's.

`PostfixRelay.start()` writes a complete Postfix configuration into a directory of its own,
creates a Cyrus sasldb with one user and runs `postfix -c DIR start`. Four listeners, each on
a free loopback port:

- `starttls_port`: submission, STARTTLS required (MAIL before it: 530), AUTH only after TLS;
- `smtps_port`: implicit TLS (wrapper mode), AUTH;
- `plain_port`: no TLS offered at all, AUTH over plain text (what a careless relay does);
- `sender_check_port`: like `starttls_port`, and the login may only use the addresses in
  `allowed_senders` as MAIL FROM (others: 553 5.7.1 ... not owned by user), as Microsoft 365
  and most submission servers enforce.

Without AUTH every recipient is refused at RCPT (554 5.7.1 Relay access denied). After AUTH,
`tempfail[+x]@any` gets 451 4.7.1 and `reject[+x]@any` gets 550 5.1.1 at RCPT; every other
address of every domain is delivered into one catch-all Maildir (`maildir`), one file per
recipient, with `Return-Path`, `Delivered-To` and `X-Original-To` prepended by Postfix.

Postfix needs root (its master binds the ports and runs daemons as the `postfix` user), and
the packages `scripts/test-prereqs` installs.
"""

from __future__ import annotations

import contextlib
import email.policy
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import cast

from tests.support.certs import CertAuthority

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
SASLPASSWD2 = Path("/usr/sbin/saslpasswd2")
PREREQS_HINT = "run scripts/test-prereqs (make test does)"
DIR_PREFIX = "postroom-relay-"

# Gmail's documented limit for a message; big enough for any test, small enough to test 552.
DEFAULT_MAX_SIZE = 25 * 1024 * 1024
# Generous bounds for a loaded 2-core CI machine; a healthy start takes well under a second.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
# How often to retry with fresh ports when another process grabbed a port we picked.
PORT_ATTEMPTS = 3

# Postfix's internal services, none chrooted (the instance lives in a temporary directory).
# Columns: service type private unpriv chroot wakeup maxproc command.
_INTERNAL_SERVICES = """\
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

# Magic recipients for the error paths (Postfix regexp table; pcre is a separate package).
_RECIPIENT_ACCESS = """\
/^tempfail(\\+[^@]*)?@/ 451 4.7.1 Temporary failure for test recipient
/^reject(\\+[^@]*)?@/ 550 5.1.1 Recipient rejected for test
"""


class RelayError(RuntimeError):
    """The test relay could not be started or did not behave."""


class RelayPrerequisiteError(RelayError):
    """Something the relay needs (root, the Postfix/SASL packages) is missing."""


class PostfixRelay:
    host = "127.0.0.1"
    hostname = "localhost"

    def __init__(
        self,
        *,
        ca: CertAuthority,
        directory: Path | None = None,
        user: str = "relayuser",
        password: str | None = None,
        allowed_senders: Iterable[str] = ("relayuser@example.com",),
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.ca = ca
        self._owns_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        self.user = user
        # Unique per run, so leak tests can search for it and find nothing else.
        self.password = password or f"relay-pw-{secrets.token_urlsafe(12)}"
        self.allowed_senders = list(allowed_senders)
        self.max_size = max_size
        self.starttls_port = self.smtps_port = self.plain_port = self.sender_check_port = 0
        self._etc = self.directory / "etc"
        self._spool = self.directory / "spool"
        self._tls = self.directory / "tls"
        self._log = self.directory / "log" / "postfix.log"
        self.maildir = self.directory / "mail" / "catchall"

    # -- what tests read -------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        return self.ca.cert_path

    @property
    def ca_pem(self) -> str:
        return self.ca.pem

    def __repr__(self) -> str:  # never the password
        return (
            f"<PostfixRelay {self.host} starttls={self.starttls_port} smtps={self.smtps_port} "
            f"plain={self.plain_port} sender_check={self.sender_check_port} user={self.user!r}>"
        )

    def message_paths(self) -> list[Path]:
        """Delivered files, oldest first (one per recipient)."""
        paths = [p for sub in ("new", "cur") for p in (self.maildir / sub).iterdir() if p.is_file()]
        return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def raw_messages(self) -> list[bytes]:
        return [p.read_bytes() for p in self.message_paths()]

    def messages(self) -> list[EmailMessage]:
        # With the default policy the parser builds EmailMessage objects.
        parser = BytesParser(_class=EmailMessage, policy=email.policy.default)
        return [cast(EmailMessage, parser.parsebytes(raw)) for raw in self.raw_messages()]

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Wait until at least `count` messages were delivered and return them all."""
        deadline = time.monotonic() + timeout
        while (found := len(self.message_paths())) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {count} message(s) in the relay's Maildir within {timeout}s, "
                    f"found {found}; still queued: {self._queued_files()}.\n"
                    f"Last lines of {self._log}:\n{self.log_tail(30)}"
                )
            time.sleep(POLL_INTERVAL)
        return self.messages()

    def clear(self) -> None:
        """Empty the Maildir, after letting mail still in flight arrive (so it can't leak
        into the next test)."""
        deadline = time.monotonic() + 5
        while self._queued_files(("maildrop", "incoming", "active")) and (
            time.monotonic() < deadline
        ):
            time.sleep(POLL_INTERVAL)
        for path in self.message_paths():
            path.unlink(missing_ok=True)

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self._log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return f"(no log yet at {self._log})"
        return "\n".join(lines[-n:])

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostfixRelay:
        """Configure and start the instance; on any failure leave nothing running."""
        try:
            _check_prerequisites()
            _reap_orphans(self.directory.parent)
            self.directory.chmod(0o755)  # the postfix user must reach the queue below it
            (self.directory / "owner.pid").write_text(f"{os.getpid()}\n")
            self._write_static_files()
            self._start_on_free_ports()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_free_ports(self) -> None:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            ports = _free_ports(4)
            self.starttls_port, self.smtps_port, self.plain_port, self.sender_check_port = ports
            (self._etc / "master.cf").write_text(self._master_cf())
            _backdate(self._etc)
            self._postfix("start")
            try:
                self._wait_listening(ports)
            except RelayError:
                # Most likely another process took a port between our probe and master's
                # bind: try again with new ones.
                self.stop(remove=False)
                if attempt == PORT_ATTEMPTS:
                    raise
            else:
                return

    def stop(self, *, remove: bool | None = None) -> None:
        """Stop this instance (never the system's Postfix); remove its directory if we made it."""
        pid = self._master_pid()
        if pid is not None:
            # SIGTERM makes master stop its children and exit; `postfix stop` does the same
            # but then polls once a second.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, STOP_TIMEOUT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if remove if remove is not None else self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostfixRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration ---------------------------------------------------------------------

    def _write_static_files(self) -> None:
        etc, spool = self._etc, self._spool
        for path in (etc / "sasl", spool, self.directory / "data", self._log.parent, self._tls):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        postfix_user = pwd.getpwnam("postfix")
        # Postfix keeps its caches (tlsmgr PRNG seed) in data_directory as the postfix user.
        os.chown(self.directory / "data", postfix_user.pw_uid, postfix_user.pw_gid)

        # virtual(8) refuses to deliver as root (virtual_minimum_uid is at least 1), so the
        # Maildir belongs to the test user, or `nobody` when the tests run as root (root
        # reads it anyway).
        owner = os.getuid() if os.getuid() != 0 else pwd.getpwnam("nobody").pw_uid
        owner_gid = pwd.getpwuid(owner).pw_gid
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.maildir.parent, self.maildir, *self.maildir.iterdir()):
            os.chown(path, owner, owner_gid)

        issued = self.ca.issue((self.hostname, self.host), stem="postfix-relay")
        shutil.copyfile(issued.cert_path, self._tls / "server.pem")
        shutil.copyfile(issued.key_path, self._tls / "server.key")
        (self._tls / "server.key").chmod(0o600)

        (etc / "main.cf").write_text(self._main_cf(owner, owner_gid))
        (etc / "catchall.regexp").write_text("/.*/ catchall/\n")  # trailing / = Maildir
        (etc / "recipient_access.regexp").write_text(_RECIPIENT_ACCESS)
        (etc / "sender_logins").write_text(
            "".join(f"{address} {self.user}\n" for address in self.allowed_senders)
        )
        (etc / "sasl" / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            "mech_list: PLAIN LOGIN\n"
            f"sasldb_path: {etc / 'sasldb2'}\n"
        )
        self._make_sasldb()

    def _make_sasldb(self) -> None:
        # Cyrus looks a bare login up in the realm = server name (myhostname); a login
        # `name@domain` (Microsoft 365 style) is split into user and realm.
        name, _, realm = self.user.rpartition("@") if "@" in self.user else (self.user, "", "")
        sasldb = self._etc / "sasldb2"
        sasldb.unlink(missing_ok=True)
        subprocess.run(
            [str(SASLPASSWD2), "-f", str(sasldb), "-u", realm or self.hostname, "-c", "-p", name],
            input=self.password.encode(),
            check=True,
            capture_output=True,
        )
        # smtpd reads it as the postfix user (no chroot, no saslauthd).
        os.chown(sasldb, 0, pwd.getpwnam("postfix").pw_gid)
        sasldb.chmod(0o640)

    def _main_cf(self, mail_uid: int, mail_gid: int) -> str:
        etc = self._etc
        return f"""\
# Written by tests/support/relay.py for one test session; not the system's Postfix.
compatibility_level = 3.6
queue_directory = {self._spool}
data_directory = {self.directory / "data"}
maillog_file = {self._log}
maillog_file_prefixes = {self.directory}
myhostname = {self.hostname}
mydomain = localdomain
myorigin = $myhostname
smtpd_banner = $myhostname ESMTP Postroom test relay
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
message_size_limit = {self.max_size}
# Answer at once: tests wait for nothing, and errors come at the command that caused them.
smtpd_error_sleep_time = 0
smtpd_delay_reject = no
# Store what the client sent: no Date/Message-ID/From added for loopback clients.
local_header_rewrite_clients =

# Every domain goes to the virtual agent and the one catch-all Maildir.
default_transport = virtual
local_transport = virtual
virtual_mailbox_base = {self.maildir.parent}
virtual_mailbox_maps = regexp:{etc / "catchall.regexp"}
# Empty on purpose: by default it follows virtual_mailbox_maps, which would make every
# domain local and let unauthenticated clients send.
virtual_mailbox_domains =
virtual_alias_domains =
virtual_uid_maps = static:{mail_uid}
virtual_gid_maps = static:{mail_gid}
virtual_minimum_uid = 1
virtual_mailbox_limit = 0

# TLS; which listener requires it is in master.cf.
smtpd_tls_cert_file = {self._tls / "server.pem"}
smtpd_tls_key_file = {self._tls / "server.key"}
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes

# Cyrus SASL from a sasldb file: no saslauthd to run.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {etc / "sasl"}
smtpd_sasl_local_domain =
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous

smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access regexp:{etc / "recipient_access.regexp"}
"""

    def _master_cf(self) -> str:
        def listener(port: int, name: str, *overrides: str) -> str:
            options = "".join(
                f"  -o {option}\n" for option in (f"syslog_name=postfix/{name}", *overrides)
            )
            return f"{self.host}:{port} inet n - n - - smtpd\n{options}"

        starttls_required = ("smtpd_tls_security_level=encrypt", "smtpd_tls_auth_only=yes")
        return (
            "# Written by tests/support/relay.py.\n"
            + listener(self.starttls_port, "submission", *starttls_required)
            + listener(
                self.smtps_port,
                "smtps",
                "smtpd_tls_wrappermode=yes",
                "smtpd_tls_security_level=encrypt",
            )
            + listener(
                self.plain_port, "plain", "smtpd_tls_security_level=none", "smtpd_tls_auth_only=no"
            )
            + listener(
                self.sender_check_port,
                "sendercheck",
                *starttls_required,
                f"smtpd_sender_login_maps=texthash:{self._etc / 'sender_logins'}",
                "smtpd_sender_restrictions=reject_sender_login_mismatch",
            )
            + _INTERNAL_SERVICES
        )

    # -- process ---------------------------------------------------------------------------

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [str(POSTFIX), "-c", str(self._etc), command], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RelayError(
                f"postfix {command} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{self.log_tail(20)}"
            )

    def _master_pid(self) -> int | None:
        try:
            pid = int((self._spool / "pid" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_master_of(pid, self._etc) else None

    def _wait_listening(self, ports: list[int]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = self._master_pid()
            if pid is not None:
                listening = _listening_ports(pid)
                wildcard = [p for addr, p in listening if addr != self.host]
                if wildcard:
                    raise RelayError(f"master listened beyond loopback on ports {wildcard}")
                if set(ports) <= {p for _, p in listening}:
                    return
            time.sleep(POLL_INTERVAL)
        raise RelayError(
            f"the relay did not listen on 127.0.0.1 ports {ports} within {START_TIMEOUT}s.\n"
            f"{self.log_tail(20)}"
        )

    def _queued_files(
        self, queues: Iterable[str] = ("maildrop", "incoming", "active", "deferred", "hold")
    ) -> int:
        return sum(len(files) for queue in queues for _, _, files in os.walk(self._spool / queue))


def _check_prerequisites() -> None:
    missing = [str(p) for p in (POSTFIX, POSTCONF, SASLPASSWD2) if not p.exists()]
    if missing:
        raise RelayPrerequisiteError(
            f"the real Postfix relay needs {', '.join(missing)}: {PREREQS_HINT}"
        )
    if os.geteuid() != 0:
        raise RelayPrerequisiteError(
            "the real Postfix relay must run as root: its master binds the ports and runs "
            "the daemons as the postfix user. Run the tests as root (CI does)."
        )
    map_types = subprocess.run([str(POSTCONF), "-m"], capture_output=True, text=True).stdout
    for needed in ("regexp", "texthash"):
        if needed not in map_types.split():
            raise RelayPrerequisiteError(f"this Postfix lacks the {needed} map type")


def _backdate(directory: Path) -> None:
    """Make the configuration look older than Postfix's "just modified" window.

    Postfix rereads a main.cf written less than two seconds ago until it is that old, in
    case an editor is still writing it: two seconds lost on every start of a fresh instance.
    """
    past = time.time() - 60
    for path in directory.rglob("*"):
        os.utime(path, (past, past))


def _free_ports(count: int) -> list[int]:
    """Ask the kernel for `count` distinct free loopback ports (held open together)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _is_master_of(pid: int, config_dir: Path) -> bool:
    """True if `pid` is a Postfix master started with `postfix -c config_dir`."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "master":
            return False
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"MAIL_CONFIG={config_dir}".encode() in environ


def _listening_ports(pid: int) -> list[tuple[str, int]]:
    """(address, port) of the TCP sockets `pid` listens on, from /proc."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A = TCP_LISTEN
                    addr_hex, port_hex = local.split(":")
                    addr = (
                        socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1])
                        if len(addr_hex) == 8
                        else addr_hex
                    )
                    found.append((addr, int(port_hex, 16)))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return True
        # A dead master stays a zombie until whoever adopted it (PID 1) reaps it, which
        # some container inits do late: it holds no ports or files any more.
        if state == "Z":
            return True
        time.sleep(POLL_INTERVAL)
    return False


def _reap_orphans(parent: Path) -> None:
    """Stop relays left behind by test sessions that died without stopping them.

    Only instances made by this module (our directory prefix, a master whose MAIL_CONFIG is
    that directory) whose owning pytest process is gone.
    """
    for directory in parent.glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((directory / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not (yet) one of ours
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int((directory / "spool" / "pid" / "master.pid").read_text().strip())
            if _is_master_of(pid, directory / "etc"):
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid, STOP_TIMEOUT)
        shutil.rmtree(directory, ignore_errors=True)
