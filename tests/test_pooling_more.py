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
