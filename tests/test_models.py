"""The paper's models (models/): sizes, prediction alignment, training, gradients, checkpoints.

Everything but the parameter counts runs at tiny sizes (16x16 frames, 3 predictions per
sequence, batch 2; AE-fcLSTM with 32 hidden units): the models are fully convolutional or
sized by their constructor arguments, so nothing here depends on 64x64.
"""
import numpy
import pytest

import models
import nnlite as nn
from models import FrameWindows
from models.training import Trainer, TrainingDiverged
from nnlite import jacobian
from tests.helpers import TOL, assert_jacobian, host, on, rand

NAMES = sorted(models.PAPER_TABLE1)  # the four Table 1 models (other families: their own tests)
S = 16  # frame size of the quick tests
PREDICTIONS = 3  # predictions per training sequence


def tiny(name, xp=numpy):
    """The model ``name`` for S x S frames (AE-fcLSTM with 32 hidden units instead of 384)."""
    kw = {"hidden": 32} if name == "ae-fclstm" else {}
    model = models.build(name, height=S, width=S, **kw)
    return model if xp is numpy else model.cuda()


def moving_squares(model, xp=numpy, batch=2, k=4):
    """A training batch (T, B, 1, S, S) for ``model``: PREDICTIONS predictions per sequence.

    A k x k white square on black moves one pixel right per frame (mostly 0 pixels, as in
    Moving MNIST); sequence b sits at row 2 + 3 b.
    """
    T = model.first + PREDICTIONS + 1
    frames = numpy.zeros((T, batch, 1, S, S), numpy.float32)
    for t in range(T):
        x = t % (S - k)
        for b in range(batch):
            frames[t, b, 0, 2 + 3 * b:2 + 3 * b + k, x:x + k] = 1
    return xp.asarray(frames)


# ---------------------------------------------------------------- sizes and shapes
@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_at_the_papers_size(name):
    paper = models.PAPER_TABLE1[name][0]
    n = models.count_parameters(models.build(name))
    if name == "ae-fclstm":  # the paper does not give its layer sizes (see models/ae_fclstm.py)
        assert abs(n - paper) <= 0.05 * paper, (n, paper)
    else:
        assert n == paper


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_targets_and_range(xp, name):
    model = tiny(name, xp)
    frames = moving_squares(model, xp)
    out = model.forward(frames[:-1])
    targets = model.targets(frames)
    assert out.shape == targets.shape == (PREDICTIONS, 2, 1, S, S)
    numpy.testing.assert_array_equal(host(targets), host(frames)[model.first + 1:])
    y = host(out)
    assert y.dtype == numpy.float32 and 0 < y.min() and y.max() < 1  # a sigmoid output


@pytest.mark.parametrize("name", NAMES)
def test_prediction_k_is_made_from_frames_up_to_first_plus_k(name):
    """Changing input frame j = first + 1 leaves prediction 0 (frames 0..first) alone and
    changes prediction 1: prediction k sees frame first + k, never its target first + k + 1."""
    model = tiny(name)
    inputs = moving_squares(model)[:-1]
    before = model.forward(inputs).copy()
    inputs[model.first + 1] = numpy.random.default_rng(0).random(inputs.shape[1:])
    after = model.forward(inputs)
    numpy.testing.assert_array_equal(after[0], before[0])
    assert numpy.abs(after[1] - before[1]).max() > 1e-4


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("name", NAMES)
def test_one_rmsprop_step_lowers_the_loss_on_its_batch(xp, name):
    model = tiny(name, xp)
    frames = moving_squares(model, xp)
    trainer = Trainer(model, lr=1e-3)
    logged = trainer.step(frames)
    after = trainer.criterion.forward(model.forward(frames[:-1]), model.targets(frames))
    assert trainer.step_count == 1 and logged.get("smoothness", 0.0) >= 0 and trainer.moved
    assert after < logged["loss"]


def test_a_resumed_trainer_continues_exactly(tmp_path):
    """Trainer.save after step 1, Trainer.resume, step 2: same loss and parameters, bit for bit."""
    model = tiny("ae-convlstm-flow")
    frames = moving_squares(model)
    first, second = frames[:, :1], frames[:, 1:]
    trainer = Trainer(model, lr=1e-3)
    trainer.step(first)
    trainer.save(tmp_path / "ckpt.h5")
    rng_at_save = nn.getRNGState()
    loss = trainer.step(second)["loss"]
    nn.manualSeed(99)
    resumed, ckpt = Trainer.resume(tmp_path / "ckpt.h5", lr=1e-3)
    assert ckpt["step"] == 1 and nn.getRNGState() == rng_at_save
    assert resumed.step(second)["loss"] == loss and resumed.step_count == 2
    numpy.testing.assert_array_equal(resumed.params, trainer.params)


def test_a_nan_loss_undoes_the_update():
    model = tiny("ae-convlstm-flow")
    frames = moving_squares(model)
    trainer = Trainer(model, lr=1e-3)
    trainer.step(frames)
    params, mean_square = trainer.params.copy(), trainer.optimizer.state["m"].copy()
    frames[-1, 0, 0, 5, 5] = numpy.nan  # a target pixel
    with pytest.raises(TrainingDiverged, match="step 2 made the loss non-finite .*; the update was undone"):
        trainer.step(frames)
    assert trainer.step_count == 1
    numpy.testing.assert_array_equal(trainer.params, params)
    numpy.testing.assert_array_equal(trainer.optimizer.state["m"], mean_square)


def test_a_finite_loss_with_a_nan_gradient_undoes_the_update_first_step_included():
    """The issue's case: the loss is finite but backward gives NaN (HuberPenalty's 0*inf once
    the flow overflows). The step is undone, the optimizer state created by it removed."""
    model = tiny("ae-convlstm-flow")
    frames = moving_squares(model)
    trainer = Trainer(model, lr=1e-3)
    params = trainer.params.copy()
    backward = model.backward

    def poisoned(input, gradOutput, scale=1.0):
        g = backward(input, gradOutput, scale)
        trainer.grads[3] = numpy.nan
        return g

    model.backward = poisoned
    with pytest.raises(TrainingDiverged, match="step 1 made a gradient or parameter non-finite"):
        trainer.step(frames)
    numpy.testing.assert_array_equal(trainer.params, params)
    assert "m" not in trainer.optimizer.state and trainer.step_count == 0


def test_last_frame_only_trains_on_the_last_prediction():
    model = tiny("ae-convlstm")
    frames = moving_squares(model)
    trainer = Trainer(model, lr=1e-3, last_frame_only=True)
    logged = trainer.step(frames)
    expected = trainer.criterion.forward(model.output[-1:], frames[-1:])
    assert logged["loss"] == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------- gradients of the flow model
def flow_model(xp, size=6, **kwargs):
    """AEConvLSTMFlow in float64 for size x size frames, with a flow of a fraction of a pixel.

    With its initial weights the flow is ~1e-3 pixel, so every sampling point sits that
    close to a pixel centre, where bilinear sampling has a kink (the neighbours change).
    Scaling the first flow convolution and offsetting the second one's bias puts the
    points 0.05-0.55 pixel from the centres, varying over the image.
    """
    model = models.AEConvLSTMFlow(size, size, **kwargs)
    model.theta[0].weight *= 100
    model.theta[1].bias[...] = [0.3, -0.4]
    return on(xp, model)


def flow_in_pixels(model):
    flow = host(model.theta.output)
    return flow * (flow.shape[-1] - 1) / 2  # normalised units -> pixels of the feature map


def test_flow_model_jacobian(xp, rng):
    """The hand-wired backward: dL/dx sums the memory and the sampler paths.

    The smoothness penalty is off (weight 0): HuberPenalty adds a gradient that is not
    the derivative of the output, tested on its own below.
    """
    model = flow_model(xp, huber_weight=0.0)
    x = rand(xp, rng, 2, 1, 1, 6, 6, low=0.0, high=1.0)
    assert jacobian.testJacobian(model, x) < TOL
    frac = flow_in_pixels(model) % 1
    assert ((frac > 0.01) & (frac < 0.99)).all()  # away from the sampler's kinks
    memory_bias = [(model.memory.bias[i:i + 2], model.memory.gradBias[i:i + 2])
                   for i in range(0, 256, 64)]  # two of each gate
    pairs = [(model.theta[2].weight, model.theta[2].gradWeight),  # the CMul flow scale
             (model.dec[1].bias, model.dec[1].gradBias)] + memory_bias
    params, grads = [p for p, _ in pairs], [g for _, g in pairs]
    assert jacobian.testJacobianParameters(model, x, params, grads) < TOL


def spatial_gradient_norm(flow):
    """|grad T| per pixel with central differences and zero padding (SPEC's Huber penalty)."""
    p = numpy.pad(flow, [(0, 0), (0, 0), (1, 1), (1, 1)])
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return numpy.sqrt(gx ** 2 + gy ** 2)


def central_differences(f, array, h=1e-6):
    """d f / d array by central differences, perturbing ``array`` in place."""
    flat, out = array.reshape(-1), numpy.zeros(array.size)
    for i in range(array.size):
        v = flat[i]
        flat[i] = v + h
        plus = f()
        flat[i] = v - h
        minus = f()
        flat[i] = v
        out[i] = (plus - minus) / (2 * h)
    return out.reshape(array.shape)


def test_flow_model_gradient_includes_the_smoothness_penalty(rng):
    """backward(x, g) is the gradient of <g, y(x)> + penalty(x), input and flow scale.

    The Huber threshold is the median of |grad T|, so half the pixels are in the
    quadratic zone and half in the linear one (the penalty is C1: no kink at the threshold).
    """
    model = flow_model(numpy, huber_weight=1.0)
    x, g = rng.random((2, 1, 1, 6, 6)), rng.standard_normal((2, 1, 1, 6, 6))
    model.forward(x)
    model.huber.threshold = float(numpy.median(spatial_gradient_norm(model.theta.output)))
    scale, grad_scale = model.theta[2].weight, model.theta[2].gradWeight

    def objective():
        return float((g * model.forward(x)).sum()) + float(model.loss_terms()["smoothness"])

    def gradients():
        model.forward(x)
        model.zeroGradParameters()
        return model.backward(x, g).copy(), grad_scale.copy()

    grad_x, grad_w = gradients()
    assert numpy.abs(central_differences(objective, x) - grad_x).max() < TOL
    assert numpy.abs(central_differences(objective, scale) - grad_w).max() < TOL
    model.huber.weight = 0.0  # the penalty's share is far above the tolerance
    no_penalty_x, no_penalty_w = gradients()
    assert numpy.abs(no_penalty_x - grad_x).max() > 1e-4
    assert numpy.abs(no_penalty_w - grad_w).max() > 1e-3


# ------------------------------------------------------------------ FrameWindows
def test_frame_windows_jacobian(xp, rng):
    assert_jacobian(on(xp, FrameWindows(3)), rand(xp, rng, 5, 2, 1, 2, 3))


def test_frame_windows_matches_numpy_reference(xp, rng):
    m = on(xp, FrameWindows(3))
    x, g = rand(xp, rng, 5, 2, 1, 2, 3), rand(xp, rng, 3, 2, 3, 2, 3)
    hx, hg = host(x), host(g)
    want = numpy.zeros((3, 2, 3, 2, 3))
    want_grad = numpy.zeros_like(hx)
    for k in range(3):
        for c in range(3):
            want[k, :, c] = hx[k + c, :, 0]
            want_grad[k + c, :, 0] += hg[k, :, c]
    numpy.testing.assert_array_equal(host(m.forward(x)), want)
    numpy.testing.assert_allclose(host(m.backward(x, g)), want_grad, rtol=1e-12)


@pytest.mark.parametrize("shape, match", [
    ((3, 1, 1, 4, 4), r"\(T, B, 1, H, W\) with T >= 4, got shape \(3, 1, 1, 4, 4\)"),  # T < window
    ((5, 1, 2, 4, 4), r"\(T, B, 1, H, W\) with T >= 4, got shape \(5, 1, 2, 4, 4\)"),  # 2 channels
    ((5, 1, 4, 4), r"\(T, B, 1, H, W\), got shape \(5, 1, 4, 4\)"),
])
def test_frame_windows_rejects_bad_input(shape, match):
    with pytest.raises(ValueError, match="FrameWindows: input must be " + match):
        FrameWindows(4).forward(numpy.zeros(shape, numpy.float32))


def test_frame_windows_rejects_a_bad_grad_output():
    m, x = FrameWindows(4), numpy.zeros((5, 1, 1, 4, 4), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"FrameWindows: gradOutput must be of shape \(2, 1, 4, 4, 4\)"):
        m.backward(x, numpy.zeros((2, 1, 1, 4, 4), numpy.float32))


# ---------------------------------------------------------------- save and load
@pytest.mark.parametrize("flat", [False, True], ids=["arrays", "getParameters"])
@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_outputs(tmp_path, name, flat):
    model = tiny(name)
    if flat:
        model.getParameters()
    inputs = moving_squares(model)[:-1]
    want = model.forward(inputs).copy()
    nn.save(tmp_path / "model.h5", model)
    loaded = nn.load(tmp_path / "model.h5")
    assert type(loaded) is type(model)
    # a module held in an attribute (the flow model's enc, memory, ...) is still the child
    assert all(any(v is c for c in loaded.modules) for v in vars(loaded).values()
               if isinstance(v, nn.Module))
    numpy.testing.assert_array_equal(loaded.forward(inputs), want)
    if flat:
        loaded.getParameters()
        numpy.testing.assert_array_equal(loaded.forward(inputs), want)


# ---------------------------------------------------- the original code's options (SPEC §8)
def test_original_code_options_change_the_parameter_count_by_what_they_add():
    paper = models.PAPER_TABLE1["ae-convlstm-flow"][0]
    count = {opts: models.count_parameters(models.build("ae-convlstm-flow", **dict(opts)))
             for opts in [(), (("flow_zero_1x1", True),), (("flow_clamp", True),),
                          (("forget_bias", 0.0),)]}
    assert list(count.values()) == [paper, paper + 6, paper, paper]


@pytest.mark.parametrize("name", ["ae-fclstm", "ae-convlstm", "ae-convlstm-flow"])
def test_forget_bias_sets_the_forget_gate_block_only(name):
    kw = {"hidden": 32} if name == "ae-fclstm" else {}
    lstms = [m for m in models.build(name, height=S, width=S, forget_bias=0.25, **kw).modules_tree()
             if isinstance(m, (nn.LSTM, nn.ConvLSTM))]
    assert lstms
    for m in lstms:
        n = m.outputSize
        assert (m.bias[n:2 * n] == 0.25).all()
        assert (numpy.delete(m.bias, numpy.s_[n:2 * n]) == 0).all()


def test_zero_1x1_makes_the_first_prediction_the_current_features_unwarped(xp, rng):
    model = on(xp, models.build("ae-convlstm-flow", height=S, width=S, flow_zero_1x1=True))
    frames = xp.asarray(rng.uniform(0, 1, size=(3, 2, 1, S, S)))
    out = model.forward(frames)
    assert not host(model.flow_pixels()).any()  # exactly 0
    identity = xp.broadcast_to(nn.flow.base_grid(xp, S // 2, S // 2, "float64"), (6, S // 2, S // 2, 2))
    features = model.enc.forward(frames.reshape(6, 1, S, S))
    want = model.dec.forward(nn.BilinearSampler().forward([features, identity]))
    numpy.testing.assert_array_equal(host(out).reshape(6, 1, S, S), host(want))


def test_flow_clamp_bounds_the_flow():
    model = models.build("ae-convlstm-flow", height=S, width=S, flow_clamp=True)
    model.theta[1].bias[...] = [40.0, -40.0]  # pixels: far beyond the clamp
    model.forward(moving_squares(model)[:-1])
    flow = model.theta.output
    assert (flow[:, 0] == 0.5).all() and (flow[:, 1] == -0.5).all()


@pytest.mark.parametrize("name, option", [("ae-conv", "forget_bias"), ("ae-convlstm", "flow_clamp")])
def test_build_names_an_option_the_model_does_not_take(name, option):
    with pytest.raises(ValueError, match=f"model '{name}' has no option '{option}'"):
        models.build(name, **{option: True})
