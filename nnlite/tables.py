"""Table modules: Torch's modules that take or give tables (Python lists of arrays).

None of them has parameters. Indices and dimensions are 0-based, and negative
ones count from the end as in Python (Torch's ``SelectTable(nSeq)`` is ``SelectTable(-1)``).

Sharing of arrays: a module may hand on the very arrays it receives (``Identity``,
``SelectTable``, ``NarrowTable`` and ``FlattenTable`` return the input arrays as
output and the gradOutput arrays as gradInput, as Torch's Identity and NarrowTable
do). Where one gradOutput feeds several entries of a gradInput table
(``CAddTable``), every entry gets its own copy, so no two entries of a table are
the same array and a caller may add into one in place.
"""
import functools
import itertools
import operator

from .backend import get_xp, is_array
from .checks import (ANY_RANK, check_array, check_array_list, check_same_shape,
                     check_same_structure, check_shape, check_table)
from .module import Module

_AT_LEAST_1D = range(1, 65)


def table_leaves(t):
    """The arrays of an array or a nested list, depth first (Torch's flattening order)."""
    if is_array(t):
        return [t]
    return [a for x in t for a in table_leaves(x)]


def rebuild_table(template, flat):
    """The arrays of ``flat`` (in ``table_leaves`` order) nested like ``template``."""
    it = iter(flat)

    def build(t):
        return next(it) if is_array(t) else [build(x) for x in t]
    return build(template)


def map_table(fn, *tables):
    """``fn`` applied leaf-wise to tables of one structure; the result keeps that structure."""
    if is_array(tables[0]):
        return fn(*tables)
    return [map_table(fn, *entries) for entries in zip(*tables)]


def zeros_like_table(t):
    """Zeros of the structure, shapes and dtypes of ``t``."""
    return map_table(lambda a: get_xp(a).zeros_like(a), t)


class _TableModule(Module):
    parameter_names = ()

    def _check_nested(self, t, what="input"):
        """``t`` must be an array or a (nested) list of arrays."""
        check_same_structure(self, t, t, what, what)

    def _check_list(self, input):
        """``input`` must be a list whose entries are arrays or (nested) lists of arrays."""
        check_table(self, input)
        self._check_nested(input)


class Identity(_TableModule):
    """``output = input``, ``gradInput = gradOutput`` (arrays or tables, passed on as they are)."""

    def updateOutput(self, input):
        self._check_nested(input)
        self.output = input
        return self.output

    def updateGradInput(self, input, gradOutput):
        check_same_structure(self, input, gradOutput)
        self.gradInput = gradOutput
        return self.gradInput


def _resolve_index(module, index, n, what, within=None):
    """A 0-based index into ``n`` things (a table of ``n`` entries unless ``within`` says what);
    negative counts from the end."""
    i = index + n if index < 0 else index
    if not 0 <= i < n:
        within = within or f"a table of {n} entries"
        raise ValueError(f"{module.typename()}: {what} {index} is out of range for {within}")
    return i


class SelectTable(_TableModule):
    """``SelectTable(index)``: ``output = input[index]`` (0-based; ``-1`` is the last entry).

    ``gradInput[index] = gradOutput``; every other entry is zero with the nested
    structure and shapes of its input entry (only the selected entry influenced the output).
    """

    def __init__(self, index):
        super().__init__()
        self.index = int(index)

    def updateOutput(self, input):
        self._check_list(input)
        self.output = input[_resolve_index(self, self.index, len(input), "index")]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_list(input)
        i = _resolve_index(self, self.index, len(input), "index")
        check_same_structure(self, input[i], gradOutput, f"input[{i}]")
        self.gradInput = [gradOutput if j == i else zeros_like_table(x) for j, x in enumerate(input)]
        return self.gradInput

    def extra_repr(self):
        return f"({self.index})"


class NarrowTable(_TableModule):
    """``NarrowTable(offset, length=1)``: ``output = input[offset : offset + length]``.

    ``offset`` is 0-based (negative counts from the end); the output is always a
    list, also for ``length == 1``. ``gradInput[offset + k] = gradOutput[k]``, the
    entries outside the window are zeros shaped like their inputs.
    """

    def __init__(self, offset, length=1):
        super().__init__()
        self.offset, self.length = int(offset), int(length)
        if self.length < 1:
            raise ValueError(f"{self.typename()}: length must be at least 1, got {length}")

    def _window(self, input):
        self._check_list(input)
        start = _resolve_index(self, self.offset, len(input), "offset")
        if start + self.length > len(input):
            raise ValueError(f"{self.typename()}: entries {start}..{start + self.length - 1} "
                             f"asked of a table of {len(input)} entries")
        return start, start + self.length

    def updateOutput(self, input):
        start, stop = self._window(input)
        self.output = list(input[start:stop])
        return self.output

    def updateGradInput(self, input, gradOutput):
        start, stop = self._window(input)
        check_same_structure(self, list(input[start:stop]), gradOutput, f"input[{start}:{stop}]")
        self.gradInput = [gradOutput[j - start] if start <= j < stop else zeros_like_table(x)
                          for j, x in enumerate(input)]
        return self.gradInput

    def extra_repr(self):
        return f"({self.offset}, {self.length})"


class _ElementwiseTable(_TableModule):
    """A list of arrays of one shape (no broadcasting, as in Torch) -> one array of that shape,
    ``output = input[0] op input[1] op ...`` with the binary operator ``_op``."""

    _op = None

    def _check(self, input, gradOutput=None):
        check_array_list(self, input)
        for i, x in enumerate(input[1:], 1):
            check_same_shape(self, input[0], x, "input[0]", f"input[{i}]")
        if gradOutput is not None:
            check_array(self, gradOutput, ANY_RANK, what="gradOutput")
            check_same_shape(self, input[0], gradOutput, "the inputs")

    def updateOutput(self, input):
        self._check(input)
        self.output = functools.reduce(self._op, input)
        return self.output


class CAddTable(_ElementwiseTable):
    """``output = sum_i input[i]``; ``dL/dinput[i] = gradOutput`` for every i.

    Each gradInput entry is its own copy of gradOutput (see the module docstring).
    """

    _op = operator.add

    def updateGradInput(self, input, gradOutput):
        self._check(input, gradOutput)
        self.gradInput = [gradOutput.copy() for _ in input]
        return self.gradInput


class CMulTable(_ElementwiseTable):
    """``output = prod_i input[i]`` (element-wise) over a list of arrays of one shape.

    ``dL/dinput[i] = gradOutput * prod_{j != i} input[j]``, computed as that product
    (not as ``output / input[i]``, which Torch once did and which fails where ``input[i] = 0``).
    """

    _op = operator.mul

    def updateGradInput(self, input, gradOutput):
        self._check(input, gradOutput)
        self.gradInput = [functools.reduce(operator.mul, [x for j, x in enumerate(input) if j != i],
                                           gradOutput)
                          for i in range(len(input))]
        return self.gradInput


class _DimTable(_TableModule):
    """Torch's dimension rule of JoinTable/SplitTable, 0-based.

    A negative ``dimension`` counts from the end of the arrays' dims. Otherwise,
    when ``nInputDims`` is given and the arrays have ``nInputDims + 1`` dims (a
    batch dim in front), ``dimension`` counts from the first non-batch dim.
    """

    def __init__(self, dimension, nInputDims=None):
        super().__init__()
        self.dimension = int(dimension)
        self.nInputDims = None if nInputDims is None else int(nInputDims)

    def _dim(self, ndim):
        d = self.dimension
        if d < 0:
            d += ndim
        elif self.nInputDims is not None and ndim == self.nInputDims + 1:
            d += 1
        if not 0 <= d < ndim:
            raise ValueError(f"{self.typename()}: dimension {self.dimension} (nInputDims="
                             f"{self.nInputDims}) is out of range for {ndim}-D arrays")
        return d

    def extra_repr(self):
        extra = "" if self.nInputDims is None else f", nInputDims={self.nInputDims}"
        return f"({self.dimension}{extra})"


class JoinTable(_DimTable):
    """``JoinTable(dimension, nInputDims=None)``: concatenate a list of arrays along a dim.

    All inputs have the same number of dims and equal sizes except along the joined
    dim (the dim rule is ``_DimTable``'s). ``dL/dinput[i]`` is the slab of gradOutput
    that ``input[i]`` filled, made contiguous (a view of gradOutput when joining along
    the first dim, a copy otherwise).
    """

    def _check(self, input):
        check_array_list(self, input, ndims=_AT_LEAST_1D)
        d = self._dim(input[0].ndim)
        shape0 = tuple(input[0].shape)
        for i, x in enumerate(input):
            same = x.ndim == len(shape0) and all(
                a == b for k, (a, b) in enumerate(zip(x.shape, shape0)) if k != d)
            if not same:
                raise ValueError(f"{self.typename()}: input[{i}] has shape {tuple(x.shape)} but "
                                 f"input[0] has {shape0}; they must agree on every dim but {d}")
        return d

    def updateOutput(self, input):
        d = self._check(input)
        self.output = get_xp(input[0]).concatenate(input, axis=d)
        return self.output

    def updateGradInput(self, input, gradOutput):
        d = self._check(input)
        xp = get_xp(input[0])
        shape = list(input[0].shape)
        shape[d] = sum(x.shape[d] for x in input)
        check_shape(self, gradOutput, shape)
        bounds = list(itertools.accumulate(x.shape[d] for x in input[:-1]))
        self.gradInput = [xp.ascontiguousarray(g) for g in xp.split(gradOutput, bounds, axis=d)]
        return self.gradInput


class SplitTable(_DimTable):
    """``SplitTable(dimension, nInputDims=None)``: an array -> the list of its slices along a dim.

    ``output[k] = input.take(k, dim)`` (the dim is removed; the dim rule is
    ``_DimTable``'s). The slices are contiguous arrays: views of the input when the
    dim is the first, copies otherwise. ``gradInput = stack(gradOutput, dim)``.
    """

    def _slices(self, input):
        """The dim split along and the slices of ``input`` along it (views)."""
        check_array(self, input, _AT_LEAST_1D)
        d = self._dim(input.ndim)
        return d, [input[(slice(None),) * d + (k,)] for k in range(input.shape[d])]

    def updateOutput(self, input):
        _, slices = self._slices(input)
        self.output = [get_xp(input).ascontiguousarray(s) for s in slices]
        return self.output

    def updateGradInput(self, input, gradOutput):
        d, slices = self._slices(input)
        check_same_structure(self, slices, gradOutput, f"the slices of input along dim {d}")
        self.gradInput = get_xp(input).stack(gradOutput, axis=d)
        return self.gradInput


class FlattenTable(_TableModule):
    """A nested table -> the flat list of its arrays, depth first (an array gives ``[array]``).

    Backward rebuilds the input's nesting: ``gradInput`` has the structure of the
    input, its arrays being those of ``gradOutput`` in order.
    """

    def updateOutput(self, input):
        self._check_nested(input)
        self.output = table_leaves(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_nested(input)
        check_same_structure(self, table_leaves(input), gradOutput, "the flattened input")
        self.gradInput = rebuild_table(input, gradOutput)
        return self.gradInput


class _PairTable(_ElementwiseTable):
    """A binary ``_ElementwiseTable``: the input is a list of exactly two arrays."""

    def _check(self, input, gradOutput=None):
        check_table(self, input, 2)
        super()._check(input, gradOutput)


class CSubTable(_PairTable):
    """``output = input[0] - input[1]``; ``dL/dinput[0] = gy``, ``dL/dinput[1] = -gy``."""

    _op = operator.sub

    def updateGradInput(self, input, gradOutput):
        self._check(input, gradOutput)
        self.gradInput = [gradOutput.copy(), -gradOutput]
        return self.gradInput


class CDivTable(_PairTable):
    """``output = input[0] / input[1]`` (element-wise).

    ``dL/dinput[0] = gy / input[1]``; ``dL/dinput[1] = -gy input[0] / input[1]^2``.
    """

    _op = operator.truediv

    def updateGradInput(self, input, gradOutput):
        self._check(input, gradOutput)
        a, b = input
        ga = gradOutput / b
        self.gradInput = [ga, -ga * a / b]
        return self.gradInput
