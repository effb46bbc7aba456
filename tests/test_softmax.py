"""SoftMax, LogSoftMax, SpatialSoftMax: Jacobians, NumPy and PyTorch references, errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

SHAPES = [(4,), (3, 4), (3, 2, 2), (2, 3, 2, 2)]


def reference(x, log):
    """Per-pixel loop over the channel axis (Torch's layout rule)."""
    axis = 0 if x.ndim in (1, 3) else 1
    moved = numpy.moveaxis(x, axis, -1)
    out = numpy.empty_like(moved)
    for idx in numpy.ndindex(moved.shape[:-1]):
        e = numpy.exp(moved[idx] - moved[idx].max())
        out[idx] = numpy.log(e / e.sum()) if log else e / e.sum()
    return numpy.moveaxis(out, -1, axis)


@pytest.mark.parametrize("name", ["SoftMax", "LogSoftMax", "SpatialSoftMax"])
def test_jacobian_and_loop_reference(xp, rng, name):
    m = on(xp, getattr(nn, name)())
    for shape in SHAPES[2:] if name == "SpatialSoftMax" else SHAPES:
        x = rand(xp, rng, *shape, low=-3, high=3)
        assert_jacobian(m, x)
        numpy.testing.assert_allclose(host(m.forward(x)), reference(host(x), name == "LogSoftMax"),
                                      rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,fn", [("SoftMax", "softmax"), ("LogSoftMax", "log_softmax")])
def test_matches_torch_and_is_stable(rng, name, fn):
    torch = pytest.importorskip("torch")
    x, gy = rng.standard_normal((2, 5, 3, 3)) * 50, rng.standard_normal((2, 5, 3, 3))
    x[0, 0, 0, 0] = 1e4  # no overflow
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, fn)(tx, dim=1)
    ty.backward(torch.tensor(gy))
    m = getattr(nn, name)()
    numpy.testing.assert_allclose(m.forward(x), ty.detach().numpy(), rtol=1e-12, atol=1e-300)
    numpy.testing.assert_allclose(m.backward(x, gy), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    y32 = m.forward(x.astype(numpy.float32))
    assert y32.dtype == numpy.float32 and numpy.isfinite(y32).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.SpatialSoftMax: input must be \(C, H, W\) or \(B, C, H, W\), got shape \(2, 3\)"):
        nn.SpatialSoftMax().forward(numpy.zeros((2, 3), numpy.float32))
    with pytest.raises(ValueError, match=r"nn.SoftMax: input must be \(C,\), \(B, C\)"):
        nn.SoftMax().forward(numpy.zeros((1, 1, 1, 1, 1), numpy.float32))
    with pytest.raises(ValueError, match=r"nn.LogSoftMax: input of shape \(2, 0\) has no channel"):
        nn.LogSoftMax().forward(numpy.zeros((2, 0), numpy.float32))
    assert nn.SoftMax().forward(numpy.zeros((0, 3), numpy.float32)).shape == (0, 3)  # empty batch
    with pytest.raises(RuntimeError, match="nn.SoftMax: backward needs a forward first"):
        nn.SoftMax().backward(numpy.zeros((2, 3)), numpy.zeros((2, 3)))
    stale = nn.SoftMax()
    stale.forward(numpy.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"nn.SoftMax: backward's input has shape \(2, 3\) but the last forward's had \(1, 3\)"):
        stale.backward(numpy.zeros((2, 3)), numpy.zeros((2, 3)))
    m, x = nn.LogSoftMax(), numpy.zeros((2, 3))
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.LogSoftMax: gradOutput must be of shape \(2, 3\), got shape \(3,\)"):
        m.backward(x, numpy.zeros(3))
