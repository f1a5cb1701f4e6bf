"""Training from the web page: POST /api/train, its Server-Sent Events, the waiting line, Stop,
bad settings, and the trained model served at once (in the server and in worker processes)."""

import base64
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digitnet.nn import load_model
from digitnet.training import TrainConfig, train
from digitnet.web import learning
from digitnet.web.app import create_app
from digitnet.web.catalog import load_catalog

JSON = {"content-type": "application/json"}
SMALL = {"samples": 2000, "epochs": 2, "batch_size": 20, "lr": 0.1}  # 100 steps an epoch
LONG = {"hidden": [512, 512, 512], "epochs": 20, "batch_size": 1}  # minutes: stopped by the tests


@pytest.fixture
def client(tmp_path):
    app = create_app(load_catalog(["tutorial"]), models_dir=tmp_path)
    with TestClient(app) as client:  # one event loop for the whole test (trainings live on it)
        yield client


def events(client, training_id: str, seconds: float = 120) -> list[tuple[str, dict]]:
    """The training's Server-Sent Events, parsed, until the stream ends."""
    out, kind = [], None
    deadline = time.monotonic() + seconds
    with client.stream("GET", f"/api/train/{training_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            assert time.monotonic() < deadline
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[len("data: ") :])))
            else:
                assert line == "" or line.startswith(":")
    return out


def start(client, settings: dict, **headers) -> dict:
    answer = client.post("/api/train", json=settings, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


@pytest.mark.slow
def test_a_training_streams_its_progress_and_its_model_is_served_at_once(client, tmp_path, mnist):
    started = start(client, SMALL)
    assert started["events"] == f"/api/train/{started['id']}/events"
    stream = events(client, started["id"])
    kinds = [kind for kind, _ in stream]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert kinds.count("epoch") == 2 and kinds.count("progress") >= 2 * 10
    progress = [data for kind, data in stream if kind == "progress"]
    assert [p["step"] for p in progress] == sorted(p["step"] for p in progress)
    assert progress[-1]["step"] == progress[-1]["steps"] == 200
    assert all(0 <= p["accuracy"] <= 1 and p["loss"] > 0 and p["steps_per_second"] > 0
               for p in progress)  # fmt: skip
    assert progress[-1]["loss"] < progress[0]["loss"]  # it learns
    weights = progress[-1]["weights"]  # only the latest progress keeps its pictures
    assert weights["neurons"] == 16 and weights["size"] == [28, 28]
    pictures = np.frombuffer(base64.b64decode(weights["pixels"]), np.uint8).reshape(16, 28, 28)
    assert pictures.min() == 0 or pictures.max() == 255  # scaled to the largest weight
    epochs = [data for kind, data in stream if kind == "epoch"]
    done = stream[-1][1]
    assert done["test_accuracy"] == epochs[-1]["val_accuracy"] > 0.5
    confusion = np.array(done["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10_000
    assert np.trace(confusion) == round(done["test_accuracy"] * 10_000)
    assert done["stopped"] is False
    # the model: in the list, answering, downloadable, and the same as the file it wrote
    name = done["model"]
    assert name in [m["name"] for m in client.get("/api/models").json()]
    _, (x_test, _) = mnist
    answer = client.post(f"/api/predict?model={name}", json={"pixels": (x_test[0] / 255).tolist()})
    assert answer.json()["model"] == name
    download = client.get(done["download"])
    assert download.status_code == 200
    (tmp_path / "downloaded.npz").write_bytes(download.content)
    model = load_model(tmp_path / "downloaded.npz")
    assert model.metadata["test"]["accuracy"] == done["test_accuracy"]
    assert (tmp_path / f"{name}.npz").is_file()


@pytest.mark.slow
def test_the_tutorial_recipe_from_the_page_is_the_same_as_digitnet_train(client):
    """All of it: 60,000 digits, 5 epochs of SGD 0.01, batch 32, seed 0 — an empty request."""
    answer = client.post("/api/train")  # no body: every setting takes the tutorial's value
    assert answer.status_code == 202
    assert answer.json()["settings"] == {
        "hidden": [16, 16], "activation": "relu", "loss": "sparse_categorical_crossentropy",
        "optimizer": "sgd", "lr": 0.01, "momentum": 0.0, "batch_size": 32, "epochs": 5,
        "samples": 60000, "seed": 0,
    }  # fmt: skip
    done = events(client, answer.json()["id"])[-1]
    assert done[0] == "done"
    model = train(TrainConfig(), verbose=False)  # what `digitnet train` runs
    assert done[1]["test_accuracy"] == model.metadata["test"]["accuracy"] > 0.9


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden": [0]}, "1-512 neurons"),
        ({"hidden": [600]}, "1-512 neurons"),
        ({"hidden": [16] * 5}, "hidden"),
        ({"hidden": []}, "hidden"),
        ({"activation": "softplus"}, "activation"),
        ({"loss": "hinge"}, "loss"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"lr": 0}, "lr"),
        ({"lr": 11}, "lr"),
        ({"momentum": 1}, "momentum"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum applies to the sgd optimizer"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 21}, "epochs"),
        ({"samples": 50}, "samples"),
        ({"samples": 60001}, "samples"),
        ({"layers": 3}, "layers: Extra inputs are not permitted"),
        ([16, 16], "valid dictionary"),
    ],
)
def test_a_bad_setting_is_a_422_that_names_it(client, settings, message):
    answer = client.post("/api/train", json=settings)
    assert answer.status_code == 422
    assert message in answer.json()["error"]


@pytest.mark.slow
def test_another_sites_page_cannot_start_or_stop_a_training(client):
    refused = client.post("/api/train", json=SMALL, headers={"origin": "http://elsewhere.example"})
    assert refused.status_code == 403
    training = start(client, SMALL, origin="http://testserver")  # the server's own page
    stop = client.delete(f"/api/train/{training['id']}", headers={"origin": "http://evil.example"})
    assert stop.status_code == 403
    assert events(client, training["id"])[-1][0] == "done"


@pytest.mark.slow
def test_the_waiting_line_stop_and_429(client, monkeypatch):
    # The line is watched one training at a time here: on a loaded machine the last ones
    # waited longer than ABANDON_SECONDS unwatched and were stopped (abandoning is the next
    # test's subject, not this one's).
    monkeypatch.setattr(learning, "ABANDON_SECONDS", 600.0)
    monkeypatch.setattr(learning, "MAX_PER_CLIENT", 10)  # one client fills the line here
    running = start(client, LONG)
    waiting = [start(client, SMALL) for _ in range(learning.MAX_WAITING)]
    full = client.post("/api/train", json=SMALL)
    assert full.status_code == 429 and full.headers["retry-after"] == str(learning.RETRY_SECONDS)
    assert "waiting" in full.json()["error"]
    assert [w["state"] for w in waiting] == ["queued"] * learning.MAX_WAITING
    # a waiting training leaves the line when stopped; the others move up
    assert client.delete(f"/api/train/{waiting[0]['id']}").status_code == 202
    assert events(client, waiting[0]["id"])[-1] == ("error", {"error": "stopped before it started"})
    assert client.get(f"/api/train/{waiting[1]['id']}").json()["state"] == "queued"
    # the running one stops after its step, keeps its weights and is served
    assert client.delete(f"/api/train/{running['id']}").status_code == 202
    stream = events(client, running["id"])
    assert stream[-1][0] == "done" and stream[-1][1]["stopped"] is True
    assert stream[-1][1]["model"] in [m["name"] for m in client.get("/api/models").json()]
    for training in waiting[1:]:  # then the line trains, one after the other
        assert events(client, training["id"])[-1][0] == "done"
    assert client.get("/api/train/nonexistent").status_code == 404


@pytest.mark.slow
def test_a_training_whose_process_dies_ends_with_an_error_and_the_line_moves_on(client):
    dying, after = start(client, LONG), start(client, SMALL)
    process = client.app.state.server.trainings.get(dying["id"]).process
    deadline = time.monotonic() + 30
    while client.get(f"/api/train/{dying['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.kill()
    kind, data = events(client, dying["id"])[-1]
    assert (kind, data) == ("error", {"error": "the training process stopped unexpectedly"})
    assert events(client, after["id"])[-1][0] == "done"


@pytest.mark.skipif(not hasattr(__import__("os"), "getpriority"), reason="no priorities here")
def test_a_training_runs_at_low_priority_from_its_start(client):
    """Lowered by the server as soon as the process exists — before its interpreter starts
    and imports NumPy, which at normal priority cost the people drawing their p99 — so that
    requests being answered come first."""
    import os

    training = start(client, LONG)
    process = client.app.state.server.trainings.get(training["id"]).process
    assert process is not None and process.is_alive()
    assert os.getpriority(os.PRIO_PROCESS, process.pid) == learning.TRAINING_NICE
    assert client.delete(f"/api/train/{training['id']}").status_code == 202


@pytest.mark.slow
def test_a_training_nobody_watches_is_stopped_and_not_kept(client, monkeypatch, tmp_path):
    """It was stopped, then saved and served: a visitor who left still filled the disk."""
    monkeypatch.setattr(learning, "ABANDON_SECONDS", 0.5)
    training = start(client, LONG)
    deadline = time.monotonic() + 60
    while client.get(f"/api/train/{training['id']}").json()["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    kind, data = events(client, training["id"])[-1]
    assert (kind, data) == (
        "error",
        {"error": "stopped, and not kept: nobody watched it for 0.5 s"},
    )
    assert training["model"] not in [m["name"] for m in client.get("/api/models").json()]
    assert not list(tmp_path.glob("trained-*"))


@pytest.mark.slow
def test_a_training_stops_at_the_time_limit_and_keeps_its_weights(client, monkeypatch):
    """One visitor held the training slot for ~45 min with one open event stream."""
    monkeypatch.setattr(learning, "MAX_TRAINING_SECONDS", 1.0)
    training = start(client, LONG)
    kind, data = events(client, training["id"])[-1]
    assert kind == "done" and data["stopped"] is True
    assert data["why_stopped"] == "it reached the 1-second limit of a training"
    assert data["model"] in [m["name"] for m in client.get("/api/models").json()]


@pytest.mark.slow
def test_one_client_has_at_most_two_trainings_at_once(client):
    first, second = start(client, LONG), start(client, SMALL)
    third = client.post("/api/train", json=SMALL)
    assert third.status_code == 429 and "you have 2 trainings" in third.json()["error"]
    assert client.delete(f"/api/train/{first['id']}").status_code == 202
    assert events(client, first["id"])[-1][0] == "done"
    assert start(client, SMALL)  # the first is done: one more may start
    assert events(client, second["id"])[-1][0] == "done"


@pytest.mark.slow
def test_trained_models_are_kept_within_a_count_and_a_disk_budget(tmp_path, monkeypatch):
    """60 s of posting big trainings wrote 38 files (170 MB a minute) and kept them all."""
    from digitnet.web import catalog as catalogs

    monkeypatch.setattr(catalogs, "MAX_TRAINED", 2)
    with TestClient(create_app(load_catalog(["tutorial"]), models_dir=tmp_path)) as client:
        names = [events(client, start(client, SMALL)["id"])[-1][1]["model"] for _ in range(3)]
        served = [m["name"] for m in client.get("/api/models").json()]
        assert served == ["tutorial", *names[1:]]
        assert sorted(p.stem for p in tmp_path.glob("*.npz")) == names[1:]
        size = (tmp_path / f"{names[-1]}.npz").stat().st_size
        monkeypatch.setattr(learning, "MAX_KEPT_BYTES", size + 1)  # room for one
        fourth = events(client, start(client, SMALL)["id"])[-1][1]["model"]
        assert [p.stem for p in tmp_path.glob("*.npz")] == [fourth]
        assert [m["name"] for m in client.get("/api/models").json()] == ["tutorial", fourth]


@pytest.mark.slow
def test_a_corrupt_model_in_the_models_folder_is_skipped_with_one_warning(tmp_path, caplog):
    """One corrupt trained-N.npz stopped the next start."""
    (tmp_path / "trained-1.npz").write_bytes(b"not a model")
    with TestClient(create_app(load_catalog(["tutorial"]), models_dir=tmp_path)) as first:
        done = events(first, start(first, SMALL)["id"])[-1][1]
        names = [m["name"] for m in first.get("/api/models").json()]
    assert names == ["tutorial", done["model"]] and done["model"] == "trained-2"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"a trained model skipped: {tmp_path / 'trained-1.npz'}: not a digitnet"
                        " model file (not an .npz archive)"]  # fmt: skip
    assert (tmp_path / "trained-1.npz").read_bytes() == b"not a model"  # skipped, not removed


@pytest.mark.slow
def test_models_kept_in_the_models_folder_are_served_again_after_a_restart(tmp_path):
    with TestClient(create_app(load_catalog(["tutorial"]), models_dir=tmp_path)) as first:
        done = events(first, start(first, SMALL)["id"])[-1][1]
    with TestClient(create_app(load_catalog(["tutorial"]), models_dir=tmp_path)) as second:
        assert done["model"] in [m["name"] for m in second.get("/api/models").json()]
        assert start(second, SMALL)["model"] != done["model"]  # numbered on, never replaced


@pytest.mark.slow
def test_worker_processes_answer_with_a_model_trained_after_they_started(tmp_path, mnist):
    _, (x_test, _) = mnist
    app = create_app(load_catalog(["tutorial"]), workers=2, models_dir=tmp_path)
    with TestClient(app) as client:
        done = events(client, start(client, SMALL)["id"])[-1][1]
        pixels = {"pixels": (x_test[:1][0] / 255).tolist()}
        answers = [client.post(f"/api/predict?model={done['model']}", json=pixels).json()
                   for _ in range(4)]  # fmt: skip
    assert {a["model"] for a in answers} == {done["model"]}
    assert len({a["digit"] for a in answers}) == 1
