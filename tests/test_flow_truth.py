"""The generator's true motion (``MovingMNIST.motion``) and the flow metrics (``models.flow_metrics``).

The field is checked by warping with nnlite's own ``GridGenerator`` + ``BilinearSampler``:
frame t warped with the true field of frame t+1 must give frame t+1 on the masked pixels.
"""
import numpy
import pytest

import moving_mnist as mm
import nnlite as nn
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
