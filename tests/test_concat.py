"""Concat and DepthConcat: outputs joined along an axis, Jacobians through the children."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def test_concat_joins_outputs_and_sums_input_gradients(xp, rng):
    m = on(xp, nn.Concat(1, nn.SpatialConvolution(2, 3, 3, 3, 1, 1, 1), nn.Identity(),
                         nn.SpatialConvolution(2, 1, 1, 1)))
    x = rand(xp, rng, 1, 2, 3, 4)
    y = m.forward(x)
    parts = [host(c.forward(x)) for c in m.modules]
    numpy.testing.assert_array_equal(host(y), numpy.concatenate(parts, axis=1))
    assert y.shape == (1, 6, 3, 4)
    errs = assert_jacobian(m, x)
    assert len(errs) == 5  # input and both convolutions' weights and biases


def test_concat_negative_dimension_and_torch(rng):
    torch = pytest.importorskip("torch")
    m = nn.Concat(-1, nn.Linear(3, 2), nn.Linear(3, 4)).double()
    x = rng.standard_normal((5, 3))
    ref = [torch.nn.functional.linear(torch.tensor(x), torch.tensor(c.weight), torch.tensor(c.bias))
           for c in m.modules]
    numpy.testing.assert_allclose(m.forward(x), torch.cat(ref, dim=-1).numpy(), rtol=1e-14)


def test_depth_concat_centres_smaller_outputs(xp, rng):
    m = on(xp, nn.DepthConcat(1, nn.SpatialConvolution(2, 2, 3, 3), nn.SpatialConvolution(2, 1, 1, 1),
                              nn.SpatialConvolution(2, 1, 2, 2)))
    x = rand(xp, rng, 1, 2, 5, 6)
    y = host(m.forward(x))
    a, b, c = (host(child.forward(x)) for child in m.modules)  # 3x4, 5x6, 4x5
    assert y.shape == (1, 4, 5, 6)
    ref = numpy.zeros((1, 4, 5, 6))
    ref[:, 0:2, 1:4, 1:5] = a
    ref[:, 2:3] = b
    ref[:, 3:4, 0:4, 0:5] = c  # (5 - 4) // 2 = 0: Torch's floor puts the odd pad after
    numpy.testing.assert_array_equal(y, ref)
    assert_jacobian(m, x)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.Concat: the output of child \(1\) has shape \(4, 3\) but child "
                                         r"\(0\)'s is \(4, 2\); they must agree on every axis but 0"):
        nn.Concat(0, nn.Linear(3, 2), nn.Identity()).forward(numpy.zeros((4, 3), numpy.float32))
    m = nn.Concat(0, nn.Linear(3, 2), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="nn.Concat: dimension 2 is out of range for the children's 2-D outputs"):
        nn.Concat(2, nn.Linear(3, 2)).forward(numpy.zeros((4, 3), numpy.float32))
    x = numpy.zeros((4, 3), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.Concat: gradOutput must be of shape \(8, 2\), got shape \(4, 2\)"):
        m.backward(x, numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(ValueError, match="nn.DepthConcat: the container has no children"):
        nn.DepthConcat(1).forward(x)
    with pytest.raises(ValueError, match=r"nn.DepthConcat: the output of child \(1\) has shape \(4, 3, 1\) .* they must have as many axes"):
        nn.DepthConcat(1, nn.Identity(), nn.Replicate(1, -1)).forward(x)
    assert m.forward(numpy.zeros((0, 3), numpy.float32)).shape == (0, 2)  # empty batch
