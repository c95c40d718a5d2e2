"""Could numba replace or back up the replicas kernel? Speed, agreement, start-up.

``_numba_lanes.py`` is a numba version of ``lrtools/_replicas_kernel.cpp`` (its two
entry points ``train_batch`` and ``evaluate``, same memory layouts, float32 and float64,
one replica per SIMD lane). This script checks that both give the same gradients and
sums on identical random inputs, then times them on the engine's workload: 800
replicas (G = 800 / L lane groups), H = 50, 500 training samples in batches of 32
(16 ``train_batch`` calls = one epoch) and one ``evaluate`` on 500 shared samples per
epoch (the optimizer update, the same PyTorch code for both, is left out). CPU time
(``time.process_time``), best of ``--repeats`` rounds of ``--epochs`` epochs, the two
implementations interleaved in one process.

Each target is timed in its own child process (numba reads its target CPU from the
environment at import):

- ``native``: C++ ``-march=native``; numba for the host CPU as it comes. On AVX-512
  CPUs LLVM then prefers 256-bit vectors (its Intel server tuning), so the lane loops
  use ymm registers for 16-lane groups;
- ``native512``: the same, numba told to use 512-bit vectors
  (``NUMBA_CPU_FEATURES=<host>,-prefer-256-bit``); only where the CPU has AVX-512;
- ``avx2``: both built for Haswell (C++ ``-march=haswell``, numba
  ``NUMBA_CPU_NAME=haswell``), an estimate of an AVX2-only CPU on this one.

Each target twice: numba with ``fastmath={"contract"}`` (fused multiply-adds, as the
C++ kernel's ``-ffp-contract=fast``; bit-identical results) and with
``fastmath=False`` (results equal to rounding). Then, per target, numba's start-up in
fresh processes: the first calls with an empty cache (compilation) and again with that
cache filled, against the C++ build time; and the vector registers in numba's machine
code for the hot loops (zmm / ymm / xmm).

Run from the repository root (numba is not a project dependency: without it the script
says so and exits)::

    .venv/bin/python benchmarks/numba_kernel.py [--epochs 20] [--repeats 7]
        [--targets native,native512,avx2] [--fastmath contract,off] [--no-startup]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import positive_int

HERE = Path(__file__).resolve().parent
TARGETS = ("native", "native512", "avx2")
DTYPES = ("float32", "float64")
R, H, N, BATCH = 800, 50, 500, 32  # replicas, hidden units, samples, batch size


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=positive_int, default=20, help="epochs per round (20)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=7, help="rounds, best taken (7)"
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help="comma-separated: native, native512, avx2 (all)",
    )
    parser.add_argument(
        "--fastmath",
        default="contract,off",
        help="numba variants, comma-separated: contract (FMA, as C++), off (both)",
    )
    parser.add_argument("--no-startup", action="store_true", help="skip start-up")
    # Internal: run one target in this process and print one JSON line.
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--startup-child", choices=TARGETS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- targets --------------------------------------------------------------------------


def host_features() -> str:
    from llvmlite import binding

    return binding.get_host_cpu_features().flatten()


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def target_env(target: str, fastmath: str = "contract") -> dict[str, str]:
    """Environment of a child process timing ``target`` (numba's target CPU) with
    ``fastmath`` "contract" or "off" (a cache directory of its own: numba's cache
    index does not tell the two apart)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env["LANES_CONTRACT"] = "1" if fastmath == "contract" else "0"
    cache = os.environ.get("NUMBA_CACHE_DIR") or str(
        Path.home() / ".cache" / "lrtools" / "numba-bench"
    )
    env["NUMBA_CACHE_DIR"] = f"{cache}-{fastmath}"
    if target == "native512":
        env["NUMBA_CPU_FEATURES"] = host_features() + ",-prefer-256-bit"
    elif target == "avx2":
        env["NUMBA_CPU_NAME"] = "haswell"
        env["NUMBA_CPU_FEATURES"] = ""  # haswell's own features
    return env


def cxx_flags(target: str) -> tuple[str, ...]:
    from lrtools import _replicas_kernel

    march = "-march=haswell" if target == "avx2" else "-march=native"
    return tuple(march if f == "-march=native" else f for f in _replicas_kernel.FLAGS)


def load_cxx(target: str):
    """The C++ kernel for ``target`` (built or from lrtools' cache), or None."""
    from lrtools import _replicas_kernel

    compiler = shutil.which(os.environ.get("CXX") or "g++")
    if compiler is None:
        return None
    return _replicas_kernel.build(compiler, cxx_flags(target))


# -- one target in this process -------------------------------------------------------


def inputs(dtype: str, L: int, seed: int = 0):
    """Torch tensors (64-byte aligned, as the C++ kernel's aligned loads need) for
    R replicas in lane layout, Glorot-like weights."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    G = -(-R // L)

    def tensor(a):  # a copy: torch's allocator aligns to 64 bytes, numpy's may not
        return torch.tensor(a, dtype=getattr(torch, dtype))

    W1 = tensor(rng.normal(0, (2 / (2 + H)) ** 0.5, size=(G, 3, H, L)))
    W2 = tensor(rng.normal(0, (2 / (H + 3)) ** 0.5, size=(G, 3, H + 1, L)))
    x = tensor(rng.normal(size=(G, 2, N, L)))
    y = tensor(rng.integers(0, 3, size=(G, N, L)))
    x_test = tensor(rng.normal(size=(N, 2)))
    y_test = tensor(rng.integers(0, 3, size=N))
    return W1, W2, x, y, x_test, y_test


class Pair:
    """The same epoch through the C++ kernel and through numba, on shared inputs
    and separate outputs."""

    def __init__(self, kernel, nl, dtype: str):
        import torch

        self.kernel, self.nl = kernel, nl
        self.tdtype = getattr(torch, dtype)
        self.L = L = kernel.lanes[self.tdtype]
        self.G = -(-R // L)
        self.W1, self.W2, self.x, self.y, self.xt, self.yt = inputs(dtype, L)
        self.grads = {
            impl: (torch.empty_like(self.W1), torch.empty_like(self.W2))
            for impl in ("cxx", "numba")
        }
        self.sums = {
            impl: torch.zeros(4, self.G, L, dtype=torch.float64)
            for impl in ("cxx", "numba")
        }
        self.arrays = [t.numpy() for t in (self.W1, self.W2, self.x, self.y)]
        self.test = (self.xt.numpy(), self.yt.numpy())

    def zero_sums(self):
        for s in self.sums.values():
            s.zero_()

    def train_cxx(self, starts=None):
        G, L, item = self.G, self.L, self.W1.element_size()
        GW1, GW2 = self.grads["cxx"]
        sums = self.sums["cxx"]
        ptrs = [t.data_ptr() for t in (self.W1, self.W2, GW1, GW2)]
        x, y = self.x.data_ptr(), self.y.data_ptr()
        loss, correct = sums[0].data_ptr(), sums[1].data_ptr()
        for start in range(0, N, BATCH) if starts is None else starts:
            self.kernel.train_batch(
                self.tdtype,
                G,
                H,
                min(BATCH, N - start),
                *ptrs,
                x + start * L * item,
                y + start * L * item,
                N,
                loss,
                correct,
            )

    def train_numba(self, starts=None):
        W1, W2, x, y = self.arrays
        GW1, GW2 = (t.numpy() for t in self.grads["numba"])
        sums = self.sums["numba"].numpy()
        train = self.nl.train_batch
        for start in range(0, N, BATCH) if starts is None else starts:
            train(W1, W2, GW1, GW2, x, y, start, min(BATCH, N - start), *sums[:2])

    def evaluate_cxx(self):
        sums = self.sums["cxx"]
        self.kernel.evaluate(
            self.tdtype,
            self.G,
            H,
            N,
            self.W1.data_ptr(),
            self.W2.data_ptr(),
            self.xt.data_ptr(),
            self.yt.data_ptr(),
            sums[2].data_ptr(),
            sums[3].data_ptr(),
        )

    def evaluate_numba(self):
        sums = self.sums["numba"].numpy()
        self.nl.evaluate(*self.arrays[:2], *self.test, *sums[2:])

    def agreement(self) -> dict:
        """Largest differences, relative to the largest magnitude: the gradients of
        every batch of an epoch (compared after each call), the epoch's loss sums and
        the test loss sums; the number of replicas whose correct counts differ."""
        import torch

        worst = {"GW1": 0.0, "GW2": 0.0}
        self.zero_sums()
        for start in range(0, N, BATCH):
            self.train_cxx([start])
            self.train_numba([start])
            for name, a, b in zip(
                worst, self.grads["cxx"], self.grads["numba"], strict=True
            ):
                rel = ((a - b).abs().max() / a.abs().max()).item()
                worst[name] = max(worst[name], rel)
        self.evaluate_cxx()
        self.evaluate_numba()
        a, b = self.sums["cxx"], self.sums["numba"]
        for i, name in ((0, "train loss"), (2, "test loss")):
            worst[name] = ((a[i] - b[i]).abs().max() / a[i].abs().max()).item()
        for i, name in ((1, "train correct"), (3, "test correct")):
            worst[name + " (replicas differing)"] = int(torch.sum(a[i] != b[i]))
        return worst


def time_pair(pair: Pair, epochs: int, repeats: int) -> dict:
    """Best ms per epoch of training and of evaluation, per implementation."""
    jobs = {
        ("cxx", "train"): pair.train_cxx,
        ("numba", "train"): pair.train_numba,
        ("cxx", "evaluate"): pair.evaluate_cxx,
        ("numba", "evaluate"): pair.evaluate_numba,
    }
    for job in jobs.values():  # warm up
        job()
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeats):
        for key, job in jobs.items():  # interleaved: load hits both alike
            t0 = time.process_time()
            for _ in range(epochs):
                job()
            best[key] = min(best[key], (time.process_time() - t0) * 1e3 / epochs)
    out = {}
    for impl in ("cxx", "numba"):
        out[impl] = {part: round(best[impl, part], 3) for part in ("train", "evaluate")}
        out[impl]["epoch"] = round(sum(out[impl].values()), 3)
    return out


def run_target(target: str, epochs: int, repeats: int) -> dict:
    """Agreement and timings of one target (this process's numba target)."""
    from lrtools import _replicas_kernel

    t0 = time.perf_counter()
    import _numba_lanes as nl

    result = {
        "target": target,
        "cpu": _replicas_kernel.describe_cpu(),
        "numba_cpu": nl.config.CPU_NAME or nl.llvm.get_host_cpu_name(),
        "numba_lane_bytes": nl.LANE_BYTES,
        "import_s": round(time.perf_counter() - t0, 3),
    }
    kernel = load_cxx(target)
    if kernel is None:
        result["error"] = "no C++ compiler"
        return result
    for dtype in DTYPES:
        import torch

        L = kernel.lanes[getattr(torch, dtype)]
        if L != nl.lanes(dtype):
            result[dtype] = {"error": f"lanes differ: C++ {L}, numba {nl.lanes(dtype)}"}
            continue
        pair = Pair(kernel, nl, dtype)
        t0 = time.perf_counter()
        pair.train_numba([0])
        pair.evaluate_numba()
        first = time.perf_counter() - t0
        entry = {"lanes": L, "groups": pair.G, "numba_first_call_s": round(first, 3)}
        entry["agreement"] = pair.agreement()
        entry["ms_per_epoch"] = time_pair(pair, epochs, repeats)
        result[dtype] = entry
    return result


def vector_registers(dispatcher) -> dict:
    """Instructions naming zmm, ymm or xmm registers in each compiled signature's
    machine code (available after compiling in this process, not from the cache)."""
    out = {}
    for signature, asm in dispatcher.inspect_asm().items():
        lines = asm.splitlines()
        counts = {r: sum(f"%{r}" in x for x in lines) for r in ("zmm", "ymm", "xmm")}
        scalar = sum(bool(re.search(r"\tv\w+s[sd]\t", x)) for x in lines)
        counts["scalar float ops"] = scalar
        out[str(signature[0].dtype)] = counts
    return out


def startup_child(target: str) -> dict:
    """Import and first calls of both entry points, per dtype, in this process."""
    t0 = time.perf_counter()
    import _numba_lanes as nl

    out = {"import_s": round(time.perf_counter() - t0, 3)}
    for dtype in DTYPES:
        import numpy as np

        L = nl.lanes(dtype)
        G = 2

        def zeros(*shape, dtype=dtype):
            return np.zeros(shape, dtype)

        t0 = time.perf_counter()
        nl.train_batch(
            zeros(G, 3, H, L),
            zeros(G, 3, H + 1, L),
            zeros(G, 3, H, L),
            zeros(G, 3, H + 1, L),
            zeros(G, 2, N, L),
            zeros(G, N, L),
            0,
            BATCH,
            zeros(G, L, dtype="float64"),
            zeros(G, L, dtype="float64"),
        )
        nl.evaluate(
            zeros(G, 3, H, L),
            zeros(G, 3, H + 1, L),
            zeros(N, 2),
            zeros(N),
            zeros(G, L, dtype="float64"),
            zeros(G, L, dtype="float64"),
        )
        out[dtype + "_first_calls_s"] = round(time.perf_counter() - t0, 3)
    out["cache_hits"] = sum(nl.train_batch.stats.cache_hits.values())
    out["train_group_registers"] = vector_registers(nl.train_group)
    out["evaluate_group_registers"] = vector_registers(nl.evaluate_group)
    return out


def startup(target: str) -> dict:
    """numba's start-up with an empty cache and with that cache filled (fresh
    processes), and the C++ kernel's build time, for ``target``."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = target_env(target) | {"NUMBA_CACHE_DIR": tmp}
        for state in ("cold", "cached"):
            t0 = time.perf_counter()
            out = child(["--startup-child", target], env)
            out["process_s"] = round(time.perf_counter() - t0, 3)
            result[state] = out
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import shutil, time; from lrtools import _replicas_kernel as k; "
            "t = time.perf_counter(); "
            f"k.build(shutil.which('g++'), {cxx_flags(target)!r}); "
            "print(time.perf_counter() - t)"
        )
        run = subprocess.run(
            [sys.executable, "-c", code],
            env=os.environ | {"XDG_CACHE_HOME": tmp},
            capture_output=True,
            text=True,
        )
        last = run.stdout.strip().splitlines()[-1:] or ["nan"]
        result["cxx_build_s"] = round(float(last[0]), 3)
    return result


def child(arguments: list[str], env: dict) -> dict:
    run = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *arguments],
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        return {"error": run.stderr.strip().splitlines()[-1:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


# -- report ---------------------------------------------------------------------------


def report(results: list[dict]) -> None:
    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f") if f in flags]
    print(f"CPU: {results[0].get('cpu', platform.processor())}; flags: {isa}")
    print(f"{R} replicas, H={H}, {N} samples, batch {BATCH}: ms per epoch")
    head = f"{'target':10} {'fastmath':8} {'dtype':8} {'L':>3} {'C++':>7} {'numba':>7}"
    head += f" {'ratio':>5}"
    print(head + "  (train + evaluate)   agreement (max rel. diff)")
    for res in results:
        if "error" in res:
            print(f"{res['target']:10} error: {res['error']}")
            continue
        for dtype in DTYPES:
            e = res[dtype]
            if "error" in e:
                print(f"{res['target']:10} {res['fastmath']:8} {dtype:8} {e['error']}")
                continue
            t = e["ms_per_epoch"]
            c, n = t["cxx"], t["numba"]
            a = e["agreement"]
            diff = max(v for k, v in a.items() if "loss" in k or "GW" in k)
            wrong = sum(v for k, v in a.items() if "correct" in k)
            print(
                f"{res['target']:10} {res['fastmath']:8} {dtype:8} {e['lanes']:3d} "
                f"{c['epoch']:7.2f} {n['epoch']:7.2f} {n['epoch'] / c['epoch']:5.2f}"
                f"  ({c['train']:.2f}+{c['evaluate']:.2f} vs "
                f"{n['train']:.2f}+{n['evaluate']:.2f})  {diff:.1e}, "
                f"{wrong} counts differ"
            )
        cpu, width = res["numba_cpu"], res["numba_lane_bytes"]
        print(f"{'':10} numba target {cpu}, {width}-byte lane groups")


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    if importlib.util.find_spec("numba") is None:
        print("numba is not installed (not a project dependency): skipped.")
        print("To run it: .venv/bin/pip install numba")
        return 0
    if args.child:
        print(json.dumps(run_target(args.child, args.epochs, args.repeats)))
        return 0
    if args.startup_child:
        print(json.dumps(startup_child(args.startup_child)))
        return 0
    targets = [t for t in args.targets.split(",") if t]
    if "avx512f" not in cpu_flags() and "native512" in targets:
        targets.remove("native512")
    results = []
    for target in targets:
        for fastmath in [f for f in args.fastmath.split(",") if f]:
            print(f"timing {target} {fastmath} ...", file=sys.stderr, flush=True)
            cmd = ["--child", target, "--epochs", str(args.epochs)]
            cmd += ["--repeats", str(args.repeats)]
            out = child(cmd, target_env(target, fastmath))
            results.append({"target": target, **out, "fastmath": fastmath})
            print(json.dumps(results[-1]), file=sys.stderr)
    report(results)
    if not args.no_startup:
        print("start-up (fresh processes; s):")
        for target in targets:
            s = startup(target)
            print(f"  {target}: {json.dumps(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
