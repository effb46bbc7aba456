"""The flow decoder (SPEC §4): GridGenerator, BilinearSampler, HuberPenalty, and the
paper's warping sanity check (experiments/warp_sanity.py)."""
import numpy
import pytest

import nnlite as nn
from experiments.warp_sanity import FLOWS, warp_error
from nnlite.flow import base_grid, normalise_flow
from tests.helpers import assert_jacobian, host, on, rand


# ------------------------------------------------------------------ references
def sampler_reference(images, grid):
    """The original BilinearSamplerBHWD, point by point, in (B, C, H, W).

    Returns two functions: ``forward()`` -> output and ``backward(go)`` ->
    (grad_images, grad_grid).
    """
    B, C, H, W = images.shape
    _, h, w, _ = grid.shape

    def neighbours(b, i, j):
        yc = (grid[b, i, j, 0] + 1) * (H - 1) / 2
        xc = (grid[b, i, j, 1] + 1) * (W - 1) / 2
        y0, x0 = int(numpy.floor(yc)), int(numpy.floor(xc))
        wy, wx = 1 - (yc - y0), 1 - (xc - x0)
        for yy, xx, ay, ax, sy, sx in ((y0, x0, wy, wx, -1, -1), (y0, x0 + 1, wy, 1 - wx, -1, 1),
                                       (y0 + 1, x0, 1 - wy, wx, 1, -1),
                                       (y0 + 1, x0 + 1, 1 - wy, 1 - wx, 1, 1)):
            if 0 <= yy < H and 0 <= xx < W:
                yield yy, xx, ay, ax, sy, sx

    def forward():
        out = numpy.zeros((B, C, h, w))
        for b in range(B):
            for i in range(h):
                for j in range(w):
                    for yy, xx, ay, ax, _, _ in neighbours(b, i, j):
                        out[b, :, i, j] += ay * ax * images[b, :, yy, xx]
        return out

    def backward(go):
        gi, gg = numpy.zeros(images.shape), numpy.zeros(grid.shape)
        for b in range(B):
            for i in range(h):
                for j in range(w):
                    for yy, xx, ay, ax, sy, sx in neighbours(b, i, j):
                        gi[b, :, yy, xx] += ay * ax * go[b, :, i, j]
                        dot = float(go[b, :, i, j] @ images[b, :, yy, xx])
                        gg[b, i, j, 0] += sy * ax * dot * (H - 1) / 2
                        gg[b, i, j, 1] += sx * ay * dot * (W - 1) / 2
        return gi, gg

    return forward, backward


def off_pixel_grid(rng, B, h, w, H, W):
    """A grid of points between pixel centres (fractional parts in [0.1, 0.9]), from two
    pixels before the first to two after the last: the bilinear weights are smooth
    there, so central differences are exact to O(h^2)."""
    yc = rng.integers(-2, H + 1, (B, h, w)) + rng.uniform(0.1, 0.9, (B, h, w))
    xc = rng.integers(-2, W + 1, (B, h, w)) + rng.uniform(0.1, 0.9, (B, h, w))
    return numpy.stack([2 * yc / (H - 1) - 1, 2 * xc / (W - 1) - 1], axis=-1)


def huber_reference(t, weight, delta, size_average):
    """P of SPEC §4 with explicit zero padding."""
    p = numpy.pad(t, [(0, 0)] * (t.ndim - 2) + [(1, 1), (1, 1)])
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    a = numpy.sqrt(gx ** 2 + gy ** 2)
    hub = numpy.where(a <= delta, a ** 2 / 2, delta * (a - delta / 2))
    return (weight / t.size if size_average else weight) * hub.sum(), a


# -------------------------------------------------------------- GridGenerator
def test_grid_generator_matches_reference(xp, rng):
    m = on(xp, nn.GridGenerator(3, 4))
    flow = rand(xp, rng, 2, 2, 3, 4)
    out = host(m.forward(flow))
    f = host(flow)
    assert out.shape == (2, 3, 4, 2)
    for i in range(3):
        for j in range(4):
            numpy.testing.assert_allclose(out[:, i, j, 0], -1 + 2 * i / 2 + f[:, 0, i, j], rtol=0, atol=1e-15)
            numpy.testing.assert_allclose(out[:, i, j, 1], -1 + 2 * j / 3 + f[:, 1, i, j], rtol=0, atol=1e-15)
    assert host(m.forward(flow[1])).shape == (3, 4, 2)


def test_grid_generator_jacobian(xp, rng):
    m = on(xp, nn.GridGenerator(3, 4))
    assert_jacobian(m, rand(xp, rng, 2, 2, 3, 4))
    assert_jacobian(m, rand(xp, rng, 2, 3, 4))


def test_grid_generator_keeps_float32(xp, rng):
    m = nn.GridGenerator(3, 4)
    out = m.forward(xp.asarray(rng.standard_normal((1, 2, 3, 4)), dtype="float32"))
    assert out.dtype == numpy.float32


@pytest.mark.parametrize("shape, match", [
    ((1, 3, 3, 4), "channel count"),        # three flow channels
    ((1, 2, 4, 4), "3x4"),                  # other size than the constructor's
    ((3, 3, 4), "channel count"),           # unbatched, three channels
    ((3, 4), "flow must be"),               # no channel axis
    ((1, 1, 2, 3, 4), "flow must be"),      # 5-D
])
def test_grid_generator_rejects_bad_flow(shape, match):
    with pytest.raises(ValueError, match=match):
        nn.GridGenerator(3, 4).forward(numpy.zeros(shape, dtype="float32"))


def test_grid_generator_rejects_bad_gradient_and_size():
    m = nn.GridGenerator(3, 4)
    flow = numpy.zeros((1, 2, 3, 4), dtype="float32")
    m.forward(flow)
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 2\)"):
        m.backward(flow, numpy.zeros((1, 2, 3, 4), dtype="float32"))
    with pytest.raises(ValueError, match="height"):
        nn.GridGenerator(1, 4)


# ------------------------------------------------------------- BilinearSampler
def test_sampler_matches_reference_forward_and_backward(xp, rng):
    images = rng.uniform(0, 1, (2, 3, 4, 5))
    grid = rng.uniform(-1.4, 1.4, (2, 3, 6, 2))  # some points outside the image
    forward, backward = sampler_reference(images, grid)
    m = on(xp, nn.BilinearSampler())
    out = m.forward([xp.asarray(images), xp.asarray(grid)])
    numpy.testing.assert_allclose(host(out), forward(), rtol=1e-12, atol=1e-12)
    go = rng.standard_normal(out.shape)
    gi, gg = m.backward([xp.asarray(images), xp.asarray(grid)], xp.asarray(go))
    ref_gi, ref_gg = backward(go)
    numpy.testing.assert_allclose(host(gi), ref_gi, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(host(gg), ref_gg, rtol=1e-12, atol=1e-12)


def test_sampler_jacobian(xp, rng):
    m = on(xp, nn.BilinearSampler())
    images = rand(xp, rng, 2, 2, 3, 4)
    grid = xp.asarray(off_pixel_grid(rng, 2, 2, 3, 3, 4))
    assert_jacobian(m, [images, grid])
    assert_jacobian(m, [images[0], grid[0]])


def test_sampling_the_base_grid_reproduces_the_input(xp, rng):
    images = rand(xp, rng, 2, 3, 5, 7, low=0, high=1)
    grid = xp.broadcast_to(base_grid(xp, 5, 7, "float64"), (2, 5, 7, 2))
    out = nn.BilinearSampler().forward([images, grid])
    numpy.testing.assert_allclose(host(out), host(images), rtol=0, atol=1e-14)
    images32, grid32 = images.astype("float32"), grid.astype("float32")
    out32 = nn.BilinearSampler().forward([images32, grid32])
    assert out32.dtype == numpy.float32
    numpy.testing.assert_allclose(host(out32), host(images32), rtol=0, atol=1e-6)


def test_sampler_outside_points_read_zero_and_half_pixel_reads_half(xp):
    H, W = 3, 5
    images = xp.asarray(numpy.arange(1.0, 1 + H * W).reshape(1, 1, H, W))
    px = 2 / (W - 1)  # one pixel in normalised x units
    py = 2 / (H - 1)
    points = numpy.array([[[0.0, -1 - 0.5 * px],   # half a pixel left of pixel (1, 0)
                           [0.0, 1 + 0.5 * px],    # half a pixel right of pixel (1, 4)
                           [-1 - 0.5 * py, -1.0],  # half a pixel above pixel (0, 0)
                           [0.0, -1 - 1.0 * px],   # one pixel out: nothing left
                           [0.0, 1 + 1.5 * px],
                           [3.0, 0.0],
                           [-1 - 0.25 * py, -1 - 0.5 * px]]])  # quarter above, half left of (0, 0)
    out = host(nn.BilinearSampler().forward([images, xp.asarray(points[:, None])]))
    img = host(images)[0, 0]
    expected = [img[1, 0] / 2, img[1, 4] / 2, img[0, 0] / 2, 0, 0, 0, img[0, 0] * 0.75 * 0.5]
    numpy.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-12, atol=1e-12)


def test_whole_pixel_flow_shifts_the_image_exactly(xp, rng):
    H, W = 4, 6
    images = rand(xp, rng, 1, 2, H, W)
    flow_px = numpy.zeros((1, 2, H, W))
    flow_px[:, 1] = 1  # every output pixel reads the pixel to its right
    grid = nn.GridGenerator(H, W).double().forward(normalise_flow(xp.asarray(flow_px), H, W))
    out = host(nn.BilinearSampler().forward([images, grid]))
    numpy.testing.assert_allclose(out[..., :-1], host(images)[..., 1:], rtol=0, atol=1e-12)
    assert not out[..., -1].any()  # the last column reads beyond the border: 0


def test_image_gradient_accumulates_points_that_share_pixels(xp):
    images = xp.ones((1, 1, 2, 2))
    grid = xp.zeros((1, 3, 3, 2))  # nine points at the image centre: each pixel weighs 1/4
    m = nn.BilinearSampler()
    m.forward([images, grid])
    gi, gg = m.backward([images, grid], xp.ones((1, 1, 3, 3)))
    numpy.testing.assert_allclose(host(gi), numpy.full((1, 1, 2, 2), 9 / 4), rtol=1e-12)
    assert not host(gg).any()  # a flat image has no slope


def _bad(images_shape, grid_shape, grid_dtype="float32"):
    return [numpy.zeros(images_shape, dtype="float32"), numpy.zeros(grid_shape, dtype=grid_dtype)]


@pytest.mark.parametrize("input, error, match", [
    (_bad((2, 1, 4, 4), (2, 4, 4, 3)), ValueError, "last dimension"),
    (_bad((2, 1, 4, 4), (3, 4, 4, 2)), ValueError, "batch size"),
    (_bad((2, 1, 4, 4), (4, 4, 2)), ValueError, "both be batched"),
    (_bad((2, 1, 4, 4), (2, 4, 2)), ValueError, r"\(B, h, w, 2\)"),
    (_bad((4, 4), (4, 4, 2)), ValueError, r"\(C, H, W\)"),
    (_bad((2, 1, 4, 4), (2, 4, 4, 2), "float64"), TypeError, "float32 array like images"),
    (_bad((2, 1, 4, 4), (2, 4, 4, 2))[:1], ValueError, "list of 2"),
    (numpy.zeros((2, 1, 4, 4), dtype="float32"), TypeError, "table"),
])
def test_sampler_rejects_bad_inputs(input, error, match):
    with pytest.raises(error, match=match):
        nn.BilinearSampler().forward(input)


def test_sampler_rejects_bad_gradient():
    m = nn.BilinearSampler()
    x = _bad((2, 1, 4, 4), (2, 3, 3, 2))
    m.forward(x)
    with pytest.raises(ValueError, match=r"\(2, 1, 3, 3\)"):
        m.backward(x, numpy.zeros((2, 1, 4, 4), dtype="float32"))


# ----------------------------------------------------------------- HuberPenalty
def test_huber_forward_is_identity_and_loss_matches_reference(xp, rng):
    for size_average in (True, False):
        m = nn.HuberPenalty(2, weight=0.3, threshold=0.2, sizeAverage=size_average)
        t = rand(xp, rng, 2, 2, 4, 5)
        assert m.forward(t) is t
        ref, a = huber_reference(host(t), 0.3, 0.2, size_average)
        assert (a <= 0.2).any() and (a > 0.2).any()  # both zones are exercised
        assert float(m.loss) == pytest.approx(ref, rel=1e-12)


def _penalty(m, t):
    m.forward(t)
    return m.loss


@pytest.mark.parametrize("threshold", [10.0, 0.3, 1e-3])  # quadratic, mixed, linear
@pytest.mark.parametrize("shape", [(2, 2, 3, 4), (2, 4, 3)])
def test_huber_gradient_is_the_derivative_of_the_penalty(xp, rng, threshold, shape):
    # weight 1/min(threshold, 1) keeps the gradient of order 1 in every zone
    m = nn.HuberPenalty(2, weight=1 / min(threshold, 1), threshold=threshold, sizeAverage=False)
    t = rand(xp, rng, *shape)
    a = huber_reference(host(t), 1, threshold, False)[1]
    assert (a <= threshold).any() == (threshold > 1e-3) and (a > threshold).any() == (threshold < 10)
    gi = host(m.backward(t, xp.zeros(shape)))
    fd, h = numpy.zeros(shape), 1e-6
    for i in range(t.size):
        tp, tm = t.copy(), t.copy()
        tp.reshape(-1)[i] += h
        tm.reshape(-1)[i] -= h
        fd.reshape(-1)[i] = (_penalty(m, tp) - _penalty(m, tm)) / (2 * h)
    assert numpy.abs(gi).max() > 0.1
    assert numpy.abs(gi - fd).max() < 1e-6


def test_huber_gradient_passes_gradoutput_through(xp, rng):
    m = on(xp, nn.HuberPenalty(2, weight=0.0))
    assert_jacobian(m, rand(xp, rng, 2, 2, 3, 4))  # weight 0: exactly the identity
    assert_jacobian(m, rand(xp, rng, 2, 3, 4))
    m = nn.HuberPenalty(2, weight=0.5, threshold=0.1)
    t, go = rand(xp, rng, 2, 2, 3, 4), rand(xp, rng, 2, 2, 3, 4)
    penalty_only = host(m.backward(t, xp.zeros_like(go)))
    both = m.backward(t, go)
    assert both is not go
    numpy.testing.assert_allclose(host(both) - penalty_only, host(go), rtol=0, atol=1e-12)
    before = host(go)
    both[...] = 0  # writing into gradInput must not reach gradOutput
    numpy.testing.assert_array_equal(host(go), before)


def test_huber_zero_flow_gives_zero_finite_gradient(xp):
    m = nn.HuberPenalty(2)
    t = xp.zeros((1, 2, 4, 4), dtype="float32")
    go = xp.zeros_like(t)
    m.forward(t)
    g = host(m.backward(t, go))
    assert numpy.isfinite(g).all() and not g.any() and m.loss == 0


def test_huber_clear_state_drops_the_loss(rng):
    m = nn.HuberPenalty(2)
    m.forward(rng.standard_normal((2, 3, 3)))
    assert m.loss > 0
    assert m.clearState().loss is None


@pytest.mark.parametrize("shape, match", [((1, 3, 4, 4), "channel count"), ((4, 4), r"\(C, H, W\)")])
def test_huber_rejects_bad_inputs(shape, match):
    with pytest.raises(ValueError, match=match):
        nn.HuberPenalty(2).forward(numpy.zeros(shape))


def test_huber_rejects_bad_gradient_and_threshold():
    m = nn.HuberPenalty(2)
    t = numpy.zeros((1, 2, 4, 4))
    m.forward(t)
    with pytest.raises(ValueError, match="shape"):
        m.backward(t, numpy.zeros((1, 2, 4, 3)))
    with pytest.raises(ValueError, match="threshold"):
        nn.HuberPenalty(2, threshold=0)


# ------------------------------------------------------- warping sanity check
def test_warping_with_the_true_flow_reproduces_the_next_frame(xp):
    device = "cpu" if xp is numpy else "cuda"
    for name in FLOWS:
        r = warp_error(name, device=device)
        assert r["inside"] < 0.005, (name, r["inside"])
        if name in ("translation", "subpixel_field"):  # sub-pixel: only a thin border fades
            assert r["all"] < 0.02, (name, r["all"])
