"""Learned element-wise scaling: one scalar (``Mul``) or one factor per element (``CMul``)."""
from . import init
from .backend import new_parameter
from .checks import ANY_RANK, check_array, check_matches_params, check_same_shape, check_sizes
from .module import Module


class _Scale(Module):
    """``y = x * w`` with a weight broadcast against the input (the output keeps x's shape).

    ``dL/dx = w * gy``; ``dL/dw = sum of x * gy`` over the axes along which w was
    broadcast (leading axes, and axes where w has size 1), so gradWeight keeps w's shape.
    """
    parameter_names = ("weight",)

    def reset(self, stdv=None):
        """Torch's reset: U(+-1/sqrt(weight.size)), or U(+-stdv sqrt(3)) given ``stdv``."""
        init.reset_(stdv, 1.0 / self.weight.size ** 0.5, self.weight)
        return self

    def _check(self, input):
        check_array(self, input, ANY_RANK)
        check_matches_params(self, input, self.weight)

    def _check_grad(self, input, gradOutput):
        self._check(input)
        check_array(self, gradOutput, ANY_RANK, what="gradOutput")
        check_same_shape(self, input, gradOutput)

    def _factor(self):
        """The weight as it multiplies the input."""
        return self.weight

    def updateOutput(self, input):
        self._check(input)
        self.output = input * self._factor()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        self.gradInput = gradOutput * self._factor()
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._check_grad(input, gradOutput)
        self.gradWeight += scale * _sum_to_shape(input * gradOutput, self.weight.shape)


def _sum_to_shape(a, shape):
    """Sum ``a`` over the axes along which an array of ``shape`` was broadcast to ``a.shape``."""
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead))) if lead else a
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    return (a.sum(axis=ones, keepdims=True) if ones else a).reshape(shape)


class Mul(_Scale):
    """``Mul(value=None)``: ``y = w x`` with one learned scalar w (weight of shape (1,)).

    ``dL/dx = w gy``; ``dL/dw = sum(x * gy)`` over every element. Init: Torch's
    U(-1, 1), or ``value`` when given (e.g. the flow regressor's 2/h).
    """

    def __init__(self, value=None):
        super().__init__()
        self.weight, self.gradWeight = new_parameter(1), new_parameter(1)
        if value is None:
            self.reset()
        else:
            self.weight.fill(value)

    def _factor(self):
        return self.weight[0]  # a scalar, so a 0-d input is not broadcast up to shape (1,)


class CMul(_Scale):
    """``CMul(*size)``: ``y = x * W`` element-wise with a learned W of shape ``size``.

    W broadcasts against x as NumPy does, aligned on the trailing axes, and the output
    keeps x's shape: ``CMul(C, H, W)`` on (B, C, H, W) shares W over the batch,
    ``CMul(C, 1, 1)`` scales each channel (Torch's expandAs). Torch also accepted an
    input with W's element count in another shape; nnlite asks for a broadcastable one.
    ``dL/dW`` sums ``x * gy`` over the broadcast axes. Init: Torch's U(+-1/sqrt(W.size)).
    """

    def __init__(self, *size):
        super().__init__()
        self.size = check_sizes(self, size)
        self.weight, self.gradWeight = new_parameter(*self.size), new_parameter(*self.size)
        self.reset()

    def _check(self, input):
        super()._check(input)
        tail = input.shape[input.ndim - len(self.size):] if input.ndim >= len(self.size) else None
        if tail is None or any(w not in (1, n) for w, n in zip(self.size, tail)):
            raise ValueError(f"{self.typename()}: input must end with axes matching the weight "
                             f"{self.size} (or 1 where the weight has 1), got shape {tuple(input.shape)}")

    def extra_repr(self):
        return "(" + "x".join(str(n) for n in self.size) + ")"
