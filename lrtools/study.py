"""The optimizers of the original study, as :func:`lrtools.replicas.train` arguments.

The study compiles its model with ``optimizer="sgd"``, ``"rmsprop"``, ``"adagrad"`` and
``"adam"`` under standalone Keras 2 (2.2.4, updated for 2.3 in October 2019), so each
optimizer runs with Keras 2's defaults. Read in ``keras/optimizers.py`` of the Keras
2.2.4 and 2.3.1 wheels (the formulas are identical in both; line numbers of 2.2.4, then
2.3.1), with ``K.epsilon()`` = 1e-7 (``keras/backend/common.py``, line 9 of both):

=========  =====  ===============================================  ====================
optimizer  rate   update                                           lines
=========  =====  ===============================================  ====================
SGD        0.01   ``v = m*v - lr*g; p += v`` (momentum 0)          171, 196-202 /
                                                                   177, 205-211
RMSprop    0.001  ``a = rho*a + (1-rho)*g**2`` from ``a = 0``,      241, 250, 257,
                  ``p -= lr*g / (sqrt(a) + eps)``, rho 0.9         268-270 / 245-247,
                                                                   260, 274-276
Adagrad    0.01   ``a = a + g**2`` from ``a = 0`` (``K.zeros``),    309, 316, 324,
                  ``p -= lr*g / (sqrt(a) + eps)``                  334-336 / 322-324,
                                                                   337, 348-350
Adam       0.001  ``lr_t = lr*sqrt(1-b2**t)/(1-b1**t)``,           458, 468, 484-503 /
                  ``p -= lr_t*m / (sqrt(v) + eps)``, b1 0.9,       487-490, 513-543
                  b2 0.999
=========  =====  ===============================================  ====================

Each of these formulas is one that :func:`lrtools.replicas.train` already runs exactly:
RMSprop and Adagrad are ``torch.optim``'s (``alpha`` = rho, ``eps`` outside the square
root, ``initial_accumulator_value=0``), Adam is Keras 3's ("epsilon hat": epsilon added
to ``sqrt(v)`` after the step size took the bias corrections), SGD is either. What
remains different is rounding: Keras 2 keeps the rate in a float32 variable and orders
some products differently, a float32 rounding of the last bit.

``tests/test_study_defaults.py`` checks the mapping: the replicas runs equal
``torch.optim`` (and Keras 3's Adam) with these constants, both equal a NumPy
transcription of the Keras 2 formulas, and, when the Keras 2 wheels are at hand, the
constants and formulas are read back from their source.
"""

from __future__ import annotations

from lrtools import _checks

#: ``K.epsilon()`` of Keras 2 (``keras/backend/common.py``: ``_EPSILON = 1e-7``).
KERAS2_EPSILON = 1e-7

#: The study's Keras 2 defaults, per optimizer name: the ``replicas.train`` keyword
#: arguments that run the Keras 2 formula exactly (``semantics`` included).
KERAS2_DEFAULTS = {
    "sgd": {"semantics": "keras", "learning_rate": 0.01, "momentum": 0.0},
    "rmsprop": {
        "semantics": "torch",
        "learning_rate": 0.001,
        "rho": 0.9,
        "epsilon": KERAS2_EPSILON,
        "momentum": 0.0,
    },
    "adagrad": {
        "semantics": "torch",
        "learning_rate": 0.01,
        "epsilon": KERAS2_EPSILON,
        "initial_accumulator_value": 0.0,
    },
    "adam": {
        "semantics": "keras",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": KERAS2_EPSILON,
    },
}

#: Keras 3's defaults (``keras.optimizers.*()`` with no argument), which the study's
#: ``optimizer="adagrad"`` etc. get when run today. Adagrad: rate 0.001 and accumulator
#: 0.1 (introduced by tf.keras's optimizers, TensorFlow 2); RMSprop: epsilon inside the
#: square root.
KERAS3_DEFAULTS = {
    "sgd": {"semantics": "keras", "learning_rate": 0.01},
    "rmsprop": {"semantics": "keras", "learning_rate": 0.001},
    "adagrad": {"semantics": "keras", "learning_rate": 0.001},
    "adam": {"semantics": "keras", "learning_rate": 0.001},
}


def keras2_optimizer(name: str) -> dict:
    """``replicas.train`` arguments running ``name`` as the study's Keras 2 did.

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adagrad", "adam"}

    Returns
    -------
    dict
        ``optimizer``, ``semantics``, ``learning_rate`` and the optimizer's constants;
        add ``seeds`` (and ``epochs`` etc.) and pass to :func:`lrtools.replicas.train`.
    """
    name = _checks.choice("name", name, tuple(KERAS2_DEFAULTS))
    return {"optimizer": name, **KERAS2_DEFAULTS[name]}


def keras3_optimizer(name: str) -> dict:
    """``replicas.train`` arguments running ``name`` with Keras 3's defaults.

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adagrad", "adam"}
    """
    name = _checks.choice("name", name, tuple(KERAS3_DEFAULTS))
    return {"optimizer": name, **KERAS3_DEFAULTS[name]}
