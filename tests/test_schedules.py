"""lrtools.schedules against the frameworks' own schedules (parity), and its checks.

Every formula is compared with the library object it mirrors over random settings:
Keras's ``keras.optimizers.schedules`` (float32, evaluated at update counts) and
PyTorch's ``torch.optim.lr_scheduler`` (float64, stepped as a training loop steps it).
"""

import doctest
import warnings

import numpy as np
import pytest
import torch
from _keras2_wheels import keras2_source

from lrtools import schedules
from lrtools.keras_tools import keras

DECAYS = [1e-1, 1e-2, 1e-3, 1e-4, 0.0]
UPDATES = np.arange(3201)  # 200 epochs of 16 updates
SETTINGS = range(12)  # random settings per schedule


def keras_rates(schedule_class, steps, *args, **kwargs):
    """A Keras schedule evaluated at each update count, in float64: a schedule
    computes in the dtype of its rates (float32 for Python floats, which would hide
    a formula error below float32's rounding)."""

    def as64(value):
        if isinstance(value, list):
            return [as64(v) for v in value]
        return np.float64(value) if isinstance(value, float) else value

    schedule = schedule_class(
        *as64(list(args)), **{k: as64(v) for k, v in kwargs.items()}
    )
    return np.array([float(schedule(np.int64(t))) for t in steps])


def assert_float64_close(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)


def random_steps(rng, high):
    return np.unique(np.concatenate([[0, 1], rng.integers(0, high, 40), [high]]))


@pytest.mark.parametrize("seed", SETTINGS)
def test_exponential_decay_equals_keras(seed):
    rng = np.random.default_rng(seed)
    kwargs = dict(
        initial_learning_rate=float(rng.uniform(1e-3, 1)),
        decay_steps=int(rng.integers(1, 200)),
        decay_rate=float(rng.uniform(0.05, 0.99)),
        staircase=bool(rng.integers(2)),
    )
    steps = random_steps(rng, 1000)
    theirs = keras_rates(keras.optimizers.schedules.ExponentialDecay, steps, **kwargs)
    ours = schedules.exponential_decay(steps, **kwargs)
    assert_float64_close(ours, theirs)


@pytest.mark.parametrize("seed", SETTINGS)
def test_inverse_time_decay_equals_keras(seed):
    rng = np.random.default_rng(seed)
    kwargs = dict(
        initial_learning_rate=float(rng.uniform(1e-3, 1)),
        decay_steps=int(rng.integers(1, 200)),
        decay_rate=float(rng.uniform(0, 2)),
        staircase=bool(rng.integers(2)),
    )
    steps = random_steps(rng, 1000)
    theirs = keras_rates(keras.optimizers.schedules.InverseTimeDecay, steps, **kwargs)
    ours = schedules.inverse_time_decay(steps, **kwargs)
    assert_float64_close(ours, theirs)


@pytest.mark.parametrize("seed", SETTINGS)
def test_piecewise_constant_decay_equals_keras(seed):
    rng = np.random.default_rng(seed)
    boundaries = sorted(rng.choice(500, size=int(rng.integers(1, 5)), replace=False))
    boundaries = [int(b) for b in boundaries]
    values = [float(v) for v in rng.uniform(1e-4, 1, len(boundaries) + 1)]
    # the steps on and next to each boundary decide which value wins
    steps = np.unique(
        np.concatenate([random_steps(rng, 600), boundaries, np.add(boundaries, 1)])
    )
    theirs = keras_rates(
        keras.optimizers.schedules.PiecewiseConstantDecay, steps, boundaries, values
    )
    ours = schedules.piecewise_constant_decay(steps, boundaries, values)
    assert_float64_close(ours, theirs)


@pytest.mark.parametrize("seed", SETTINGS)
def test_polynomial_decay_equals_keras(seed):
    rng = np.random.default_rng(seed)
    lr0 = float(rng.uniform(1e-2, 1))
    kwargs = dict(
        initial_learning_rate=lr0,
        decay_steps=int(rng.integers(1, 300)),
        end_learning_rate=float(rng.uniform(0, lr0 / 2)),
        power=float(rng.uniform(0.3, 3)),
        cycle=bool(rng.integers(2)),
    )
    steps = random_steps(rng, 1000)
    theirs = keras_rates(keras.optimizers.schedules.PolynomialDecay, steps, **kwargs)
    ours = schedules.polynomial_decay(steps, **kwargs)
    assert_float64_close(ours, theirs)


@pytest.mark.parametrize("seed", SETTINGS)
def test_cosine_decay_equals_keras(seed):
    rng = np.random.default_rng(seed)
    warm = seed % 2 == 1
    kwargs = dict(
        initial_learning_rate=float(rng.uniform(0 if warm else 1e-3, 0.1)),
        decay_steps=int(rng.integers(1, 500)),
        alpha=float(rng.uniform(0, 0.5)),
    )
    if warm:
        kwargs |= dict(
            warmup_target=float(rng.uniform(0.1, 1)),
            warmup_steps=int(rng.integers(0, 100)),
        )
    steps = random_steps(rng, 800)
    theirs = keras_rates(keras.optimizers.schedules.CosineDecay, steps, **kwargs)
    ours = schedules.cosine_decay(steps, **kwargs)
    assert_float64_close(ours, theirs)


@pytest.mark.parametrize("seed", SETTINGS)
def test_cosine_decay_restarts_equals_keras(seed):
    rng = np.random.default_rng(seed)
    kwargs = dict(
        initial_learning_rate=float(rng.uniform(1e-3, 1)),
        first_decay_steps=int(rng.integers(5, 100)),
        t_mul=1.0 if seed % 3 == 0 else float(rng.uniform(0.5, 3)),
        m_mul=float(rng.uniform(0.3, 1)),
        alpha=float(rng.uniform(0, 0.3)),
    )
    limit = 600
    if kwargs["t_mul"] < 1:  # shrinking cycles run out (see the ValueError test)
        limit = int(kwargs["first_decay_steps"] / (1 - kwargs["t_mul"])) - 1
    steps = random_steps(rng, limit)
    theirs = keras_rates(
        keras.optimizers.schedules.CosineDecayRestarts, steps, **kwargs
    )
    ours = schedules.cosine_decay_restarts(steps, **kwargs)
    assert_float64_close(ours, theirs)


def torch_rates(make_scheduler, lr, steps):
    """The optimizer's rate after 0, 1, ... ``steps`` calls to scheduler.step(),
    stepped as a training loop steps it (after optimizer.step())."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return np.array(rates)


@pytest.mark.parametrize("seed", SETTINGS)
def test_step_lr_equals_torch(seed):
    rng = np.random.default_rng(seed)
    lr, step_size = float(rng.uniform(1e-3, 1)), int(rng.integers(1, 30))
    gamma = float(rng.uniform(0.05, 0.95))
    theirs = torch_rates(
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma=gamma), lr, 120
    )
    ours = schedules.step_lr(np.arange(121), lr, step_size, gamma=gamma)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("seed", SETTINGS)
def test_cosine_annealing_lr_equals_torch(seed):
    rng = np.random.default_rng(seed)
    lr, t_max = float(rng.uniform(1e-3, 1)), int(rng.integers(1, 60))
    eta_min = float(rng.uniform(0, lr / 2))
    # three half-periods: down, back up, and down again
    theirs = torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, t_max, eta_min),
        lr,
        3 * t_max,
    )
    ours = schedules.cosine_annealing_lr(np.arange(3 * t_max + 1), lr, t_max, eta_min)
    # PyTorch updates the rate recursively, which accumulates rounding
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", SETTINGS)
def test_one_cycle_lr_equals_torch(seed):
    rng = np.random.default_rng(seed)
    kwargs = dict(
        max_lr=float(rng.uniform(1e-2, 1)),
        total_steps=int(rng.integers(20, 400)),
        pct_start=float(rng.uniform(0.1, 0.5)),
        anneal_strategy=["cos", "linear"][seed % 2],
        div_factor=float(rng.uniform(5, 50)),
        final_div_factor=float(10 ** rng.uniform(1, 5)),
        three_phase=seed % 4 >= 2,
    )
    steps = kwargs["total_steps"]
    theirs = torch_rates(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, cycle_momentum=False, **kwargs
        ),
        0.1,
        steps - 1,  # PyTorch raises on the step after total_steps - 1 ...
    )
    ours = schedules.one_cycle_lr(np.arange(steps), **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="step must be <= total_steps"):
        schedules.one_cycle_lr(steps + 1, **kwargs)


def test_a_formula_that_differs_from_its_library_is_caught():
    # The comparisons above can fail: StepLR's first drop one epoch late is 10x off.
    theirs = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, 10), 0.1, 30)
    late = schedules.step_lr(np.arange(31) - 1 + (np.arange(31) == 0), 0.1, 10)
    assert not np.allclose(late, theirs, rtol=1e-12)


@pytest.mark.parametrize("decay", DECAYS)
def test_inverse_time_decay_equals_lambdalr_stepped_per_update(decay):
    # Keras 2's SGD(decay=d), ported to PyTorch: LambdaLR stepped after every update.
    rates = torch_rates(
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + decay * t)),
        0.01,
        len(UPDATES) - 1,
    )
    np.testing.assert_allclose(
        schedules.inverse_time_decay(UPDATES, 0.01, 1, decay), rates, rtol=1e-12
    )


def test_keras_schedule_counts_optimizer_updates():
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        0.01, decay_steps=1, decay_rate=0.1
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    weight = keras.Variable(np.zeros(1, dtype="float32"))
    for _ in range(5):
        optimizer.apply_gradients([(np.ones(1, dtype="float32"), weight)])
    assert int(optimizer.iterations) == 5
    assert float(optimizer.learning_rate) == pytest.approx(
        schedules.inverse_time_decay(5, 0.01, 1, 0.1), rel=1e-6
    )


def test_keras3_rejects_lr_and_ignores_decay():
    with pytest.raises(ValueError, match="not recognized"):
        keras.optimizers.SGD(lr=0.01)
    with pytest.warns(UserWarning, match="decay"):
        optimizer = keras.optimizers.SGD(learning_rate=0.01, decay=0.1)
    weight = keras.Variable(np.zeros(1, dtype="float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            optimizer.apply_gradients([(np.ones(1, dtype="float32"), weight)])
    assert float(optimizer.learning_rate) == pytest.approx(0.01)  # not decayed


def test_the_studys_numbers():
    assert schedules.inverse_time_decay(3200, 0.01, 1, 0.1) == pytest.approx(
        3.11526e-5, rel=1e-5
    )
    assert schedules.inverse_time_decay(3200, 0.01, 1, 1e-4) == pytest.approx(
        0.00757576, rel=1e-6
    )


def test_the_docstring_examples():
    failures, tried = doctest.testmod(schedules)
    assert tried >= 10 and failures == 0


def test_shapes_and_types():
    assert isinstance(schedules.inverse_time_decay(0, 0.01, 1, 0.1), float)
    assert schedules.inverse_time_decay(0, 0.01, 1, 0.1) == 0.01
    assert schedules.inverse_time_decay(np.int64(3), 0.01, 1, 0.1) == pytest.approx(
        0.01 / 1.3
    )
    rates = schedules.step_lr(np.arange(6).reshape(2, 3), 0.01, 2)
    assert rates.shape == (2, 3)
    assert schedules.cosine_decay([], 0.01, 10).shape == (0,)
    assert isinstance(schedules.one_cycle_lr(0, 0.1, 10), float)


GOOD = {
    schedules.exponential_decay: dict(
        step=10, initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5
    ),
    schedules.inverse_time_decay: dict(
        step=10, initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5
    ),
    schedules.piecewise_constant_decay: dict(
        step=10, boundaries=[5, 20], values=[0.1, 0.01, 0.001]
    ),
    schedules.polynomial_decay: dict(
        step=10, initial_learning_rate=0.1, decay_steps=20
    ),
    schedules.cosine_decay: dict(step=10, initial_learning_rate=0.1, decay_steps=20),
    schedules.cosine_decay_restarts: dict(
        step=10, initial_learning_rate=0.1, first_decay_steps=20
    ),
    schedules.step_lr: dict(epoch=10, lr=0.1, step_size=5),
    schedules.cosine_annealing_lr: dict(epoch=10, lr=0.1, T_max=20),
    schedules.one_cycle_lr: dict(step=10, max_lr=0.1, total_steps=20),
}

BAD = [
    (schedules.exponential_decay, {"step": -1}, "step"),
    (schedules.exponential_decay, {"step": 2.5}, "step"),
    (schedules.exponential_decay, {"step": [0, 1.5]}, "step"),
    (schedules.exponential_decay, {"initial_learning_rate": 0.0}, "initial_learning"),
    (schedules.exponential_decay, {"decay_steps": 0}, "decay_steps"),
    (schedules.exponential_decay, {"decay_rate": -0.5}, "decay_rate"),
    (schedules.exponential_decay, {"staircase": "yes"}, "staircase"),
    (schedules.inverse_time_decay, {"decay_rate": float("nan")}, "decay_rate"),
    (schedules.inverse_time_decay, {"decay_steps": float("inf")}, "decay_steps"),
    (schedules.piecewise_constant_decay, {"boundaries": [20, 5]}, "boundaries"),
    (schedules.piecewise_constant_decay, {"boundaries": []}, "boundaries"),
    (schedules.piecewise_constant_decay, {"values": [0.1, 0.01]}, "values"),
    (schedules.piecewise_constant_decay, {"values": [0.1, -1, 0.1]}, "values"),
    (schedules.polynomial_decay, {"power": 0}, "power"),
    (schedules.polynomial_decay, {"end_learning_rate": -1}, "end_learning_rate"),
    (schedules.cosine_decay, {"alpha": 1.5}, "alpha"),
    (schedules.cosine_decay, {"warmup_target": 0.0}, "warmup_target"),
    (
        schedules.cosine_decay,
        {"warmup_target": 0.2, "warmup_steps": -1},
        "warmup_steps",
    ),
    (schedules.cosine_decay_restarts, {"t_mul": 0}, "t_mul"),
    (schedules.cosine_decay_restarts, {"m_mul": -1}, "m_mul"),
    (schedules.cosine_decay_restarts, {"t_mul": 0.5, "step": 40}, "run out"),
    (schedules.step_lr, {"step_size": 0}, "step_size"),
    (schedules.step_lr, {"gamma": 0}, "gamma"),
    (schedules.step_lr, {"epoch": -3}, "epoch"),
    (schedules.cosine_annealing_lr, {"T_max": 2.5}, "T_max"),
    (schedules.cosine_annealing_lr, {"eta_min": -0.1}, "eta_min"),
    (schedules.one_cycle_lr, {"pct_start": 1.5}, "pct_start"),
    (schedules.one_cycle_lr, {"anneal_strategy": "exp"}, "anneal_strategy"),
    (schedules.one_cycle_lr, {"step": 21}, "total_steps"),
    (schedules.one_cycle_lr, {"pct_start": 0.05}, "zero length"),
    (schedules.one_cycle_lr, {"div_factor": 0}, "div_factor"),
]


@pytest.mark.parametrize(("function", "change", "name"), BAD)
def test_bad_arguments_raise_a_clear_value_error(function, change, name):
    function(**GOOD[function])  # the good call works ...
    with pytest.raises(ValueError, match=name):  # ... and the changed one names it
        function(**(GOOD[function] | change))


@pytest.mark.parametrize(("version", "line"), [("2.2.4", 189), ("2.3.1", 197)])
def test_keras2_sgd_decays_by_its_update_counter(version, line):
    source = keras2_source(version, "keras/optimizers.py").splitlines()
    assert "(1. / (1. + self.decay * K.cast(self.iterations" in source[line - 1]
