"""Limits on what requests may cost the server, enforced while the bytes arrive, each answered
with a JSON error before the body is read into memory:

* 413: one request's body larger than ``max_bytes`` — or, for JSON, MAX_JSON_BYTES (what
  28x28 pixels need) — declared or not;
* 503 (with Retry-After): the bodies of all requests in progress would pass
  ``max_bytes_in_flight``, so the number of uploads at once never decides the server's memory;
* 408: a body that has not fully arrived ``body_seconds`` after its request began (a client
  that declares 1 MB and sends 10 bytes, or drips a byte a second, holds nothing for long);
* 403: a request whose Host is not a name this server answers to (``allowed_hosts``: a web
  page of another site, its name pointed at this machine by DNS rebinding, reads nothing
  here), and a POST or DELETE from a page of another site (its Origin is not this server's
  scheme, host and port; several Origins are refused), so no page a person visits can make
  their browser post to the digitnet on their machine, nor start or stop trainings there.

Every refusal of a request that sends a body reads and drops what is left of it first (for
up to LINGER_SECONDS): a connection closed while the client is still sending is reset, and
the reset can destroy the answer before the client reads it. A client that goes away in the
middle of its body is one line in the log, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time

import orjson
from starlette.requests import ClientDisconnect

CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")  # asked of the server's own pages only
RETRY_AFTER_SECONDS = 2  # told to a client the server is too busy for right now
MAX_JSON_BYTES = 64 * 2**10  # 784 numbers of 20 digits each, nested, with room to spare
log = logging.getLogger("digitnet.web")


class Refused(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class RequestLimits:
    """ASGI middleware enforcing the module's limits on every HTTP request. ``allowed_hosts``:
    the server's port and the names it answers to (``Hosts``); None checks only that an
    Origin, when there is one, is the Host the request names."""

    def __init__(self, app, max_bytes: int, max_bytes_in_flight: int, body_seconds: float,
                 allowed_hosts: Hosts | None = None):  # fmt: skip
        self.app, self.max_bytes = app, max_bytes
        self.max_bytes_in_flight, self.body_seconds = max_bytes_in_flight, body_seconds
        self.hosts = allowed_hosts
        self.in_flight = 0  # body bytes held by the requests in progress

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            self._check_request(scope)
        except Refused as refusal:
            await drain(receive)
            return await refuse(send, refusal.status, refusal.message)
        headers = dict(scope.get("headers", []))
        json = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/json"
        largest = min(self.max_bytes, MAX_JSON_BYTES) if json else self.max_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > largest:
            await drain(receive)
            return await refuse(send, 413, f"request body larger than {size_of(largest)}")
        deadline = time.monotonic() + self.body_seconds
        held = 0
        arrived = started = False

        async def limited_receive():
            nonlocal held, arrived
            if arrived:  # only a disconnection is left to hear of: no deadline for that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                raise Refused(
                    408, f"the body did not arrive within {self.body_seconds:g} s"
                ) from None
            arrived = not message.get("more_body", False)
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                if held + size > largest:
                    raise Refused(413, f"request body larger than {size_of(largest)}")
                if self.in_flight + size > self.max_bytes_in_flight:
                    raise Refused(503, "too many uploads at once; please try again")
                held += size
                self.in_flight += size
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Refused as refusal:
            if not started:
                if refusal.status != 408 and not arrived:  # a slow body is not waited for
                    await drain(receive)
                await refuse(send, refusal.status, refusal.message)
        except ClientDisconnect:
            client = scope.get("client") or ("a client",)
            log.info("%s went away before its request's body arrived", client[0])
        finally:
            self.in_flight -= held

    def _check_request(self, scope) -> None:
        """Refused(403) for a Host this server does not answer to, or a change asked by a
        page of another site."""
        host = origin = None
        origins = 0
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value
            elif name == b"origin":
                origin, origins = value, origins + 1
        if self.hosts is not None and not self.hosts.allows(host or b""):
            shown = (host or b"").decode("latin-1")[:100]
            raise Refused(
                403, f"this server does not answer to the name {shown!r} (serve --allow-host)"
            )
        if scope["method"] not in CHANGING_METHODS or origin is None:
            return  # curl and scripts send no Origin; browsers send it on every POST
        if origins > 1 or not same_origin(origin, host or b"", self.hosts):
            raise Refused(403, "cross-site requests are refused")


class Hosts:
    """The names a server answers to: any IP address (a page cannot rebind one), localhost,
    and those given (``serve --allow-host``) — on the port it serves, when a port is named
    (a reverse proxy may name none)."""

    def __init__(self, port: int, names: tuple[str, ...] = ()):
        self.port = port
        self.names = {"localhost", *(name.lower().rstrip(".") for name in names)}

    def allows(self, host: bytes) -> bool:
        try:
            name, port = split_host(host.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return False
        if port is not None and port != self.port:
            return False
        if name.lower().rstrip(".") in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def split_host(host: str) -> tuple[str, int | None]:
    """("127.0.0.1", 8000) of "127.0.0.1:8000", ("::1", None) of "[::1]"; ValueError for
    what is not a host."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        separator, port = rest[:1], rest[1:]
    else:
        name, separator, port = host.partition(":")
    if not name or separator not in ("", ":") or (separator and not port.isdigit()):
        raise ValueError(host)
    return name, int(port) if separator else None


def same_origin(origin: bytes, host: bytes, hosts: Hosts | None) -> bool:
    """Whether an Origin is this server's page: http, and the Host the request names (which
    ``hosts``, when given, has allowed already)."""
    scheme, separator, rest = origin.partition(b"://")
    if not separator or scheme != b"http":
        return False
    if hosts is None:
        return rest == host
    return hosts.allows(rest) and rest.lower() == host.lower()


LINGER_SECONDS, LINGER_BYTES = 2.0, 64 * 2**20


async def drain(receive) -> None:
    """Read and drop what is left of a refused body, for at most LINGER_SECONDS and
    LINGER_BYTES, before answering and closing. A connection closed while the client is still
    sending is reset, and the reset can destroy the answer before the client reads it: the
    page would say "network error" instead of "larger than 10 MB"."""
    deadline, dropped = time.monotonic() + LINGER_SECONDS, 0
    with contextlib.suppress(asyncio.TimeoutError):
        while dropped < LINGER_BYTES:
            message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return


def size_of(size: int) -> str:
    return f"{size / 2**20:g} MB" if size >= 2**19 else f"{size // 2**10} KB"


async def refuse(send, status: int, message: str) -> None:
    """A JSON error, and the connection closed."""
    body = orjson.dumps({"error": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
