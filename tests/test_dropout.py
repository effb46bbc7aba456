"""Dropout and SpatialDropout: masks from nnlite's RNG, scaling rules, gradients, errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


class Reseeded:
    """Wraps a dropout module so every forward draws the same mask (for finite differences)."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        return getattr(self.module, name)

    def forward(self, x):
        nn.manualSeed(7)
        return self.module.forward(x)


def test_dropout_mask_comes_from_nnlite_rng_with_inverted_scaling(xp, rng):
    x = rand(xp, rng, 4, 5).astype(xp.float32)
    m = nn.Dropout(0.3)
    nn.manualSeed(11)
    y = host(m.forward(x))
    keep = numpy.random.default_rng(11).random((4, 5)) < 0.7
    numpy.testing.assert_allclose(y, numpy.where(keep, host(x) / 0.7, 0), rtol=1e-6)
    assert y.dtype == numpy.float32
    gy = rand(xp, rng, 4, 5).astype(xp.float32)
    numpy.testing.assert_allclose(host(m.backward(x, gy)), numpy.where(keep, host(gy) / 0.7, 0), rtol=1e-6)
    nn.manualSeed(11)
    numpy.testing.assert_array_equal(host(m.forward(x)), y)  # reproducible
    assert not numpy.array_equal(host(m.forward(x)), y)      # a fresh mask each forward
    m.evaluate()
    numpy.testing.assert_array_equal(host(m.forward(x)), host(x))
    numpy.testing.assert_array_equal(host(m.backward(x, gy)), host(gy))


def test_dropout_keeps_the_expectation(rng):
    x = numpy.ones(200000)
    assert nn.Dropout(0.4).forward(x).mean() == pytest.approx(1, abs=0.01)
    v1 = nn.Dropout(0.4, v1=True)
    assert set(numpy.unique(v1.forward(x))) == {0.0, 1.0}
    assert (v1.evaluate().forward(x) == 0.6).all()


def test_dropout_jacobian_for_a_fixed_mask(xp, rng):
    for m in [nn.Dropout(0.5), nn.SpatialDropout(0.5), nn.Dropout(0.2, True)]:
        m = on(xp, m)
        x = rand(xp, rng, 2, 3, 2, 2)
        assert_jacobian(Reseeded(m), x)
        m.evaluate()
        assert_jacobian(m, x)


def test_spatial_dropout_drops_whole_maps_without_rescaling(xp, rng):
    x = rand(xp, rng, 3, 4, 2, 2, low=0.5, high=1)
    m = nn.SpatialDropout(0.5)
    nn.manualSeed(5)
    y = host(m.forward(x))
    keep = numpy.random.default_rng(5).random((3, 4, 1, 1)) < 0.5
    numpy.testing.assert_array_equal(y, numpy.where(keep, host(x), 0))
    assert host(m.forward(x[0])).shape == (4, 2, 2)
    numpy.testing.assert_allclose(host(m.evaluate().forward(x)), 0.5 * host(x))
    numpy.testing.assert_allclose(host(m.backward(x, x)), 0.5 * host(x))  # as its forward: no mask


def test_torch_dropout_has_the_same_law(rng):
    torch = pytest.importorskip("torch")
    x = numpy.ones(100000)
    ref = torch.nn.functional.dropout(torch.tensor(x), 0.25).numpy()
    ours = nn.Dropout(0.25).forward(x)
    assert set(numpy.unique(ours)) == set(numpy.unique(ref)) == {0.0, 1 / 0.75}
    assert abs((ours == 0).mean() - (ref == 0).mean()) < 0.01


def test_bad_inputs():
    for p in (1, -0.1, "a"):
        with pytest.raises(ValueError, match=r"nn.Dropout: p must be a probability in \[0, 1\)"):
            nn.Dropout(p)
    with pytest.raises(ValueError, match="nn.Dropout: inplace dropout is not offered"):
        nn.Dropout(0.5, False, True)
    with pytest.raises(ValueError, match=r"nn.SpatialDropout: input must be \(C, H, W\) or \(B, C, H, W\)"):
        nn.SpatialDropout().forward(numpy.zeros((2, 3), numpy.float32))
    m, x = nn.Dropout(), numpy.zeros(3)
    with pytest.raises(RuntimeError, match="nn.Dropout: backward needs a forward first"):
        m.backward(x, x)
    m.forward(numpy.zeros(1))
    with pytest.raises(ValueError, match=r"nn.Dropout: backward's input has shape \(3,\) but the last forward's had \(1,\)"):
        m.backward(x, x)  # the mask of a (1,) input would broadcast silently
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.Dropout: gradOutput must have the shape of input \(3,\), got \(2,\)"):
        m.backward(x, numpy.zeros(2))
    assert nn.Dropout().forward(numpy.zeros((0, 3), numpy.float32)).shape == (0, 3)  # empty batch
    assert repr(nn.SpatialDropout(0.2)) == "nn.SpatialDropout(0.2)"
    assert nn.Dropout().setp(0.1).p == 0.1
    with pytest.raises(ValueError, match=r"nn.SpatialDropout: p must be a probability in \[0, 1\), got 1.5"):
        nn.SpatialDropout().setp(1.5)
