"""Bilinear: Jacobians (both inputs, weight, bias), PyTorch's bilinear, errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


@pytest.mark.parametrize("bias", [True, False])
def test_jacobian(xp, rng, bias):
    m = on(xp, nn.Bilinear(3, 2, 4, bias))
    errs = assert_jacobian(m, [rand(xp, rng, 2, 3), rand(xp, rng, 2, 2)])
    assert len(errs) == (3 if bias else 2)


def test_numpy_loop_and_torch(rng):
    m = nn.Bilinear(3, 4, 2).double()
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    y = m.forward([x1, x2])
    for b in range(5):
        for k in range(2):
            assert y[b, k] == pytest.approx(x1[b] @ m.weight[k] @ x2[b] + m.bias[k], rel=1e-12)
    torch = pytest.importorskip("torch")
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    tw, tb = torch.tensor(m.weight, requires_grad=True), torch.tensor(m.bias, requires_grad=True)
    ty = torch.nn.functional.bilinear(t1, t2, tw, tb)
    gy = rng.standard_normal((5, 2))
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    g1, g2 = m.backward([x1, x2], gy)
    for ours, ref in [(g1, t1), (g2, t2), (m.gradWeight, tw), (m.gradBias, tb)]:
        numpy.testing.assert_allclose(ours, ref.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_init_repr_and_bad_inputs():
    m = nn.Bilinear(4, 2, 3)
    assert m.weight.shape == (3, 4, 2) and abs(m.weight).max() <= 0.5 and m.weight.dtype == numpy.float32
    assert repr(m) == "nn.Bilinear(4, 2 -> 3)"
    x1, x2 = numpy.zeros((2, 4), numpy.float32), numpy.zeros((2, 2), numpy.float32)
    with pytest.raises(ValueError, match="nn.Bilinear: input must be a list of 2 arrays, got 1"):
        m.forward([x1])
    with pytest.raises(ValueError, match=r"nn.Bilinear: input\[1\]'s last dimension \(inputSize2\) must be 2, got 4"):
        m.forward([x1, x1])
    with pytest.raises(ValueError, match=r"nn.Bilinear: input\[1\]'s batch size \(that of input\[0\]\) must be 2, got 1"):
        m.forward([x1, x2[:1]])
    with pytest.raises(ValueError, match=r"nn.Bilinear: input\[0\] must be \(B, 4\), got shape \(4,\)"):
        m.forward([x1[0], x2[0]])
    with pytest.raises(TypeError, match=r"nn.Bilinear: input\[1\] must be a numpy float32 array like input\[0\]"):
        m.forward([x1, x2.astype(numpy.float64)])
    m.forward([x1, x2])
    with pytest.raises(ValueError, match=r"nn.Bilinear: gradOutput must be of shape \(2, 3\)"):
        m.backward([x1, x2], numpy.zeros((2, 2), numpy.float32))
    assert m.forward([x1[:0], x2[:0]]).shape == (0, 3)  # empty batch
