"""Narrow, Select, Replicate, Padding (nnlite.select) and CSubTable, CDivTable."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

# module, input shape, NumPy reference
CASES = [
    (lambda: nn.Narrow(1, 1, 2), (2, 4, 3), lambda x: x[:, 1:3]),
    (lambda: nn.Narrow(-1, -2, -1), (2, 4, 3), lambda x: x[..., 1:]),
    (lambda: nn.Narrow(0, 0, -2), (4, 3), lambda x: x[:3]),
    (lambda: nn.Select(1, -1), (2, 4, 3), lambda x: x[:, -1]),
    (lambda: nn.Select(0, 2), (4, 3), lambda x: x[2]),
    (lambda: nn.Replicate(3), (2, 4), lambda x: numpy.stack([x] * 3)),
    (lambda: nn.Replicate(2, -1), (2, 4), lambda x: numpy.stack([x] * 2, axis=-1)),
    (lambda: nn.Replicate(2, 1), (2, 4), lambda x: numpy.stack([x] * 2, axis=1)),
    (lambda: nn.Padding(1, -2, 7.0), (2, 3), lambda x: numpy.concatenate([numpy.full((2, 2), 7.0), x], 1)),
    (lambda: nn.Padding(0, 1), (2, 3), lambda x: numpy.concatenate([x, numpy.zeros((1, 3))], 0)),
    (lambda: nn.Padding(1, -1, 0, 2), (2, 3), lambda x: numpy.insert(x, 2, 0.0, axis=1)),
    (lambda: nn.Padding(1, 2, -1, 1), (2, 3), lambda x: numpy.insert(x, [2, 2], -1.0, axis=1)),
]


@pytest.mark.parametrize("make,shape,ref", CASES)
def test_jacobian_and_numpy_reference(xp, rng, make, shape, ref):
    m = on(xp, make())
    x = rand(xp, rng, *shape)
    assert_jacobian(m, x)
    numpy.testing.assert_array_equal(host(m.forward(x)), ref(host(x)))


def test_narrow_and_select_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 5, 2))
    tx = torch.tensor(x)
    numpy.testing.assert_array_equal(nn.Narrow(1, 1, 3).forward(x), tx.narrow(1, 1, 3).numpy())
    numpy.testing.assert_array_equal(nn.Select(1, 3).forward(x), tx.select(1, 3).numpy())
    numpy.testing.assert_array_equal(nn.Replicate(4, 1).forward(x), tx.unsqueeze(1).expand(3, 4, 5, 2).numpy())


@pytest.mark.parametrize("name,op", [("CSubTable", numpy.subtract), ("CDivTable", numpy.divide)])
def test_pair_tables(xp, rng, name, op):
    m = on(xp, getattr(nn, name)())
    a, b = rand(xp, rng, 2, 3), rand(xp, rng, 2, 3, low=0.5, high=2)
    numpy.testing.assert_allclose(host(m.forward([a, b])), op(host(a), host(b)), rtol=1e-15)
    assert_jacobian(m, [a, b])
    with pytest.raises(ValueError, match=rf"nn.{name}: input must be a list of 2 arrays, got 3"):
        m.forward([a, b, b])
    with pytest.raises(ValueError, match=rf"nn.{name}: input\[1\] must have the shape of input\[0\]"):
        m.forward([a, b[0]])


def test_bad_inputs():
    x = numpy.zeros((2, 3), numpy.float32)
    with pytest.raises(ValueError, match="nn.Narrow: dimension 2 is out of range for a 2-D input"):
        nn.Narrow(2, 0).forward(x)
    with pytest.raises(ValueError, match="nn.Narrow: offset 1 and length 3 ask for elements outside a dimension of size 3"):
        nn.Narrow(1, 1, 3).forward(x)
    with pytest.raises(ValueError, match="nn.Narrow: length must not be 0"):
        nn.Narrow(1, 1, 0)
    with pytest.raises(ValueError, match="nn.Select: index -4 is out of range for a dimension of size 3"):
        nn.Select(1, -4).forward(x)
    with pytest.raises(ValueError, match="nn.Select: index 0 is out of range for a dimension of size 0"):
        nn.Select(0, 0).forward(numpy.zeros((0, 3), numpy.float32))
    assert nn.Select(1, 0).forward(numpy.zeros((0, 3), numpy.float32)).shape == (0,)  # empty batch
    with pytest.raises(ValueError, match="nn.Replicate: dim 3 is out of range for a 3-D input"):
        nn.Replicate(2, 3).forward(x)
    with pytest.raises(ValueError, match="nn.Replicate: nf must be >= 1, got 0"):
        nn.Replicate(0)
    with pytest.raises(ValueError, match=r"nn.Padding: index 4 is out of range for a dimension of size 3 \(at most 3\)"):
        nn.Padding(1, 1, 0, 4).forward(x)
    m = nn.Narrow(1, 0, 2)
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.Narrow: gradOutput must be of shape \(2, 2\), got shape \(2, 3\)"):
        m.backward(x, x)
    with pytest.raises(TypeError, match="nn.Select: input must be floating point"):
        nn.Select(0, 0).forward(numpy.zeros(3, int))
    assert repr(nn.Padding(1, -2)) == "nn.Padding(1, -2, value=0, index=0)"
