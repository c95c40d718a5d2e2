"""The compiled kernel of :mod:`lrtools._replicas_engine`, built at first use.

The source is ``_replicas_kernel.cpp`` beside this module (read its header comment for
the design). The batched PyTorch formulation of the replicas streams (R, batch, hidden)
tensors through memory several times per update; the kernel instead keeps one replica
per SIMD lane, so a lane group's weights, gradients and activations stay in the L1/L2
cache for a whole batch. Each lane computes exactly its replica's scalar formulas;
only the order of summation differs from the batched matmuls (float rounding).

The vector width follows the CPU the kernel is compiled for (``-march=native``): 64
bytes with AVX-512 (16 float32 lanes), 32 with AVX/AVX2 (8 lanes), 16 otherwise (SSE2,
ARM NEON; 4 lanes). A vector wider than the hardware's is not an option: GCC splits it
and lowers some operations to scalar code, which made an AVX2 machine ten times slower
than an AVX-512 one when the width was fixed at 64 bytes. The width changes the speed,
not the numbers: every lane runs the same instructions, so builds with FMA (AVX2 and
AVX-512 alike) give the same bits; only a build without FMA rounds differently.

The optimizer update stays in PyTorch (every optimizer and schedule of the engine,
unchanged), on tensors in the kernel's lane layout. Each call covers a range of lane
groups, so the engine can train shards of groups on several threads. The buffers
passed in must be aligned to the vector width (PyTorch's allocations are).

A JIT alternative for machines without g++ (numba, ``benchmarks/numba_kernel.py``) was
measured 1.3 to 2.6 times slower, with an 11 s first compile and 200 MB of install;
the batched PyTorch fallback stays.

Build: the source is compiled with the C++ compiler ``$CXX`` (default ``g++``), with
warnings on, into ``$XDG_CACHE_HOME/lrtools`` (default ``~/.cache/lrtools``), under a
name hashed from the source, the flags, the compiler's version and the CPU, in about
two seconds and once per machine. Nothing is downloaded. When there is no compiler or
the build fails, :func:`load` returns None and the engine uses its pure-PyTorch path
(silently; :data:`status` says why). Setting the environment variable
``LRTOOLS_REPLICAS_KERNEL=0`` forces the pure-PyTorch path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

#: Environment variable: "0" disables the kernel (the engine then uses batched PyTorch).
SWITCH = "LRTOOLS_REPLICAS_KERNEL"
FLAGS = (
    "-O3",
    "-march=native",
    "-ffp-contract=fast",
    "-std=c++17",
    "-Wall",
    "-Wextra",
    # The double-precision metric sums are twice the native width in float32; they
    # never cross a function boundary, so the ABI note GCC prints does not apply.
    "-Wno-psabi",
    "-shared",
    "-fPIC",
)
#: Why the kernel is not in use, or "" (set by :func:`load`).
status = ""

#: The kernel's C++ source (``_replicas_kernel.cpp``).
SOURCE_PATH = Path(__file__).with_suffix(".cpp")


def enabled() -> bool:
    """Whether the engine may use the kernel (the environment switch is read each
    call, so tests can flip it)."""
    return os.environ.get(SWITCH, "1") != "0" and load() is not None


@functools.cache
def load() -> Kernel | None:
    """The compiled kernel, built or found in the cache; None if it cannot be built."""
    global status
    status = ""
    compiler = shutil.which(os.environ.get("CXX") or "g++")
    if compiler is None:
        status = "no C++ compiler (set CXX or install g++)"
        return None
    try:
        return build(compiler)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        # RuntimeError: no home directory for the default cache.
        details = getattr(error, "stderr", None) or b""
        status = f"kernel build failed: {error} {details.decode(errors='replace')}"
        return None


def build(compiler: str, flags: tuple[str, ...] | None = None) -> Kernel:
    """The kernel compiled by ``compiler`` with ``flags`` (default :data:`FLAGS`),
    from the cache when it is there. Raises on failure (:func:`load` does not)."""
    flags = FLAGS if flags is None else tuple(flags)
    path = _library_path(compiler, flags)
    if not path.exists():
        _compile(compiler, flags, path)
    return Kernel(ctypes.CDLL(str(path)))


def _library_path(compiler: str, flags: tuple[str, ...]) -> Path:
    """Cache path keyed by everything that shapes the binary (``-march=native``
    ties it to this CPU)."""
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    parts = [SOURCE_PATH.read_text(), " ".join(flags), version, _cpu_info()]
    digest = hashlib.sha256("\n".join([*parts, platform.machine()]).encode())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lrtools" / f"replicas-kernel-{digest.hexdigest()[:16]}.so"


def _cpu_info() -> str:
    """The CPU's model and feature flags (first core), "" where unknown."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(dict.fromkeys(x for x in lines if x.startswith(wanted)))


def describe_cpu() -> str:
    """The CPU's model and widest vector instruction set, e.g. ``"AMD EPYC 7B13
    (AVX2)"``, for benchmark reports."""
    info = _cpu_info()
    model = next(
        (x.split(":", 1)[1].strip() for x in info.splitlines() if ":" in x),
        platform.processor() or platform.machine(),
    )
    flags = set(" ".join(x for x in info.splitlines() if "flags" in x).split())
    names = [
        ("avx512f", "AVX-512"),
        ("avx2", "AVX2"),
        ("avx", "AVX"),
        ("sse2", "SSE2"),
        ("asimd", "NEON"),
    ]
    isa = next((name for flag, name in names if flag in flags), platform.machine())
    return f"{model} ({isa})"


def _compile(compiler: str, flags: tuple[str, ...], path: Path) -> None:
    """Compile into a temporary file next to ``path``, then rename (atomic, so
    concurrent processes never load a half-written library)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        target = Path(tmp) / path.name
        subprocess.run(
            [compiler, *flags, "-o", str(target), str(SOURCE_PATH)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        os.replace(target, path)


class Kernel:
    """Typed entry points of the compiled library."""

    def __init__(self, lib: ctypes.CDLL):
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        self.lanes = {torch.float32: lib.lanes_f32(), torch.float64: lib.lanes_f64()}
        self._train = {
            torch.float32: lib.train_batch_f32,
            torch.float64: lib.train_batch_f64,
        }
        self._evaluate = {
            torch.float32: lib.evaluate_f32,
            torch.float64: lib.evaluate_f64,
        }
        self._gather = {
            torch.float32: lib.gather_epoch_f32,
            torch.float64: lib.gather_epoch_f64,
        }
        for f in self._gather.values():
            f.argtypes = [i64, i64, *[ptr] * 6]
            f.restype = None
        for f in self._train.values():
            f.argtypes = [i64, i64, i64, *[ptr] * 6, i64, ptr, ptr]
            f.restype = None
        for f in self._evaluate.values():
            f.argtypes = [i64, i64, i64, *[ptr] * 6]
            f.restype = None

    def train_batch(self, dtype, *args) -> None:
        """Gradients of one batch (``train_batch`` in the C++ source)."""
        self._train[dtype](*args)

    def gather_epoch(self, dtype, *args) -> None:
        """One epoch's samples in lane layout (``gather_epoch`` in the C++ source)."""
        self._gather[dtype](*args)

    def evaluate(self, dtype, *args) -> None:
        """Summed loss and correct count on shared samples (``evaluate``)."""
        self._evaluate[dtype](*args)
