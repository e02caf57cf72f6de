"""The HTTP transport webhooks are posted with: each connection goes to an address just checked.

Checking a URL's addresses and then letting the HTTP client connect by name leaves a gap: the
client looks the name up again, and a name can answer a public address to the check and
127.0.0.1 to the connection (DNS rebinding). So the lookup and the check happen inside the
connect step itself (`CheckedBackend`, an httpcore network backend): it resolves the name
once, checks every address (postroom.webhooks.targets) and opens the socket to a checked
address. Everything above the socket is unchanged: the pool is still keyed by host name, the
Host header is the URL's, and TLS still sends the host name (SNI) and verifies the
certificate against it, because httpcore does those from the URL, not from the socket.

Through a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY in the environment) the proxy
looks the name up and connects: the name is checked here first, and the proxy must refuse
internal destinations itself (docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from postroom.webhooks.targets import IPAddress, Resolve, system_resolve, target_addresses

# The request extension that carries the endpoint's "Allow an internal address" setting.
ALLOW_INTERNAL = "postroom.is_internal_allowed"


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses that pass the webhook address check."""

    def __init__(self, *, is_internal_allowed: bool, resolve: Resolve = system_resolve) -> None:
        self.is_internal_allowed = is_internal_allowed
        self._resolve = resolve
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._checked_addresses(host, port, timeout)
        failures = []
        # The addresses in the resolver's order (RFC 6724), the next one when one refuses:
        # what the default backend does, minus the second lookup.
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failures.append(f"{address} port {port}: {error}")
        raise httpcore.ConnectError("; ".join(failures))

    async def _checked_addresses(
        self, host: str, port: int, timeout: float | None
    ) -> list[IPAddress]:
        lookup = asyncio.to_thread(
            target_addresses,
            host,
            port,
            is_internal_allowed=self.is_internal_allowed,
            resolve=self._resolve,
        )
        try:
            return await asyncio.wait_for(lookup, timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"Looking up {host} took over {timeout:g} s.") from None

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, errors, TLS settings) over a `CheckedBackend`."""

    def __init__(self, *, backend: CheckedBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # httpx 0.28 cannot hand a network backend to its pool (encode/httpx#3749 adds the
        # argument): build the pool super() built, with the same settings and our backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # honours SSL_CERT_FILE, as before
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class WebhookTransport(httpx.AsyncBaseTransport):
    """Sends each request straight to a checked address, or through the environment's proxy.

    An endpoint's setting travels with its request (the `ALLOW_INTERNAL` extension); each
    setting has its own pool, so a connection opened for an endpoint allowed to reach an
    internal address is never reused for one that is not.
    """

    def __init__(self, *, limits: httpx.Limits, resolve: Resolve = system_resolve) -> None:
        self._resolve = resolve
        self._direct = {
            allowed: CheckedTransport(
                backend=CheckedBackend(is_internal_allowed=allowed, resolve=resolve), limits=limits
            )
            for allowed in (False, True)
        }
        # Read once, like httpx reads them when a client is made.
        self._proxies = urllib.request.getproxies()
        urls = {self._proxy_url(scheme) for scheme in ("http", "https")}
        self._proxied = {
            url: httpx.AsyncHTTPTransport(proxy=url, limits=limits) for url in urls if url
        }

    def _proxy_url(self, scheme: str) -> str | None:
        url = self._proxies.get(scheme) or self._proxies.get("all")
        if not url:
            return None
        return url if "://" in url else f"http://{url}"

    def _proxy_for(self, url: httpx.URL) -> str | None:
        if urllib.request.proxy_bypass(url.host):  # NO_PROXY (the platform's bypass rules)
            return None
        return self._proxy_url(url.scheme)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_internal_allowed = bool(request.extensions.get(ALLOW_INTERNAL, False))
        proxy = self._proxy_for(request.url)
        if proxy is None:
            return await self._direct[is_internal_allowed].handle_async_request(request)
        # The proxy resolves the name itself: check it here, so that at least a name that is
        # internal for us never goes out.
        await asyncio.to_thread(
            target_addresses,
            request.url.host,
            request.url.port or (443 if request.url.scheme == "https" else 80),
            is_internal_allowed=is_internal_allowed,
            resolve=self._resolve,
        )
        return await self._proxied[proxy].handle_async_request(request)

    async def aclose(self) -> None:
        for transport in [*self._direct.values(), *self._proxied.values()]:
            await transport.aclose()
