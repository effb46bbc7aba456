"""Element-wise transfer functions. Each is ``y = f(x)`` with ``dL/dx = f'(x) * dL/dy``."""
from .backend import get_xp
from .checks import check_array, check_same_shape
from .module import Module

_ANY_RANK = tuple(range(0, 9))


class _Elementwise(Module):
    parameter_names = ()

    def _check(self, input):
        return check_array(self, input, _ANY_RANK)

    def _check_grad(self, input, gradOutput):
        check_array(self, gradOutput, _ANY_RANK, what="gradOutput")
        check_same_shape(self, input, gradOutput)


class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dL/dx = (1 - y^2) * dL/dy`` (uses the stored output)."""

    def updateOutput(self, input):
        self._check(input)
        self.output = get_xp(input).tanh(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        self.gradInput = gradOutput * (1 - self.output * self.output)
        return self.gradInput
