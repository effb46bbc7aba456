"""Moving MNIST (Srivastava et al. 2015), the data of the nnlite experiments (SPEC §6).

Host-side NumPy code: ``MovingMNIST`` generates bouncing-digit sequences on the fly,
``make_splits`` builds the fixed, cached train/val/test sets and ``iterate`` batches them
time-major, ``(T, B, 1, 64, 64)`` float32 in [0, 1]. Digits come from real MNIST IDX files
(``load_mnist``, ``load_idx``) or, with no download, from scikit-learn's handwritten digits
(``embedded_digits``).
"""
from .dataset import SequenceSet, default_cache_dir, iterate, make_splits
from .digits import embedded_digits, load_idx, load_mnist, resize_bilinear
from .generator import BACKGROUND, MovingMNIST, bounce_trajectories
