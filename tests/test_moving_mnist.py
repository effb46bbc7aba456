"""Moving MNIST (SPEC §6): digit sources, the bouncing-digit generator, fixed splits, batching."""
import gzip
import json
import os

import numpy
import pytest

import moving_mnist as mm
from models.video_predictor import VideoPredictor
from moving_mnist import BACKGROUND, MovingMNIST, bounce_trajectories


def pool(rng, n=5, k=28):
    """Random digit images in [0, 1] with some exact zeros, and labels 0..n-1."""
    images = rng.uniform(-0.5, 1, size=(n, k, k)).clip(0, 1).astype(numpy.float32)
    return images, numpy.arange(n) % 10


def paste_reference(images, digits, positions, size):
    """Plain-loop rendering: per-pixel max of the digits pasted at their top-left corners."""
    t_len, b, d, _ = positions.shape
    k = images.shape[1]
    frames = numpy.zeros((t_len, b, size, size), numpy.float32)
    for t in range(t_len):
        for n in range(b):
            for j in range(d):
                y, x = positions[t, n, j]
                region = frames[t, n, y:y + k, x:x + k]
                numpy.maximum(region, images[digits[n, j]], out=region)
    return frames[:, :, None]


# ---------------------------------------------------------------- generator


def test_shapes_dtypes_and_range(rng):
    images, labels = pool(rng)
    frames, pixel_labels = MovingMNIST(images, labels).generate(3, rng, labels=True)
    assert frames.shape == (20, 3, 1, 64, 64) and frames.dtype == numpy.float32
    assert pixel_labels.shape == (20, 3, 64, 64) and pixel_labels.dtype == numpy.int64
    assert frames.min() >= 0 and frames.max() <= 1 and frames.max() > 0
    small = MovingMNIST(images[:, :10, :10], seq_len=4, num_digits=3, frame_size=16).generate(2, 0)
    assert small.shape == (4, 2, 1, 16, 16)


def test_reproducible_with_a_seed(rng):
    g = MovingMNIST(*pool(rng))
    a, b = g.generate(2, 7), g.generate(2, numpy.random.default_rng(7))
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, g.generate(2, 8))


def test_render_matches_a_plain_loop_reference(rng):
    images, labels = pool(rng)
    g = MovingMNIST(images, labels, seq_len=6, num_digits=3)
    digits, positions = g.sample(4, rng)
    assert positions.min() >= 0 and positions.max() <= 36
    numpy.testing.assert_array_equal(g.render(digits, positions),
                                     paste_reference(images, digits, positions, 64))


def test_bounce_clamps_and_flips_at_each_edge():
    traj = bounce_trajectories([[0.5, 0.95], [0.05, 0.5]], [[0.0, 0.1], [-0.1, 0.0]], 5)
    assert traj.shape == (5, 2, 2)
    numpy.testing.assert_allclose(traj[:, 0, 1], [0.95, 1.0, 0.9, 0.8, 0.7])
    numpy.testing.assert_allclose(traj[:, 0, 0], 0.5)
    numpy.testing.assert_allclose(traj[:, 1, 0], [0.05, 0.0, 0.1, 0.2, 0.3], atol=1e-12)


def test_bounce_keeps_points_inside_and_speed_between_bounces(rng):
    start = rng.random((50, 2))
    theta = rng.uniform(0, 2 * numpy.pi, 50)
    velocity = 0.1 * numpy.stack([numpy.sin(theta), numpy.cos(theta)], axis=-1)
    traj = bounce_trajectories(start, velocity, 60)
    assert traj.min() >= 0 and traj.max() <= 1
    step = numpy.abs(numpy.diff(traj, axis=0))
    free = ((traj[1:] > 0) & (traj[1:] < 1)).all(axis=-1)  # no clamp on that frame
    numpy.testing.assert_allclose(numpy.hypot(step[..., 0], step[..., 1])[free], 0.1, rtol=1e-9)


def test_single_digit_bounces_in_pixels():
    block = numpy.ones((1, 28, 28), numpy.float32)
    g = MovingMNIST(block, num_digits=1, seq_len=4)
    positions = numpy.floor(bounce_trajectories([[0.5, 0.9]], [[0.0, 0.1]], 4) * 36).astype(int)
    frames = g.render(numpy.zeros((1, 1), int), positions[:, None])
    left = [numpy.nonzero(f[0, 0].any(axis=0))[0][0] for f in frames]
    assert left == [32, 36, 32, 28]  # 3.6 px per frame, clamped at x = 64 - 28, then back
    assert (frames.sum(axis=(1, 2, 3, 4)) == 28 * 28).all()  # never clipped by the frame


def test_digit_never_leaves_the_frame(rng):
    images, labels = pool(rng)
    frames = MovingMNIST(images, labels, num_digits=1, seq_len=40).generate(8, rng)
    # With one digit the frame holds the whole digit at every step: its mass is conserved.
    per_sequence = frames.sum(axis=(2, 3, 4))
    numpy.testing.assert_allclose(per_sequence, per_sequence[:1].repeat(40, axis=0), rtol=1e-5)


def test_step_length_is_3_6_pixels_per_frame(rng):
    g = MovingMNIST(*pool(rng), num_digits=1, seq_len=2)
    _, positions = g.sample(2000, rng)
    inside = ((positions > 0) & (positions < 36)).all(axis=(0, 3))[:, 0]
    moved = numpy.linalg.norm(positions[1] - positions[0], axis=-1)[inside, 0]
    assert abs(moved.mean() - 3.6) < 0.3


def test_speed_range_draws_per_digit_speeds(rng):
    images, labels = pool(rng)
    fixed = MovingMNIST(images, step_length=0.05).sample(3, 5)
    pair = MovingMNIST(images, step_length=(0.05, 0.05)).sample(3, 5)
    numpy.testing.assert_array_equal(fixed[1], pair[1])
    _, still = MovingMNIST(images, step_length=(0.0, 0.0)).sample(3, 5)
    assert (still == still[:1]).all()


def test_max_combination_and_labels_follow_the_brightest_digit(rng):
    images, labels = pool(rng)
    g = MovingMNIST(images, labels, seq_len=3)
    digits, positions = numpy.array([[1, 2], [3, 3]]), numpy.full((3, 2, 2, 2), 10)
    positions[:, :, 1] = 20  # overlapping windows: rows and columns 20..37
    frames, pixel_labels = g.render(digits, positions, labels=True)
    layers = [g.render(digits[:, [j]], positions[:, :, [j]])[:, :, 0] for j in range(2)]
    numpy.testing.assert_array_equal(frames[:, :, 0], numpy.maximum(*layers))
    first = (layers[0] >= layers[1]) & (layers[0] > 0)  # ties go to the digit drawn first
    expected = numpy.where(first, labels[digits[:, 0]][None, :, None, None],
                           numpy.where(layers[1] > 0, labels[digits[:, 1]][None, :, None, None],
                                       BACKGROUND))
    numpy.testing.assert_array_equal(pixel_labels, expected)


def test_labels_consistent_with_frames(rng):
    images, labels = pool(rng)
    frames, pixel_labels = MovingMNIST(images, labels, num_digits=3).generate(4, rng, labels=True)
    assert ((frames[:, :, 0] == 0) == (pixel_labels == BACKGROUND)).all()
    assert set(numpy.unique(pixel_labels)) <= set(labels) | {BACKGROUND}


def test_binary_frames_are_0_1_and_targets_are_the_next_frames(rng):
    images, labels = pool(rng)
    g = MovingMNIST(images, labels, num_digits=3, binarize=True)
    digits, positions = g.sample(4, rng)
    frames = g.render(digits, positions)
    assert set(numpy.unique(frames)) == {0.0, 1.0}
    # the digits are thresholded before they are placed: the binary sequence is the grey
    # sequence of the thresholded pool, not a thresholded grey frame
    binary_pool = (images > mm.generator.BINARY_THRESHOLD).astype(numpy.float32)
    numpy.testing.assert_array_equal(frames, paste_reference(binary_pool, digits, positions, 64))
    # a model's targets (the frame after each input frame) are the next binary input frames
    targets = VideoPredictor().targets(frames)
    assert set(numpy.unique(targets)) == {0.0, 1.0}
    numpy.testing.assert_array_equal(targets, g.render(digits, positions[1:]))


def test_binary_labels_mark_exactly_the_ink_and_overlaps_go_to_the_first_digit(rng):
    images, labels = pool(rng)
    g = MovingMNIST(images, labels, seq_len=2, binarize=True)
    digits, positions = numpy.array([[1, 2]]), numpy.full((2, 1, 2, 2), 10)
    positions[:, :, 1] = 20  # the windows overlap on rows and columns 20..37
    frames, pixel_labels = g.render(digits, positions, labels=True)
    assert ((pixel_labels != BACKGROUND) == (frames[:, :, 0] == 1)).all()
    ink = [g.images[d] > 0 for d in digits[0]]
    both = ink[0][10:, 10:] & ink[1][:18, :18]  # pixels 20..37 of the frame, inked by both
    assert both.any()
    overlap = pixel_labels[:, 0, 20:38, 20:38]
    first, second = labels[digits[0]]
    assert (overlap[:, both] == first).all()  # ties (1 and 1) go to the digit drawn first
    assert (overlap[:, ink[1][:18, :18] & ~ink[0][10:, 10:]] == second).all()


def test_binarize_is_recorded_in_the_cached_splits(tmp_path):
    grey = mm.make_splits(**SMALL, cache_dir=tmp_path)
    binary = mm.make_splits(**SMALL, cache_dir=tmp_path, binarize=True)
    assert len(os.listdir(tmp_path)) == 6  # one file per split and setting
    for path in tmp_path.iterdir():
        with numpy.load(path) as f:
            params = json.loads(str(f["params"]))
        assert isinstance(params["binarize"], bool)
    frames = binary["test"].batch(numpy.arange(3))
    assert set(numpy.unique(frames)) == {0.0, 1.0}
    assert len(numpy.unique(grey["test"].batch(numpy.arange(3)))) > 2
    numpy.testing.assert_array_equal(binary["test"].positions, grey["test"].positions)


@pytest.mark.parametrize("kwargs, images, message", [
    (dict(), numpy.full((2, 28, 28), 1.5, numpy.float32), r"\[0, 1\]"),
    (dict(), numpy.zeros((28, 28), numpy.float32), r"\(N, k, k\)"),
    (dict(frame_size=20), numpy.zeros((2, 28, 28), numpy.float32), "do not fit"),
    (dict(labels=[3, 10]), numpy.zeros((2, 28, 28), numpy.float32), "background"),
    (dict(labels=[3]), numpy.zeros((2, 28, 28), numpy.float32), r"\(2,\)"),
    (dict(step_length=-0.1), numpy.zeros((2, 28, 28), numpy.float32), "step_length"),
    (dict(step_length=(0.2, 0.1)), numpy.zeros((2, 28, 28), numpy.float32), "step_length"),
    (dict(step_length=(0.1,)), numpy.zeros((2, 28, 28), numpy.float32), "step_length"),
    (dict(seq_len=0), numpy.zeros((2, 28, 28), numpy.float32), "seq_len"),
])
def test_bad_generator_arguments(kwargs, images, message):
    with pytest.raises(ValueError, match=f"MovingMNIST.*{message}"):
        MovingMNIST(images, **kwargs)


def test_integer_images_are_a_type_error():
    with pytest.raises(TypeError, match="MovingMNIST: images must be floating point"):
        MovingMNIST(numpy.zeros((2, 28, 28), numpy.uint8))


def test_bad_render_and_sample_arguments(rng):
    images, _ = pool(rng)
    g = MovingMNIST(images, seq_len=2)
    digits, positions = g.sample(2, 0)
    with pytest.raises(ValueError, match=r"positions must lie in 0\.\.36"):
        g.render(digits, positions + 37)
    with pytest.raises(ValueError, match=r"indices must lie in 0\.\.4"):
        g.render(digits + 5, positions)
    with pytest.raises(ValueError, match=r"\(T, B, D, 2\)"):
        g.render(digits, positions[0])
    with pytest.raises(ValueError, match="need the digit labels"):
        g.render(digits, positions, labels=True)
    with pytest.raises(ValueError, match="batch_size"):
        g.sample(0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bounce_trajectories([1.5, 0.0], [0.1, 0.1], 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        bounce_trajectories([0.5, 0.5], [0.1], 3)


# ---------------------------------------------------------------- digit sources


def write_idx(path, array, magic, compress=False):
    """An IDX file: big-endian magic, big-endian dimensions, then unsigned bytes."""
    data = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data += array.astype(numpy.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, rng, compress):
    raw = rng.integers(0, 256, size=(3, 28, 28))
    digit_labels = numpy.array([7, 0, 9])
    images, labels = mm.load_idx(write_idx(tmp_path / "img", raw, 2051, compress),
                                 write_idx(tmp_path / "lab", digit_labels, 2049, compress))
    assert images.dtype == numpy.float32 and labels.dtype == numpy.int64
    numpy.testing.assert_allclose(images, raw / 255.0, rtol=1e-6)
    numpy.testing.assert_array_equal(labels, digit_labels)
    alone, none = mm.load_idx(tmp_path / "img")
    assert none is None and alone.shape == (3, 28, 28)


def test_load_mnist_finds_standard_names(tmp_path, rng):
    raw = rng.integers(0, 256, size=(2, 28, 28))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", raw, 2051, compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", numpy.array([4, 2]), 2049)
    images, labels = mm.load_mnist(tmp_path, train=False)
    numpy.testing.assert_allclose(images * 255, raw, atol=1e-4)
    numpy.testing.assert_array_equal(labels, [4, 2])
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mm.load_mnist(tmp_path, train=True)


def _corrupt(kind, tmp_path):
    """Write a malformed (images, labels) pair; return the paths to load."""
    images = write_idx(tmp_path / "img", numpy.zeros((2, 4, 4)), 2051)
    labels = write_idx(tmp_path / "lab", numpy.zeros(2), 2049)
    if kind == "magic":
        return labels, None
    if kind == "truncated":
        (tmp_path / "img").write_bytes((tmp_path / "img").read_bytes()[:-3])
    if kind == "short":
        (tmp_path / "img").write_bytes(b"\x00\x00")
    if kind == "header":
        (tmp_path / "img").write_bytes((2051).to_bytes(4, "big") + b"\x00\x00\x00\x02")
    if kind == "count":
        labels = write_idx(tmp_path / "lab", numpy.zeros(3), 2049)
    if kind == "gzip":
        (tmp_path / "img").write_bytes(gzip.compress(b"x" * 100)[:-10])
    return images, labels


@pytest.mark.parametrize("kind, message", [
    ("magic", "magic number 2049, expected 2051"),
    ("truncated", r"declares dimensions \(2, 4, 4\)"),
    ("short", "too short"),
    ("header", "inside its header"),
    ("count", "3 labels but"),
    ("gzip", "damaged gzip"),
])
def test_malformed_idx_files(tmp_path, kind, message):
    images, labels = _corrupt(kind, tmp_path)
    with pytest.raises(ValueError, match=message) as err:
        mm.load_idx(images, labels)
    assert str(tmp_path) in str(err.value)


def test_missing_idx_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        mm.load_idx(tmp_path / "nope")


def test_resize_bilinear_against_a_loop_reference(rng):
    image = rng.random((1, 3, 4))
    out = mm.resize_bilinear(image, 5, 2)
    ref = numpy.zeros((5, 2))
    for i in range(5):
        for j in range(2):
            y = min(max((i + 0.5) * 3 / 5 - 0.5, 0), 2)
            x = min(max((j + 0.5) * 4 / 2 - 0.5, 0), 3)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, 2), min(x0 + 1, 3)
            wy, wx = y - y0, x - x0
            ref[i, j] = ((1 - wy) * ((1 - wx) * image[0, y0, x0] + wx * image[0, y0, x1])
                         + wy * ((1 - wx) * image[0, y1, x0] + wx * image[0, y1, x1]))
    numpy.testing.assert_allclose(out[0], ref, rtol=1e-12)
    numpy.testing.assert_allclose(mm.resize_bilinear(numpy.full((2, 8, 8), 0.3), 20, 20), 0.3)
    numpy.testing.assert_allclose(mm.resize_bilinear(image, 3, 4), image, rtol=1e-12)


def test_embedded_digits():
    images, labels = mm.embedded_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == numpy.float32
    assert labels.dtype == numpy.int64 and set(labels) == set(range(10))
    assert images.min() == 0 and images.max() == 1
    assert not images[:, :4].any() and not images[:, :, 24:].any()  # centred 20x20 box
    train, test = mm.embedded_digits("train"), mm.embedded_digits("test")
    assert len(train[0]) + len(test[0]) == 1797 and len(test[0]) == 359
    assert set(test[1]) == set(range(10)) and set(train[1]) == set(range(10))
    numpy.testing.assert_array_equal(numpy.concatenate([train[0], test[0]]), images)
    assert not images.flags.writeable
    with pytest.raises(ValueError, match="split"):
        mm.embedded_digits("validation")


# ---------------------------------------------------------------- fixed splits and batching

SMALL = dict(n_train=6, n_val=4, n_test=3, seq_len=5)


def test_make_splits_is_cached_and_reproducible(tmp_path, monkeypatch):
    splits = mm.make_splits(**SMALL, cache_dir=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 4, "test": 3}
    assert len(os.listdir(tmp_path)) == 3
    uncached = mm.make_splits(**SMALL, cache_dir=False)
    monkeypatch.setattr(MovingMNIST, "sample", lambda *a: pytest.fail("cache not used"))
    cached = mm.make_splits(**SMALL, cache_dir=tmp_path)
    for name in mm.dataset.SPLITS:
        frames = splits[name].batch(numpy.arange(len(splits[name])))
        assert frames.shape == (5, len(splits[name]), 1, 64, 64)
        numpy.testing.assert_array_equal(frames, cached[name].batch(numpy.arange(len(splits[name]))))
        numpy.testing.assert_array_equal(uncached[name].digits, cached[name].digits)
        numpy.testing.assert_array_equal(uncached[name].positions, cached[name].positions)
    assert all(p.endswith(".npz") for p in os.listdir(tmp_path))  # no stray temp files


def test_splits_use_separate_pools_and_streams(tmp_path):
    splits = mm.make_splits(**SMALL, cache_dir=False)
    numpy.testing.assert_array_equal(splits["test"].generator.images, mm.embedded_digits("test")[0])
    numpy.testing.assert_array_equal(splits["val"].generator.images, mm.embedded_digits("train")[0])
    bigger = mm.make_splits(**dict(SMALL, n_train=8), cache_dir=False)
    numpy.testing.assert_array_equal(bigger["val"].positions, splits["val"].positions)
    other = mm.make_splits(**SMALL, seed=1, cache_dir=False)
    assert not numpy.array_equal(other["train"].positions, splits["train"].positions)


def test_iterate_batches_once_in_time_major_order():
    split = mm.make_splits(**SMALL, cache_dir=False)["train"]
    everything = split.batch(numpy.arange(6))
    batches = list(mm.iterate(split, 4))
    assert [b.shape[1] for b in batches] == [4, 2] and batches[0].dtype == numpy.float32
    numpy.testing.assert_array_equal(numpy.concatenate(batches, axis=1), everything)
    shuffled = list(mm.iterate(split, 4, shuffle=True, rng=3))
    order = numpy.random.default_rng(3).permutation(6)
    numpy.testing.assert_array_equal(numpy.concatenate(shuffled, axis=1), everything[:, order])
    batch = next(mm.iterate(split, 2, labels=True))
    assert sorted(batch) == ["frames", "labels"]
    assert batch["frames"].shape == (5, 2, 1, 64, 64) and batch["labels"].shape == (5, 2, 64, 64)
    batch = next(mm.iterate(split, 2, labels=True, flow=True))
    assert sorted(batch) == ["flow", "flow_mask", "frames", "labels"]
    assert batch["flow"].shape == (4, 2, 2, 32, 32) and batch["flow_mask"].shape == (4, 2, 1, 32, 32)
    numpy.testing.assert_array_equal(batch["frames"], everything[:, :2])
    flow_only = split.batch(numpy.arange(2), flow=True)
    assert sorted(flow_only) == ["flow", "flow_mask", "frames"]
    numpy.testing.assert_array_equal(flow_only["flow"], batch["flow"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_train=0), "n_train must be a positive integer"),
    (dict(seed=-1), "seed"),
    (dict(source="/nonexistent/mnist"), "source must be 'embedded' or a directory"),
])
def test_bad_make_splits_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mm.make_splits(**dict(SMALL, **kwargs), cache_dir=False)


def test_bad_batch_size():
    split = mm.make_splits(**SMALL, cache_dir=False)["val"]
    with pytest.raises(ValueError, match="batch_size"):
        next(mm.iterate(split, 0))
