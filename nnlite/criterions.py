"""Loss functions (Torch criterions): ``forward(input, target) -> float``,
``backward(input, target) -> gradInput = dL/dinput``.

``backward`` recomputes what it needs from ``input`` and ``target``: it does not
depend on a previous ``forward``. Class weights are float32 host arrays at
construction and follow ``float()``/``double()``/``cuda()``/``cpu()`` like a module's
parameters; the input must then match their dtype and device.
"""
import numbers

from .backend import get_xp, is_array
from .checks import (check_array, check_matches_params, check_same_device, check_same_shape,
                     check_table)
from .containers import child_call
from .module import Module

_ANY_RANK = tuple(range(1, 9))


def _weights_array(weights):
    """User weights (array or list) as a float32 array on their device, or None."""
    if weights is None:
        return None
    return get_xp(weights).asarray(weights, dtype="float32")


class Criterion:
    """Base class: keeps ``output`` (the loss, a Python float) and ``gradInput``."""
    _transient = ("output", "gradInput")

    # arrays held by a criterion (class weights) convert exactly as a module's do
    _map_arrays = Module._map_arrays
    type = Module.type
    float = Module.float
    double = Module.double
    cuda = Module.cuda
    cpu = Module.cpu

    def __init__(self):
        self.output = 0.0
        self.gradInput = None

    def forward(self, input, target):
        return self.updateOutput(input, target)

    def backward(self, input, target):
        return self.updateGradInput(input, target)

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
        self.output = float(get_xp(d).vdot(d.ravel(), d.ravel())) / n
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
    Inputs outside [0, 1] raise ValueError.
    """

    eps = 1e-12

    def __init__(self, weights=None, sizeAverage=True):
        super().__init__()
        self.weights = _weights_array(weights)
        self.sizeAverage = sizeAverage

    def _check(self, input, target):
        self._check_pair(input, target)
        xp = get_xp(input)
        if bool(xp.any((input < 0) | (input > 1))):
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
        eps = self.eps
        terms = target * xp.log(input + eps) + (1 - target) * xp.log(1 - input + eps)
        self.output = -float((terms * self._scale(input)).sum())
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
        if isinstance(target, numbers.Integral) and not isinstance(target, bool):
            target = xp.asarray(target)
        if not is_array(target) or target.dtype.kind not in "iu":
            kind = target.dtype if is_array(target) else type(target).__name__
            raise TypeError(f"{who}: target must be an integer array of class labels, got {kind}")
        check_same_device(self, input, target)
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
        total = float(factor.sum()) if self.sizeAverage else 1.0
        factor = factor / total if total else factor * 0
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
        self.output = -float((factor * rows[xp.arange(t.size), t]).sum())
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
        xp = get_xp(rows)
        shifted = rows - rows.max(axis=1, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))

    def updateOutput(self, input, target):
        rows, t, factor = self._rows(input, target)
        xp = get_xp(rows)
        self.output = -float((factor * self._log_softmax(rows)[xp.arange(t.size), t]).sum())
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

    The one wrapped criterion serves every step; its ``backward`` returns fresh
    arrays (all nnlite criterions do), so the steps' gradients stay distinct.
    """

    def __init__(self, criterion):
        super().__init__()
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
        self.output = float(sum(child_call(self, t, c, c.forward, input[t], target[t])
                                for t in self._steps(input, target)))
        return self.output

    def updateGradInput(self, input, target):
        c = self.criterion
        grads = [child_call(self, t, c, c.backward, input[t], target[t])
                 for t in self._steps(input, target)]
        self.gradInput = get_xp(input).stack(grads) if is_array(input) else grads
        return self.gradInput

    def _map_arrays(self, fn, memo):
        super()._map_arrays(fn, memo)
        self.criterion._map_arrays(fn, memo)
        return self

    def __repr__(self):
        return f"{self.typename()}({self.criterion!r})"
