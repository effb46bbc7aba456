"""SpatialMaxUnpooling and SpatialAveragePooling."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def distinct(xp, rng, *shape):
    """float64 values far apart from each other: no pooling window holds a tie."""
    v = (rng.permutation(int(numpy.prod(shape))).reshape(shape) + 1) / 7.0
    return xp.asarray(v)


# ------------------------------------------------------------------ SpatialMaxUnpooling
def pooled_pair(xp, rng, shape, *args):
    pool = on(xp, nn.SpatialMaxPooling(*args))
    unpool = on(xp, nn.SpatialMaxUnpooling(pool))
    return pool, unpool, pool.forward(distinct(xp, rng, *shape))


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (3, 4, 6)])
def test_unpooling_jacobian(xp, rng, shape):
    _, unpool, y = pooled_pair(xp, rng, shape, 2, 2)
    assert_jacobian(unpool, rand(xp, rng, *y.shape))


def test_unpooling_overlapping_windows_adds_and_passes_jacobian(xp, rng):
    pool = on(xp, nn.SpatialMaxPooling(2, 1, 1, 1))
    unpool = nn.SpatialMaxUnpooling(pool)
    pool.forward(xp.asarray(numpy.array([[[0.0, 5.0, 1.0, 0.0]]])))
    v = xp.asarray(numpy.array([[[1.0, 10.0, 100.0]]]))
    assert host(unpool.forward(v)).tolist() == [[[0, 11, 100, 0]]]
    assert_jacobian(unpool, v)


def test_unpooling_matches_torch(xp, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pool, unpool, y = pooled_pair(xp, rng, (2, 3, 6, 5), 2, 2)
    x = torch.tensor(host(distinct(xp, numpy.random.default_rng(1234), 2, 3, 6, 5)))
    ty, tidx = F.max_pool2d(x, 2, return_indices=True)
    numpy.testing.assert_array_equal(host(y), ty.numpy())
    v = rand(xp, rng, *y.shape)
    ref = F.max_unpool2d(torch.tensor(host(v)), tidx, 2, output_size=(6, 5))
    numpy.testing.assert_array_equal(host(unpool.forward(v)), ref.numpy())
    gy = rand(xp, rng, 2, 3, 6, 5)
    tv = torch.tensor(host(v), requires_grad=True)
    F.max_unpool2d(tv, tidx, 2, output_size=(6, 5)).backward(torch.tensor(host(gy)))
    numpy.testing.assert_array_equal(host(unpool.backward(v, gy)), tv.grad.numpy())


def test_unpooling_inverts_pooling_in_a_network(rng):
    pool = nn.SpatialMaxPooling(2, 2)
    net = nn.Sequential(pool, nn.SpatialMaxUnpooling(pool))
    x = distinct(numpy, rng, 1, 2, 4, 4)
    y = net.forward(x)
    assert y.shape == x.shape and ((y == x) | (y == 0)).all() and (y == x).sum() == 8
    assert "associated to nn.SpatialMaxPooling(2x2, 2,2)" in repr(net)


def test_unpooling_bad_inputs():
    pool = nn.SpatialMaxPooling(2, 2)
    unpool = nn.SpatialMaxUnpooling(pool)
    with pytest.raises(ValueError, match="nn.SpatialMaxUnpooling: its SpatialMaxPooling has not run forward"):
        unpool.forward(numpy.zeros((1, 2, 2), numpy.float32))
    pool.forward(numpy.zeros((2, 1, 4, 4), numpy.float32))
    with pytest.raises(ValueError, match=r"nn.SpatialMaxUnpooling: input must be of shape \(2, 1, 2, 2\), got shape \(1, 1, 2, 2\)"):
        unpool.forward(numpy.zeros((1, 1, 2, 2), numpy.float32))
    x = numpy.zeros((2, 1, 2, 2), numpy.float32)
    unpool.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(2, 1, 4, 4\)"):
        unpool.backward(x, x)
    with pytest.raises(TypeError, match="expected an nn.SpatialMaxPooling, got ReLU"):
        nn.SpatialMaxUnpooling(nn.ReLU())
    empty = numpy.zeros((0, 1, 4, 4), numpy.float32)
    assert unpool.forward(pool.forward(empty)).shape == (0, 1, 4, 4)  # empty batch


# ---------------------------------------------------------------- SpatialAveragePooling
def reference_avg_pool(x, kW, kH, dW, dH, padW, padH, ceil_mode, include_pad):
    """Torch's loop: the window clipped to the padded image, divided as count_include_pad says."""
    from tests.test_pooling import reference_pool_size
    B, C, H, W = x.shape
    oH = reference_pool_size(H, kH, dH, padH, ceil_mode)
    oW = reference_pool_size(W, kW, dW, padW, ceil_mode)
    y = numpy.zeros((B, C, oH, oW))
    for p in range(oH):
        for q in range(oW):
            h0, w0 = p * dH - padH, q * dW - padW
            h1, w1 = min(h0 + kH, H + padH), min(w0 + kW, W + padW)
            n = (h1 - h0) * (w1 - w0)
            a, b, c, d = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            y[:, :, p, q] = x[:, :, a:c, b:d].sum(axis=(2, 3)) / (n if include_pad else (c - a) * (d - b))
    return y


AVG_CASES = [
    dict(args=(2, 2, 2, 2), shape=(2, 2, 4, 6), ceil=False),
    dict(args=(3, 3, 2, 2, 1, 1), shape=(1, 2, 5, 6), ceil=True),
    dict(args=(3, 2, 2, 1, 1, 1), shape=(2, 1, 4, 5), ceil=False),
    dict(args=(2, 2), shape=(1, 1, 3, 3), ceil=True),     # Torch's default stride 1
]


def make_avg(case, include_pad=True):
    m = nn.SpatialAveragePooling(*case["args"])
    m = m.ceil() if case["ceil"] else m
    return m if include_pad else m.setCountExcludePad()


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_jacobian_and_loop_reference(xp, rng, case, include_pad):
    m = on(xp, make_avg(case, include_pad))
    x = rand(xp, rng, *case["shape"])
    assert_jacobian(m, x)
    assert_jacobian(m, rand(xp, rng, *case["shape"][1:]))
    ref = reference_avg_pool(host(x), m.kW, m.kH, m.dW, m.dH, m.padW, m.padH, m.ceil_mode, include_pad)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-12)


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_matches_torch(rng, case, include_pad):
    torch = pytest.importorskip("torch")
    m = make_avg(case, include_pad).double()
    x, gy = rng.standard_normal(case["shape"]), None
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, (m.kH, m.kW), (m.dH, m.dW), (m.padH, m.padW),
                                        ceil_mode=m.ceil_mode, count_include_pad=include_pad)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(m.forward(x), ty.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(m.backward(x, gy), tx.grad.numpy(), rtol=1e-12)


def test_avg_pool_float32_repr_and_errors():
    m = nn.SpatialAveragePooling(2, 2, 2, 2)
    assert m.forward(numpy.ones((1, 4, 4), numpy.float32)).dtype == numpy.float32
    assert repr(m) == "nn.SpatialAveragePooling(2x2, 2,2)"
    with pytest.raises(ValueError, match=r"nn.SpatialAveragePooling: input must be \(C, H, W\) or \(B, C, H, W\)"):
        m.forward(numpy.zeros((4, 4), numpy.float32))
    with pytest.raises(ValueError, match="nn.SpatialAveragePooling: input image 1x4 .* smaller than the 2x2 kernel"):
        m.forward(numpy.zeros((1, 1, 4), numpy.float32))
    with pytest.raises(ValueError, match="padding must be at most half the kernel"):
        nn.SpatialAveragePooling(2, 2, 1, 1, 2, 0)
    x = numpy.zeros((1, 4, 4), numpy.float32)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(1, 2, 2\), got shape \(1, 4, 4\)"):
        m.backward(x, x)
    assert m.forward(numpy.zeros((0, 1, 4, 4), numpy.float32)).shape == (0, 1, 2, 2)  # empty batch


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool_offset_loops_and_scatter_add_agree(xp, rng, case, monkeypatch):
    from nnlite import conv_ops
    m = on(xp, make_avg(case))
    x = rand(xp, rng, *case["shape"])
    gy = xp.asarray(numpy.random.default_rng(3).uniform(-1, 1, m.forward(x).shape))
    grads = []
    for loops in (True, False):
        monkeypatch.setattr(conv_ops, "OFFSET_LOOPS", loops)
        m.forward(x)
        grads.append(host(m.backward(x, gy)))
        if not loops:
            assert_jacobian(m, x)
    numpy.testing.assert_allclose(grads[0], grads[1], rtol=1e-13, atol=1e-15)
