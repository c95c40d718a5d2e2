"""lrtools.replicas: many MLPs at once, each replica equal to a single framework run.

Exactness first: under ``semantics="torch"`` every replica of one engine call must
reproduce ``torch_tools.fit`` with the matching ``torch.optim`` optimizer and scheduler,
and under ``semantics="keras"`` Keras's own ``fit`` (float64 both sides, so that chaos
does not amplify float32 rounding). Settings are drawn at random (fixed seeds) so that a
test exercises more than hand-picked round numbers. Runs are chosen in a regime that is
not chaotic: at larger rates (e.g. SGD at 0.025) a 1e-15 nudge of one weight moves the
loss by 2e-7 within torch_tools.fit itself, and the engine's gap is then no smaller.
"""

import functools
import math
import os
import shutil
import types

import numpy as np
import pytest
import torch

from lrtools import _replicas_engine, _replicas_kernel, data, replicas, schedules
from lrtools import torch_tools as tt

SPLIT64 = data.make_blobs_split(dtype="float64")
METRICS = ("learning_rate", "loss", "accuracy", "val_loss", "val_accuracy")
EXACT = 1e-9  # float64 agreement required over a whole run


def f32(x):
    return float(np.float32(x))


def engine(**kwargs):
    kwargs.setdefault("dtype", torch.float64)
    kwargs.setdefault("progress", False)
    return replicas.train(**kwargs)


def max_gap(a, b):
    """Largest absolute difference of two histories or weight lists (NaN must match)."""
    gaps = []
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        assert x.shape == y.shape
        assert np.array_equal(np.isnan(x), np.isnan(y)), "NaN in one run only"
        finite = ~np.isnan(x)
        gaps.append(np.max(np.abs(x[finite] - y[finite]), initial=0.0))
    return max(gaps)


def history_gap(ours, theirs, keys=METRICS):
    return max_gap([ours[k] for k in keys], [theirs[k] for k in keys])


@pytest.fixture(params=["kernel", "batched"])
def formulation(request, monkeypatch):
    """Run a test with the compiled kernel and with the batched PyTorch formulation
    (the engine's pure-PyTorch fallback)."""
    if request.param == "kernel" and _replicas_kernel.load() is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    monkeypatch.setenv(
        _replicas_kernel.SWITCH, "1" if request.param == "kernel" else "0"
    )
    return request.param


_REFERENCE_RUNS = {}
_current_test = {"key": None, "calls": 0}


@pytest.fixture(autouse=True)
def share_reference_runs(request):
    """Identify the running test apart from its formulation, for :func:`reference`."""
    callspec = getattr(request.node, "callspec", None)
    params = {} if callspec is None else dict(callspec.params)
    params.pop("formulation", None)
    _current_test.update(key=(request.node.originalname, repr(params)), calls=0)


def reference(compute):
    """``compute()``, a framework run, done once per test and call position: both
    formulations of a test compare with the same runs."""
    key = (_current_test["key"], _current_test["calls"])
    _current_test["calls"] += 1
    if key not in _REFERENCE_RUNS:
        _REFERENCE_RUNS[key] = compute()
    return _REFERENCE_RUNS[key]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny single runs are fastest on one thread, and robust to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------
# Defaults: weights and batch orders of the single-run tools
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_default_weights_are_build_mlps_weights(dtype):
    seeds = [0, 3, 11]
    batched = replicas.default_weights(seeds, dtype=dtype)
    for k, seed in enumerate(seeds):
        single = tt.get_weights(tt.build_mlp(seed=seed, dtype=dtype))
        for b, s in zip(batched, single, strict=True):
            assert np.array_equal(b[k], s)


def test_default_orders_are_epoch_permutations():
    source = replicas._Orders(500, [4, 9], np.array([1, 0, 1]))
    expected = {s: data.epoch_permutations(500, 3, s) for s in (4, 9)}
    for epoch in range(3):
        order = source(epoch).per_replica().numpy()
        for r, seed in enumerate([9, 4, 9]):
            assert np.array_equal(order[r], expected[seed][epoch])


# --------------------------------------------------------------------------------------
# The frame
# --------------------------------------------------------------------------------------


def test_frame_zips_settings_and_crosses_them_with_seeds():
    result = engine(
        optimizer="sgd",
        learning_rate=[0.1, 0.01],
        momentum=[0.0, 0.9],
        nesterov=False,
        seeds=[5, 2, 7],
        epochs=3,
        semantics="keras",
    )
    frame = result.frame
    assert len(frame) == 2 * 3 * 3
    assert list(frame.columns) == [
        "setting",
        "seed",
        "epoch",
        "initial_learning_rate",
        "momentum",
        "nesterov",
        *METRICS,
    ]
    assert frame["epoch"].tolist()[:4] == [1, 2, 3, 1]
    assert frame["seed"].tolist()[::3] == [5, 2, 7, 5, 2, 7]
    first = frame[frame["setting"] == 0]
    second = frame[frame["setting"] == 1]
    assert set(first["initial_learning_rate"]) == {0.1} and set(first["momentum"]) == {
        0.0
    }
    assert set(second["initial_learning_rate"]) == {0.01} and set(
        second["momentum"]
    ) == {0.9}
    # Keras stores the rate in float32, and so reports it.
    assert set(first["learning_rate"]) == {f32(0.1)}
    assert [w.shape for w in result.weights] == [
        (6, 2, 50),
        (6, 50),
        (6, 50, 3),
        (6, 3),
    ]
    assert result.replica(1, 2) == 4
    assert np.array_equal(result.final_weights(1, 2)[0], result.weights[0][4])


def test_schedule_columns_appear_when_used():
    result = engine(
        learning_rate=0.1,
        seeds=[0],
        epochs=2,
        semantics="torch",
        plateau=True,
        plateau_patience=3,
    )
    columns = set(result.frame.columns)
    assert {
        "plateau",
        "plateau_patience",
        "plateau_threshold_mode",
        "plateau_eps",
    } <= columns
    assert result.settings["plateau_patience"].tolist() == [3]
    assert result.settings["plateau_factor"].tolist() == [0.1]  # the default, resolved


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "adamw"}, "optimizer must be one of"),
        ({"semantics": "jax"}, "semantics must be one of"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        (
            {"learning_rate": [0.1, math.nan]},
            "learning_rate must be a finite number > 0",
        ),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
        ({"momentum": 1.0}, "momentum must be < 1"),
        ({"momentum": -0.1}, "momentum must be >= 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"seeds": []}, "seeds must hold at least one seed"),
        ({"seeds": [-1]}, "seeds must be an integer >= 0"),
        (
            {"learning_rate": [0.1, 0.2], "momentum": [0.1, 0.2, 0.3]},
            "one entry per setting",
        ),
        ({"rho": 0.9}, "rho does not apply to optimizer 'sgd'"),
        (
            {"optimizer": "adam", "momentum": 0.9},
            "momentum does not apply to optimizer 'adam'",
        ),
        ({"optimizer": "adagrad", "nesterov": True}, "nesterov does not apply"),
        (
            {"nesterov": True, "semantics": "torch"},
            "nesterov requires momentum > 0 under semantics 'torch'",
        ),
        ({"step_factor": 0.5}, "step_factor applies only with step_every"),
        ({"plateau_patience": 2}, "apply only with plateau=True"),
        ({"plateau": True, "plateau_eps": 0.0}, "applies to semantics 'torch' only"),
        ({"decay": 0.01, "step_every": 10}, "one schedule per setting at most"),
        (
            {"decay": 0.01, "rate_schedule": lambda t: 0.1 + 0 * t},
            "one schedule per setting at most",
        ),
        ({"rate_schedule": 0.1}, "rate_schedule must be a function"),
        ({"rate_schedule": lambda t: 0.1}, "one rate per update count"),
        ({"rate_schedule": lambda t: np.nan * t}, "finite rates >= 0"),
        ({"rate_schedule": lambda t: -0.1 + 0 * t}, "finite rates >= 0"),
        ({"rate_schedule": lambda: 0.1}, "must accept an int64 array"),
        ({"step_every": 0}, "step_every must be an integer >= 1"),
        ({"plateau": True, "plateau_factor": 1.0}, "plateau_factor must be < 1"),
        ({"dtype": torch.float16}, "dtype must be"),
        (
            {"initial_weights": [np.zeros((1, 2, 50))]},
            "initial_weights must hold 4 arrays",
        ),
        (
            {"orders": np.zeros((1, 2, 500), dtype=int)},
            "orders must be an integer array",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    arguments = {"learning_rate": 0.1, "seeds": [0], "epochs": 1, "semantics": "keras"}
    with pytest.raises(ValueError, match=message):
        engine(**{**arguments, **kwargs})


# --------------------------------------------------------------------------------------
# semantics="torch": each replica equals torch_tools.fit
# --------------------------------------------------------------------------------------


def torch_run(seed, epochs, make_optimizer, make_scheduler=None, interval="epoch"):
    model = tt.build_mlp(seed=seed, dtype=torch.float64)
    optimizer = make_optimizer(model.parameters())
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    history = tt.fit(
        model,
        optimizer,
        SPLIT64,
        epochs=epochs,
        seed=seed,
        scheduler=scheduler,
        scheduler_interval=interval,
    )
    return history, tt.get_weights(model)


def assert_replicas_match_torch(result, references, *, epochs):
    """``references``: {(setting, seed): (make_optimizer, make_scheduler, interval)}."""
    for (setting, seed), factories in references.items():
        history, weights = reference(
            lambda s=seed, f=factories: torch_run(s, epochs, *f)
        )
        assert history_gap(result.history(setting, seed), history) < EXACT
        assert max_gap(result.final_weights(setting, seed), weights) < EXACT
        assert history["loss"][-1] < history["loss"][0]  # the runs do learn something


def draw(rng, low, high, n=2, log=False):
    if log:
        return np.exp(rng.uniform(np.log(low), np.log(high), n)).round(6).tolist()
    return rng.uniform(low, high, n).round(6).tolist()


@pytest.mark.usefixtures("formulation")
@pytest.mark.parametrize("variant", ["plain", "momentum", "nesterov"])
def test_sgd_replicas_equal_torch_fit(variant):
    rng = np.random.default_rng(["plain", "momentum", "nesterov"].index(variant))
    lrs = draw(rng, 0.005, 0.02 if variant == "plain" else 0.05, log=True)
    momenta = [0.0, 0.0] if variant == "plain" else draw(rng, 0.5, 0.95)
    nesterov = variant == "nesterov"
    seeds = [int(s) for s in rng.choice(100, 2, replace=False)]
    epochs = 200
    result = engine(
        optimizer="sgd",
        learning_rate=lrs,
        momentum=momenta,
        nesterov=nesterov,
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
    )
    references = {
        (i, seeds[i]): (
            lambda p, i=i: torch.optim.SGD(
                p, lr=lrs[i], momentum=momenta[i], nesterov=nesterov
            ),
            None,
            "epoch",
        )
        for i in range(2)
    }
    assert_replicas_match_torch(result, references, epochs=epochs)


ADAPTIVE = {
    "rmsprop": (
        {"learning_rate": [0.002, 0.01], "rho": [0.9, 0.99], "momentum": [0.0, 0.5]},
        lambda p, s: torch.optim.RMSprop(
            p, lr=s["learning_rate"], alpha=s["rho"], momentum=s["momentum"]
        ),
    ),
    "adagrad": (
        {"learning_rate": [0.05, 0.2], "initial_accumulator_value": [0.0, 0.1]},
        lambda p, s: torch.optim.Adagrad(
            p,
            lr=s["learning_rate"],
            initial_accumulator_value=s["initial_accumulator_value"],
        ),
    ),
    "adam": (
        {"learning_rate": [0.003, 0.02], "beta_1": [0.9, 0.8], "beta_2": [0.999, 0.99]},
        lambda p, s: torch.optim.Adam(
            p, lr=s["learning_rate"], betas=(s["beta_1"], s["beta_2"])
        ),
    ),
}


@pytest.mark.usefixtures("formulation")
@pytest.mark.parametrize("name", sorted(ADAPTIVE))
def test_adaptive_replicas_equal_torch_fit(name):
    grid, make = ADAPTIVE[name]
    rng = np.random.default_rng(len(name))
    # Jitter the settings so that they are not round numbers.
    grid = {
        k: [
            v * (1 + 0.01 * rng.uniform()) if k == "learning_rate" else v
            for v in values
        ]
        for k, values in grid.items()
    }
    seeds = [int(s) for s in rng.choice(100, 2, replace=False)]
    epochs = 200
    result = engine(
        optimizer=name, seeds=seeds, epochs=epochs, semantics="torch", **grid
    )
    references = {}
    for i in range(2):
        setting = {k: v[i] for k, v in grid.items()}
        references[(i, seeds[1 - i])] = (lambda p, s=setting: make(p, s), None, "epoch")
    assert_replicas_match_torch(result, references, epochs=epochs)


@pytest.mark.usefixtures("formulation")
def test_inverse_time_decay_equals_lambdalr_per_update():
    rng = np.random.default_rng(7)
    lrs, decays, momenta = (
        draw(rng, 0.01, 0.03),
        draw(rng, 1e-4, 1e-2, log=True),
        [0.0, 0.9],
    )
    seeds = [3, 8]
    epochs = 200
    result = engine(
        learning_rate=lrs,
        decay=decays,
        momentum=momenta,
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
    )
    references = {
        (i, seeds[i]): (
            lambda p, i=i: torch.optim.SGD(p, lr=lrs[i], momentum=momenta[i]),
            lambda o, i=i: torch.optim.lr_scheduler.LambdaLR(
                o, lambda t: 1 / (1 + decays[i] * t)
            ),
            "step",
        )
        for i in range(2)
    }
    assert_replicas_match_torch(result, references, epochs=epochs)
    # The rate really decays: lr0 / (1 + d * 16 * epochs) at the end.
    final = result.history(0, seeds[0])["learning_rate"][-1]
    assert final == pytest.approx(lrs[0] / (1 + decays[0] * 16 * epochs), rel=1e-12)


@pytest.mark.usefixtures("formulation")
def test_step_schedule_equals_steplr_per_epoch():
    lrs, every, factors = [0.05, 0.02], [30, 45], [0.5, 0.3]
    seeds = [1, 6]
    epochs = 120
    result = engine(
        learning_rate=lrs,
        step_every=every,
        step_factor=factors,
        momentum=[0.9, 0.0],
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
    )
    references = {
        (i, seeds[i]): (
            lambda p, i=i: torch.optim.SGD(p, lr=lrs[i], momentum=[0.9, 0.0][i]),
            lambda o, i=i: torch.optim.lr_scheduler.StepLR(o, every[i], factors[i]),
            "epoch",
        )
        for i in range(2)
    }
    assert_replicas_match_torch(result, references, epochs=epochs)
    rates = result.history(0, seeds[0])["learning_rate"]
    # The first cut applies from epoch index 30 on (StepLR stepped after each epoch).
    assert rates[29] == 0.05 and rates[30] == pytest.approx(0.025)


@pytest.mark.usefixtures("formulation")
def test_rate_schedule_equals_torch_schedulers_per_update_and_per_epoch():
    # Two schedules as functions of the update count, against the real schedulers:
    # OneCycleLR stepped after every update, CosineAnnealingLR after every epoch.
    seeds, epochs, per_epoch = [2, 5], 60, 16
    one_cycle = functools.partial(
        schedules.one_cycle_lr, max_lr=0.05, total_steps=epochs * per_epoch + 1
    )

    def cosine_per_epoch(t):
        return schedules.cosine_annealing_lr(t // per_epoch, 0.1, T_max=40)

    result = engine(
        learning_rate=[0.05, 0.1],
        momentum=[0.0, 0.9],
        rate_schedule=[one_cycle, cosine_per_epoch],
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
    )
    per_update = (
        lambda p: torch.optim.SGD(p, lr=0.05),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.05, total_steps=epochs * per_epoch + 1, cycle_momentum=False
        ),
        "step",
    )
    assert_replicas_match_torch(result, {(0, seeds[0]): per_update}, epochs=epochs)

    theirs, weights = reference(
        lambda: torch_run(
            seeds[1],
            epochs,
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40),
        )
    )
    ours = result.history(1, seeds[1])
    assert history_gap(ours, theirs, keys=METRICS[1:]) < EXACT
    assert max_gap(result.final_weights(1, seeds[1]), weights) < EXACT
    # The recorded rate is the next update's: for a per-epoch schedule, next epoch's.
    np.testing.assert_allclose(
        ours["learning_rate"][:-1], theirs["learning_rate"][1:], rtol=1e-12, atol=1e-16
    )
    assert ours["learning_rate"][39] == pytest.approx(0.0, abs=1e-15)  # end of epoch 40


@pytest.mark.usefixtures("formulation")
def test_plateau_equals_torch_reduce_lr_on_plateau():
    settings = [
        {
            "patience": 2,
            "factor": 0.5,
            "threshold": 1e-3,
            "threshold_mode": "rel",
            "cooldown": 2,
            "min_lr": 1e-3,
        },
        {
            "patience": 0,
            "factor": 0.3,
            "threshold": 1e-4,
            "threshold_mode": "abs",
            "cooldown": 0,
            "min_lr": 0.0,
        },
    ]
    lrs, seeds, epochs = [0.3, 0.1], [2, 5], 200
    result = engine(
        learning_rate=lrs,
        momentum=0.9,
        plateau=True,
        plateau_patience=[s["patience"] for s in settings],
        plateau_factor=[s["factor"] for s in settings],
        plateau_min_delta=[s["threshold"] for s in settings],
        plateau_threshold_mode=[s["threshold_mode"] for s in settings],
        plateau_cooldown=[s["cooldown"] for s in settings],
        plateau_min_lr=[s["min_lr"] for s in settings],
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
    )
    references = {
        (i, seeds[i]): (
            lambda p, i=i: torch.optim.SGD(p, lr=lrs[i], momentum=0.9),
            lambda o, i=i: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **settings[i]),
            "epoch",
        )
        for i in range(2)
    }
    assert_replicas_match_torch(result, references, epochs=epochs)
    for i in range(
        2
    ):  # each replica cut its own rate, on its own epochs, several times
        rates = result.history(i, seeds[i])["learning_rate"]
        assert len(set(rates)) >= 3
    cuts = [
        np.flatnonzero(np.diff(result.history(i, seeds[i])["learning_rate"]))
        for i in (0, 1)
    ]
    assert not np.array_equal(cuts[0], cuts[1])


@pytest.mark.usefixtures("formulation")
def test_a_diverging_replica_is_nan_afterwards_and_harms_no_other():
    seeds, epochs = [0], 60
    result = engine(
        learning_rate=[20.0, 0.1], seeds=seeds, epochs=epochs, semantics="torch"
    )
    for i, lr in enumerate([20.0, 0.1]):
        history, _ = reference(
            lambda lr=lr: torch_run(0, epochs, lambda p: torch.optim.SGD(p, lr=lr))
        )
        ours = result.history(i, 0)
        # The diverging run's losses reach 1e300 and chaos amplifies rounding: compare
        # relatively, and insist on the same epoch of divergence (the same NaN pattern).
        np.testing.assert_allclose(
            ours["loss"], history["loss"], rtol=1e-2 if lr > 1 else 1e-9
        )
        assert np.array_equal(np.isnan(ours["val_loss"]), np.isnan(history["val_loss"]))
    diverged = result.history(0, 0)
    first_bad = next(e for e, x in enumerate(diverged["loss"]) if not math.isfinite(x))
    assert 0 < first_bad < epochs - 1
    assert all(math.isnan(x) for k in METRICS for x in diverged[k][first_bad + 1 :])
    # The healthy replica trains bit for bit as it does beside another healthy one.
    healthy = engine(
        learning_rate=[0.05, 0.1], seeds=seeds, epochs=epochs, semantics="torch"
    )
    assert history_gap(result.history(1, 0), healthy.history(1, 0)) == 0
    assert max_gap(result.final_weights(1, 0), healthy.final_weights(1, 0)) == 0


@pytest.mark.usefixtures("formulation")
def test_float32_replicas_agree_with_torch_fit_to_float32_rounding():
    seeds, epochs = [4, 9], 2
    result = replicas.train(
        learning_rate=0.1,
        momentum=0.9,
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
        progress=False,
    )
    split = data.make_blobs_split()
    for seed in seeds:
        model = tt.build_mlp(seed=seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = tt.fit(model, optimizer, split, epochs=epochs, seed=seed)
        ours = result.history(0, seed)
        np.testing.assert_allclose(ours["loss"], history["loss"], rtol=2e-6)
        np.testing.assert_allclose(ours["val_loss"], history["val_loss"], rtol=2e-6)
        np.testing.assert_allclose(ours["accuracy"], history["accuracy"], atol=2.1e-3)
        weights = tt.get_weights(model)
        # A few float32 ulps of the largest weight per update (32 updates).
        ulp = np.finfo(np.float32).eps * max(np.abs(w).max() for w in weights)
        assert max_gap(result.final_weights(0, seed), weights) < 32 * ulp
        assert result.weights[0].dtype == np.float32


# --------------------------------------------------------------------------------------
# semantics="keras": each replica equals Keras's own fit
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_run():
    kt = pytest.importorskip("lrtools.keras_tools")
    keras = kt.keras

    def run(seed, epochs, optimizer, callbacks=()):
        model = kt.build_mlp(seed=seed, dtype="float64")
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(dtype="float64"),
            metrics=["accuracy"],
            steps_per_execution=16,
        )
        initial = model.get_weights()
        history = kt.fit(
            model, SPLIT64, epochs=epochs, seed=seed, callbacks=list(callbacks)
        )
        return initial, history, model.get_weights()

    run.keras = keras
    return run


def assert_replica_matches_keras(
    keras_run, seed, epochs, keras_optimizer, callbacks=(), **kw
):
    initial, history, final = reference(
        lambda: keras_run(seed, epochs, keras_optimizer, callbacks)
    )
    result = engine(
        seeds=[seed],
        epochs=epochs,
        semantics="keras",
        initial_weights=[w[None] for w in initial],
        orders=data.epoch_permutations(500, epochs, seed)[None],
        **kw,
    )
    ours = result.history(0, seed)
    assert max_gap(result.final_weights(0, seed), final) < EXACT
    # Keras reports metrics through float32 trackers, whatever the model's dtype.
    np.testing.assert_allclose(ours["loss"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(ours["val_loss"], history["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(ours["accuracy"], history["accuracy"], atol=1e-6)
    np.testing.assert_allclose(ours["val_accuracy"], history["val_accuracy"], atol=1e-6)
    assert ours["learning_rate"] == history["learning_rate"]  # both float32 values
    assert history["loss"][-1] < history["loss"][0]
    return ours


KERAS_OPTIMIZERS = {
    "sgd momentum": (
        lambda k: k.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        {"learning_rate": 0.05, "momentum": 0.9},
    ),
    "sgd nesterov": (
        lambda k: k.optimizers.SGD(learning_rate=0.03, momentum=0.8, nesterov=True),
        {"learning_rate": 0.03, "momentum": 0.8, "nesterov": True},
    ),
    # Keras accepts Nesterov without momentum (plain SGD); torch.optim refuses it.
    "sgd nesterov without momentum": (
        lambda k: k.optimizers.SGD(learning_rate=0.05, momentum=0.0, nesterov=True),
        {"learning_rate": 0.05, "nesterov": True},
    ),
    "rmsprop": (
        lambda k: k.optimizers.RMSprop(learning_rate=0.003, momentum=0.3),
        {"optimizer": "rmsprop", "learning_rate": 0.003, "momentum": 0.3},
    ),
    "adagrad": (
        lambda k: k.optimizers.Adagrad(learning_rate=0.1),
        {"optimizer": "adagrad", "learning_rate": 0.1},
    ),
    "adam": (
        lambda k: k.optimizers.Adam(learning_rate=0.01, beta_1=0.85),
        {"optimizer": "adam", "learning_rate": 0.01, "beta_1": 0.85},
    ),
}


@pytest.mark.usefixtures("formulation")
@pytest.mark.parametrize("name", list(KERAS_OPTIMIZERS))
def test_keras_semantics_equal_keras_fit(keras_run, name):
    make, kwargs = KERAS_OPTIMIZERS[name]
    assert_replica_matches_keras(keras_run, 3, 60, make(keras_run.keras), **kwargs)


@pytest.mark.usefixtures("formulation")
def test_keras_inverse_time_decay_schedule(keras_run):
    keras = keras_run.keras
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        0.2, decay_steps=1, decay_rate=0.003
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    ours = assert_replica_matches_keras(
        keras_run, 5, 40, optimizer, learning_rate=0.2, momentum=0.9, decay=0.003
    )
    assert ours["learning_rate"][-1] < 0.2 / 2


@pytest.mark.usefixtures("formulation")
def test_keras_schedule_object_as_rate_schedule(keras_run):
    # A Keras schedule object is a function of the update count: given as
    # rate_schedule, its own float32 arithmetic makes the replica Keras's fit.
    keras = keras_run.keras
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=400, warmup_target=0.3, warmup_steps=160
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.5)
    ours = assert_replica_matches_keras(
        keras_run,
        4,
        40,
        optimizer,
        learning_rate=0.3,
        momentum=0.5,
        rate_schedule=lambda t: np.array([float(schedule(int(u))) for u in t]),
    )
    assert ours["learning_rate"][9] == pytest.approx(0.3, rel=1e-6)  # warmed up
    assert ours["learning_rate"][-1] < 0.3 * 0.05  # and decayed


@pytest.mark.usefixtures("formulation")
def test_keras_step_schedule_with_momentum(keras_run):
    keras = keras_run.keras
    callback = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.1 * 0.3 ** (epoch // 15)
    )
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    ours = assert_replica_matches_keras(
        keras_run,
        6,
        50,
        optimizer,
        [callback],
        learning_rate=0.1,
        momentum=0.9,
        step_every=15,
        step_factor=0.3,
    )
    assert len(set(ours["learning_rate"])) == 4


@pytest.mark.usefixtures("formulation")
def test_keras_reduce_lr_on_plateau(keras_run):
    keras = keras_run.keras
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss",
        factor=0.5,
        patience=2,
        min_delta=1e-3,
        cooldown=2,
        min_lr=0.01,
    )
    optimizer = keras.optimizers.SGD(learning_rate=0.3, momentum=0.9)
    ours = assert_replica_matches_keras(
        keras_run,
        2,
        60,
        optimizer,
        [callback],
        learning_rate=0.3,
        momentum=0.9,
        plateau=True,
        plateau_factor=0.5,
        plateau_patience=2,
        plateau_min_delta=1e-3,
        plateau_cooldown=2,
        plateau_min_lr=0.01,
    )
    assert len(set(ours["learning_rate"])) >= 3


# --------------------------------------------------------------------------------------
# The semantics switch does something
# --------------------------------------------------------------------------------------


def weights_gap(a, b):
    return max_gap(a.weights, b.weights)


@pytest.mark.usefixtures("formulation")
def test_momentum_semantics_agree_at_constant_rate_and_differ_after_a_change():
    # Rates and momenta exact in float32, so that Keras's rounding plays no part.
    common = {"learning_rate": 0.0625, "momentum": 0.875, "seeds": [1], "epochs": 40}
    constant = [engine(semantics=s, **common) for s in ("keras", "torch")]
    assert weights_gap(*constant) < 1e-12
    stepped = [
        engine(semantics=s, step_every=10, step_factor=0.25, **common)
        for s in ("keras", "torch")
    ]
    assert weights_gap(*stepped) > 1e-3
    for s in stepped:  # the same rates were used: only the momentum rule differs
        assert (
            s.frame["learning_rate"].tolist()
            == stepped[0].frame["learning_rate"].tolist()
        )


@pytest.mark.usefixtures("formulation")
def test_rmsprop_semantics_differ_even_with_the_same_hyperparameters():
    common = {
        "optimizer": "rmsprop",
        "learning_rate": 0.0078125,
        "rho": 0.875,
        "epsilon": 1e-7,
    }
    runs = [
        engine(semantics=s, seeds=[2], epochs=40, **common) for s in ("keras", "torch")
    ]
    # epsilon inside (Keras) or outside (PyTorch) the square root
    assert weights_gap(*runs) > 1e-6


# --------------------------------------------------------------------------------------
# The compiled kernel: agreement with the batched formulation, ties, build and fallback
# --------------------------------------------------------------------------------------


def both_formulations(monkeypatch, **kwargs):
    """The same call with the kernel and with the batched formulation."""
    if _replicas_kernel.load() is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(_replicas_kernel.SWITCH, switch)
        results.append(engine(**kwargs))
    return results


def random_weights(rng, R, H):
    """Keras-layout weights of R replicas with H hidden units (Glorot-like scale)."""
    shapes = [(R, 2, H), (R, H), (R, H, 3), (R, 3)]
    return [rng.normal(0, 0.6, shape) for shape in shapes]


@pytest.mark.parametrize(
    "optimizer, extra",
    [
        (
            "sgd",
            {
                "momentum": [0.0, 0.9, 0.8],
                "nesterov": [False, False, True],
                "step_every": 4,
            },
        ),
        (
            "rmsprop",
            {"momentum": [0.0, 0.5, 0.0], "plateau": True, "plateau_patience": 0},
        ),
        ("adagrad", {"step_every": 3}),
        ("adam", {"decay": 1e-3}),
    ],
)
@pytest.mark.parametrize("semantics", ["torch", "keras"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_equals_batched_formulation(
    monkeypatch, optimizer, extra, semantics, dtype
):
    # 3 settings x 5 seeds = 15 replicas: not a multiple of the lane count (idle
    # padding); batch 7 leaves blocks of fewer samples; 13 hidden units.
    rng = np.random.default_rng(3)
    R, H, epochs = 15, 13, 6
    kernel, batched = both_formulations(
        monkeypatch,
        optimizer=optimizer,
        learning_rate=[0.003, 0.01, 0.03],
        seeds=range(5),
        epochs=epochs,
        batch_size=7,
        semantics=semantics,
        dtype=dtype,
        initial_weights=random_weights(rng, R, H),
        **extra,
    )
    tolerance = 1e-12 if dtype == torch.float64 else 3e-5
    for key in METRICS:
        a, b = kernel.frame[key].to_numpy(), batched.frame[key].to_numpy()
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=key)
    assert max_gap(kernel.weights, batched.weights) < 10 * tolerance
    assert kernel.weights[0].dtype == batched.weights[0].dtype


def test_kernel_follows_given_orders_with_full_lane_groups(monkeypatch):
    # Exactly one lane group (no idle padding), orders given as an array; a calm rate
    # (at 0.05 these runs start chaotically and rounding grows to 1e-12).
    if _replicas_kernel.load() is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    lanes = _replicas_kernel.load().lanes[torch.float64]
    seeds, epochs = list(range(lanes)), 3
    orders = np.stack([data.epoch_permutations(500, epochs, 50 + s) for s in seeds])
    kernel, batched = both_formulations(
        monkeypatch,
        learning_rate=0.01,
        seeds=seeds,
        epochs=epochs,
        semantics="torch",
        orders=orders,
    )
    assert (
        max_gap([kernel.frame[k] for k in METRICS], [batched.frame[k] for k in METRICS])
        < 1e-12
    )
    assert max_gap(kernel.weights, batched.weights) < 1e-12
    default = engine(learning_rate=0.01, seeds=seeds, epochs=epochs, semantics="torch")
    assert max_gap(default.weights, kernel.weights) > 1e-6  # the orders mattered


@pytest.mark.usefixtures("formulation")
def test_accuracy_breaks_ties_like_argmax():
    # Dead hidden units (negative bias, zero kernel) and a rate too small to move the
    # output bias: every sample gets the logits (b0, b1, b2), ties included, forever.
    biases = np.array([[0.5, 0.5, 0.5], [0.2, 0.5, 0.5], [0.5, 0.2, 0.5]])
    H = 4
    weights = [
        np.zeros((3, 2, H)),
        np.full((3, H), -1.0),
        np.zeros((3, H, 3)),
        biases,
    ]
    result = engine(
        learning_rate=1e-20,
        seeds=[0, 1, 2],
        epochs=2,
        semantics="torch",
        initial_weights=weights,
    )
    split = data.make_blobs_split()
    for k, predicted in enumerate([0, 1, 0]):  # the first maximal logit
        history = result.history(0, k)
        assert history["accuracy"][-1] == np.mean(split.y_train == predicted)
        assert history["val_accuracy"][-1] == np.mean(split.y_test == predicted)
    assert result.history(0, 0)["loss"][0] == pytest.approx(math.log(3), rel=1e-15)


@pytest.mark.parametrize("switch, kind", [("1", "LaneNets"), ("0", "BatchedNets")])
def test_the_switch_selects_the_formulation(monkeypatch, switch, kind):
    if switch == "1" and _replicas_kernel.load() is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    monkeypatch.setenv(_replicas_kernel.SWITCH, switch)
    weights = replicas.default_weights([0], dtype=torch.float64)
    config = types.SimpleNamespace(batch_size=32, dtype=torch.float64)  # all it reads
    nets = _replicas_engine.make_nets(config, SPLIT64, weights)
    assert type(nets).__name__ == kind


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """An empty kernel cache under ``tmp_path``; the kernel is reloaded afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _replicas_kernel.load.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    _replicas_kernel.load.cache_clear()


def test_the_kernel_is_built_once_into_the_cache(fresh_kernel):
    if shutil.which(os.environ.get("CXX") or "g++") is None:
        pytest.skip("no C++ compiler")
    assert _replicas_kernel.load() is not None, _replicas_kernel.status
    built = list((fresh_kernel / "lrtools").glob("replicas-kernel-*.so"))
    assert len(built) == 1
    _replicas_kernel.load.cache_clear()
    stamp = built[0].stat().st_mtime_ns
    assert _replicas_kernel.load() is not None  # found, not rebuilt
    assert built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_the_engine_falls_back_to_pytorch(fresh_kernel, monkeypatch):
    monkeypatch.setenv("CXX", str(fresh_kernel / "no-such-compiler"))
    assert _replicas_kernel.load() is None
    assert "no C++ compiler" in _replicas_kernel.status
    assert not _replicas_kernel.enabled()
    result = engine(learning_rate=0.01, seeds=[0], epochs=2, semantics="torch")
    assert np.isfinite(result.frame["val_loss"]).all()
