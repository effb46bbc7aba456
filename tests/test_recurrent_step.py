"""The two call forms of the recurrent modules (rnn's step-by-step form and the whole-sequence
form), rho-truncated BPTT, and rnn's Sequencer(Sequential(encoder, ConvLSTM, decoder))."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import host, on, rand
from tests.recurrent_helpers import FromState, assert_gradients

MODULES = {
    "convlstm": (lambda **kw: nn.ConvLSTM(2, 3, 9, 3, 3, **kw), (2, 2, 4, 4)),
    "untied": (lambda **kw: nn.UntiedConvLSTM(2, 3, 9, 3, 3, **kw), (2, 2, 4, 4)),
    "lstm peephole": (lambda **kw: nn.LSTM(3, 4, peephole=True, rho=9, **kw), (2, 3)),
}


def sequence_run(m, x, go):
    """(output, gradInput, parameter gradients) of one sequence-mode forward/backward."""
    m.zeroGradParameters()
    y = m.forward(x).copy()
    gi = m.backward(x, go).copy()
    return y, gi, [g.copy() for g in m.parameters()[1]]


def step_run(m, x, go, split=False):
    """The same in step mode: T forwards, then backward (or the split pass) in reverse order."""
    m.forget()
    m.zeroGradParameters()
    xp = nn.get_xp(x)
    y = xp.stack([m.forward(x[t]).copy() for t in range(len(x))])
    gi = [None] * len(x)
    for t in reversed(range(len(x))):
        gi[t] = (m.updateGradInput(x[t], go[t]) if split else m.backward(x[t], go[t])).copy()
    if split:
        for t in reversed(range(len(x))):
            m.accGradParameters(x[t], go[t])
    return y, xp.stack(gi), [g.copy() for g in m.parameters()[1]]


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("split", [False, True])
def test_step_form_gives_the_sequence_forms_outputs_and_gradients(xp, rng, name, split):
    make, step = MODULES[name]
    seq = on(xp, make())
    stepper = on(xp, make(mode="step"))
    stepper.share(seq, *seq.parameter_names)
    x, go = rand(xp, rng, 4, *step), rand(xp, rng, 4, *seq.forward(rand(xp, rng, 1, *step)).shape[1:])
    want = sequence_run(seq, x, go)
    got = step_run(stepper, x, go, split)
    for a, b in zip(got[:2] + tuple(got[2]), want[:2] + tuple(want[2])):
        numpy.testing.assert_allclose(host(a), host(b), rtol=1e-10, atol=1e-12)


def test_step_form_from_a_user_state_writes_its_gradient(xp, rng):
    seq = on(xp, nn.ConvLSTM(2, 3, 9, 3, 3))
    stepper = on(xp, nn.ConvLSTM(2, 3, 9, 3, 3, mode="step")).share(seq, "weight", "bias", "weightHidden")
    for m in (seq, stepper):
        m.h0, m.c0 = rand(xp, rng, 2, 3, 4, 4), rand(xp, rng, 2, 3, 4, 4)
    stepper.h0[...], stepper.c0[...] = seq.h0, seq.c0
    x, go = rand(xp, rng, 3, 2, 2, 4, 4), rand(xp, rng, 3, 2, 3, 4, 4)
    sequence_run(seq, x, go)
    step_run(stepper, x, go)
    numpy.testing.assert_allclose(host(stepper.gradH0), host(seq.gradH0), rtol=1e-10)
    numpy.testing.assert_allclose(host(stepper.gradC0), host(seq.gradC0), rtol=1e-10)
    assert seq.gradH0.any()


def test_the_call_form_is_explicit_and_a_mismatch_is_an_error(rng):
    x = rng.standard_normal((3, 2, 2, 4, 4))
    m = nn.ConvLSTM(2, 3, 9, 3, 3).double()
    assert m.mode == "sequence"
    with pytest.raises(ValueError, match=r"nn.ConvLSTM: input must be a stacked sequence \(T, B, C, H, W\).*"
                                         r"needs mode='step'.*got shape \(2, 2, 4, 4\)"):
        m.forward(x[0])  # a (B, C, H, W) batch is never read as an unbatched sequence
    m.setMode("step")
    with pytest.raises(ValueError, match=r"input must be one batched step \(B, C, H, W\) in step mode"):
        m.forward(x)
    with pytest.raises(TypeError, match="must be a NumPy or CuPy array"):
        m.forward(list(x))
    with pytest.raises(ValueError, match="mode must be one of"):
        m.setMode("steps")
    with pytest.raises(RuntimeError, match="backward needs a forward"):
        m.backward(x[0], x[0])
    y = m.forward(x[0])
    with pytest.raises(ValueError, match="gradOutput must have the shape of the step's output"):
        m.backward(x[0], y[:1])
    with pytest.raises(RuntimeError, match="needs its updateGradInput first"):
        m.accGradParameters(x[0], y)
    m.backward(x[0], y)
    with pytest.raises(RuntimeError, match="more steps than were kept"):
        m.backward(x[0], y)
    m.forward(x[1])
    with pytest.raises(ValueError, match=r"needs the state shape \(1, 3, 4, 4\).*call forget\(\)"):
        m.forward(x[2, :1])
    assert m.forget().forward(x[2, :1]).shape == (1, 3, 4, 4)
    assert nn.Sequencer(m).module.mode == "sequence"  # a Sequencer drives whole sequences


def test_step_form_state_carries_until_forget(rng):
    x = rng.standard_normal((3, 2, 2, 4, 4))
    seq = nn.ConvLSTM(2, 3, 9, 3, 3).double()
    stepper = seq.clone().setMode("step")
    whole = seq.forward(x)
    for t in range(3):
        numpy.testing.assert_allclose(stepper.forward(x[t]), whole[t], rtol=1e-12)
    numpy.testing.assert_allclose(stepper.forget().forward(x[0]), whole[0], rtol=1e-12)
    stepper.evaluate()
    numpy.testing.assert_allclose(stepper.forward(x[1]), whole[1], rtol=1e-12)


# ------------------------------------------------------------------------ rho
@pytest.mark.parametrize("cls", [nn.ConvLSTM, nn.UntiedConvLSTM])
def test_rho_truncates_bptt_to_the_last_rho_steps(rng, cls):
    x, go = rng.standard_normal((5, 2, 2, 4, 4)), rng.standard_normal((5, 2, 3, 4, 4))
    m = cls(2, 3, 2, 3, 3).double()
    full = cls(2, 3, 99, 3, 3).double().share(m, *m.parameter_names)
    y, gi, grads = sequence_run(m, x, go)
    numpy.testing.assert_allclose(y, full.forward(x), rtol=1e-12)  # rho never changes the output
    assert not gi[:3].any() and gi[3:].any()
    # reference: the last 2 steps as a sequence of their own, from the state the first 3 left
    full.remember("both").forward(x[:3])
    ref = FromState(full, full.lastState)
    ref_y, ref_gi, ref_grads = sequence_run(ref, x[3:], go[3:])
    numpy.testing.assert_allclose(gi[3:], ref_gi, rtol=1e-10)
    for g, r in zip(grads, ref_grads):
        numpy.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-14)
    # step mode keeps the last rho steps: the same gradients, and no third backward
    stepper = m.clone().setMode("step")
    stepper.zeroGradParameters()
    for t in range(5):
        stepper.forward(x[t])
    for t in (4, 3):
        numpy.testing.assert_allclose(stepper.backward(x[t], go[t]), gi[t], rtol=1e-10)
    for g, r in zip(stepper.parameters()[1], grads):
        numpy.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-14)
    with pytest.raises(RuntimeError, match="rho = 2"):
        stepper.backward(x[2], go[2])


# ------------------------------------------------------------------ Sequencer
def enc_lstm_dec():
    return nn.Sequential(nn.SpatialConvolution(1, 2, 3, 3, 1, 1, 1, 1), nn.Tanh(),
                         nn.ConvLSTM(2, 3, 9, 3, 3), nn.SpatialConvolution(3, 1, 1, 1))


def test_sequencer_of_a_sequential_with_a_convlstm_is_the_per_layer_chain(xp, rng):
    s = on(xp, nn.Sequencer(enc_lstm_dec()))
    enc, tanh, lstm, dec = s.module.modules
    chain = nn.Sequential(nn.Sequencer(enc), nn.Sequencer(tanh), lstm, nn.Sequencer(dec))
    x = rand(xp, rng, 3, 2, 1, 4, 4)
    numpy.testing.assert_allclose(host(s.forward(x)), host(chain.forward(x)), rtol=1e-12)
    ys = s.forward(list(x))
    assert isinstance(ys, list) and ys[0].shape == (2, 1, 4, 4)
    assert_gradients(s, x)
    assert_gradients(s, list(x))
    unbatched = nn.Sequencer(s.module, batched=False)
    numpy.testing.assert_allclose(host(xp.stack(unbatched.forward(list(x[:, 0])))),
                                  host(s.forward(x[:, :1])[:, 0]), rtol=1e-12)


def test_sequencer_of_a_sequential_with_a_convlstm_trains(rng):
    nn.manualSeed(3)
    model = nn.Sequencer(enc_lstm_dec())
    crit = nn.MSECriterion()
    x = rng.uniform(0, 1, (4, 2, 1, 5, 5)).astype(numpy.float32)
    target = numpy.roll(x, 1, axis=-1)  # predict the frame moved one pixel right
    losses = []
    for _ in range(60):
        y = model.forward(x)
        losses.append(float(crit.forward(y, target)))
        model.zeroGradParameters()
        model.backward(x, crit.backward(y, target))
        model.updateParameters(0.5)
    assert losses[-1] < 0.5 * losses[0], losses[::10]
