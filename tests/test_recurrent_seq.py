"""The fully connected LSTM and the Sequencer (SPEC §3)."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import host, on, rand
from tests.recurrent_helpers import FromState, assert_gradients


def sigmoid(a):
    return 1 / (1 + numpy.exp(-a))


# ----------------------------------------------------------------------- LSTM
@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_jacobians_fresh_user_state_and_remembered(xp, rng, peephole):
    m = on(xp, nn.LSTM(3, 4, peephole))
    assert_gradients(m, rand(xp, rng, 3, 2, 3))
    m.h0, m.c0 = rand(xp, rng, 4), rand(xp, rng, 4)
    assert_gradients(m, list(rand(xp, rng, 4, 3)), [(m.h0, m.gradH0), (m.c0, m.gradC0)])
    m.h0 = m.c0 = None
    m.remember("both").forward(rand(xp, rng, 3, 2, 3))
    assert_gradients(FromState(m, m.lastState), rand(xp, rng, 3, 2, 3))


@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_forward_matches_numpy_reference(xp, rng, peephole):
    m = on(xp, nn.LSTM(3, 4, peephole))
    x = rand(xp, rng, 5, 2, 3)
    W, b, Wh = host(m.weight), host(m.bias), host(m.weightHidden)
    p = host(m.weightPeephole) if peephole else numpy.zeros((3, 4))
    h, c, ref = numpy.zeros((2, 4)), numpy.zeros((2, 4)), []
    for xt in host(x):
        ai, af, ag, ao = numpy.split(xt @ W.T + b + h @ Wh.T, 4, axis=1)
        i, f = sigmoid(ai + p[0] * c), sigmoid(af + p[1] * c)
        c = f * c + i * numpy.tanh(ag)
        h = sigmoid(ao + p[2] * c) * numpy.tanh(c)
        ref.append(h)
    numpy.testing.assert_allclose(host(m.forward(x)), numpy.stack(ref), rtol=1e-10, atol=1e-12)


def test_lstm_parameters_init_and_repr():
    m = nn.LSTM(5, 3, peephole=True)
    assert [p.shape for p in m.parameters()[0]] == [(12, 5), (12,), (12, 3), (3, 3)]
    assert (m.bias == numpy.repeat([0, 1, 0, 0], 3)).all()
    assert all(abs(w).max() <= 0.08 for w in (m.weight, m.weightHidden, m.weightPeephole))
    assert len(nn.LSTM(5, 3).parameters()[0]) == 3
    assert repr(m) == "nn.LSTM(5 -> 3, peephole)"


def test_lstm_bad_inputs(rng):
    m = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"size \(inputSize\) must be 3, got 2"):
        m.forward(rng.standard_normal((2, 1, 2)).astype(numpy.float32))
    with pytest.raises(ValueError, match=r"\(T, B, inputSize\) or a list of T steps in sequence mode"):
        m.forward(numpy.zeros(3, dtype=numpy.float32))
    with pytest.raises(ValueError, match=r"one step \(B, inputSize\) at a time needs mode='step'"):
        m.forward(numpy.zeros((2, 3), dtype=numpy.float32))  # a batch, never an unbatched sequence
    with pytest.raises(TypeError, match="must be an integer"):
        nn.LSTM(3.5, 4)


# ------------------------------------------------------------------ Sequencer
class AddPair(nn.Module):
    """A table module for the tests: ``[a, b] -> a + b``."""
    parameter_names = ()

    def updateOutput(self, input):
        self.output = input[0] + input[1]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = [gradOutput, gradOutput]
        return self.gradInput


def mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_sequencer_over_a_plain_module_jacobians(xp, rng):
    s = on(xp, nn.Sequencer(mlp()))
    assert_gradients(s, rand(xp, rng, 3, 2, 3))
    assert_gradients(s, [rand(xp, rng, 2, 3) for _ in range(3)])
    assert_gradients(on(xp, nn.Sequencer(mlp(), batched=False)), [rand(xp, rng, 3) for _ in range(3)])


def test_sequencer_folding_equals_per_step_application_with_shared_parameters(rng):
    m = mlp().double()
    s = nn.Sequencer(m.clone())
    x, go = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2))
    y = s.forward(x)
    assert numpy.shares_memory(y, s.module.output)  # unfolding is a reshape, not a copy
    s.zeroGradParameters()
    gi = s.backward(x, go)
    m.zeroGradParameters()
    for t in range(4):  # Torch's Sequencer: one clone per step, gradients accumulated
        numpy.testing.assert_allclose(m.forward(x[t]), y[t], rtol=1e-12)
        numpy.testing.assert_allclose(m.backward(x[t], go[t]), gi[t], rtol=1e-12)
    for g, gs in zip(m.parameters()[1], s.parameters()[1]):
        numpy.testing.assert_allclose(g, gs, rtol=1e-12)
    ys = s.forward(list(x))
    gis = s.backward(list(x), list(go))
    assert isinstance(ys, list) and isinstance(gis, list)
    numpy.testing.assert_allclose(numpy.stack(ys), y, rtol=1e-12)
    numpy.testing.assert_allclose(numpy.stack(gis), gi, rtol=1e-12)


def test_sequencer_folds_table_steps_leaf_by_leaf(rng):
    s = nn.Sequencer(AddPair())
    steps = [[rng.standard_normal((2, 3)), rng.standard_normal((2, 3))] for _ in range(3)]
    y = s.forward(steps)
    numpy.testing.assert_array_equal(numpy.stack(y), numpy.stack([a + b for a, b in steps]))
    g = s.backward(steps, y)
    assert len(g) == 3 and all(len(gt) == 2 for gt in g)
    numpy.testing.assert_array_equal(g[1][0], y[1])


def test_sequencer_over_a_recurrent_module(xp, rng):
    s = on(xp, nn.Sequencer(nn.ConvLSTM(2, 2, 5, 3, 3)))
    x = rand(xp, rng, 3, 2, 2, 3, 3)
    assert_gradients(s, x)
    y = s.forward(x).copy()
    numpy.testing.assert_array_equal(host(xp.stack(s.forward(list(x)))), host(y))
    numpy.testing.assert_array_equal(host(s.module.forward(x)), host(y))


def test_sequencer_hands_whole_sequences_to_containers_of_recurrent_modules(rng):
    net = nn.Sequential(nn.Sequencer(nn.Linear(3, 4)), nn.LSTM(4, 2)).double()
    s = nn.Sequencer(net)
    x = rng.standard_normal((3, 2, 3))
    lin, lstm = net.modules[0].module, net.modules[1]
    numpy.testing.assert_allclose(s.forward(x), lstm.clone().forward(x @ lin.weight.T + lin.bias),
                                  rtol=1e-12)
    assert nn.jacobian.testJacobian(s, x) < 1e-6


def test_sequencer_remember_and_forget_reach_every_recurrent_module(rng):
    a, b = nn.LSTM(3, 3), nn.LSTM(3, 2)
    s = nn.Sequencer(nn.Sequential(a, nn.Sequencer(nn.Tanh()), b))
    assert s.remember("eval") is s and a.rememberMode == b.rememberMode == "eval"
    s.remember()
    s.forward(rng.standard_normal((2, 1, 3)).astype(numpy.float32))
    assert a.lastState is not None and b.lastState is not None
    s.forget()
    assert a.lastState is None and b.lastState is None
    with pytest.raises(ValueError, match="mode must be one of"):
        s.remember("sometimes")


def test_sequencer_bad_inputs(rng):
    s = nn.Sequencer(nn.Linear(3, 2))
    x = rng.standard_normal((3, 2, 3)).astype(numpy.float32)
    with pytest.raises(RuntimeError, match="backward needs a forward"):
        s.backward(x, x)
    y = s.forward(x)
    with pytest.raises(ValueError, match="gradOutput of backward has 2 steps but the forward sequence had 3"):
        s.backward(x, y[:2])
    with pytest.raises(ValueError, match="input of backward has 4 steps"):
        s.backward(list(x) + [x[0]], y)
    with pytest.raises(ValueError, match="folded gradOutput"):
        s.backward(x, y[:, :, :1])
    with pytest.raises(ValueError, match=r"nn.Sequencer \(0\) nn.Linear.*must be 3, got 4"):
        s.forward(numpy.zeros((3, 2, 4), dtype=numpy.float32))
    with pytest.raises(ValueError, match="step 1"):
        s.forward([x[0], x[1, :, :2]])
    with pytest.raises(ValueError, match="empty sequence"):
        s.forward([])
    with pytest.raises(ValueError, match="holds one module"):
        s.add(nn.Tanh())
    r = nn.Sequencer(nn.ConvLSTM(2, 3, 5, 3, 3))
    with pytest.raises(ValueError, match=r"nn.Sequencer \(0\) nn.ConvLSTM: the steps' channel count"):
        r.forward(numpy.zeros((2, 1, 4, 3, 3), dtype=numpy.float32))
    assert repr(r) == "nn.Sequencer @ nn.ConvLSTM(2 -> 3, kc=3, km=3)"
