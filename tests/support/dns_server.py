"""A real DNS server on loopback for the deliverability tests, answering from records a test sets.

    with DnsServer() as dns_server:
        dns_server.add("example.com", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns_server.add("example.com", "MX", "10 mail.example.com.")

It speaks DNS over UDP and TCP (dnspython parses the queries and builds the answers), so
Postroom's resolver (postroom.core.dns) and dkimpy's key lookups go through the network code
they use in production. A name with no records answers NXDOMAIN; a name with records of other
types answers an empty NOERROR; `fail(name)` makes a name answer SERVFAIL.
"""

from __future__ import annotations

import socketserver
import struct
import threading
from collections import defaultdict

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 60


def txt_value(text: str) -> str:
    """A TXT record's text in zone-file form, split into 255-byte strings (RFC 7208 §3.3)."""
    data = text.encode()
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join(
        '"' + chunk.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks
    )


class DnsServer:
    def __init__(self) -> None:
        self._records: dict[tuple[dns.name.Name, int], list[str]] = defaultdict(list)
        self._failing: set[dns.name.Name] = set()
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self._udp: socketserver.ThreadingUDPServer | None = None
        self._tcp: socketserver.ThreadingTCPServer | None = None
        self.port = 0

    # -- records ------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, value: str) -> None:
        """Add one record; TXT values are given as plain text (split and quoted here)."""
        if rdtype == "TXT":
            value = txt_value(value)
        with self._lock:
            self._records[(_name(name), dns.rdatatype.from_text(rdtype))].append(value)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        with self._lock:
            for key in list(self._records):
                if key[0] == _name(name) and (
                    rdtype is None or key[1] == dns.rdatatype.from_text(rdtype)
                ):
                    del self._records[key]

    def fail(self, name: str) -> None:
        with self._lock:
            self._failing.add(_name(name))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._failing.clear()
            self.queries.clear()

    @property
    def address(self) -> str:
        """What POSTROOM_DNS_SERVERS takes: "127.0.0.1:port"."""
        return f"127.0.0.1:{self.port}"

    # -- answering ----------------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        with self._lock:
            if question.name in self._failing:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            values = list(self._records.get((question.name, question.rdtype), ()))
            name_exists = any(name == question.name for name, _ in self._records)
        if values:
            rrset = dns.rrset.from_text_list(
                question.name, TTL, dns.rdataclass.IN, question.rdtype, values
            )
            response.answer.append(rrset)
        elif not name_exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    # -- serving ------------------------------------------------------------------------

    def start(self) -> DnsServer:
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(server.answer(data), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while header := self.rfile.read(2):
                    (length,) = struct.unpack("!H", header)
                    reply = server.answer(self.rfile.read(length))
                    self.wfile.write(struct.pack("!H", len(reply)) + reply)

        # One port for both transports, as a real DNS server has (a truncated UDP answer
        # is asked again over TCP on the same port).
        for _ in range(20):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            port = udp.server_address[1]
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for the test DNS server")
        udp.daemon_threads = tcp.daemon_threads = True
        self._udp, self._tcp, self.port = udp, tcp, port
        for listener in (udp, tcp):
            threading.Thread(target=listener.serve_forever, daemon=True, name="test-dns").start()
        return self

    def stop(self) -> None:
        for listener in (self._udp, self._tcp):
            if listener is not None:
                listener.shutdown()
                listener.server_close()
        self._udp = self._tcp = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text.rstrip(".") + ".")
