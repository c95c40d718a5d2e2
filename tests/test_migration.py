"""The migration appendix: its claims about Keras 2, checked against Keras 2's source.

``chapters/migration.md`` runs every old habit on the installed Keras 3 and PyTorch
and asserts what happens. What it says of Keras 2 itself (what the old code used to
do) cannot run here, since Keras 2 is not installed; these tests read it from the
Keras 2.2.4 and 2.3.1 wheels (``KERAS2_WHEELS``, see ``_keras2_wheels.py``) and skip
without them. A last test checks that the appendix's table covers the APIs it
promises.
"""

import ast
import re
from pathlib import Path

import pytest
from _keras2_wheels import keras2_source

VERSIONS = ["2.2.4", "2.3.1"]
CHAPTER = Path(__file__).parent.parent / "chapters" / "migration.md"


def init_defaults(source: str, cls: str) -> dict:
    """Keyword defaults of ``cls.__init__`` in ``source``, as Python values."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.args[-len(item.args.defaults) :]
                    return {
                        a.arg: ast.literal_eval(d)
                        for a, d in zip(args, item.args.defaults, strict=True)
                    }
    raise LookupError(cls)


def method_source(source: str, cls: str, method: str) -> str:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return ast.unparse(item)
    raise LookupError(f"{cls}.{method}")


def callbacks_source(version: str) -> str:
    member = (
        "keras/callbacks.py" if version == "2.2.4" else "keras/callbacks/callbacks.py"
    )
    return keras2_source(version, member)


@pytest.mark.parametrize("version", VERSIONS)
def test_sgd_took_lr_and_decay_and_decayed_per_update(version):
    source = keras2_source(version, "keras/optimizers.py")
    init = method_source(source, "SGD", "__init__")
    if version == "2.2.4":
        assert {"lr": 0.01, "decay": 0.0}.items() <= init_defaults(
            source, "SGD"
        ).items()
    else:  # 2.3.1 renamed it, and still accepted lr= and decay= as keywords
        assert init_defaults(source, "SGD")["learning_rate"] == 0.01
        assert "kwargs.pop('lr', learning_rate)" in init
        assert "kwargs.pop('decay', 0.0)" in init
        assert "return self.learning_rate" in method_source(source, "Optimizer", "lr")
    updates = method_source(source, "SGD", "get_updates")
    assert "1.0 / (1.0 + self.decay * K.cast(self.iterations" in updates
    assert "self.iterations = K.variable(0" in init


@pytest.mark.parametrize("version", VERSIONS)
def test_adagrad_defaulted_to_001(version):
    defaults = init_defaults(keras2_source(version, "keras/optimizers.py"), "Adagrad")
    assert defaults.get("lr", defaults.get("learning_rate")) == 0.01


@pytest.mark.parametrize("version", VERSIONS)
def test_backend_had_get_value_and_set_value(version):
    source = keras2_source(version, "keras/backend/tensorflow_backend.py")
    assert "def get_value(x):" in source and "def set_value(x, value):" in source


@pytest.mark.parametrize("version", VERSIONS)
def test_plateau_epsilon_was_renamed_min_delta(version):
    init = method_source(callbacks_source(version), "ReduceLROnPlateau", "__init__")
    assert "if 'epsilon' in kwargs:" in init
    assert "min_delta = kwargs.pop('epsilon')" in init
    assert "is deprecated" in init  # Keras 2 warned; Keras 3 drops it silently


@pytest.mark.parametrize("version", VERSIONS)
def test_lr_callbacks_logged_the_rate_as_lr(version):
    source = callbacks_source(version)
    for cls in ("ReduceLROnPlateau", "LearningRateScheduler"):
        end = method_source(source, cls, "on_epoch_end")
        assert "logs['lr'] = K.get_value(self.model.optimizer.lr)" in end


@pytest.mark.parametrize("version", VERSIONS)
def test_scheduler_took_epoch_and_lr_and_fell_back_to_epoch(version):
    begin = method_source(
        callbacks_source(version), "LearningRateScheduler", "on_epoch_begin"
    )
    assert "lr = self.schedule(epoch, lr)" in begin
    assert "except TypeError:" in begin and "lr = self.schedule(epoch)" in begin
    assert "should be float" in begin  # an int raised then too


@pytest.mark.parametrize("version", VERSIONS)
def test_fit_renamed_nb_epoch_and_fit_generator_existed(version):
    source = keras2_source(version, "keras/engine/training.py")
    fit = method_source(source, "Model", "fit")
    assert (
        "if 'nb_epoch' in kwargs:" in fit and "epochs = kwargs.pop('nb_epoch')" in fit
    )
    method_source(source, "Model", "fit_generator")


def test_accuracy_was_logged_as_acc_in_2_2_and_as_accuracy_from_2_3():
    old = keras2_source("2.2.4", "keras/engine/training.py")
    assert re.search(r"if metric in \('accuracy', 'acc'\):\s+suffix = 'acc'", old)
    new = keras2_source("2.3.1", "keras/engine/training_utils.py")
    name = [
        ast.unparse(n)
        for n in ast.walk(ast.parse(new))
        if isinstance(n, ast.FunctionDef) and n.name == "get_metric_name"
    ][0]
    assert "if isinstance(metric, six.string_types):\n        return metric" in name


# The promised rows: each API the appendix's table must cover appears as code in it.
PROMISED = [
    "SGD(lr=0.01)",
    "decay=1e-4",
    "K.get_value(model.optimizer.lr)",
    "K.set_value(model.optimizer.lr",
    "model.optimizer.lr = ",
    "fit_generator(",
    "nb_epoch=",
    "epsilon=1e-7",
    'history.history["lr"]',
    'history.history["learning_rate"]',
    "LearningRateScheduler(lambda epoch:",
    "keras.optimizers.schedules.",
    "scheduler.step()\\noptimizer.step()",
    'optimizer.param_groups[0]["lr"]',
    "get_last_lr()",
    "plateau.step()",
    "momentum=0.9",
    "model.optimizer.iterations",
    'optimizer="adagrad"',
    "keras.ops.mean",
    'model.save("model.h5")',
    'model.save("model.keras")',
    "momentum-frameworks",
    "(robustness.md)",  # the link to the chapter on intervals over seeds
]


@pytest.mark.parametrize("snippet", PROMISED)
def test_the_table_covers(snippet):
    assert snippet in CHAPTER.read_text(encoding="utf-8")
