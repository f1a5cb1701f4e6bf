"""Learning-rate schedules, decoupled weight decay, and the model zoo's presets."""

import math
from itertools import pairwise

import numpy as np
import pytest

from digitnet.nn import SGD, Adam, Dense, NNError, Sequential
from digitnet.nn.schedules import CosineDecay, OneCycle, StepDecay, schedule_from_config
from digitnet.zoo import PRESETS, get_preset


def test_step_decay():
    schedule = StepDecay(0.1, 0.5, decay_steps=10)
    assert [schedule(s) for s in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]


def test_cosine_decay_with_warmup():
    schedule = CosineDecay(1.0, decay_steps=110, alpha=0.1, warmup_steps=10)
    assert schedule(0) == pytest.approx(0.1) and schedule(9) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way down the cosine
    assert schedule(110) == pytest.approx(0.1) == schedule(500)


def test_one_cycle_rises_then_falls():
    schedule = OneCycle(1.0, total_steps=100, pct_start=0.25, div_factor=10, final_div_factor=100)
    rates = [schedule(s) for s in range(100)]
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0)
    assert 20 <= peak <= 25 and rates[-1] == pytest.approx(0.001)
    assert all(a <= b for a, b in pairwise(rates[: peak + 1]))
    assert all(a >= b for a, b in pairwise(rates[peak:]))


def test_optimizer_follows_its_schedule_and_round_trips_its_config():
    optimizer = SGD(StepDecay(0.1, 0.1, decay_steps=1))
    p, g = np.array([1.0], np.float32), np.array([1.0], np.float32)
    for _ in range(3):
        optimizer.step([(p, g)])
    np.testing.assert_allclose(p, 1 - 0.1 - 0.01 - 0.001, rtol=1e-6)
    config = optimizer.get_config()["learning_rate"]
    assert schedule_from_config(config)(2) == pytest.approx(0.001)
    with pytest.raises(NNError, match="valid schedules: cosine_decay, one_cycle, step_decay"):
        schedule_from_config({"name": "warp"})


def test_weight_decay_shrinks_kernels_but_not_biases():
    model = Sequential([Dense(3, input_shape=(2,))], seed=0)
    model.compile(optimizer=Adam(0.1, weight_decay=0.5), loss="mse")
    model.build()
    model.set_weights([np.ones((2, 3)), np.ones(3)])
    X, Y = np.zeros((4, 2)), np.ones((4, 3))  # zero input, perfect bias: no gradient at all
    model.fit(X, Y, epochs=1, batch_size=4, verbose=False)
    W, b = model.get_weights()
    np.testing.assert_allclose(W, 1 - 0.1 * 0.5, rtol=1e-6)  # decayed by lr * weight_decay
    np.testing.assert_allclose(b, 1, rtol=1e-6)


def test_presets_build_and_unknown_names_are_listed():
    for name, preset in PRESETS.items():
        model = preset.build(seed=0)
        model.build()
        assert model.output_shape == (10,), name
        assert math.isfinite(preset.optimizer(None, 100).learning_rate)
    tutorial = get_preset("tutorial").build(seed=0)
    tutorial.build()
    assert tutorial.count_params() == 13_002
    with pytest.raises(NNError, match="valid model presets: cnn, mlp, tutorial"):
        get_preset("resnet")
