"""One call to seed every random number generator a chapter uses."""

from __future__ import annotations

import random
import sys

import numpy as np

from lrtools import _checks


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG, and PyTorch and Keras if imported.

    Frameworks that are not imported yet are left alone, so that calling this
    never pays for importing TensorFlow. lrtools' own model builders and
    training loops take explicit seeds and do not depend on this global state;
    use it for code of your own.

    Parameters
    ----------
    seed : int
        Non-negative integer.
    """
    seed = _checks.non_negative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global RNG user code reaches)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "keras" in sys.modules:
        # Also seeds Python, NumPy and TensorFlow's global generator.
        sys.modules["keras"].utils.set_random_seed(seed)
