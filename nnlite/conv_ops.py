"""Convolution as GEMMs (Torch's SpatialConvolutionMM), shared by ``SpatialConvolution``
and the convolutional LSTMs.

Notation: input x (B, C, H, W), weight W (F, C, kH, kW), stride (dH, dW), zero
padding (padH, padW), xpad the padded input (B, C, Hp, Wp), output y (B, F, Ho, Wo)
with ``Ho = (Hp - kH) // dH + 1``; ``L = B Ho Wo``.

Two exact ways to lay the work out as GEMMs; ``conv2d`` picks per layer:

**Input side (im2col)**, the general path. Columns in channel-major layout,
``cols[(c, i, j), (b, p, q)] = xpad[b, c, p dH + i, q dW + j]`` (K = C kH kW rows,
L columns), so every product is one GEMM with no transposed copies:

* forward          ``y = W2 @ cols + bias``                     (F, L), W2 = W as (F, K)
* input gradient   ``gcols = W2^T @ gy``, then col2im adds each column back to the
                   pixels it was read from (overlapping windows read a pixel several times)
* weight gradient  ``gW2 += gy @ cols^T``;  ``gbias += sum over L of gy``

**Output side (shift-add)**, for stride 1 and fewer output than input planes
(F < C: the paper's 64 -> 2 15x15 flow regressor, the 16 -> 1 decoder). The
im2col buffer would have C kH kW rows; this path's buffers have F kH kW:

* forward          ``Z = Wr @ xc`` with Wr[(f, i, j), c] = W[f, c, i, j] and xc = xpad as
                   (C, B Hp Wp); then ``y[f, b, p, q] = sum_{i, j} Z[(f, i, j), (b, p + i, q + j)]``
* both gradients use the expanded output gradient
                   ``G[(f, i, j), (b, p + i, q + j)] = gy[b, f, p, q]`` (zero elsewhere):
                   ``gxc = Wr^T @ G`` (then crop the padding), ``gWr += G @ xc^T``.

The Python loops run over the kH kW kernel offsets only; each step is a
vectorised slice over batch, channels and pixels.
"""
from .backend import get_xp


def out_size(n, k, stride, pad):
    """Output length of a convolution or pooling window sliding over n (floor mode)."""
    return (n + 2 * pad - k) // stride + 1


def pad2d(x, padH, padW):
    """Zero-pad the last two axes of a 4-D array (returns ``x`` itself when no padding)."""
    if not padH and not padW:
        return x
    xp = get_xp(x)
    B, C, H, W = x.shape
    out = xp.zeros((B, C, H + 2 * padH, W + 2 * padW), dtype=x.dtype)
    out[:, :, padH:padH + H, padW:padW + W] = x
    return out


def to_channel_major(a):
    """(B, C, H, W) -> (C, B H W): the layout in which a convolution is one GEMM."""
    return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)


def from_channel_major(a):
    """(C, B, H, W) -> a contiguous (B, C, H, W) array."""
    return get_xp(a).ascontiguousarray(a.transpose(1, 0, 2, 3))


def im2col(x, kH, kW, dH, dW, padH, padW):
    """(B, C, H, W) -> (C kH kW, B Ho Wo): one strided view, one copy."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    xpd = xp.ascontiguousarray(pad2d(x, padH, padW))
    s0, s1, s2, s3 = xpd.strides
    windows = xp.lib.stride_tricks.as_strided(
        xpd, shape=(C, kH, kW, B, Ho, Wo), strides=(s1, s2, s3, s0, s2 * dH, s3 * dW))
    return windows.reshape(C * kH * kW, B * Ho * Wo)


def col2im(cols, B, C, H, W, kH, kW, dH, dW, padH, padW):
    """Adjoint of ``im2col``: (C kH kW, B Ho Wo) -> (B, C, H, W), summing overlaps."""
    xp = get_xp(cols)
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    c6 = cols.reshape(C, kH, kW, B, Ho, Wo)
    gpad = xp.zeros((C, B, H + 2 * padH, W + 2 * padW), dtype=cols.dtype)
    for i in range(kH):
        for j in range(kW):
            gpad[:, :, i:i + dH * (Ho - 1) + 1:dH, j:j + dW * (Wo - 1) + 1:dW] += c6[:, i, j]
    return from_channel_major(gpad[:, :, padH:padH + H, padW:padW + W])


def _output_side(weight, dH, dW):
    F, C = weight.shape[:2]
    return dH == 1 and dW == 1 and F < C


def _shifted_weight(weight):
    """W (F, C, kH, kW) -> Wr (F kH kW, C)."""
    F, C, kH, kW = weight.shape
    return weight.transpose(0, 2, 3, 1).reshape(F * kH * kW, C)


def _expand(gy, kH, kW, Hp, Wp):
    """G (F kH kW, B Hp Wp): ``G[(f, i, j), (b, p + i, q + j)] = gy[b, f, p, q]``."""
    xp = get_xp(gy)
    B, F, Ho, Wo = gy.shape
    G = xp.zeros((F, kH, kW, B, Hp, Wp), dtype=gy.dtype)
    gf = gy.transpose(1, 0, 2, 3)
    for i in range(kH):
        for j in range(kW):
            G[:, i, j, :, i:i + Ho, j:j + Wo] = gf
    return G.reshape(F * kH * kW, -1)


def conv2d(x, weight, bias, dH=1, dW=1, padH=0, padW=0):
    """y = conv(x, W) + bias for x (B, C, H, W), weight (F, C, kH, kW), bias (F,) or None."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    if _output_side(weight, dH, dW):
        xpd = pad2d(x, padH, padW)
        Hp, Wp = xpd.shape[2:]
        Z = (_shifted_weight(weight) @ to_channel_major(xpd)).reshape(F, kH, kW, B, Hp, Wp)
        y = xp.zeros((F, B, Ho, Wo), dtype=x.dtype)
        for i in range(kH):
            for j in range(kW):
                y += Z[:, i, j, :, i:i + Ho, j:j + Wo]
    else:
        y = weight.reshape(F, -1) @ im2col(x, kH, kW, dH, dW, padH, padW)
    if bias is not None:
        y = y.reshape(F, -1)
        y += bias.reshape(F, 1)
    return from_channel_major(y.reshape(F, B, Ho, Wo))


def conv2d_grad_input(gy, weight, input_shape, dH=1, dW=1, padH=0, padW=0):
    """dL/dx for ``conv2d`` given gy = dL/dy."""
    B, C, H, W = input_shape
    F, _, kH, kW = weight.shape
    if _output_side(weight, dH, dW):
        Hp, Wp = H + 2 * padH, W + 2 * padW
        gxc = (_shifted_weight(weight).T @ _expand(gy, kH, kW, Hp, Wp)).reshape(C, B, Hp, Wp)
        return from_channel_major(gxc[:, :, padH:padH + H, padW:padW + W])
    gcols = weight.reshape(F, -1).T @ to_channel_major(gy)
    return col2im(gcols, B, C, H, W, kH, kW, dH, dW, padH, padW)


def conv2d_acc_grad_params(x, gy, gradWeight, gradBias, scale=1.0, dH=1, dW=1, padH=0, padW=0):
    """Accumulate ``gradWeight += scale * dL/dW`` and ``gradBias += scale * dL/dbias``."""
    F, C, kH, kW = gradWeight.shape
    if _output_side(gradWeight, dH, dW):
        xpd = pad2d(x, padH, padW)
        Hp, Wp = xpd.shape[2:]
        gWr = _expand(gy, kH, kW, Hp, Wp) @ to_channel_major(xpd).T
        gradWeight += scale * gWr.reshape(F, kH, kW, C).transpose(0, 3, 1, 2)
    else:
        cols = im2col(x, kH, kW, dH, dW, padH, padW)
        gradWeight += scale * (to_channel_major(gy) @ cols.T).reshape(gradWeight.shape)
    if gradBias is not None:
        gradBias += scale * gy.sum(axis=(0, 2, 3))
