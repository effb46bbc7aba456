"""Containers: modules made of modules.

Errors raised by a child are re-raised with the child's index and type in front,
so ``Sequential (2) nn.Linear: input must be ...`` says exactly which layer failed.
"""
from .module import Module


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


class Sequential(Container):
    """Chains children: ``output = m_{n-1}( ... m_1(m_0(input)))``.

    Backward runs the chain in reverse: child i receives the gradInput of child
    i+1 as its gradOutput, and its own input is the output of child i-1.
    """

    def updateOutput(self, input):
        x = input
        for i, m in enumerate(self.modules):
            x = child_call(self, i, m, m.updateOutput, x)
        self.output = x
        return x

    def _backward_chain(self, input, gradOutput, step):
        g = gradOutput
        for i in range(len(self.modules) - 1, -1, -1):
            m = self.modules[i]
            x = self.modules[i - 1].output if i > 0 else input
            g = child_call(self, i, m, step, m, x, g)
        return g

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._backward_chain(
            input, gradOutput, lambda m, x, g: m.updateGradInput(x, g))
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        def step(m, x, g):
            m.accGradParameters(x, g, scale)
            return m.gradInput
        self._backward_chain(input, gradOutput, step)

    def backward(self, input, gradOutput, scale=1.0):
        self.gradInput = self._backward_chain(
            input, gradOutput, lambda m, x, g: m.backward(x, g, scale))
        return self.gradInput

    def __repr__(self):
        n = len(self.modules)
        chain = " -> ".join(["input"] + [f"({i})" for i in range(n)] + ["output"])
        lines = [self.typename() + " {", f"  [{chain}]"]
        for i, m in enumerate(self.modules):
            lines.append(f"  ({i}): " + repr(m).replace("\n", "\n  "))
        lines.append("}")
        return "\n".join(lines)
