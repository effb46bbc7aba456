"""Spatial pooling and upsampling."""
from .backend import get_xp, host_parallel, host_ranges, scatter_add
from .checks import check_int, check_shape, check_spatial, check_window_fits
from .conv_ops import _window_index, offset_loops, offset_window
from .module import Module


def _pool_out_size(n, k, stride, pad, ceil_mode):
    """Torch's pooled length: floor or ceil of ``(n + 2 pad - k) / stride``, plus one.

    In ceil mode the last window may hang over the end; Torch drops it when it
    would start at or after ``n + pad`` (past the input and its left padding),
    so every window holds at least one input pixel. Torch applies that rule only
    when there is padding; here it always holds, so that ``kW > dW`` cases without
    padding never get a window with no pixel in it (Torch read garbage there).
    """
    span = n + 2 * pad - k
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if (out - 1) * stride >= n + pad:
        out -= 1
    return out


class _WindowPooling(Module):
    """Shared by the pooling modules: kH x kW windows at stride (dH, dW) over a (B, C, H, W)
    or (C, H, W) input with padding (padH, padW); output size in Torch's floor mode by default,
    ``ceil()`` / ``floor()`` switch (see ``_pool_out_size``). Torch requires
    ``pad <= kernel / 2``, as here, so no window is all padding.
    """
    parameter_names = ()

    def __init__(self, kW, kH, dW, dH, padW, padH):
        super().__init__()
        self.kW, self.kH = check_int(self, kW, "kW"), check_int(self, kH, "kH")
        self.dW, self.dH = check_int(self, dW, "dW"), check_int(self, dH, "dH")
        self.padW = check_int(self, padW, "padW", minimum=0)
        self.padH = check_int(self, padH, "padH", minimum=0)
        if 2 * self.padW > self.kW or 2 * self.padH > self.kH:
            raise ValueError(f"{self.typename()}: padding must be at most half the kernel "
                             f"(Torch's rule), got pad {self.padW},{self.padH} for a "
                             f"{self.kW}x{self.kH} kernel")
        self.ceil_mode = False

    def ceil(self):
        self.ceil_mode = True
        return self

    def floor(self):
        self.ceil_mode = False
        return self

    def _output_hw(self, H, W):
        return (_pool_out_size(H, self.kH, self.dH, self.padH, self.ceil_mode),
                _pool_out_size(W, self.kW, self.dW, self.padW, self.ceil_mode))

    def _check(self, input):
        x4 = check_spatial(self, input)
        check_window_fits(self, x4, self.kH, self.kW, self.padH, self.padW)
        return x4

    def _framed(self, x4, fill, oH, oW):
        """x4 in a frame of ``fill``: the left/top padding, and on the right/bottom whatever the
        windows cover beyond the input (padding, or the overhang of ceil mode)."""
        H, W = x4.shape[-2:]
        frame = self._frame_hw(H, W, oH, oW)
        if frame == (H, W):  # no padding, no overhang: the windows read only the input (no copy)
            return x4
        xpad = get_xp(x4).full(x4.shape[:2] + frame, fill, dtype=x4.dtype)
        xpad[:, :, self.padH:self.padH + H, self.padW:self.padW + W] = x4
        return xpad

    def _frame_hw(self, H, W, oH, oW):
        """Height and width of that frame."""
        return (max(H + self.padH, (oH - 1) * self.dH + self.kH),
                max(W + self.padW, (oW - 1) * self.dW + self.kW))

    def _windows(self, xpad, oH, oW):
        """The (B, C, oH, oW, kH kW) strided view of every window of a framed input."""
        B, C = xpad.shape[:2]
        s0, s1, s2, s3 = xpad.strides
        return get_xp(xpad).lib.stride_tricks.as_strided(
            xpad, shape=(B, C, oH, oW, self.kH, self.kW),
            strides=(s0, s1, s2 * self.dH, s3 * self.dW, s2, s3)).reshape(B, C, oH, oW, self.kH * self.kW)

    def extra_repr(self):
        s = f"({self.kW}x{self.kH}, {self.dW},{self.dH}"
        if self.padW or self.padH:
            s += f", {self.padW},{self.padH}"
        return s + ")"


class SpatialMaxPooling(_WindowPooling):
    """``SpatialMaxPooling(kW, kH, dW=kW, dH=kH, padW=0, padH=0)``: max over kH x kW windows.

    ``y[b, c, p, q] = max_{i, j} xpad[b, c, p dH + i, q dW + j]`` for x (B, C, H, W) or
    (C, H, W), where padding counts as -inf (it never wins); windows and output size as
    ``_WindowPooling``.

    Ties go to the FIRST maximum in row-major window order (Torch's strict ``>`` scan),
    and the argmax of each window is kept: the max is linear around x with slope 1
    at that one pixel, so

        ``dL/dx[b, c, u, v] = sum of gy[b, c, p, q] over the windows whose argmax is (u, v)``

    a scatter-add, since overlapping windows (stride < kernel) may pick the same pixel.
    """
    _transient = Module._transient + ("_indices", "_input_shape")

    def __init__(self, kW, kH, dW=None, dH=None, padW=0, padH=0):
        super().__init__(kW, kH, kW if dW is None else dW, kH if dH is None else dH, padW, padH)
        self._indices = None
        self._input_shape = None

    def updateOutput(self, input):
        x4 = self._check(input)
        xp = get_xp(x4)
        B, C, H, W = x4.shape
        oH, oW = self._output_hw(H, W)
        xpad = self._framed(x4, -xp.inf, oH, oW)
        if offset_loops(xp):  # on the host, the frames split over the BLAS threads
            y = xp.empty((B, C, oH, oW), dtype=x4.dtype)
            offset = xp.empty(y.shape, dtype=xp.intp)
            host_parallel(lambda lo, hi: self._scan(xpad[lo:hi], W, y[lo:hi], offset[lo:hi]),
                          host_ranges(xp, B))
        else:  # one argmax over the windows; it returns the first maximum: Torch's tie rule
            windows = self._windows(xpad, oH, oW)
            arg = windows.argmax(axis=-1)
            y = xp.take_along_axis(windows, arg[..., None], axis=-1)[..., 0]
            offset = arg // self.kW * W + arg % self.kW
        # flat index of each maximum in x4: ((b C + c) H + p dH - padH + i) W + q dW - padW + j,
        # with offset = i W + j its place in the window
        plane = xp.arange(B * C).reshape(B, C, 1, 1) * H
        row = xp.arange(oH).reshape(oH, 1) * self.dH - self.padH
        self._indices = (plane + row) * W + (xp.arange(oW) * self.dW - self.padW) + offset
        self._input_shape = tuple(input.shape)
        self.output = y.reshape(input.shape[:-2] + (oH, oW))
        return self.output

    def _scan(self, xpad, W, y, offset):
        """The maxima, into ``y``, and each one's offset ``i W + j`` in its window, into
        ``offset`` (both (B, C, oH, oW)), one strided slice per window offset (NumPy;
        ``conv_ops.offset_loops``): an argmax over windows of kH kW elements, NumPy's
        innermost axis, ran 4x slower. The maximum takes kH kW - 1
        ``maximum`` passes (NaN propagates, as it wins Torch's scan); then, from the last
        offset to the first, each offset holding the maximum (or a NaN) takes the argmax,
        so the first one in row-major order keeps it."""
        xp = get_xp(xpad)
        kH, kW, dH, dW = self.kH, self.kW, self.dH, self.dW
        oH, oW = y.shape[2:]
        slices = [((i, j), xpad[(Ellipsis,) + offset_window(i, j, dH, dW, oH, oW)])
                  for i in range(kH) for j in range(kW)]
        xp.copyto(y, slices[0][1])
        for _, v in slices[1:]:
            xp.maximum(y, v, out=y)
        offset.fill((kH - 1) * W + kW - 1)
        for (i, j), v in slices[-2::-1]:
            first = v == y
            first |= v != v
            xp.copyto(offset, i * W + j, where=first)

    @property
    def indices(self):
        """Where each maximum of the last forward came from (``SpatialMaxUnpooling`` reads it):
        an integer array (B, C, oH, oW) of flat indices into that input viewed as (B, C, H, W);
        None before a forward."""
        return self._indices

    @property
    def input_shape(self):
        """The shape of the last forward's input (None before a forward)."""
        return self._input_shape

    def updateGradInput(self, input, gradOutput):
        x4 = self._check(input)
        check_shape(self, gradOutput, input.shape[:-2] + self._output_hw(*x4.shape[-2:]))
        # the argmax indices are those of the last forward: it must have seen this input's shape
        self._check_forward_seen(self._input_shape, input)
        xp = get_xp(gradOutput)
        gx = xp.zeros(input.size, dtype=gradOutput.dtype)
        scatter_add(gx, self._indices.reshape(-1), gradOutput.reshape(-1))
        self.gradInput = gx.reshape(input.shape)
        return self.gradInput


class SpatialUpSamplingNearest(Module):
    """``SpatialUpSamplingNearest(scale)``: ``y[b, c, u, v] = x[b, c, u // s, v // s]``.

    x (B, C, H, W) or (C, H, W) gives y (..., C, s H, s W). Each input pixel is copied
    into an s x s block, so its gradient is the sum of that block of gy:
    ``dL/dx[b, c, h, w] = sum_{i, j < s} gy[b, c, s h + i, s w + j]`` (a reshape to
    (..., H, s, W, s) and a sum over the two s axes). The sum over the rows of a block
    is one reduction over an outer axis; the sum over its columns, an axis of only s
    elements that NumPy reduces ten times slower than it adds s strided slices, is on
    NumPy those s slices added (``conv_ops.offset_loops``), on a device one reduction.
    """
    parameter_names = ()

    def __init__(self, scale):
        super().__init__()
        self.scale = check_int(self, scale, "scale")

    def updateOutput(self, input):
        x4 = check_spatial(self, input)
        xp = get_xp(x4)
        B, C, H, W = x4.shape
        s = self.scale
        # each pixel s times along its row, then each row s times: both copies run along
        # whole rows (one broadcast of single pixels copied 3x slower, in runs of s elements)
        rows = xp.repeat(x4, s, axis=-1)
        y = xp.broadcast_to(rows[:, :, :, None, :], (B, C, H, s, W * s))
        self.output = y.reshape(input.shape[:-2] + (H * s, W * s))
        return self.output

    def updateGradInput(self, input, gradOutput):
        check_spatial(self, input)
        H, W = input.shape[-2:]
        s = self.scale
        check_shape(self, gradOutput, input.shape[:-2] + (H * s, W * s))
        rows = gradOutput.reshape(input.shape[:-2] + (H, s, W, s)).sum(axis=-3)  # (..., H, W, s)
        if offset_loops(get_xp(rows)):
            gx = rows[..., 0].copy()
            for j in range(1, s):
                gx += rows[..., j]
        else:
            gx = rows.sum(axis=-1)
        self.gradInput = gx
        return self.gradInput

    def extra_repr(self):
        return f"({self.scale})"


class SpatialMaxUnpooling(Module):
    """``SpatialMaxUnpooling(poolingModule)``: puts each value back where ``poolingModule``
    (a ``SpatialMaxPooling``) found its maximum, zeros elsewhere.

    With ``idx`` the pooling module's ``indices`` from its last forward (flat positions in its
    (B, C, H, W) input), an input x of the pooled shape (B, C, oH, oW) or (C, oH, oW) gives y of
    the pooling input's shape::

        y.flat[u] = sum of x.flat[k] over the k with idx.flat[k] == u    (0 elsewhere)

    y is linear in x, so ``dL/dx.flat[k] = gy.flat[idx.flat[k]]`` (a gather). When overlapping
    windows pick one pixel twice the two values add (Torch wrote one over the other, so its
    backward was not the derivative of its forward); with non-overlapping windows, the usual
    encoder-decoder use, each pixel is written at most once and the result is Torch's.
    The pooling module must have run forward on an input of the same batch size first.
    """
    parameter_names = ()

    def __init__(self, poolingModule):
        super().__init__()
        if not isinstance(poolingModule, SpatialMaxPooling):
            raise TypeError(f"{self.typename()}: expected an nn.SpatialMaxPooling, got "
                            f"{type(poolingModule).__name__}")
        self.pooling = poolingModule

    def _indices(self, input):
        """The pooling indices, once the input is checked against the pooled shape."""
        idx = self.pooling.indices
        if idx is None:
            raise ValueError(f"{self.typename()}: its SpatialMaxPooling has not run forward yet; "
                             f"the indices of that forward place the values")
        pooled = self.pooling.input_shape[:-2] + tuple(idx.shape[-2:])
        check_shape(self, input, pooled, what="input")
        return idx

    def updateOutput(self, input):
        idx = self._indices(input)
        xp = get_xp(input)
        y = xp.zeros(self.pooling.input_shape, dtype=input.dtype)
        scatter_add(y.reshape(-1), idx.reshape(-1), input.reshape(-1))
        self.output = y
        return self.output

    def updateGradInput(self, input, gradOutput):
        idx = self._indices(input)
        check_shape(self, gradOutput, self.pooling.input_shape)
        self.gradInput = gradOutput.reshape(-1)[idx.reshape(-1)].reshape(input.shape)
        return self.gradInput

    def extra_repr(self):
        return f"(associated to {self.pooling!r})"


class SpatialAveragePooling(_WindowPooling):
    """``SpatialAveragePooling(kW, kH, dW=1, dH=1, padW=0, padH=0)``: mean over kH x kW windows
    (windows and output size as ``_WindowPooling``; ``ceil()`` / ``floor()`` switch).

    ``y[b, c, p, q] = sum_{i, j} xpad[b, c, p dH + i, q dW + j] / n[p, q]`` with zero padding.
    The divisor is Torch's: the window clipped to the padded image (the overhang of ceil mode
    never counts), ``n = (min(h0 + kH, H + padH) - h0) (min(w0 + kW, W + padW) - w0)`` with
    ``h0 = p dH - padH``, ``w0 = q dW - padW``; after ``setCountExcludePad()`` only the input
    pixels in the window count (Torch's ``count_include_pad = false``; the default counts
    the padding, ``setCountIncludePad()``).

    Each input pixel enters every window that covers it with weight ``1 / n``, so
    ``dL/dx[b, c, u, v] = sum over windows (p, q) covering (u, v) of gy[b, c, p, q] / n[p, q]``:
    ``gy / n`` added back onto the frame at every kernel offset (kH kW vectorised slices on
    NumPy, one scatter-add on a device, as ``conv_ops.col2im``).
    """

    def __init__(self, kW, kH, dW=1, dH=1, padW=0, padH=0):
        super().__init__(kW, kH, dW, dH, padW, padH)
        self.count_include_pad = True

    def setCountIncludePad(self):
        self.count_include_pad = True
        return self

    def setCountExcludePad(self):
        self.count_include_pad = False
        return self

    def _divisor(self, xp, H, W, oH, oW):
        """n[p, q] as an (oH, oW) array (see the class docstring)."""
        def counts(n_out, stride, k, pad, n_in):
            start = xp.arange(n_out) * stride - pad
            end = xp.minimum(start + k, n_in + pad)
            if self.count_include_pad:
                return end - start
            return xp.minimum(end, n_in) - xp.maximum(start, 0)
        return counts(oH, self.dH, self.kH, self.padH, H)[:, None] * counts(oW, self.dW, self.kW, self.padW, W)

    def updateOutput(self, input):
        x4 = self._check(input)
        xp = get_xp(x4)
        H, W = x4.shape[-2:]
        oH, oW = self._output_hw(H, W)
        sums = self._windows(self._framed(x4, 0, oH, oW), oH, oW).sum(axis=-1)
        self.output = (sums / self._divisor(xp, H, W, oH, oW)).astype(x4.dtype, copy=False)
        self.output = self.output.reshape(input.shape[:-2] + (oH, oW))
        return self.output

    def updateGradInput(self, input, gradOutput):
        x4 = self._check(input)
        xp = get_xp(x4)
        H, W = x4.shape[-2:]
        oH, oW = self._output_hw(H, W)
        check_shape(self, gradOutput, input.shape[:-2] + (oH, oW))
        g = (gradOutput.reshape(x4.shape[:2] + (oH, oW)) / self._divisor(xp, H, W, oH, oW)).astype(
            gradOutput.dtype, copy=False)
        gpad = xp.zeros(x4.shape[:2] + self._frame_hw(H, W, oH, oW), dtype=g.dtype)
        if offset_loops(xp):  # NumPy: one slice per offset (see conv_ops on the two ways)
            for i in range(self.kH):
                for j in range(self.kW):
                    gpad[(Ellipsis,) + offset_window(i, j, self.dH, self.dW, oH, oW)] += g
        else:  # a device: gpad[b, c, i + dH p, j + dW q] += g[b, c, p, q], one scatter-add
            index = _window_index(xp, *g.shape[:2], self.kH, self.kW, oH, oW, (0, 1, self.dH), (0, 1, self.dW))
            scatter_add(gpad, index, g[:, None, None])
        gx = gpad[:, :, self.padH:self.padH + H, self.padW:self.padW + W]
        self.gradInput = xp.ascontiguousarray(gx).reshape(input.shape)
        return self.gradInput
