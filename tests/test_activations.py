"""Element-wise transfer functions (SPEC §2): gradients, references, Torch's edge rules."""
import warnings

import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def away_from(x, points, gap=0.05):
    """Move values within ``gap`` of a kink so finite differences do not straddle it."""
    for p in points:
        near = abs(x - p) < gap
        x[near] = p + 2 * gap
    return x


# module factory, reference forward on host float64, input range
CASES = {
    "Tanh": (nn.Tanh, numpy.tanh, (-2, 2)),
    "Sigmoid": (nn.Sigmoid, lambda x: 1 / (1 + numpy.exp(-x)), (-4, 4)),
    "ReLU": (nn.ReLU, lambda x: numpy.maximum(x, 0), (-1, 1)),
    "Square": (nn.Square, lambda x: x * x, (-2, 2)),
    "Sqrt": (nn.Sqrt, numpy.sqrt, (0.2, 2)),
    "Clamp": (lambda: nn.Clamp(-0.5, 0.3), lambda x: numpy.clip(x, -0.5, 0.3), (-1, 1)),
}
KINKS = {"ReLU": (0,), "Clamp": (-0.5, 0.3)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_batched_and_unbatched(xp, rng, name):
    make, _, (low, high) = CASES[name]
    m = on(xp, make())
    for shape in [(3, 4), (5,)]:
        x = away_from(host(rand(xp, rng, *shape, low=low, high=high)), KINKS.get(name, ()))
        assert_jacobian(m, xp.asarray(x))


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy_and_keeps_float32(xp, rng, name):
    make, ref, (low, high) = CASES[name]
    x = rand(xp, rng, 2, 3, 4, low=low, high=high).astype(xp.float32)
    y = make().forward(x)
    assert y.dtype == numpy.float32 and y.shape == x.shape
    numpy.testing.assert_allclose(host(y), ref(host(x).astype(numpy.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_is_repeatable_and_float32(xp, rng, name):
    make, _, (low, high) = CASES[name]
    m = make()
    x = rand(xp, rng, 6, low=low, high=high).astype(xp.float32)
    gy = rand(xp, rng, 6).astype(xp.float32)
    m.forward(x)
    first = host(m.backward(x, gy)).copy()
    assert first.dtype == numpy.float32
    numpy.testing.assert_array_equal(host(m.backward(x, gy)), first)


def test_sigmoid_saturates_without_overflow(xp):
    x = xp.asarray(numpy.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning from exp
        y = host(nn.Sigmoid().forward(x))
    assert y[0] == 0 and y[2] == 0.5 and y[4] == 1
    numpy.testing.assert_allclose(y[1], numpy.exp(-30) / (1 + numpy.exp(-30)), rtol=1e-14)


def test_relu_and_clamp_block_the_gradient_at_the_bounds(xp):
    x = xp.asarray(numpy.array([-0.5, -0.2, 0.0, 0.3, 0.9]))
    gy = xp.ones_like(x)
    relu = nn.ReLU()
    relu.forward(x)
    assert host(relu.backward(x, gy)).tolist() == [0, 0, 0, 1, 1]
    clamp = nn.Clamp(-0.5, 0.3)
    assert host(clamp.forward(x)).tolist() == [-0.5, -0.2, 0.0, 0.3, 0.3]
    assert host(clamp.backward(x, gy)).tolist() == [0, 1, 1, 0, 0]


def test_relu_follows_torch_threshold_on_nan():
    assert nn.ReLU().forward(numpy.array([numpy.nan, -numpy.inf, 2.0])).tolist() == [0, 0, 2]


def test_sqrt_gradient_is_half_over_y_and_zero_at_zero(xp):
    x = xp.asarray(numpy.array([0.0, 0.25, 4.0]))
    m = nn.Sqrt()
    m.forward(x)
    assert host(m.backward(x, xp.asarray(numpy.array([3.0, 1.0, 2.0])))).tolist() == [0.0, 1.0, 0.5]


def test_sqrt_of_a_negative_input_is_an_error():
    with pytest.raises(ValueError, match=r"nn.Sqrt: input must be >= 0, got a minimum of -1.5"):
        nn.Sqrt().forward(numpy.array([1.0, -1.5]))


def test_clamp_needs_min_below_max_and_shows_its_bounds():
    with pytest.raises(ValueError, match="min must be smaller than max"):
        nn.Clamp(1, 1)
    assert repr(nn.Clamp(-0.5, 0.5)) == "nn.Clamp(-0.5, 0.5)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_inputs_are_errors(name):
    make = CASES[name][0]
    with pytest.raises(TypeError, match=r"nn\.\w+: input must be floating point"):
        make().forward(numpy.ones(3, numpy.int64))
    with pytest.raises(TypeError, match="must be a NumPy or CuPy array, got list"):
        make().forward([1.0, 2.0])
    m, x = make(), numpy.full(3, 0.1)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must have the shape of input \(3,\), got \(4,\)"):
        m.backward(x, numpy.ones(4))
