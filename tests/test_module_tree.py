"""Torch's module-tree utilities (__call__, apply, findModules, listModules, replace, reset,
Sequential.insert/remove, Criterion.__call__) and getParameters' handling of old references."""
import numpy
import pytest

import nnlite as nn
from nnlite import jacobian


def net():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 2), nn.Sigmoid()))


def test_call_is_forward_or_forward_and_backward(rng):
    m = net().double()
    x, go = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    y = m(x).copy()
    numpy.testing.assert_array_equal(y, m.clone().forward(x))
    ref = m.clone()
    ref.forward(x)
    out, gi = m(x, go)
    numpy.testing.assert_array_equal(out, y)
    numpy.testing.assert_allclose(gi, ref.backward(x, go), rtol=1e-12)
    crit = nn.MSECriterion()
    loss, g = crit(y, numpy.zeros_like(y))
    assert loss == pytest.approx(float((y ** 2).mean())) and loss == crit.output
    numpy.testing.assert_allclose(g, 2 * y / y.size, rtol=1e-12)


def test_apply_list_find_and_replace():
    m = net()
    inner = m.modules[2]
    assert m.listModules() == [m, m.modules[0], m.modules[1], inner, inner.modules[0], inner.modules[1]]
    seen = []
    assert m.apply(lambda x: seen.append(x.typename())) is m
    assert seen == [x.typename() for x in m.listModules()]
    found, containers = m.findModules("nn.Linear")
    assert found == [m.modules[0], inner.modules[0]] and containers == [m, inner]
    assert m.findModules(nn.Sequential) == ([m, inner], [None, m])
    assert m.findModules("nn.ReLU") == ([], [])
    out = m.replace(lambda x: nn.ReLU() if isinstance(x, nn.Tanh) else x)
    assert out is m and isinstance(m.modules[1], nn.ReLU) and inner.modules[1].typename() == "nn.Sigmoid"


def test_sequential_insert_and_remove():
    a, b, c = nn.Tanh(), nn.Sigmoid(), nn.ReLU()
    s = nn.Sequential(a)
    assert s.insert(b) is s and s.modules == [a, b]
    s.insert(c, 0)
    assert s.modules == [c, a, b]
    assert s.remove(1).modules == [c, b]
    assert s.remove().modules == [c]
    with pytest.raises(IndexError, match=r"nn.Sequential.remove: index 3 is outside 0..0"):
        s.remove(3)
    with pytest.raises(IndexError, match="insert: index 5"):
        s.insert(a, 5)
    with pytest.raises(TypeError, match="expected an nn.Module, got int"):
        s.insert(3)


@pytest.mark.parametrize("make, bounds", [
    (lambda: nn.Linear(20, 30), {"weight": 20 ** -0.5, "bias": 20 ** -0.5}),
    (lambda: nn.SpatialConvolution(3, 4, 5, 5), {"weight": 75 ** -0.5, "bias": 75 ** -0.5}),
    (lambda: nn.CMul(4, 5), {"weight": 20 ** -0.5}),
    (lambda: nn.Mul(), {"weight": 1.0}),
    (lambda: nn.ConvLSTM(3, 5, 9, 3, 5), {"weight": 27 ** -0.5, "bias": 27 ** -0.5,
                                          "weightHidden": 125 ** -0.5}),
    (lambda: nn.UntiedConvLSTM(3, 5, 9, 3, 5), {"weightFirst": 27 ** -0.5, "biasFirst": 27 ** -0.5}),
    (lambda: nn.LSTM(6, 7, peephole=True), {"weight": 6 ** -0.5, "bias": 6 ** -0.5,
                                            "weightHidden": 7 ** -0.5, "weightPeephole": 7 ** -0.5}),
])
def test_reset_draws_torchs_default_init(make, bounds):
    nn.manualSeed(1)
    m = make()
    before = [p.copy() for p in m.parameters()[0]]
    assert m.reset() is m
    for name, bound in bounds.items():
        a = getattr(m, name)
        assert abs(a).max() <= bound and abs(a).max() > 0.5 * bound, name
    assert any((p != b).any() for p, b in zip(m.parameters()[0], before))
    m.reset(0.01)
    for name in bounds:
        assert abs(getattr(m, name)).max() <= 0.01 * 3 ** 0.5


def test_containers_reset_every_child_and_init_bias():
    nn.manualSeed(2)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.ConvLSTM(2, 3, 9, 3, 3))
    w = m.modules[0].weight.copy()
    m.reset()
    assert (m.modules[0].weight != w).all()
    lstm = m.modules[2]
    assert lstm.initBias() is lstm
    numpy.testing.assert_array_equal(lstm.bias, numpy.repeat([0, 1, 0, 0], 3))
    lstm.initBias(0.5, -0.25)
    numpy.testing.assert_array_equal(lstm.bias, numpy.repeat([-0.25, 0.5, -0.25, -0.25], 3))
    untied = nn.UntiedConvLSTM(2, 3, 9, 3, 3).initBias(2, 0.5)
    assert (untied.biasFirst == 0.5).all()


# ------------------------------------------------------------ getParameters
def test_a_stale_parameter_reference_cannot_pass_a_jacobian_test(rng):
    m = nn.Linear(3, 2).double()
    w, gw = m.weight, m.gradWeight  # taken before getParameters: stale afterwards
    flat, _ = m.getParameters()
    assert m.weight is not w and numpy.shares_memory(m.weight, flat)
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 1.0  # writing through a stale reference fails loudly
    x = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="not held by nn.Linear.*stale reference"):
        jacobian.testJacobianParameters(m, x, w, gw)
    assert jacobian.testJacobianParameters(m, x, m.weight, m.gradWeight) < 1e-6


def test_get_parameters_again_keeps_the_same_vectors():
    m = net()
    flat, grad = m.getParameters()
    w = m.modules[0].weight
    flat2, grad2 = m.getParameters()
    assert flat2 is flat and grad2 is grad and m.modules[0].weight is w
    flat[:] = 3
    assert (m.modules[2].modules[0].bias == 3).all()
    m.add(nn.Linear(2, 2))  # a new module: re-flattened, old values kept
    flat3, _ = m.getParameters()
    assert flat3.size == flat.size + 6 and (flat3[:flat.size] == 3).all()


def test_weights_tied_through_a_transpose_are_an_error_not_silently_untied():
    enc, dec = nn.Linear(3, 4), nn.Linear(4, 3)
    dec.weight = enc.weight.T
    with pytest.raises(ValueError, match=r"nn.Linear.weight and nn.Linear.weight share memory in "
                                         r"different layouts.*transpose"):
        nn.Sequential(enc, dec).getParameters()
    with pytest.raises(ValueError, match=r"nn.Sequential.type: .*share memory in different layouts.*"
                                         r"a conversion would untie them"):
        nn.Sequential(enc, dec).double()
    assert enc.weight.dtype == numpy.float32 and dec.weight.base is enc.weight  # nothing converted
