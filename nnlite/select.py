"""Modules that cut, pick, repeat or pad along one dimension of an array: Narrow, Select,
Replicate, Padding.

Dimensions are plain 0-based axes of the array the module receives, batch axis included
(negative ones count from the end, as in Python). Torch's ``nInputDim`` arguments, which
shifted a dimension by one for batched inputs, are not offered: with absolute axes there is
nothing to guess. Indices and offsets are 0-based too.
"""
from .backend import get_xp
from .checks import ANY_RANK, check_array, check_int, check_shape
from .module import Module
from .tables import _resolve_index


def _axis(module, dim, ndim, what="dimension"):
    """A 0-based axis of an ``ndim``-D array (negative counts from the end)."""
    d = dim + ndim if dim < 0 else dim
    if not 0 <= d < ndim:
        raise ValueError(f"{module.typename()}: {what} {dim} is out of range for a {ndim}-D input")
    return d


def _position(module, index, n, what):
    """A 0-based position along a dimension of size ``n`` (negative counts from the end)."""
    return _resolve_index(module, index, n, what, f"a dimension of size {n}")


class _AlongAxis(Module):
    parameter_names = ()

    def _check(self, input):
        check_array(self, input, range(1, 65))
        return _axis(self, self.dimension, input.ndim)


class _View(_AlongAxis):
    """``y = x[where]`` for the basic index ``_where(input)`` (a view); the elements pass through
    unchanged, so ``dL/dx`` is gy at ``where`` and 0 elsewhere."""

    def updateOutput(self, input):
        self.output = input[self._where(input)]
        return self.output

    def updateGradInput(self, input, gradOutput):
        where = self._where(input)
        check_shape(self, gradOutput, input[where].shape)
        g = get_xp(gradOutput).zeros(input.shape, dtype=gradOutput.dtype)
        g[where] = gradOutput
        self.gradInput = g
        return self.gradInput


class Narrow(_View):
    """``Narrow(dimension, offset, length=1)``: ``y = x[..., offset : offset + length, ...]`` along
    axis ``dimension`` (a view of the input).

    ``offset`` is 0-based (negative counts from the end); a negative ``length`` counts from the
    end as in Torch: ``length = n - offset + length + 1`` (-1 runs to the last element).
    The slice is copied through unchanged, so ``dL/dx`` is gy in the slice and 0 elsewhere.
    """

    def __init__(self, dimension, offset, length=1):
        super().__init__()
        self.dimension = check_int(self, dimension, "dimension", minimum=-64)
        self.offset = check_int(self, offset, "offset", minimum=-2 ** 62)
        self.length = check_int(self, length, "length", minimum=-2 ** 62)
        if self.length == 0:
            raise ValueError(f"{self.typename()}: length must not be 0")

    def _where(self, input):
        d = self._check(input)
        n = input.shape[d]
        start = _position(self, self.offset, n, "offset")
        length = self.length if self.length > 0 else n - start + self.length + 1
        if length < 1 or start + length > n:
            raise ValueError(f"{self.typename()}: offset {self.offset} and length {self.length} ask "
                             f"for elements outside a dimension of size {n}")
        return (slice(None),) * d + (slice(start, start + length),)

    def extra_repr(self):
        return f"({self.dimension}, {self.offset}, {self.length})"


class Select(_View):
    """``Select(dimension, index)``: ``y = x.take(index, axis=dimension)``, the axis removed (a view).

    ``index`` is 0-based, negative counts from the end. ``dL/dx`` is gy at that index and 0
    elsewhere.
    """

    def __init__(self, dimension, index):
        super().__init__()
        self.dimension = check_int(self, dimension, "dimension", minimum=-64)
        self.index = check_int(self, index, "index", minimum=-2 ** 62)

    def _where(self, input):
        d = self._check(input)
        return (slice(None),) * d + (_position(self, self.index, input.shape[d], "index"),)

    def extra_repr(self):
        return f"({self.dimension}, {self.index})"


class Replicate(Module):
    """``Replicate(nf, dim=0)``: a new axis of size nf at position ``dim`` of the output (0-based,
    negative counts from the end of the output's axes), every slice along it equal to x.

    ``y = broadcast of expand_dims(x, dim)`` (a view with stride 0 along the new axis, as Torch's
    expand; NumPy marks it read-only). Each input element feeds nf outputs, so
    ``dL/dx = sum of gy over the new axis``.
    """
    parameter_names = ()

    def __init__(self, nf, dim=0):
        super().__init__()
        self.nfeatures = check_int(self, nf, "nf")
        self.dim = check_int(self, dim, "dim", minimum=-65)

    def _dim(self, input):
        check_array(self, input, ANY_RANK)
        return _axis(self, self.dim, input.ndim + 1, what="dim")

    def _out_shape(self, input, d):
        return input.shape[:d] + (self.nfeatures,) + input.shape[d:]

    def updateOutput(self, input):
        d = self._dim(input)
        xp = get_xp(input)
        self.output = xp.broadcast_to(xp.expand_dims(input, d), self._out_shape(input, d))
        return self.output

    def updateGradInput(self, input, gradOutput):
        d = self._dim(input)
        check_shape(self, gradOutput, self._out_shape(input, d))
        self.gradInput = gradOutput.sum(axis=d)
        return self.gradInput

    def extra_repr(self):
        return f"({self.nfeatures}, dim={self.dim})"


class Padding(_AlongAxis):
    """``Padding(dim, pad, value=0, index=0)``: inserts |pad| entries equal to ``value`` along axis
    ``dim``. With pad < 0 they go before input position ``index`` (0-based; default: at the
    start); with pad > 0 ``index`` counts from the end (0: after the last element). Torch's
    rule with 0-based indices; Torch's ``nInputDim`` (third argument there) is not offered,
    ``dim`` being an absolute axis.

    ``y = concat(x[:p], value * ones(|pad|), x[p:])`` along ``dim``, p the insertion point;
    the padding does not depend on x, so ``dL/dx = concat(gy[:p], gy[p + |pad|:])``.
    """

    def __init__(self, dim, pad, value=0.0, index=0):
        super().__init__()
        self.dimension = check_int(self, dim, "dim", minimum=-64)
        self.pad = check_int(self, pad, "pad", minimum=-2 ** 62)
        self.value = float(value)
        self.index = check_int(self, index, "index", minimum=0)

    def _layout(self, input):
        """(axis, insertion point p, |pad|, output shape)."""
        d = self._check(input)
        n = input.shape[d]
        if self.index > n:
            raise ValueError(f"{self.typename()}: index {self.index} is out of range for a "
                             f"dimension of size {n} (at most {n})")
        p = self.index if self.pad < 0 else n - self.index
        shape = list(input.shape)
        shape[d] += abs(self.pad)
        return d, p, abs(self.pad), tuple(shape)

    def updateOutput(self, input):
        d, p, k, shape = self._layout(input)
        xp = get_xp(input)
        y = xp.full(shape, self.value, dtype=input.dtype)
        lead = (slice(None),) * d
        y[lead + (slice(0, p),)] = input[lead + (slice(0, p),)]
        y[lead + (slice(p + k, None),)] = input[lead + (slice(p, None),)]
        self.output = y
        return self.output

    def updateGradInput(self, input, gradOutput):
        d, p, k, shape = self._layout(input)
        check_shape(self, gradOutput, shape)
        xp = get_xp(gradOutput)
        lead = (slice(None),) * d
        self.gradInput = xp.concatenate([gradOutput[lead + (slice(0, p),)],
                                         gradOutput[lead + (slice(p + k, None),)]], axis=d)
        return self.gradInput

    def extra_repr(self):
        return f"({self.dimension}, {self.pad}, value={self.value:g}, index={self.index})"
