"""Element-wise transfer functions. Each is ``y = f(x)`` with ``dL/dx = f'(x) * dL/dy``.

A subclass writes ``_forward(xp, x) -> y`` and ``_backward(x, y, gy) -> dL/dx``; the
base class validates, stores ``output``/``gradInput`` and accepts any rank.
"""
from .backend import get_xp
from .checks import ANY_RANK, check_array, check_same_shape
from .module import Module


class _Elementwise(Module):
    parameter_names = ()
    #: True when ``_backward`` reads the stored output ``y``: backward then needs the
    #: forward of this input (a stale output of another shape would broadcast silently)
    uses_output = False

    def _check(self, input):
        return check_array(self, input, ANY_RANK)

    def _check_grad(self, input, gradOutput):
        check_array(self, gradOutput, ANY_RANK, what="gradOutput")
        check_same_shape(self, input, gradOutput)
        if self.uses_output:
            self._check_forward_seen(None if self.output is None else self.output.shape, input)

    def updateOutput(self, input):
        self._check(input)
        self.output = self._forward(get_xp(input), input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        self.gradInput = self._backward(input, self.output, gradOutput)
        return self.gradInput


class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dL/dx = (1 - y^2) * dL/dy`` (uses the stored output)."""
    uses_output = True


    def _forward(self, xp, x):
        return xp.tanh(x)

    def _backward(self, x, y, gy):
        return gy * (1 - y * y)


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))``; ``dL/dx = y (1 - y) * dL/dy``.

    Computed from ``e = exp(-|x|) <= 1`` as ``1 / (1 + e)`` for x >= 0 and
    ``e / (1 + e)`` for x < 0: the same function, but exp never overflows and
    tiny outputs keep their relative precision.
    """
    uses_output = True


    def _forward(self, xp, x):
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

    def _backward(self, x, y, gy):
        return gy * y * (1 - y)


class ReLU(_Elementwise):
    """``y = x`` where ``x > 0``, else 0 (Torch's Threshold(0, 0), so NaN gives 0).

    ``dL/dx = dL/dy`` where ``x > 0``, else 0 (the subgradient 0 at x = 0, as in Torch).
    """

    def _forward(self, xp, x):
        return xp.where(x > 0, x, 0).astype(x.dtype, copy=False)

    def _backward(self, x, y, gy):
        return gy * (x > 0)


class Square(_Elementwise):
    """``y = x^2``; ``dL/dx = 2 x * dL/dy``."""

    def _forward(self, xp, x):
        return x * x

    def _backward(self, x, y, gy):
        return 2 * x * gy


class Sqrt(_Elementwise):
    """``y = sqrt(x)``; ``dL/dx = 0.5 / y * dL/dy``, and 0 where ``y == 0`` (Torch's rule,
    which avoids the infinite slope at 0).

    Torch returns NaN for negative inputs; nnlite raises a ValueError instead (one
    reduction over the input), since a NaN would only surface later in the loss.
    """
    uses_output = True


    def _forward(self, xp, x):
        if bool((x < 0).any()):
            raise ValueError(f"{self.typename()}: input must be >= 0, got a minimum of {float(x.min())}")
        return xp.sqrt(x)

    def _backward(self, x, y, gy):
        divisor = get_xp(y).where(y == 0, float("inf"), y)  # gy / inf is Torch's 0 at y == 0
        return (0.5 * gy / divisor).astype(gy.dtype, copy=False)


class Clamp(_Elementwise):
    """``Clamp(min, max)`` (Torch's HardTanh): ``y = min(max(x, min), max)``.

    ``dL/dx = dL/dy`` where ``min < x < max`` strictly, else 0 (Torch's rule: at the
    bounds the gradient is 0).
    """

    def __init__(self, min, max):
        super().__init__()
        self.min_val, self.max_val = float(min), float(max)
        if not self.min_val < self.max_val:
            raise ValueError(f"{self.typename()}: min must be smaller than max, got {min} and {max}")

    def _forward(self, xp, x):
        return xp.clip(x, self.min_val, self.max_val).astype(x.dtype, copy=False)

    def _backward(self, x, y, gy):
        return gy * ((x > self.min_val) & (x < self.max_val))

    def extra_repr(self):
        return f"({self.min_val:g}, {self.max_val:g})"
