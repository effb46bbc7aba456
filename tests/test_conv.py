"""SpatialConvolution (SPEC §2): gradients, a direct reference, init, repr and errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


def reference_conv(x, w, b, dH, dW, padH, padW):
    """Direct cross-correlation, one output pixel at a time (x is (B, C, H, W))."""
    xp_ = numpy.pad(x, ((0, 0), (0, 0), (padH, padH), (padW, padW)))
    F, _, kH, kW = w.shape
    Ho = (xp_.shape[2] - kH) // dH + 1
    Wo = (xp_.shape[3] - kW) // dW + 1
    y = numpy.zeros((x.shape[0], F, Ho, Wo))
    for p in range(Ho):
        for q in range(Wo):
            patch = xp_[:, :, p * dH:p * dH + kH, q * dW:q * dW + kW]
            y[:, :, p, q] = numpy.einsum("bcij,fcij->bf", patch, w)
    return y + (0 if b is None else b.reshape(1, F, 1, 1))


GEOMETRIES = [
    dict(args=(2, 3, 3, 3), shape=(2, 2, 4, 5)),                              # plain 3x3
    dict(args=(2, 2, 3, 2, 2, 1, 1, 0), shape=(2, 2, 5, 6)),                  # kW != kH, strides, padW only
    dict(args=(1, 2, 2, 3, 1, 2, 1, 2), shape=(1, 1, 4, 3)),                  # padH != padW
    # fewer output than input planes at stride 1: conv_ops' output-side (shift-add) path
    dict(args=(3, 1, 3, 3, 1, 1, 1, 1), shape=(2, 3, 5, 5)),
    dict(args=(4, 2, 5, 3, 1, 1, 2, 1), shape=(2, 4, 6, 5)),                  # kW != kH, padW != padH
    dict(args=(3, 2, 3, 3, 1, 1, 0, 0), shape=(2, 3, 5, 4)),                  # no padding
    dict(args=(3, 1, 2, 3, 1, 1, 1, 2), shape=(1, 3, 3, 4)),                  # even kW, padH = kH - 1
]


@pytest.mark.parametrize("g", GEOMETRIES)
def test_jacobian_batched_and_unbatched(xp, rng, g):
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    assert_jacobian(m, rand(xp, rng, *g["shape"]))
    assert_jacobian(m, rand(xp, rng, *g["shape"][1:]))


def test_jacobian_without_bias(xp, rng):
    m = on(xp, nn.SpatialConvolution(2, 2, 3, 3, 1, 1, 1).noBias())
    assert m.bias is None and len(m.parameters()[0]) == 1
    assert_jacobian(m, rand(xp, rng, 2, 2, 3, 3))


@pytest.mark.parametrize("g", GEOMETRIES)
def test_forward_matches_direct_reference(xp, rng, g):
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, *g["shape"])
    ref = reference_conv(host(x), host(m.weight), host(m.bias), m.dH, m.dW, m.padH, m.padW)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-10, atol=1e-12)
    x3 = x[0]
    numpy.testing.assert_allclose(host(m.forward(x3)), ref[0], rtol=1e-10, atol=1e-12)
    assert m.output.shape == ref.shape[1:]


def test_float32_by_default_and_gradients_accumulate(rng):
    m = nn.SpatialConvolution(2, 3, 3, 3, 1, 1, 1)
    x = rng.standard_normal((2, 2, 4, 4)).astype(numpy.float32)
    y = m.forward(x)
    assert y.dtype == numpy.float32 and y.shape == (2, 3, 4, 4)
    gy = rng.standard_normal(y.shape).astype(numpy.float32)
    m.zeroGradParameters()
    gx = m.backward(x, gy)
    assert gx.dtype == numpy.float32 and gx.shape == x.shape
    once = [g.copy() for g in m.parameters()[1]]
    m.backward(x, gy, scale=0.5)
    for g, g1 in zip(m.parameters()[1], once):
        numpy.testing.assert_allclose(g, 1.5 * g1, rtol=1e-5)


def test_torch_default_init_and_reset():
    m = nn.SpatialConvolution(4, 8, 3, 2)
    bound = 1 / (4 * 3 * 2) ** 0.5
    for a in (m.weight, m.bias):
        assert numpy.abs(a).max() <= bound and a.std() > bound / 4
    m.reset(stdv=0.01)
    assert numpy.abs(m.weight).max() <= 0.01 * 3 ** 0.5 + 1e-7
    assert numpy.abs(m.weight).max() > 0.01  # U(+-stdv sqrt 3), Torch's rule, not U(+-stdv)


def test_pad_h_defaults_to_pad_w_and_repr():
    m = nn.SpatialConvolution(1, 16, 7, 7, 1, 1, 3)
    assert (m.padW, m.padH) == (3, 3)
    assert repr(m) == "nn.SpatialConvolution(1 -> 16, 7x7, 1,1, 3,3)"
    assert repr(nn.SpatialConvolution(2, 4, 3, 5)) == "nn.SpatialConvolution(2 -> 4, 3x5)"
    assert repr(nn.SpatialConvolution(2, 4, 3, 3, 2, 2).noBias()) == \
        "nn.SpatialConvolution(2 -> 4, 3x3, 2,2) without bias"


def test_wrong_rank_is_an_error():
    m = nn.SpatialConvolution(2, 3, 3, 3)
    with pytest.raises(ValueError, match=r"SpatialConvolution: input must be \(C, H, W\) or "
                                         r"\(B, C, H, W\) with C=2, got shape \(2, 5\)"):
        m.forward(numpy.zeros((2, 5), numpy.float32))


def test_wrong_channel_count_is_an_error():
    m = nn.SpatialConvolution(2, 3, 3, 3)
    with pytest.raises(ValueError, match="channel count C .* must be 2, got 4"):
        m.forward(numpy.zeros((1, 4, 5, 5), numpy.float32))


def test_input_smaller_than_kernel_is_an_error():
    m = nn.SpatialConvolution(1, 1, 5, 5, 1, 1, 1)
    with pytest.raises(ValueError, match=r"input image 2x6 .*4x8 after padding.* smaller than the 5x5 kernel"):
        m.forward(numpy.zeros((1, 2, 6), numpy.float32))
    assert m.forward(numpy.zeros((1, 3, 3), numpy.float32)).shape == (1, 1, 1)  # fits once padded


def test_dtype_mismatch_is_an_error():
    m = nn.SpatialConvolution(1, 1, 3, 3)
    with pytest.raises(TypeError, match="dtype float64 but the parameters are float32"):
        m.forward(numpy.zeros((1, 4, 4)))
    with pytest.raises(TypeError, match="floating point"):
        m.forward(numpy.zeros((1, 4, 4), numpy.int32))


def test_backend_mismatch_is_an_error(xp):
    if xp is numpy:
        pytest.skip("needs CuPy: a GPU input to a CPU module")
    m = nn.SpatialConvolution(1, 1, 3, 3)
    with pytest.raises(TypeError, match="cupy array but the parameters are numpy"):
        m.forward(xp.zeros((1, 4, 4), xp.float32))


def test_wrong_grad_output_shape_is_an_error():
    m = nn.SpatialConvolution(1, 2, 3, 3)
    x = numpy.zeros((1, 5, 5), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(2, 3, 3\), got shape \(2, 3, 4\)"):
        m.backward(x, numpy.zeros((2, 3, 4), numpy.float32))


def test_bad_constructor_arguments_are_errors():
    with pytest.raises(ValueError, match="kW must be >= 1, got 0"):
        nn.SpatialConvolution(1, 1, 0, 3)
    with pytest.raises(ValueError, match="padW must be >= 0"):
        nn.SpatialConvolution(1, 1, 3, 3, 1, 1, -1)
    with pytest.raises(TypeError, match="nOutputPlane must be an integer"):
        nn.SpatialConvolution(1, 2.5, 3, 3)


@pytest.mark.parametrize("g", GEOMETRIES)
def test_chunked_batches_give_the_same_numbers(xp, rng, g, monkeypatch):
    """A work buffer too small for the batch splits it into chunks of frames (here one
    frame each): outputs and gradients are unchanged."""
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, 3, *g["shape"][1:])
    y = m.forward(x)
    gy = rand(xp, rng, *y.shape)
    whole = [host(a) for a in (y, m.backward(x, gy), m.gradWeight, m.gradBias)]
    monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 1)
    m.zeroGradParameters()
    y = m.forward(x)
    chunked = [host(a) for a in (y, m.backward(x, gy), m.gradWeight, m.gradBias)]
    for a, b in zip(chunked, whole):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert_jacobian(m, x)


def test_batch_chunks_cover_the_batch_in_equal_bounded_pieces(monkeypatch):
    monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 100)
    assert nn.conv_ops.batch_chunks(16, 20) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert nn.conv_ops.batch_chunks(16, 10) == [(0, 8), (8, 16)]
    assert nn.conv_ops.batch_chunks(3, 500) == [(0, 1), (1, 2), (2, 3)]  # a frame is never split
    assert nn.conv_ops.batch_chunks(5, 1) == [(0, 5)]
    # 1.3 frames fit: one a chunk (rounding the chunk count up first gave 7 chunks of 2)
    assert nn.conv_ops.batch_chunks(8, 200, budget=262) == [(b, b + 1) for b in range(8)]
    assert nn.conv_ops.batch_chunks(10, 30, budget=100) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert nn.conv_ops.batch_chunks(0, 30) == []  # an empty batch


def test_host_chunks_fit_the_cache_and_device_chunks_fill_the_work_buffer(xp, monkeypatch):
    """On the host each thread's chunk of frames keeps its work buffer within
    ``CACHE_ELEMENTS`` (here one frame of the 64 -> 256 ConvLSTM map's columns, 3136 x 1024);
    on a device a call is one range with the whole ``WORK_ELEMENTS``."""
    per_frame = 64 * 49 * 32 * 32
    ranges, budget = nn.conv_ops._split_frames(xp, 16)
    if xp is numpy:
        with nn.backend.host_threads(2):
            ranges, budget = nn.conv_ops._split_frames(xp, 16)
        assert ranges == [(0, 8), (8, 16)] and budget == nn.conv_ops.CACHE_ELEMENTS
        assert nn.conv_ops.batch_chunks(8, per_frame, budget) == [(b, b + 1) for b in range(8)]
        monkeypatch.setattr(nn.conv_ops, "CACHE_ELEMENTS", 4 * per_frame)
        assert nn.conv_ops._split_frames(xp, 16)[1] == 4 * per_frame
        monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 2 * per_frame)  # the share is the smaller
        assert nn.conv_ops._split_frames(xp, 16)[1] == 2 * per_frame // len(
            nn.backend.host_ranges(xp, 16))
    else:
        assert ranges == [(0, 16)] and budget == nn.conv_ops.WORK_ELEMENTS
        assert len(nn.conv_ops.batch_chunks(16, per_frame, budget)) == 2


def test_scratch_buffer_is_reused_and_grows(xp):
    a = nn.backend.scratch(xp, 10, "float64")
    b = nn.backend.scratch(xp, 5, "float64")
    assert b.size == 5 and nn.backend.data_key(a)[0] == nn.backend.data_key(b)[0]
    c = nn.backend.scratch(xp, 1000, "float64")
    assert c.size == 1000
    assert nn.backend.scratch(xp, 5, "float32").dtype == numpy.float32
    nn.backend.free_scratch()


@pytest.mark.parametrize("g", GEOMETRIES)
def test_fused_backward_equals_the_two_torch_calls(xp, rng, g):
    """``backward`` (one pass, ``conv2d_backward``) gives what ``updateGradInput`` then
    ``accGradParameters(scale)`` give, and accumulates like them."""
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, *g["shape"])
    gy = rand(xp, rng, *m.forward(x).shape)
    m.zeroGradParameters()
    gx = host(m.updateGradInput(x, gy))
    m.accGradParameters(x, gy, 0.5)
    m.accGradParameters(x, gy, 0.5)
    separate = [host(m.gradWeight), host(m.gradBias)]
    m.zeroGradParameters()
    m.backward(x, gy, 0.5)
    fused = [host(m.backward(x, gy, 0.5)), host(m.gradWeight), host(m.gradBias)]
    for a, b in zip(fused, [gx] + separate):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("g", GEOMETRIES)
@pytest.mark.parametrize("path", ["columns", "shift", "rows", "fourier"])
def test_every_forward_path_matches_the_direct_reference(xp, rng, g, path, monkeypatch):
    """Each forward path, forced (where it does not apply, stride > 1, the columns path
    runs), gives the direct cross-correlation, chunked over frames or not."""
    monkeypatch.setattr(nn.conv_ops, "FORWARD_PATH", path)
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, *g["shape"])
    ref = reference_conv(host(x), host(m.weight), host(m.bias), m.dH, m.dW, m.padH, m.padW)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 1)
    monkeypatch.setattr(nn.conv_ops, "FOURIER_WORK_ELEMENTS", 1)
    monkeypatch.setattr(nn.conv_ops, "FOURIER_PART_ELEMENTS", 1)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("g", GEOMETRIES)
@pytest.mark.parametrize("path", ["gradient", "rows", "fourier"])
def test_backward_paths_agree(xp, rng, g, path, monkeypatch):
    """The gradient-side and row-columns backwards give the input-side (im2col + col2im)
    gradients, whichever the rule would pick, chunked or not, with and without dL/dx; each
    passes the Jacobian test where it applies (stride 1), F > C included."""
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, *g["shape"])
    gy = rand(xp, rng, *m.forward(x).shape)
    results = {}
    for forced in ("columns", path):
        monkeypatch.setattr(nn.conv_ops, "BACKWARD_PATH", forced)
        m.zeroGradParameters()
        m.forward(x)
        results[forced] = [host(a) for a in (m.backward(x, gy), m.gradWeight, m.gradBias)]
    monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 1)
    monkeypatch.setattr(nn.conv_ops, "FOURIER_WORK_ELEMENTS", 1)  # a frame a chunk, a bin a slice
    monkeypatch.setattr(nn.conv_ops, "FOURIER_PART_ELEMENTS", 1)  # a plane a part
    m.zeroGradParameters()
    m.accGradParameters(x, gy)  # the weight gradient alone
    results["chunked"] = [host(m.updateGradInput(x, gy)), host(m.gradWeight), host(m.gradBias)]
    for a, b, c in zip(results["columns"], results[path], results["chunked"]):
        numpy.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        numpy.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)
    assert_jacobian(m, x)


@pytest.mark.parametrize("g", GEOMETRIES)
def test_channel_major_layout_gives_the_same_numbers(xp, rng, g):
    """``channel_major=True`` (the ConvLSTMs' layout) returns views of (C, B, H, W) memory
    with the same values as the contiguous default, and the convolution reads channel-major
    views of x and gy in place."""
    ops = nn.conv_ops
    m = nn.SpatialConvolution(*g["args"])
    w = xp.asarray(m.weight.astype(numpy.float64))
    b = xp.asarray(m.bias.astype(numpy.float64))
    geometry = dict(dH=m.dH, dW=m.dW, padH=m.padH, padW=m.padW)
    x = rand(xp, rng, *g["shape"])
    y = ops.conv2d(x, w, b, **geometry)
    assert y.flags.c_contiguous  # each range of frames lays out its part (_batch_layout)
    x_cm = ops.channel_major_view(xp.ascontiguousarray(x.transpose(1, 0, 2, 3)))
    y_cm = ops.conv2d(x_cm, w, b, channel_major=True, **geometry)
    assert y_cm.transpose(1, 0, 2, 3).flags.c_contiguous
    numpy.testing.assert_allclose(host(y_cm), host(y), rtol=1e-12, atol=1e-12)
    gy = rand(xp, rng, *y.shape)
    gy_cm = ops.channel_major_view(xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)))
    grads = []
    for gy_, x_, cm in ((gy, x, False), (gy_cm, x_cm, True)):
        gw, gb = xp.zeros_like(w), xp.zeros_like(b)
        gx = ops.conv2d_backward(gy_, w, x.shape, x_, gw, gb, channel_major=cm, **geometry)
        assert gx.transpose(1, 0, 2, 3).flags.c_contiguous if cm else gx.flags.c_contiguous
        grads.append([host(a) for a in (gx, gw, gb)])
    for a, c in zip(*grads):
        numpy.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_paths_by_memory_traffic():
    """The rule picks, for each 7x7 'same' layer of the Table 1 models at their frame counts,
    the path that ``benchmarks/conv_paths.py`` measured fastest (or within noise of it), and
    the columns path wherever the others do not apply."""
    fwd, bwd = nn.conv_ops.forward_path, nn.conv_ops.backward_path
    same = dict(padH=3, padW=3)
    # (C, size, F, frames): forward, backward with dL/dx
    for C, n, F, B, forward, backward in [(10, 64, 16, 16, "rows", "rows"), (16, 32, 64, 16, "fourier", "fourier"),
                                          (64, 32, 16, 16, "fourier", "fourier"),
                                          (16, 64, 1, 16, "shift", "gradient"),
                                          (16, 32, 256, 160, "fourier", "fourier"),
                                          (64, 32, 256, 16, "fourier", "fourier"),
                                          (64, 32, 64, 160, "fourier", "fourier")]:
        assert fwd(C, n, n, F, 7, 7, frames=B, **same) == forward
        assert bwd(C, n, n, F, 7, 7, frames=B, **same) == backward
    # the Fourier path's kernel spectrum is made once a call: one frame pays all of it
    assert fwd(16, 32, 32, 64, 7, 7, frames=1, **same) != "fourier"
    flow = dict(padH=7, padW=7, frames=160)  # the flow regressor's two 15x15 layers
    assert (fwd(64, 32, 32, 2, 15, 15, **flow), bwd(64, 32, 32, 2, 15, 15, **flow)) == ("fourier", "gradient")
    assert (fwd(2, 32, 32, 2, 15, 15, **flow), bwd(2, 32, 32, 2, 15, 15, **flow)) == ("fourier", "fourier")
    # first layers (no dL/dx): row columns for 10 planes in, im2col for 1 (gy outweighs R)
    assert bwd(10, 64, 64, 16, 7, 7, need_input=False, frames=16, **same) == "rows"
    assert bwd(1, 64, 64, 16, 7, 7, need_input=False, frames=160, **same) == "columns"
    assert fwd(10, 64, 64, 16, 7, 7, 2, 2, **same) == "columns"           # stride 2
    assert bwd(10, 64, 64, 16, 7, 7, 2, 2, **same) == "columns"
    assert bwd(10, 64, 64, 16, 3, 3, padH=3, padW=3) == "columns"          # pad > k - 1
    assert fwd(10, 64, 64, 16, 3, 3, padH=3, padW=3) in ("columns", "shift", "rows")
    # the kernel's spectrum grows with the frame: 64 -> 256 at 64x64 would hold 300 MB
    assert fwd(64, 64, 64, 256, 7, 7, frames=16, **same) != "fourier"
    assert bwd(64, 64, 64, 256, 7, 7, frames=16, **same) != "fourier"


def test_the_fourier_memo_keeps_one_spectrum_and_changes_no_number(xp, rng, monkeypatch):
    """A ``memo`` keeps the kernel's spectrum for the next call on the same geometry, and the
    numbers are those of a call without one, here chunked down to a frame a chunk
    (``FOURIER_WORK_ELEMENTS`` of 1)."""
    ops = nn.conv_ops
    monkeypatch.setattr(ops, "FORWARD_PATH", "fourier")
    monkeypatch.setattr(ops, "BACKWARD_PATH", "fourier")
    w, b = rand(xp, rng, 4, 3, 3, 5), rand(xp, rng, 4)
    x = rand(xp, rng, 2, 3, 6, 7)
    memo = {}
    y = ops.conv2d(x, w, b, padH=1, padW=2, memo=memo)
    assert len(memo) == 1
    numpy.testing.assert_allclose(host(ops.conv2d(x, w, b, padH=1, padW=2, memo=memo)), host(y), rtol=1e-12)
    assert len(memo) == 1
    ops.conv2d(x[:, :, :5], w, b, padH=1, padW=2, memo=memo)  # another frame size: another spectrum
    assert len(memo) == 2
    gy = rand(xp, rng, *y.shape)
    kept = ops.conv2d_backward(gy, w, x.shape, padH=1, padW=2, memo=memo)
    monkeypatch.setattr(ops, "FOURIER_WORK_ELEMENTS", 1)
    made = ops.conv2d_backward(gy, w, x.shape, padH=1, padW=2)
    numpy.testing.assert_allclose(host(made), host(kept), rtol=1e-12, atol=1e-12)
    ref = reference_conv(host(x), host(w), host(b), 1, 1, 1, 2)
    numpy.testing.assert_allclose(host(y), ref, rtol=1e-10, atol=1e-12)


def test_a_forced_path_applies_only_where_it_can(monkeypatch):
    monkeypatch.setattr(nn.conv_ops, "FORWARD_PATH", "shift")
    monkeypatch.setattr(nn.conv_ops, "BACKWARD_PATH", "gradient")
    assert nn.conv_ops.forward_path(16, 32, 32, 64, 7, 7, padH=3, padW=3) == "shift"
    assert nn.conv_ops.forward_path(16, 32, 32, 64, 7, 7, 2, 2, 3, 3) == "columns"
    assert nn.conv_ops.backward_path(16, 32, 32, 64, 3, 3, padH=3, padW=3) == "columns"


# Frames side by side on the host (backend.host_parallel): the same numbers as one thread.

@pytest.mark.parametrize("g", GEOMETRIES)
@pytest.mark.parametrize("forward,backward", [("columns", "columns"), ("shift", "gradient"),
                                              ("rows", "rows"), ("fourier", "fourier")])
def test_frames_split_over_threads_give_the_one_thread_numbers(rng, g, forward, backward, monkeypatch):
    """Every path, split over 3 threads (each range chunked or not), gives the output and the
    three gradients of one thread."""
    monkeypatch.setattr(nn.conv_ops, "FORWARD_PATH", forward)
    monkeypatch.setattr(nn.conv_ops, "BACKWARD_PATH", backward)
    m = on(numpy, nn.SpatialConvolution(*g["args"]))
    x = rand(numpy, rng, 7, *g["shape"][1:])
    gy = rand(numpy, rng, *m.forward(x).shape)
    results = []
    for threads, work in ((1, nn.conv_ops.WORK_ELEMENTS), (3, nn.conv_ops.WORK_ELEMENTS), (3, 1)):
        monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", work)
        with nn.backend.host_threads(threads):
            m.zeroGradParameters()
            results.append([m.forward(x).copy(), m.backward(x, gy).copy(), m.gradWeight.copy(),
                            m.gradBias.copy()])
    for split in results[1:]:
        for a, b in zip(split, results[0]):
            numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_split_frames_share_the_work_buffer_and_free_scratch_reaches_every_thread(monkeypatch):
    """Threads share ``WORK_ELEMENTS``: a chunked convolution's peak host memory on 3 threads is
    not above one thread's, and ``free_scratch`` gives back the pool threads' buffers too."""
    import tracemalloc
    m = nn.SpatialConvolution(8, 8, 5, 5, 1, 1, 2, 2)
    x = numpy.random.default_rng(0).standard_normal((12, 8, 24, 24)).astype(numpy.float32)
    monkeypatch.setattr(nn.conv_ops, "FORWARD_PATH", "columns")
    monkeypatch.setattr(nn.conv_ops, "BACKWARD_PATH", "columns")
    monkeypatch.setattr(nn.conv_ops, "WORK_ELEMENTS", 8 * 25 * 24 * 24 * 3)  # 3 frames a chunk
    monkeypatch.setattr(nn.conv_ops, "CACHE_ELEMENTS", nn.conv_ops.WORK_ELEMENTS)  # the share rules
    peaks = []
    tracemalloc.start()
    try:
        for threads in (1, 3):
            nn.backend.free_scratch()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with nn.backend.host_threads(threads):
                y = m.forward(x)
                m.backward(x, y)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            del y
            m.gradInput = m.output = None
            nn.backend.free_scratch()
            assert tracemalloc.get_traced_memory()[0] - base < 64 << 10
    finally:
        tracemalloc.stop()
    assert peaks[1] <= peaks[0] * 1.05
