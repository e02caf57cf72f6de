"""A real HTTP receiver on loopback for webhook tests: records requests, answers as scripted.

It listens on 127.0.0.1 by default; any 127.x.y.z works too (Linux routes all of 127.0.0.0/8
to loopback), which lets a test tell two receivers on the same port apart. With `tls` it
speaks HTTPS and records the server name (SNI) each client asked for.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """Answers each request with the next scripted `Answer`, then with `default`."""

    def __init__(
        self,
        *answers: Answer,
        default: Answer | None = None,
        address: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._script = list(answers)
        self.default = default or Answer()
        self.requests: list[ReceivedRequest] = []
        self.server_names: list[str | None] = []  # SNI of each TLS handshake
        self.address = address
        self._port = port
        self._tls = tls
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return self.url_for(self.address)

    def url_for(self, host: str) -> str:
        """This receiver's URL with `host` in it (a name a test's resolver answers for)."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host}:{self.port}/hooks/postroom"

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def _next_answer(self, request: ReceivedRequest) -> Answer:
        with self._lock:
            self.requests.append(request)
            return self._script.pop(0) if self._script else self.default

    def wait_for(self, count: int, *, timeout: float = 10) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.requests)} of {count} requests")

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pool expects

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                answer = receiver._next_answer(
                    ReceivedRequest(
                        method="POST",
                        path=self.path,
                        headers={name.lower(): value for name, value in self.headers.items()},
                        body=body,
                    )
                )
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                # The client may have given up already (a timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep the test output quiet

        self._server = ThreadingHTTPServer((self.address, self._port), Handler)
        self._server.daemon_threads = True
        if self._tls is not None:
            self._tls.sni_callback = self._note_server_name
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def _note_server_name(
        self, _socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext
    ) -> None:
        with self._lock:
            self.server_names.append(name)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def running_receiver(
    *answers: Answer,
    default: Answer | None = None,
    address: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Receiver]:
    receiver = Receiver(*answers, default=default, address=address, port=port, tls=tls)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
