"""Loss functions (Torch criterions): ``forward(input, target) -> float``,
``backward(input, target) -> gradInput = dL/dinput``.

``updateOutput(input, target)`` returns the loss as a 0-d array of the input's
namespace and keeps it in ``output``: on a GPU it stays on the device, so a
training step can read it together with everything else it logs in one transfer.
``forward`` keeps Torch's contract and returns a Python float (reading a device
loss costs one device-to-host sync). Every criterion writes ``updateOutput`` so,
and a criterion built from others sums their ``updateOutput`` arrays, not their
``forward`` floats.

``backward`` recomputes what it needs from ``input`` and ``target``: it does not
depend on a previous ``forward``. Class weights are float32 host arrays at
construction and follow ``float()``/``double()``/``cuda()``/``cpu()`` like a module's
parameters; the input must then match their dtype and device.
"""
import numbers

from .backend import get_xp, is_array, is_cupy
from .checks import (check_array, check_matches_params, check_same_device, check_same_shape,
                     check_table)
from .containers import child_call
from .module import Module
from .softmax import log_softmax

_ANY_RANK = tuple(range(1, 9))


def _weights_array(weights):
    """User weights (array or list) as a float32 array on their device, or None."""
    if weights is None:
        return None
    return get_xp(weights).asarray(weights, dtype="float32")


def _class_labels(criterion, input, target):
    """Class labels as an integer array on the input's device (an int becomes a 0-d array)."""
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        target = get_xp(input).asarray(target)
    if not is_array(target) or target.dtype.kind not in "iu":
        kind = target.dtype if is_array(target) else type(target).__name__
        raise TypeError(f"{criterion.typename()}: target must be an integer array of class labels, "
                        f"got {kind}")
    check_same_device(criterion, input, target)
    return target


class Criterion:
    """Base class: keeps ``output`` (the loss, a 0-d array) and ``gradInput``."""
    _transient = ("output", "gradInput")

    # arrays held by a criterion (class weights) convert exactly as a module's do
    _map_arrays = Module._map_arrays

    def _distinct_parameters(self, who, why):
        """A criterion holds no parameters (``Module.type`` checks a module's for ties)."""
        return {}

    type = Module.type
    float = Module.float
    double = Module.double
    cuda = Module.cuda
    cpu = Module.cpu

    def __init__(self):
        self.output = 0.0
        self.gradInput = None

    def forward(self, input, target):
        """The loss as a Python float (Torch's contract); ``updateOutput`` keeps it on the device."""
        return float(self.updateOutput(input, target))

    def backward(self, input, target):
        return self.updateGradInput(input, target)

    def __call__(self, input, target):
        """Torch's ``criterion(input, target)``: forward then backward; ``(loss, gradInput)``."""
        self.forward(input, target)
        self.backward(input, target)
        return self.output, self.gradInput

    @classmethod
    def typename(cls):
        return "nn." + cls.__name__

    def __repr__(self):
        return self.typename()

    def _check_pair(self, input, target):
        check_array(self, input, _ANY_RANK)
        check_array(self, target, _ANY_RANK, what="target")
        check_same_device(self, input, target)
        check_same_shape(self, input, target, "input", "target")
        if input.size == 0 and getattr(self, "sizeAverage", False):
            raise ValueError(f"{self.typename()}: input of shape {tuple(input.shape)} is empty; "
                             f"its average is undefined (sizeAverage=False sums to 0)")


class MSECriterion(Criterion):
    """``L = sum((x - t)^2) / N`` (N = number of elements if sizeAverage, else 1).

    ``dL/dx = 2 (x - t) / N``.
    """

    def __init__(self, sizeAverage=True):
        super().__init__()
        self.sizeAverage = sizeAverage

    def updateOutput(self, input, target):
        self._check_pair(input, target)
        d = input - target
        n = input.size if self.sizeAverage else 1
        xp = get_xp(d)
        self.output = xp.asarray(xp.vdot(d.ravel(), d.ravel()) / n)
        return self.output

    def updateGradInput(self, input, target):
        self._check_pair(input, target)
        n = input.size if self.sizeAverage else 1
        self.gradInput = (input - target) * (2.0 / n)
        return self.gradInput


class BCECriterion(Criterion):
    """Binary cross-entropy on probabilities ``x`` in [0, 1] against targets ``t`` (SPEC §2).

    ``L = -sum(w [t log(x + eps) + (1 - t) log(1 - x + eps)]) / N``, eps = 1e-12,
    N = number of elements if sizeAverage else 1. Differentiating each term,
    ``dL/dx = -w [t / (x + eps) - (1 - t) / (1 - x + eps)] / N
            = -(t - x) / ((1 - x + eps)(x + eps)) * w / N`` (up to the O(eps) terms
    the spec's form drops, as Torch's does).

    ``weights`` (optional) has the shape of one sample: the input's shape, or the
    input's shape without its first (batch) dim, over which it is broadcast (Torch
    takes a 1-D weight of size ``input.shape[1]`` for a (B, C) input).
    Inputs outside [0, 1] raise ValueError on NumPy. On a GPU the check would stop the
    device to read its result every step, so there it is folded into the loss
    instead: an input outside [0, 1] makes ``updateOutput`` return NaN (which a
    training step's finiteness check stops on), and ``updateGradInput`` does not check.
    """

    eps = 1e-12

    def __init__(self, weights=None, sizeAverage=True):
        super().__init__()
        self.weights = _weights_array(weights)
        self.sizeAverage = sizeAverage

    @classmethod
    def log_likelihood(cls, input, target):
        """The element-wise ``t log(x + eps) + (1 - t) log(1 - x + eps)``, unchecked and unreduced
        (for metrics that reduce it their own way, e.g. per sequence)."""
        xp = get_xp(input)
        return target * xp.log(input + cls.eps) + (1 - target) * xp.log(1 - input + cls.eps)

    def _out_of_range(self, input):
        """A 0-d device flag: is any input outside [0, 1]?"""
        return get_xp(input).any((input < 0) | (input > 1))

    def _check(self, input, target):
        self._check_pair(input, target)
        if not is_cupy(input) and self._out_of_range(input):
            raise ValueError(f"{self.typename()}: input must hold probabilities in [0, 1], got "
                             f"values in [{float(input.min())}, {float(input.max())}] "
                             f"(put a Sigmoid before the criterion)")
        if self.weights is not None:
            check_matches_params(self, input, self.weights)
            sample = tuple(self.weights.shape)
            if sample not in (tuple(input.shape), tuple(input.shape[1:])):
                raise ValueError(f"{self.typename()}: weights of shape {sample} do not fit input "
                                 f"{tuple(input.shape)}: they must have the input's shape or its "
                                 f"shape without the batch dim {tuple(input.shape[1:])}")

    def _scale(self, input):
        """``w / N`` (broadcastable to the input) or the scalar ``1 / N``."""
        n = input.size if self.sizeAverage else 1
        return self.weights / n if self.weights is not None else 1.0 / n

    def updateOutput(self, input, target):
        self._check(input, target)
        xp = get_xp(input)
        loss = -(self.log_likelihood(input, target) * self._scale(input)).sum()
        if is_cupy(input):  # the range check, without a sync (see the class docstring)
            loss = xp.where(self._out_of_range(input), xp.nan, loss)
        self.output = xp.asarray(loss)
        return self.output

    def updateGradInput(self, input, target):
        self._check(input, target)
        eps = self.eps
        self.gradInput = -(target - input) / ((1 - input + eps) * (input + eps)) * self._scale(input)
        return self.gradInput

    def __repr__(self):
        return self.typename() + ("" if self.weights is None else " (weighted)")


class ClassNLLCriterion(Criterion):
    """Negative log-likelihood of integer class labels, on log-probabilities.

    Layouts (class axis C; labels 0-based):

    * ``(C,)`` against a label ``()`` (an int or a 0-d integer array);
    * ``(B, C)`` against ``(B,)``;
    * spatial: ``(B, C, H, W)`` against ``(B, H, W)``, and ``(C, H, W)`` against ``(H, W)``.

    With ``x_n`` the scores of sample (or pixel) n and ``t_n`` its label,
    ``L = -sum_n w[t_n] x_n[t_n] / W`` where ``W = sum_n w[t_n]`` if sizeAverage
    else 1 (w = 1 without weights, so W is the count of labelled samples/pixels;
    with weights this is Torch's division by the total weight of the targets).
    Samples whose label is ``ignoreIndex`` count nowhere. If W = 0 (all ignored)
    the loss and gradient are 0, as in Torch.
    ``dL/dx_n[c] = -w[t_n] / W`` for ``c = t_n`` and 0 otherwise.

    Labels must be integers (TypeError otherwise) in [0, C) or equal to ``ignoreIndex``
    (ValueError otherwise).
    """

    def __init__(self, weights=None, sizeAverage=True, ignoreIndex=None):
        super().__init__()
        self.weights = _weights_array(weights)
        self.sizeAverage = sizeAverage
        self.ignoreIndex = None if ignoreIndex is None else int(ignoreIndex)

    def _rows(self, input, target):
        """Validate; return the scores as rows ``(N, C)``, the labels ``(N,)`` made safe to
        index with (ignored ones set to 0) and each row's loss factor ``w[t_n] / W``."""
        who = self.typename()
        check_array(self, input, (1, 2, 3, 4), layout="(C,), (B, C), (C, H, W) or (B, C, H, W)")
        xp = get_xp(input)
        target = _class_labels(self, input, target)
        axis = 0 if input.ndim in (1, 3) else 1
        C = input.shape[axis]
        want = tuple(input.shape[:axis] + input.shape[axis + 1:])
        if tuple(target.shape) != want:
            raise ValueError(f"{who}: target must have shape {want} for input {tuple(input.shape)} "
                             f"(the input without its class dim), got {tuple(target.shape)}")
        if self.weights is not None:
            check_matches_params(self, input, self.weights)
            if tuple(self.weights.shape) != (C,):
                raise ValueError(f"{who}: weights must have shape ({C},) for {C} classes, "
                                 f"got {tuple(self.weights.shape)}")
        t = target.reshape(-1)
        labelled = t != self.ignoreIndex if self.ignoreIndex is not None else xp.ones(t.shape, bool)
        bad = labelled & ((t < 0) | (t >= C))
        if bool(bad.any()):
            extra = "" if self.ignoreIndex is None else f" or the ignoreIndex {self.ignoreIndex}"
            raise ValueError(f"{who}: target labels must be integers in [0, {C}){extra}, "
                             f"got {int(t[bad][0])}")
        t = xp.where(labelled, t, 0)
        factor = labelled.astype(input.dtype)
        if self.weights is not None:
            factor *= self.weights[t]
        if self.sizeAverage:  # W = 0 (nothing labelled) leaves every factor 0, with no sync
            total = factor.sum()
            factor = factor / xp.where(total == 0, 1, total)
        rows = xp.moveaxis(input, axis, -1).reshape(-1, C)
        return rows, t, factor

    @staticmethod
    def _unrows(g, input):
        """Rows ``(N, C)`` back to the input's layout (inverse of ``_rows``)."""
        xp = get_xp(g)
        axis = 0 if input.ndim in (1, 3) else 1
        moved = xp.moveaxis(input, axis, -1).shape
        return xp.ascontiguousarray(xp.moveaxis(g.reshape(moved), -1, axis))

    def updateOutput(self, input, target):
        rows, t, factor = self._rows(input, target)
        xp = get_xp(rows)
        self.output = xp.asarray(-(factor * rows[xp.arange(t.size), t]).sum())
        return self.output

    def updateGradInput(self, input, target):
        rows, t, factor = self._rows(input, target)
        xp = get_xp(rows)
        g = xp.zeros(rows.shape, dtype=rows.dtype)
        g[xp.arange(t.size), t] = -factor
        self.gradInput = self._unrows(g, input)
        return self.gradInput

    def __repr__(self):
        return self.typename() + ("" if self.weights is None else " (weighted)")


class CrossEntropyCriterion(ClassNLLCriterion):
    """``LogSoftMax`` over the class dim followed by ``ClassNLLCriterion``, fused.

    Takes raw scores in the layouts of ``ClassNLLCriterion`` (spatial included) and
    its arguments. With ``log p_n = x_n - logsumexp(x_n)``, computed as
    ``m + log sum exp(x_n - m)`` with ``m = max x_n`` (no overflow),
    ``L = -sum_n w[t_n] log p_n[t_n] / W``. Since ``d log p_n[t] / dx_n[c] = [c = t] - p_n[c]``,
    ``dL/dx_n = (softmax(x_n) - onehot(t_n)) * w[t_n] / W``.
    """

    @staticmethod
    def _log_softmax(rows):
        return log_softmax(rows, axis=1)

    def updateOutput(self, input, target):
        rows, t, factor = self._rows(input, target)
        xp = get_xp(rows)
        self.output = xp.asarray(-(factor * self._log_softmax(rows)[xp.arange(t.size), t]).sum())
        return self.output

    def updateGradInput(self, input, target):
        rows, t, factor = self._rows(input, target)
        xp = get_xp(rows)
        g = xp.exp(self._log_softmax(rows)) * factor[:, None]
        g[xp.arange(t.size), t] -= factor
        self.gradInput = self._unrows(g, input)
        return self.gradInput


class SequencerCriterion(Criterion):
    """Applies a criterion at every time step and sums (Torch rnn's SequencerCriterion).

    ``input`` and ``target`` are lists of T arrays or arrays stacked as (T, ...)
    (each may take either form). ``L = sum_t criterion(input[t], target[t])`` (a
    sum, not an average, as in Torch), hence ``dL/dinput[t]`` is the criterion's
    gradient at step t. ``gradInput`` takes the form of ``input``: a list per step,
    or a stacked (T, ...) array when the input was stacked (as Torch did).

    With ``sizeAverage=True`` (the rnn package's second argument, default False) the loss
    is the mean over the T steps instead, and every step's gradient is divided by T.

    The one wrapped criterion serves every step; its ``backward`` returns fresh
    arrays (all nnlite criterions do), so the steps' gradients stay distinct.
    """

    def __init__(self, criterion, sizeAverage=False):
        super().__init__()
        self.sizeAverage = bool(sizeAverage)
        if not isinstance(criterion, Criterion):
            raise TypeError(f"{self.typename()}: expected an nn.Criterion, got "
                            f"{type(criterion).__name__}")
        self.criterion = criterion

    def _check_steps(self, x, what):
        """A list of steps, or an array with a leading time dim."""
        if not is_array(x):
            check_table(self, x, what=what)
        elif x.ndim == 0:
            raise ValueError(f"{self.typename()}: {what} must be a list of steps or an array "
                             f"(T, ...), got a 0-d array")

    def _steps(self, input, target):
        self._check_steps(input, "input")
        self._check_steps(target, "target")
        if len(target) != len(input):
            raise ValueError(f"{self.typename()}: target must have as many steps as input "
                             f"({len(input)}), got {len(target)}")
        return range(len(input))

    def updateOutput(self, input, target):
        c = self.criterion
        total = sum(child_call(self, t, c, c.updateOutput, input[t], target[t])
                    for t in self._steps(input, target))
        self.output = get_xp(total).asarray(total / len(input) if self.sizeAverage else total)
        return self.output

    def updateGradInput(self, input, target):
        c = self.criterion
        grads = [child_call(self, t, c, c.backward, input[t], target[t])
                 for t in self._steps(input, target)]
        if self.sizeAverage:
            grads = [g / len(input) for g in grads]
        self.gradInput = get_xp(input).stack(grads) if is_array(input) else grads
        return self.gradInput

    def _map_arrays(self, fn, memo):
        super()._map_arrays(fn, memo)
        self.criterion._map_arrays(fn, memo)
        return self

    def __repr__(self):
        return f"{self.typename()}({self.criterion!r})"


class _PointwiseCriterion(Criterion):
    """``L = sum_i l(x_i, t_i) / N`` over same-shaped input and target (N = number of elements
    if sizeAverage, else 1), so ``dL/dx_i = l'(x_i, t_i) / N``. A subclass writes
    ``_terms(xp, x, t) -> l`` and ``_slopes(xp, x, t) -> dl/dx`` element-wise.
    """

    def __init__(self, sizeAverage=True):
        super().__init__()
        self.sizeAverage = sizeAverage

    def _n(self, input):
        return input.size if self.sizeAverage else 1  # an empty input: _check_pair's error

    def updateOutput(self, input, target):
        self._check_pair(input, target)
        xp = get_xp(input)
        self.output = xp.asarray(self._terms(xp, input, target).sum() / self._n(input))
        return self.output

    def updateGradInput(self, input, target):
        self._check_pair(input, target)
        xp = get_xp(input)
        self.gradInput = (self._slopes(xp, input, target) / self._n(input)).astype(input.dtype, copy=False)
        return self.gradInput


class AbsCriterion(_PointwiseCriterion):
    """``AbsCriterion(sizeAverage=True)``: ``L = sum |x - t| / N``.

    ``dL/dx = sign(x - t) / N``, 0 where ``x = t`` (Torch's subgradient).
    """

    def _terms(self, xp, x, t):
        return xp.abs(x - t)

    def _slopes(self, xp, x, t):
        return xp.sign(x - t)


class SmoothL1Criterion(_PointwiseCriterion):
    """``SmoothL1Criterion(sizeAverage=True)``, the Huber loss with threshold 1: with d = x - t,
    ``l = d^2 / 2`` where ``|d| < 1``, else ``|d| - 1/2``; ``L = sum l / N``.

    ``dl/dx = d`` where ``|d| < 1``, else ``sign(d)`` (the two pieces meet with equal value
    and slope at ``|d| = 1``), i.e. ``clip(d, -1, 1)``; ``dL/dx = clip(d, -1, 1) / N``.
    """

    def _terms(self, xp, x, t):
        a = xp.abs(x - t)
        return xp.where(a < 1, 0.5 * a * a, a - 0.5)

    def _slopes(self, xp, x, t):
        return xp.clip(x - t, -1, 1)


class DistKLDivCriterion(_PointwiseCriterion):
    """``DistKLDivCriterion(sizeAverage=True)``: Kullback-Leibler divergence of the input
    distribution from the target's, the input given as log-probabilities (after LogSoftMax)::

        L = sum_{t_i > 0} t_i (log t_i - x_i) / N      (N = number of elements if sizeAverage)

    Terms with ``t_i <= 0`` count as 0 (``0 log 0 = 0``; Torch skips them likewise).
    ``dL/dx_i = -t_i / N`` where ``t_i > 0``, else 0.
    """

    def _terms(self, xp, x, t):
        pos = t > 0
        return xp.where(pos, t * (xp.log(xp.where(pos, t, 1)) - x), 0)

    def _slopes(self, xp, x, t):
        return xp.where(t > 0, -t, 0)


class MarginCriterion(_PointwiseCriterion):
    """``MarginCriterion(margin=1, sizeAverage=True)``: two-class hinge loss, targets ``t`` in
    {-1, 1}: ``L = sum max(0, margin - t x) / N``.

    ``dL/dx = -t / N`` where ``t x < margin``, else 0 (the subgradient 0 at the hinge).
    """

    def __init__(self, margin=1.0, sizeAverage=True):
        super().__init__(sizeAverage)
        self.margin = float(margin)

    def _terms(self, xp, x, t):
        return xp.maximum(self.margin - t * x, 0)

    def _slopes(self, xp, x, t):
        return xp.where(t * x < self.margin, -t, 0)

    def __repr__(self):
        return f"{self.typename()}({self.margin:g})"


class MultiMarginCriterion(Criterion):
    """``MultiMarginCriterion(p=1, weights=None, margin=1, sizeAverage=True)``: multi-class
    hinge loss on scores x (C,) or (B, C) against 0-based class labels y (an int, or (B,)).

    Per sample, with ``z_i = margin - x[y] + x[i]`` for every class ``i != y``::

        l = w[y] sum_{i != y} max(0, z_i)^p / C        (p is 1 or 2; w = 1 without weights)

    ``L = sum_samples l / B`` with sizeAverage (else the plain sum). Where ``z_i > 0``,
    ``dl/dx[i] = w[y] p z_i^(p-1) / C`` and, since ``z_i`` falls as ``x[y]`` rises,
    ``dl/dx[y] = -sum_{i != y} dl/dx[i]``; elsewhere 0. Torch's formula, with weights (one per
    class) multiplying the whole sample's loss as in Torch and PyTorch.

    A label outside [0, C) raises ValueError on NumPy. On a GPU that check would stop the
    device every step, so there (as ``BCECriterion`` does) it makes the loss NaN instead.
    """

    def __init__(self, p=1, weights=None, margin=1.0, sizeAverage=True):
        super().__init__()
        if p not in (1, 2) or isinstance(p, bool):
            raise ValueError(f"{self.typename()}: p must be 1 or 2, got {p!r}")
        self.p = int(p)
        self.weights = _weights_array(weights)
        self.margin = float(margin)
        self.sizeAverage = sizeAverage

    def _margins(self, input, target):
        """Validate; return (x as (N, C), labels (N,), z with 0 at the labels, per-sample factor)."""
        who = self.typename()
        check_array(self, input, (1, 2), layout="(C,) or (B, C)")
        xp = get_xp(input)
        target = _class_labels(self, input, target)
        C = input.shape[-1]
        if tuple(target.shape) != tuple(input.shape[:-1]):
            raise ValueError(f"{who}: target must have shape {tuple(input.shape[:-1])} for input "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if self.weights is not None:
            check_matches_params(self, input, self.weights)
            if tuple(self.weights.shape) != (C,):
                raise ValueError(f"{who}: weights must have shape ({C},) for {C} classes, "
                                 f"got {tuple(self.weights.shape)}")
        x, t = input.reshape(-1, C), target.reshape(-1)
        bad = (t < 0) | (t >= C)
        flag = bad.any()  # a 0-d device flag on a GPU
        if is_cupy(input):  # no sync: the flag poisons the loss (class docstring), labels clipped
            t = xp.clip(t, 0, C - 1)
        elif bool(flag):
            raise ValueError(f"{who}: target labels must be integers in [0, {C}), got {int(t[bad][0])}")
        rows = xp.arange(t.size)
        z = self.margin - x[rows, t][:, None] + x
        z[rows, t] = 0
        n = t.size if self.sizeAverage and input.ndim == 2 else 1
        factor = (self.weights[t] if self.weights is not None else xp.ones(t.size, input.dtype)) / (C * n)
        return t, z, factor[:, None], flag

    def updateOutput(self, input, target):
        _, z, factor, bad = self._margins(input, target)
        xp = get_xp(z)
        h = xp.maximum(z, 0)
        loss = ((h if self.p == 1 else h * h) * factor).sum()
        if is_cupy(input):
            loss = xp.where(bad, xp.nan, loss)
        self.output = xp.asarray(loss)
        return self.output

    def updateGradInput(self, input, target):
        t, z, factor, _ = self._margins(input, target)
        xp = get_xp(z)
        g = xp.where(z > 0, z if self.p == 2 else 1, 0) * (self.p * factor)
        g[xp.arange(t.size), t] = -g.sum(axis=1)
        self.gradInput = g.astype(input.dtype, copy=False).reshape(input.shape)
        return self.gradInput

    def __repr__(self):
        return f"{self.typename()}(p={self.p}, margin={self.margin:g})" + (
            "" if self.weights is None else " (weighted)")


class ParallelCriterion(Criterion):
    """``ParallelCriterion(repeatTarget=False)``: a weighted sum of criterions, ``add(criterion,
    weight=1)`` each. Input is a list with one entry per criterion; so is the target, unless
    ``repeatTarget``, when every criterion gets the one target::

        L = sum_i weight_i criterion_i(input[i], target[i])

    hence ``gradInput[i] = weight_i dcriterion_i/dinput[i]`` (a list).
    """

    def __init__(self, repeatTarget=False):
        super().__init__()
        self.repeatTarget = bool(repeatTarget)
        self.criterions, self.weights = [], []

    def add(self, criterion, weight=1.0):
        if not isinstance(criterion, Criterion):
            raise TypeError(f"{self.typename()}.add: expected an nn.Criterion, got "
                            f"{type(criterion).__name__}")
        self.criterions.append(criterion)
        self.weights.append(float(weight))
        return self

    def _pairs(self, input, target):
        if not self.criterions:
            raise ValueError(f"{self.typename()}: no criterion added yet; call add(criterion, weight)")
        n = len(self.criterions)
        check_table(self, input, n)
        if not self.repeatTarget:
            check_table(self, target, n, what="target")
        return [(i, c, w, input[i], target if self.repeatTarget else target[i])
                for i, (c, w) in enumerate(zip(self.criterions, self.weights))]

    def updateOutput(self, input, target):
        losses = [w * child_call(self, i, c, c.updateOutput, x, t) for i, c, w, x, t in self._pairs(input, target)]
        self.output = get_xp(input).asarray(sum(losses[1:], losses[0]))
        return self.output

    def updateGradInput(self, input, target):
        self.gradInput = [w * child_call(self, i, c, c.updateGradInput, x, t)
                          for i, c, w, x, t in self._pairs(input, target)]
        return self.gradInput

    def _map_arrays(self, fn, memo):
        super()._map_arrays(fn, memo)
        for c in self.criterions:
            c._map_arrays(fn, memo)
        return self

    def __repr__(self):
        inner = ", ".join(f"{w:g} * {c!r}" for c, w in zip(self.criterions, self.weights))
        return f"{self.typename()}({inner})"
