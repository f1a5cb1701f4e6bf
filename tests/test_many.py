"""Many files at once (``digitnet.many``, ``predict``/``read --jobs/--resume/--dask``): every
core or a Dask cluster, the same answers in the same order, a bad file or a dead worker costing
only its own answer, a stopped run resumed to the very output of an uninterrupted one."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pictures import png_bytes

from digitnet import many
from digitnet.many import Task, answer, answered, walk

DIGITNET = [sys.executable, "-m", "digitnet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist):
    """300 digit images in two sub-folders, a file that is not an image, an empty folder."""
    _, (x_test, _) = mnist
    root = tmp_path_factory.mktemp("many")
    for i in range(300):
        part = root / ("b" if i % 2 else "a")
        part.mkdir(exist_ok=True)
        (part / f"{i:03d}.png").write_bytes(png_bytes(255 - x_test[i]))
    (root / "a" / "broken.png").write_bytes(b"not a png")
    (root / "empty").mkdir()
    return root


def same_answers(a: list[dict], b: list[dict]) -> None:
    """The same files, digits and reasons; probabilities equal to float32 rounding (BLAS
    threads differ between processes)."""
    assert [r["file"] for r in a] == [r["file"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.get("digit") == y.get("digit") and x.get("error") == y.get("error")
        if x.get("confidence") is not None:
            assert x["confidence"] == pytest.approx(y["confidence"], abs=1e-5)


def test_walk_is_lazy_sorted_and_names_what_it_cannot_read(folder):
    found = walk([str(folder), str(folder / "empty"), str(folder / "missing.png")])
    first = next(found)  # a generator: nothing is listed before it is needed
    assert first == (str(folder / "a" / "000.png"), None)
    rest = list(found)
    names = [name for name, _ in [first, *rest]]
    assert names[:3] == [str(folder / "a" / n) for n in ("000.png", "002.png", "004.png")]
    problems = dict(entry for entry in rest if entry[1])
    assert problems == {str(folder / "empty"): "no image files in this folder",
                        str(folder / "missing.png"): "no such file or folder"}  # fmt: skip


@pytest.mark.slow
def test_two_processes_give_the_answers_of_one_in_the_same_order(folder):
    task = Task.of("predict")
    alone = list(answer(walk([str(folder)]), task, jobs=1))
    shared = list(answer(walk([str(folder)]), task, jobs=2))
    assert len(alone) == 301 and len(alone) > many.SMALL_RUN * many.CHUNK  # workers were used
    same_answers(alone, shared)
    broken = [r for r in shared if r["file"].endswith("broken.png")]
    assert broken[0]["error"].startswith("not an image file")  # the file is named once, above
    unordered = list(answer(walk([str(folder)]), task, jobs=2, ordered=False))
    same_answers(sorted(alone, key=lambda r: r["file"]), sorted(unordered, key=lambda r: r["file"]))


@pytest.mark.slow
def test_a_resumed_run_answers_each_file_to_the_last_bit_as_an_unstopped_one(folder):
    """A run stopped in the middle of a chunk (Ctrl-C between two of its lines) was resumed
    with chunks that began at the first file not answered: each later file sat in another row
    of its forward pass, and BLAS, which works in tiles of rows, gave its probabilities other
    last bits (the ctrl-c resume test failed now and then, under load). The files answered
    keep their places now, marked ANSWERED, and get no answer again."""
    task = Task.of("predict")
    entries = list(walk([str(folder)]))
    whole = list(answer(entries, task, jobs=1))
    for stop in (5, 37, 150):  # lines written before the stop: mid-chunk each time
        done = {name for name, _ in entries[:stop]}
        resumed = list(answer(many.not_answered(entries, done), task, jobs=1))
        assert resumed == whole[stop:]  # every field, every bit


def test_a_model_that_is_not_one_is_one_line_before_any_answer(folder, tmp_path):
    """Many files (worker processes) and a --model that is no model: it failed every worker's
    start and each file was 'a worker process died reading it', a traceback a worker; a named
    pipe as --model waited for a writer for ever. Now: one line, no table, no CSV."""
    import stat

    not_a_model, pipe = tmp_path / "model.npz", tmp_path / "pipe"
    not_a_model.write_bytes(b"not a model")
    os.mkfifo(pipe)
    for model, words in ((not_a_model, "not a digitnet model file (not an .npz archive)"),
                         (pipe, "is a named pipe, not a file")):  # fmt: skip
        table = tmp_path / "answers.csv"
        ran = subprocess.run([*DIGITNET, "predict", str(folder), "--jobs", "2", "--model",
                              str(model), "--csv", str(table)], capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
        assert ran.returncode == 1 and ran.stdout == "" and not table.exists()
        assert ran.stderr.splitlines() == [f"digitnet predict: error: {model}: {words}"]
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_a_file_too_large_names_the_file_once(folder, monkeypatch):
    from digitnet.vision import loading

    monkeypatch.setattr(loading, "MAX_BYTES", 100)  # every digit's PNG is larger
    records = list(answer(walk([str(folder / "a" / "000.png")]), Task.of("predict")))
    [record] = records
    assert record["file"] == str(folder / "a" / "000.png")
    assert record["error"].startswith("larger than")  # not the file's name again


@pytest.mark.slow
def test_a_worker_that_dies_costs_no_answer(folder):
    """A worker process killed mid-run (as the out-of-memory killer would): it is replaced, the
    chunks it and the others had are answered again, and every file gets its answer — the one
    a run without the kill gives, to the last bit (the killed chunk's files were answered each
    in row 0 of a pass of its own: other last bits)."""
    task = Task.of("predict")
    expected = list(answer(walk([str(folder)]), task, jobs=2))
    got, killed = [], False
    for record in answer(walk([str(folder)]), task, jobs=2):
        got.append(record)
        if len(got) == 40 and not killed:
            import multiprocessing

            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed = True
    assert killed
    assert got == expected  # every field, every bit: each file answered again in its own row


HALF_WRITTEN = """
import os, signal, struct, sys
from digitnet import many
from digitnet.many.window import windowed
from digitnet.many.workers import Workers

if __name__ == "__main__":
    task, files = many.Task.of("predict"), many.chunks(many.walk([sys.argv[1]]))
    with Workers(task, 2) as workers:
        for n, record in enumerate(windowed(workers, files, 8, ordered=True)):
            print(record["file"], record.get("digit"), flush=True)
            if n == 40:  # a worker dies half-way through writing an answer:
                results = workers.pool._result_queue._writer  # the pipe holds half a message
                os.write(results.fileno(), struct.pack("!i", 100_000) + b"half a message")
                victim = next(iter(workers.pool._processes.values()))
                os.kill(victim.pid, signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_worker_that_dies_writing_an_answer_costs_no_answer(folder, tmp_path):
    """The pool's own thread then waits for the rest of the answer, not for its workers: the
    run waited forever; now the pool is stopped and the chunks out are answered again."""
    expected = [
        f"{r['file']} {r.get('digit')}" for r in answer(walk([str(folder)]), Task.of("predict"))
    ]
    script = tmp_path / "half_written.py"
    script.write_text(HALF_WRITTEN)
    ran = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == expected


@pytest.mark.slow
def test_read_shares_the_work_too(folder):
    task = Task.of("read")
    files = [str(folder / "a" / f"{i:03d}.png") for i in range(0, 40, 2)]
    alone = list(answer(walk(files), task, jobs=1))
    assert [r["text"] for r in alone[:3]] == ["7", "1", "4"]
    same_answers(alone, list(answer(walk(files * 15), task, jobs=2))[: len(files)])


def test_answered_drops_a_line_cut_short(tmp_path):
    out = tmp_path / "out.jsonl"
    first = json.dumps({"file": "a.png", "digit": 1}) + "\n"
    for cut in ('{"file": "b.pn', json.dumps({"file": "b.png", "digit": 2})):  # no newline yet
        out.write_text(first + cut)
        assert answered(out) == {"a.png"}
        assert out.read_text() == first
    assert answered(tmp_path / "none.jsonl") == set()


def run_until(args, out: Path, lines: int, sig: int, env=None) -> subprocess.CompletedProcess:
    """Start ``digitnet ARGS``, send it ``sig`` once ``out`` holds ``lines`` lines."""
    process = subprocess.Popen([*DIGITNET, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=_default_ctrl_c)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= lines:
            process.send_signal(sig)
            break
        time.sleep(0.01)
    _, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(args, process.returncode, "", err)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_resume_after_a_stop_halfway_gives_the_output_of_an_uninterrupted_run(folder, tmp_path,
                                                                             sig):  # fmt: skip
    big = tmp_path / "big"  # 1,204 files: answers come a window of 256 at a time
    for copy in range(4):
        for path in folder.rglob("*.png"):
            target = big / f"copy{copy}" / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    args = ["predict", str(big), "--jobs", "2"]
    assert subprocess.run([*DIGITNET, *args, "--resume", str(whole)], capture_output=True,
                          check=False).returncode == 1  # fmt: skip # the broken file
    marker = {**os.environ, "DIGITNET_TEST_RUN": str(tmp_path)}  # to find its workers after
    stopped = run_until([*args, "--resume", str(part)], part, 150, sig, env=marker)
    assert 150 <= part.read_bytes().count(b"\n") < 1204
    if sig == signal.SIGINT:
        assert stopped.returncode == 130 and "interrupted" in stopped.stderr
        time.sleep(0.5)
        assert not processes_with(str(tmp_path))  # no worker is left behind
    broken_left = 4 - sum(b"broken.png" in line for line in part.read_bytes().splitlines())
    again = subprocess.run([*DIGITNET, *args, "--resume", str(part)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert again.returncode == (1 if broken_left else 0)  # the status of this run's files
    assert part.read_bytes() == whole.read_bytes()


@pytest.mark.slow
def test_resume_refuses_a_file_answered_by_another_command_or_model(tmp_path, mnist):
    """A --resume file answered with one model and resumed with another mixed the two models'
    answers in one file, silently, and `read` skipped every file `predict` had answered. Each
    line now says who answered it; another command or model is one line, the file untouched."""
    _, (x_test, _) = mnist
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        (few / f"{i}.png").write_bytes(png_bytes(255 - x_test[i]))
    out = tmp_path / "answers.jsonl"

    def run(*args):
        return subprocess.run([*DIGITNET, *args, str(few), "--jobs", "1", "--resume", str(out)],
                              capture_output=True, text=True, check=False)  # fmt: skip

    assert run("predict", "--model", "tutorial").returncode == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and {r["command"] for r in records} == {"predict"}
    assert {r["model"] for r in records} == {"tutorial"}
    assert {len(r["model_sha256"]) for r in records} == {64}
    before = out.read_bytes()
    for other in (["predict"], ["read", "--model", "tutorial"]):  # another model, command
        refused = run(*other)
        assert refused.returncode == 1 and refused.stdout == ""
        (line,) = refused.stderr.splitlines()
        assert "holds answers of `digitnet predict --model tutorial` (sha256" in line
        assert out.read_bytes() == before
    again = run("predict", "--model", "tutorial")  # the same: every file answered already
    assert again.returncode == 0 and ".png" not in again.stdout and out.read_bytes() == before


STOPPED_POOL = """
import multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor
from digitnet.parallel import stop_now

def result(_):
    return bytes(200_000)  # more than a pipe holds: a worker is killed half-way through it

if __name__ == "__main__":
    pool = ProcessPoolExecutor(2, multiprocessing.get_context("spawn"))
    futures = [pool.submit(result, i) for i in range(8)]
    futures[0].result()
    stop_now(pool)
"""


def test_a_pool_stopped_while_its_workers_write_results_lets_the_program_end(tmp_path):
    script = tmp_path / "stopped_pool.py"
    script.write_text(STOPPED_POOL)
    for _ in range(3):  # the interpreter's exit waited forever (CPython's pool thread)
        ended = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               timeout=60, check=False)  # fmt: skip
        assert ended.returncode == 0, ended.stderr


def _default_ctrl_c() -> None:
    """SIGINT as a terminal delivers it: a test run started in the background (as CI may be)
    inherits it ignored, and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def processes_with(marker: str) -> list[int]:
    """Processes whose environment carries DIGITNET_TEST_RUN=marker (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"DIGITNET_TEST_RUN={marker}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_answers(folder):
    import distributed

    task = Task.of("predict")
    expected = list(answer(walk([str(folder)]), task, jobs=1))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        on_cluster = list(answer(walk([str(folder)]), task, dask=cluster.scheduler_address))
    same_answers(expected, on_cluster)


def test_the_library_answers_files_on_several_processes(folder):
    import digitnet

    files = [str(folder / "a" / f"{i:03d}.png") for i in range(0, 20, 2)]
    records = list(digitnet.recognize_many(files, jobs=2))
    assert [r["digit"] for r in records[:3]] == [7, 1, 4]
    assert np.isclose(sum(records[0]["probabilities"]), 1, atol=1e-5)


def test_a_wrong_cluster_address_is_one_line(folder, capsys):
    from digitnet.cli import main

    assert main(["predict", str(folder), "--dask", "nonsense"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a Dask scheduler's address" in err[0]


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 whose connections get ``say`` bytes, then silence."""
    import socket

    servers = []

    def make(say: bytes) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def accept():
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = server.accept()
                    servers.append(connection)
                    connection.sendall(say)

        threading.Thread(target=accept, daemon=True).start()
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield make
    for server in servers:
        server.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "say, words",
    [
        (b"", "nothing at tcp://127.0.0.1:"),  # hung digitnet for good
        (b"HTTP/1.1 400 Bad Request\r\n\r\n" * 10, "does not answer as a Dask scheduler"),
    ],
    ids=["silent", "not dask"],
)  # the second was `Unable to allocate 3.07 EiB`
def test_what_is_not_a_dask_scheduler_is_one_line_in_bounded_time(
    folder, capsys, monkeypatch, listener, say, words
):
    from digitnet.cli import main
    from digitnet.many import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    started = time.monotonic()
    assert main(["predict", str(folder), "--dask", listener(say)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert words in line and time.monotonic() - started < 5


def test_a_dask_address_of_an_unknown_transport_is_one_line(folder, capsys):
    """ucx:// was a TypeError traceback."""
    from digitnet.cli import main

    assert main(["predict", str(folder), "--dask", "ucx://127.0.0.1:8786"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "does not answer as a Dask scheduler" in line


@pytest.fixture
def seven(tmp_path, mnist):
    _, (x_test, _) = mnist
    path = tmp_path / "seven.png"
    path.write_bytes(png_bytes(255 - x_test[0]))
    return path


def resumed_with(out, image, capsys) -> tuple[int, str, str]:
    from digitnet.cli import main

    status = main(["predict", str(image), "--jobs", "1", "--model", "tutorial",
                   "--resume", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    "content",
    [
        Path(__file__).parent.parent / "src/digitnet/models/tutorial.npz",  # a model file
        b"my notes\nsecond line\n",
        b"my notes, no newline at the end",
        b"",  # replaced below by the answers of a run, one of its lines spoiled
    ],
    ids=["model file", "notes", "one line of notes", "a bad line in the middle"],
)
def test_resume_never_changes_a_file_that_is_not_this_command_s_answers(tmp_path, seven, capsys,
                                                                        content):  # fmt: skip
    """--resume truncated a file at its first line that was not JSON, silently: a model named
    by mistake became 424 bytes of answers, notes were emptied, and one bad line in the
    middle of an answers file lost every line after it."""
    out = tmp_path / "out"
    if isinstance(content, Path):
        content = content.read_bytes()
    if not content:
        others = tmp_path / "others"
        others.mkdir()
        for name in "abc":
            (others / f"{name}.png").write_bytes(seven.read_bytes())
        assert resumed_with(out, others, capsys)[0] == 0
        lines = out.read_bytes().splitlines(keepends=True)
        content = b"".join([lines[0], b"garbage\n", *lines[1:]])
    out.write_bytes(content)
    status, printed, said = resumed_with(out, seven, capsys)
    assert status == 1 and "seven" not in printed
    assert said.count("\n") == 1 and "is not a file of digitnet's answers" in said
    assert out.read_bytes() == content


def test_resume_refuses_what_is_not_a_regular_file_at_once(tmp_path, seven, capsys):
    """A link to /dev/zero grew to gigabytes; a FIFO hung; a 2 GB line took 2 GB."""
    zero, fifo, long_line = tmp_path / "zero", tmp_path / "fifo", tmp_path / "long.jsonl"
    zero.symlink_to("/dev/zero")
    os.mkfifo(fifo)
    with open(long_line, "wb") as file:  # sparse: 2 GB of NUL bytes, no newline
        file.truncate(2 * 2**30)
    for out, words in ((zero, "is a device"), (fifo, "is a named pipe"),
                       (long_line, "line 1 is not a whole answer")):  # fmt: skip
        started = time.monotonic()
        status, printed, said = resumed_with(out, seven, capsys)
        assert status == 1 and printed == "" and words in said, said
        assert time.monotonic() - started < 5
    assert long_line.stat().st_size == 2 * 2**30


def test_resume_with_every_file_answered_says_there_is_nothing_to_do(tmp_path, seven, capsys):
    """A run resumed when its file answers every file printed the table's head and stopped,
    without a word."""
    out = tmp_path / "answers.jsonl"
    assert resumed_with(out, seven, capsys)[0] == 0
    answered = out.read_bytes()
    status, printed, said = resumed_with(out, seven, capsys)
    assert status == 0 and "seven" not in printed
    assert said == f"nothing to do: {out} answers every file already\n"
    assert out.read_bytes() == answered


class ReaderGone(io.StringIO):
    """Standard output whose reader goes away after its first line (``| head -1``)."""

    def write(self, text: str) -> int:
        if "\n" in self.getvalue():
            raise BrokenPipeError
        return super().write(text)


@pytest.mark.parametrize("command", ["predict", "read"])
def test_answers_only_printed_end_when_their_reader_has_gone(folder, tmp_path, monkeypatch,
                                                             command):  # fmt: skip
    """`digitnet read many/ --json | head -1` went on answering 1,032 files for 45 s after
    head had gone; with --csv or --resume the answers are kept, and the run goes on."""
    import digitnet.many
    from digitnet.cli import main

    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        (images / f"{i}.png").write_bytes((folder / "a" / f"{2 * i:03d}.png").read_bytes())
    answered = []

    def counted(*args, **kwargs):
        for record in real_answer(*args, **kwargs):
            answered.append(record)
            yield record

    real_answer = digitnet.many.answer
    monkeypatch.setattr(digitnet.many, "answer", counted)
    monkeypatch.setattr(sys, "stdout", ReaderGone())
    main([command, str(images), "--json", "--jobs", "1", "--model", "tutorial"])
    assert 1 <= len(answered) <= 2  # the first printed, the one that found the pipe closed
    answered.clear()
    main([command, str(images), "--jobs", "1", "--model", "tutorial",
          "--resume", str(tmp_path / "kept.jsonl")])  # fmt: skip
    assert len(answered) == 8  # its answers are written to a file too: every one
