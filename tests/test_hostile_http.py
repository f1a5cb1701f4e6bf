"""Hostile and odd requests: each gets a JSON 4xx (or the documented 503) that says what is
wrong — never a 500 — from the server itself and from its worker processes alike; and odd
images cost only their own answer on the command line."""

import asyncio
import contextlib
import io
import json
import logging
import socket
import threading
import time

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pictures import digit_png, png_header_only
from PIL import Image

from digitnet.cli import main
from digitnet.web.app import create_app
from digitnet.web.catalog import load_catalog
from digitnet.web.limits import Hosts, RequestLimits
from digitnet.web.protocol import GuardedHttp

PNG = {"content-type": "image/png"}


def tiff(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "TIFF")
    return out.getvalue()


NAN_TIFF = tiff(Image.fromarray(np.full((40, 40), np.nan, np.float32), "F"))
LAB_TIFF = tiff(Image.new("LAB", (40, 40), (50, 0, 0)))


def eps() -> bytes:
    out = io.BytesIO()
    Image.new("L", (40, 40)).save(out, "EPS")
    return out.getvalue()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module", params=["server", "workers"])
def client(request, catalog):
    workers = 1 if request.param == "server" else 2
    with TestClient(create_app(catalog, max_upload_bytes=2 * 2**20, workers=workers)) as client:
        yield client


@pytest.mark.parametrize(
    "body, status, message",
    [
        (NAN_TIFF, 400, "NaN or infinity"),
        (LAB_TIFF, 400, "cannot read LAB images"),
        (eps(), 415, "not an image file in a format digitnet reads"),
        (png_header_only(20000, 20000), 413, "more than the 40,000,000 pixels"),
        (png_header_only(6324, 6324), 400, "cannot hold 6324x6324 pixels"),
    ],
    ids=["nan-tiff", "lab-tiff", "eps", "400-megapixels", "tiny-png-claiming-40-mp"],
)
def test_odd_images_get_a_4xx_on_both_endpoints(client, body, status, message):
    for path in ("/api/predict", "/api/read"):
        answer = client.post(path, content=body, headers={"content-type": "image/tiff"})
        assert answer.status_code == status, (path, answer.text)
        assert message in answer.json()["error"]


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"pixels": ' + "[" * 1000 + "]" * 1000 + "}", "not an array of numbers"),
        ('{"pixels": ' + "[" * 30_000 + "]" * 30_000 + "}", "invalid JSON"),
        ('{"pixels": [[0.5, true]]}', "not an array of numbers"),
        ('{"pixels": ' + json.dumps([[0] * 28] * 27 + [[0] * 27]) + "}", "not an array"),
        ('{"pixels": [NaN]}', "invalid JSON"),
        ('{"pixels": ' + json.dumps([1e308] * 784) + "}", "values from 1e+308"),
    ],
    ids=["nested-1000", "nested-30000", "bool", "ragged", "nan", "huge"],
)
def test_malformed_pixels_are_422(client, body, message):
    answer = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and message in answer.json()["error"]


def test_a_json_body_larger_than_28x28_pixels_need_is_413_declared_or_not(client):
    """Four clients posting 9.6 MB {"pixels": ...} bodies cut the drawers' answers from 872
    in 6 s to 49 in 8 s: the whole body was parsed on the event loop."""
    big = b'{"pixels": [' + b"0.5, " * 20_000 + b"0.5]}"
    json_type = {"content-type": "application/json"}
    declared = client.post("/api/predict", content=big, headers=json_type)
    assert declared.status_code == 413 and "larger than 64 KB" in declared.json()["error"]
    chunked = client.post("/api/predict", content=iter([big[:50_000], big[50_000:]]),
                          headers=json_type)  # fmt: skip
    assert chunked.status_code == 413 and "larger than 64 KB" in chunked.json()["error"]


def test_what_is_not_an_image_is_415_saying_what_to_send(client):
    text = client.post("/api/predict", content=b"7", headers={"content-type": "text/plain"})
    assert text.status_code == 415 and "send image/png" in text.json()["error"]
    pixels = client.post("/api/read", json={"pixels": [0] * 784})
    assert pixels.status_code == 415 and "send the image, not pixels" in pixels.json()["error"]


def test_a_form_s_file_must_be_the_image_field(client, mnist):
    body = digit_png(mnist[1][0][0])
    wrong = client.post("/api/predict", files={"photo": ("d.png", body, "image/png")})
    assert wrong.status_code == 400 and 'no file named "image"' in wrong.json()["error"]
    right = client.post("/api/predict", files={"image": ("d.png", body, "image/png")})
    assert right.status_code == 200 and right.json()["digit"] == mnist[1][1][0]


def test_posts_from_another_site_are_403(client, mnist):
    body = digit_png(mnist[1][0][0])
    evil = client.post("/api/predict", content=body,
                       headers={**PNG, "origin": "https://evil.example"})  # fmt: skip
    assert evil.status_code == 403 and "cross-site" in evil.json()["error"]
    own = client.post("/api/predict", content=body,
                      headers={**PNG, "origin": "http://testserver"})  # fmt: skip
    assert own.status_code == 200


# The limits on bodies, on a bare ASGI app that reads its body: each limit on its own.


async def echo_length(scope, receive, send):
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def scope(length: int | None = None) -> dict:
    headers = [(b"host", b"testserver")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


async def call(app, scope, receive) -> list[dict]:
    sent = []

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_a_body_that_does_not_arrive_in_time_is_408():
    limits = RequestLimits(
        echo_length, max_bytes=2**20, max_bytes_in_flight=2**22, body_seconds=0.2
    )

    async def stalls():
        if not hasattr(stalls, "sent"):
            stalls.sent = True
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}
        await asyncio.sleep(3600)  # declared 1 MB, sent 10 bytes, then nothing

    sent = asyncio.run(asyncio.wait_for(call(limits, scope(2**20), stalls), 5))
    assert sent[0]["status"] == 408
    assert b"did not arrive within 0.2 s" in sent[1]["body"]
    assert limits.in_flight == 0


def test_a_refused_body_is_drained_before_the_413_so_the_client_can_read_it():
    limits = RequestLimits(echo_length, max_bytes=2**20, max_bytes_in_flight=2**22, body_seconds=5)
    chunks = [b"x" * 2**20, b"x" * 2**20, b"x" * 2**19]

    async def receive():
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    sent = asyncio.run(asyncio.wait_for(call(limits, scope(5 * 2**19), receive), 5))
    assert sent[0]["status"] == 413 and chunks == []  # all read (and dropped) first


def test_uploads_beyond_the_bytes_in_flight_are_503_with_retry_after():
    limits = RequestLimits(echo_length, max_bytes=2**20, max_bytes_in_flight=2**20, body_seconds=5)
    gate = asyncio.Event()

    def upload(*chunks: bytes, hold: bool = False):
        chunks = list(chunks)

        async def receive():
            if hold and len(chunks) == 1:
                await gate.wait()  # hold the first chunk while another upload arrives
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

        return receive

    async def scenario():
        first = asyncio.create_task(
            call(limits, scope(800_000), upload(b"x" * 400_000, b"x" * 400_000, hold=True))
        )
        await asyncio.sleep(0.05)
        second = await call(limits, scope(700_000), upload(b"x" * 700_000))  # 1.1 MB in all
        gate.set()
        return await first, second

    first, second = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert second[0]["status"] == 503 and (b"retry-after", b"2") in second[0]["headers"]
    assert b"too many uploads at once" in second[1]["body"]
    assert first[0]["status"] == 200 and first[1]["body"] == b"800000"
    assert limits.in_flight == 0


def test_an_odd_image_costs_only_its_own_answer_on_the_command_line(tmp_path, mnist, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(digit_png(mnist[1][0][3]))
    (tmp_path / "nan.tiff").write_bytes(NAN_TIFF)
    (tmp_path / "lab.tiff").write_bytes(LAB_TIFF)
    code = main(
        ["predict", "--json", str(good), str(tmp_path / "nan.tiff"), str(tmp_path / "lab.tiff")]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert records[0]["digit"] == mnist[1][1][3]
    assert "NaN or infinity" in records[1]["error"] and "LAB" in records[2]["error"]


# The connection limits, on a real socket: a server in a thread with short limits.


class QuickGuard(GuardedHttp):
    header_seconds = 0.5
    max_connections = 8
    client_share = 2  # 4 a client address


def serve_in_thread(catalog, allowed_hosts=None):
    """(server, (host, port)) of the app served by uvicorn with QuickGuard's limits, in a
    thread; with ``allowed_hosts(port)``, it answers only to those names."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    hosts = allowed_hosts(port) if allowed_hosts else None
    app = create_app(catalog, allowed_hosts=hosts)
    config = uvicorn.Config(app, http=QuickGuard, port=0, log_level="info")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, listening.getsockname()


@pytest.fixture(scope="module")
def guarded(catalog):
    """(host, port) of the app served by uvicorn with QuickGuard's limits, in a thread."""
    server, thread, address = serve_in_thread(catalog)
    yield address
    server.should_exit = True
    thread.join(10)


def answer_of(connection: socket.socket, seconds: float = 5) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of the one answer on ``connection``, read until it closes."""
    connection.settimeout(seconds)
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.slow
def test_a_connection_that_sends_no_headers_is_closed_with_408(guarded):
    with socket.create_connection(guarded) as idle:
        start = time.monotonic()
        status, _, body = answer_of(idle)
    assert status == 408 and "no request headers within 0.5 s" in body["error"]
    assert time.monotonic() - start < 3
    with socket.create_connection(guarded) as slow:  # headers sent a byte every 0.1 s
        start = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for byte in b"GET /api/health HTTP/1.1\r\nHost: x\r\n" * 10:
                slow.send(bytes([byte]))
                time.sleep(0.1)
        assert time.monotonic() - start < 3  # the server hung up


def test_malformed_http_gets_json_400_and_leaves_the_log_alone(guarded, caplog):
    with socket.create_connection(guarded) as connection:
        connection.sendall(b"BREW /pot HTCPCP/1.0 \x00\x01\r\n\r\n")
        status, headers, body = answer_of(connection)
    assert status == 400 and headers["content-type"] == "application/json"
    assert body == {"error": "malformed HTTP request"}
    assert "Invalid HTTP request" not in caplog.text  # anyone could fill the log otherwise


def connect(address, source: str = "127.0.0.1") -> socket.socket:
    """A connection to ``address`` from ``source`` (any 127.x.y.z is this machine: another
    client address for the server)."""
    return socket.create_connection(address, source_address=(source, 0))


def health(address, source: str = "127.0.0.1") -> int:
    with connect(address, source) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return answer_of(connection)[0]


def test_connections_beyond_the_cap_get_503_and_the_others_are_served(guarded):
    held = [connect(guarded, f"127.0.0.{2 + k // 4}") for k in range(QuickGuard.max_connections)]
    try:
        with connect(guarded, "127.0.0.9") as extra:
            status, headers, body = answer_of(extra)
        assert status == 503 and headers["retry-after"] == "2"
        assert body["error"] == "too many connections; please try again"
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    assert health(guarded) == 200


def test_one_address_holds_at_most_its_share_of_the_connections(guarded):
    """4,096 idle connections from one client made every other client's health a 503."""
    share = QuickGuard.max_connections // QuickGuard.client_share
    held = [connect(guarded, "127.0.0.2") for _ in range(share)]
    try:
        with connect(guarded, "127.0.0.2") as extra:
            status, _, body = answer_of(extra)
        assert status == 503 and "too many connections from your address" in body["error"]
        assert health(guarded, "127.0.0.3") == 200  # another client is served meanwhile
    finally:
        for connection in held:
            connection.close()


@pytest.mark.parametrize(
    "head, what",
    [
        (b"a: b\r\n" * 101, "101 fields"),
        (b"x-big: " + b"y" * 20_000 + b"\r\n", "one field of 20 KB"),
        (b"a: b\r\n" * 3_000_000, "18 MB of fields"),
        (b"x-big: " + b"y" * 5_000_000, "a field of 5 MB, never ended"),
    ],
)
def test_request_headers_beyond_100_fields_or_16_kb_are_431(guarded, head, what, caplog):
    """50 MB of `a: b` lines in one request took the server from 98 MB to 1,176 MB (and got
    a 200); four such connections reached 4.9 GB."""
    with connect(guarded) as connection:
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it stops reading
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
        status, _, body = answer_of(connection)
    assert status == 431, what
    assert body["error"] == "request headers larger than 16 KB or more than 100 fields"
    assert time.monotonic() - started < 5
    assert "Fatal error" not in caplog.text and "Traceback" not in caplog.text


def test_a_request_to_upgrade_to_websocket_is_plain_http_and_no_warning(guarded, caplog):
    """Each such request logged two warnings: 250 of them, 6,200 lines."""
    for _ in range(3):
        with connect(guarded) as connection:
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                               b"Upgrade: websocket\r\n\r\n")  # fmt: skip
            connection.shutdown(socket.SHUT_WR)
            assert answer_of(connection)[0] == 200
    assert "upgrade" not in caplog.text.lower() and "websocket" not in caplog.text.lower()


def test_a_client_that_half_closes_after_its_request_gets_its_answer(guarded):
    """asyncio closed the connection on the client's end of writing (``nc -N``), and the
    answer was lost whenever the route awaited anything (the page, a prediction)."""
    pixels = json.dumps({"pixels": [0] * 784}).encode()
    requests = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(pixels), pixels)]  # fmt: skip
    for request in requests:
        with connect(guarded) as connection:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(5)
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK"), request[:30]


def test_a_client_that_goes_away_mid_body_is_one_line_in_the_log(guarded, caplog):
    """It was logged with two whole tracebacks, ~116 lines."""
    caplog.set_level(logging.INFO)
    with connect(guarded) as connection:
        connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
                           + bytes(1000))  # fmt: skip
        time.sleep(0.2)
    time.sleep(0.5)
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records] == [
        "127.0.0.1 went away before its request's body arrived"
    ]


def test_a_warning_repeated_is_logged_once_a_minute():
    from digitnet.web.protocol import OncePerMinute

    limiter = OncePerMinute()

    def record():
        return logging.LogRecord("x", logging.WARNING, "", 0, "a client did it", (), None)

    assert [limiter.filter(record()) for _ in range(3)] == [True, False, False]
    limiter.last["a client did it"] = (time.monotonic() - 61, 2)
    later = record()
    assert limiter.filter(later) and later.getMessage().endswith(
        "(2 more like it in the last minute)"
    )


# ----------------------------------------------------------------------- Host and Origin


@pytest.fixture(scope="module")
def hosted(catalog):
    """The app served in a thread answering to its port's IP addresses, localhost and
    digits.example."""
    server, thread, address = serve_in_thread(
        catalog, lambda port: Hosts(port, ("digits.example",))
    )
    yield address
    server.should_exit = True
    thread.join(10)


def post_with(address, host: str, *origins: str) -> tuple[int, dict]:
    """A POST of a blank 28x28 to /api/predict, naming ``host`` and each of ``origins``."""
    head = f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    head += "Content-Type: application/json\r\n"
    head += "".join(f"Origin: {origin}\r\n" for origin in origins)
    body = json.dumps({"pixels": [0] * 784}).encode()
    with connect(address) as connection:
        connection.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status, _, answer = answer_of(connection, 10)
    return status, answer


def test_a_host_the_server_does_not_answer_to_is_403(hosted):
    """DNS rebinding: a page of attacker.example, its name pointed at 127.0.0.1, posted
    /api/train with Host and Origin attacker.example, and got 202; it could read too."""
    port = hosted[1]
    status, answer = post_with(hosted, f"attacker.example:{port}",
                               f"http://attacker.example:{port}")  # fmt: skip
    assert status == 403 and "does not answer to the name 'attacker.example:" in answer["error"]
    with connect(hosted) as connection:  # reading too: a rebound page must see nothing
        connection.sendall(f"GET /api/models HTTP/1.1\r\nHost: attacker.example:{port}\r\n"
                           "Connection: close\r\n\r\n".encode())  # fmt: skip
        assert answer_of(connection)[0] == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"digits.example:{port}",
                 f"[::1]:{port}", f"192.168.1.20:{port}", "digits.example"):  # fmt: skip
        assert post_with(hosted, host, f"http://{host}")[0] == 200, host
    assert post_with(hosted, "127.0.0.1:1")[0] == 403  # another port (a proxy may name none)


@pytest.mark.parametrize(
    "origins",
    [
        ["https://{host}"],  # another scheme
        ["http://127.0.0.1:1"],  # another port
        ["http://evil.example", "http://{host}"],  # two Origins: the last one won
        ["null"],
    ],
)
def test_an_origin_of_another_scheme_port_or_several_origins_are_403(hosted, origins):
    host = f"127.0.0.1:{hosted[1]}"
    status, answer = post_with(hosted, host, *(o.format(host=host) for o in origins))
    assert status == 403 and answer["error"] == "cross-site requests are refused"


def test_a_refused_upload_is_read_by_python_s_urllib():
    """The "too many uploads" 503 reached urllib as a connection reset (28 of 40): the 413
    read the body before answering, the 503 did not."""
    import urllib.error
    import urllib.request

    limits = RequestLimits(echo_length, max_bytes=2**20, max_bytes_in_flight=1, body_seconds=5)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(limits, http=QuickGuard, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{listening.getsockname()[1]}/api/predict"
    try:
        for _ in range(10):
            request = urllib.request.Request(url, data=bytes(900_000), headers=PNG)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 503
            assert "too many uploads" in json.load(refused.value)["error"]
    finally:
        server.should_exit = True
        thread.join(10)
