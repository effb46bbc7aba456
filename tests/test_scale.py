"""Mul and CMul (SPEC §2): learned scalar and element-wise scaling."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def test_mul_jacobian_batched_and_unbatched(xp, rng):
    m = on(xp, nn.Mul())
    assert_jacobian(m, rand(xp, rng, 2, 3, 2))
    assert_jacobian(m, rand(xp, rng, 4))


@pytest.mark.parametrize("size,shape", [((3, 2), (2, 3, 2)), ((3, 2), (3, 2)), ((2, 1, 1), (2, 2, 3, 2)),
                                        ((1, 3), (2, 2, 3))])
def test_cmul_jacobian(xp, rng, size, shape):
    m = on(xp, nn.CMul(*size))
    assert_jacobian(m, rand(xp, rng, *shape))


def test_mul_forward_and_weight_gradient(xp, rng):
    m = on(xp, nn.Mul())
    x, gy = rand(xp, rng, 3, 4), rand(xp, rng, 3, 4)
    w = float(host(m.weight)[0])
    numpy.testing.assert_allclose(host(m.forward(x)), w * host(x), rtol=1e-12)
    m.zeroGradParameters()
    gx = m.backward(x, gy, scale=0.5)
    numpy.testing.assert_allclose(host(gx), w * host(gy), rtol=1e-12)
    numpy.testing.assert_allclose(host(m.gradWeight), [0.5 * (host(x) * host(gy)).sum()], rtol=1e-12)
    m.backward(x, gy)
    numpy.testing.assert_allclose(host(m.gradWeight), [1.5 * (host(x) * host(gy)).sum()], rtol=1e-12)


def test_mul_init_and_settable_value():
    m = nn.Mul()
    assert m.weight.shape == (1,) and m.weight.dtype == numpy.float32 and abs(m.weight[0]) <= 1
    assert m.parameters()[0][0] is m.weight and len(m.parameters()[0]) == 1
    assert nn.Mul(2 / 32).weight.tolist() == [0.0625]
    x = numpy.ones((2, 2), numpy.float32)
    assert nn.Mul(3).forward(x).tolist() == [[3, 3], [3, 3]]


def test_cmul_forward_and_gradients_match_broadcasting(xp, rng):
    m = on(xp, nn.CMul(3, 1, 1))
    x, gy = rand(xp, rng, 2, 3, 2, 4), rand(xp, rng, 2, 3, 2, 4)
    w = host(m.weight)
    numpy.testing.assert_allclose(host(m.forward(x)), host(x) * w, rtol=1e-12)
    m.zeroGradParameters()
    numpy.testing.assert_allclose(host(m.backward(x, gy)), host(gy) * w, rtol=1e-12)
    want = (host(x) * host(gy)).sum(axis=(0, 2, 3)).reshape(3, 1, 1)
    numpy.testing.assert_allclose(host(m.gradWeight), want, rtol=1e-12)


def test_cmul_init_and_repr():
    m = nn.CMul(4, 4)
    assert m.weight.shape == (4, 4) and numpy.abs(m.weight).max() <= 0.25 and m.weight.std() > 0.05
    assert nn.CMul((2, 3)).weight.shape == (2, 3)
    assert repr(m) == "nn.CMul(4x4)"
    m.reset(stdv=0.1)
    assert numpy.abs(m.weight).max() <= 0.1 * 3 ** 0.5 + 1e-7


def test_cmul_shape_mismatch_is_an_error():
    m = nn.CMul(3, 4)
    with pytest.raises(ValueError, match=r"nn.CMul: input must end with axes matching the weight \(3, 4\).*"
                                         r"got shape \(2, 4, 3\)"):
        m.forward(numpy.zeros((2, 4, 3), numpy.float32))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        m.forward(numpy.zeros(4, numpy.float32))
    with pytest.raises(ValueError, match=r"got shape \(2, 1, 4\)"):  # would broadcast the output up
        m.forward(numpy.zeros((2, 1, 4), numpy.float32))


def test_bad_inputs_are_errors():
    with pytest.raises(TypeError, match="nn.Mul: input has dtype float64 but the parameters are float32"):
        nn.Mul().forward(numpy.zeros(3))
    with pytest.raises(TypeError, match="nn.CMul: input must be floating point"):
        nn.CMul(3).forward(numpy.zeros(3, numpy.int32))
    with pytest.raises(ValueError, match=r"nn.CMul: sizes must be >= 1, got \(3, 0\)"):
        nn.CMul(3, 0)
    m, x = nn.Mul(), numpy.zeros((2, 3), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must have the shape of input \(2, 3\), got \(3,\)"):
        m.backward(x, numpy.zeros(3, numpy.float32))
