"""Fixed Moving MNIST splits (train/val/test) and batching.

A fixed set is stored as what defines it, not as frames: the digit indices ``(N, D)`` and
the pixel positions ``(T, N, D, 2)`` of every sequence (10k x 20 frames is under 2 MB,
against 819 MB of uint8 frames). Frames are rendered from them on demand, with integer
pixel arithmetic only, so a split is exactly reproducible. Each split is cached in an
``.npz`` file whose name hashes the generation parameters and the digit pool's contents:
the file pins the set (it no longer depends on NumPy's random streams) and can be shared.
"""
import hashlib
import json
import numbers
import os

import numpy as np

from nnlite.atomic import atomic_path

from .digits import embedded_digits, load_mnist
from .generator import MovingMNIST, check_positive_int

SPLITS = ("train", "val", "test")


def default_cache_dir():
    """``$NNLITE_CACHE/moving_mnist``, by default ``~/.cache/nnlite/moving_mnist``."""
    root = os.environ.get("NNLITE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "nnlite"))
    return os.path.join(root, "moving_mnist")


class SequenceSet:
    """A fixed set of sequences: ``digits (N, D)`` and ``positions (T, N, D, 2)`` over a generator's pool."""

    def __init__(self, generator, digits, positions):
        self.generator = generator
        self.digits = digits
        self.positions = positions

    def __len__(self):
        return len(self.digits)

    def batch(self, indices, labels=False, flow=False):
        """The sequences at ``indices``: frames ``(T, b, 1, S, S)`` float32, or a dict with extras.

        With neither extra, the frames array. With ``labels`` or ``flow``, a dict holding
        ``"frames"`` and what was asked: ``"labels"``, the per-pixel classes ``(T, b, S, S)``
        int64 (``MovingMNIST.render``); ``"flow"`` ``(T-1, b, 2, h, w)`` and ``"flow_mask"``
        ``(T-1, b, 1, h, w)`` float32, the true motion of frames 1..T-1 at half the frame
        size (``MovingMNIST.motion``), the batch entries the models name in their needs.
        """
        digits, positions = self.digits[indices], self.positions[:, indices]
        rendered = self.generator.render(digits, positions, labels=labels)
        if not (labels or flow):
            return rendered
        out = dict(zip(("frames", "labels"), rendered)) if labels else {"frames": rendered}
        if flow:
            out["flow"], out["flow_mask"] = self.generator.motion(digits, positions)
        return out


def iterate(split, batch_size, shuffle=False, rng=None, labels=False, flow=False):
    """Yield time-major batches ``split.batch(indices, labels, flow)`` covering ``split`` once.

    In order, or in a random order drawn from ``rng`` (a ``numpy.random.Generator`` or a
    seed) when ``shuffle``. The last batch is smaller when ``batch_size`` does not divide
    the set. Each item is the frames ``(T, b, 1, S, S)`` float32, or with ``labels`` or
    ``flow`` a dict (see ``SequenceSet.batch``).
    """
    batch_size = check_positive_int("iterate", "batch_size", batch_size)
    order = np.random.default_rng(rng).permutation(len(split)) if shuffle else np.arange(len(split))
    for first in range(0, len(order), batch_size):
        yield split.batch(order[first:first + batch_size], labels=labels, flow=flow)


def _pools(source):
    """(training pool, test pool) of ``(images, labels)``: the embedded digits or an MNIST directory."""
    if source == "embedded":
        return embedded_digits("train"), embedded_digits("test")
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        return load_mnist(source, train=True), load_mnist(source, train=False)
    raise ValueError(f"make_splits: source must be 'embedded' or a directory holding the MNIST "
                     f"IDX files, got {source!r}")


def _fingerprint(images, labels):
    h = hashlib.sha1(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def _write_atomically(path, **arrays):
    """Write an ``.npz`` to a temporary file beside ``path``, then rename it into place."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _load_cached(path, n, generator):
    with np.load(path, allow_pickle=False) as f:
        digits, positions = f["digits"].astype(np.int64), f["positions"].astype(np.int64)
    want = (generator.seq_len, n, generator.num_digits, 2)
    if digits.shape != (n, generator.num_digits) or positions.shape != want:
        raise ValueError(f"make_splits: cache file {path} holds digits {digits.shape} and positions "
                         f"{positions.shape}, expected {(n, generator.num_digits)} and {want}; "
                         f"delete it to regenerate")
    return digits, positions


def make_splits(n_train=10000, n_val=3000, n_test=3000, seq_len=20, seed=0, source="embedded",
                num_digits=2, step_length=0.1, frame_size=64, cache_dir=None, binarize=False):
    """The fixed train/val/test sets of the paper's protocol: ``{'train', 'val', 'test'}`` -> ``SequenceSet``.

    Train and val sequences draw digits from the training pool, test sequences from the test
    pool (digits unseen in training). ``source``: ``'embedded'`` (scikit-learn's digits, see
    ``embedded_digits``) or a directory with the MNIST IDX files (``load_mnist``). Each split
    has its own random stream, seeded by ``(seed, split number)``, so changing ``n_train``
    leaves val and test unchanged; a small set for quick runs is e.g. ``n_train=200,
    n_val=50, n_test=50``. ``cache_dir``: where the ``.npz`` files live (default
    ``default_cache_dir()``); ``False`` generates without caching. ``binarize``: the paper's
    binary digits (``MovingMNIST``, threshold 0.5); the cache file's parameters (and so its
    name) record it.
    """
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"make_splits: seed must be a non-negative integer, got {seed!r}")
    sizes = {name: check_positive_int("make_splits", f"n_{name}", n)
             for name, n in zip(SPLITS, (n_train, n_val, n_test))}
    train_pool, test_pool = _pools(source)
    generators = {pool_name: MovingMNIST(images, labels, seq_len=seq_len, num_digits=num_digits,
                                         frame_size=frame_size, step_length=step_length,
                                         binarize=binarize)
                  for pool_name, (images, labels) in (("train", train_pool), ("test", test_pool))}
    fingerprints = {pool_name: _fingerprint(g.images, g.labels) for pool_name, g in generators.items()}
    if cache_dir is None:
        cache_dir = default_cache_dir()
    splits = {}
    for number, name in enumerate(SPLITS):
        pool_name = "test" if name == "test" else "train"
        gen = generators[pool_name]
        params = dict(split=name, n=sizes[name], seed=int(seed), seq_len=gen.seq_len,
                      num_digits=gen.num_digits, frame_size=gen.frame_size,
                      speed_range=list(gen.speed_range), binarize=gen.binarize,
                      pool=fingerprints[pool_name])
        rng = np.random.default_rng([int(seed), number])
        splits[name] = SequenceSet(gen, *_fixed_set(gen, params, rng, cache_dir))
    return splits


def _fixed_set(generator, params, rng, cache_dir):
    """``(digits, positions)`` of one split: read from its cache file, or sampled and cached."""
    if cache_dir is False:
        return generator.sample(params["n"], rng)
    text = json.dumps(params, sort_keys=True)
    name = f"{params['split']}-{params['n']}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz"
    path = os.path.join(os.fspath(cache_dir), name)
    if os.path.exists(path):
        return _load_cached(path, params["n"], generator)
    digits, positions = generator.sample(params["n"], rng)
    _write_atomically(path, digits=digits.astype(np.int32), positions=positions.astype(np.int16),
                      params=np.array(text))
    return digits, positions
