"""SpatialMaxPooling and SpatialUpSamplingNearest (SPEC §2)."""
import math

import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def reference_pool_size(n, k, d, pad, ceil_mode):
    """Torch's formula, written out (the last-window rule applied in every case)."""
    f = math.ceil if ceil_mode else math.floor
    out = int(f((n + 2 * pad - k) / d)) + 1
    return out - 1 if (out - 1) * d >= n + pad else out


def reference_max_pool(x, kW, kH, dW, dH, padW, padH, ceil_mode):
    """Torch's loop: for each window, the first strict maximum over its input pixels."""
    B, C, H, W = x.shape
    oH = reference_pool_size(H, kH, dH, padH, ceil_mode)
    oW = reference_pool_size(W, kW, dW, padW, ceil_mode)
    y = numpy.zeros((B, C, oH, oW))
    for p in range(oH):
        for q in range(oW):
            h0, w0 = p * dH - padH, q * dW - padW
            win = x[:, :, max(h0, 0):min(h0 + kH, H), max(w0, 0):min(w0 + kW, W)]
            y[:, :, p, q] = win.max(axis=(2, 3))
    return y


CASES = [
    dict(args=(2, 2), shape=(2, 2, 4, 6), ceil=False),                # the paper's 2x2 pooling
    dict(args=(3, 3, 2, 2, 1, 1), shape=(1, 2, 5, 5), ceil=False),    # overlapping windows + pad
    dict(args=(3, 2, 2, 1), shape=(2, 1, 4, 6), ceil=True),           # kW != kH, ceil overhang
    dict(args=(2, 2, 3, 3), shape=(1, 1, 6, 7), ceil=True),           # stride > kernel in ceil mode
]


def make_pool(case):
    m = nn.SpatialMaxPooling(*case["args"])
    return m.ceil() if case["ceil"] else m


@pytest.mark.parametrize("case", CASES)
def test_max_pool_jacobian_batched_and_unbatched(xp, rng, case):
    m = on(xp, make_pool(case))
    assert_jacobian(m, rand(xp, rng, *case["shape"]))
    assert_jacobian(m, rand(xp, rng, *case["shape"][1:]))


@pytest.mark.parametrize("case", CASES)
def test_max_pool_forward_matches_torch_loop(xp, rng, case):
    m = make_pool(case)
    x = rand(xp, rng, *case["shape"]).astype(xp.float32)
    ref = reference_max_pool(host(x), m.kW, m.kH, m.dW, m.dH, m.padW, m.padH, m.ceil_mode)
    y = m.forward(x)
    assert y.dtype == numpy.float32
    numpy.testing.assert_array_equal(host(y), ref.astype(numpy.float32))
    numpy.testing.assert_array_equal(host(m.forward(x[0])), ref[0].astype(numpy.float32))


@pytest.mark.parametrize("n,k,d,pad", [(5, 2, 2, 0), (5, 3, 3, 1), (6, 2, 3, 0), (7, 3, 2, 1), (4, 4, 1, 2)])
def test_output_size_floor_and_ceil(n, k, d, pad):
    for ceil_mode in (False, True):
        m = nn.SpatialMaxPooling(k, k, d, d, pad, pad)
        (m.ceil() if ceil_mode else m.floor())
        y = m.forward(numpy.zeros((1, n, n), numpy.float32))
        want = reference_pool_size(n, k, d, pad, ceil_mode)
        assert y.shape == (1, want, want)
    assert nn.SpatialMaxPooling(3, 3, 3, 3, 1, 1).ceil().forward(
        numpy.zeros((1, 5, 5), numpy.float32)).shape == (1, 2, 2)  # third window would start past the input


def test_ties_go_to_the_first_maximum_in_row_major_order(xp):
    m = nn.SpatialMaxPooling(2, 2)
    x = xp.asarray(numpy.array([[[1, 3, 0, 0], [3, 3, 0, 0]]], numpy.float32))
    assert host(m.forward(x)).tolist() == [[[3, 0]]]
    gx = host(m.backward(x, xp.asarray(numpy.array([[[1, 2]]], numpy.float32))))
    assert gx.tolist() == [[[0, 1, 2, 0], [0, 0, 0, 0]]]


@pytest.mark.parametrize("case", CASES)
def test_max_pool_scan_and_argmax_agree(xp, rng, case, monkeypatch):
    """The per-offset scan (NumPy) and the argmax over windows (a device) give the same
    maxima and indices, ties (to the first in row-major order) and NaNs (the first wins,
    as ``argmax`` has it) included, and the same gradients."""
    from nnlite import conv_ops
    m = on(xp, make_pool(case))
    x = host(rand(xp, rng, *case["shape"])).round(1)  # rounding makes ties
    x[0, 0, 1, 1:3] = numpy.nan
    x = xp.asarray(x)
    gy = rand(xp, rng, *m.forward(x).shape)
    results = []
    for loops in (True, False):
        monkeypatch.setattr(conv_ops, "OFFSET_LOOPS", loops)
        y = m.forward(x)
        results.append([host(y), host(m.indices), host(m.backward(x, gy))])
    for a, b in zip(*results):
        numpy.testing.assert_array_equal(a, b)
    assert numpy.isnan(results[0][0]).any()


def test_overlapping_windows_add_their_gradients_on_a_shared_maximum(xp):
    m = nn.SpatialMaxPooling(2, 1, 1, 1)
    x = xp.asarray(numpy.array([[[0, 5, 1, 0]]], numpy.float32))
    gy = xp.asarray(numpy.array([[[1, 10, 100]]], numpy.float32))
    m.forward(x)
    assert host(m.backward(x, gy)).tolist() == [[[0, 11, 100, 0]]]
    assert host(m.backward(x, gy)).tolist() == [[[0, 11, 100, 0]]]  # backward is repeatable


def test_padding_never_wins():
    m = nn.SpatialMaxPooling(2, 2, 2, 2, 1, 1)
    y = m.forward(-numpy.ones((1, 2, 2), numpy.float32))
    assert (y == -1).all() and y.shape == (1, 2, 2)


def test_max_pool_repr_like_torch():
    assert repr(nn.SpatialMaxPooling(2, 2)) == "nn.SpatialMaxPooling(2x2, 2,2)"
    assert repr(nn.SpatialMaxPooling(3, 3, 2, 2, 1, 1)) == "nn.SpatialMaxPooling(3x3, 2,2, 1,1)"


def test_max_pool_errors():
    m = nn.SpatialMaxPooling(3, 3)
    with pytest.raises(ValueError, match=r"SpatialMaxPooling: input must be \(C, H, W\) or \(B, C, H, W\), got shape \(4, 4\)"):
        m.forward(numpy.zeros((4, 4), numpy.float32))
    with pytest.raises(ValueError, match="input image 2x4 .* smaller than the 3x3 kernel"):
        m.forward(numpy.zeros((1, 2, 4), numpy.float32))
    with pytest.raises(ValueError, match="padding must be at most half the kernel"):
        nn.SpatialMaxPooling(2, 2, 2, 2, 2, 0)
    x = numpy.zeros((1, 6, 6), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(1, 2, 2\), got shape \(2, 2\)"):
        m.backward(x, numpy.zeros((2, 2), numpy.float32))


def test_upsampling_jacobian_batched_and_unbatched(xp, rng):
    m = on(xp, nn.SpatialUpSamplingNearest(2))
    assert_jacobian(m, rand(xp, rng, 2, 2, 2, 3))
    assert_jacobian(m, rand(xp, rng, 1, 3, 2))


def test_upsampling_forward_and_block_sum_backward(xp, rng):
    m = nn.SpatialUpSamplingNearest(3)
    x = rand(xp, rng, 2, 2, 3, 4)
    y = host(m.forward(x))
    assert y.shape == (2, 2, 9, 12)
    hx = host(x)
    for u in range(9):
        for v in range(12):
            numpy.testing.assert_array_equal(y[:, :, u, v], hx[:, :, u // 3, v // 3])
    gy = rand(xp, rng, 2, 2, 9, 12)
    gx = host(m.backward(x, gy))
    hgy = host(gy)
    numpy.testing.assert_allclose(gx[1, 0, 2, 3], hgy[1, 0, 6:9, 9:12].sum(), rtol=1e-12)
    assert gx.shape == x.shape and host(m.forward(x[0])).shape == (2, 9, 12)


def test_upsampling_errors():
    with pytest.raises(ValueError, match="scale must be >= 1, got 0"):
        nn.SpatialUpSamplingNearest(0)
    m = nn.SpatialUpSamplingNearest(2)
    with pytest.raises(ValueError, match=r"SpatialUpSamplingNearest: input must be .*got shape \(3,\)"):
        m.forward(numpy.zeros(3, numpy.float32))
    x = numpy.zeros((1, 2, 2), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(1, 4, 4\), got shape \(1, 2, 2\)"):
        m.backward(x, x)


def test_max_pool_scan_split_over_threads_gives_the_one_thread_result(rng):
    """On the host the scan runs ranges of frames side by side (``backend.host_parallel``):
    maxima, indices (ties and NaNs included) and gradients equal one thread's."""
    m = nn.SpatialMaxPooling(3, 3, 2, 2, 1, 1)
    x = rng.uniform(-1, 1, (5, 3, 9, 8)).round(1)
    x[3, 1, 2, 2:4] = numpy.nan
    gy = rng.uniform(-1, 1, m.forward(x).shape)
    results = []
    for threads in (1, 3):
        with nn.backend.host_threads(threads):
            results.append([m.forward(x).copy(), m.indices.copy(), m.backward(x, gy).copy()])
    for a, b in zip(*results):
        numpy.testing.assert_array_equal(a, b)
