"""SegNet and SegNet-flow (models/segnet.py): gradients, the labelled-frame mask, the warp's
flow and resolution, Table 2's counts, pictures, checkpoints.

Everything runs at tiny sizes (8x8 frames, 3 frames, batch 2, SegNet with 2 features and
3x3 kernels); the models are fully convolutional, so nothing depends on 64x64.
"""
import numpy
import pytest

import models
import nnlite as nn
from models.segnet import (CLASS_NAMES, CLASSES, UNLABELLED, LabelPropagation, SegNet, SegNetFlow,
                           accuracies, class_counts, label_colours)
from models.training import Trainer
from nnlite import jacobian
from tests.helpers import TOL, host, on, rand

S, T, B = 8, 3, 2  # frame size, frames, sequences of the quick tests


def random_merge(m):
    """M with Xavier weights instead of its identity start, so the warped labels count."""
    nn.init.xavier_(m.merge.weight)
    return m


def tiny_segnet_flow(**kw):
    model = SegNetFlow(S, S, seg_features=2, seg_kernel=3, **kw)
    random_merge(model.propagation)
    return model


def labelled_batch(rng, xp=numpy, t=T):
    """Random frames (t, B, 1, S, S) in (0, 1) and labels on every frame (t, B, S, S).

    Grey, not binary: binary frames give the pooling windows exact ties (equal patches),
    kinks where finite differences disagree with any one-sided derivative."""
    frames = rng.random((t, B, 1, S, S))
    labels = rng.integers(0, CLASSES, (t, B, S, S))
    return {"frames": xp.asarray(frames), "labels": xp.asarray(labels)}


def assert_jacobian(module, input):
    """The input Jacobian, and the Jacobian of every parameter at once (one set of backprop
    columns for all of them: ``testAll`` would rebuild them per parameter array)."""
    params = list(jacobian.parameter_names(module).values())
    err_input = jacobian.testJacobian(module, input)
    err_params = jacobian.testJacobianParameters(module, input, [p for p, _ in params], [g for _, g in params])
    assert max(err_input, err_params) < TOL, (err_input, err_params)
    return len(params)


class LossOf(nn.Container):
    """The training objective as a module: frames -> the criterion's loss (0-d) plus the
    model's logged terms (the flow smoothness), so the Jacobian tester checks the gradient
    training uses, mask and penalty included. Backward of the one-element output ``g``:
    the model's backward of ``g`` times the criterion's gradient."""

    def __init__(self, model, criterion, targets):
        super().__init__(model)
        self.model, self.criterion, self.targets = model, criterion, targets

    def updateOutput(self, input):
        out = self.model.forward(input)
        loss = self.criterion.updateOutput(out, self.targets)
        self.output = nn.get_xp(input).asarray(loss + sum(self.model.loss_terms().values()))
        return self.output

    def _grad(self, gradOutput):
        g = self.criterion.updateGradInput(self.model.output, self.targets)
        return [gradOutput * a for a in g] if isinstance(g, list) else gradOutput * g

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self.model.updateGradInput(input, self._grad(gradOutput))
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self.model.accGradParameters(input, self._grad(gradOutput), scale)


# ------------------------------------------------------------------ label propagation
def propagation_input(xp, rng, classes=3, batch=B):
    scores = rand(xp, rng, T, batch, classes, S, S, low=-2, high=2)
    flow = rand(xp, rng, T - 1, batch, 2, S // 2, S // 2, low=-0.4, high=0.4)  # < 1 half-res pixel
    return [scores, flow]


def test_label_propagation_jacobian(xp, rng):
    """M and S in their recurrence: d L~ / d (Lb, flow) and d L~ / d (M's weight and bias)."""
    m = on(xp, random_merge(LabelPropagation(3, S, S, kernel=3)))
    assert assert_jacobian(m, propagation_input(xp, rng, batch=1)) == 2  # M's weight and bias


def test_label_propagation_split_backward_matches_backward(rng):
    m = random_merge(LabelPropagation(3, S, S)).double()
    x = propagation_input(numpy, rng)
    g = rng.standard_normal((T, B, 3, S, S))
    m.forward(x)
    m.zeroGradParameters()
    full = [a.copy() for a in m.backward(x, g)]
    w = m.merge.gradWeight.copy()
    m.zeroGradParameters()
    split = m.updateGradInput(x, g)
    assert numpy.abs(m.merge.gradWeight).max() == 0  # updateGradInput accumulates nothing
    m.accGradParameters(x, g)
    for a, b in zip(full, split):
        numpy.testing.assert_allclose(a, b, atol=1e-12)
    numpy.testing.assert_allclose(m.merge.gradWeight, w, atol=1e-12)


def merge_as_sum(m, warped_weight):
    """M's 1x1 centre taps set so that ``L~_t = Lb_t + warped_weight * Lw_{t-1}``."""
    C, k = m.classes, m.merge.kW
    m.merge.weight[...] = 0
    m.merge.bias[...] = 0
    for c in range(C):
        m.merge.weight[c, c, k // 2, k // 2] = 1
        m.merge.weight[c, C + c, k // 2, k // 2] = warped_weight
    return m


@pytest.mark.parametrize("dy, dx", [(1, 0), (0, -1), (1, 1)])
def test_the_flow_that_predicted_frame_t_pulls_the_labels_of_t_minus_1(rng, dy, dx):
    """A flow of (dy, dx) half-resolution pixels is (2 dy, 2 dx) full-resolution pixels:
    ``Lw_{t-1}[y, x] = P_{t-1}[y + 2 dy, x + 2 dx]`` (0 from outside the image), the same
    pulling convention with which the flow model predicts frame t from frame t-1."""
    m = merge_as_sum(LabelPropagation(3, S, S).double(), 1.0)
    scores, _ = propagation_input(numpy, rng)
    h = S // 2
    flow = numpy.zeros((T - 1, B, 2, h, h))
    flow[:, :, 0], flow[:, :, 1] = dy * 2 / (h - 1), dx * 2 / (h - 1)  # normalised half-res units
    out = m.forward([scores, flow])
    prob = numpy.exp(out[0]) / numpy.exp(out[0]).sum(axis=1, keepdims=True)  # P_0
    want = numpy.zeros_like(prob)
    ys, xs = slice(max(0, -2 * dy), S - max(0, 2 * dy)), slice(max(0, -2 * dx), S - max(0, 2 * dx))
    yt, xt = slice(max(0, 2 * dy), S + min(0, 2 * dy)), slice(max(0, 2 * dx), S + min(0, 2 * dx))
    want[..., ys, xs] = prob[..., yt, xt]
    numpy.testing.assert_allclose(out[1] - scores[1], want, atol=1e-12)
    numpy.testing.assert_allclose(out[0], scores[0], atol=1e-12)  # Lw_{-1} = 0


def test_the_first_frame_has_no_warped_labels_and_a_frame_sees_only_earlier_ones(rng):
    """L~_t depends on Lb_0..Lb_t and flows T_0..T_{t-1}, never on later ones."""
    m = random_merge(LabelPropagation(3, S, S)).double()
    scores, flow = propagation_input(numpy, rng)
    before = m.forward([scores, flow]).copy()
    scores[2] += 1
    flow[1] += 0.1
    after = m.forward([scores, flow])
    numpy.testing.assert_array_equal(after[:2], before[:2])
    assert numpy.abs(after[2] - before[2]).max() > 1e-3


def test_segnet_flow_starts_as_its_segnet(rng):
    """M's identity start: L~ = Lb before any training, whatever the flow."""
    model = SegNetFlow(S, S, seg_features=2, seg_kernel=3).double()
    scores = model.forward(rng.random((T, B, 1, S, S)))[1]
    numpy.testing.assert_array_equal(scores, model.segnet.output)


@pytest.mark.parametrize("make, match", [
    (lambda: LabelPropagation(3, 7, 8), "height must be even"),
    (lambda: LabelPropagation(0, 8, 8), "classes must be >= 1"),
])
def test_label_propagation_rejects_bad_sizes(make, match):
    with pytest.raises(ValueError, match=f"LabelPropagation: {match}"):
        make()


@pytest.mark.parametrize("shapes, match", [
    (((T, B, 4, S, S), (T - 1, B, 2, 4, 4)), r"scores must be of shape \(3, 2, 3, 8, 8\)"),
    (((T, B, 3, S, S), (T, B, 2, 4, 4)), r"flow must be of shape \(2, 2, 2, 4, 4\)"),
    (((1, B, 3, S, S), (0, B, 2, 4, 4)), "needs at least 2 frames"),
])
def test_label_propagation_rejects_bad_input(shapes, match):
    m = LabelPropagation(3, S, S)
    with pytest.raises(ValueError, match=f"LabelPropagation: {match}"):
        m.forward([numpy.zeros(s, numpy.float32) for s in shapes])


# ------------------------------------------------------------------ SegNet
def test_segnet_jacobian(xp, rng):
    """Conv + BN + ReLU + max pooling, unpooling by the pooling indices: input and every parameter."""
    model = on(xp, SegNet(seg_features=2, seg_kernel=3))
    assert assert_jacobian(model, rand(xp, rng, 1, B, 1, 4, 4)) == 5 * 2 + 4 * 2  # convs, BNs


def test_segnet_trains_on_the_labelled_frame_only(rng):
    batch = labelled_batch(rng)
    for frame in (-1, 0, 1):
        inputs, targets = SegNet(labelled_frame=frame).split(batch)
        numpy.testing.assert_array_equal(inputs, batch["frames"][[frame]])
        numpy.testing.assert_array_equal(targets, batch["labels"][[frame]])
    with pytest.raises(ValueError, match="SegNet: labelled_frame 3 is outside a sequence of 3 frames"):
        SegNet(labelled_frame=3).split(batch)


def test_segnet_output_is_per_frame(rng):
    """Each frame is segmented on its own: one frame's scores do not depend on another's
    (in evaluation mode; in training mode batch normalisation mixes the batch's statistics)."""
    model = SegNet(seg_features=2, seg_kernel=3).double()
    model.evaluate()
    x = rng.random((T, B, 1, S, S))
    before = model.forward(x).copy()
    x[1] = rng.random(x.shape[1:])
    after = model.forward(x)
    assert after.shape == (T, B, CLASSES, S, S)
    numpy.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])


# ------------------------------------------------------------------ SegNet-flow
def flow_parameters(model):
    """A slice of every part's parameters (the whole flow branch has a million)."""
    f, seg, prop = model.flow, model.segnet.net, model.propagation
    pairs = [(f.theta[2].weight, f.theta[2].gradWeight), (f.dec[1].bias, f.dec[1].gradBias),
             (f.enc[0].bias, f.enc[0].gradBias), (f.memory.bias[60:68], f.memory.gradBias[60:68]),
             (seg[0].weight, seg[0].gradWeight), (seg[1].weight, seg[1].gradWeight),
             (seg[-1].bias, seg[-1].gradBias),
             (prop.merge.weight[0, CLASSES:], prop.merge.gradWeight[0, CLASSES:]),
             (prop.merge.bias, prop.merge.gradBias)]
    return [p for p, _ in pairs], [g for _, g in pairs]


def test_segnet_flow_loss_jacobian(xp, rng):
    """The whole SegNet-flow at tiny size: the gradient of its training loss (reconstruction
    + cross-entropy on the labelled frame + the flow's Huber penalty) with respect to the
    frames and parameters of each part (flow branch, SegNet, M) against finite differences."""
    model = on(xp, tiny_segnet_flow())
    model.flow.theta[0].weight *= 30  # a flow of about a pixel, so the warp matters
    batch = labelled_batch(rng, xp)
    inputs, (frames, labels) = model.split(batch)
    # the targets are a copy: as a view of the input they would move with the perturbed input
    loss = LossOf(model, model.make_criterion("bce"), [frames.copy(), labels])
    assert jacobian.testJacobian(loss, inputs) < TOL
    params, grads = flow_parameters(model)
    assert jacobian.testJacobianParameters(loss, inputs, params, grads) < TOL
    assert float(model.loss_terms()["smoothness"]) > 0


def gradients(model, batch, criterion_weights=None):
    """The gradients of the training loss on ``batch``: d/dframes, every parameter's gradient
    (one vector), and the criterion's gradient at the outputs."""
    criterion = model.make_criterion("bce")
    if criterion_weights is not None:
        criterion.weights = list(criterion_weights)
    inputs, targets = model.split(batch)
    model.zeroGradParameters()
    out = model.forward(inputs)
    criterion.updateOutput(out, targets)
    g_out = criterion.updateGradInput(out, targets)
    g_in = model.backward(inputs, g_out).copy()
    return g_in, numpy.concatenate([g.ravel() for g in model.parameters()[1]]), g_out


def test_unlabelled_frames_contribute_nothing_to_the_gradient(rng):
    """Only the labelled frame's labels reach the loss: new labels on the other frames leave
    every gradient as it was, and the loss's gradient at L~_t is 0 on those frames."""
    model = tiny_segnet_flow(labelled_frame=1).double()
    batch = labelled_batch(rng)
    g_in, g_params, g_out = gradients(model, batch)
    assert numpy.abs(g_out[1][[0, 2]]).max() == 0 and numpy.abs(g_out[1][1]).max() > 0
    relabelled = dict(batch, labels=batch["labels"].copy())
    relabelled["labels"][[0, 2]] = rng.integers(0, CLASSES, (2, B, S, S))
    g_in2, g_params2, _ = gradients(model, relabelled)
    numpy.testing.assert_array_equal(g_in2, g_in)
    numpy.testing.assert_array_equal(g_params2, g_params)
    changed = dict(batch, labels=batch["labels"].copy())
    changed["labels"][1] = (changed["labels"][1] + 1) % CLASSES
    assert numpy.abs(gradients(model, changed)[1] - g_params).max() > 1e-6


def test_the_segmentation_loss_trains_the_flow_branch(rng):
    """Joint learning: the cross-entropy alone (reconstruction weight 0) moves the flow
    regressor's parameters, through the warp of the labels."""
    model = tiny_segnet_flow(huber_weight=0.0).double()
    batch = labelled_batch(rng)
    gradients(model, batch, criterion_weights=(0.0, 1.0))
    assert numpy.abs(model.flow.theta[0].gradWeight).max() > 1e-8
    model.propagation.merge.weight[:, CLASSES:] = 0  # M ignores the warped labels
    gradients(model, batch, criterion_weights=(0.0, 1.0))
    assert numpy.abs(model.flow.theta[0].gradWeight).max() == 0


def test_split_masks_all_frames_but_the_labelled_one(rng):
    batch = labelled_batch(rng)
    inputs, (frames, labels) = tiny_segnet_flow().split(batch)
    assert inputs is batch["frames"]
    numpy.testing.assert_array_equal(frames, batch["frames"][1:])
    numpy.testing.assert_array_equal(labels[-1], batch["labels"][-1])
    assert (labels[:-1] == UNLABELLED).all()


def float32_batch(rng, xp=numpy):
    batch = labelled_batch(rng, xp)
    batch["frames"] = batch["frames"].astype(numpy.float32)
    return batch


def test_one_training_step_runs_and_logs_the_smoothness(xp, rng):
    model = tiny_segnet_flow()
    model = model if xp is numpy else model.cuda()
    batch = float32_batch(rng, xp)
    trainer = Trainer(model, lr=1e-3)
    logged = trainer.step(batch)
    assert set(logged) == {"loss", "smoothness"} and numpy.isfinite(logged["loss"]) and trainer.moved


def test_init_flow_takes_a_trained_flow_model(tmp_path):
    flow = models.AEConvLSTMFlow(S, S)
    flow.theta[0].bias[...] = 0.25
    nn.save(tmp_path / "flow.h5", {"model": flow, "step": 7})
    model = tiny_segnet_flow(init_flow=str(tmp_path / "flow.h5"))
    numpy.testing.assert_array_equal(model.flow.theta[0].bias, 0.25)
    with pytest.raises(ValueError, match="works on 8x8 frames, expected 16x16"):
        SegNetFlow(16, 16, init_flow=str(tmp_path / "flow.h5"))
    with pytest.raises(ValueError, match="huber_weight and forget_bias cannot be set"):
        tiny_segnet_flow(init_flow=str(tmp_path / "flow.h5"), huber_weight=0.5)
    nn.save(tmp_path / "segnet.h5", {"model": SegNet()})
    with pytest.raises(ValueError, match="holds a SegNet, expected an AEConvLSTMFlow checkpoint"):
        tiny_segnet_flow(init_flow=str(tmp_path / "segnet.h5"))


def test_parameter_count_is_the_flow_model_plus_segnet_plus_m():
    """About a million more than SegNet alone, as the paper's SegNet-flow."""
    n = models.count_parameters
    m = 2 * CLASSES * CLASSES * 9 + CLASSES
    assert n(SegNetFlow()) == n(models.AEConvLSTMFlow()) + n(SegNet()) + m == 1035067 + 63931 + m


@pytest.mark.parametrize("name", ["segnet", "segnet-flow"])
def test_save_load_gives_identical_outputs(tmp_path, rng, name):
    """The unpooling layers still read the indices of their own pooling layers after a load."""
    model = models.build(name, seg_features=2, seg_kernel=3, **({"height": S, "width": S}
                                                                  if name == "segnet-flow" else {}))
    model.evaluate()
    frames = labelled_batch(rng)["frames"].astype(numpy.float32)
    want = host(model.predict({"frames": frames})).copy()
    nn.save(tmp_path / "model.h5", model)
    loaded = nn.load(tmp_path / "model.h5")
    unpool = loaded.findModules("nn.SpatialMaxUnpooling")[0]
    pools = loaded.findModules("nn.SpatialMaxPooling")[0]
    assert {id(u.pooling) for u in unpool} == {id(p) for p in pools[-len(unpool):]}
    numpy.testing.assert_array_equal(host(loaded.predict({"frames": frames})), want)


# ------------------------------------------------------------------ evaluation and pictures
def test_class_counts_and_accuracies():
    labels = numpy.array([[[[0, 0], [10, 10]]]])  # (1, 1, 2, 2): two pixels of digit 0, two background
    pred = numpy.array([[[[0, 3], [10, 10]]]])
    scores = (pred[..., None, :, :] == numpy.arange(CLASSES)[:, None, None]).astype(float)
    sums = {k: float(v) for k, v in class_counts(scores, labels).items()}
    assert sums["correct_0"] == 1 and sums["pixels_0"] == 2 and sums["pixels_3"] == 0
    assert sums["correct_background"] == sums["pixels_background"] == 2
    acc = accuracies({k: v / 5 for k, v in sums.items()})  # evaluate divides by the sequences
    assert acc["per_class"]["0"] == 0.5 and acc["per_class"]["background"] == 1.0
    assert acc["per_class"]["3"] is None
    assert acc["class_avg"] == pytest.approx(0.75) and acc["global"] == pytest.approx(0.75)


def test_evaluate_batch_counts_every_frame(xp, rng):
    model = tiny_segnet_flow()
    model = model if xp is numpy else model.cuda()
    model.evaluate()
    batch = float32_batch(rng, xp)
    sums = model.evaluate_batch(batch)
    assert sums["sequences"] == B
    assert sum(int(sums[f"pixels_{n}"]) for n in CLASS_NAMES) == T * B * S * S
    assert sum(int(sums[f"basic_pixels_{n}"]) for n in CLASS_NAMES) == T * B * S * S
    assert float(sums["recon_bce"]) > 0


def test_picture_rows_are_figure_8(xp, rng):
    model = tiny_segnet_flow()
    model = model if xp is numpy else model.cuda()
    model.evaluate()
    batch = float32_batch(rng, xp)
    model.predict(batch)
    rows = model.picture_rows(batch)
    assert [label for label, _ in rows] == ["input", "truth", "SegNet", "SegNet-flow"]
    assert all(len(tiles) == T for _, tiles in rows)
    assert rows[0][1][0].shape == (S, S) and rows[1][1][0].shape == (S, S, 3)
    numpy.testing.assert_array_equal(rows[1][1][-1], label_colours(host(batch["labels"][-1, 0])))
    assert all(0 <= t.min() and t.max() <= 1 for _, tiles in rows for t in tiles)


def test_animation_frames_are_the_colours_of_every_frame(rng):
    model = SegNet(seg_features=2, seg_kernel=3)
    model.evaluate()
    batch = float32_batch(rng)
    truth, pred = model.animation_frames(batch)
    assert truth.shape == pred.shape == (T, S, S, 3)
    numpy.testing.assert_array_equal(truth[1], label_colours(batch["labels"][1, 0]))


def test_experiment_table_turns_counts_into_table_2():
    from experiments import segnet_flow as experiment

    def result(right, basic=None):
        r = {f"correct_{n}": right for n in CLASS_NAMES}
        r.update({f"pixels_{n}": 10.0 for n in CLASS_NAMES})
        if basic is not None:
            r.update({f"basic_{k}": (basic if k.startswith("correct") else v) for k, v in r.items()})
        return dict(r, sequences=4, step=2, train_s=1.0, parameters=1000)

    args = experiment.parse_args(["--iterations", "2", "--seq-len", "6"])
    text = experiment.markdown({"segnet": result(5.0), "segnet-flow": result(6.0, basic=4.0)}, args, "cmd")
    rows = {}  # the first row of each label: the accuracy table (the cost table comes after)
    for line in text.splitlines():
        if line.startswith("| SegNet"):
            rows.setdefault(line.split(" | ")[0][2:], line)
    assert rows["SegNet"].count("| 50.0 ") == 13 and rows["SegNet-flow"].count("| 60.0 ") == 13
    assert rows["SegNet inside SegNet-flow (Lb, before M)"].count("| 40.0 ") == 13
    assert "above SegNet on 11 of 11 classes" in text and "labels on frame 6 of 6" in text
    assert "| 44.9 | 75.3 |" in text and "| 42.4 | 76.9 |" in text  # the paper's averages


def test_summarize_reports_the_accuracies_from_the_counts():
    """evaluate() divides every sum by the number of sequences; the ratios are unchanged."""
    means = {f"{k}_{c}": 0.0 for k in ("correct", "pixels") for c in CLASS_NAMES}
    first, second = CLASS_NAMES[0], CLASS_NAMES[1]
    means.update({f"correct_{first}": 3.0, f"pixels_{first}": 4.0, f"correct_{second}": 1.0,
                  f"pixels_{second}": 4.0})
    out = models.SegNet().summarize(means)
    assert out[f"acc_{first}"] == 0.75 and out[f"acc_{second}"] == 0.25
    assert f"acc_{CLASS_NAMES[2]}" not in out  # never occurs
    assert out["class_avg"] == 0.5 and out["global"] == 0.5 and out[f"pixels_{first}"] == 4.0
