"""digitnet.insight: what the web page and `digitnet report` show of a network at work."""

import numpy as np
import pytest

from digitnet import insight
from digitnet.data import to_float
from digitnet.zoo import bundled_model


@pytest.fixture(scope="module", params=["tutorial", "cnn"])
def model(request):
    return bundled_model(request.param)


def test_stages_are_the_layers_a_diagram_shows(model):
    described = [(s.name, s.kind, s.shape, s.activation) for s in insight.stages(model)]
    if model.count_params() == 13002:  # the tutorial: 784 -> 16 -> 16 -> 10
        assert described == [("dense 1", "dense", (16,), "relu"),
                             ("dense 2", "dense", (16,), "relu"),
                             ("output", "dense", (10,), "softmax")]  # fmt: skip
    else:  # conv -> BatchNorm -> ReLU is one stage, its output the feature maps
        assert [d[:3] for d in described] == [
            ("conv 1", "conv", (26, 26, 32)), ("conv 2", "conv", (11, 11, 64)),
            ("conv 3", "conv", (9, 9, 64)), ("dense 1", "dense", (256,)),
            ("output", "dense", (10,)),
        ]  # fmt: skip


def test_one_traced_pass_gives_the_activity_and_the_explanation(model, mnist):
    _, (x_test, _) = mnist
    image = to_float(x_test[:1])[0]
    seen = insight.look(model, image)
    np.testing.assert_allclose(seen.probabilities, model.predict(image[None])[0], rtol=1e-5)
    for traced, plain in zip(seen.activity, insight.activity(model, image), strict=True):
        assert traced.stage == plain.stage
        np.testing.assert_allclose(traced.values, plain.values, rtol=1e-4, atol=1e-5)
    digit = int(seen.probabilities.argmax())
    np.testing.assert_allclose(seen.explanation, insight.explain(model, image, digit), atol=1e-5)
    assert np.abs(seen.explanation).max() == pytest.approx(1)
    assert (seen.explanation[image == 0] == 0).all()  # gradient x input: only where there is ink


def test_first_layer_pictures_and_strongest_connections(model):
    weights = insight.first_layer_weights(model)
    connections = insight.strongest_connections(model, per_stage=50)
    if model.count_params() == 13002:
        assert weights.shape == (16, 28, 28)
        np.testing.assert_array_equal(weights[3], model.layers[1].params["W"][:, 3].reshape(28, 28))
        assert [len(stage) for stage in connections] == [50, 50, 50]
        strengths = [abs(c.weight) for c in connections[0]]
        assert strengths == sorted(strengths, reverse=True)
        W = model.layers[1].params["W"]
        assert strengths[0] == pytest.approx(np.abs(W).max())
    else:
        assert weights.shape == (32, 3, 3)


def test_mistakes_most_confident_first():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    labels = np.array([0, 0, 0, 1])
    wrong = insight.mistakes(probabilities, labels, limit=2)
    assert [(m.index, m.label, m.predicted) for m in wrong] == [(1, 0, 1), (3, 1, 0)]
    assert wrong[0].confidence == pytest.approx(0.8)
