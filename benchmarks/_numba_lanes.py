"""Numba version of ``lrtools/_replicas_kernel.cpp`` (imported by numba_kernel.py).

The same two entry points, in the same memory layouts (read the C++ header comment):
:func:`train_batch` and :func:`evaluate`, float32 or float64. One replica per lane;
every loop over the lane axis is innermost and branch-free, so that LLVM vectorizes it
(selects instead of branches, and the C++ kernel's polynomial exp and log, because
calls to libm's scalar ``exp``/``log`` cannot be vectorized without Intel's SVML).
With fused multiply-adds allowed, as in C++ (:data:`FASTMATH`), the arithmetic is the
C++ kernel's operation for operation, and so are the results, to the bit.

The lane count is a compile-time constant, as in C++ (``LANE_BYTES`` / item size): a
known trip count lets LLVM unroll the lane loops fully instead of wrapping them in
runtime trip-count checks. It follows the target numba compiles for (the host CPU, or
``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``): 64 bytes with AVX-512, 32 with AVX, else
16, which is also the C++ kernel's rule. Import this module only after setting those
variables.
"""

from __future__ import annotations

import os

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import config
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import FunctionPass, register_pass
from numba.core.untyped_passes import TranslateByteCode
from numba.extending import intrinsic, overload

C = 3  # classes
U = np.uintp  # an index numba need not check for negative values
S = 4  # samples per block, as in C++

# CPUs that numba may be told to target by name, and their vector bytes.
_NAMED = {"haswell": 32, "broadwell": 32, "skylake": 32, "znver2": 32, "znver3": 32}


def _lane_bytes() -> int:
    """The vector width of numba's target CPU, by the C++ kernel's rule."""
    name = config.CPU_NAME or llvm.get_host_cpu_name()
    if config.CPU_FEATURES is not None:
        features = config.CPU_FEATURES
    elif config.CPU_NAME is None:
        features = llvm.get_host_cpu_features().flatten()
    else:
        features = ""
    if not features.strip():  # a named CPU with its default features
        return _NAMED.get(name, 16)
    if "+avx512f" in features:
        return 64
    return 32 if "+avx," in features + "," else 16


#: Bytes per lane group, frozen into the compiled functions.
LANE_BYTES = _lane_bytes()


def lanes(dtype) -> int:
    """Replicas per lane group for ``dtype`` (numpy or torch float dtype)."""
    return LANE_BYTES // (4 if "32" in str(dtype) else 8)


# -- scalar helpers, inlined into the lane loops ------------------------------------


def typed(ref, value):
    """``value`` as the float type of ``ref`` (an array or a float)."""


@overload(typed, inline="always")
def _typed(ref, value):
    dtype = ref.dtype if isinstance(ref, types.Array) else ref
    if dtype == types.float32:
        return lambda ref, value: np.float32(value)
    return lambda ref, value: np.float64(value)


@intrinsic
def as_int(typingctx, x):
    """The bits of float ``x`` as a signed integer of the same width."""
    out = types.int32 if x.bitwidth == 32 else types.int64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(x.bitwidth))

    return out(x), codegen


@intrinsic
def as_float(typingctx, bits):
    """The float whose bits are the integer ``bits`` (32 or 64 wide)."""
    out = types.float32 if bits.bitwidth == 32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(out))

    return out(bits), codegen


@njit(inline="always")
def exp32(x):
    """exp(x) as in C++ (2^n e^r, Taylor polynomial of degree 7)."""
    lo, hi = np.float32(-87.0), np.float32(88.0)
    shift = np.float32(12582912.0)  # 1.5 * 2^23
    xc = x if x >= lo else lo
    xc = xc if xc <= hi else hi
    n = (xc * np.float32(1.44269504088896341) + shift) - shift
    r = xc - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.0 / 5040)
    p = p * r + np.float32(1.0 / 720)
    p = p * r + np.float32(1.0 / 120)
    p = p * r + np.float32(1.0 / 24)
    p = p * r + np.float32(1.0 / 6)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    bits = np.int32((np.int32(n) + 127) << 23)
    res = p * as_float(bits)
    res = np.float32(0.0) if x < lo else res
    res = np.float32(np.inf) if x > hi else res
    return res if x == x else x


@njit(inline="always")
def exp64(x):
    """exp(x) as in C++ (2^n e^r, Taylor polynomial of degree 13)."""
    lo, hi, shift = -708.0, 709.0, 6755399441055744.0  # 1.5 * 2^52
    xc = x if x >= lo else lo
    xc = xc if xc <= hi else hi
    n = (xc * 1.44269504088896338700e00 + shift) - shift
    r = xc - n * 6.93147180369123816490e-01 - n * 1.90821492927058770002e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600
    p = p * r + 1.0 / 39916800
    p = p * r + 1.0 / 3628800
    p = p * r + 1.0 / 362880
    p = p * r + 1.0 / 40320
    p = p * r + 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 1.0 / 2
    p = p * r + 1.0
    p = p * r + 1.0
    bits = (np.int64(n) + 1023) << 52
    res = p * as_float(bits)
    res = 0.0 if x < lo else res
    res = np.inf if x > hi else res
    return res if x == x else x


@njit(inline="always")
def log32(s):
    """log(s) for s >= 1, +inf and NaN, as in C++ (2 atanh series, 6 terms)."""
    bits = as_int(s)
    e = np.float32(np.int32(((bits >> 23) & 0xFF) - 127))
    m = as_float(np.int32((bits & 0x7FFFFF) | 0x3F800000))
    big = m > np.float32(1.41421356237309504880)
    m = m * np.float32(0.5) if big else m
    e = e + np.float32(1.0) if big else e
    f = (m - np.float32(1.0)) / (m + np.float32(1.0))
    w = f * f
    p = np.float32(1.0 / 11)
    p = p * w + np.float32(1.0 / 9)
    p = p * w + np.float32(1.0 / 7)
    p = p * w + np.float32(1.0 / 5)
    p = p * w + np.float32(1.0 / 3)
    p = p * w + np.float32(1.0)
    tail = e * np.float32(1.90821492927058770002e-10) + np.float32(2.0) * f * p
    res = e * np.float32(6.93147180369123816490e-01) + tail
    return res if s < np.float32(np.inf) else s


@njit(inline="always")
def log64(s):
    """log(s) for s >= 1, +inf and NaN, as in C++ (2 atanh series, 12 terms)."""
    bits = as_int(s)
    e = np.float64(((bits >> 52) & 0x7FF) - 1023)
    m = as_float((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > 1.41421356237309504880
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    f = (m - 1.0) / (m + 1.0)
    w = f * f
    p = 1.0 / 23
    p = p * w + 1.0 / 21
    p = p * w + 1.0 / 19
    p = p * w + 1.0 / 17
    p = p * w + 1.0 / 15
    p = p * w + 1.0 / 13
    p = p * w + 1.0 / 11
    p = p * w + 1.0 / 9
    p = p * w + 1.0 / 7
    p = p * w + 1.0 / 5
    p = p * w + 1.0 / 3
    p = p * w + 1.0
    tail = e * 1.90821492927058770002e-10 + 2.0 * f * p
    res = e * 6.93147180369123816490e-01 + tail
    return res if s < np.inf else s


def exp_lane(x):
    """exp32 or exp64 by the type of ``x``."""


@overload(exp_lane)
def _exp_lane(x):
    return (lambda x: exp32(x)) if x == types.float32 else (lambda x: exp64(x))


def log_lane(x):
    """log32 or log64 by the type of ``x``."""


@overload(log_lane)
def _log_lane(x):
    return (lambda x: log32(x)) if x == types.float32 else (lambda x: log64(x))


def n_lanes(ref):
    """Lanes per group for the dtype of array ``ref``, a compile-time constant (an
    array's ``itemsize`` is read at run time)."""


@overload(n_lanes, inline="always")
def _n_lanes(ref):
    count = LANE_BYTES * 8 // ref.dtype.bitwidth
    return lambda ref: count


# -- the network ----------------------------------------------------------------------
# LLVM vectorizes a lane loop only if it can prove that its loads and stores may be
# reordered across lanes. Two things defeat that in numba: it says nothing about
# which arrays may overlap (with a dozen arrays per loop the runtime overlap checks
# exceed LLVM's limit), and a multi-dimensional array's strides are read at run time,
# so accesses to a[0, j, lane] and a[1, j, lane] are at an unknown distance. Hence:
# the per-group functions are compiled with numba's internal ``noalias`` flag (their
# pointers marked ``noalias``, as C's ``restrict``; numba sets it for its parallel
# loops), so their array arguments must not overlap; the work arrays are flat with
# compile-time strides (L is a constant); the gradients' rows are separate arguments;
# indices are unsigned (``U``), else numba wraps negative ones with a select that hides
# the address from LLVM's analysis.
# ``error_model="numpy"`` drops the ZeroDivisionError branch of each division.


@register_pass(mutates_CFG=False, analysis_only=False)
class NoAlias(FunctionPass):
    """Marks the function's pointer arguments noalias."""

    _name = "lanes_noalias"

    def __init__(self):
        FunctionPass.__init__(self)

    def run_pass(self, state):
        state.flags.noalias = True
        return False


class NoAliasCompiler(CompilerBase):
    """numba's nopython pipeline with :class:`NoAlias` first."""

    def define_pipelines(self):
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.add_pass_after(NoAlias, TranslateByteCode)
        pm.finalize()
        return [pm]


#: Fused multiply-adds allowed, as the C++ kernel's ``-ffp-contract=fast`` (no other
#: fast-math): the results are then the C++ kernel's to the bit. ``LANES_CONTRACT=0``
#: turns it off (``fastmath=False``; results then agree to rounding).
FASTMATH = {"contract"} if os.environ.get("LANES_CONTRACT", "1") != "0" else False
restrict = njit(
    cache=True,
    error_model="numpy",
    fastmath=FASTMATH,
    pipeline_class=NoAliasCompiler,
)


@njit(inline="always")
def forward(w1, w2, xs, ns, h, keep, logit):
    """Logits (and hidden activations if ``keep``) of ``ns`` samples for one lane
    group's weights w1 (3, H, L), w2 (C, H + 1, L). Flat work arrays: xs[i, s, lane],
    h[j, s, lane], logit[s, k, lane]."""
    H = w1.shape[1]
    L = n_lanes(w1)
    zero = typed(w1, 0.0)
    for s in range(ns):
        for k in range(C):
            for lane in range(L):
                logit[U((s * C + k) * L + lane)] = w2[k, H, U(lane)]
    for j in range(H):
        for lane in range(L):
            w0, w1j, b = w1[0, j, U(lane)], w1[1, j, U(lane)], w1[2, j, U(lane)]
            a0, a1, a2 = w2[0, j, U(lane)], w2[1, j, U(lane)], w2[2, j, U(lane)]
            for s in range(ns):
                z = xs[U(s * L + lane)] * w0 + xs[U((S + s) * L + lane)] * w1j + b
                z = zero if z < zero else z  # ReLU; NaN stays NaN
                if keep:
                    h[U((j * S + s) * L + lane)] = z
                o = s * C * L + lane
                logit[U(o)] += a0 * z
                logit[U(o + L)] += a1 * z
                logit[U(o + 2 * L)] += a2 * z


@njit(inline="always")
def softmax_cross_entropy(logit, labels, ns, batch, grad, loss_sum, correct_sum):
    """Adds each sample's loss and correctness (float64) to the lanes' sums; writes
    (softmax - onehot) / batch into ``grad``. Flat: logit, grad[s, k, lane],
    labels[s, lane]."""
    L = n_lanes(logit)
    zero, one, two = typed(logit, 0.0), typed(logit, 1.0), typed(logit, 2.0)
    for s in range(ns):
        for lane in range(L):
            o = s * C * L + lane
            l0, l1, l2 = logit[U(o)], logit[U(o + L)], logit[U(o + 2 * L)]
            label = labels[U(s * L + lane)]
            top = l0
            top = l1 if l1 > top else top
            top = l2 if l2 > top else top
            e0, e1, e2 = exp_lane(l0 - top), exp_lane(l1 - top), exp_lane(l2 - top)
            total = e0 + e1 + e2
            picked = l2
            picked = l1 if label == one else picked
            picked = l0 if label == zero else picked
            loss = log_lane(total) + top - picked
            # argmax takes the first maximal logit: classes before the label lower.
            ok = (l0 < picked) | ((l0 == picked) & (label <= zero))
            ok = ok & ((l1 < picked) | ((l1 == picked) & (label <= one)))
            ok = ok & ((l2 < picked) | ((l2 == picked) & (label <= two)))
            loss_sum[U(lane)] += np.float64(loss)
            correct_sum[U(lane)] += 1.0 if ok else 0.0
            grad[U(o)] = (e0 / total - (one if label == zero else zero)) / batch
            grad[U(o + L)] = (e1 / total - (one if label == one else zero)) / batch
            grad[U(o + 2 * L)] = (e2 / total - (one if label == two else zero)) / batch


@njit(inline="always")
def train_block(w1, w2, gw, xs, labels, ns, batch, h, logit, grad, loss, cor):
    """Forward, loss and backward of ``ns`` samples, gradients added to the rows
    ``gw`` = (GW1[0], GW1[1], GW1[2], GW2[0], GW2[1], GW2[2])."""
    H = w1.shape[1]
    L = n_lanes(w1)
    zero = typed(w1, 0.0)
    u0, u1, u2, v0, v1, v2 = gw
    forward(w1, w2, xs, ns, h, True, logit)
    softmax_cross_entropy(logit, labels, ns, batch, grad, loss, cor)
    for lane in range(L):
        c0, c1, c2 = v0[H, U(lane)], v1[H, U(lane)], v2[H, U(lane)]
        for s in range(ns):
            o = s * C * L + lane
            c0 += grad[U(o)]
            c1 += grad[U(o + L)]
            c2 += grad[U(o + 2 * L)]
        v0[H, U(lane)], v1[H, U(lane)], v2[H, U(lane)] = c0, c1, c2
    for j in range(H):
        for lane in range(L):
            a0, a1, a2 = w2[0, j, U(lane)], w2[1, j, U(lane)], w2[2, j, U(lane)]
            c0, c1, c2 = v0[j, U(lane)], v1[j, U(lane)], v2[j, U(lane)]
            s0, s1, s2 = u0[j, U(lane)], u1[j, U(lane)], u2[j, U(lane)]
            for s in range(ns):
                z = h[U((j * S + s) * L + lane)]
                o = s * C * L + lane
                g0, g1, g2 = grad[U(o)], grad[U(o + L)], grad[U(o + 2 * L)]
                c0 += g0 * z
                c1 += g1 * z
                c2 += g2 * z
                dh = g0 * a0 + g1 * a1 + g2 * a2
                dz = dh if z > zero else zero  # as threshold_backward
                s0 += xs[U(s * L + lane)] * dz
                s1 += xs[U((S + s) * L + lane)] * dz
                s2 += dz
            v0[j, U(lane)], v1[j, U(lane)], v2[j, U(lane)] = c0, c1, c2
            u0[j, U(lane)], u1[j, U(lane)], u2[j, U(lane)] = s0, s1, s2


@restrict
def train_group(
    w1, w2, u0, u1, u2, v0, v1, v2, x0, x1, y, start, B, h, logit, grad, xs, labels,
    loss, cor,
):  # fmt: skip
    """One lane group's gradients (rows u0..u2 of GW1, v0..v2 of GW2) of samples
    ``start .. start + B - 1`` of x0, x1, y (n, L); flat work arrays h (H * S * L),
    logit, grad (S * C * L), xs (2 * S * L), labels (S * L); sums loss, cor (L,)
    float64."""
    L = n_lanes(w1)
    batch = typed(w1, B)
    gw = (u0, u1, u2, v0, v1, v2)
    for row in gw:
        row[:] = 0
    b = 0
    while b < B:
        ns = S if b + S <= B else 1
        for s in range(ns):
            for lane in range(L):
                xs[U(s * L + lane)] = x0[start + b + s, U(lane)]
                xs[U((S + s) * L + lane)] = x1[start + b + s, U(lane)]
                labels[U(s * L + lane)] = y[start + b + s, U(lane)]
        if ns == S:
            train_block(w1, w2, gw, xs, labels, S, batch, h, logit, grad, loss, cor)
        else:
            train_block(w1, w2, gw, xs, labels, 1, batch, h, logit, grad, loss, cor)
        b += ns


@restrict
def evaluate_group(w1, w2, x, y, h, logit, grad, xs, labels, loss, cor):
    """One lane group's summed loss and correct count on shared samples x (n, 2),
    y (n,), added to loss, cor (L,) float64."""
    L = n_lanes(w1)
    one = typed(w1, 1.0)
    n = len(y)
    b = 0
    while b < n:
        ns = S if b + S <= n else 1
        for s in range(ns):
            for lane in range(L):
                xs[U(s * L + lane)] = x[b + s, 0]
                xs[U((S + s) * L + lane)] = x[b + s, 1]
                labels[U(s * L + lane)] = y[b + s]
        if ns == S:
            forward(w1, w2, xs, S, h, False, logit)
            softmax_cross_entropy(logit, labels, S, one, grad, loss, cor)
        else:
            forward(w1, w2, xs, 1, h, False, logit)
            softmax_cross_entropy(logit, labels, 1, one, grad, loss, cor)
        b += ns


@njit(cache=True)
def train_batch(W1, W2, GW1, GW2, x, y, start, B, loss_sum, correct_sum):
    """Gradients GW1, GW2 of samples ``start .. start + B - 1`` of x (G, 2, n, L) and
    y (G, n, L); adds each replica's summed loss and correct count to loss_sum and
    correct_sum (G, L) float64. As ``train_batch`` in C++ with ``x + start * L``."""
    G, _, H, L = W1.shape
    assert L == n_lanes(W1)
    h = np.empty(H * S * L, W1.dtype)
    logit = np.empty(S * C * L, W1.dtype)
    grad = np.empty(S * C * L, W1.dtype)
    xs = np.empty(2 * S * L, W1.dtype)
    labels = np.empty(S * L, W1.dtype)
    for g in range(G):
        u, v = GW1[g], GW2[g]
        train_group(
            W1[g], W2[g], u[0], u[1], u[2], v[0], v[1], v[2], x[g, 0], x[g, 1], y[g],
            start, B, h, logit, grad, xs, labels, loss_sum[g], correct_sum[g],
        )  # fmt: skip


@njit(cache=True)
def evaluate(W1, W2, x, y, loss_sum, correct_sum):
    """Each replica's summed loss and correct count (G, L) float64 on the shared
    samples x (n, 2), y (n,): ``evaluate`` in C++."""
    G, _, H, L = W1.shape
    assert L == n_lanes(W1)
    h = np.empty(H * S * L, W1.dtype)
    logit = np.empty(S * C * L, W1.dtype)
    grad = np.empty(S * C * L, W1.dtype)
    xs = np.empty(2 * S * L, W1.dtype)
    labels = np.empty(S * L, W1.dtype)
    loss_sum[:] = 0
    correct_sum[:] = 0
    for g in range(G):
        evaluate_group(
            W1[g], W2[g], x, y, h, logit, grad, xs, labels, loss_sum[g],
            correct_sum[g],
        )  # fmt: skip
