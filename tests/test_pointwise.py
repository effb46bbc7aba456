"""Element-wise modules of nnlite.pointwise: Jacobians, NumPy and PyTorch references, errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand
from tests.test_activations import away_from

# module factory, NumPy reference forward, PyTorch reference (F, x) or None, input range, kinks
CASES = {
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda x: numpy.where(x > 0, x, 0.1 * x),
                  lambda F, x: F.leaky_relu(x, 0.1), (-1, 1), (0,)),
    "ELU": (lambda: nn.ELU(0.7), lambda x: numpy.where(x > 0, x, 0.7 * (numpy.exp(x) - 1)),
            lambda F, x: F.elu(x, 0.7), (-2, 2), (0,)),
    "Threshold": (lambda: nn.Threshold(0.2, -3), lambda x: numpy.where(x > 0.2, x, -3),
                  lambda F, x: F.threshold(x, 0.2, -3.0), (-1, 1), (0.2,)),
    "HardTanh": (nn.HardTanh, lambda x: numpy.clip(x, -1, 1), lambda F, x: F.hardtanh(x),
                 (-2, 2), (-1, 1)),
    "SoftPlus": (lambda: nn.SoftPlus(2, 3), lambda x: numpy.where(2 * x > 3, x, numpy.log1p(numpy.exp(2 * x)) / 2),
                 lambda F, x: F.softplus(x, beta=2, threshold=3), (-3, 3), (1.5,)),
    "Abs": (nn.Abs, numpy.abs, lambda F, x: x.abs(), (-1, 1), (0,)),
    "Exp": (nn.Exp, numpy.exp, lambda F, x: x.exp(), (-2, 2), ()),
    "Log": (nn.Log, numpy.log, lambda F, x: x.log(), (0.3, 3), ()),
    "Power": (lambda: nn.Power(2.5), lambda x: x ** 2.5, lambda F, x: x ** 2.5, (0.3, 2), ()),
    "MulConstant": (lambda: nn.MulConstant(-1.5), lambda x: -1.5 * x, lambda F, x: -1.5 * x, (-1, 1), ()),
    "AddConstant": (lambda: nn.AddConstant(0.25), lambda x: x + 0.25, lambda F, x: x + 0.25, (-1, 1), ()),
    "PReLU": (nn.PReLU, lambda x: numpy.where(x > 0, x, 0.25 * x),
              lambda F, x: F.prelu(x, x.new_full((1,), 0.25)), (-1, 1), (0,)),
}


def inputs(xp, rng, name, *shape):
    _, _, _, (low, high), kinks = CASES[name]
    return xp.asarray(away_from(host(rand(xp, rng, *shape, low=low, high=high)), kinks))


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_batched_and_unbatched(xp, rng, name):
    m = on(xp, CASES[name][0]())
    for shape in [(3, 4), (5,)]:
        assert_jacobian(m, inputs(xp, rng, name, *shape))


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy_and_keeps_float32(xp, rng, name):
    make, ref = CASES[name][:2]
    x = inputs(xp, rng, name, 2, 3, 4).astype(xp.float32)
    m = make() if xp is numpy else make().cuda()
    y = m.forward(x)
    assert y.dtype == numpy.float32 and y.shape == x.shape
    numpy.testing.assert_allclose(host(y), ref(host(x).astype(numpy.float64)), rtol=1e-6, atol=1e-6)
    assert m.backward(x, xp.ones_like(x)).dtype == numpy.float32


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_match_torch(rng, name):
    torch = pytest.importorskip("torch")
    make, _, tref = CASES[name][:3]
    x = inputs(numpy, rng, name, 3, 4)
    gy = rng.standard_normal((3, 4))
    tx = torch.tensor(x, requires_grad=True)
    ty = tref(torch.nn.functional, tx)
    ty.backward(torch.tensor(gy))
    m = make().double()
    numpy.testing.assert_allclose(m.forward(x), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(m.backward(x, gy), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_prelu_per_channel_slopes_against_torch_and_jacobian(xp, rng):
    for shape in [(2, 3, 2, 2), (3, 2, 2), (4, 3), (3,)]:
        m = on(xp, nn.PReLU(3))
        m.weight[...] = xp.asarray(numpy.array([0.1, -0.3, 0.5]))
        assert_jacobian(m, inputs(xp, rng, "PReLU", *shape))
    torch = pytest.importorskip("torch")
    x, gy = inputs(numpy, rng, "PReLU", 2, 3, 2, 2), rng.standard_normal((2, 3, 2, 2))
    m = nn.PReLU(3).double()
    m.weight[...] = [0.1, -0.3, 0.5]
    tw = torch.tensor(m.weight.copy(), requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.prelu(tx, tw)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(m.forward(x), ty.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(m.backward(x, gy), tx.grad.numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(m.gradWeight, tw.grad.numpy(), rtol=1e-12)


def test_edge_rules():
    x = numpy.array([-1.0, 0.0, 2.0])
    assert nn.Abs().backward(x, numpy.ones(3)).tolist() == [-1, 0, 1]
    assert nn.LeakyReLU().backward(x, numpy.ones(3)).tolist() == [0.01, 0.01, 1]
    sp = nn.SoftPlus()
    y = sp.forward(numpy.array([-800.0, 0.0, 800.0]))
    assert y.tolist() == [0.0, pytest.approx(numpy.log(2)), 800.0]
    assert repr(nn.LeakyReLU()) == "nn.LeakyReLU(0.01)" and repr(nn.PReLU(3)) == "nn.PReLU(3)"
    assert repr(nn.Threshold()) == "nn.Threshold(1e-06, 0)" and repr(nn.HardTanh()) == "nn.HardTanh(-1, 1)"
    assert nn.PReLU().weight.tolist() == [0.25] and nn.PReLU().parameters()[0][0].shape == (1,)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.Log: input must be >= 0, got a minimum of -2"):
        nn.Log().forward(numpy.array([1.0, -2.0]))
    with pytest.raises(TypeError, match="nn.Power: p must be a number, got 'x'"):
        nn.Power("x")
    with pytest.raises(ValueError, match="nn.SoftPlus: beta must be > 0"):
        nn.SoftPlus(0)
    with pytest.raises(ValueError, match=r"nn.PReLU: the input's axis 1 \(nOutputPlane\) must be 3, got 2"):
        nn.PReLU(3).forward(numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(ValueError, match=r"nn.PReLU: input must be \(C,\), \(B, C\)"):
        nn.PReLU(3).forward(numpy.zeros((1, 3, 1, 1, 1), numpy.float32))
    with pytest.raises(TypeError, match="nn.PReLU: input has dtype float64 but the parameters are float32"):
        nn.PReLU().forward(numpy.zeros(3))
    for make in [nn.Exp, nn.Abs, lambda: nn.MulConstant(2)]:
        m, x = make(), numpy.ones(3)
        m.forward(x)
        with pytest.raises(ValueError, match=r"nn\.\w+: gradOutput must have the shape of input \(3,\), got \(2,\)"):
            m.backward(x, numpy.ones(2))
    assert nn.ELU().forward(numpy.zeros((0, 3), numpy.float32)).shape == (0, 3)  # empty batch
    for make in [nn.Exp, nn.ELU]:  # backward reads the stored output
        with pytest.raises(RuntimeError, match=r"nn\.\w+: backward needs a forward first"):
            make().backward(numpy.ones(3), numpy.ones(3))
        m = make()
        m.forward(numpy.ones(1))
        with pytest.raises(ValueError, match=r"nn\.\w+: backward's input has shape \(3,\) but the last forward's had \(1,\)"):
            m.backward(numpy.ones(3), numpy.ones(3))


def test_log_of_a_negative_input_on_a_gpu_is_nan_as_in_torch(xp):
    if xp is numpy:
        pytest.skip("the device path: NumPy raises (test_bad_inputs)")
    with numpy.errstate(invalid="ignore"):  # the stand-in computes on NumPy
        y = host(nn.Log().forward(xp.asarray(numpy.array([1.0, -2.0]))))
    assert y[0] == 0 and numpy.isnan(y[1])
