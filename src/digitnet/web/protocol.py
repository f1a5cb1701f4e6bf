"""HTTP connections with the limits uvicorn leaves open.

uvicorn closes a keep-alive connection that stays idle between requests, but waits for ever for
the headers of a request (a connection opened and never written to, or headers sent a byte a
minute), accepts connections until the process runs out of file descriptors (and then logs a
traceback for every refused accept), and answers malformed HTTP in plain text. ``GuardedHttp``
is uvicorn's own HTTP protocol (httptools) with:

* HEADER_SECONDS to send a request's headers, from the connection's opening or the request's
  first byte; past it, a JSON 408 and the connection closed;
* at most MAX_HEADER_FIELDS header fields and MAX_HEADER_BYTES of request line and headers;
  past either, a JSON 431 (50 MB of ``a: b`` lines in one request took the server from 98 MB
  to 1,176 MB, and four such connections to 4.9 GB);
* at most ``max_connections`` open at once (``connection_cap``), and a quarter of them from
  any one address; one more gets a JSON 503 with Retry-After and is closed at once (4,096 idle
  connections from one client made every other client's health check a 503);
* JSON for malformed HTTP (400), like every other error of the API, and no warning in the log
  for it: a client's bad bytes are the client's business, and one line each would let anyone
  fill the server's log. For the same reason a request to upgrade to WebSocket (this server
  has none) is answered as plain HTTP without uvicorn's two warnings, and any other warning
  of the protocol is logged at most once a minute (``OncePerMinute``).

The body's own deadline, and its size, are checked by ``limits.RequestLimits``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from digitnet.web.limits import RETRY_AFTER_SECONDS

HEADER_SECONDS = 10.0
MAX_HEADER_FIELDS = 100
MAX_HEADER_BYTES = 16 * 2**10  # the request line and every header (a browser's: ~1 KB)
MAX_CONNECTIONS = 4096
CLIENT_SHARE = 4  # one address may hold at most 1 / CLIENT_SHARE of the connections
LINGER_SECONDS, LINGER_BYTES = 2.0, 64 * 2**20  # reading what follows a refused request
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
QUIET_SECONDS = 60.0


class OncePerMinute(logging.Filter):
    """Lets a message through at most once every QUIET_SECONDS (the first time at once),
    saying how many like it were held back meanwhile: a client cannot fill the log."""

    def __init__(self):
        super().__init__()
        self.last: dict[str, tuple[float, int]] = {}  # message -> (when logged, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = str(record.msg), time.monotonic()
        when, held = self.last.get(key, (-QUIET_SECONDS, 0))
        if now - when < QUIET_SECONDS:
            self.last[key] = (when, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last minute)"
        if len(self.last) > 1000:  # messages vary (they name clients): forget the old ones
            self.last.clear()
        self.last[key] = (now, 0)
        return True


_log = logging.getLogger("uvicorn.error.digitnet")  # uvicorn's handlers, without that line
_log.addFilter(lambda record: record.getMessage() != MALFORMED)
_log.addFilter(OncePerMinute())


class HeadersTooLarge(Exception):
    """Raised in a parser callback to stop reading a request whose head is too large."""


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a header deadline and size, a connection cap (in all and
    per address) and JSON errors."""

    header_seconds = HEADER_SECONDS
    max_connections = MAX_CONNECTIONS
    client_share = CLIENT_SHARE
    per_address: ClassVar[Counter] = Counter()  # connections open, by client address
    _header_timer: asyncio.TimerHandle | None = None
    _address: str | None = None  # counted in per_address
    _head_too_large = False
    _in_head = True  # the next bytes are a request's line and headers
    _head_bytes = _head_fields = _head_fed = 0
    _lingering: int | None = None  # bytes dropped since the answer, when closing

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logger = _log

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.send_error(503, "too many connections; please try again")
            return
        address = self.client[0] if self.client else None
        if address is not None:
            self._address = address
            self.per_address[address] += 1
            if self.per_address[address] > max(1, self.max_connections // self.client_share):
                self.send_error(503, "too many connections from your address; please try again")
                return
        self._expect_headers()

    def connection_lost(self, exc) -> None:
        self._headers_arrived()
        if self._address is not None:
            self.per_address[self._address] -= 1
            if not self.per_address[self._address]:
                del self.per_address[self._address]
            self._address = None
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:
        """A client that half-closes its connection once its whole request is sent (``nc -N``,
        a socket shut down for writing) still gets the answer: the connection stays open for
        it, then closes. (asyncio closed it at once, and the answer was lost whenever the
        request awaited anything.) One that closes before its body is complete has gone."""
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            cycle.keep_alive = False
            return True
        return None

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:  # answered and closing: what comes is dropped
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        if self._in_head:
            self._head_fed += len(data)
        super().data_received(data)
        # A header still being received is held whole by the parser: bounded here too.
        too_long = self._in_head and self._head_fed > 2 * MAX_HEADER_BYTES
        if too_long and not self._done():
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_fields = 0
        self._expect_headers()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4, 1)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        self._in_head, self._head_fed = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _count_head(self, size: int, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > MAX_HEADER_BYTES or self._head_fields > MAX_HEADER_FIELDS:
            self._head_too_large = True
            raise HeadersTooLarge  # the parser stops; uvicorn calls send_400_response

    def _refuse_head(self) -> None:
        self.send_error(431, f"request headers larger than {MAX_HEADER_BYTES // 1024} KB or"
                        f" more than {MAX_HEADER_FIELDS} fields", linger=True)  # fmt: skip

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse_head()
        else:
            self.send_error(400, "malformed HTTP request", linger=True)

    def _unsupported_upgrade_warning(self) -> None:
        """No WebSocket here: the request is answered as plain HTTP, without two warnings."""

    def _expect_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._headers_late)

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _done(self) -> bool:
        """Whether the connection has had its last answer (closed, or closing)."""
        return self.transport.is_closing() or self._lingering is not None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._done():
            self.send_error(408, f"no request headers within {self.header_seconds:g} s")

    def send_error(self, status: int, message: str, linger: bool = False) -> None:
        """A JSON error written straight to the connection, which is then closed — with
        ``linger``, only after what the client is still sending has been read and dropped
        (LINGER_SECONDS, LINGER_BYTES at most): a connection closed with unread bytes is
        reset, and the reset can destroy the answer before the client reads it (8 MB of
        header lines got a reset, not their 431, one time in three)."""
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
        if not linger or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer is complete: the client sees its end
        self._lingering = 0
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
