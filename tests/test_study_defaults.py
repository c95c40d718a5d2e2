"""lrtools.study: the study's Keras 2 optimizers, run exactly by lrtools.replicas.

The chain checked here: (1) a NumPy transcription of the Keras 2 update formulas equals
``torch.optim`` (RMSprop, Adagrad) and Keras 3 (Adam) stepped with the constants of
``study.KERAS2_DEFAULTS`` on the same gradients; (2) ``replicas.train`` with those
arguments equals ``torch.optim`` over whole training runs; (3) if the Keras 2 wheels are
at hand (``KERAS2_WHEELS``: a directory holding ``Keras-2.2.4-*.whl`` and
``Keras-2.3.1-*.whl``, e.g. from ``pip download keras==2.2.4 keras==2.3.1 --no-deps``),
their source still says what the transcription assumes. Without them (3) is skipped.
"""

import ast

import numpy as np
import pytest
import torch
from _keras2_wheels import keras2_source

from lrtools import data, replicas, study
from lrtools import torch_tools as tt

SPLIT64 = data.make_blobs_split(dtype="float64")
EXACT = 1e-9


# --------------------------------------------------------------------------------------
# (1) The Keras 2 formulas, transcribed from keras/optimizers.py (2.2.4 and 2.3.1)
# --------------------------------------------------------------------------------------


def keras2_steps(
    name, params, grads, lr, eps=study.KERAS2_EPSILON, powers=(0.9, 0.999)
):
    """Parameters after each step of Keras 2's ``name`` on a fixed gradient sequence.

    ``powers``: Adam's betas as raised to the power t in the bias correction (Keras
    stores them in float32 variables).
    """
    p = params.copy()
    a = np.zeros_like(p)  # accumulators: K.zeros
    m, v = np.zeros_like(p), np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if name == "rmsprop":
            a = 0.9 * a + (1.0 - 0.9) * g**2
            p = p - lr * g / (np.sqrt(a) + eps)
        elif name == "adagrad":
            a = a + g**2
            p = p - lr * g / (np.sqrt(a) + eps)
        elif name == "adam":
            lr_t = lr * (np.sqrt(1.0 - powers[1] ** t) / (1.0 - powers[0] ** t))
            m = 0.9 * m + (1.0 - 0.9) * g
            v = 0.999 * v + (1.0 - 0.999) * g**2
            p = p - lr_t * m / (np.sqrt(v) + eps)
        out.append(p.copy())
    return np.array(out)


def gradient_sequence(seed, steps=50, size=6):
    rng = np.random.default_rng(seed)
    # Gradients over several orders of magnitude, small ones included: where epsilon's
    # place (inside or outside the square root) matters most.
    return rng.normal(size=(steps, size)) * 10.0 ** rng.uniform(-5, 0, size=(steps, 1))


def torch_steps(make_optimizer, params, grads):
    weight = torch.nn.Parameter(torch.tensor(params, dtype=torch.float64))
    optimizer = make_optimizer([weight])
    out = []
    for g in grads:
        weight.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        out.append(weight.detach().numpy().copy())
    return np.array(out)


def torch_optimizer(name, params):
    """torch.optim with the constants of study.KERAS2_DEFAULTS."""
    s = study.KERAS2_DEFAULTS[name]
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=s["learning_rate"], alpha=s["rho"], eps=s["epsilon"]
        )
    if name == "adagrad":
        return torch.optim.Adagrad(
            params,
            lr=s["learning_rate"],
            eps=s["epsilon"],
            initial_accumulator_value=s["initial_accumulator_value"],
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_torch_optim_with_the_mapped_constants_is_the_keras2_formula(name):
    s = study.KERAS2_DEFAULTS[name]
    assert s["semantics"] == "torch"
    params = np.random.default_rng(0).normal(size=6)
    grads = gradient_sequence(1)
    ours = keras2_steps(name, params, grads, s["learning_rate"])
    theirs = torch_steps(lambda p: torch_optimizer(name, p), params, grads)
    np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-15)
    # Not a vacuous comparison: the parameters moved by far more than the tolerance.
    assert np.abs(ours[-1] - params).min() > 1e-6


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_the_defaults_of_torch_and_keras3_are_not_keras2s(name):
    """Why the mapping must pass its constants: stock settings differ from Keras 2."""
    params = np.random.default_rng(0).normal(size=6)
    grads = gradient_sequence(2)
    lr = study.KERAS2_DEFAULTS[name]["learning_rate"]
    keras2 = keras2_steps(name, params, grads, lr)
    make = torch.optim.RMSprop if name == "rmsprop" else torch.optim.Adagrad
    stock = torch_steps(lambda p: make(p, lr=lr), params, grads)
    assert np.abs(stock - keras2).max() > 1e-6


def test_keras3_adam_is_the_keras2_formula():
    kt = pytest.importorskip("lrtools.keras_tools")
    keras = kt.keras
    s = study.KERAS2_DEFAULTS["adam"]
    assert s["semantics"] == "keras"
    params = np.random.default_rng(0).normal(size=6)
    grads = gradient_sequence(3)
    variable = keras.Variable(params, dtype="float64")
    optimizer = keras.optimizers.Adam(
        learning_rate=s["learning_rate"],
        beta_1=s["beta_1"],
        beta_2=s["beta_2"],
        epsilon=s["epsilon"],
    )
    out = []
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        out.append(np.array(variable.numpy()))
    # Keras keeps the rate and the betas in float32 variables, as Keras 2 did
    # (K.variable(lr), K.variable(beta_1), ...); Keras 3 uses the float32 betas in the
    # bias correction.
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    ours = keras2_steps(
        "adam",
        params,
        grads,
        f32(s["learning_rate"]),
        powers=(f32(s["beta_1"]), f32(s["beta_2"])),
    )
    np.testing.assert_allclose(np.array(out), ours, rtol=1e-12, atol=1e-15)
    assert np.abs(ours[-1] - params).min() > 1e-6


# --------------------------------------------------------------------------------------
# (2) Whole runs: replicas.train with the mapping equals torch.optim
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_replicas_with_the_keras2_defaults_equal_torch_optim(name):
    seed, epochs = 5, 30
    settings = study.keras2_optimizer(name)
    result = replicas.train(
        seeds=[seed], epochs=epochs, dtype=torch.float64, progress=False, **settings
    )
    model = tt.build_mlp(seed=seed, dtype=torch.float64)
    optimizer = torch_optimizer(name, model.parameters())
    history = tt.fit(model, optimizer, SPLIT64, epochs=epochs, seed=seed)
    ours = result.history(0, seed)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ours[key], history[key], rtol=0, atol=EXACT)
    for a, b in zip(result.final_weights(0, seed), tt.get_weights(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=EXACT)
    assert history["loss"][-1] < history["loss"][0]


def test_keras2_and_keras3_defaults_differ_where_documented():
    k2, k3 = study.KERAS2_DEFAULTS, study.KERAS3_DEFAULTS
    assert k2["adagrad"]["learning_rate"] == 10 * k3["adagrad"]["learning_rate"]
    assert k2["adagrad"]["initial_accumulator_value"] == 0.0
    assert replicas.DEFAULTS["keras"]["adagrad"]["initial_accumulator_value"] == 0.1
    for name in ("sgd", "rmsprop", "adam"):
        assert k2[name]["learning_rate"] == k3[name]["learning_rate"]


@pytest.mark.parametrize("bad", ["Adam", "adadelta", None])
def test_bad_optimizer_name_raises(bad):
    with pytest.raises(ValueError, match="name must be one of"):
        study.keras2_optimizer(bad)
    with pytest.raises(ValueError, match="name must be one of"):
        study.keras3_optimizer(bad)


# --------------------------------------------------------------------------------------
# (3) The Keras 2 source itself, when its wheels are at hand
# --------------------------------------------------------------------------------------


def class_node(tree, name):
    return next(
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name
    )


def init_defaults(cls):
    init = next(
        n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    args = init.args.args[-len(init.args.defaults) :]
    return {
        a.arg: ast.literal_eval(d)
        for a, d in zip(args, init.args.defaults, strict=True)
    }


def assignments(cls):
    """``target source -> [value sources]`` of every simple assignment in the class."""
    out = {}
    for n in ast.walk(cls):
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            out.setdefault(ast.unparse(n.targets[0]), []).append(ast.unparse(n.value))
    return out


@pytest.mark.parametrize("version", ["2.2.4", "2.3.1"])
def test_keras2_source_says_what_the_mapping_assumes(version):
    common = keras2_source(version, "keras/backend/common.py")
    epsilon = next(
        ast.literal_eval(n.value)
        for n in ast.walk(ast.parse(common))
        if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "_EPSILON"
    )
    assert epsilon == study.KERAS2_EPSILON
    tree = ast.parse(keras2_source(version, "keras/optimizers.py"))
    rate = "lr" if version == "2.2.4" else "learning_rate"

    for name, cls in [
        ("sgd", "SGD"),
        ("rmsprop", "RMSprop"),
        ("adagrad", "Adagrad"),
        ("adam", "Adam"),
    ]:
        node = class_node(tree, cls)
        defaults = init_defaults(node)
        assert defaults[rate] == study.KERAS2_DEFAULTS[name]["learning_rate"], name
        code = assignments(node)
        if name == "sgd":
            assert defaults["momentum"] == 0.0
            assert "self.momentum * m - lr * g" in code["v"]
        if name != "sgd":  # epsilon defaults to K.epsilon()
            assert "K.epsilon()" in code.get("epsilon", []) or code.get(
                "self.epsilon"
            ) == ["kwargs.pop('epsilon', K.epsilon())"]
        if name in ("rmsprop", "adagrad"):
            # Accumulators start at zero, epsilon is added outside the square root.
            assert all(v.startswith("[K.zeros(") for v in code["accumulators"])
            assert "p - lr * g / (K.sqrt(new_a) + self.epsilon)" in code["new_p"]
        if name == "rmsprop":
            assert defaults["rho"] == study.KERAS2_DEFAULTS["rmsprop"]["rho"]
            assert code["new_a"] == ["self.rho * a + (1.0 - self.rho) * K.square(g)"]
        if name == "adagrad":
            assert code["new_a"] == ["a + K.square(g)"]
        if name == "adam":
            assert (defaults["beta_1"], defaults["beta_2"]) == (0.9, 0.999)
            assert code["lr_t"] == [
                "lr * (K.sqrt(1.0 - K.pow(self.beta_2, t)) / "
                "(1.0 - K.pow(self.beta_1, t)))"
            ]
            # amsgrad=False (the default) takes the second branch.
            assert code["p_t"][-1] == "p - lr_t * m_t / (K.sqrt(v_t) + self.epsilon)"
            assert code["m_t"] == ["self.beta_1 * m + (1.0 - self.beta_1) * g"]
