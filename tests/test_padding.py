"""SpatialZeroPadding (negative pads crop) and SpatialReflectionPadding."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

ZERO_PADS = [(1,), (1, 2, 0, 3), (-1, 2, 1, -2), (-1, -1, -1, -1)]
REFLECT_PADS = [(1,), (2, 1, 0, 3), (0, 3, 2, 1)]


def zero_reference(x, l, r, t, b):
    """NumPy's pad for the positive pads, then a plain crop for the negative ones."""
    y = numpy.pad(x, [(0, 0)] * (x.ndim - 2) + [(max(t, 0), max(b, 0)), (max(l, 0), max(r, 0))])
    H, W = y.shape[-2:]
    return y[..., max(-t, 0):H - max(-b, 0), max(-l, 0):W - max(-r, 0)]


def reflect_reference(x, l, r, t, b):
    return numpy.pad(x, [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)], mode="reflect")


@pytest.mark.parametrize("name,pads,ref", [("SpatialZeroPadding", p, zero_reference) for p in ZERO_PADS]
                         + [("SpatialReflectionPadding", p, reflect_reference) for p in REFLECT_PADS])
def test_jacobian_and_numpy_reference(xp, rng, name, pads, ref):
    m = on(xp, getattr(nn, name)(*pads))
    for shape in [(2, 2, 4, 5), (2, 4, 5)]:
        x = rand(xp, rng, *shape)
        assert_jacobian(m, x)
        numpy.testing.assert_array_equal(host(m.forward(x)), ref(host(x), m.pad_l, m.pad_r, m.pad_t, m.pad_b))


@pytest.mark.parametrize("pads", REFLECT_PADS)
def test_matches_torch(rng, pads):
    torch = pytest.importorskip("torch")
    for name, mode in [("SpatialZeroPadding", "constant"), ("SpatialReflectionPadding", "reflect")]:
        m = getattr(nn, name)(*pads).double()
        x = rng.standard_normal((2, 3, 4, 5))
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.pad(tx, (m.pad_l, m.pad_r, m.pad_t, m.pad_b), mode=mode)
        gy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        numpy.testing.assert_array_equal(m.forward(x), ty.detach().numpy())
        numpy.testing.assert_allclose(m.backward(x, gy), tx.grad.numpy(), rtol=1e-14)


def test_float32_empty_batch_and_repr():
    x = numpy.ones((0, 2, 3, 3), numpy.float32)
    for m in [nn.SpatialZeroPadding(2, -1, 2, 0), nn.SpatialReflectionPadding(1, 0, 2, 0)]:
        y = m.forward(x)
        assert y.dtype == numpy.float32 and y.shape == (0, 2, 5, 4)
        assert m.backward(x, y).shape == x.shape
    assert repr(nn.SpatialZeroPadding(1)) == "nn.SpatialZeroPadding(l=1, r=1, t=1, b=1)"


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.SpatialReflectionPadding: each pad must be smaller than the side it mirrors; "
                                         r"got pads \(l, r, t, b\) = \(1, 1, 3, 0\) for a 3x4 image"):
        nn.SpatialReflectionPadding(1, 1, 3, 0).forward(numpy.zeros((1, 3, 4), numpy.float32))
    with pytest.raises(ValueError, match="nn.SpatialReflectionPadding: pad_l must be >= 0, got -1"):
        nn.SpatialReflectionPadding(-1)
    with pytest.raises(ValueError, match="nn.SpatialZeroPadding: padding -2, 0, 0, 0 leaves nothing of a 2x2 image"):
        nn.SpatialZeroPadding(-2, 0, 0, 0).forward(numpy.zeros((1, 2, 2), numpy.float32))
    with pytest.raises(ValueError, match=r"nn.SpatialZeroPadding: input must be \(C, H, W\) or \(B, C, H, W\)"):
        nn.SpatialZeroPadding(1).forward(numpy.zeros((2, 2), numpy.float32))
    m, x = nn.SpatialZeroPadding(1), numpy.zeros((1, 2, 2), numpy.float32)
    with pytest.raises(ValueError, match=r"nn.SpatialZeroPadding: gradOutput must be of shape \(1, 4, 4\)"):
        m.backward(x, x)
