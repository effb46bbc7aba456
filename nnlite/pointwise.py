"""More element-wise functions of torch/nn: rectifier variants, SoftPlus, Abs, Exp, Log, Power
and the constant shifts and scalings. Each is ``y = f(x)``, ``dL/dx = f'(x) * dL/dy`` on inputs
of any rank (see ``activations._Elementwise``); ``PReLU`` adds a learned slope.
"""
from .activations import Clamp, _Elementwise
from .backend import get_xp, is_cupy, new_parameter
from .checks import ANY_RANK, check_array, check_int, check_matches_params, check_size


def _number(module, value, what):
    """A real constructor constant, as a Python float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{module.typename()}: {what} must be a number, got {value!r}")
    return float(value)


class LeakyReLU(_Elementwise):
    """``LeakyReLU(negval=1/100)``: ``y = x`` where ``x > 0``, else ``negval x``.

    ``dL/dx = dL/dy`` where ``x > 0``, else ``negval dL/dy`` (Torch's choice at x = 0).
    """

    def __init__(self, negval=1 / 100):
        super().__init__()
        self.negval = _number(self, negval, "negval")

    def _forward(self, xp, x):
        return xp.where(x > 0, x, x * self.negval)

    def _backward(self, x, y, gy):
        return get_xp(gy).where(x > 0, gy, gy * self.negval)

    def extra_repr(self):
        return f"({self.negval:g})"


class ELU(_Elementwise):
    """``ELU(alpha=1)`` (Clevert et al. 2015): ``y = x`` where ``x > 0``, else ``alpha (exp(x) - 1)``.

    ``dL/dx = dL/dy`` where ``x > 0``, else ``alpha exp(x) dL/dy = (y + alpha) dL/dy``.
    """
    uses_output = True

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = _number(self, alpha, "alpha")

    def _forward(self, xp, x):
        # expm1 of min(x, 0): the branch not taken never overflows
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0)))

    def _backward(self, x, y, gy):
        return get_xp(gy).where(x > 0, gy, gy * (y + self.alpha))

    def extra_repr(self):
        return f"(alpha={self.alpha:g})"


class Threshold(_Elementwise):
    """``Threshold(th=1e-6, v=0)``: ``y = x`` where ``x > th``, else ``v``.

    ``dL/dx = dL/dy`` where ``x > th``, else 0.
    """

    def __init__(self, th=1e-6, v=0.0):
        super().__init__()
        self.threshold = _number(self, th, "th")
        self.val = _number(self, v, "v")

    def _forward(self, xp, x):
        return xp.where(x > self.threshold, x, self.val).astype(x.dtype, copy=False)

    def _backward(self, x, y, gy):
        return gy * (x > self.threshold)

    def extra_repr(self):
        return f"({self.threshold:g}, {self.val:g})"


class HardTanh(Clamp):
    """``HardTanh(min_value=-1, max_value=1)``: ``Clamp`` with Torch's HardTanh defaults."""

    def __init__(self, min_value=-1.0, max_value=1.0):
        super().__init__(min_value, max_value)


class SoftPlus(_Elementwise):
    """``SoftPlus(beta=1, threshold=20)``: ``y = log(1 + exp(beta x)) / beta``, and ``y = x``
    where ``beta x > threshold`` (Torch's switch to the linear asymptote).

    ``dL/dx = sigmoid(beta x) dL/dy``, and ``dL/dy`` where ``beta x > threshold``.
    Computed as ``max(bx, 0) + log1p(exp(-|bx|))``, which never overflows.
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = _number(self, beta, "beta")
        self.threshold = _number(self, threshold, "threshold")
        if self.beta <= 0:
            raise ValueError(f"{self.typename()}: beta must be > 0, got {beta}")

    def _forward(self, xp, x):
        bx = self.beta * x
        soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / self.beta
        return xp.where(bx > self.threshold, x, soft).astype(x.dtype, copy=False)

    def _backward(self, x, y, gy):
        xp = get_xp(gy)
        bx = self.beta * x
        e = xp.exp(-xp.abs(bx))
        sig = xp.where(bx >= 0, 1 / (1 + e), e / (1 + e))
        return xp.where(bx > self.threshold, gy, gy * sig).astype(gy.dtype, copy=False)

    def extra_repr(self):
        return f"(beta={self.beta:g}, threshold={self.threshold:g})"


class Abs(_Elementwise):
    """``y = |x|``; ``dL/dx = sign(x) dL/dy`` (0 at x = 0, Torch's subgradient)."""

    def _forward(self, xp, x):
        return xp.abs(x)

    def _backward(self, x, y, gy):
        return gy * get_xp(x).sign(x)


class Exp(_Elementwise):
    """``y = exp(x)``; ``dL/dx = y dL/dy`` (uses the stored output)."""
    uses_output = True

    def _forward(self, xp, x):
        return xp.exp(x)

    def _backward(self, x, y, gy):
        return gy * y


class Log(_Elementwise):
    """``y = log(x)``; ``dL/dx = dL/dy / x``.

    Torch returns NaN for negative inputs; nnlite raises a ValueError instead (like ``Sqrt``)
    on NumPy. On a GPU the check would stop the device every step, so there the NaN stays, as
    in Torch, for the loss to show. ``log(0) = -inf``, as in Torch.
    """

    def _forward(self, xp, x):
        if not is_cupy(x) and bool((x < 0).any()):
            raise ValueError(f"{self.typename()}: input must be >= 0, got a minimum of {float(x.min())}")
        return xp.log(x)

    def _backward(self, x, y, gy):
        return gy / x


class Power(_Elementwise):
    """``Power(p)``: ``y = x^p``; ``dL/dx = p x^(p-1) dL/dy``.

    For a non-integer p, negative inputs give NaN, as in Torch.
    """

    def __init__(self, p):
        super().__init__()
        self.pow = _number(self, p, "p")

    def _forward(self, xp, x):
        return (x ** self.pow).astype(x.dtype, copy=False)

    def _backward(self, x, y, gy):
        return (gy * self.pow * x ** (self.pow - 1)).astype(gy.dtype, copy=False)

    def extra_repr(self):
        return f"({self.pow:g})"


class _Constant(_Elementwise):
    def __init__(self, constant_scalar):
        super().__init__()
        self.constant_scalar = _number(self, constant_scalar, "constant_scalar")

    def extra_repr(self):
        return f"({self.constant_scalar:g})"


class MulConstant(_Constant):
    """``MulConstant(constant_scalar)``: ``y = c x``; ``dL/dx = c dL/dy``."""

    def _forward(self, xp, x):
        return x * self.constant_scalar

    def _backward(self, x, y, gy):
        return gy * self.constant_scalar


class AddConstant(_Constant):
    """``AddConstant(constant_scalar)``: ``y = x + c``; ``dL/dx = dL/dy`` (a copy)."""

    def _forward(self, xp, x):
        return x + self.constant_scalar

    def _backward(self, x, y, gy):
        return gy.copy()


class PReLU(_Elementwise):
    """``PReLU(nOutputPlane=0)`` (He et al. 2015): a leaky rectifier with a learned slope,
    ``y = x`` where ``x > 0``, else ``a x``.

    With ``nOutputPlane = 0`` one slope ``a`` (weight of shape (1,)) serves every element;
    otherwise one slope per channel (weight (nOutputPlane,)), the channel axis being Torch's:
    axis 0 of a (C,) or (C, H, W) input, axis 1 of a (B, C) or (B, C, H, W) input.

    * ``dL/dx = dL/dy`` where ``x > 0``, else ``a dL/dy``;
    * ``dL/da_c = sum of x dL/dy`` over the elements of channel c with ``x <= 0``.

    Init: Torch's, every slope 0.25.
    """
    parameter_names = ("weight",)

    def __init__(self, nOutputPlane=0):
        super().__init__()
        self.nOutputPlane = check_int(self, nOutputPlane, "nOutputPlane", minimum=0)
        n = max(self.nOutputPlane, 1)
        self.weight, self.gradWeight = new_parameter(n), new_parameter(n)
        self.weight.fill(0.25)

    def _check(self, input):
        if self.nOutputPlane:
            check_array(self, input, (1, 2, 3, 4), layout="(C,), (B, C), (C, H, W) or (B, C, H, W) "
                                                           f"with C={self.nOutputPlane}")
            axis = 1 if input.ndim in (2, 4) else 0
            check_size(self, input.shape[axis], self.nOutputPlane, f"the input's axis {axis} (nOutputPlane)")
        else:
            check_array(self, input, ANY_RANK)
        check_matches_params(self, input, self.weight)
        return input

    def _slope(self, x):
        """The weight shaped to broadcast along the input's channel axis."""
        if not self.nOutputPlane:
            return self.weight[0]
        return self.weight.reshape((-1,) + (1,) * (x.ndim - (2 if x.ndim in (2, 4) else 1)))

    def _forward(self, xp, x):
        return xp.where(x > 0, x, x * self._slope(x))

    def _backward(self, x, y, gy):
        return get_xp(gy).where(x > 0, gy, gy * self._slope(x))

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._check_grad(input, gradOutput)
        xp = get_xp(input)
        g = xp.where(input > 0, 0, input * gradOutput)
        if self.nOutputPlane:
            axis = 1 if input.ndim in (2, 4) else 0
            g = g.sum(axis=tuple(a for a in range(input.ndim) if a != axis))
        else:
            g = g.sum(keepdims=True).reshape(1)
        self.gradWeight += scale * g

    def extra_repr(self):
        return f"({self.nOutputPlane})" if self.nOutputPlane else ""
