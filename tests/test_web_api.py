"""The REST API through FastAPI's test client: answers, and bad input answered with 4xx."""

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pictures import digit_png, number_png, photo_of, png_bytes, png_header_only, written_close

from digitnet import insight
from digitnet.data import to_float
from digitnet.web.app import create_app
from digitnet.web.catalog import load_catalog

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()  # the bundled cnn (default) and tutorial


@pytest.fixture(scope="module")
def client(catalog):
    return TestClient(create_app(catalog, max_upload_bytes=2 * 2**20))


def test_health_and_models(client):
    assert client.get("/api/health").json() == {
        "status": "ok", "version": "0.1.0", "models": ["cnn", "tutorial"], "workers": 1,
        "pools": {},  # no worker processes: the server itself answers
    }  # fmt: skip
    models = client.get("/api/models").json()
    assert [(m["name"], m["kind"], m["default"]) for m in models] == [
        ("cnn", "cnn", True), ("tutorial", "mlp", False)
    ]  # fmt: skip
    assert models[1]["parameters"] == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10


def test_predict_a_drawn_digit(client, mnist):
    _, (x_test, y_test) = mnist
    for i in range(6):
        answer = client.post("/api/predict", content=digit_png(x_test[i]), headers=PNG).json()
        assert answer["digit"] == y_test[i]
        assert answer["model"] == "cnn"
        assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-5)
        assert answer["confidence"] == max(answer["probabilities"])
        assert np.array(answer["input"]).shape == (28, 28)
        explanation = np.array(answer["explanation"])
        assert explanation.shape == (28, 28) and np.abs(explanation).max() == 1
        assert len(answer["box"]) == 4 and len(answer["frame"]) == 4
    stages = [(s["name"], s["kind"]) for s in answer["layers"]]
    assert stages[:3] == [("conv 1", "conv"), ("conv 2", "conv"), ("conv 3", "conv")]
    conv1 = answer["layers"][0]
    assert conv1["grid"] == [6, 6] and conv1["shape"] == [26, 26, 32]  # 32 maps of 26x26
    assert conv1["size"] == [6 * 27 - 1, 6 * 27 - 1]  # tiles with 1-pixel gaps
    assert len(base64.b64decode(conv1["maps"])) == conv1["size"][0] * conv1["size"][1]


def test_upload_as_a_form_file_gives_the_same_answer(client, mnist):
    _, (x_test, _) = mnist
    data = digit_png(x_test[3])
    raw = client.post("/api/predict", content=data, headers=PNG).json()
    form = client.post("/api/predict", files={"image": ("digit.png", data, "image/png")}).json()
    assert form["probabilities"] == raw["probabilities"]


def test_the_tutorial_network_shows_every_neuron(client, catalog, mnist):
    _, (x_test, y_test) = mnist
    answer = client.post("/api/predict?model=tutorial", content=digit_png(x_test[0]),
                         headers=PNG).json()  # fmt: skip
    assert answer["model"] == "tutorial" and answer["digit"] == y_test[0]
    layers = {s["name"]: s["values"] for s in answer["layers"]}
    assert [len(v) for v in layers.values()] == [16, 16, 10]
    model = catalog.get("tutorial").model
    seen = np.array(answer["input"], np.float32)
    hidden = np.maximum(seen.reshape(1, 784) @ model.layers[1].params["W"]
                        + model.layers[1].params["b"], 0)[0]  # fmt: skip
    np.testing.assert_allclose(layers["dense 1"], hidden, atol=2e-3)
    np.testing.assert_allclose(
        answer["explanation"], insight.explain(model, seen, answer["digit"]), atol=2e-3
    )


def test_pixels_as_json_skip_the_image_pipeline(client, catalog, mnist):
    _, (x_test, _) = mnist
    image = to_float(x_test[:1])[0]
    expected = catalog.get("cnn").recognizer.predict_inputs(image[None])[0]
    for pixels in (image.tolist(), image.ravel().tolist()):
        answer = client.post("/api/predict", json={"pixels": pixels}).json()
        np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-5)
        assert answer["box"] is None


@pytest.mark.parametrize("blank", ["canvas", "pixels"])
def test_nothing_drawn_is_no_digit(client, blank):
    if blank == "canvas":
        answer = client.post("/api/predict", content=digit_png(np.zeros((28, 28), np.uint8)),
                             headers=PNG).json()  # fmt: skip
    else:
        answer = client.post("/api/predict", json={"pixels": [0.0] * 784}).json()
    assert answer["digit"] is None and "no ink" in answer["reason"]
    assert answer["layers"] == [] and answer["explanation"] is None


def test_read_a_written_number(client, mnist):
    _, (x_test, y_test) = mnist
    picks = [0, 1, 2, 3]
    answer = client.post("/api/read", content=number_png([x_test[i] for i in picks]),
                         headers=PNG).json()  # fmt: skip
    assert answer["text"] == "".join(str(y_test[i]) for i in picks)
    assert [d["box"][0] for d in answer["digits"]] == sorted(d["box"][0] for d in answer["digits"])


def test_model_details_and_test_results(client, catalog):
    details = client.get("/api/models/tutorial").json()
    assert details["kind"] == "mlp" and details["parameters"] == 13002
    assert [row["type"] for row in details["layers"]] == ["Flatten", "Dense", "Dense", "Dense"]
    assert len(details["history"]["val_accuracy"]) == 5
    assert len(details["first_layer"]) == 16
    assert [len(stage) for stage in details["connections"]] == [160, 160, 160]
    test = client.get("/api/models/tutorial/test").json()
    assert test["accuracy"] == pytest.approx(
        catalog.get("tutorial").model.metadata["test"]["accuracy"]
    )
    assert np.sum(test["confusion_matrix"]) == test["samples"] == 10000
    confidences = [m["confidence"] for m in test["mistakes"]]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) == 24
    assert all(m["label"] != m["predicted"] for m in test["mistakes"])


def test_pages_and_docs_are_served(client):
    for path in ("/", "/model", "/static/app.js", "/static/style.css", "/docs"):
        assert client.get(path).status_code == 200, path
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "image/*", "application/json"}


# ----------------------------------------------------------------------------------- bad input

BAD_PIXELS = [
    ({"pixels": [0.5] * 783}, "shape [783]"),
    ({"pixels": [[0.5] * 28] * 27}, "shape [27, 28]"),
    ({"pixels": [[0.5] * 28] * 27 + [[0.5] * 27]}, "not an array of numbers"),
    ({"pixels": ["0.5"] * 784}, "not an array of numbers"),
    ({"pixels": [0.5] * 783 + [1.5]}, "values from 0.5 to 1.5"),
    ({"pixels": [0.5] * 783 + [-0.1]}, "values from -0.1"),
    ({"image": [0.5] * 784}, 'no "pixels" field'),
    ([0.5] * 784, 'no "pixels" field'),
]


@pytest.mark.parametrize(("document", "message"), BAD_PIXELS)
def test_malformed_pixels_get_422_with_what_was_expected(client, document, message):
    response = client.post("/api/predict", json=document)
    assert response.status_code == 422
    assert message in response.json()["error"] and "28x28 or 784" in response.json()["error"]


@pytest.mark.parametrize("text", ['{"pixels": [NaN' + ", 0" * 783 + "]}", "{not json"])
def test_nan_and_broken_json_get_422(client, text):
    response = client.post(
        "/api/predict", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "expected" in response.json()["error"]


def test_bad_images_get_clear_4xx(client, mnist):
    _, (x_test, _) = mnist
    good = digit_png(x_test[0])
    cases = [
        (b"this is not an image", 415, "not an image"),
        (good[: len(good) // 2], 400, "truncated"),
        (b"", 400, "empty"),
        (png_header_only(20000, 20000), 413, "decompression bomb"),
        (png_header_only(8000, 6000), 413, "8000x6000 pixels is more than"),
    ]
    for endpoint in ("/api/predict", "/api/read"):
        for data, status, message in cases:
            response = client.post(endpoint, content=data, headers=PNG)
            assert response.status_code == status, (endpoint, message)
            assert message in response.json()["error"]


def test_uploads_over_the_limit_get_413_declared_or_not(client):
    too_big = b"\0" * (2 * 2**20 + 1)
    response = client.post("/api/predict", content=too_big, headers=PNG)
    assert response.status_code == 413 and "larger than 2 MB" in response.json()["error"]

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        for _ in range(5):
            yield b"\0" * 2**19

    response = client.post("/api/predict", content=chunks(), headers=PNG)
    assert response.status_code == 413
    response = client.post("/api/predict", files={"image": ("big.png", too_big, "image/png")})
    assert response.status_code == 413


def test_a_form_without_a_file_is_400(client):
    response = client.post("/api/predict", data={"note": "hello"})
    assert response.status_code == 400 and "no file" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/models/nope", "/api/models/nope/test"])
def test_unknown_models_are_404_with_the_names_known(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "this server has: cnn, tutorial" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/models/..%2F..%2Fetc%2Fpasswd", "/static/../cli.py"])
def test_no_path_reaches_the_disk(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "error" in response.json()


def test_unknown_model_in_a_prediction_is_404(client, mnist):
    _, (x_test, _) = mnist
    for name in ("nope", "../../src/digitnet/models/cnn.npz", "/etc/passwd"):
        response = client.post(f"/api/predict?model={name}", content=digit_png(x_test[0]),
                               headers=PNG)  # fmt: skip
        assert response.status_code == 404, name
        assert json.loads(response.text)["error"].startswith("unknown model")


def test_feature_maps_tile_row_by_row_with_black_gaps():
    from digitnet.web.pictures import sheet

    maps = np.arange(1, 1 + 3 * 2 * 5, dtype=np.uint8).reshape(3, 2, 5)  # (h, w, channels)
    picture, (rows, cols) = sheet(maps, gap=1)
    assert (rows, cols) == (2, 3) and picture.shape == (2 * 4 - 1, 3 * 3 - 1)
    for k in range(5):
        r, c = divmod(k, cols)
        assert np.array_equal(picture[r * 4 : r * 4 + 3, c * 3 : c * 3 + 2], maps[..., k])
    assert not picture[3].any() and not picture[:, 2].any()  # the gaps
    assert not picture[4:, 6:].any()  # the sixth tile has no map


def test_large_images_take_the_thread_path_with_the_same_answers(catalog, mnist, monkeypatch):
    from digitnet.web.routes import answers as web_app

    _, (x_test, y_test) = mnist
    photo, number = photo_of(x_test[0]), number_png([x_test[i] for i in (3, 2, 1)])
    client = TestClient(create_app(catalog, max_upload_bytes=4 * 2**20))
    assert len(photo) > web_app.LARGE_IMAGE_BYTES > len(number)
    on_loop = client.post("/api/predict", content=photo, headers=PNG).json()
    assert on_loop["digit"] == y_test[0]
    read_on_loop = client.post("/api/read", content=number, headers=PNG).json()
    monkeypatch.setattr(web_app, "LARGE_IMAGE_BYTES", 0)  # every image through the thread
    assert client.post("/api/predict", content=photo, headers=PNG).json() == on_loop
    assert client.post("/api/read", content=number, headers=PNG).json() == read_on_loop
    bad = client.post("/api/predict", content=b"not an image at all", headers=PNG)
    assert bad.status_code == 415 and bad.json()["error"].startswith("not an image")  # no name


def test_a_drawing_is_answered_while_a_large_photo_is_being_prepared(catalog, mnist):
    import asyncio
    import time

    import httpx2 as httpx  # the test extra's HTTP client, as Starlette's TestClient uses it

    _, (x_test, _) = mnist
    photo, drawing = photo_of(x_test[0], (4000, 3000)), digit_png(x_test[1])
    app = create_app(catalog, max_upload_bytes=8 * 2**20)
    finished = {}

    async def post(name, body, delay):
        await asyncio.sleep(delay)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post("/api/predict", content=body, headers=PNG)
        finished[name] = (time.perf_counter(), answer.status_code)

    async def both():
        await asyncio.gather(post("photo", photo, 0), post("drawing", drawing, 0.02))

    asyncio.run(both())
    assert finished["photo"][1] == finished["drawing"][1] == 200
    assert finished["drawing"][0] < finished["photo"][0]


def test_predict_notes_several_digits_and_nothing_for_one(client, mnist):
    (x_train, _), (x_test, _) = mnist
    number = client.post("/api/predict", content=number_png([x_test[i] for i in (5, 6)]),
                         headers=PNG).json()  # fmt: skip
    assert number["note"] == "several digits: digitnet read reads numbers"
    touching = png_bytes(written_close([x_train[50_406], x_train[50_407]], gap=-2))  # one column
    assert client.post("/api/predict", content=touching, headers=PNG).json()["note"] == (
        "several digits: digitnet read reads numbers"
    )
    assert (
        client.post("/api/predict", content=digit_png(x_test[7]), headers=PNG).json()["note"]
        is None
    )


def test_one_neuron_of_a_perceptron_its_weights_and_bias(client, catalog):
    """What the page shows when a neuron is clicked: the very weights of the layer."""
    model = catalog.get("tutorial").model
    first = client.get("/api/models/tutorial/layers/0/neurons/5").json()
    assert first["layer"] == "dense 1" and first["activation"] == "relu"
    assert first["inputs"] == "the 28x28 input"
    assert np.allclose(first["weights"], model.layers[1].params["W"][:, 5])
    assert first["bias"] == pytest.approx(float(model.layers[1].params["b"][5]))
    output = client.get("/api/models/tutorial/layers/2/neurons/9").json()
    assert output["layer"] == "output" and output["activation"] == "softmax"
    assert output["inputs"] == "dense 2" and len(output["weights"]) == 16
    for path, status, message in [
        ("/api/models/tutorial/layers/3/neurons/0", 404, "there is no layer 3"),
        ("/api/models/tutorial/layers/-1/neurons/0", 404, "there is no layer -1"),
        ("/api/models/tutorial/layers/0/neurons/16", 404, "dense 1 has 16 neurons"),
        ("/api/models/cnn/layers/0/neurons/0", 422, "not a plain weighted sum"),
        ("/api/models/nope/layers/0/neurons/0", 404, "unknown model"),
    ]:
        answer = client.get(path)
        assert answer.status_code == status and message in answer.json()["error"], path
