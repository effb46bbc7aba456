"""Digit sources: real MNIST from IDX files, or the handwritten digits shipped with scikit-learn.

Both return ``(images, labels)``: images float32 ``(N, H, W)`` in [0, 1] (28x28 for MNIST
and for the embedded set), labels int64 ``(N,)``.
"""
import functools
import gzip
import os

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)

_MNIST_NAMES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# The embedded set: scikit-learn's copy of the UCI optdigits test part (1,797 digits by 13
# writers). Each 8x8 image counts the ink of a 4x4 block of a size-normalised 32x32 bitmap
# (0..16), so the digit fills its box; MNIST fits its digits in a 20x20 box inside 28x28.
_UCI_MAX = 16.0
_BOX = 20
_SIZE = 28
# The last fifth (359 digits) is the test pool. scikit-learn gives no writer ids; a contiguous
# cut rather than an interleaved one keeps writers apart as far as the file keeps them in
# collection order. Both pools hold every class (141-146 and 33-37 digits per class).
_TEST_FRACTION = 5


def _read_idx(path, magic):
    """The array stored in one IDX file (gzip or raw), checked against ``magic``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_idx: {path} does not exist or is not a file")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # gzip magic: decide by content, not by the file name
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"load_idx: {path} is a damaged gzip file ({e})") from None
    if len(data) < 4:
        raise ValueError(f"load_idx: {path} is too short for an IDX header ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(f"load_idx: {path} has magic number {found}, expected {magic} "
                         f"({'images' if magic == IMAGES_MAGIC else 'labels'} IDX file)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"load_idx: {path} ends inside its header ({len(data)} of {header} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(f"load_idx: {path} declares dimensions {dims} ({expected} bytes with the "
                         f"header) but holds {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_idx(images_path, labels_path=None):
    """MNIST-format digits: ``(images float32 (N, rows, cols) in [0, 1], labels int64 (N,))``.

    Files may be gzip-compressed or raw (told apart by their first bytes). The magic numbers
    (2051 images, 2049 labels), the declared dimensions against the file size, and the two
    counts against each other are checked; problems raise ``FileNotFoundError`` or
    ``ValueError`` naming the file. Without ``labels_path`` the labels are ``None``.
    """
    images = _read_idx(images_path, IMAGES_MAGIC).astype(np.float32) / 255.0
    if labels_path is None:
        return images, None
    labels = _read_idx(labels_path, LABELS_MAGIC).astype(np.int64)
    if len(labels) != len(images):
        raise ValueError(f"load_idx: {os.fspath(labels_path)} holds {len(labels)} labels but "
                         f"{os.fspath(images_path)} holds {len(images)} images")
    return images, labels


def load_mnist(directory, train=True):
    """The MNIST training (60k) or test (10k) digits from the standard IDX files in ``directory``.

    Looks for ``train-images-idx3-ubyte`` / ``t10k-images-idx3-ubyte`` and the matching
    label files, each raw or with a ``.gz`` suffix.
    """
    paths = []
    for name in _MNIST_NAMES[bool(train)]:
        candidates = [os.path.join(os.fspath(directory), name + ext) for ext in ("", ".gz")]
        found = [p for p in candidates if os.path.isfile(p)]
        if not found:
            raise FileNotFoundError(f"load_mnist: none of {candidates} exists")
        paths.append(found[0])
    return load_idx(*paths)


def _interpolation_matrix(n_out, n_in):
    """``M (n_out, n_in)`` with ``out = M @ in`` the linear interpolation at pixel centres.

    Output pixel i samples the input at ``(i + 0.5) n_in / n_out - 0.5`` (the half-pixel
    convention of OpenCV/PIL), clamped to the border pixels.
    """
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1 - w)  # lo == hi at the clamped border: both weights must add
    np.add.at(m, (rows, hi), w)
    return m


def resize_bilinear(images, height, width):
    """Bilinear resize of ``(N, h, w)`` images to ``(N, height, width)``, as two matrix products."""
    images = np.asarray(images)
    rows = _interpolation_matrix(height, images.shape[1])
    cols = _interpolation_matrix(width, images.shape[2])
    return np.einsum("ij,njk,lk->nil", rows, images, cols)


@functools.lru_cache(maxsize=1)
def _embedded_all():
    from sklearn.datasets import load_digits  # imported here: a second or so, only when used

    digits = load_digits()
    box = resize_bilinear(digits.images / _UCI_MAX, _BOX, _BOX)
    pad = (_SIZE - _BOX) // 2
    images = np.zeros((len(box), _SIZE, _SIZE), dtype=np.float32)
    images[:, pad:pad + _BOX, pad:pad + _BOX] = np.clip(box, 0, 1)
    labels = digits.target.astype(np.int64)
    images.flags.writeable = False  # cached and shared between callers
    labels.flags.writeable = False
    return images, labels


def embedded_digits(split="all"):
    """Real handwritten digits with no download: scikit-learn's 8x8 UCI digits as 28x28.

    Each 8x8 image (ink counts 0..16) is scaled to [0, 1], resized bilinearly to 20x20 and
    centred in a 28x28 zero frame, like MNIST's 20x20 digit box (MNIST centres by centre of
    mass; here the box is centred). ``split``: ``'train'`` (the first 1,438 digits),
    ``'test'`` (the last 359, unseen in training) or ``'all'`` (1,797). The arrays are
    read-only views of a per-process cache.
    """
    images, labels = _embedded_all()
    cut = len(labels) - len(labels) // _TEST_FRACTION
    parts = {"all": slice(None), "train": slice(None, cut), "test": slice(cut, None)}
    if split not in parts:
        raise ValueError(f"embedded_digits: split must be one of {sorted(parts)}, got {split!r}")
    return images[parts[split]], labels[parts[split]]
