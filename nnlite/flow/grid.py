"""The grid generator GG of the paper (section 3.2.3): one displacement per pixel.

The original Torch module is ``AffineGridGeneratorOpticalFlow2D`` (viorik/ConvLSTM,
``DenseTransformer2D.lua``). Coordinates are *normalised*: -1 and +1 are the
centres of the first and last pixel along an axis, the convention of the
sampler (``BilinearSampler``, "align corners").
"""
from ..backend import get_xp
from ..checks import check_int, check_shape, check_spatial
from ..module import Module


def base_grid(xp, height, width, dtype="float32"):
    """The identity grid, (height, width, 2) ordered (y, x).

    ``grid[i, j] = (-1 + 2 i/(height-1), -1 + 2 j/(width-1))`` (0-based): sampling an
    image of the same size at this grid returns the image. Each point is computed as
    ``(2 i - (n - 1)) / (n - 1)``: numerator and denominator are integers, exact in
    ``dtype``, and one correctly rounded division makes the closest ``dtype`` value
    to the exact point, with no float64 array (slow on GPUs).
    """
    ys = (2 * xp.arange(height, dtype=dtype) - (height - 1)) / (height - 1)
    xs = (2 * xp.arange(width, dtype=dtype) - (width - 1)) / (width - 1)
    grid = xp.empty((height, width, 2), dtype=dtype)
    grid[..., 0] = ys[:, None]
    grid[..., 1] = xs[None, :]
    return grid


def normalise_flow(flow, height, width):
    """A flow in pixels, (..., 2, h, w) ordered (y, x), in the normalised units of the grid.

    ``height`` and ``width`` are those of the image the grid will sample: a
    displacement of ``d`` pixels is ``2 d / (n - 1)`` normalised units along an
    axis of ``n`` pixels. (The paper's flow regressor learns this factor, starting
    from ``2 / n``.)
    """
    xp = get_xp(flow)
    scale = xp.asarray([2.0 / (height - 1), 2.0 / (width - 1)], dtype=flow.dtype)
    return flow * scale.reshape(2, 1, 1)


class GridGenerator(Module):
    """``GridGenerator(height, width)``: sampling grid = identity grid + flow.

    Input: a flow T, (B, 2, h, w) or (2, h, w), in normalised units, channel 0 the
    **y** displacement and channel 1 the **x** displacement, with (h, w) = (height,
    width). Output: the grid G, (B, h, w, 2) or (h, w, 2), ordered (y, x)::

        G[b, i, j, 0] = -1 + 2 i/(h-1) + T[b, 0, i, j]
        G[b, i, j, 1] = -1 + 2 j/(w-1) + T[b, 1, i, j]

    (the paper's equation (3): the source point of output pixel (i, j) is the pixel
    itself moved by the flow).

    Gradient: G is the base grid plus a transposed copy of T, so
    ``dL/dT[b, c, i, j] = dL/dG[b, i, j, c]``: the gradient is moved back to the
    channel-first layout, nothing else. No parameters.
    """
    parameter_names = ()

    def __init__(self, height, width):
        super().__init__()
        # the base grid steps by 2/(n-1): one row or column has no span to normalise
        self.height = check_int(self, height, "height", minimum=2)
        self.width = check_int(self, width, "width", minimum=2)

    def _check(self, input):
        x4 = check_spatial(self, input, channels=2, what="flow")
        if tuple(x4.shape[2:]) != (self.height, self.width):
            raise ValueError(f"{self.typename()}: flow must be {self.height}x{self.width} (height "
                             f"x width, set in the constructor), got {x4.shape[2]}x{x4.shape[3]}")

    def updateOutput(self, input):
        self._check(input)
        xp = get_xp(input)
        self.output = base_grid(xp, self.height, self.width, input.dtype) + xp.moveaxis(input, -3, -1)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check(input)
        check_shape(self, gradOutput, input.shape[:-3] + (self.height, self.width, 2))
        xp = get_xp(gradOutput)
        self.gradInput = xp.ascontiguousarray(xp.moveaxis(gradOutput, -1, -3))
        return self.gradInput

    def extra_repr(self):
        return f"({self.height}x{self.width})"
