"""Transposed convolution (Torch's SpatialFullConvolution), built from the GEMMs of ``conv_ops``."""
from . import init
from .backend import get_xp, new_parameter
from .checks import check_array, check_int, check_matches_params, check_shape, check_spatial, check_table
from .conv import SpatialConvolution, geometry_repr, set_geometry
from .conv_ops import conv2d, conv2d_acc_grad_params, conv2d_grad_input
from .module import Module


class SpatialFullConvolution(Module):
    """``SpatialFullConvolution(nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=0,
    adjW=0, adjH=0)``: the transposed ("fractionally strided") convolution.

    For x (B, C, H, W) or (C, H, W) with C = nInputPlane, W (nInputPlane, nOutputPlane, kH, kW)
    and bias (nOutputPlane,), every input pixel spreads a kernel-sized patch over the output::

        y[b, o, u, v] = bias[o] + sum_{c, p, q, i, j : p dH + i - padH = u, q dW + j - padW = v}
                                  W[c, o, i, j] x[b, c, p, q]

    with ``oH = (H - 1) dH - 2 padH + kH + adjH`` (likewise oW); ``adj < stride`` adds rows and
    columns at the bottom and right that the strided windows reach only through padding.

    Written as an ordinary convolution ``conv`` with weight W read as (F = nInputPlane,
    C = nOutputPlane, kH, kW) from an oH x oW image to an H x W one, the forward pass is that
    convolution's input gradient (``y = conv^T x``), so all three products are the GEMMs of
    ``nnlite.conv_ops`` with the roles exchanged:

    * forward          ``y = conv2d_grad_input(x)`` (``col2im(W2^T x)``) ``+ bias``;
    * ``dL/dx = conv(gy)``: ``dL/dx[b, c, p, q] = sum_{o, i, j} W[c, o, i, j] gy[b, o, p dH + i - padH, q dW + j - padW]``;
    * ``dL/dW[c, o, i, j] = sum_{b, p, q} x[b, c, p, q] gy[b, o, p dH + i - padH, q dW + j - padW]``
      (the weight gradient of ``conv`` with gy as its input and x as its output gradient);
    * ``dL/dbias[o] = sum_{b, u, v} gy[b, o, u, v]``.

    Init: Torch's, W and bias ~ U(+-1/sqrt(nInputPlane kH kW)). ``noBias()`` removes the bias.
    Torch's table form: given ``[x, target]``, the adj that makes the output as large as the
    target's last two axes is used instead of adjW/adjH (``adj = (target + 2 pad - k) mod
    stride``), and gradInput is ``[dL/dx, zeros like target]``.
    """

    def __init__(self, nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=0, adjW=0, adjH=0):
        super().__init__()
        set_geometry(self, nInputPlane, nOutputPlane, kW, kH, dW, dH, padW, padH)
        self.adjW = check_int(self, adjW, "adjW", minimum=0)
        self.adjH = check_int(self, adjH, "adjH", minimum=0)
        if self.adjW >= self.dW or self.adjH >= self.dH:
            raise ValueError(f"{self.typename()}: adjW and adjH must be smaller than dW and dH "
                             f"(Torch's rule), got adj {self.adjW},{self.adjH} for stride "
                             f"{self.dW},{self.dH}")
        shape = (self.nInputPlane, self.nOutputPlane, self.kH, self.kW)
        self.weight, self.gradWeight = new_parameter(*shape), new_parameter(*shape)
        self.bias, self.gradBias = new_parameter(self.nOutputPlane), new_parameter(self.nOutputPlane)
        self.reset()

    def reset(self, stdv=None):
        """Torch's reset: U(+-1/sqrt(nInputPlane kH kW)), or U(+-stdv sqrt(3)) given ``stdv``."""
        init.reset_(stdv, (self.nInputPlane * self.kH * self.kW) ** -0.5, self.weight, self.bias)
        return self

    # bias removal and the stride/padding arguments of conv_ops as the forward convolution's
    noBias = SpatialConvolution.noBias
    _geometry = SpatialConvolution._geometry

    def _check(self, input):
        """Checks; returns x as (B, C, H, W), the output shape (B, nOutputPlane, oH, oW) and the
        image x itself (``input``, or ``input[0]`` of the table form)."""
        x, target = input, None
        if isinstance(input, (list, tuple)):
            check_table(self, input, 2)
            x, target = input
            check_array(self, target, range(2, 65), what="input[1] (the target)")
        x4 = check_spatial(self, x, self.nInputPlane, what="input" if target is None else "input[0]")
        check_matches_params(self, x, self.weight)
        B, _, H, W = x4.shape
        if target is None:
            adjH, adjW = self.adjH, self.adjW
        else:  # Torch's rule: the adj that reaches the target's size
            adjH = (target.shape[-2] + 2 * self.padH - self.kH) % self.dH
            adjW = (target.shape[-1] + 2 * self.padW - self.kW) % self.dW
        oH = (H - 1) * self.dH - 2 * self.padH + self.kH + adjH
        oW = (W - 1) * self.dW - 2 * self.padW + self.kW + adjW
        if oH < 1 or oW < 1:
            raise ValueError(f"{self.typename()}: input image {H}x{W} gives an empty {oH}x{oW} "
                             f"output (padding {self.padH},{self.padW} crops more than there is)")
        if target is not None and (oH, oW) != tuple(target.shape[-2:]):
            raise ValueError(f"{self.typename()}: no adj reaches the target's {target.shape[-2]}x"
                             f"{target.shape[-1]} from a {H}x{W} input (it gives {oH}x{oW})")
        return x4, (B, self.nOutputPlane, oH, oW), x

    def updateOutput(self, input):
        x4, out_shape, x = self._check(input)
        y = conv2d_grad_input(x4, self.weight, out_shape, **self._geometry())
        if self.bias is not None:
            y += self.bias.reshape(-1, 1, 1)
        self.output = y.reshape(x.shape[:-3] + out_shape[1:])
        return self.output

    def _check_grad(self, input, gradOutput):
        x4, out_shape, x = self._check(input)
        check_shape(self, gradOutput, x.shape[:-3] + out_shape[1:])
        return x4, gradOutput.reshape(out_shape), x

    def updateGradInput(self, input, gradOutput):
        x4, gy, x = self._check_grad(input, gradOutput)
        gx = conv2d(gy, self.weight, None, **self._geometry()).reshape(x.shape)
        # the target only gives a size: its gradient is zero, as in Torch
        self.gradInput = gx if x is input else [gx, get_xp(gx).zeros_like(input[1])]
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        x4, gy, _ = self._check_grad(input, gradOutput)
        conv2d_acc_grad_params(gy, x4, self.gradWeight, None, scale, **self._geometry())
        if self.bias is not None:
            self.gradBias += scale * gy.sum(axis=(0, 2, 3))

    def extra_repr(self):
        s = geometry_repr(self)
        if self.adjW or self.adjH:
            s += f", {self.adjW},{self.adjH}"
        return s + (")" if self.bias is not None else ") without bias")
