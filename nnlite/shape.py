"""Modules that only rearrange elements: Reshape, View, Transpose.

Their gradients rearrange gradOutput back: reshaping is a bijection between the
input's and the output's elements, so ``dL/dx`` is ``dL/dy`` reshaped (or
transposed back) to the input's shape.
"""
import math

from .backend import get_xp
from .checks import ANY_RANK, check_array, check_int, check_shape, check_sizes
from .module import Module


class _Rearrange(Module):
    """Base: a subclass gives ``_output_shape(input)``; forward and backward reshape."""
    parameter_names = ()

    def updateOutput(self, input):
        check_array(self, input, ANY_RANK)
        self.output = input.reshape(self._output_shape(input))
        return self.output

    def updateGradInput(self, input, gradOutput):
        check_array(self, input, ANY_RANK)
        check_shape(self, gradOutput, self._output_shape(input))
        self.gradInput = gradOutput.reshape(input.shape)
        return self.gradInput

    def _mismatch(self, input, wanted):
        raise ValueError(f"{self.typename()}: input of shape {tuple(input.shape)} "
                         f"({input.size} elements) cannot be viewed as {wanted}")


class Reshape(_Rearrange):
    """``Reshape(*size, batchMode=None)``: Torch's nn.Reshape, output ``size`` or (B, *size).

    With ``batchMode=False`` the whole input becomes ``size``; with True the first axis
    is kept as a batch: (B, ...) -> (B, *size). With None (Torch's default) the batch is
    detected: the input is a batch unless it has exactly prod(size) elements and its
    first axis is not 1 (so a (1, ...) input of prod(size) elements stays a batch of
    one, as in Torch). Like Torch's Reshape, no size may be -1: use ``View`` for that.
    """

    def __init__(self, *size, batchMode=None):
        super().__init__()
        self.size = check_sizes(self, size)
        self.nelement = math.prod(self.size)
        self.batchMode = batchMode

    def _output_shape(self, input):
        batch = self.batchMode if self.batchMode is not None else not (
            input.size == self.nelement and (input.ndim == 0 or input.shape[0] != 1))
        if not batch:
            if input.size != self.nelement:
                self._mismatch(input, self.size)
            return self.size
        if input.ndim == 0 or input.size != input.shape[0] * self.nelement:
            self._mismatch(input, ("B",) + self.size)
        return (input.shape[0],) + self.size

    def extra_repr(self):
        return "(" + "x".join(str(n) for n in self.size) + ")"


class View(_Rearrange):
    """``View(*size)``: Torch's nn.View; one size may be -1 (inferred from the rest).

    Batch handling follows Torch: without ``setNumInputDims``, an input of k prod(size)
    elements (k > 1, no -1 in size) becomes (k, *size), and with a -1 the whole input
    is viewed as ``size``. After ``setNumInputDims(n)`` the last n axes of the input
    are the sample and any axes before them are flattened into a batch: (B, *size).
    """

    def __init__(self, *size):
        super().__init__()
        self.size = check_sizes(self, size, allow_infer=True)
        self.numElements = math.prod(n for n in self.size if n != -1)
        self.numInputDims = None

    def setNumInputDims(self, numInputDims):
        self.numInputDims = check_int(self, numInputDims, "numInputDims", minimum=0)
        return self

    def _output_shape(self, input):
        nd = input.ndim if self.numInputDims is None else min(self.numInputDims, input.ndim)
        sample = math.prod(input.shape[input.ndim - nd:])
        if sample % self.numElements:
            self._mismatch(input, self.size)
        # Torch's batchsize(): the leading axes beyond the sample, or without a -1 the
        # multiple of prod(size) the sample holds
        batch = math.prod(input.shape[:input.ndim - nd])
        if -1 not in self.size:
            batch *= sample // self.numElements
        if batch == 1 and (self.numInputDims is None or input.ndim <= self.numInputDims):
            shape = self.size
        else:
            shape = (batch,) + self.size
        # the divisibility checked above makes -1 come out whole, and without a -1 the
        # element counts already agree
        fixed = math.prod(n for n in shape if n != -1)
        return tuple(input.size // fixed if n == -1 else n for n in shape)

    def extra_repr(self):
        return "(" + ", ".join(str(n) for n in self.size) + ")"


class Transpose(Module):
    """``Transpose(*pairs)``: swap each pair of axes in turn (Torch's nn.Transpose, 0-based).

    Torch's ``nn.Transpose({1, 2}, {3, 4})`` is ``Transpose((0, 1), (2, 3))``. The output is a
    contiguous copy (Torch copies too). Swaps are their own inverses, so the gradient
    applies the same swaps to gradOutput in reverse order. After ``setNumInputDims(n)`` the
    axes count from the first of the last n axes (a leading batch axis is skipped, as in Torch).
    """
    parameter_names = ()

    def __init__(self, *pairs):
        super().__init__()
        self.permutations = []
        for p in pairs:
            if not (isinstance(p, (tuple, list)) and len(p) == 2):
                raise TypeError(f"{self.typename()}: each argument must be a pair of axes, got {p!r}")
            self.permutations.append(tuple(check_int(self, a, "an axis", minimum=0) for a in p))
        self.numInputDims = None

    def setNumInputDims(self, numInputDims):
        self.numInputDims = check_int(self, numInputDims, "numInputDims", minimum=0)
        return self

    def _offset(self, input):
        check_array(self, input, ANY_RANK)
        offset = 0 if self.numInputDims is None else max(input.ndim - self.numInputDims, 0)
        top = max(max(p) for p in self.permutations) + offset if self.permutations else -1
        if top >= input.ndim:
            raise ValueError(f"{self.typename()}: swaps {self.permutations} need an input of at least "
                             f"{top + 1} axes, got shape {tuple(input.shape)}")
        return offset

    def _swap(self, a, pairs, offset):
        for i, j in pairs:
            a = a.swapaxes(i + offset, j + offset)
        return get_xp(a).ascontiguousarray(a)

    def _output_shape(self, shape, offset):
        s = list(shape)
        for i, j in self.permutations:
            s[i + offset], s[j + offset] = s[j + offset], s[i + offset]
        return tuple(s)

    def updateOutput(self, input):
        self.output = self._swap(input, self.permutations, self._offset(input))
        return self.output

    def updateGradInput(self, input, gradOutput):
        offset = self._offset(input)
        check_shape(self, gradOutput, self._output_shape(input.shape, offset))
        self.gradInput = self._swap(gradOutput, self.permutations[::-1], offset)
        return self.gradInput

    def extra_repr(self):
        return "(" + ", ".join(f"{i},{j}" for i, j in self.permutations) + ")"
