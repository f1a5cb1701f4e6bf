"""Benchmark: draw-to-verdict latency of `digitnet serve` under load, on 127.0.0.1.

Starts the real server (`digitnet serve`, uvicorn) in its own process and runs a bounded load
test against it from this one: CLIENTS concurrent keep-alive connections POST a canvas-sized PNG
(a 280x280 drawing of an MNIST test digit, as the page sends while someone draws) to
/api/predict, and every answer's latency is recorded.

Three ways of pacing each client (one request in flight at a time, always):
  --rate page: a person drawing digit after digit on the page: while the pen moves (0.6-1.5 s
           a digit) a request as soon as the last is answered but at most one per 90 ms, as the
           page sends them; then 2-5 s to read the verdict and clear the canvas.
  --rate R: R requests per second on average (Poisson arrivals).
  --rate 0 (closed loop): the next request as soon as the answer arrives — the server's
           capacity; latency = queueing behind the other clients.

Each load also reports the share of CPU time the hypervisor gave to other virtual machines
("steal", from /proc/stat), which tells a slow run on a busy host from a slow server. Also
measures how long the page takes to load in headless Chromium when it is installed.

With ``--training``, a network is trained from the learn page's API (POST /api/train, the
tutorial's recipe, followed through its events) during every load, one after the other, and
each training's fit time is compared with ``digitnet train``'s with the same settings, run
alone before the loads: the drawings' latency while the server trains, and the training's
cost of serving meanwhile.

    python benchmarks/bench_web.py [--clients 16] [--seconds 15] [--rate page,1,2,0]
                                   [--model cnn] [--workers N] [--photo-every S] [--training]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import asyncio
import io
import json
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

import numpy as np
from common import row
from PIL import Image

from digitnet.data import load_mnist


def canvas_png(digit: np.ndarray) -> bytes:
    """What the page sends: its 280x280 canvas, dark ink on white, as Chromium's ``toDataURL``
    encodes it (checked on the bytes of a real one): RGBA, every row with PNG's "Up" filter,
    zlib at level 1. Pillow's own encoder picks other filters, which take twice as long to
    decode."""
    rgba = np.asarray(
        Image.fromarray(255 - digit).resize((280, 280), Image.BILINEAR).convert("RGBA")
    )
    height, width, _ = rgba.shape
    rows = rgba.reshape(height, width * 4)
    up = np.diff(rows, axis=0, prepend=np.zeros_like(rows[:1]))  # uint8: differences mod 256
    scanlines = np.hstack([np.full((height, 1), 2, np.uint8), up])  # filter type 2, "Up"
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    pixels = zlib.compress(scanlines.tobytes(), 1)
    return b"".join([PNG_SIGNATURE, png_chunk(b"IHDR", header), png_chunk(b"IDAT", pixels),
                     png_chunk(b"IEND", b"")])  # fmt: skip


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, workers: int | None) -> tuple[subprocess.Popen, int]:
    """``digitnet serve`` with ``workers`` (default: its own default), once it answers; and
    how many workers it says it has."""
    command = [sys.executable, "-m", "digitnet", "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    # Its output goes to a file: a pipe nobody reads would stop the server once it filled.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (open as long as the server runs)
    server = subprocess.Popen(command, stdout=log, stderr=log, text=True)
    server.log = log
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as answer:
                return server, json.load(answer)["workers"]
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                log.seek(0)
                raise RuntimeError("the server did not start: " + log.read()) from None
            time.sleep(0.2)


THROTTLE = 0.09  # the page: at most one request per 90 ms while the pen moves
STROKES = (0.6, 1.5)  # seconds a person spends drawing one digit
PAUSE = (2.0, 5.0)  # seconds spent reading the verdict and clearing the canvas


class Pacing:
    """When a client sends its next request, given when it sent the last and got the answer.

    ``rate`` > 0: Poisson arrivals at that mean rate; 0: a closed loop (at once); "page": a
    person drawing digit after digit on the page — while the pen moves (0.6-1.5 s a digit),
    one request in flight and at most one per 90 ms; then a pause of 2-5 s.
    """

    def __init__(self, rate: float | str, rng: np.random.Generator):
        self.rate, self.rng = rate, rng
        self.planned = 0.0  # Poisson: the next arrival; page: the end of the current digit

    def first(self, now: float) -> float:
        if self.rate == "page":
            start = now + self.rng.uniform(0, PAUSE[1])
            self.planned = start + self.rng.uniform(*STROKES)
            return start
        self.planned = now + (self.rng.exponential(1 / self.rate) if self.rate else 0.0)
        return self.planned

    def next(self, sent: float, answered: float) -> float:
        if self.rate == "page":
            at = max(answered, sent + THROTTLE)
            if at > self.planned:  # the digit is drawn: read the verdict, clear, start again
                at = self.planned + self.rng.uniform(*PAUSE)
                self.planned = at + self.rng.uniform(*STROKES)
            return at
        if not self.rate:
            return answered
        self.planned += self.rng.exponential(1 / self.rate)
        return self.planned


async def client(port, path, body, stop_at, pacing, latencies, errors):
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    connection = None
    next_send = pacing.first(time.perf_counter())
    try:
        while next_send < stop_at:
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
            start = time.perf_counter()
            for attempt in (1, 2):  # the server closes connections idle for 5 s: reconnect
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                try:
                    status_line = await exchange(*connection, request)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    connection[1].close()
                    connection = None
                    if attempt == 2:
                        raise
            answered = time.perf_counter()
            latencies.append(answered - start)
            if b" 200 " not in status_line:
                errors.append(status_line.decode().strip())
            next_send = pacing.next(start, answered)
    finally:
        if connection is not None:
            connection[1].close()


async def exchange(reader, writer, request: bytes) -> bytes:
    """Send one request and read its whole answer; the status line."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status_line


async def load(port, path, body, clients, seconds, rate, photo=None, photo_every=0.0,
               trainings=None):  # fmt: skip
    """Latencies and errors of the drawing clients, and the photo client's latencies (one more
    client sending ``photo`` every ``photo_every`` seconds on average, when given). With a
    list ``trainings``, a training runs all along, one after the other: each one's fit time is
    added to it."""
    latencies, errors, photo_latencies = [], [], []
    stop_at = time.perf_counter() + seconds
    rng = np.random.default_rng(0)
    tasks = [client(port, path, body, stop_at, Pacing(rate, rng), latencies, errors)
             for _ in range(clients)]  # fmt: skip
    if photo is not None:
        pacing = Pacing(1 / photo_every, rng)
        tasks.append(client(port, path, photo, stop_at, pacing, photo_latencies, errors))
    if trainings is not None:
        tasks.append(trainer(port, stop_at, trainings, errors))
    await asyncio.gather(*tasks)
    return latencies, errors, photo_latencies


async def trainer(port, stop_at, trainings, errors):
    """Train the tutorial's network from the API, again and again until ``stop_at``: POST
    /api/train, then read its Server-Sent Events to the end."""
    while time.perf_counter() < stop_at:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/train HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        answer = await reader.read()
        writer.close()
        if b" 202 " not in answer.split(b"\r\n", 1)[0]:
            errors.append("training: " + answer.split(b"\r\n", 1)[0].decode())
            return
        events = json.loads(answer.split(b"\r\n\r\n", 1)[1])["events"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {events} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        kind = None
        while line := await reader.readline():
            if line.startswith(b"event: "):
                kind = line[7:].strip()
            elif line.startswith(b"data: ") and kind in (b"done", b"error"):
                data = json.loads(line[6:])
                if kind == b"error":
                    errors.append(f"training: {data['error']}")
                elif time.perf_counter() < stop_at:  # a whole training within the load
                    trainings.append(data["fit_seconds"])
                break
        writer.close()


def fit_seconds_of_digitnet_train() -> float:
    """``digitnet train``'s fit time for the tutorial's recipe, as its model file records it."""
    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/tutorial.npz"
        subprocess.run([sys.executable, "-m", "digitnet", "train", "--quiet", "--out", out],
                       check=True, capture_output=True)  # fmt: skip
        from digitnet.nn import load_model

        return load_model(out).metadata["training_seconds"]


def photo_jpeg(digit: np.ndarray) -> bytes:
    """A 12-megapixel phone 'photo' (4000x3000 JPEG) of the digit on grainy, unevenly lit paper."""
    page = np.full((3000, 4000), 200.0) + np.linspace(-25, 25, 4000)[None, :]
    page += np.random.default_rng(0).normal(0, 6, page.shape)
    ink = np.asarray(Image.fromarray(digit).resize((1500, 1500), Image.BILINEAR))
    page[750:2250, 1250:2750] -= 0.7 * ink
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def page_load_seconds(url: str) -> float | None:
    """Median of 5 loads of the page in headless Chromium (navigation start to the model list
    shown), or None without Playwright/Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            for _ in range(5):
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(url)
                page.wait_for_selector("body[data-ready=true]")
                times.append(time.perf_counter() - start)
                page.close()
            browser.close()
    except Exception as err:  # no browser here: the load test still stands
        print(f"  (page load not measured: {err.__class__.__name__})")
        return None
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--rate",
        default="page,1,2,0",
        help="requests/s per client, 0 for a closed loop, page for people drawing; several: 1,0",
    )
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--workers", type=int, help="default: digitnet serve's (one per core)")
    parser.add_argument(
        "--photo-every", type=float, default=0.0, metavar="S",
        help="one more client, uploading a 12-MP photo every S s on average",
    )  # fmt: skip
    parser.add_argument("--training", action="store_true",
                        help="train the tutorial's network from the API in every load")  # fmt: skip
    args = parser.parse_args()
    rates = [r if r == "page" else float(r) for r in args.rate.split(",")]
    alone = None
    if args.training:
        alone = [fit_seconds_of_digitnet_train() for _ in range(3)]
        print(row("digitnet train (tutorial recipe) alone: fit, 3 runs",
                  " / ".join(f"{s:.2f}" for s in alone) + " s"))  # fmt: skip
    _, (x_test, _) = load_mnist()
    body = canvas_png(x_test[0])
    port = free_port()
    server, workers = start_server(port, args.workers)
    runs = []
    try:
        path = f"/api/predict?model={args.model}"
        asyncio.run(load(port, path, body, 2, 1.0, 0))  # warm up
        photo = photo_jpeg(x_test[0]) if args.photo_every else None
        print(
            f"POST /api/predict, {len(body):,}-byte 280x280 RGBA PNG, model {args.model}, "
            f"{args.clients} clients, {workers} worker(s), {args.seconds:g} s per load"
        )
        for rate in rates:
            before = cpu_times()
            trainings = [] if args.training else None
            work = load(port, path, body, args.clients, args.seconds, rate, photo,
                        args.photo_every, trainings)  # fmt: skip
            latencies, errors, photos = asyncio.run(work)
            runs.append(report(rate, np.array(latencies) * 1000, errors, args.seconds))
            if trainings:
                slower = np.median(trainings) / np.median(alone) - 1
                runs[-1]["trainings_fit_s"] = trainings
                print(row(f"  {len(trainings)} trainings meanwhile: fit, median",
                          f"{np.median(trainings):.2f} s",
                          f"{slower:+.0%} against digitnet train alone"))  # fmt: skip
            runs[-1]["steal"] = stolen(before, cpu_times())
            if runs[-1]["steal"] is not None:
                print(row("  CPU time taken by the VM's neighbours", f"{runs[-1]['steal']:.1%}"))
            if photos:
                ms = np.array(photos) * 1000
                print(row(f"  {len(photos)} photos (12 MP JPEG): median / max",
                          f"{np.median(ms):.0f} / {ms.max():.0f} ms"))  # fmt: skip
        page = page_load_seconds(f"http://127.0.0.1:{port}/")
    finally:
        server.terminate()
        server.wait(10)
    if page is not None:
        print(row("page load (headless Chromium)", f"{1000 * page:.0f} ms",
                  f"{'meets' if page <= 1 else 'MISSES'} the 1 s target"))  # fmt: skip
    print(json.dumps({"runs": runs, "page_load_s": page, "train_alone_fit_s": alone}))
    return 0


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far by kind (Linux's /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None


def stolen(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the CPU time between two ``cpu_times`` that the hypervisor gave to other
    virtual machines ("steal"): a run with much of it says more about the neighbours."""
    if before is None or after is None or len(before) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return spent[7] / max(1, sum(spent))


def report(rate: float | str, ms: np.ndarray, errors: list, seconds: float) -> dict:
    median, p99 = float(np.median(ms)), float(np.percentile(ms, 99))
    mode = {"page": "drawing on the page", 0: "closed loop"}.get(rate) or f"{rate:g} req/s each"
    verdict = "meets" if median <= 20 and p99 <= 50 and not errors else "MISSES"
    print(row(f"{mode}: answered / errors / throughput",
              f"{len(ms)} / {len(errors)} / {len(ms) / seconds:.0f} req/s"))  # fmt: skip
    print(row(f"{mode}: latency median / p99", f"{median:.1f} / {p99:.1f} ms",
              f"{verdict} the 20 / 50 ms target"))  # fmt: skip
    return {"rate": rate, "median_ms": median, "p99_ms": p99, "requests": len(ms),
            "errors": len(errors)}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
