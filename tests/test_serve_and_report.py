"""`digitnet serve` and `digitnet report` from the command line."""

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from digitnet.cli import default_workers, main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(*options: str, port: int | None = None, **popen):
    """``digitnet serve --port P *options`` in its own process (``popen``: more Popen options)
    until it answers /api/health: (the process, its base URL, the health answer); stopped on
    leaving."""
    port = port or free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "digitnet", "serve", "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health") as answer:
                    health = json.load(answer)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        yield server, url, health
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_serve_answers_on_127_0_0_1_with_the_bundled_models():
    with serving() as (server, url, health):
        banner = server.stdout.readline()
        assert f"cnn, tutorial at {url}/" in banner
        assert health["models"] == ["cnn", "tutorial"]
        assert health["workers"] == default_workers()  # one per core unless told


@pytest.mark.slow
def test_two_workers_serve_the_command_line_s_model_within_its_upload_limit(mnist, tmp_path):
    from pictures import digit_png

    from digitnet.zoo import bundled_model

    _, (x_test, y_test) = mnist
    bundled_model("tutorial").save(tmp_path / "mine.npz")  # a model only the command line names
    options = ("--workers", "2", "--model", str(tmp_path / "mine.npz"), "--max-upload-mb", "0.5")
    with serving(*options) as (_, url, health):

        def post(body: bytes):
            request = urllib.request.Request(f"{url}/api/predict", data=body,
                                             headers={"Content-Type": "image/png"})  # fmt: skip
            try:
                with urllib.request.urlopen(request) as answer:
                    return answer.status, json.load(answer)
            except urllib.error.HTTPError as err:
                return err.code, json.load(err)

        assert health["models"] == ["mine"] and health["workers"] == 2
        answers = [post(digit_png(x_test[i])) for i in range(6)]  # worked out by the workers
        assert all(status == 200 and a["model"] == "mine" for status, a in answers)
        assert sum(a["digit"] == y_test[i] for i, (_, a) in enumerate(answers)) >= 5
        # Over the limit: refused from the declared length, before any of the body is sent (a
        # client still sending when the server closes would see a broken pipe, not the 413).
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        connection.putrequest("POST", "/api/predict")
        connection.putheader("Content-Type", "image/png")
        connection.putheader("Content-Length", "600000")
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413 and "larger than 0.5 MB" in json.load(answer)["error"]
        connection.close()


@pytest.mark.slow
def test_ctrl_c_stops_the_server_and_its_workers_quietly():
    """Ctrl-C in a terminal signals the whole process group, workers included."""
    import os
    import signal

    with serving("--workers", "2", start_new_session=True) as (server, _, health):
        assert health["workers"] == 2
        try:
            os.killpg(server.pid, signal.SIGINT)
            _, errors = server.communicate(timeout=20)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
    assert "Traceback" not in errors and "Error" not in errors, errors
    deadline = time.monotonic() + 5  # nothing left of the group: the workers stopped too
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(server.pid, 0)
            time.sleep(0.05)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "--port", "0"], "argument --port: must be in 1-65535"),
        (["serve", "--port", "70000"], "argument --port: must be in 1-65535"),
        (["serve", "--port", "http"], "argument --port: expected a port number"),
        (["serve", "--max-upload-mb", "-1"], "argument --max-upload-mb: must be in (0, 50]"),
        (["serve", "--max-upload-mb", "1e308"], "argument --max-upload-mb: must be in (0, 50]"),
        (["serve", "--colour"], "unrecognized arguments: --colour"),
        (["report"], "the following arguments are required: MODEL"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_stopped_server_can_be_restarted_on_its_port_at_once():
    """The connections it answered linger in TIME_WAIT for a minute; they must not hold the port."""
    with serving("--workers", "1") as (_, url, _):
        port = url.rsplit(":", 1)[1]
    with serving("--workers", "1", port=port) as (_, again, health):
        assert again == url and health["status"] == "ok"


def test_serve_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "none.npz")]) == 1
    assert "no such model file" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert f"cannot listen on 127.0.0.1:{port}" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""  # no URL announced for a server that never listened


@pytest.mark.slow
def test_report_writes_pictures_and_a_page_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "tutorial", "--out", str(out)]) == 0
    assert f"wrote {out / 'index.html'}" in capsys.readouterr().out
    names = ["training_curves.png", "confusion_matrix.png", "first_layer.png", "mistakes.png"]
    page = (out / "index.html").read_text()
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page
    assert "93.16%" in page and "13,002 parameters" in page
    before = (out / "index.html").stat().st_mtime_ns
    assert main(["report", "tutorial", "--out", str(out)]) == 1
    assert "a report is there already (--force replaces it)" in capsys.readouterr().err
    assert (out / "index.html").stat().st_mtime_ns == before
    assert main(["report", "tutorial", "--out", str(out), "--force"]) == 0
    assert (out / "index.html").stat().st_mtime_ns != before


def test_report_never_writes_through_a_link_planted_in_its_folder(tmp_path, capsys):
    """A link in the report's folder made the report write a file outside it."""
    out, outside = tmp_path / "report", tmp_path / "precious.txt"
    out.mkdir()
    outside.write_text("precious")
    (out / "mistakes.png").symlink_to(outside)
    (out / "index.html").symlink_to(tmp_path / "nothing-here.html")
    for force in ([], ["--force"]):
        assert main(["report", "tutorial", "--out", str(out), *force]) == 1
        assert "is a symbolic link to" in capsys.readouterr().err
    assert outside.read_text() == "precious" and not (tmp_path / "nothing-here.html").exists()
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "mistakes.png"]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc")
def test_sigterm_stops_a_server_whose_workers_are_stuck(mnist):
    """A request waiting on a stuck worker must not keep the server from stopping."""
    import os
    import signal
    import threading

    from pictures import digit_png

    with serving("--workers", "2") as (server, url, _):
        workers = children(server.pid)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        request = urllib.request.Request(f"{url}/api/predict", data=digit_png(mnist[1][0][0]),
                                         headers={"Content-Type": "image/png"})  # fmt: skip

        def post():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=60)

        threading.Thread(target=post, daemon=True).start()
        time.sleep(0.5)
        start = time.monotonic()
        server.terminate()
        server.wait(20)
        stopped_in = time.monotonic() - start
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert stopped_in < 7, stopped_in  # the request's own limit is 30 s; it took 10.8 s


@pytest.mark.slow
def test_a_worker_killed_while_the_server_starts_costs_nothing():
    """It killed the server ("Application startup failed", exit 3) after the banner had
    announced the URL: the banner now comes once the server can answer."""
    import os
    import signal

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--port", str(port),
                               "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not children(server.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(children(server.pid)[0], signal.SIGKILL)  # while it loads its models
        banner = server.stdout.readline()
        assert banner.startswith("digitnet serve: cnn, tutorial at"), server.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as answer:
            assert json.load(answer)["status"] == "ok"  # announced: it answers at once
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc")
def test_a_worker_that_stops_reading_costs_the_server_nothing(mnist):
    """SIGSTOP the large-image worker, post an image of 256 KB or more: the job was written
    to its pipe with a blocking write on the event loop, and health, every request and even
    SIGTERM waited for good."""
    import os
    import signal
    import threading

    from pictures import photo_of

    photo = photo_of(mnist[1][0][8], (3000, 2400))
    assert len(photo) > 2**20
    with serving("--workers", "2") as (server, url, _):
        base = os.getpriority(os.PRIO_PROCESS, 0)
        (large,) = [pid for pid in children(server.pid)
                    if os.getpriority(os.PRIO_PROCESS, pid) > base]  # fmt: skip
        os.kill(large, signal.SIGSTOP)
        answers = []
        request = urllib.request.Request(f"{url}/api/predict", data=photo,
                                         headers={"Content-Type": "image/jpeg"})  # fmt: skip
        post = threading.Thread(target=lambda: answers.append(
            json.load(urllib.request.urlopen(request, timeout=60))))  # fmt: skip
        post.start()
        time.sleep(0.5)
        started = time.monotonic()
        with urllib.request.urlopen(f"{url}/api/health", timeout=5):
            assert time.monotonic() - started < 2
        post.join(60)
        assert answers and answers[0]["digit"] == mnist[1][1][8]  # by a replacement
        started = time.monotonic()
        server.terminate()
        server.wait(20)
        assert time.monotonic() - started < 7


def test_the_listening_socket_lets_asyncio_turn_nagle_off():
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; without it, an
    answer written in two parts waited ~40 ms for a delayed ACK (p99 11 -> 50 ms)."""
    from digitnet.cli import listen

    with listen("127.0.0.1", 0) as listening:
        assert listening.proto == socket.IPPROTO_TCP


def test_report_pictures_read_well_for_one_epoch_and_dark_cells():
    """A 1-epoch model's curves had epoch ticks 0.945-1.050; the confusion matrix's black
    numbers sat on its darkest cells, its colour bar counted in fractions."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from digitnet.modelcard import Scorecard
    from digitnet.report import plot_confusion, plot_training

    curves = plot_training({"loss": [0.5], "val_loss": [0.4], "accuracy": [0.9]})
    for axis in curves.axes:
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks == [1.0]
    confusion = np.diag(np.full(10, 900))
    confusion[3, 5], confusion[4, 9], confusion[7, 2] = 7, 2, 1
    card = Scorecard(0.99, 9010, confusion, [], np.zeros((0, 28, 28), np.uint8))
    figure = plot_confusion(card)
    matrix, bar = figure.axes
    colour = {text.get_text(): text.get_color() for text in matrix.texts}
    assert colour["7"] == "white" and colour["2"] == colour["1"] == "black"
    assert all(float(t).is_integer() for t in bar.get_yticks())
