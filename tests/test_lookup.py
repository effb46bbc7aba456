"""LookupTable: 0-based indices, scatter-added weight gradient, PyTorch's embedding."""
import numpy
import pytest

import nnlite as nn
from nnlite import jacobian
from tests import strict_cupy
from tests.conftest import on_stand_in
from tests.helpers import host, on


def test_forward_and_weight_jacobian_with_repeated_indices(xp, rng):
    m = on(xp, nn.LookupTable(5, 3))
    idx = xp.asarray(numpy.array([[0, 4, 4], [2, 0, 4]]))
    y = m.forward(idx)
    assert y.shape == (2, 3, 3)
    numpy.testing.assert_array_equal(host(y), host(m.weight)[host(idx)])
    assert jacobian.testJacobianParameters(m, idx, m.weight, m.gradWeight) < 1e-6
    gy = xp.ones((2, 3, 3))
    m.zeroGradParameters()
    gx = m.backward(idx, gy, 0.5)
    assert host(gx).shape == (2, 3) and not host(gx).any()
    numpy.testing.assert_array_equal(host(m.gradWeight)[:, 0], [1.0, 0, 0.5, 0, 1.5])  # counts x 0.5


def test_matches_torch_embedding(rng):
    torch = pytest.importorskip("torch")
    m = nn.LookupTable(6, 4).double()
    idx = rng.integers(0, 6, size=(3, 5))
    gy = rng.standard_normal((3, 5, 4))
    tw = torch.tensor(m.weight.copy(), requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_array_equal(m.forward(idx), ty.detach().numpy())
    m.backward(idx, gy)
    numpy.testing.assert_allclose(m.gradWeight, tw.grad.numpy(), rtol=1e-14)


def test_init_dtype_repr_and_bad_inputs():
    nn.manualSeed(1)
    m = nn.LookupTable(1000, 10)
    assert m.weight.dtype == numpy.float32 and abs(m.weight.std() - 1) < 0.02
    assert repr(m) == "nn.LookupTable(1000 -> 10)"
    with pytest.raises(TypeError, match="nn.LookupTable: input must be an integer array of 0-based indices, got float32"):
        m.forward(numpy.zeros(3, numpy.float32))
    with pytest.raises(ValueError, match=r"nn.LookupTable: indices must be in \[0, 1000\), got 1000"):
        m.forward(numpy.array([3, 1000]))
    with pytest.raises(ValueError, match=r"nn.LookupTable: indices must be in \[0, 1000\), got -1"):
        m.forward(numpy.array([-1]))
    idx = numpy.array([1, 2])
    m.forward(idx)
    with pytest.raises(ValueError, match=r"nn.LookupTable: gradOutput must be of shape \(2, 10\)"):
        m.backward(idx, numpy.zeros((2, 3), numpy.float32))
    assert m.forward(numpy.zeros((0,), int)).shape == (0, 10)  # empty batch


def test_bad_index_on_a_gpu_poisons_the_output_without_a_sync(xp):
    if xp is numpy:
        pytest.skip("the device path: NumPy raises (test_init_dtype_repr_and_bad_inputs)")
    m = nn.LookupTable(4, 2).cuda()
    bad, good = xp.asarray(numpy.array([1, 4])), xp.asarray(numpy.array([1, 3]))
    if on_stand_in():
        with strict_cupy.counting() as c:
            y = m.forward(bad)
        assert c.totals().get("sync", 0) == 0
    else:
        y = m.forward(bad)
    assert numpy.isnan(host(y)).all()
    assert numpy.isfinite(host(m.forward(good))).all()
