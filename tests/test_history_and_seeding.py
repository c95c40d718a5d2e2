import math
import subprocess
import sys

import numpy as np
import pytest

import lrtools
from lrtools.history import diverged_epoch, pad_history


def test_pad_history_fills_nan_and_orders_keys():
    padded = pad_history({"val_loss": [1.0], "loss": [2.0, math.nan], "extra": [3]}, 3)
    assert list(padded) == ["loss", "val_loss", "extra"]
    assert padded["loss"][0] == 2.0 and all(math.isnan(v) for v in padded["loss"][1:])
    assert len(padded["val_loss"]) == 3 and math.isnan(padded["val_loss"][2])


def test_diverged_epoch():
    assert diverged_epoch([1.0, 0.5]) is None
    assert diverged_epoch([1.0, math.inf, math.nan]) == 1


def test_seed_everything_makes_numpy_reproducible():
    lrtools.seed_everything(3)
    a = np.random.rand(3)  # noqa: NPY002
    lrtools.seed_everything(3)
    np.testing.assert_array_equal(a, np.random.rand(3))  # noqa: NPY002
    with pytest.raises(ValueError, match="seed"):
        lrtools.seed_everything(-1)


def test_importing_lrtools_imports_no_framework():
    code = (
        "import sys, lrtools, lrtools.data\n"
        "print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
