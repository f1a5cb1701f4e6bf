"""Limits on what requests may cost the server, enforced while the bytes arrive, each answered
with a JSON error before the body is read into memory:

* 413: one request's body larger than ``max_bytes``, declared or not (what is left of it is read
  and dropped for up to 2 s before the answer, so the client sees the answer, not a reset);
* 503 (with Retry-After): the bodies of all requests in progress would pass
  ``max_bytes_in_flight``, so the number of uploads at once never decides the server's memory;
* 408: a body that has not fully arrived ``body_seconds`` after its request began (a client
  that declares 1 MB and sends 10 bytes, or drips a byte a second, holds nothing for long);
* 403: a POST (or DELETE: a training stopped) from a page of another site (its Origin is not
  this server), so no web page a person visits can make their browser post to the digitnet on
  their machine, nor start or stop trainings there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson

CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")  # asked of the server's own pages only
RETRY_AFTER_SECONDS = 2  # told to a client the server is too busy for right now


class Refused(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class RequestLimits:
    """ASGI middleware enforcing the module's limits on every HTTP request."""

    def __init__(self, app, max_bytes: int, max_bytes_in_flight: int, body_seconds: float):
        self.app, self.max_bytes = app, max_bytes
        self.max_bytes_in_flight, self.body_seconds = max_bytes_in_flight, body_seconds
        self.in_flight = 0  # body bytes held by the requests in progress

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"")
        if scope["method"] in CHANGING_METHODS and not same_origin(headers):
            return await refuse(send, 403, "cross-site requests are refused")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await drain(receive)
            return await refuse(send, 413, f"request body larger than {megabytes(self.max_bytes)}")
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
                if held + size > self.max_bytes:
                    raise Refused(413, f"request body larger than {megabytes(self.max_bytes)}")
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
                if refusal.status == 413:
                    await drain(receive)
                await refuse(send, refusal.status, refusal.message)
        finally:
            self.in_flight -= held


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


def same_origin(headers: dict[bytes, bytes]) -> bool:
    """Whether a request came from this server's own page, or from no page at all (curl, a
    script: they send no Origin). Browsers send Origin on every cross-site POST."""
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = headers.get(b"host", b"")
    return origin.split(b"://", 1)[-1] == host


def megabytes(size: int) -> str:
    return f"{size / 2**20:g} MB"


async def refuse(send, status: int, message: str) -> None:
    """A JSON error, and the connection closed (the rest of the body is not read)."""
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
