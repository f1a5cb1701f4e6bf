"""Real answers of the REST API against its published OpenAPI document (/openapi.json): each
answer validates against the schema of its path and status code, and carries no field the
document does not describe. (The handlers build plain dicts; the schemas only document them.)"""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from pictures import digit_png, number_png, png_bytes

from digitnet.data import to_float
from digitnet.web.app import create_app
from digitnet.web.catalog import load_catalog

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_catalog()))


@pytest.fixture(scope="module")
def document(client):
    return client.get("/openapi.json").json()


def schema_of(document, method: str, path: str, status: int) -> dict:
    content = document["paths"][path][method]["responses"][str(status)]["content"]
    return content["application/json"]["schema"]


def undocumented(value, schema: dict, document: dict, where: str = "") -> list[str]:
    """The keys of ``value`` (recursively) that ``schema`` does not describe."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for option in schema.get("anyOf", []):  # Optional[X]: the branch that matches the value
        if Draft202012Validator(option | {"components": document["components"]}).is_valid(value):
            return undocumented(value, option, document, where)
    if isinstance(value, dict) and "properties" in schema:
        extra = [f"{where}.{key}" for key in value if key not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                extra += undocumented(item, schema["properties"][key], document, f"{where}.{key}")
        return extra
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [k for item in value[:3] for k in undocumented(item, schema["items"], document,
                                                              f"{where}[]")]  # fmt: skip
    return []


def check(document, method, path, response, status=200):
    assert response.status_code == status, response.text
    schema = schema_of(document, method, path, status)
    answer = response.json()
    Draft202012Validator(schema | {"components": document["components"]}).validate(answer)
    assert undocumented(answer, schema, document) == []


def test_model_answers_match_the_document(client, document):
    check(document, "get", "/api/health", client.get("/api/health"))
    check(document, "get", "/api/models", client.get("/api/models"))
    for name in ("cnn", "tutorial"):
        check(document, "get", "/api/models/{name}", client.get(f"/api/models/{name}"))
    check(document, "get", "/api/models/{name}/test", client.get("/api/models/tutorial/test"))
    neuron = "/api/models/{name}/layers/{layer}/neurons/{unit}"
    check(document, "get", neuron, client.get("/api/models/tutorial/layers/0/neurons/3"))


def test_predict_and_read_answers_match_the_document(client, document, mnist):
    _, (x_test, _) = mnist
    drawing = client.post("/api/predict", content=digit_png(x_test[0]), headers=PNG)
    check(document, "post", "/api/predict", drawing)
    assert drawing.json()["digit"] is not None and drawing.json()["layers"]
    pixels = client.post(
        "/api/predict?model=tutorial", json={"pixels": to_float(x_test[1]).tolist()}
    )
    check(document, "post", "/api/predict", pixels)
    blank = client.post("/api/predict", content=png_bytes(np.full((64, 64), 255, np.uint8)),
                        headers=PNG)  # fmt: skip
    check(document, "post", "/api/predict", blank)
    assert blank.json()["digit"] is None and blank.json()["reason"]
    number = client.post("/api/read", content=number_png(list(x_test[:4])), headers=PNG)
    check(document, "post", "/api/read", number)
    assert len(number.json()["digits"]) == 4


def test_error_answers_match_the_document(client, document, mnist):
    check(document, "post", "/api/predict", client.post("/api/predict?model=nope",
          content=b"x", headers=PNG), status=404)  # fmt: skip
    check(document, "post", "/api/predict", client.post("/api/predict", content=b"not an image",
          headers={"content-type": "text/plain"}), status=415)  # fmt: skip
    whole = number_png(list(mnist[1][0][:3]))
    truncated = whole[: len(whole) // 2]
    check(document, "post", "/api/read", client.post("/api/read", content=truncated,
          headers=PNG), status=400)  # fmt: skip
