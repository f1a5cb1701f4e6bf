"""Benchmark: from lifting the pen to the verdict for the whole drawing, in a real Chromium.

Serves the bundled models on 127.0.0.1 and draws a 7 on the page with the mouse, one stroke
of 50 moves 16-26 ms apart as a hand does, STROKES times. For each stroke it records, in the
page, when the pen lifted, when each /api/predict was sent and when the verdict last changed:

- delay: pen lifted -> the verdict's last change (the answer for the whole drawing);
- stale: strokes whose last request was sent before the pen lifted (their verdict may answer
  a drawing without its last moves).

Headless by default; ``--headed`` shows a real window, to be run under a display, for example
``xvfb-run -a python benchmarks/bench_lift.py --headed`` (apt-get install xvfb).

    python benchmarks/bench_lift.py [--strokes 28] [--headed]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time

from common import row

# Recorded in the page: each request's path and start, each change of the verdict, the lift.
WATCH = """
window.events = [];
const fetchNow = window.fetch;
window.fetch = (path, options) => {
  window.events.push(["ask", String(path).split("?")[0], performance.now()]);
  return fetchNow(path, options);
};
window.addEventListener("DOMContentLoaded", () => new MutationObserver(
  () => window.events.push(["verdict", "", performance.now()])
).observe(document.getElementById("verdict"),
           { subtree: true, childList: true, attributes: true }));
window.addEventListener("pointerup",
                        () => window.events.push(["lift", "", performance.now()]), true);
"""


def serve() -> tuple[str, object]:
    import uvicorn

    from digitnet.web.app import create_app
    from digitnet.web.catalog import load_catalog

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(load_catalog()), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/", server


def seven(page, stroke: int) -> tuple[float, bool]:
    """Draws a 7 in one stroke; (ms from the lift to the verdict's last change, stale?)."""
    box = page.locator("#canvas").bounding_box()
    points = [(0.25 + 0.025 * i, 0.25) for i in range(21)]
    points += [(0.75 - 0.01 * i, 0.25 + 0.55 * i / 30) for i in range(1, 31)]
    at = [(box["x"] + u * box["width"], box["y"] + v * box["height"]) for u, v in points]
    page.click("#clear")
    page.wait_for_timeout(300)
    page.evaluate("window.events = []")
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point)
        page.wait_for_timeout(16 + 5 * (stroke % 3))
    page.mouse.up()
    page.wait_for_timeout(1500)  # longer than any delay worth measuring here
    events = page.evaluate("window.events")
    lift = next(t for kind, _, t in events if kind == "lift")
    verdicts = [t for kind, _, t in events if kind == "verdict" and t >= lift]
    asks = [t for kind, path, t in events if kind == "ask" and path == "/api/predict"]
    delay = (verdicts[-1] - lift) if verdicts else float("nan")
    return delay, not asks or asks[-1] < lift


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=28)
    parser.add_argument("--headed", action="store_true", help="a real window (needs a display)")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is not installed: pip install -e '.[test]'")
        return 0
    url, server = serve()
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        if not args.headed:
            flags.append("--headless=new")
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    headless=not args.headed, args=flags)  # fmt: skip
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.add_init_script(WATCH)
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        results = [seven(page, stroke) for stroke in range(args.strokes)]
        browser.close()
    server.should_exit = True
    delays = [delay for delay, _ in results]
    late = sum(delay > 500 for delay in delays)
    where = "headed Chromium" if args.headed else "headless Chromium"
    print(f"Pen lifted -> verdict for the whole drawing, {args.strokes} strokes, {where}:")
    print(row("median", f"{statistics.median(delays):.0f} ms"))
    print(row("slowest", f"{max(delays):.0f} ms"))
    print(row("later than 0.5 s", f"{late} of {len(delays)}"))
    stale = sum(stale for _, stale in results)
    print(row("last request sent before the lift", f"{stale} of {len(results)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
