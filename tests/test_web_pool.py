"""`digitnet serve --workers N`: worker processes answer exactly as the server itself does, bad
images get the same 4xx, and a worker that dies costs its own request a 503, nothing more."""

import asyncio

import httpx2 as httpx  # the test extra's HTTP client, as Starlette's TestClient uses it
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pictures import digit_png, number_png, photo_of, png_header_only

from digitnet.web.app import create_app
from digitnet.web.catalog import load_catalog

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def pooled(catalog):
    with TestClient(create_app(catalog, workers=2)) as client:  # starts and stops the workers
        yield client


@pytest.fixture(scope="module")
def in_process(catalog):
    return TestClient(create_app(catalog))


def same_answer(a: dict, b: dict) -> None:
    """Equal, but for the last bits of floating point (each process has its own BLAS)."""
    assert a.keys() == b.keys()
    for key in a:
        if key in ("probabilities", "input", "explanation", "confidence"):
            np.testing.assert_allclose(a[key], b[key], atol=1e-5)
        elif key != "layers":
            assert a[key] == b[key], key
    assert [s["name"] for s in a["layers"]] == [s["name"] for s in b["layers"]]


def test_workers_answer_as_the_server_does(pooled, in_process, mnist):
    _, (x_test, y_test) = mnist
    assert pooled.get("/api/health").json()["workers"] == 2
    for i in range(4):
        body = digit_png(x_test[i])
        answer = pooled.post("/api/predict", content=body, headers=PNG).json()
        assert answer["digit"] == y_test[i]
        same_answer(answer, in_process.post("/api/predict", content=body, headers=PNG).json())
    pixels = {"pixels": (x_test[0] / 255).tolist()}
    tutorial = pooled.post("/api/predict?model=tutorial", json=pixels).json()
    assert tutorial["model"] == "tutorial"
    same_answer(tutorial, in_process.post("/api/predict?model=tutorial", json=pixels).json())
    number = number_png([x_test[i] for i in (3, 2, 1)])
    reading = pooled.post("/api/read", content=number, headers=PNG).json()
    assert reading["text"] == "".join(str(y_test[i]) for i in (3, 2, 1))
    assert reading == in_process.post("/api/read", content=number, headers=PNG).json()


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"not an image at all", 415, "not an image"),
        (digit_png(np.eye(28, dtype=np.uint8) * 255)[:300], 400, "truncated"),
        (png_header_only(20000, 20000), 413, "decompression bomb"),
    ],
)
def test_bad_images_get_the_same_4xx_from_the_workers(pooled, in_process, body, status, message):
    for path in ("/api/predict", "/api/read"):
        answer = pooled.post(path, content=body, headers=PNG)
        assert answer.status_code == status and message in answer.json()["error"]
        assert answer.json() == in_process.post(path, content=body, headers=PNG).json()


def test_a_worker_that_dies_fails_its_request_with_503_and_is_replaced(catalog, mnist):
    _, (x_test, y_test) = mnist
    photo, drawing = photo_of(x_test[0], (4000, 3000)), digit_png(x_test[1])
    app = create_app(catalog, max_upload_bytes=8 * 2**20, workers=2)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                request = asyncio.create_task(
                    client.post("/api/predict", content=photo, headers=PNG)
                )
                await asyncio.sleep(0.15)  # the photo takes its worker ~0.5 s
                killed = app.state.pool.processes
                for worker in killed:
                    worker.kill()
                for worker in killed:  # both gone before the next request (else it may reach
                    worker.join(5)  # the second one in its last moments: a 503 of its own)
                lost = await asyncio.wait_for(request, 20)  # not forever if the death is missed
                after = await client.post("/api/predict", content=drawing, headers=PNG)
                return killed, lost, after, app.state.pool.processes

    killed, lost, after, replacements = asyncio.run(scenario())
    assert len(killed) == 2 and not any(p.is_alive() for p in killed)
    assert lost.status_code == 503 and "try again" in lost.json()["error"]
    assert after.status_code == 200 and after.json()["digit"] == y_test[1]
    assert len(replacements) == 2 and not set(replacements) & set(killed)
