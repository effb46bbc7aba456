"""The image sampler S of the paper (section 3.2.3): bilinear sampling at a grid of points."""
from ..backend import get_xp
from ..checks import (check_array, check_nonempty_batch, check_same_kind, check_shape, check_size,
                      check_table)
from ..module import Module

# the four neighbours (dy, dx) of a sampling point, relative to the pixel above-left of it
_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _neighbours(images, grid):
    """Where each output point reads the images, and with which weights.

    ``images`` (B, C, H, W), ``grid`` (B, h, w, 2). Returns, for each corner of
    ``_CORNERS``, a tuple ``(idx, inside, wy, wx, sy, sx)`` over the P = h w points:

    * ``idx`` (B, C, P): flat indices into ``images`` of that neighbour (of pixel 0
      of the plane when the neighbour is outside the image: a harmless place to read);
    * ``inside`` (B, 1, P): whether the neighbour lies in the image;
    * ``wy``, ``wx`` (B, 1, P): the two factors of its bilinear weight ``wy * wx``;
    * ``sy``, ``sx``: ``d wy / d yc`` and ``d wx / d xc`` (+1 or -1).
    """
    xp = get_xp(images)
    B, C, H, W = images.shape
    g = grid.reshape(B, 1, -1, 2)
    # Clipping to one pixel beyond the neighbours' reach changes no result (every
    # neighbour of such a point is outside either way) and keeps the integer cast
    # below from overflowing for wild grids.
    yc = xp.clip((g[..., 0] + 1) * ((H - 1) / 2), -2, H + 1)
    xc = xp.clip((g[..., 1] + 1) * ((W - 1) / 2), -2, W + 1)
    y0, x0 = xp.floor(yc), xp.floor(xc)
    fy, fx = yc - y0, xc - x0
    y0, x0 = y0.astype(xp.int64), x0.astype(xp.int64)
    planes = (xp.arange(B * C, dtype=xp.int64) * (H * W)).reshape(B, C, 1)
    corners = []
    for dy, dx in _CORNERS:
        iy, ix = y0 + dy, x0 + dx
        inside = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
        idx = planes + xp.where(inside, iy * W + ix, 0)
        wy, sy = (fy, 1) if dy else (1 - fy, -1)
        wx, sx = (fx, 1) if dx else (1 - fx, -1)
        corners.append((idx, inside, wy, wx, sy, sx))
    return corners


def _gather(images, idx, inside):
    """The neighbour's values (B, C, P), 0 where it is outside the image (no clamping)."""
    return get_xp(images).where(inside, images.reshape(-1)[idx], 0)


class BilinearSampler(Module):
    """``BilinearSampler()``: ``output = sample(images, grid)``, input the table ``[images, grid]``.

    Shapes: images (B, C, H, W), grid (B, h, w, 2), output (B, C, h, w); or, all
    unbatched, (C, H, W) + (h, w, 2) -> (C, h, w). The original
    (``BilinearSamplerBHWD`` of qassemoquab/stnbhwd) took images and output as
    (B, H, W, C); nnlite keeps its channel-first layout instead. The numbers are the
    same, only the axes are ordered differently.

    The grid holds, for each output pixel, its source point (y, x) in normalised
    coordinates, where -1 and +1 are the centres of the border pixels ("align
    corners")::

        yc = (y + 1)(H - 1)/2,   xc = (x + 1)(W - 1)/2          (pixel units)
        y0 = floor(yc), x0 = floor(xc),  fy = yc - y0, fx = xc - x0
        out[b, c, i, j] = sum over (dy, dx) in {0, 1}^2 of
                          wy wx I[b, c, y0 + dy, x0 + dx],
                          wy = fy if dy else 1 - fy,  wx = fx if dx else 1 - fx

    where a neighbour outside the image counts as 0 (no clamping, as in the
    original): the picture fades to 0 within one pixel beyond the border, and a
    point half a pixel outside gets half the border value.

    Gradients, for ``go = dL/dout``:

    * images: each neighbour received weight ``wy wx`` times its value, so
      ``dL/dI[b, c, p] = sum over the (point, corner) pairs reading p of wy wx go``,
      a scatter-add (one ``xp.add.at`` over all four corners into a buffer of the
      images' dtype: atomic adds on a GPU, with no sync and no float64, which
      ``bincount`` would need);
    * grid: ``d out / d yc = sum over corners of (d wy / d yc) wx I``, with
      ``d wy / d yc = +1`` for the lower neighbours and -1 for the upper ones, and
      the same for x; then ``dL/dy = (H - 1)/2 sum_c go d out/d yc`` (chain rule
      through ``yc``), likewise x with (W - 1)/2. This is the exact derivative
      between pixel rows and columns; at integer ``yc`` or ``xc`` the output has a
      kink and the derivative of the side that ``floor`` picks is returned.

    No parameters.
    """
    parameter_names = ()

    def _check(self, input):
        """Returns (images, grid) as (B, C, H, W), (B, h, w, 2) and whether the input was batched."""
        images, grid = check_table(self, input, 2)
        check_array(self, images, (3, 4), "images", layout="(C, H, W) or (B, C, H, W)")
        check_array(self, grid, (3, 4), "grid", layout="(h, w, 2) or (B, h, w, 2)")
        check_size(self, grid.shape[-1], 2, "the grid's last dimension (the (y, x) pair)")
        if grid.ndim != images.ndim:
            raise ValueError(f"{self.typename()}: images and grid must both be batched "
                             f"((B, C, H, W) and (B, h, w, 2)) or both not, got shapes "
                             f"{tuple(images.shape)} and {tuple(grid.shape)}")
        check_same_kind(self, images, grid, "images", "grid")
        if images.ndim == 4:
            check_nonempty_batch(self, images, images)
        if images.ndim == 3:
            return images[None], grid[None], False
        check_size(self, grid.shape[0], images.shape[0],
                   "the grid's batch size (the images' batch size)")
        return images, grid, True

    def updateOutput(self, input):
        images, grid, batched = self._check(input)
        B, C = images.shape[:2]
        out = 0
        for idx, inside, wy, wx, _, _ in _neighbours(images, grid):
            out = out + wy * wx * _gather(images, idx, inside)
        out = out.reshape((B, C) + grid.shape[1:3])
        self.output = out if batched else out[0]
        return self.output

    def updateGradInput(self, input, gradOutput):
        images, grid, batched = self._check(input)
        xp = get_xp(images)
        B, C, H, W = images.shape
        check_shape(self, gradOutput, ((B,) if batched else ()) + (C,) + grid.shape[1:3])
        go = gradOutput.reshape(B, C, -1)
        gyc = gxc = 0
        idxs, contributions = [], []
        for idx, inside, wy, wx, sy, sx in _neighbours(images, grid):
            dot = (go * _gather(images, idx, inside)).sum(axis=1, keepdims=True)  # sum_c go I
            gyc = gyc + sy * wx * dot
            gxc = gxc + sx * wy * dot
            idxs.append(idx.reshape(-1))
            contributions.append((xp.where(inside, wy * wx, 0) * go).reshape(-1))
        grad_images = xp.zeros(images.size, dtype=images.dtype)
        xp.add.at(grad_images, xp.concatenate(idxs), xp.concatenate(contributions))
        grad_images = grad_images.reshape(images.shape)
        grad_grid = xp.stack([gyc * ((H - 1) / 2), gxc * ((W - 1) / 2)], axis=-1)
        grad_grid = grad_grid.reshape(grid.shape)
        self.gradInput = [grad_images, grad_grid] if batched else [grad_images[0], grad_grid[0]]
        return self.gradInput
