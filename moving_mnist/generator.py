"""Moving MNIST sequences, the protocol of Srivastava et al. (2015) (SPEC §6).

Digits of size k bounce inside S x S frames (defaults: 28 in 64). A digit's position is its
top-left corner as a point of [0, 1]^2, ordered (y, x), mapped to pixels over the free range
``S - k`` (36) by ``floor(p (S - k))`` as in the original code; it stays in [0, S - k], so a
digit is never clipped. Frame 0 shows the sampled start (the original code moved the digits
once before drawing its first frame). Frames are time-major, ``(T, B, 1, S, S)`` float32,
the layout the recurrent models consume; ``frames.swapaxes(0, 1)`` gives batch-major views.
"""
import numbers

import numpy as np

BACKGROUND = 10  # per-pixel label of pixels no digit covers (digit classes are 0..9)
BINARY_THRESHOLD = 0.5  # ``binarize``: a digit pixel is ink (1) where its value exceeds this


def bounce_trajectories(start, velocity, seq_len):
    """Positions ``(seq_len, ..., 2)`` of points moving in the unit square and bouncing off its sides.

    ``start`` and ``velocity`` are ``(..., 2)`` arrays (position, and displacement per frame,
    in units of the free range). Frame 0 is ``start``; each later frame adds the velocity,
    then a coordinate that reached 0 or 1 is clamped there and its velocity component flips
    sign (the overshoot is dropped, not reflected, as in the original code).
    """
    p = np.array(start, dtype=np.float64)
    v = np.array(velocity, dtype=np.float64)
    if p.shape != v.shape or p.ndim == 0 or p.shape[-1] != 2:
        raise ValueError(f"bounce_trajectories: start and velocity must both be (..., 2), got "
                         f"{p.shape} and {v.shape}")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("bounce_trajectories: start positions must lie in [0, 1]")
    out = np.empty((seq_len,) + p.shape)
    out[0] = p
    for t in range(1, seq_len):
        p = p + v
        v = np.where((p <= 0) | (p >= 1), -v, v)
        p = np.clip(p, 0.0, 1.0)
        out[t] = p
    return out


def check_positive_int(who, name, value):
    """``value`` as an int, or a ``ValueError`` naming ``who`` and ``name``."""
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


class MovingMNIST:
    """Generator of Moving MNIST sequences from a pool of digit images.

    ``MovingMNIST(images, labels=None, seq_len=20, num_digits=2, frame_size=64, step_length=0.1,
    binarize=False)``

    * ``images``: ``(N, k, k)`` float in [0, 1] (e.g. ``load_mnist`` or ``embedded_digits``);
      ``labels``: ``(N,)`` ints in 0..9, needed only for per-pixel labels.
    * Each sequence draws ``num_digits`` digits uniformly with replacement from the pool
      (the original walked a shuffled permutation; the two agree in distribution), a start
      uniform in [0, 1]^2 and a direction uniform on the circle, ``(sin, cos)`` for (y, x).
    * ``step_length``: distance per frame in units of the free range (0.1 -> 3.6 px/frame).
      A pair ``(low, high)`` draws each digit's speed uniformly from that range instead, the
      variant the paper's text describes.
    * Digits combine by per-pixel maximum. The per-pixel label is the class of the digit
      whose intensity is largest there (ties: the digit drawn first), ``BACKGROUND`` (10)
      where every digit is 0.
    * ``binarize``: the paper's binary data (section 5.1). Each digit image of the pool
      becomes ``image > BINARY_THRESHOLD`` (0.5) as 0/1 *before* it is placed, so frames,
      targets, labels and the true motion all see the same binary digits; the frames are
      then exactly 0/1 (the per-pixel max of 0/1 images). 0.5 is the level set halfway
      up the anti-aliased stroke edges of MNIST (and of the bilinearly resized embedded
      digits), so a pixel counts as ink when it is more than half covered and the binary
      strokes keep about the width of the grey ones.

    Everything is vectorised over the batch; Python loops run over frames and digits only.
    """

    def __init__(self, images, labels=None, seq_len=20, num_digits=2, frame_size=64, step_length=0.1,
                 binarize=False):
        who = type(self).__name__
        images = np.asarray(images)
        if images.dtype.kind != "f":
            raise TypeError(f"{who}: images must be floating point in [0, 1], got {images.dtype}")
        if images.ndim != 3:
            raise ValueError(f"{who}: images must be (N, k, k), got shape {images.shape}")
        if len(images) == 0 or images.min() < 0 or images.max() > 1:
            raise ValueError(f"{who}: images must be a non-empty pool of values in [0, 1]")
        self.seq_len = check_positive_int(who, "seq_len", seq_len)
        self.num_digits = check_positive_int(who, "num_digits", num_digits)
        self.frame_size = check_positive_int(who, "frame_size", frame_size)
        if images.shape[1] > self.frame_size or images.shape[2] > self.frame_size:
            raise ValueError(f"{who}: digits of {images.shape[1:]} pixels do not fit in "
                             f"{self.frame_size}x{self.frame_size} frames")
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"{who}: digits must be square, got {images.shape[1:]}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
                raise ValueError(f"{who}: labels must be ({len(images)},) integers, got "
                                 f"{labels.dtype} {labels.shape}")
            if labels.min() < 0 or labels.max() >= BACKGROUND:
                raise ValueError(f"{who}: labels must lie in 0..{BACKGROUND - 1} "
                                 f"({BACKGROUND} marks the background)")
            labels = labels.astype(np.int64)
        pair = (step_length, step_length) if isinstance(step_length, numbers.Real) else tuple(step_length)
        numeric = len(pair) == 2 and all(isinstance(s, numbers.Real) for s in pair)
        if not numeric or not 0 <= pair[0] <= pair[1]:
            raise ValueError(f"{who}: step_length must be a number >= 0 or a pair low <= high, "
                             f"got {step_length!r}")
        self.binarize = bool(binarize)
        if self.binarize:
            images = images > BINARY_THRESHOLD
        self.images = images.astype(np.float32, copy=False)
        self.labels = labels
        self.speed_range = (float(pair[0]), float(pair[1]))
        self.free = self.frame_size - images.shape[1]

    def sample(self, batch_size, rng=None):
        """Random motions: ``digits (B, D)`` pool indices and ``positions (T, B, D, 2)`` pixels.

        ``rng`` is a ``numpy.random.Generator`` or a seed for one.
        """
        b = check_positive_int(type(self).__name__, "batch_size", batch_size)
        rng = np.random.default_rng(rng)
        shape = (b, self.num_digits)
        digits = rng.integers(0, len(self.images), size=shape)
        start = rng.random(shape + (2,))
        theta = rng.uniform(0, 2 * np.pi, size=shape)
        speed = rng.uniform(*self.speed_range, size=shape)
        velocity = speed[..., None] * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
        unit = bounce_trajectories(start, velocity, self.seq_len)
        return digits, np.floor(unit * self.free).astype(np.int64)

    def _check_motions(self, digits, positions):
        """``digits``, ``positions`` as arrays, checked against the pool and the free range."""
        who = type(self).__name__
        digits, positions = np.asarray(digits), np.asarray(positions)
        if digits.ndim != 2 or positions.ndim != 4 or positions.shape[1:] != digits.shape + (2,):
            raise ValueError(f"{who}: digits must be (B, D) and positions (T, B, D, 2), got "
                             f"{digits.shape} and {positions.shape}")
        if digits.size and (digits.min() < 0 or digits.max() >= len(self.images)):
            raise ValueError(f"{who}: digit indices must lie in 0..{len(self.images) - 1}")
        if positions.size and (positions.min() < 0 or positions.max() > self.free):
            raise ValueError(f"{who}: positions must lie in 0..{self.free} pixels")
        return digits, positions

    def _windows(self, corners):
        """Flat indices ``(T, B, k, k)`` into a ``(T, B, S, S)`` canvas of the k x k windows
        whose top-left pixels are ``corners (T, B, 2)``: one gather or scatter places a digit
        in every frame at once."""
        t_len, b = corners.shape[:2]
        size, offsets = self.frame_size, np.arange(self.images.shape[1])
        planes = np.arange(t_len * b).reshape(t_len, b, 1, 1) * size * size
        return (planes + (corners[:, :, 0, None, None] + offsets[:, None]) * size
                + corners[:, :, 1, None, None] + offsets)

    def render(self, digits, positions, labels=False):
        """Frames ``(T, B, 1, S, S)`` float32 of the given digits at the given pixel positions.

        ``digits (B, D)`` indexes the pool; ``positions (T, B, D, 2)`` holds top-left (y, x)
        pixels in [0, S - k]. With ``labels=True`` also returns per-pixel labels
        ``(T, B, S, S)`` int64.
        """
        digits, positions = self._check_motions(digits, positions)
        if labels and self.labels is None:
            raise ValueError(f"{type(self).__name__}: per-pixel labels need the digit labels "
                             f"(labels=...)")
        t_len, b = positions.shape[:2]
        size = self.frame_size
        # A digit's windows never overlap each other, so plain assignment is exact.
        frames = np.zeros(t_len * b * size * size, dtype=np.float32)
        pixel_labels = np.full(frames.shape, BACKGROUND, dtype=np.int64) if labels else None
        for j in range(digits.shape[1]):
            window = self._windows(positions[:, :, j])
            under = frames[window]
            digit = self.images[digits[:, j]][None]
            wins = digit > under
            frames[window] = np.where(wins, digit, under)
            if labels:
                cls = self.labels[digits[:, j]][None, :, None, None]
                pixel_labels[window] = np.where(wins, cls, pixel_labels[window])
        frames = frames.reshape(t_len, b, 1, size, size)
        return (frames, pixel_labels.reshape(t_len, b, size, size)) if labels else frames

    def motion(self, digits, positions, scale=2):
        """The true motion of frames 1..T-1, at 1/``scale`` of the frame size: ``(flow, mask)``.

        ``flow (T-1, B, 2, h, w)`` float32, h = w = S / scale, channel 0 = y, 1 = x, in pixels
        of that resolution; ``mask (T-1, B, 1, h, w)`` float32, 1 where the flow is defined.
        ``flow[t]`` is the field that warps frame t into frame t+1 in the *backward* (sampling)
        convention of ``nnlite.GridGenerator`` / ``BilinearSampler``: output pixel p of frame
        t+1 shows what frame t shows at ``p + flow[t](p)``. ``scale=2`` is the resolution of
        AE-ConvLSTM-flow's flow (the encoder's 2x2 pooling: 32x32 for 64x64 frames).

        For digit j moving by ``v = positions[t+1, j] - positions[t, j]`` (whole frame pixels)
        a pixel of frame t+1 covered by it came from ``p - v``, so its flow is ``-v / scale``
        (a shift of ``v`` frame pixels is ``v / scale`` pixels at the pooled resolution, whose
        pixel i covers frame pixels ``scale i .. scale i + scale - 1``). The rules:

        * *coverage*: a pixel of the flow's resolution is covered by digit j in frame t+1
          when any frame pixel of its ``scale x scale`` block is ink of j (the digit image
          is > 0 there), as the encoder's max pooling sees it;
        * *overlap*: a pixel covered by two or more digits in frame t+1 is masked out (their
          motions differ and the frame there shows both; no single flow is true). A pixel
          covered by one digit keeps that digit's flow even where another digit covers its
          source in frame t;
        * *bounce*: ``v`` is the displacement of the rendered positions, so a bounce frame
          carries the shortened move to the wall that the frames show;
        * *border*: a pixel whose source point ``p + flow`` leaves ``[0, h - 1] x [0, w - 1]``
          (where the bilinear sampler would read zeros) is masked out;
        * elsewhere (background, masked pixels) the flow is 0.
        """
        who = type(self).__name__
        digits, positions = self._check_motions(digits, positions)
        scale = check_positive_int(who, "scale", scale)
        size = self.frame_size
        if size % scale:
            raise ValueError(f"{who}: the frame size {size} is not a multiple of the flow's "
                             f"scale {scale}")
        h = size // scale
        later = positions[1:]
        n, b = later.shape[:2]
        velocity = (later - positions[:-1]).astype(np.float32)  # (T-1, B, D, 2) frame pixels
        covers = np.zeros((n, b, h, h), dtype=np.int64)
        flow = np.zeros((n, b, 2, h, h), dtype=np.float32)
        for j in range(digits.shape[1]):
            ink = np.zeros(n * b * size * size, dtype=bool)
            ink[self._windows(later[:, :, j])] = (self.images[digits[:, j]] > 0)[None]
            # or-ing the scale^2 strided views is ~10x faster than NumPy's .any(axis=(3, 5))
            # over these short axes
            blocks = ink.reshape(n, b, h, scale, h, scale)
            block = np.zeros((n, b, h, h), dtype=bool)
            for dy in range(scale):
                for dx in range(scale):
                    block |= blocks[:, :, :, dy, :, dx]
            covers += block
            flow += np.where(block[:, :, None], -velocity[:, :, j, :, None, None] / scale, 0)
        pixel = np.arange(h, dtype=np.float32)
        src_y, src_x = pixel[:, None] + flow[:, :, 0], pixel + flow[:, :, 1]
        inside = (src_y >= 0) & (src_y <= h - 1) & (src_x >= 0) & (src_x <= h - 1)
        mask = ((covers == 1) & inside)[:, :, None]
        return np.where(mask, flow, 0).astype(np.float32), mask.astype(np.float32)

    def generate(self, batch_size, rng=None, labels=False):
        """``render(*sample(batch_size, rng), labels)``: a fresh random batch of sequences."""
        return self.render(*self.sample(batch_size, rng), labels=labels)
