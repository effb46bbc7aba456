"""Srivastava et al. (2015)'s LSTM encoder-decoder models (models/srivastava.py) and the two
recurrent hooks they need (the gradient at an LSTM's final cell state, an LSTM with no input).

Gradient checks run in float64 at tiny sizes: 3x3 frames, 3 hidden units, 3 input and
3 future frames, batch 2.
"""
import numpy
import pytest

import nnlite as nn
from models.srivastava import (LSTMAutoencoder, LSTMComposite, LSTMCompositeConditionalFuture,
                               LSTMConditionalFuturePredictor, LSTMDecoder, LSTMEncoder,
                               LSTMEncoderDecoder, LSTMFuturePredictor, parameter_count)
from tests.helpers import host, on, rand
from tests.recurrent_helpers import assert_gradients

S, HIDDEN, N_IN, N_FUT, B = 3, 3, 3, 3, 2
P = S * S
KINDS = {  # (reconstruction, future)
    "autoencoder": ("unconditioned", None),
    "autoencoder-cond": ("conditional", None),
    "future": (None, "unconditioned"),
    "future-cond": (None, "conditional"),
    "composite": ("unconditioned", "unconditioned"),
    "composite-cond": ("unconditioned", "conditional"),
}


def tiny(kind, layers=2, xp=numpy):
    rec, fut = KINDS[kind]
    return on(xp, LSTMEncoderDecoder(S, S, HIDDEN, layers, N_IN, N_FUT, reconstruction=rec, future=fut))


def frames(xp, rng):
    return rand(xp, rng, N_IN + N_FUT, B, 1, S, S, low=0.0, high=1.0)


def states(xp, rng, layers):
    return [rand(xp, rng, B, HIDDEN) for _ in range(2 * layers)]


# ------------------------------------------------------------- the recurrent hooks
def test_lstm_without_input_from_a_given_state(xp, rng):
    m = on(xp, nn.LSTM(0, HIDDEN, True))
    m.h0, m.c0 = rand(xp, rng, B, HIDDEN), rand(xp, rng, B, HIDDEN)
    x = xp.zeros((4, B, 0))
    assert m.forward(x).shape == (4, B, HIDDEN)
    assert m.weight.shape == (4 * HIDDEN, 0)
    assert_gradients(m, x, [(m.h0, m.gradH0), (m.c0, m.gradC0)])


class FinalCell(nn.Container):
    """Output ``[H, c_T]`` of an LSTM: checks ``gradFinalCell`` against finite differences."""

    def updateOutput(self, input):
        m = self.modules[0]
        self.output = [m.forward(input), m.finalCell]
        return self.output

    def updateGradInput(self, input, gradOutput):
        m = self.modules[0]
        m.gradFinalCell = gradOutput[1]
        self.gradInput = m.updateGradInput(input, gradOutput[0])
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        m = self.modules[0]
        m.gradFinalCell = gradOutput[1]
        m.accGradParameters(input, gradOutput[0], scale)


@pytest.mark.parametrize("peephole", [False, True])
def test_jacobian_through_the_final_cell_state(xp, rng, peephole):
    m = on(xp, nn.LSTM(2, HIDDEN, peephole))
    m.h0, m.c0 = rand(xp, rng, B, HIDDEN), rand(xp, rng, B, HIDDEN)
    assert_gradients(FinalCell(m), rand(xp, rng, 4, B, 2), [(m.h0, m.gradH0), (m.c0, m.gradC0)])


def test_final_cell_is_the_last_cell_state_and_a_wrong_gradient_shape_is_an_error(rng):
    m = on(numpy, nn.LSTM(2, HIDDEN)).remember("both")
    x = rand(numpy, rng, 4, B, 2)
    m.forward(x)
    numpy.testing.assert_array_equal(m.finalCell, m.lastState[1])
    m.gradFinalCell = numpy.zeros((B + 1, HIDDEN))
    with pytest.raises(ValueError, match="nn.LSTM: gradFinalCell must have the final cell state's shape"):
        m.backward(x, numpy.zeros((4, B, HIDDEN)))


# ------------------------------------------------------------- encoder and decoder
@pytest.mark.parametrize("layers", [1, 2])
def test_jacobian_of_the_encoder_to_its_final_states(xp, rng, layers):
    enc = on(xp, LSTMEncoder(P, HIDDEN, layers))
    out = enc.forward(rand(xp, rng, N_IN, B, P))
    assert len(out) == 2 * layers and all(s.shape == (B, HIDDEN) for s in out)
    assert_gradients(enc, rand(xp, rng, N_IN, B, P))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("conditional", [False, True])
def test_jacobian_of_a_decoder_from_its_copied_state(xp, rng, layers, conditional):
    dec = on(xp, LSTMDecoder(P, HIDDEN, layers, conditional))
    x = rand(xp, rng, N_FUT, B, P) if conditional else xp.zeros((N_FUT, B, 0))
    inp = [x] + states(xp, rng, layers)
    assert dec.forward(inp).shape == (N_FUT, B, P)
    assert_gradients(dec, inp)


# ------------------------------------------------------------------- whole models
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_jacobian_of_the_whole_model(xp, rng, kind, layers):
    """Input (frames read by the encoder and, when conditional, fed as ground truth) and every
    parameter: the gradient reaches the encoder only through the copied states."""
    assert_gradients(tiny(kind, layers, xp), frames(xp, rng))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_split_targets_reconstruction_reversed_then_future(xp, rng, kind):
    model = tiny(kind, 1, xp)
    batch = {"frames": rand(xp, rng, N_IN + N_FUT + 2, B, 1, S, S, low=0.0, high=1.0)}
    inputs, targets = model.split(batch)
    f = host(batch["frames"])
    numpy.testing.assert_array_equal(host(inputs), f[:N_IN + N_FUT])
    want = {"reconstruction": f[N_IN - 1::-1], "future": f[N_IN:N_IN + N_FUT]}
    rec, fut = KINDS[kind]
    tasks = [t for t, k in (("reconstruction", rec), ("future", fut)) if k]
    got = targets if len(tasks) > 1 else [targets]
    assert len(got) == len(tasks)
    for t, g in zip(tasks, got):
        numpy.testing.assert_array_equal(host(g), want[t])
    out = model.forward(inputs)
    for o, g in zip(out if len(tasks) > 1 else [out], got):
        assert o.shape == g.shape


def _redraw(x, steps):
    y = x.copy()
    y[steps] = numpy.random.default_rng(5).random(y[steps].shape)
    return y


def test_conditional_decoder_reads_the_truth_when_training_its_own_output_when_evaluating(rng):
    dec = on(numpy, LSTMDecoder(P, HIDDEN, 2, True))
    st = states(numpy, rng, 2)
    x = rand(numpy, rng, N_FUT, B, P, low=0.0, high=1.0)
    # training: step t reads x[t], nothing later
    y = dec.forward([x] + st).copy()
    y1 = dec.forward([_redraw(x, slice(1, 2))] + st)
    numpy.testing.assert_array_equal(y1[0], y[0])
    assert numpy.abs(y1[1:] - y[1:]).min() > 0
    # evaluation: only x[0] is read; step t >= 1 reads the prediction of step t-1
    dec.evaluate()
    free = dec.forward([x] + st).copy()
    numpy.testing.assert_array_equal(dec.forward([_redraw(x, slice(1, None))] + st), free)
    own = numpy.concatenate([x[:1], free[:-1]])
    dec.training()
    numpy.testing.assert_allclose(dec.forward([own] + st), free, rtol=0, atol=1e-12)


def test_the_conditional_future_predictor_never_reads_the_future_when_evaluating(rng):
    model = tiny("future-cond")
    x = frames(numpy, rng)
    fed = slice(N_IN, N_IN + N_FUT - 1)  # the ground truth fed to decoder steps 1 .. F-1
    y = model.forward(x).copy()
    y1 = model.forward(_redraw(x, fed))
    numpy.testing.assert_array_equal(y1[0], y[0])
    assert numpy.abs(y1[1:] - y[1:]).min() > 0
    model.evaluate()
    free = model.forward(x).copy()
    numpy.testing.assert_array_equal(model.forward(_redraw(x, slice(N_IN, None))), free)
    own = x.copy()
    own[fed] = free[:-1]
    model.training()
    numpy.testing.assert_allclose(model.forward(own), free, rtol=0, atol=1e-12)
    assert numpy.abs(free - y).max() > 1e-6  # free running differs from teacher forcing


@pytest.mark.parametrize("kind", ["autoencoder", "future", "composite"])
def test_unconditioned_models_give_the_same_output_in_both_modes(rng, kind):
    model = tiny(kind)
    x = frames(numpy, rng)
    train = [a.copy() for a in nn.tables.table_leaves(model.forward(x))]
    model.evaluate()
    for a, b in zip(train, nn.tables.table_leaves(model.forward(x))):
        numpy.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- sizes, loss, metrics
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parameter_count_formula(kind, layers):
    """Per decoder lstm(P or 0, h) + (layers - 1) lstm(h, h) + h P + P, encoder lstm(P, h) +
    (layers - 1) lstm(h, h), lstm(i, h) = 4 h (i + h + 1) + 3 h (peepholes)."""
    model = tiny(kind, layers)
    counted = sum(p.size for p in model.parameters()[0])
    assert model.parameter_count() == counted


def test_parameter_count_at_the_papers_size():
    lstm = lambda i, h: 4 * h * (i + h + 1) + 3 * h  # noqa: E731
    P, h = 4096, 2048
    decoder = lstm(0, h) + lstm(h, h) + h * P + P
    assert parameter_count(64, 64, 2048, 2, [False, False]) == lstm(P, h) + lstm(h, h) + 2 * decoder
    assert parameter_count(64, 64, 2048, 2, [False, False]) == 201_420_800


def test_the_command_line_classes():
    for cls, rec, fut in ((LSTMAutoencoder, False, None), (LSTMFuturePredictor, None, False),
                          (LSTMComposite, False, False), (LSTMConditionalFuturePredictor, None, True),
                          (LSTMCompositeConditionalFuture, False, True)):
        model = cls(height=S, width=S, hidden=HIDDEN, layers=1)
        want = [("reconstruction", rec), ("future", fut)]
        want = [(t, c) for t, c in want if c is not None]
        assert [(t, d.conditional) for t, d in zip(model.tasks, model.decoders)] == want
        assert model.min_frames == model.min_train_frames == 20


def test_composite_loss_is_the_sum_of_both_decoders(rng):
    model = tiny("composite")
    inputs, targets = model.split({"frames": frames(numpy, rng)})
    out = model.forward(inputs)
    crit = model.make_criterion("bce")
    total = float(crit.forward(out, targets))
    parts = [float(nn.BCECriterion().double().forward(o, t)) for o, t in zip(out, targets)]
    assert total == pytest.approx(sum(parts), rel=1e-12)
    grads = crit.backward(out, targets)
    assert len(grads) == 2 and all(g.shape == o.shape for g, o in zip(grads, out))


@pytest.mark.parametrize("kind", ["future-cond", "composite", "autoencoder"])
def test_evaluate_batch_is_table_2s_summed_cross_entropy(rng, kind):
    model = tiny(kind)
    model.evaluate()
    batch = {"frames": (frames(numpy, rng) > 0.5).astype(numpy.float64)}
    sums = model.evaluate_batch(batch)
    assert sums["sequences"] == B
    f = batch["frames"]
    truth = {"": f[N_IN:], "recon_": f[:N_IN][::-1]}
    outputs = dict(zip(model.tasks, model.output if len(model.tasks) > 1 else [model.output]))
    names = {"future": "", "reconstruction": "recon_"}
    assert sorted(sums) == sorted([names[t] + m for t in model.tasks for m in ("bce", "xent")]
                                  + ["sequences"])
    for task, pred in outputs.items():
        t = truth[names[task]]
        ce = -(t * numpy.log(pred + 1e-12) + (1 - t) * numpy.log(1 - pred + 1e-12))
        per_sequence = ce.sum(axis=(0, 2, 3, 4))  # summed over frames and pixels
        assert float(sums[names[task] + "xent"]) == pytest.approx(per_sequence.sum(), rel=1e-12)
        assert float(sums[names[task] + "bce"]) == pytest.approx(per_sequence.sum() / (ce[:, 0].size),
                                                                  rel=1e-12)


def test_picture_rows_as_figure_4(rng):
    model = tiny("composite-cond")
    model.evaluate()
    batch = {"frames": frames(numpy, rng)}
    model.predict(batch)
    rows = dict(model.picture_rows(batch))
    assert list(rows) == ["input", "reconstruction", "future", "prediction"]
    assert [len(v) for v in rows.values()] == [N_IN, N_IN, N_FUT, N_FUT]
    numpy.testing.assert_array_equal(rows["future"][0], batch["frames"][N_IN, 0, 0])
    # the reconstruction row is in time order: its last tile is decoder step 0 (frame n-1)
    numpy.testing.assert_array_equal(rows["reconstruction"][-1], model.output[0][0, 0, 0])
    numpy.testing.assert_array_equal(rows["prediction"][0], model.output[1][0, 0, 0])


def test_errors_name_the_model(rng):
    model = tiny("future")
    with pytest.raises(ValueError, match=r"models.LSTMEncoderDecoder: input must be 6 frames"):
        model.forward(frames(numpy, rng)[:-1])
    with pytest.raises(ValueError, match="future must be one of"):
        LSTMEncoderDecoder(S, S, HIDDEN, 1, future="conditioned")
    with pytest.raises(ValueError, match="no decoder"):
        LSTMEncoderDecoder(S, S, HIDDEN, 1)


@pytest.mark.parametrize("kind", ["composite-cond", "autoencoder"])
def test_save_load_gives_identical_outputs_in_both_modes(tmp_path, rng, kind):
    model = tiny(kind)
    x = frames(numpy, rng)
    want = [host(a).copy() for a in nn.tables.table_leaves(model.forward(x))]
    model.evaluate()
    want_free = [host(a).copy() for a in nn.tables.table_leaves(model.forward(x))]
    nn.save(tmp_path / "model.h5", model)
    loaded = nn.load(tmp_path / "model.h5")
    assert type(loaded) is type(model) and loaded.tasks == model.tasks
    assert loaded.encoder is loaded.modules[0] and all(
        d is m for d, m in zip(loaded.decoders, loaded.modules[1:]))
    for a, b in zip(want_free, nn.tables.table_leaves(loaded.forward(x))):
        numpy.testing.assert_array_equal(a, b)
    loaded.training()
    for a, b in zip(want, nn.tables.table_leaves(loaded.forward(x))):
        numpy.testing.assert_array_equal(a, b)


def test_the_trainer_lowers_the_loss_of_the_composite_conditional_model():
    """A few RMSprop steps through ``models.training.Trainer`` (the code path of train.py) on a
    fixed batch of 3x3 squares moving across 6x6 frames."""
    from models.training import Trainer
    nn.manualSeed(0)
    x = numpy.zeros((6, 4, 1, 6, 6), numpy.float32)
    for t in range(6):
        for b in range(4):
            x[t, b, 0, b % 3:b % 3 + 3, t % 4:t % 4 + 3] = 1
    model = LSTMCompositeConditionalFuture(6, 6, 8, 2, 3, 3)
    trainer = Trainer(model, lr=3e-3)
    losses = [trainer.step({"frames": x})["loss"] for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_composite_matches_its_pytorch_twin():
    """Loss and every parameter gradient of lstm-composite against the autograd of
    benchmarks/torch_models.LSTMComposite holding the same weights (float64)."""
    torch = pytest.importorskip("torch")
    from benchmarks import torch_models
    model = on(numpy, LSTMComposite(S, S, HIDDEN, 2, N_IN, N_FUT))
    twin = torch_models.LSTMComposite(S, S, HIDDEN, 2, N_IN, N_FUT).double()
    pairs = []
    for ours, theirs in zip(model.encoder.lstms + model.decoders[0].lstms + model.decoders[1].lstms,
                            list(twin.enc) + list(twin.decs[0]) + list(twin.decs[1])):
        pairs += [(ours.weight, ours.gradWeight, theirs.wx.weight), (ours.bias, ours.gradBias, theirs.wx.bias),
                  (ours.weightHidden, ours.gradWeightHidden, theirs.wh.weight),
                  (ours.weightPeephole, ours.gradWeightPeephole, theirs.peep)]
    for dec, out in zip(model.decoders, twin.outs):
        lin = dec.readout.modules[0]
        pairs += [(lin.weight, lin.gradWeight, out.weight), (lin.bias, lin.gradBias, out.bias)]
    assert len(pairs) == len(model.parameters()[0])
    with torch.no_grad():
        for w, _, t in pairs:
            t.copy_(torch.from_numpy(w))
    x = numpy.random.default_rng(3).random((N_IN + N_FUT, B, 1, S, S))
    inputs, targets = model.split({"frames": x})
    crit = model.make_criterion("bce")
    out = model.forward(inputs)
    loss = float(crit.forward(out, targets))
    model.zeroGradParameters()
    model.backward(inputs, crit.backward(out, targets))
    ref = twin.loss(torch.from_numpy(x))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-9)  # BCE: eps 1e-12 inside the log here
    for _, g, t in pairs:
        numpy.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)
