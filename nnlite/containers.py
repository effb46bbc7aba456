"""Containers: modules made of modules.

Errors raised by a child are re-raised with the child's index and type in front,
so ``Sequential (2) nn.Linear: input must be ...`` says exactly which layer failed.
"""
from .backend import get_xp
from .checks import check_array, check_same_structure, check_shape, check_table
from .module import Module
from .tables import map_table


def child_call(container, index, child, fn, *args):
    """Run ``fn(*args)`` for a child, prefixing its errors with where it sits."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{container.typename()} ({index}) {e}") from e


class Container(Module):
    """A module holding an ordered list of children in ``self.modules``."""
    parameter_names = ()

    def __init__(self, *modules):
        super().__init__()
        self.modules = []
        for m in modules:
            self.add(m)

    def add(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{self.typename()}.add: expected an nn.Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    def get(self, index):
        return self.modules[index]

    def size(self):
        return len(self.modules)

    def __len__(self):
        return len(self.modules)

    def __getitem__(self, index):
        return self.modules[index]

    def children(self):
        return self.modules

    def __repr__(self):
        lines = [self.typename() + " {"]
        for i, m in enumerate(self.modules):
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({i}): {body}")
        lines.append("}")
        return "\n".join(lines)


class OnePassContainer(Container):
    """A container whose backward is one pass over its children: a subclass writes
    ``_backward_pass(input, gradOutput, step)``, where ``step(child, x, g)`` runs the child's
    part of the pass and returns its gradInput; ``updateGradInput``, ``accGradParameters``
    and ``backward`` follow from it (``backward`` calls each child's ``backward``, so
    children that override it behave as they would alone)."""

    def _backward_pass(self, input, gradOutput, step):
        raise NotImplementedError(f"{self.typename()} does not implement its backward")

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._backward_pass(input, gradOutput, lambda m, x, g: m.updateGradInput(x, g))
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        def step(m, x, g):
            m.accGradParameters(x, g, scale)
            return m.gradInput
        self._backward_pass(input, gradOutput, step)

    def backward(self, input, gradOutput, scale=1.0):
        self.gradInput = self._backward_pass(input, gradOutput, lambda m, x, g: m.backward(x, g, scale))
        return self.gradInput


class Sequential(OnePassContainer):
    """Chains children: ``output = m_{n-1}( ... m_1(m_0(input)))``.

    Backward runs the chain in reverse: child i receives the gradInput of child
    i+1 as its gradOutput, and its own input is the output of child i-1.
    """

    def insert(self, module, index=None):
        """Put ``module`` at position ``index`` (0-based; default: the end), shifting the rest."""
        if not isinstance(module, Module):
            raise TypeError(f"{self.typename()}.insert: expected an nn.Module, got {type(module).__name__}")
        n = len(self.modules)
        index = n if index is None else index
        if not -n <= index <= n:
            raise IndexError(f"{self.typename()}.insert: index {index} is outside 0..{n}")
        self.modules.insert(index, module)
        return self

    def remove(self, index=None):
        """Take out the child at ``index`` (0-based; default: the last); returns self."""
        n = len(self.modules)
        index = n - 1 if index is None else index
        if not -n <= index < n:
            raise IndexError(f"{self.typename()}.remove: index {index} is outside 0..{n - 1}")
        del self.modules[index]
        return self

    def updateOutput(self, input):
        x = input
        for i, m in enumerate(self.modules):
            x = child_call(self, i, m, m.updateOutput, x)
        self.output = x
        return x

    def noGradInput(self):
        """``Module.noGradInput`` for the chain and its leading children, up to and including
        the first with parameters: the gradInputs of those would only reach the chain's."""
        super().noGradInput()
        for m in self.modules:
            m.noGradInput()
            if m.parameters()[0]:
                break
        return self

    def _backward_pass(self, input, gradOutput, step):
        g = gradOutput
        for i in range(len(self.modules) - 1, -1, -1):
            if g is None:  # child i + 1 skipped its gradInput (noGradInput): no parameters before it
                break
            m = self.modules[i]
            x = self.modules[i - 1].output if i > 0 else input
            g = child_call(self, i, m, step, m, x, g)
        return g

    def __repr__(self):
        n = len(self.modules)
        chain = " -> ".join(["input"] + [f"({i})" for i in range(n)] + ["output"])
        lines = [self.typename() + " {", f"  [{chain}]"]
        for i, m in enumerate(self.modules):
            lines.append(f"  ({i}): " + repr(m).replace("\n", "\n  "))
        lines.append("}")
        return "\n".join(lines)


class _Branches(Container):
    """Children side by side: child i gets ``_branch_input(input, i)``; output[i] is its output.

    Backward hands child i ``gradOutput[i]`` and combines the children's gradInputs
    with ``_combine``. ``backward`` calls each child's ``backward`` (not its two
    halves) so children that override ``backward`` behave as in a ``Sequential``.
    """

    def _branch_input(self, input, i):
        raise NotImplementedError

    def _combine(self, input, grads):
        raise NotImplementedError

    def _check_input(self, input):
        if not self.modules:
            raise ValueError(f"{self.typename()}: the container has no children; add some first")

    def _check_grad(self, gradOutput):
        check_table(self, gradOutput, len(self.modules), what="gradOutput")

    def updateOutput(self, input):
        self._check_input(input)
        self.output = [child_call(self, i, m, m.updateOutput, self._branch_input(input, i))
                       for i, m in enumerate(self.modules)]
        return self.output

    def _backward_each(self, input, gradOutput, step):
        self._check_input(input)
        self._check_grad(gradOutput)
        return [child_call(self, i, m, step, m, self._branch_input(input, i), gradOutput[i])
                for i, m in enumerate(self.modules)]

    def updateGradInput(self, input, gradOutput):
        grads = self._backward_each(input, gradOutput, lambda m, x, g: m.updateGradInput(x, g))
        self.gradInput = self._combine(input, grads)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._backward_each(input, gradOutput, lambda m, x, g: m.accGradParameters(x, g, scale))

    def backward(self, input, gradOutput, scale=1.0):
        grads = self._backward_each(input, gradOutput, lambda m, x, g: m.backward(x, g, scale))
        self.gradInput = self._combine(input, grads)
        return self.gradInput

    def __repr__(self):
        # Torch's drawing: one branch per child, the last one closing the tree
        lines = [self.typename() + " {", "  input"]
        for i, m in enumerate(self.modules):
            last = i == len(self.modules) - 1
            head, cont = ("   `-> ", "       ") if last else ("  |`-> ", "  |    ")
            lines.append(f"  {head}({i}): " + repr(m).replace("\n", "\n  " + cont))
        lines += ["     ... -> output", "}"]
        return "\n".join(lines)


class ConcatTable(_Branches):
    """Every child gets the same input: ``output = [m_0(input), m_1(input), ...]``.

    Since the input feeds every branch, ``dL/dinput = sum_i gradInput_i`` (the
    children's gradInputs); with a table input the sum is taken leaf by leaf.
    Each child's gradInput must nest like the input.
    """

    def _branch_input(self, input, i):
        return input

    def _combine(self, input, grads):
        for i, g in enumerate(grads):
            check_same_structure(self, input, g, "input", f"the gradInput of child ({i})")
        return map_table(lambda *gs: sum(gs[1:], gs[0]), *grads)


class ParallelTable(_Branches):
    """Child i gets ``input[i]``: ``output = [m_0(input[0]), m_1(input[1]), ...]``.

    ``gradInput[i]`` is child i's gradInput. The input table must have exactly one
    entry per child (Torch ignored extra entries; here they are an error).
    """

    def _branch_input(self, input, i):
        return input[i]

    def _check_input(self, input):
        super()._check_input(input)
        check_table(self, input, len(self.modules))

    def _combine(self, input, grads):
        return grads


class Concat(ConcatTable):
    """``Concat(dimension)``: every child gets the same input and their outputs are joined along
    axis ``dimension`` (0-based, of the children's outputs, batch axis included; negative counts
    from the end; Torch's 1-based ``Concat(2)`` on (B, C, ...) outputs is ``Concat(1)``).

    ``y = concat(m_0(x), m_1(x), ...)``; the children's outputs must agree on every other axis.
    Backward hands child i the slab of gy its output filled, and as in ``ConcatTable``
    ``dL/dx = sum_i gradInput_i``.
    """

    #: what the children's outputs must share, for messages
    _rule = "they must agree on every axis"

    def __init__(self, dimension, *modules):
        self.dimension = int(dimension)
        super().__init__(*modules)

    @staticmethod
    def _fits(a, b, d):
        """Whether output shapes a and b may be joined along axis d."""
        return all(x == y for k, (x, y) in enumerate(zip(a, b)) if k != d)

    def _windows(self, outs):
        """The output's shape and, per child, the index of its window in the output."""
        for i, o in enumerate(outs):
            check_array(self, o, range(1, 65), what=f"the output of child ({i})")
        first = outs[0]
        d = self.dimension + first.ndim if self.dimension < 0 else self.dimension
        if not 0 <= d < first.ndim:
            raise ValueError(f"{self.typename()}: dimension {self.dimension} is out of range for "
                             f"the children's {first.ndim}-D outputs")
        shape = list(first.shape)
        for i, o in enumerate(outs[1:], 1):
            if o.ndim != first.ndim or not self._fits(o.shape, shape, d):
                raise ValueError(f"{self.typename()}: the output of child ({i}) has shape "
                                 f"{tuple(o.shape)} but child (0)'s is {tuple(first.shape)}; "
                                 f"{self._rule} but {d}")
            shape = [max(a, b) for a, b in zip(shape, o.shape)]
        shape[d] = sum(o.shape[d] for o in outs)
        windows, offset = [], 0
        for o in outs:
            index = [slice((n - k) // 2, (n - k) // 2 + k) for n, k in zip(shape, o.shape)]
            index[d] = slice(offset, offset + o.shape[d])
            offset += o.shape[d]
            windows.append(tuple(index))
        return tuple(shape), windows

    def updateOutput(self, input):
        outs = super().updateOutput(input)
        shape, windows = self._windows(outs)
        y = get_xp(*outs).zeros(shape, dtype=outs[0].dtype)
        for o, w in zip(outs, windows):
            y[w] = o
        self.output = y
        return self.output

    def _split(self, gradOutput):
        """gy cut into the children's windows (contiguous copies)."""
        if not self.modules:
            raise ValueError(f"{self.typename()}: the container has no children; add some first")
        shape, windows = self._windows([m.output for m in self.modules])
        check_shape(self, gradOutput, shape)
        return [get_xp(gradOutput).ascontiguousarray(gradOutput[w]) for w in windows]

    def updateGradInput(self, input, gradOutput):
        return super().updateGradInput(input, self._split(gradOutput))

    def accGradParameters(self, input, gradOutput, scale=1.0):
        super().accGradParameters(input, self._split(gradOutput), scale)

    def backward(self, input, gradOutput, scale=1.0):
        return super().backward(input, self._split(gradOutput), scale)


class DepthConcat(Concat):
    """``DepthConcat(dimension)``: ``Concat`` for children whose outputs differ in size on the other
    axes too (Inception's branches). The output takes the largest size on every other axis;
    each child's output sits centred in its window (offset ``(n - k) // 2`` on an axis of size n
    for an output of size k, Torch's rule), zeros around it.

    Every element of the output is either one child's output element or a constant 0, so child
    i's gradOutput is gy cut to its centred window, and ``dL/dx = sum_i gradInput_i``.
    """

    _rule = "they must have as many axes"

    @staticmethod
    def _fits(a, b, d):
        return True
