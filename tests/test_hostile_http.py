"""Hostile and odd requests: each gets a JSON 4xx (or the documented 503) that says what is
wrong — never a 500 — from the server itself and from its worker processes alike; and odd
images cost only their own answer on the command line."""

import asyncio
import io
import json
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
from digitnet.web.limits import RequestLimits
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
        ('{"pixels": ' + "[" * 100_000 + "]" * 100_000 + "}", "invalid JSON"),
        ('{"pixels": [[0.5, true]]}', "not an array of numbers"),
        ('{"pixels": ' + json.dumps([[0] * 28] * 27 + [[0] * 27]) + "}", "not an array"),
        ('{"pixels": [NaN]}', "invalid JSON"),
        ('{"pixels": ' + json.dumps([1e308] * 784) + "}", "values from 1e+308"),
    ],
    ids=["nested-1000", "nested-100000", "bool", "ragged", "nan", "huge"],
)
def test_malformed_pixels_are_422(client, body, message):
    answer = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and message in answer.json()["error"]


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
    max_connections = 3


@pytest.fixture(scope="module")
def guarded(catalog):
    """(host, port) of the app served by uvicorn with QuickGuard's limits, in a thread."""
    config = uvicorn.Config(create_app(catalog), http=QuickGuard, port=0, log_level="warning")
    server = uvicorn.Server(config)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield listening.getsockname()
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


def test_connections_beyond_the_cap_get_503_and_the_others_are_served(guarded):
    held = [socket.create_connection(guarded) for _ in range(QuickGuard.max_connections)]
    try:
        with socket.create_connection(guarded) as extra:
            status, headers, body = answer_of(extra)
        assert status == 503 and headers["retry-after"] == "2"
        assert "too many connections" in body["error"]
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    with socket.create_connection(guarded) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = answer_of(connection)
    assert status == 200 and body["status"] == "ok"
