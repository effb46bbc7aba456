"""Spatial padding: zeros (or cropping) and reflection, on (C, H, W) or (B, C, H, W) inputs.

Both take Torch's ``(pad_l, pad_r=pad_l, pad_t=pad_l, pad_b=pad_l)``: columns added on the
left and right, rows on the top and bottom.
"""
from .backend import get_xp, scatter_add
from .checks import check_int, check_shape, check_spatial
from .module import Module


class _SpatialPadding(Module):
    parameter_names = ()
    _minimum = 0  # smallest pad accepted

    def __init__(self, pad_l, pad_r=None, pad_t=None, pad_b=None):
        super().__init__()
        m = self._minimum
        self.pad_l = check_int(self, pad_l, "pad_l", minimum=m)
        self.pad_r = self.pad_l if pad_r is None else check_int(self, pad_r, "pad_r", minimum=m)
        self.pad_t = self.pad_l if pad_t is None else check_int(self, pad_t, "pad_t", minimum=m)
        self.pad_b = self.pad_l if pad_b is None else check_int(self, pad_b, "pad_b", minimum=m)

    def _out_hw(self, input):
        """Checks; the padded (height, width)."""
        x4 = check_spatial(self, input)
        H, W = x4.shape[-2:]
        oH, oW = H + self.pad_t + self.pad_b, W + self.pad_l + self.pad_r
        if oH < 1 or oW < 1:
            raise ValueError(f"{self.typename()}: padding {self._pads()} leaves nothing of a "
                             f"{H}x{W} image (height x width)")
        return oH, oW

    def _check_grad(self, input, gradOutput):
        check_shape(self, gradOutput, input.shape[:-2] + self._out_hw(input))

    def _pads(self):
        return f"{self.pad_l}, {self.pad_r}, {self.pad_t}, {self.pad_b}"

    def extra_repr(self):
        return f"(l={self.pad_l}, r={self.pad_r}, t={self.pad_t}, b={self.pad_b})"


def _overlap(n, before, after):
    """Along one axis of length n padded by ``before``/``after`` (negative crops):
    (slice of the output, slice of the input) holding the same pixels."""
    src = slice(max(-before, 0), n - max(-after, 0))
    start = max(before, 0)
    return slice(start, start + src.stop - src.start), src


class SpatialZeroPadding(_SpatialPadding):
    """``SpatialZeroPadding(pad_l, pad_r=pad_l, pad_t=pad_l, pad_b=pad_l)``: zeros around the image;
    a negative pad crops that many rows/columns instead, as in Torch.

    ``y[..., t + u, l + v] = x[..., u, v]`` wherever both exist, 0 elsewhere (shape
    ``(H + t + b, W + l + r)``). Each input pixel is copied to at most one output pixel, so
    ``dL/dx[..., u, v] = gy[..., t + u, l + v]`` for the pixels kept, 0 for cropped ones.
    """
    _minimum = -2 ** 62

    def _slices(self, input):
        H, W = input.shape[-2:]
        (dh, sh), (dw, sw) = _overlap(H, self.pad_t, self.pad_b), _overlap(W, self.pad_l, self.pad_r)
        return (Ellipsis, dh, dw), (Ellipsis, sh, sw)

    def updateOutput(self, input):
        oH, oW = self._out_hw(input)
        dst, src = self._slices(input)
        y = get_xp(input).zeros(input.shape[:-2] + (oH, oW), dtype=input.dtype)
        y[dst] = input[src]
        self.output = y
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        dst, src = self._slices(input)
        g = get_xp(gradOutput).zeros(input.shape, dtype=gradOutput.dtype)
        g[src] = gradOutput[dst]
        self.gradInput = g
        return self.gradInput


def _planes(a):
    """(..., H, W) as (planes, H W) (also for an empty batch)."""
    hw = a.shape[-2] * a.shape[-1]
    return a.reshape(a.size // hw, hw)


class SpatialReflectionPadding(_SpatialPadding):
    """``SpatialReflectionPadding(pad_l, pad_r=pad_l, pad_t=pad_l, pad_b=pad_l)``: pads with the
    mirror image of the input, the edge pixel itself not repeated (each pad smaller than the side
    it mirrors).

    ``y[..., i, j] = x[..., r(i - t, H), r(j - l, W)]`` with ``r(k, n) = |k|`` for k < 0,
    ``2 (n - 1) - k`` for k >= n, else k. One input pixel may feed several output pixels,
    so ``dL/dx[..., u, v] = sum of gy[..., i, j] over the (i, j) that read (u, v)`` (a
    scatter-add over the flattened image).
    """

    def _source(self, xp, input):
        """Flat index ``r(i - t) W + r(j - l)`` into the input image of every output pixel (oH, oW)."""
        H, W = input.shape[-2:]
        if max(self.pad_t, self.pad_b) >= H or max(self.pad_l, self.pad_r) >= W:
            raise ValueError(f"{self.typename()}: each pad must be smaller than the side it mirrors; "
                             f"got pads (l, r, t, b) = ({self._pads()}) for a {H}x{W} image")

        def mirror(n, before, after):
            k = xp.abs(xp.arange(-before, n + after))
            return xp.where(k >= n, 2 * (n - 1) - k, k)
        return mirror(H, self.pad_t, self.pad_b)[:, None] * W + mirror(W, self.pad_l, self.pad_r)

    def updateOutput(self, input):
        oH, oW = self._out_hw(input)
        source = self._source(get_xp(input), input)
        self.output = _planes(input)[:, source].reshape(input.shape[:-2] + (oH, oW))
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        xp = get_xp(gradOutput)
        g = xp.zeros(_planes(input).shape, dtype=gradOutput.dtype)
        scatter_add(g, (slice(None), self._source(xp, input)), gradOutput.reshape((len(g),) + gradOutput.shape[-2:]))
        self.gradInput = g.reshape(input.shape)
        return self.gradInput
