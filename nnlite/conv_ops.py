"""Convolution as im2col + one GEMM (Torch's SpatialConvolutionMM), shared by
``SpatialConvolution`` and the convolutional LSTMs.

Notation: input x (B, C, H, W), weight W (F, C, kH, kW), stride (dH, dW), zero
padding (padH, padW), output y (B, F, Ho, Wo) with ``Ho = (H + 2 padH - kH) // dH + 1``.

* im2col: ``cols[b, (c, i, j), (p, q)] = xpad[b, c, p dH + i, q dW + j]``, a
  (B, K, L) array with K = C kH kW rows and L = Ho Wo columns.
* forward: ``y[b] = W2 @ cols[b] + bias`` with W2 = W reshaped (F, K): one GEMM.
* input gradient: ``gcols[b] = W2^T @ gy[b]``, then col2im scatters each column
  back to the pixels it was read from (a sum over the kH kW kernel offsets, since
  overlapping windows read the same pixel).
* weight gradient: ``gW2 = sum_b gy[b] @ cols[b]^T`` (one GEMM over B L);
  ``gbias = sum_{b, p, q} gy[b, :, p, q]``.

The loops below run over the kH kW kernel offsets only; every step is a
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


def im2col(x, kH, kW, dH, dW, padH, padW):
    """(B, C, H, W) -> (B, C kH kW, Ho Wo): one strided view, one copy."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    xpd = xp.ascontiguousarray(pad2d(x, padH, padW))
    s0, s1, s2, s3 = xpd.strides
    windows = xp.lib.stride_tricks.as_strided(
        xpd, shape=(B, C, kH, kW, Ho, Wo), strides=(s0, s1, s2, s3, s2 * dH, s3 * dW))
    return windows.reshape(B, C * kH * kW, Ho * Wo)


def col2im(cols, C, H, W, kH, kW, dH, dW, padH, padW):
    """Adjoint of ``im2col``: (B, C kH kW, Ho Wo) -> (B, C, H, W), summing overlaps."""
    xp = get_xp(cols)
    B = cols.shape[0]
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    c6 = cols.reshape(B, C, kH, kW, Ho, Wo)
    gpad = xp.zeros((B, C, H + 2 * padH, W + 2 * padW), dtype=cols.dtype)
    for i in range(kH):
        for j in range(kW):
            gpad[:, :, i:i + dH * (Ho - 1) + 1:dH, j:j + dW * (Wo - 1) + 1:dW] += c6[:, :, i, j]
    return gpad[:, :, padH:padH + H, padW:padW + W]


def conv2d(x, weight, bias, dH=1, dW=1, padH=0, padW=0, cols=None):
    """y = conv(x, W) + bias for x (B, C, H, W), weight (F, C, kH, kW), bias (F,) or None.

    ``cols`` may pass an ``im2col`` of x already made (with the same geometry).
    """
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    if cols is None:
        cols = im2col(x, kH, kW, dH, dW, padH, padW)
    y = weight.reshape(F, -1) @ cols
    if bias is not None:
        y += bias.reshape(1, F, 1)
    return y.reshape(B, F, Ho, Wo)


def conv2d_grad_input(gy, weight, input_shape, dH=1, dW=1, padH=0, padW=0):
    """dL/dx for ``conv2d``: ``col2im(W2^T @ gy)``."""
    B, C, H, W = input_shape
    F, _, kH, kW = weight.shape
    gcols = weight.reshape(F, -1).T @ gy.reshape(B, F, -1)
    return col2im(gcols, C, H, W, kH, kW, dH, dW, padH, padW)


def conv2d_acc_grad_params(x, gy, gradWeight, gradBias, scale=1.0, dH=1, dW=1, padH=0, padW=0,
                           cols=None):
    """Accumulate ``gradWeight += scale * dL/dW`` and ``gradBias += scale * dL/dbias``."""
    xp = get_xp(x)
    B, F = gy.shape[:2]
    kH, kW = gradWeight.shape[2:]
    if cols is None:
        cols = im2col(x, kH, kW, dH, dW, padH, padW)
    g3 = gy.reshape(B, F, -1)
    gradWeight += (scale * xp.tensordot(g3, cols, axes=([0, 2], [0, 2]))).reshape(gradWeight.shape)
    if gradBias is not None:
        gradBias += scale * g3.sum(axis=(0, 2))
