"""lrtools._replicas_kernel: the compiled kernel's build, vector width and portability.

The engine's exactness against the frameworks is tested in ``test_replicas.py`` (on the
kernel and on the batched PyTorch path); here, that the kernel compiles cleanly and
computes the same numbers whatever vector width the CPU it is built for offers: the
width is a speed matter only, never a results one.
"""

import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

from lrtools import _replicas_kernel, replicas

COMPILER = shutil.which(os.environ.get("CXX") or "g++")
needs_compiler = pytest.mark.skipif(COMPILER is None, reason="no C++ compiler")


def cpu_flags() -> set[str]:
    return set(" ".join(_replicas_kernel._cpu_info().split("\n")).split())


def flags_for(march: str) -> tuple[str, ...]:
    """The kernel's build flags with ``-march=native`` replaced by ``march``."""
    return tuple(
        f"-march={march}" if f == "-march=native" else f for f in _replicas_kernel.FLAGS
    )


# (target, float32 lanes, CPU flag the host needs to run it)
TARGETS = [
    ("x86-64", 4, "sse2"),
    ("haswell", 8, "avx2"),
    ("skylake-avx512", 16, "avx512f"),
]


def runnable(target):
    march, _, needed = target
    if COMPILER is None:
        pytest.skip("no C++ compiler")
    if needed not in cpu_flags():
        pytest.skip(f"this CPU cannot run code built for {march}")


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] for t in TARGETS])
def test_the_vector_width_is_the_targets_native_width(target):
    # A fixed 64-byte width made an AVX2 build about ten times slower (GCC splits a
    # vector wider than the hardware's and lowers parts of it to scalar code).
    runnable(target)
    march, lanes, _ = target
    kernel = _replicas_kernel.build(COMPILER, flags_for(march))
    assert kernel.lanes == {torch.float32: lanes, torch.float64: lanes // 2}


def test_the_native_build_uses_the_widest_width_of_this_cpu():
    kernel = _replicas_kernel.load()
    if kernel is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    flags = cpu_flags()
    expected = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    assert kernel.lanes[torch.float32] == expected


@pytest.mark.parametrize("target", TARGETS[:2], ids=[t[0] for t in TARGETS[:2]])
def test_every_width_trains_the_same_replicas(target, monkeypatch):
    runnable(target)
    native = _replicas_kernel.load()
    if native is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    other = _replicas_kernel.build(COMPILER, flags_for(target[0]))
    # 19 replicas: whole lane groups plus idle padding at every width.
    settings = dict(
        optimizer="sgd",
        learning_rate=[0.01, 0.003],
        momentum=[0.9, 0.5],
        seeds=range(9) if target[1] == 4 else range(10),
        epochs=3,
        semantics="keras",
        dtype=torch.float64,
        progress=False,
    )
    monkeypatch.setenv(_replicas_kernel.SWITCH, "1")
    results = []
    for kernel in (native, other):
        monkeypatch.setattr(_replicas_kernel, "load", lambda k=kernel: k)
        results.append(replicas.train(**settings))
    a, b = results
    if target[0] == "x86-64":
        # No FMA there: products round separately, a float64 rounding difference.
        for key in replicas.METRICS:
            np.testing.assert_allclose(
                a.frame[key], b.frame[key], rtol=1e-10, atol=1e-10, err_msg=key
            )
        for x, y in zip(a.weights, b.weights, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10)
    else:
        # With FMA each lane runs the same instructions at any width: the same bits,
        # so the book's numbers do not depend on AVX2 or AVX-512.
        for key in replicas.METRICS:
            assert a.frame[key].equals(b.frame[key]), key
        for x, y in zip(a.weights, b.weights, strict=True):
            assert np.array_equal(x, y)


@needs_compiler
def test_the_source_compiles_without_warnings(tmp_path):
    flags = [f for f in _replicas_kernel.FLAGS if f != "-march=native"]
    for march in ("native", "x86-64"):
        completed = subprocess.run(
            [
                COMPILER,
                *flags,
                f"-march={march}",
                "-Werror",
                "-o",
                str(tmp_path / "k.so"),
            ]
            + [str(_replicas_kernel.SOURCE_PATH)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
    assert "-Wall" in flags and "-Wextra" in flags


def test_describe_cpu_names_a_model_and_an_instruction_set():
    text = _replicas_kernel.describe_cpu()
    model, isa = text.rsplit(" (", 1)
    assert model and isa.endswith(")")
    if "avx2" in cpu_flags():
        assert isa in ("AVX2)", "AVX-512)")


@pytest.mark.parametrize(
    "settings",
    [
        dict(optimizer="adam", learning_rate=[0.01, 0.001]),
        dict(optimizer="sgd", learning_rate=[0.05, 0.01], momentum=0.9, nesterov=True),
        # 30.0 diverges: a diverged replica is frozen between epochs, across shards.
        dict(optimizer="sgd", learning_rate=[30.0, 0.01], plateau=True),
    ],
    ids=["adam", "nesterov", "divergence-plateau"],
)
def test_threads_split_the_lane_groups_without_changing_a_bit(settings, monkeypatch):
    # With several PyTorch threads the engine trains shards of lane groups in parallel;
    # the replicas are independent, so the results must be the very same bits.
    if _replicas_kernel.load() is None:
        pytest.skip(f"no replicas kernel: {_replicas_kernel.status}")
    monkeypatch.setenv(_replicas_kernel.SWITCH, "1")
    lanes = _replicas_kernel.load().lanes[torch.float32]
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            results.append(
                replicas.train(
                    **settings,
                    seeds=range(2 * lanes + 3),  # shards of unequal size
                    epochs=4,
                    semantics="keras",
                    progress=False,
                )
            )
    finally:
        torch.set_num_threads(previous)
    one, many = results
    pd.testing.assert_frame_equal(one.frame, many.frame)
    for x, y in zip(one.weights, many.weights, strict=True):
        np.testing.assert_array_equal(x, y)
