"""HTTP connections with the limits uvicorn leaves open.

uvicorn closes a keep-alive connection that stays idle between requests, but waits for ever for
the headers of a request (a connection opened and never written to, or headers sent a byte a
minute), accepts connections until the process runs out of file descriptors (and then logs a
traceback for every refused accept), and answers malformed HTTP in plain text. ``GuardedHttp``
is uvicorn's own HTTP protocol (httptools) with:

* HEADER_SECONDS to send a request's headers, from the connection's opening or the request's
  first byte; past it, a JSON 408 and the connection closed;
* at most ``max_connections`` open at once (``connection_cap``); one more gets a JSON 503 with
  Retry-After and is closed at once;
* JSON for malformed HTTP (400), like every other error of the API, and no warning in the log
  for it: a client's bad bytes are the client's business, and one line each would let anyone
  fill the server's log.

The body's own deadline, and its size, are checked by ``limits.RequestLimits``.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from digitnet.web.limits import RETRY_AFTER_SECONDS

HEADER_SECONDS = 10.0
MAX_CONNECTIONS = 4096
SPARE_FILES = 64  # descriptors kept for the models, pipes to workers and logs


def connection_cap() -> int:
    """The connections a server may hold: MAX_CONNECTIONS, or fewer when the process may not
    open that many files (the soft limit is first raised as far as the hard one allows)."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return MAX_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(1, min(MAX_CONNECTIONS, soft - SPARE_FILES))


MALFORMED = "Invalid HTTP request received."  # what uvicorn logs for each malformed request
_log = logging.getLogger("uvicorn.error.digitnet")  # uvicorn's handlers, without that line
_log.addFilter(lambda record: record.getMessage() != MALFORMED)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a header deadline, a connection cap and JSON errors."""

    header_seconds = HEADER_SECONDS
    max_connections = MAX_CONNECTIONS
    _header_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logger = _log

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.send_error(503, "too many connections; please try again")
            return
        self._expect_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect_headers()

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.send_error(400, "malformed HTTP request")

    def _expect_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._headers_late)

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.send_error(408, f"no request headers within {self.header_seconds:g} s")

    def send_error(self, status: int, message: str) -> None:
        """A JSON error written straight to the connection, which is then closed."""
        body = orjson.dumps({"error": message})
        head = [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if status == 503:
            head.append(b"retry-after: %d\r\n" % RETRY_AFTER_SECONDS)
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()
