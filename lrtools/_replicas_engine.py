"""The engine behind :mod:`lrtools.replicas`: R independent MLPs trained at once.

Private: :func:`lrtools.replicas.train` validates every argument and calls :func:`run`.

Design. One epoch loop (:func:`run`) drives the parts that hold per-replica state in
NumPy or in element-wise PyTorch ops, shared by every path: the learning-rate
:class:`Schedule` (decay, steps, ReduceLROnPlateau), the :class:`Optimizer` (SGD,
RMSprop, Adagrad, Adam in Keras's or PyTorch's formulation), divergence handling and
the history. The networks themselves (forward, backward, metrics) come in two
formulations with one interface (``train_epoch``, ``validate``, ``keras_weights``,
``zero``, ``params``/``grads`` and the ``column_shape`` that per-replica coefficients
take to broadcast against them):

- :class:`LaneNets`, the default: the compiled kernel of
  :mod:`lrtools._replicas_kernel`. A replica per SIMD lane, so one lane group's
  weights, gradients and activations stay in the CPU's L1/L2 cache for a whole batch,
  instead of (R, batch, hidden) tensors streamed through memory about eight times per
  update by batched matmuls: about 5x faster (4-5 ms per 200-epoch run of the study
  against 20-25 ms), with lane groups split across threads (``LaneNets.threads``).
  The validation pass runs in the kernel as well, and
  the training metrics come from the logits the forward pass already computed.
- :class:`BatchedNets`, the reference and the fallback where the kernel cannot be
  built (no C++ compiler) or is switched off (``LRTOOLS_REPLICAS_KERNEL=0``): batched
  PyTorch operations, described below.

Both formulations compute every replica's own formulas in its own dtype; they differ
only in the order of summations (float rounding), and tests hold each to the
frameworks' own runs.

Batched layout. Replica ``r`` has two parameter matrices with the bias folded in as an
extra row (so one batched matmul computes ``x @ W + b`` and one computes both the
kernel's and the bias's gradient):

- ``A1[r]``, shape (n_in + 1, H): rows ``0..n_in-1`` are the hidden kernel (Keras
  layout), the last row the hidden bias; the inputs carry a column of ones.
- ``A2T[r]``, shape (C, H + 1): the output kernel transposed, the bias as last column;
  the hidden activations carry a column of ones.

The output layer works transposed (logits as (R, C, B)) because MKL's batched GEMM is
several times slower for an output with 3 columns than for one with B columns. The
backward pass is written by hand (softmax cross-entropy, ReLU through
``threshold_backward``, as autograd does); every buffer is preallocated and filled with
``out=`` so a step allocates almost nothing. The kernel's lane layout is the same
matrices with the replica axis split into (group, lane) and the lane moved last.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from lrtools import _replicas_kernel


@dataclass
class Config:
    """Everything :func:`run` needs, validated and resolved by
    :func:`lrtools.replicas.train`.

    Per-replica values are float64 NumPy arrays of shape (R,) (bools and ints where
    stated).
    """

    optimizer: str
    semantics: str
    epochs: int
    batch_size: int
    dtype: torch.dtype
    learning_rate: np.ndarray
    momentum: np.ndarray
    nesterov: np.ndarray  # bool
    rho: np.ndarray
    epsilon: np.ndarray
    beta_1: np.ndarray
    beta_2: np.ndarray
    initial_accumulator_value: np.ndarray
    decay: np.ndarray  # 0: none
    step_every: np.ndarray  # int, 0: none
    step_factor: np.ndarray
    plateau: np.ndarray  # bool
    plateau_patience: np.ndarray  # int
    plateau_factor: np.ndarray
    plateau_min_delta: np.ndarray
    plateau_cooldown: np.ndarray  # int
    plateau_min_lr: np.ndarray
    plateau_relative: np.ndarray  # bool (torch threshold_mode "rel")
    plateau_eps: np.ndarray
    # A given rate per update: row r, column t is the rate of replica r's update after
    # t updates (float64 (R, updates + 1); NaN rows for replicas without one).
    rate_table: np.ndarray
    scheduled: np.ndarray  # bool: the replica follows its rate_table row


@dataclass
class EpochOrder:
    """One epoch's sample order of every replica: replica ``r`` visits the training
    samples in the order ``rows[row_of[r]]`` (0-based indices). Replicas that share a
    seed share a row, so the (R, n) table is built only where a formulation needs it.
    """

    rows: torch.Tensor  # (n_rows, n) int64, contiguous
    row_of: torch.Tensor  # (R,) int64

    def per_replica(self) -> torch.Tensor:
        """The (R, n) table of every replica's order."""
        return self.rows[self.row_of]


def f32(x):
    """Round to float32 and back (Keras keeps its learning rate and some constants in
    float32)."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float32).to(x.dtype)
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


# --------------------------------------------------------------------------------------
# Forward and backward
# --------------------------------------------------------------------------------------


class Buffers:
    """Preallocated work tensors for one batch size."""

    def __init__(self, R, B, n_in, H, C, dtype):
        self.z = torch.empty(R, B, H, dtype=dtype)
        self.hb = torch.ones(
            R, B, H + 1, dtype=dtype
        )  # last column stays 1 (output bias)
        self.h = self.hb[:, :, :H]
        self.dh = torch.empty(R, B, H, dtype=dtype)
        self.logits = torch.empty(R, C, B, dtype=dtype)


def forward_backward(A1, A2T, GA1, GA2T, xa, yT, buf):
    """Gradients of the mean cross-entropy of one batch, for every replica.

    Parameters
    ----------
    A1, A2T : tensors (R, n_in + 1, H) and (R, C, H + 1)
        The parameters (see the module docstring).
    GA1, GA2T : tensors like A1 and A2T
        Receive the gradients.
    xa : tensor (R, B, n_in + 1)
        The batch's inputs with a column of ones.
    yT : tensor (R, C, B)
        One-hot targets, transposed.
    buf : Buffers
        Work space; ``buf.logits`` holds the batch's logits (R, C, B) afterwards,
        measured before the update (as Keras and ``torch_tools.fit`` report the training
        loss).
    """
    H = buf.h.shape[2]
    torch.bmm(xa, A1, out=buf.z)
    torch.clamp_min(buf.z, 0, out=buf.h)
    torch.bmm(A2T, buf.hb.transpose(1, 2), out=buf.logits)
    # d(mean CE)/d logits = (softmax - onehot) / B
    g = torch.softmax(buf.logits, dim=1).sub_(yT).div_(yT.shape[2])
    torch.bmm(g, buf.hb, out=GA2T)
    torch.bmm(g.transpose(1, 2), A2T[:, :, :H], out=buf.dh)
    # ReLU's backward, as autograd computes it: pass where the output is > 0.
    torch.ops.aten.threshold_backward.grad_input(buf.dh, buf.h, 0, grad_input=buf.z)
    torch.bmm(xa.transpose(1, 2), buf.z, out=GA1)


def cross_entropy_and_correct(logits, labels, at_or_after):
    """Per-sample cross-entropy and correctness of ``logits`` (R, C, n) for ``labels``
    (R, n).

    Written class by class (C is 3): PyTorch's reductions over a short middle dimension
    (``argmax``, ``logsumexp`` over dim 1) are ten times slower here. A sample counts as
    correct when its class is the *first* maximal logit, as ``argmax`` decides ties
    (they do occur: a network whose hidden units all died outputs equal logits): every
    class ``k`` before the label must be strictly lower, every class after it no higher.
    ``at_or_after[k]`` is the bool tensor ``labels <= k``.

    Returns
    -------
    loss : tensor (R, n) in the logits' dtype
    correct : bool tensor (R, n)
    """
    C = logits.shape[1]
    rows = [logits[:, k] for k in range(C)]
    top = rows[0].clone()
    for row in rows[1:]:
        torch.maximum(top, row, out=top)
    total = torch.exp(rows[0] - top)
    for row in rows[1:]:
        total += torch.exp(row - top)
    picked = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    loss = total.log_().add_(top).sub_(picked)
    correct = None
    for row, after in zip(rows, at_or_after, strict=True):
        ok = (row < picked) | ((row == picked) & after)
        correct = ok if correct is None else correct.logical_and_(ok)
    return loss, correct


def at_or_after(labels, C):
    """``[labels <= k for k in range(C)]``, see :func:`cross_entropy_and_correct`."""
    return [labels <= k for k in range(C)]


class Evaluator:
    """Loss and accuracy of every replica on one fixed set (the test half).

    Every replica sees the same inputs, so the hidden layer of a chunk of replicas is
    one GEMM, inputs (n, n_in + 1) times the chunk's hidden kernels side by side (n_in +
    1, chunk * H); chunks are small enough for the activations to stay in the CPU's L2
    cache.
    """

    def __init__(self, xa, labels, R, H, C, chunk_bytes):
        n = xa.shape[0]
        itemsize = torch.finfo(xa.dtype).bits // 8
        self.chunk = max(1, min(R, chunk_bytes // (n * H * itemsize)))
        self.xa = xa
        self.labels = labels
        self.sizes = sorted({self.chunk, R % self.chunk or self.chunk})
        self.z = {r: torch.empty(n, r * H, dtype=xa.dtype) for r in self.sizes}
        self.logits = torch.empty(R, C, n, dtype=xa.dtype)
        self.all_labels = labels.expand(R, n)
        self.after = at_or_after(self.all_labels, C)

    def __call__(self, A1, A2T):
        """Mean cross-entropy and accuracy per replica, two float64 tensors (R,)."""
        R, n_in1, H = A1.shape
        n = self.xa.shape[0]
        kernels = A1.permute(1, 0, 2).reshape(n_in1, R * H)  # (n_in + 1, R * H)
        for start in range(0, R, self.chunk):
            r = min(self.chunk, R - start)
            z = self.z[r]
            torch.mm(self.xa, kernels[:, start * H : (start + r) * H], out=z)
            z.clamp_min_(0)
            a2t = A2T[start : start + r]
            hidden = z.view(n, r, H).permute(1, 2, 0)  # (r, H, n)
            torch.baddbmm(
                a2t[:, :, H:], a2t[:, :, :H], hidden, out=self.logits[start : start + r]
            )
        loss, correct = cross_entropy_and_correct(
            self.logits, self.all_labels, self.after
        )
        return loss.mean(dim=1).double(), correct.double().mean(dim=1)


# --------------------------------------------------------------------------------------
# Optimizers: one update of both parameter tensors. ``lr`` and the other per-replica
# coefficients are tensors of the formulation's ``column_shape`` ((R, 1, 1) batched,
# (G, 1, 1, L) in lanes) in the parameters' dtype.
# --------------------------------------------------------------------------------------


class Optimizer:
    """Per-replica optimizer state and update rule, in Keras's or PyTorch's
    formulation."""

    def __init__(self, config: Config, params, column_shape):
        self.c = config
        self.params = params
        self.column_shape = column_shape
        dtype = params[0].dtype

        def col(values):
            return self.column(values, dtype)

        keras = config.semantics == "keras"
        name = config.optimizer
        self.keras = keras
        self.name = name
        self.t = 0  # updates done
        zeros = [torch.zeros_like(p) for p in params]
        if name == "sgd":
            # Keras casts SGD's momentum through float32 (ops.cast of a Python float).
            m = f32(config.momentum) if keras else config.momentum
            self.use_momentum = bool(np.any(m != 0))
            self.momentum = col(m)
            self.nesterov_all = bool(np.all(config.nesterov))
            self.nesterov_any = bool(np.any(config.nesterov))
            self.nesterov_mask = self.column(config.nesterov, torch.bool)
            self.buffers = zeros if self.use_momentum else None
        elif name == "rmsprop":
            # Keras multiplies by the Python floats rho and 1 - rho directly (no float32
            # cast).
            self.rho = col(config.rho)
            self.one_minus_rho = col(1 - config.rho)
            self.epsilon = col(config.epsilon)
            self.use_momentum = bool(np.any(config.momentum != 0))
            self.momentum = col(config.momentum)
            self.square = zeros
            self.buffers = (
                [torch.zeros_like(p) for p in params] if self.use_momentum else None
            )
        elif name == "adagrad":
            init = (
                f32(config.initial_accumulator_value)
                if keras
                else config.initial_accumulator_value
            )
            self.accumulators = [torch.zeros_like(p) + col(init) for p in params]
            self.epsilon = col(config.epsilon)
        elif name == "adam":
            self.beta_1 = col(config.beta_1)
            self.beta_2 = col(config.beta_2)
            self.one_minus_beta_1 = col(1 - config.beta_1)
            self.one_minus_beta_2 = col(1 - config.beta_2)
            self.epsilon = col(config.epsilon)
            # Keras raises float32-cast betas to the power of the step (ops.cast).
            self.power_beta_1 = f32(config.beta_1) if keras else config.beta_1.copy()
            self.power_beta_2 = f32(config.beta_2) if keras else config.beta_2.copy()
            self.m = zeros
            self.v = [torch.zeros_like(p) for p in params]
        else:  # pragma: no cover (validated by the caller)
            raise ValueError(name)

    def column(self, values, dtype):
        """Per-replica ``values`` (R,) as a tensor that broadcasts against the
        parameters (``column_shape``: (R, 1, 1) for the batched layout)."""
        values = torch.as_tensor(np.asarray(values)).to(dtype)
        return values.view(values.shape[:-1] + self.column_shape)

    def state_tensors(self):
        """Every state tensor (to reset a diverged replica)."""
        out = []
        for name in ("buffers", "square", "accumulators", "m", "v"):
            out += getattr(self, name, None) or []
        return out

    def reset(self, dead):
        """Zero the state of replicas in boolean mask ``dead`` (R,)."""
        mask = self.column(dead, torch.bool)
        for t in self.state_tensors():
            t.masked_fill_(mask, 0)
        if self.name == "adagrad":
            init = self.c.initial_accumulator_value
            if self.keras:
                init = f32(init)
            fill = self.column(init, self.params[0].dtype)
            for t in self.accumulators:
                t.copy_(torch.where(mask, fill, t))

    def coefficients(self, rates: np.ndarray) -> list:
        """Per-update coefficients for the next ``len(rates)`` updates, computed in one
        go.

        ``rates`` is (S, R) float64: row ``j`` the learning rates of update ``t + j``.
        Returns one entry per update for :meth:`step` (tensors of ``column_shape`` in
        the parameters' dtype).
        """
        S = len(rates)
        dtype = self.params[0].dtype

        def columns(values):
            return self.column(values, dtype).unbind(0)

        if self.name != "adam":
            return list(columns(rates))
        steps = np.arange(self.t + 1, self.t + S + 1, dtype=np.float64)[:, None]
        bc1 = 1 - self.power_beta_1[None, :] ** steps
        bc2 = 1 - self.power_beta_2[None, :] ** steps
        if self.keras:
            # alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t), applied as m alpha /
            # (sqrt(v) + eps)
            return list(columns(rates * np.sqrt(bc2) / bc1))
        # step_size = lr / (1 - beta_1^t); denominator sqrt(v) / sqrt(1 - beta_2^t) +
        # eps
        return list(zip(columns(rates / bc1), columns(np.sqrt(bc2)), strict=True))

    def shard(self, rows: slice) -> Optimizer:
        """This optimizer restricted to the replicas of ``rows``, a slice of the first
        axis of the parameters: every per-replica tensor (state, constants, the
        parameters themselves) is replaced by its view, so the shard's updates land in
        this optimizer's tensors. The shard counts its own updates (:attr:`t`)."""
        part = copy.copy(self)
        n = self.params[0].shape[0]

        def per_replica(value):
            return isinstance(value, torch.Tensor) and value.dim() and len(value) == n

        for name, value in vars(self).items():
            if per_replica(value):
                setattr(part, name, value[rows])
            elif isinstance(value, list) and value and all(map(per_replica, value)):
                setattr(part, name, [v[rows] for v in value])
        return part

    def step(self, grads, coefficient):
        """One update of every replica with a coefficient from :meth:`coefficients`."""
        self.t += 1
        getattr(self, "_" + self.name)(grads, coefficient)

    def _sgd(self, grads, lr):
        if not self.use_momentum:
            for p, g in zip(self.params, grads, strict=True):
                p.addcmul_(g, lr, value=-1)
            return
        m = self.momentum
        for p, g, b in zip(self.params, grads, self.buffers, strict=True):
            if self.keras:
                # v = m v - lr g; w += v (nesterov: w += m v - lr g)
                b.mul_(m).addcmul_(g, lr, value=-1)
                if self.nesterov_any:
                    nest = torch.addcmul(b * m, g, lr, value=-1)
                    if not self.nesterov_all:
                        nest = torch.where(self.nesterov_mask, nest, b)
                    p.add_(nest)
                else:
                    p.add_(b)
            else:
                # b = m b + g (first step: b = g); w -= lr b (nesterov: w -= lr (g + m
                # b))
                b.mul_(m).add_(g)
                if self.nesterov_any:
                    nest = torch.addcmul(g, b, m)
                    if not self.nesterov_all:
                        nest = torch.where(self.nesterov_mask, nest, b)
                    p.addcmul_(nest, lr, value=-1)
                else:
                    p.addcmul_(b, lr, value=-1)

    def _rmsprop(self, grads, lr):
        buffers = self.buffers or [None] * len(grads)
        for p, g, s, b in zip(self.params, grads, self.square, buffers, strict=True):
            s.mul_(self.rho).addcmul_(g * g, self.one_minus_rho)
            if self.keras:
                # increment = lr g / sqrt(v + eps); momentum buffer carries the rate
                increment = (g * lr).div_((s + self.epsilon).sqrt_())
                if b is not None:
                    b.mul_(self.momentum).add_(increment)
                    p.sub_(b)
                else:
                    p.sub_(increment)
            else:
                # w -= lr g / (sqrt(v) + eps); momentum buffer of g / (sqrt(v) + eps)
                ratio = g / s.sqrt().add_(self.epsilon)
                if b is not None:
                    b.mul_(self.momentum).add_(ratio)
                    p.addcmul_(b, lr, value=-1)
                else:
                    p.addcmul_(ratio, lr, value=-1)

    def _adagrad(self, grads, lr):
        for p, g, a in zip(self.params, grads, self.accumulators, strict=True):
            a.addcmul_(g, g)
            if self.keras:
                p.sub_((g * lr).div_((a + self.epsilon).sqrt_()))
            else:
                p.addcmul_(g / a.sqrt().add_(self.epsilon), lr, value=-1)

    def _adam(self, grads, coefficient):
        if self.keras:
            alpha = coefficient
            for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
                m.addcmul_(g - m, self.one_minus_beta_1)
                v.addcmul_(g * g - v, self.one_minus_beta_2)
                p.sub_((m * alpha).div_(v.sqrt().add_(self.epsilon)))
        else:
            step_size, bc2_sqrt = coefficient
            for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
                m.lerp_(g, self.one_minus_beta_1)
                v.mul_(self.beta_2).addcmul_(g * g, self.one_minus_beta_2)
                denom = (v.sqrt() / bc2_sqrt).add_(self.epsilon)
                p.addcmul_(m / denom, step_size, value=-1)


# --------------------------------------------------------------------------------------
# Learning-rate schedules, per replica (float64 NumPy arrays (R,); Keras's values in
# float32)
# --------------------------------------------------------------------------------------


class Schedule:
    """Constant rates, inverse-time decay per update, step decay per epoch,
    ReduceLROnPlateau."""

    def __init__(self, c: Config):
        self.c = c
        self.keras = c.semantics == "keras"
        self.lr0 = f32(c.learning_rate) if self.keras else c.learning_rate.copy()
        self.lr = (
            self.lr0.copy()
        )  # the optimizer's current rate (between decay updates)
        self.decaying = c.decay > 0
        self.stepping = c.step_every > 0
        self.plateau = c.plateau.copy()
        R = len(self.lr)
        # Plateau state: Keras's ``best`` starts as None, PyTorch's as +inf.
        self.best = np.full(R, np.inf)
        self.has_best = np.zeros(R, dtype=bool)
        self.wait = np.zeros(R, dtype=np.int64)
        self.cooldown_counter = np.zeros(R, dtype=np.int64)

    def begin_epoch(self, epoch: int) -> None:
        """Apply step decay at the start of ``epoch`` (0-based)."""
        if not self.stepping.any():
            return
        c, s = self.c, self.stepping
        if self.keras:
            # LearningRateScheduler(lambda epoch, lr: lr0 * f ** (epoch // k)), stored
            # in float32
            k = np.where(s, c.step_every, 1)
            self.lr[s] = f32(c.learning_rate * c.step_factor ** (epoch // k))[s]
        elif epoch > 0:
            # StepLR(step_size=k, gamma=f) stepped after each epoch multiplies in place
            cut = s & (epoch % np.where(s, c.step_every, 1) == 0)
            self.lr[cut] = self.lr[cut] * c.step_factor[cut]

    def rate(self, t: int) -> np.ndarray:
        """The rates for the update after ``t`` updates (0-based), shape (R,)."""
        c = self.c
        if c.scheduled.any():
            out = self.lr.copy()
            out[c.scheduled] = c.rate_table[c.scheduled, t]
            return out
        if not self.decaying.any():
            return self.lr
        d = self.decaying
        out = self.lr.copy()
        if self.keras:
            # InverseTimeDecay(lr0, decay_steps=1, decay_rate=d): all in float32
            lr0 = c.learning_rate.astype(np.float32)
            out[d] = (
                lr0 / (np.float32(1) + c.decay.astype(np.float32) * np.float32(t))
            )[d]
        else:
            # LambdaLR(lambda t: 1 / (1 + d * t)) stepped after every update
            out[d] = (self.lr0 * (1.0 / (1.0 + c.decay * t)))[d]
        return out

    def end_epoch(self, val_loss: np.ndarray, alive: np.ndarray) -> None:
        """ReduceLROnPlateau on this epoch's ``val_loss`` (R,), for replicas that use
        it."""
        use = self.plateau & alive
        if not use.any():
            return
        c = self.c
        lr = self.lr
        if self.keras:
            # keras.callbacks.ReduceLROnPlateau: logs hold float32 values, and ops.less
            # compares in float32 (its operands are Python floats).
            current = f32(val_loss)
            in_cooldown = self.cooldown_counter > 0
            self.cooldown_counter = np.where(in_cooldown, self.cooldown_counter - 1, 0)
            wait = np.where(in_cooldown, 0, self.wait)
            with np.errstate(invalid="ignore"):
                shifted = (current + c.plateau_min_delta).astype(np.float32)
                improved = ~self.has_best | (shifted < self.best.astype(np.float32))
            improved &= use
            self.best = np.where(improved, current, self.best)
            self.has_best |= improved
            wait = np.where(improved, 0, wait)
            counting = use & ~improved & (self.cooldown_counter <= 0)
            wait = wait + counting
            trigger = counting & (wait >= c.plateau_patience)
            reduce = trigger & (lr > f32(c.plateau_min_lr))
            new_lr = f32(np.maximum(lr * c.plateau_factor, c.plateau_min_lr))
            self.lr = np.where(reduce, new_lr, lr)
            self.cooldown_counter = np.where(
                reduce, c.plateau_cooldown, self.cooldown_counter
            )
            self.wait = np.where(use, np.where(reduce, 0, wait), self.wait)
        else:
            # torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min")
            current = val_loss
            with np.errstate(invalid="ignore"):
                reference = np.where(
                    c.plateau_relative,
                    self.best * (1.0 - c.plateau_min_delta),
                    self.best - c.plateau_min_delta,
                )
                better = use & (current < reference)
            self.best = np.where(better, current, self.best)
            bad = np.where(better, 0, self.wait + 1)
            in_cooldown = self.cooldown_counter > 0
            cooldown_counter = np.where(in_cooldown, self.cooldown_counter - 1, 0)
            bad = np.where(in_cooldown, 0, bad)
            trigger = use & (bad > c.plateau_patience)
            new_lr = np.maximum(lr * c.plateau_factor, c.plateau_min_lr)
            reduce = trigger & (lr - new_lr > c.plateau_eps)
            self.lr = np.where(reduce, new_lr, lr)
            cooldown_counter = np.where(trigger, c.plateau_cooldown, cooldown_counter)
            bad = np.where(trigger, 0, bad)
            self.cooldown_counter = np.where(
                use, cooldown_counter, self.cooldown_counter
            )
            self.wait = np.where(use, bad, self.wait)


# --------------------------------------------------------------------------------------
# Two formulations of the networks: batched PyTorch ops (the reference) and the compiled
# kernel's lanes. Both expose the parameters to the optimizer, train an epoch, validate.
# --------------------------------------------------------------------------------------

#: Bytes of hidden activations per validation chunk: a share of a 2 MB L2 cache.
VALIDATION_CHUNK_BYTES = 1600 * 1024


def to_internal(weights, dtype):
    """Keras-layout weights with a leading replica axis -> (A1, A2T) tensors."""
    w1, b1, w2, b2 = (torch.as_tensor(np.asarray(w)).to(dtype) for w in weights)
    A1 = torch.cat([w1, b1.unsqueeze(1)], dim=1).contiguous()
    A2T = torch.cat([w2.transpose(1, 2), b2.unsqueeze(2)], dim=2).contiguous()
    return A1, A2T


def to_keras(A1, A2T):
    """(A1, A2T) -> Keras-layout NumPy weights with a leading replica axis."""
    n_in, H = A1.shape[1] - 1, A2T.shape[2] - 1
    return [
        A1[:, :n_in].numpy().copy(),
        A1[:, n_in].numpy().copy(),
        A2T[:, :, :H].transpose(1, 2).numpy().copy(),
        A2T[:, :, H].numpy().copy(),
    ]


def with_ones(x, dtype):
    """Inputs (n, n_in) with a column of ones appended, as a tensor."""
    return torch.as_tensor(np.hstack([x, np.ones((len(x), 1))])).to(dtype)


class BatchedNets:
    """The reference formulation: every replica at once through batched PyTorch ops
    (:func:`forward_backward`, :class:`Evaluator`), parameters ``A1`` and ``A2T``."""

    def __init__(self, weights, split, batch_size: int, dtype):
        self.A1, self.A2T = to_internal(weights, dtype)
        R, n_in1, H = self.A1.shape
        C = self.A2T.shape[1]
        self.replicas = R
        self.params = [self.A1, self.A2T]
        self.grads = [torch.empty_like(self.A1), torch.empty_like(self.A2T)]
        self.column_shape = (R, 1, 1)
        self.xa_train = with_ones(split.x_train, dtype)
        self.y_train = torch.as_tensor(split.y_train, dtype=torch.int64)
        self.onehot = torch.eye(C, dtype=dtype)[self.y_train]
        self.n = n = len(self.y_train)
        self.B = batch_size
        self.starts = list(range(0, n, batch_size))
        self.evaluator = Evaluator(
            with_ones(split.x_test, dtype),
            torch.as_tensor(split.y_test, dtype=torch.int64),
            R,
            H,
            C,
            chunk_bytes=VALIDATION_CHUNK_BYTES,
        )
        self.buffers = {
            bs: Buffers(R, bs, n_in1 - 1, H, C, dtype)
            for bs in {min(batch_size, n - s) for s in self.starts}
        }
        self.epoch_logits = torch.empty(R, C, n, dtype=dtype)

    def train_epoch(self, order: EpochOrder, coefficients, optimizer):
        """One epoch of updates in sample order ``order``, one coefficient per update;
        each replica's summed loss and count of correct samples, NumPy (R,), every
        batch measured before its own update."""
        R, n, B = self.replicas, self.n, self.B
        n_in1, C = self.xa_train.shape[1], self.onehot.shape[1]
        flat = order.per_replica().reshape(-1)
        xa_e = self.xa_train.index_select(0, flat).view(R, n, n_in1)
        yT_e = (
            self.onehot.index_select(0, flat).view(R, n, C).transpose(1, 2).contiguous()
        )
        labels_e = self.y_train.index_select(0, flat).view(R, n)
        for start, coefficient in zip(self.starts, coefficients, strict=True):
            end = min(start + B, n)
            buf = self.buffers[end - start]
            forward_backward(
                *self.params,
                *self.grads,
                xa_e[:, start:end],
                yT_e[:, :, start:end],
                buf,
            )
            self.epoch_logits[:, :, start:end] = buf.logits
            optimizer.step(self.grads, coefficient)
        losses, correct = cross_entropy_and_correct(
            self.epoch_logits, labels_e, at_or_after(labels_e, C)
        )
        return losses.sum(dim=1, dtype=torch.float64).numpy(), correct.sum(1).numpy()

    def validate(self):
        """Validation loss and accuracy per replica, NumPy float64 (R,)."""
        return tuple(x.numpy() for x in self.evaluator(self.A1, self.A2T))

    def keras_weights(self):
        return to_keras(self.A1, self.A2T)

    def threads(self):
        """The batched ops use PyTorch's threads as configured."""
        return contextlib.nullcontext()

    def zero(self, dead: np.ndarray) -> None:
        """Zero the weights of replicas in boolean mask ``dead`` (R,)."""
        dead = torch.from_numpy(dead)
        self.A1[dead] = 0
        self.A2T[dead] = 0


class LaneNets:
    """The compiled kernel's formulation (:mod:`lrtools._replicas_kernel`): replica
    ``r`` is lane ``r % L`` of lane group ``r // L``, parameters ``W1`` (G, n_in + 1,
    H, L) and ``W2`` (G, C, H + 1, L) (``A1`` and ``A2T`` with the replica axis split
    and its lane part moved last). R is padded to ``G * L`` with idle replicas (zero
    weights, zero rate) that :func:`run` drops from the results."""

    def __init__(self, kernel, weights, split, batch_size: int, dtype):
        self.kernel, self.dtype = kernel, dtype
        L = kernel.lanes[dtype]
        R = len(weights[0])
        self.G = G = -(-R // L)
        self.L, self.replicas = L, G * L
        A1, A2T = (pad_rows(t, G * L) for t in to_internal(weights, dtype))
        self.H = A1.shape[2]
        self.W1, self.W2 = lanes(A1, L), lanes(A2T, L)
        self.params = [self.W1, self.W2]
        self.grads = [torch.empty_like(self.W1), torch.empty_like(self.W2)]
        self.column_shape = (G, 1, 1, L)
        self.x_train = torch.as_tensor(split.x_train).to(dtype).contiguous()
        self.y_train = torch.as_tensor(split.y_train).to(dtype).contiguous()
        self.n = n = len(self.y_train)
        self.B = batch_size
        self.starts = list(range(0, n, batch_size))
        # Each epoch's inputs and labels, per lane: (G, n_in, n, L) and (G, n, L).
        self.x = torch.empty(G, self.x_train.shape[1], n, L, dtype=dtype)
        self.y = torch.empty(G, n, L, dtype=dtype)
        self.x_test = torch.as_tensor(split.x_test).to(dtype).contiguous()
        self.y_test = torch.as_tensor(split.y_test).to(dtype).contiguous()
        self.sums = torch.zeros(4, G * L, dtype=torch.float64)  # loss, correct x 2
        self.shards = [slice(0, G)]  # lane groups per thread (see :meth:`threads`)

    def train_epoch(self, order: EpochOrder, coefficients, optimizer):
        """As :meth:`BatchedNets.train_epoch`, for the padded replicas."""
        rows = order.rows.contiguous()
        row_of = pad_rows(order.row_of, self.replicas).contiguous()
        self.kernel.gather_epoch(
            self.dtype,
            self.G,
            self.n,
            rows.data_ptr(),
            row_of.data_ptr(),
            self.x_train.data_ptr(),
            self.y_train.data_ptr(),
            self.x.data_ptr(),
            self.y.data_ptr(),
        )
        self.sums[:2].zero_()
        if len(self.shards) == 1:
            self._train_groups(self.shards[0], coefficients, optimizer)
        else:
            self._in_parallel(
                lambda groups: self._train_groups(
                    groups, coefficients, optimizer.shard(groups)
                )
            )
            optimizer.t += len(self.starts)
        loss, correct = self.sums[0], self.sums[1]
        return loss.numpy().copy(), correct.numpy().copy()

    def _train_groups(self, groups: slice, coefficients, optimizer):
        """One epoch of the lane groups ``groups`` (``optimizer`` covers just them)."""
        g0, L, n = groups.start, self.L, self.n
        item = self.x.element_size()
        pointers = [at_group(t, g0) for t in (*self.params, *self.grads)]
        x, y = at_group(self.x, g0), at_group(self.y, g0)
        loss, correct = (at_group(t.view(self.G, L), g0) for t in self.sums[:2])
        grads = [g[groups] for g in self.grads]
        whole = groups == slice(0, self.G)
        for start, coefficient in zip(self.starts, coefficients, strict=True):
            self.kernel.train_batch(
                self.dtype,
                groups.stop - g0,
                self.H,
                min(self.B, n - start),
                *pointers,
                x + start * L * item,
                y + start * L * item,
                n,
                loss,
                correct,
            )
            optimizer.step(
                grads, coefficient if whole else shard_coefficient(coefficient, groups)
            )

    def validate(self):
        """Validation loss and accuracy per (padded) replica, NumPy float64."""
        self._in_parallel(self._validate_groups)
        n = len(self.y_test)
        return self.sums[2].numpy() / n, self.sums[3].numpy() / n

    def _validate_groups(self, groups: slice):
        self.kernel.evaluate(
            self.dtype,
            groups.stop - groups.start,
            self.H,
            len(self.y_test),
            at_group(self.W1, groups.start),
            at_group(self.W2, groups.start),
            self.x_test.data_ptr(),
            self.y_test.data_ptr(),
            *(at_group(t.view(self.G, self.L), groups.start) for t in self.sums[2:]),
        )

    def _in_parallel(self, work):
        """``work(groups)`` for every shard: the first in this thread, the others in
        the pool (the kernel and PyTorch's ops release the GIL)."""
        if len(self.shards) == 1:
            work(self.shards[0])
            return
        others = [self.pool.submit(work, groups) for groups in self.shards[1:]]
        work(self.shards[0])
        for future in others:
            future.result()

    def keras_weights(self):
        return to_keras(unlanes(self.W1), unlanes(self.W2))

    @contextlib.contextmanager
    def threads(self):
        """Training on as many threads as PyTorch may use, each with its own shard of
        lane groups and one PyTorch thread. Shards are independent replicas and meet
        once per epoch, so a core that another process keeps busy only slows its own
        shard (the optimizer's small element-wise ops, split by PyTorch instead, would
        meet at every update and stall)."""
        previous = torch.get_num_threads()
        n_shards = max(1, min(previous, self.G))
        bounds = np.linspace(0, self.G, n_shards + 1).round().astype(int)
        self.shards = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=max(1, n_shards - 1)) as self.pool:
                yield
        finally:
            torch.set_num_threads(previous)
            self.shards = [slice(0, self.G)]

    def zero(self, dead: np.ndarray) -> None:
        """Zero the weights of replicas in boolean mask ``dead`` (padded R,)."""
        mask = torch.from_numpy(dead).view(self.column_shape)
        self.W1.masked_fill_(mask, 0)
        self.W2.masked_fill_(mask, 0)


def at_group(t: torch.Tensor, g: int) -> int:
    """Address of lane group ``g`` of a contiguous tensor with the groups first."""
    return t.data_ptr() + g * t[0].numel() * t.element_size()


def shard_coefficient(coefficient, groups: slice):
    """An optimizer coefficient (a column tensor, or a tuple of them) for ``groups``."""
    if isinstance(coefficient, tuple):
        return tuple(c[groups] for c in coefficient)
    return coefficient[groups]


def pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with zero rows appended (float) or its last row repeated (integer, as an
    order for idle replicas) up to ``rows``."""
    extra = rows - len(t)
    if extra == 0:
        return t
    if t.is_floating_point():
        return torch.cat([t, t.new_zeros((extra, *t.shape[1:]))])
    return torch.cat([t, t[-1:].expand(extra, *t.shape[1:])])


def lanes(t: torch.Tensor, L: int) -> torch.Tensor:
    """(G * L, a, b) -> (G, a, b, L): replica ``r`` to lane ``r % L`` of group ``r //
    L``."""
    return t.view(-1, L, *t.shape[1:]).permute(0, 2, 3, 1).contiguous()


def unlanes(t: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`lanes`."""
    G, a, b, L = t.shape
    return t.permute(0, 3, 1, 2).reshape(G * L, a, b)


def make_nets(c: Config, split, weights):
    """The kernel's formulation when it is available and fits the shapes (2 inputs, 3
    classes), else the batched PyTorch one."""
    shapes_fit = np.shape(weights[0])[1] == 2 and np.shape(weights[3])[1] == 3
    if shapes_fit and _replicas_kernel.enabled():
        return LaneNets(_replicas_kernel.load(), weights, split, c.batch_size, c.dtype)
    return BatchedNets(weights, split, c.batch_size, c.dtype)


def padded(c: Config, R: int) -> Config:
    """``c`` with every per-replica array extended to ``R`` entries by repeating its
    last one (idle replicas then get valid optimizer constants)."""
    changes = {}
    for field in dataclasses.fields(c):
        value = getattr(c, field.name)
        if isinstance(value, np.ndarray) and len(value) < R:
            extra = [(0, R - len(value))] + [(0, 0)] * (value.ndim - 1)
            changes[field.name] = np.pad(value, extra, mode="edge")
    return dataclasses.replace(c, **changes)


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Raw results of :func:`run`: per-replica, per-epoch arrays (R, epochs) and final
    weights."""

    history: dict[str, np.ndarray]
    weights: list[np.ndarray]


def run(c: Config, split, weights, orders, progress_bar, epoch_end=None) -> Outcome:
    """Train every replica; see :func:`lrtools.replicas.train` for the semantics.

    ``weights``: Keras-layout list with leading replica axis. ``orders(epoch)`` returns
    the :class:`EpochOrder` of that epoch (0-based). ``epoch_end(epoch, weights)``, if
    given, is called after each epoch's validation with the epoch (1-based) and every
    replica's weights at that moment (Keras layout, leading replica axis).
    ``progress_bar(iterable)`` wraps the epoch loop.
    """
    R = len(c.learning_rate)
    nets = make_nets(c, split, weights)
    c = padded(c, nets.replicas)
    alive = np.arange(nets.replicas) < R  # idle padding never trains
    n = nets.n
    optimizer = Optimizer(c, nets.params, nets.column_shape)
    schedule = Schedule(c)
    history = {
        k: np.full((nets.replicas, c.epochs), np.nan)
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    }
    final = None  # weights of replicas that diverged, frozen at that epoch
    t = 0
    steps = len(nets.starts)
    with torch.no_grad(), nets.threads():
        for epoch in progress_bar(range(c.epochs)):
            schedule.begin_epoch(epoch)
            rates = np.stack([schedule.rate(t + j) for j in range(steps)]) * alive
            coefficients = optimizer.coefficients(rates)
            losses, correct = nets.train_epoch(orders(epoch), coefficients, optimizer)
            t += steps
            val_loss, val_accuracy = nets.validate()
            if epoch_end is not None:
                epoch_end(epoch + 1, [w[:R] for w in nets.keras_weights()])
            rows = alive.copy()
            history["loss"][rows, epoch] = losses[rows] / n
            history["accuracy"][rows, epoch] = correct[rows] / n
            history["val_loss"][rows, epoch] = val_loss[rows]
            history["val_accuracy"][rows, epoch] = val_accuracy[rows]
            history["learning_rate"][rows, epoch] = schedule.rate(t)[rows]
            diverged = alive & ~np.isfinite(history["loss"][:, epoch])
            if diverged.any():
                # Like torch_tools.fit: record this epoch, stop the replica, NaN from
                # now on. Its weights are kept aside and zeroed (zero rate from now on)
                # so that it computes harmless finite numbers alongside the others.
                weights_now = nets.keras_weights()
                if final is None:
                    final = [np.full(w.shape, np.nan) for w in weights_now]
                for f, w in zip(final, weights_now, strict=True):
                    f[diverged] = w[diverged]
                alive &= ~diverged
                nets.zero(~alive)
                optimizer.reset(~alive)
            schedule.end_epoch(val_loss, alive)
    weights_out = nets.keras_weights()
    if final is not None:
        for w, f in zip(weights_out, final, strict=True):
            w[~alive] = f[~alive]
    return Outcome(
        history={k: v[:R] for k, v in history.items()},
        weights=[w[:R] for w in weights_out],
    )
