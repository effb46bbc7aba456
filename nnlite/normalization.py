"""Batch normalisation (Ioffe and Szegedy 2015), as Torch's BatchNormalization and
SpatialBatchNormalization."""
import math

from . import init
from .backend import get_xp, new_parameter
from .checks import check_array, check_int, check_matches_params, check_shape, check_size
from .module import Module


class BatchNormalization(Module):
    """``BatchNormalization(nOutput, eps=1e-5, momentum=0.1, affine=True)`` for x (B, nOutput).

    Per feature c, over the n = B values of the batch (n = B H W for the spatial module)::

        mu = mean(x),  var = mean((x - mu)^2)  (biased),  s = 1 / sqrt(var + eps)
        xhat = (x - mu) s,   y = w xhat + b      (w = 1, b = 0 without affine)

    In training mode the running statistics move towards the batch's, Torch's rule with the
    unbiased variance: ``running_mean = (1 - momentum) running_mean + momentum mu``,
    ``running_var = (1 - momentum) running_var + momentum var n / (n - 1)``. In evaluate mode
    mu and var are ``running_mean`` and ``running_var`` and nothing is updated.

    Gradients (``gy = dL/dy``, sums over the n values of a feature):

    * ``dL/db = sum gy``; ``dL/dw = sum gy xhat``;
    * evaluate mode: mu and s are constants, ``dL/dx = w s gy``;
    * training mode: with ``g = w gy = dL/dxhat``, differentiating through mu and var
      (``dmu/dx_i = 1/n``, ``dvar/dx_i = 2 (x_i - mu) / n``, ``ds/dvar = -s^3 / 2``),
      ``dL/dx_i = s (g_i - mean(g) - xhat_i mean(g xhat))``.

    Init: Torch's, w ~ U(0, 1), b = 0, running_mean = 0, running_var = 1. The batch mean
    and 1/std of the last forward are kept (``save_mean``, ``save_invstd``) for backward,
    which therefore needs a forward on the same input first, as in Torch, and differentiates
    in the mode that forward ran in. A training batch
    must hold at least two values per feature (the unbiased variance divides by n - 1).
    """
    _transient = Module._transient + ("save_mean", "save_invstd", "_seen")
    #: (dims accepted, layout for messages) of the input
    _ndims, _layout = (2,), "(B, nOutput)"

    def __init__(self, nOutput, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.nOutput = check_int(self, nOutput, "nOutput")
        self.eps, self.momentum = float(eps), float(momentum)
        if not isinstance(affine, bool):
            raise TypeError(f"{self.typename()}: affine must be True or False, got {affine!r}")
        self.affine = affine
        self.running_mean = new_parameter(self.nOutput)
        self.running_var = new_parameter(self.nOutput)
        self.weight = self.bias = self.gradWeight = self.gradBias = None
        if affine:
            self.weight, self.gradWeight = new_parameter(self.nOutput), new_parameter(self.nOutput)
            self.bias, self.gradBias = new_parameter(self.nOutput), new_parameter(self.nOutput)
        self.save_mean = self.save_invstd = None
        self._seen = None  # (input shape, whether batch statistics were used) of the last forward
        self.reset()

    def reset(self):
        """Torch's reset: w ~ U(0, 1), b = 0, running_mean = 0, running_var = 1."""
        if self.affine:
            init.uniform_(self.weight, 0.0, 1.0)
            self.bias.fill(0)
        self.running_mean.fill(0)
        self.running_var.fill(1)
        return self

    def _planes(self, input):
        """Check ``input``; return it viewed as (B, nOutput, L) (L = 1, or H W when spatial)."""
        check_array(self, input, self._ndims, layout=f"{self._layout} with nOutput={self.nOutput}")
        channel_axis = 0 if input.ndim == 3 else 1  # (C, H, W): one unbatched image
        check_size(self, input.shape[channel_axis], self.nOutput, f"the input's axis {channel_axis} (nOutput)")
        check_matches_params(self, input, self.running_mean)
        batch = 1 if channel_axis == 0 else input.shape[0]
        x3 = input.reshape(batch, self.nOutput, math.prod(input.shape[channel_axis + 1:]))
        if x3.shape[0] * x3.shape[2] == 0:
            raise ValueError(f"{self.typename()}: input of shape {tuple(input.shape)} is empty; "
                             f"batch statistics need at least one value per feature")
        return x3

    def _affine(self):
        """w and b shaped (1, C, 1) (1 and 0 without affine)."""
        if not self.affine:
            return 1.0, 0.0
        return self.weight.reshape(1, -1, 1), self.bias.reshape(1, -1, 1)

    def updateOutput(self, input):
        x3 = self._planes(input)
        xp = get_xp(x3)
        if self.train:
            n = x3.shape[0] * x3.shape[2]
            if n < 2:
                raise ValueError(f"{self.typename()}: training needs at least 2 values per feature "
                                 f"to estimate a variance, got input of shape {tuple(input.shape)} "
                                 f"(call evaluate() to use the running statistics)")
            mean = x3.mean(axis=(0, 2))
            var = ((x3 - mean[:, None]) ** 2).mean(axis=(0, 2))
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * n / (n - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
        self.save_mean = mean
        self.save_invstd = 1 / xp.sqrt(var + self.eps)
        self._seen = (tuple(input.shape), bool(self.train))
        w, b = self._affine()
        xhat = (x3 - mean[:, None]) * self.save_invstd[:, None]
        self.output = (xhat * w + b).reshape(input.shape)
        return self.output

    def _xhat_grad(self, input, gradOutput):
        """Checks; returns (xhat, gy) as (B, C, L) arrays."""
        x3 = self._planes(input)
        check_shape(self, gradOutput, input.shape)
        self._check_forward_seen(None if self._seen is None else self._seen[0], input)
        xhat = (x3 - self.save_mean[:, None]) * self.save_invstd[:, None]
        return xhat, gradOutput.reshape(x3.shape)

    def updateGradInput(self, input, gradOutput):
        xhat, gy = self._xhat_grad(input, gradOutput)
        w, _ = self._affine()
        g = gy * w
        if self._seen[1]:  # the forward used batch statistics, which depend on x
            g = g - g.mean(axis=(0, 2), keepdims=True) - xhat * (g * xhat).mean(axis=(0, 2), keepdims=True)
        self.gradInput = (g * self.save_invstd[:, None]).reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        if not self.affine:
            return
        xhat, gy = self._xhat_grad(input, gradOutput)
        self.gradWeight += scale * (gy * xhat).sum(axis=(0, 2))
        self.gradBias += scale * gy.sum(axis=(0, 2))

    def extra_repr(self):
        s = f" ({self.nOutput})"
        return s if self.affine else s[:-1] + ", affine=False)"


class SpatialBatchNormalization(BatchNormalization):
    """``SpatialBatchNormalization(nOutput, eps=1e-5, momentum=0.1, affine=True)``: batch
    normalisation of x (B, nOutput, H, W) or (nOutput, H, W), one mean and variance per
    channel over batch and pixels (n = B H W); formulas and gradients as ``BatchNormalization``.
    """
    _ndims, _layout = (3, 4), "(C, H, W) or (B, C, H, W)"
