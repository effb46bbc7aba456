"""The Module API contract of SPEC §1, on a small Linear/Tanh network."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_jacobian_of_a_sequential(xp, rng):
    m = on(xp, mlp())
    assert_jacobian(m, rand(xp, rng, 5, 3))
    assert_jacobian(m, rand(xp, rng, 3))


def test_linear_matches_numpy_reference(xp, rng):
    m = on(xp, nn.Linear(3, 2))
    x = rand(xp, rng, 4, 3)
    ref = host(x) @ host(m.weight).T + host(m.bias)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-12)


def test_parameter_gradients_accumulate_with_scale(rng):
    m = mlp().double()
    x, go = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    m.zeroGradParameters()
    m.forward(x)
    m.backward(x, go)
    once = [g.copy() for g in m.parameters()[1]]
    m.backward(x, go, scale=0.5)
    for g, g1 in zip(m.parameters()[1], once):
        numpy.testing.assert_allclose(g, 1.5 * g1)


def test_get_parameters_gives_views_and_shares_once(rng):
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3).share(a, "weight", "bias", "gradWeight", "gradBias")
    net = nn.Sequential(a, b)
    flat, flat_grad = net.getParameters()
    assert flat.shape == (12,) and flat_grad.shape == (12,)
    flat[:] = 7
    assert (a.weight == 7).all() and (b.weight == 7).all() and b.weight is a.weight
    flat2, _ = net.getParameters()  # re-flattening keeps the values
    assert (flat2 == 7).all()


def test_update_parameters_and_zero_grad(rng):
    m = nn.Linear(2, 2).double()
    w0 = m.weight.copy()
    m.gradWeight[...] = 1
    m.updateParameters(0.1)
    numpy.testing.assert_allclose(m.weight, w0 - 0.1)
    m.zeroGradParameters()
    assert not m.gradWeight.any()


def test_modes_clone_type_clear_state(rng):
    m = mlp()
    m.evaluate()
    assert not any(c.train for c in m.modules_tree())
    m.training()
    assert all(c.train for c in m.modules_tree())
    c = m.clone()
    c[0].weight[...] = 0
    assert m[0].weight.any()
    m.double()
    assert m[0].weight.dtype == numpy.float64
    m.forward(rng.standard_normal((2, 3)))
    assert m.clearState() is m and m.output is None and m[0].output is None


def test_type_keeps_shared_arrays_shared():
    a = nn.Linear(2, 2)
    b = nn.Linear(2, 2).share(a, "weight")
    nn.Sequential(a, b).double()
    assert b.weight is a.weight and a.weight.dtype == numpy.float64


def test_errors_name_the_failing_child(rng):
    m = mlp()
    with pytest.raises(ValueError, match=r"Sequential \(0\) nn.Linear.*must be 3, got 5"):
        m.forward(rng.standard_normal((2, 5)).astype(numpy.float32))
    with pytest.raises(TypeError, match="floating point"):
        m.forward(numpy.ones((2, 3), dtype=numpy.int64))
    with pytest.raises(TypeError, match="dtype float64 but the parameters are float32"):
        m.forward(numpy.ones((2, 3)))


def test_repr_is_an_indented_tree():
    text = repr(nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Tanh())))
    assert "[input -> (0) -> (1) -> output]" in text
    assert "(0): nn.Linear(3 -> 4)" in text and "    (0): nn.Tanh" in text


def test_jacobian_tester_catches_a_wrong_gradient(rng):
    class Wrong(nn.Tanh):
        def updateGradInput(self, input, gradOutput):
            self.gradInput = gradOutput * 1.0
            return self.gradInput
    assert nn.jacobian.testJacobian(Wrong(), rng.standard_normal((3,))) > 1e-2
    with pytest.raises(TypeError, match="float64"):
        nn.jacobian.testJacobian(nn.Tanh(), numpy.ones(3, dtype=numpy.float32))


def test_update_parameters_jacobian(rng):
    m = mlp().double()
    assert nn.jacobian.testJacobianUpdateParameters(m, rng.standard_normal((2, 3)), m[2].weight) < 1e-6


def test_rng_state_round_trip_repeats_the_initialisation():
    nn.manualSeed(3)
    state = nn.getRNGState()
    first = nn.Linear(4, 4).weight.copy()
    nn.Linear(4, 4)  # moves the generator on
    nn.setRNGState(state)
    numpy.testing.assert_array_equal(nn.Linear(4, 4).weight, first)


def _conv_chain():
    nn.manualSeed(3)
    return nn.Sequential(nn.Identity(), nn.SpatialConvolution(2, 3, 3, 3, 1, 1, 1), nn.Tanh(),
                         nn.SpatialConvolution(3, 2, 3, 3, 1, 1, 1))


@pytest.mark.parametrize("wrap", [False, True])
def test_no_grad_input_skips_only_the_input_gradient(xp, rng, wrap):
    """``noGradInput`` (Torch's ``gradInput = nil``): backward returns None and computes no
    input gradient in the leading layers, and every parameter gradient is what a full
    backward gives. ``Sequencer`` passes it on to its module."""
    make = (lambda: nn.Sequencer(_conv_chain())) if wrap else _conv_chain
    full, skip = on(xp, make()), on(xp, make().noGradInput())
    chain = skip.module if wrap else skip
    assert [m.gradInputNeeded for m in chain.modules] == [False, False, True, True]
    x = rand(xp, rng, *((2, 3, 2, 4, 4) if wrap else (3, 2, 4, 4)))
    gy = rand(xp, rng, *full.forward(x).shape)
    skip.forward(x)
    assert full.backward(x, gy) is not None
    assert skip.backward(x, gy) is None and chain.modules[1].gradInput is None
    for a, b in zip(full.parameters()[1], skip.parameters()[1]):
        numpy.testing.assert_allclose(host(b), host(a), rtol=1e-12, atol=1e-12)
    assert host(skip.updateGradInput(x, gy)).shape == x.shape  # a direct call still computes it


def test_trainer_skips_the_frames_gradient():
    from models import build
    from models.training import Trainer
    model = build("ae-conv", height=16, width=16)
    Trainer(model)
    conv = model.findModules("nn.SpatialConvolution")[0]
    assert not model.gradInputNeeded and not conv[0].gradInputNeeded and conv[1].gradInputNeeded
