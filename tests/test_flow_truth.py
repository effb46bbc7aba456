"""The generator's true motion (``MovingMNIST.motion``) and the flow metrics (``models.flow_metrics``).

The field is checked by warping with nnlite's own ``GridGenerator`` + ``BilinearSampler``:
frame t warped with the true field of frame t+1 must give frame t+1 on the masked pixels.
"""
import numpy
import pytest

import models
import moving_mnist as mm
import nnlite as nn
from models import flow_metrics
from moving_mnist import MovingMNIST
from nnlite.flow import normalise_flow
from tests.helpers import host


def warp(xp, frames, flow):
    """Frames (B, 1, H, W) sampled at p + flow(p) (flow (B, 2, H, W) in pixels), in float64."""
    frames, flow = xp.asarray(frames, dtype="float64"), xp.asarray(flow, dtype="float64")
    H, W = frames.shape[-2:]
    grid = nn.GridGenerator(H, W).forward(normalise_flow(flow, H, W))
    return host(nn.BilinearSampler().forward([frames, grid]))


def max_pool(frames, s=2):
    """(..., H, W) -> (..., H/s, W/s): what the encoder's 2x2 max pooling keeps of the ink."""
    *lead, H, W = frames.shape
    return frames.reshape(*lead, H // s, s, W // s, s).max(axis=(-3, -1))


def ones_generator(k=4, size=16, seq_len=2, digits=1):
    """Square all-ink digits of k x k pixels in size x size frames (every window pixel is ink)."""
    return MovingMNIST(numpy.ones((digits, k, k), numpy.float32), seq_len=seq_len,
                       num_digits=1, frame_size=size)


# ------------------------------------------------------------------ the warp reproduces t+1
def test_full_resolution_warp_with_the_upsampled_field_gives_the_next_frame(xp):
    """One digit, 20 frames with bounces: frame t warped at full resolution with the field
    upsampled (nearest, x2 in size and in pixels) equals frame t+1 on the mask, exactly up to
    rounding (the displacements are whole frame pixels)."""
    images, labels = mm.embedded_digits("train")
    g = MovingMNIST(images, labels, num_digits=1)
    digits, positions = g.sample(6, 5)
    v = numpy.diff(positions, axis=0)
    assert (v[1:] * v[:-1] < 0).any()  # some digit bounces: the bounce frames are covered
    frames = g.render(digits, positions)
    flow, mask = g.motion(digits, positions)
    up = 2 * flow.repeat(2, axis=-2).repeat(2, axis=-1)
    covered = mask.repeat(2, axis=-2).repeat(2, axis=-1).astype(bool)
    assert covered.mean() > 0.05
    T, B = flow.shape[:2]
    warped = warp(xp, frames[:-1].reshape(T * B, 1, 64, 64), up.reshape(T * B, 2, 64, 64))
    got, want = warped.reshape(frames[1:].shape)[covered], frames[1:][covered]
    numpy.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert want.max() > 0.5  # the masked pixels hold the digit, not only background


def test_half_resolution_warp_of_the_pooled_frames_with_even_moves(xp):
    """At the flow's resolution (frames max-pooled 2x2, as the encoder pools its features) a
    move of an even number of frame pixels is a whole pixel, so the warp is exact there."""
    g = MovingMNIST(mm.embedded_digits("test")[0][:1], seq_len=4, num_digits=1)
    positions = numpy.array([[0, 30], [2, 34], [4, 36], [6, 32]]).reshape(4, 1, 1, 2)  # bounce
    digits = numpy.zeros((1, 1), numpy.int64)
    pooled = max_pool(g.render(digits, positions))
    flow, mask = g.motion(digits, positions)
    numpy.testing.assert_array_equal(mask, pooled[1:] > 0)  # every covered pixel: one digit
    for t, move in enumerate([[-1, -2], [-1, -1], [-1, 2]]):  # -v / 2; the last is the bounce
        numpy.testing.assert_array_equal(flow[t, 0][:, mask[t, 0, 0] == 1].T,
                                         numpy.broadcast_to(move, (int(mask[t].sum()), 2)))
    warped = warp(xp, pooled[:-1, 0], flow[:, 0]).reshape(pooled[1:].shape)
    m = mask.astype(bool)
    numpy.testing.assert_allclose(warped[m], pooled[1:][m], rtol=0, atol=1e-9)


def test_the_sign_convention_is_the_grid_generators_sampling_one(xp):
    """A digit moving right samples from its left: flow x < 0; the opposite sign fails."""
    g = ones_generator()
    positions = numpy.array([[4, 2], [4, 6]]).reshape(2, 1, 1, 2)
    digits = numpy.zeros((1, 1), numpy.int64)
    flow, mask = g.motion(digits, positions)
    m = mask[0, 0, 0].astype(bool)
    assert m.sum() == 4  # blocks rows 2..3, columns 3..4
    assert (flow[0, 0, 0][m] == 0).all() and (flow[0, 0, 1][m] == -2).all()
    pooled = max_pool(g.render(digits, positions))
    assert (warp(xp, pooled[0], flow[0])[0, 0][m] == 1).all()
    assert (warp(xp, pooled[0], -flow[0])[0, 0][m] == 0).any()


# ------------------------------------------------------------------ the rules
def test_pixels_covered_by_two_digits_are_masked_out():
    g = MovingMNIST(numpy.ones((2, 4, 4), numpy.float32), seq_len=2, num_digits=2, frame_size=16)
    positions = numpy.zeros((2, 1, 2, 2), numpy.int64)
    positions[:, 0, 0] = [[2, 2], [4, 4]]  # digit 0 moves by (2, 2): t+1 blocks rows 2-3, cols 2-3
    positions[:, 0, 1] = [[6, 6], [6, 4]]  # digit 1 moves by (0, -2): blocks rows 3-4, cols 2-3
    flow, mask = g.motion(numpy.array([[0, 1]]), positions)
    want_mask = numpy.zeros((8, 8))
    want_mask[2, 2:4] = want_mask[4, 2:4] = 1  # row 3 holds both digits
    want = numpy.zeros((2, 8, 8))
    want[:, 2, 2:4] = [[-1], [-1]]
    want[:, 4, 2:4] = [[0], [1]]
    numpy.testing.assert_array_equal(mask[0, 0, 0], want_mask)
    numpy.testing.assert_array_equal(flow[0, 0], want)


def test_pixels_whose_source_leaves_the_frame_are_masked_out():
    """Moves of one frame pixel are half a pixel at the flow's resolution: a block at the
    border whose source point lies half a pixel outside has no defined source."""
    g = ones_generator()
    positions = numpy.array([[0, 12], [1, 11]]).reshape(2, 1, 1, 2)  # down-left by (1, -1)
    flow, mask = g.motion(numpy.zeros((1, 1), numpy.int64), positions)
    # t+1 covers frame rows 1..4 (blocks 0..2) and columns 11..14 (blocks 5..7)
    want_mask = numpy.zeros((8, 8))
    want_mask[1:3, 5:7] = 1  # block row 0 reads row -0.5, block column 7 reads column 7.5
    numpy.testing.assert_array_equal(mask[0, 0, 0], want_mask)
    assert (flow[0, 0, 0][want_mask == 1] == -0.5).all() and (flow[0, 0, 1][want_mask == 1] == 0.5).all()
    assert not flow[0, 0][:, want_mask == 0].any()  # 0 wherever the mask is 0


def test_motion_checks_its_arguments():
    g = ones_generator(size=18)
    digits, positions = numpy.zeros((1, 1), numpy.int64), numpy.zeros((2, 1, 1, 2), numpy.int64)
    with pytest.raises(ValueError, match="MovingMNIST: the frame size 18 is not a multiple"):
        g.motion(digits, positions, scale=4)
    with pytest.raises(ValueError, match=r"MovingMNIST: positions must lie in 0\.\.14"):
        g.motion(digits, positions + 15)


# ------------------------------------------------------------------ the metrics
def loop_metrics(flow, truth, mask):
    """Per-sequence mean EPE and Barron angular error (degrees), pixel by pixel."""
    out = []
    for f, t, m in zip(flow, truth, mask[:, 0]):
        epe, ae, n = 0.0, 0.0, 0
        for i, j in zip(*numpy.nonzero(m)):
            a, b = numpy.array([f[0, i, j], f[1, i, j], 1.0]), numpy.array([t[0, i, j], t[1, i, j], 1.0])
            epe += numpy.hypot(*(a - b)[:2])
            cos = a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b))
            ae += numpy.degrees(numpy.arccos(min(cos, 1.0)))
            n += 1
        out.append((epe / max(n, 1), ae / max(n, 1)))
    return numpy.array(out)


def test_endpoint_and_angular_errors_match_a_loop(xp, rng):
    flow, truth = rng.normal(0, 2, size=(2, 3, 2, 5, 6))
    mask = (rng.uniform(size=(3, 1, 5, 6)) < 0.6).astype(numpy.float64)
    mask[2] = 0  # an empty mask contributes 0
    sums = flow_metrics.flow_sums(*(xp.asarray(a) for a in (flow, truth, mask)))
    assert all(host(v).shape == () for v in sums.values())
    want = loop_metrics(flow, truth, mask).sum(axis=0)
    zero = loop_metrics(numpy.zeros_like(flow), truth, mask).sum(axis=0)
    got = [float(host(sums[k])) for k in ("epe", "ae", "zero_epe", "zero_ae")]
    numpy.testing.assert_allclose(got, [*want, *zero], rtol=1e-10)


def test_the_true_field_scores_0_and_a_zero_flow_scores_the_mean_speed():
    images, labels = mm.embedded_digits("train")
    g = MovingMNIST(images, labels, seq_len=6)
    digits, positions = g.sample(4, 3)
    flow, mask = g.motion(digits, positions)
    for t in range(len(flow)):
        sums = flow_metrics.flow_sums(flow[t], flow[t], mask[t])
        assert sums["epe"] == 0 and sums["ae"] == 0
        speed = numpy.hypot(flow[t, :, 0], flow[t, :, 1])
        m = mask[t, :, 0]
        mean_speed = [s[k > 0].mean() for s, k in zip(speed, m)]
        assert min(mean_speed) > 0.5  # the digits move (3.6 frame pixels per frame)
        numpy.testing.assert_allclose(sums["zero_epe"], sum(mean_speed), rtol=1e-5)
        numpy.testing.assert_allclose(sums["zero_ae"], sum(
            numpy.degrees(numpy.arctan(s[k > 0])).mean() for s, k in zip(speed, m)), rtol=1e-5)


# ------------------------------------------------------------------ the flow model's evaluation
def square_batch(moves, size=16, k=4, frames=11):
    """One all-ink k x k square per sequence, sequence b moving by ``moves[b]`` (y, x) frame
    pixels per frame and bouncing off the sides, as the batch dict the data loader gives
    (frames, flow, flow_mask)."""
    g = MovingMNIST(numpy.ones((1, k, k), numpy.float32), seq_len=frames, num_digits=1,
                    frame_size=size)
    free = size - k
    travelled = numpy.array([4, 6]) + numpy.arange(frames)[:, None, None] * numpy.asarray(moves)
    positions = free - numpy.abs(travelled % (2 * free) - free)  # reflected at 0 and at free
    split = mm.SequenceSet(g, numpy.zeros((len(moves), 1), numpy.int64), positions[:, :, None])
    return split.batch(numpy.arange(len(moves)), flow=True)


def test_flow_model_evaluation_with_the_true_motion(xp):
    """A model whose flow is exactly 0 (the zero 1x1 layer): its EPE is the zero flow's, and on
    still squares the true flow (0) predicts exactly what the model predicts."""
    model = models.build("ae-convlstm-flow", height=16, width=16, flow_zero_1x1=True)
    model = model if xp is numpy else model.cuda()
    assert model.eval_needs == ("flow", "flow_mask")

    def evaluate(batch):
        sums = model.evaluate_batch({k: xp.asarray(v) for k, v in batch.items()})
        return {k: float(host(v)) for k, v in sums.items()}

    moving = square_batch([[0, 1], [1, 0]])
    sums = evaluate(moving)
    frame_only = evaluate({"frames": moving["frames"]})
    for key in frame_only:  # the flow metrics leave the frame metrics unchanged
        numpy.testing.assert_allclose(sums[key], frame_only[key], rtol=1e-6)
    assert sums["epe"] == sums["zero_epe"] == 2 * 0.5 and sums["ae"] == sums["zero_ae"]
    assert {"true_flow_bce", "true_flow_sqerr"} <= set(sums)
    sums = evaluate(square_batch([[0, 0], [0, 0]]))
    assert sums["zero_epe"] == 0
    numpy.testing.assert_allclose(sums["true_flow_bce"], sums["bce"], rtol=1e-5)
    numpy.testing.assert_allclose(sums["true_flow_sqerr"], sums["sqerr"], rtol=1e-5)


def test_flow_model_pictures_show_the_true_flow_of_the_same_frame():
    model = models.build("ae-convlstm-flow", height=16, width=16)
    model.theta[1].bias[...] = [0.3, -0.4]  # a flow that differs between sequences and steps
    batch = square_batch([[0, 2], [2, 0]])
    model.evaluate_batch(batch)
    rows = dict(model.picture_rows(batch))
    flow = host(model.flow_pixels()).reshape(10, 2, 2, 8, 8)[9, 0]  # step 9, sequence 0
    numpy.testing.assert_array_equal(rows["flow"][0], flow.transpose(1, 2, 0))
    numpy.testing.assert_array_equal(rows["true flow"][0], batch["flow"][9, 0].transpose(1, 2, 0))
    assert (rows["true flow"][0][..., 1] == -1).any()  # sequence 0 moves right by 2 frame pixels


def test_a_figure_with_a_flow_draws_its_wheel_and_an_optional_class_key(tmp_path):
    """A flow tile gets the colour-wheel key; ``key`` (a model's ``picture_key``) adds a
    legend. Both can be in one figure."""
    from PIL import Image

    from models import pictures
    from models.segnet import SegNet
    rows = [("input", [numpy.zeros((8, 8)), numpy.ones((8, 8))]),
            ("flow", [numpy.full((4, 4, 2), 0.5)]), ("true flow", [numpy.zeros((4, 4, 2))])]
    plain = pictures.prediction_figure(rows, str(tmp_path / "plain.png"))
    keyed = pictures.prediction_figure(rows, str(tmp_path / "keyed.png"), key=SegNet.picture_key)
    assert len(SegNet.picture_key) == 11
    with Image.open(plain) as a, Image.open(keyed) as b:
        assert b.size[1] > a.size[1]  # the legend's row
