"""2-D convolution layer (Torch's SpatialConvolution, computed as SpatialConvolutionMM)."""
from . import init
from .backend import new_parameter
from .checks import (check_int, check_matches_params, check_nonempty_batch, check_shape, check_spatial,
                     check_window_fits)
from .conv_ops import conv2d, conv2d_acc_grad_params, conv2d_backward, conv2d_grad_input, out_size
from .module import Module


def set_geometry(module, nInputPlane, nOutputPlane, kW, kH, dW, dH, padW, padH):
    """Check and set a convolution's planes, kernel, stride and padding (Torch's names)."""
    module.nInputPlane = check_int(module, nInputPlane, "nInputPlane")
    module.nOutputPlane = check_int(module, nOutputPlane, "nOutputPlane")
    module.kW, module.kH = check_int(module, kW, "kW"), check_int(module, kH, "kH")
    module.dW, module.dH = check_int(module, dW, "dW"), check_int(module, dH, "dH")
    module.padW = check_int(module, padW, "padW", minimum=0)
    module.padH = check_int(module, padH, "padH", minimum=0)


def geometry_repr(m):
    """Torch's ``(nIn -> nOut, kWxkH[, dW,dH][, padW,padH]``, without the closing bracket."""
    s = f"({m.nInputPlane} -> {m.nOutputPlane}, {m.kW}x{m.kH}"
    if (m.dW, m.dH, m.padW, m.padH) != (1, 1, 0, 0):
        s += f", {m.dW},{m.dH}"
    if m.padW or m.padH:
        s += f", {m.padW},{m.padH}"
    return s


class SpatialConvolution(Module):
    """``SpatialConvolution(nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=padW)``.

    Cross-correlation with zero padding, for x (B, C, H, W) or (C, H, W) with
    C = nInputPlane::

        y[b, f, p, q] = bias[f] + sum_{c, i, j} W[f, c, i, j] xpad[b, c, p dH + i, q dW + j]

    Shapes: W (nOutputPlane, nInputPlane, kH, kW), bias (nOutputPlane,), y (B, F, Ho, Wo)
    with ``Ho = (H + 2 padH - kH) // dH + 1`` (likewise Wo); a 3-D input gives a 3-D output.

    Gradients (``gy = dL/dy``; see ``nnlite.conv_ops`` for the im2col form):

    * ``dL/dx[b, c, u, v] = sum_{f, i, j} W[f, c, i, j] gy[b, f, p, q]`` over the (p, q)
      whose window reads pixel (u, v) at offset (i, j): the transposed convolution, done
      as ``col2im(W2^T gy)``;
    * ``dL/dW[f, c, i, j] = sum_{b, p, q} gy[b, f, p, q] xpad[b, c, p dH + i, q dW + j]``;
    * ``dL/dbias[f] = sum_{b, p, q} gy[b, f, p, q]``.

    Init: Torch's, W and bias ~ U(+-1/sqrt(nInputPlane kH kW)). ``noBias()`` removes the bias.
    The im2col columns are rebuilt in the backward pass rather than kept from the
    forward pass: they are kH kW times the input's size, too much to hold per time step.
    """

    def __init__(self, nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=None):
        super().__init__()
        set_geometry(self, nInputPlane, nOutputPlane, kW, kH, dW, dH, padW, padW if padH is None else padH)
        shape = (self.nOutputPlane, self.nInputPlane, self.kH, self.kW)
        self.weight, self.gradWeight = new_parameter(*shape), new_parameter(*shape)
        self.bias, self.gradBias = new_parameter(self.nOutputPlane), new_parameter(self.nOutputPlane)
        self.reset()

    def reset(self, stdv=None):
        """Torch's reset: U(+-1/sqrt(nInputPlane kH kW)), or U(+-stdv sqrt(3)) given ``stdv``."""
        init.reset_(stdv, 1.0 / init.fans(self.weight)[0] ** 0.5, self.weight, self.bias)
        return self

    def noBias(self):
        self.bias = self.gradBias = None
        return self

    def _geometry(self):
        return dict(dH=self.dH, dW=self.dW, padH=self.padH, padW=self.padW)

    def _check(self, input):
        x4 = check_spatial(self, input, self.nInputPlane)
        check_nonempty_batch(self, x4, input)
        check_window_fits(self, x4, self.kH, self.kW, self.padH, self.padW)
        check_matches_params(self, input, self.weight)
        return x4

    def _output_shape(self, input):
        H, W = input.shape[-2:]
        hw = (out_size(H, self.kH, self.dH, self.padH), out_size(W, self.kW, self.dW, self.padW))
        return input.shape[:-3] + (self.nOutputPlane,) + hw

    def updateOutput(self, input):
        x4 = self._check(input)
        y = conv2d(x4, self.weight, self.bias, **self._geometry())
        self.output = y.reshape(self._output_shape(input))
        return self.output

    def _check_grad(self, input, gradOutput):
        x4 = self._check(input)
        check_shape(self, gradOutput, self._output_shape(input))
        return x4, gradOutput.reshape((x4.shape[0],) + gradOutput.shape[-3:])

    def updateGradInput(self, input, gradOutput):
        x4, gy = self._check_grad(input, gradOutput)
        gx = conv2d_grad_input(gy, self.weight, x4.shape, **self._geometry())
        self.gradInput = gx.reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        x4, gy = self._check_grad(input, gradOutput)
        conv2d_acc_grad_params(x4, gy, self.gradWeight, self.gradBias, scale, **self._geometry())

    def backward(self, input, gradOutput, scale=1.0):
        """``updateGradInput`` and ``accGradParameters(scale)`` in one pass (``conv2d_backward``):
        same numbers, but gradOutput is laid out for the GEMMs once instead of twice."""
        x4, gy = self._check_grad(input, gradOutput)
        gx = conv2d_backward(gy, self.weight, x4.shape, x4, self.gradWeight, self.gradBias, scale,
                             need_input=self.gradInputNeeded, **self._geometry())
        self.gradInput = None if gx is None else gx.reshape(input.shape)
        return self.gradInput

    def extra_repr(self):
        return geometry_repr(self) + (")" if self.bias is not None else ") without bias")
