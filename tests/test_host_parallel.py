"""Work split side by side on the host's BLAS threads (``backend.host_ranges``,
``host_parallel``, ``host_rows``, ``host_all``/``host_any``); the convolution, pooling and
RMSprop splits are tested against one thread beside their modules."""
import threading

import numpy
import pytest

import nnlite as nn
from nnlite import optim


def test_host_ranges_split_the_frames_one_range_per_blas_thread():
    with nn.backend.host_threads(3):
        assert nn.backend.host_ranges(numpy, 7) == [(0, 2), (2, 4), (4, 7)]
        assert nn.backend.host_ranges(numpy, 2) == [(0, 1), (1, 2)]  # never more ranges than frames
        assert nn.backend.host_ranges(object(), 7) == [(0, 7)]      # a device namespace: one range
    with nn.backend.host_threads(1):
        assert nn.backend.host_ranges(numpy, 7) == [(0, 7)]


def test_host_parallel_runs_every_range_once_in_order_on_one_blas_thread_each():
    blas_threads = nn.backend.host_blas_threads  # NumPy's BLAS, not one loaded since (SciPy's)

    def part(lo, hi):
        return lo, hi, threading.get_ident(), blas_threads(), nn.backend.host_ranges(numpy, 4)

    with nn.backend.host_threads(3):
        ranges = nn.backend.host_ranges(numpy, 7)
        out = nn.backend.host_parallel(part, ranges)
        assert [o[:2] for o in out] == ranges
        caller = threading.get_ident()
        assert out[0][2] == caller and all(o[2] != caller for o in out[1:])  # the rest in the pool
        assert all(o[3] == 1 for o in out)                # one BLAS thread inside each part
        assert all(o[4] == [(0, 4)] for o in out)         # no nested split
        assert blas_threads() == 3                        # restored afterwards
        assert nn.backend.host_ranges(numpy, 4) == [(0, 1), (1, 2), (2, 4)]


def test_host_parallel_raises_after_every_part_has_finished():
    finished = []

    def part(lo, hi):
        if lo == 0:
            raise RuntimeError("part 0 failed")
        finished.append(lo)
        return lo

    with nn.backend.host_threads(3):
        with pytest.raises(RuntimeError, match="part 0 failed"):
            nn.backend.host_parallel(part, nn.backend.host_ranges(numpy, 6))
        assert sorted(finished) == [2, 4]
        assert nn.backend.host_parallel(lambda lo, hi: hi - lo, [(0, 5)]) == [5]


def test_host_rows_cover_the_first_axis_and_split_only_large_arrays():
    G = nn.backend.ELEMENTWISE_GRAIN
    with nn.backend.host_threads(3):
        big = numpy.zeros(3 * G)
        assert nn.backend.host_rows(lambda r: (r.start, r.stop), big) == [(0, G), (G, 2 * G), (2 * G, 3 * G)]
        assert nn.backend.host_rows(lambda r: (r.start, r.stop), numpy.zeros(2 * G - 1)) == [(0, 2 * G - 1)]
        rows = nn.backend.host_rows(lambda r: (r.start, r.stop), numpy.zeros((6, G // 2)))
        assert rows == [(0, 2), (2, 4), (4, 6)]                                    # rows of a matrix
        assert nn.backend.host_rows(lambda r: r, numpy.zeros(())) == [Ellipsis]  # 0-d: the whole


def test_host_all_and_any_look_at_every_part():
    G = nn.backend.ELEMENTWISE_GRAIN
    a = numpy.ones(3 * G)
    a[-1] = numpy.nan                                                   # only the last part sees it
    with nn.backend.host_threads(3):
        assert nn.backend.host_all(lambda r: numpy.isfinite(a[r]).all(), a) is False
        assert nn.backend.host_any(lambda r: numpy.isnan(a[r]).any(), a) is True
        a[-1] = 1
        assert nn.backend.host_all(lambda r: numpy.isfinite(a[r]).all(), a) is True
        assert nn.backend.host_any(lambda r: numpy.isnan(a[r]).any(), a) is False
    small = numpy.array([1.0, numpy.inf])
    assert not nn.backend.host_all(lambda r: numpy.isfinite(small[r]).all(), small)


def test_clipping_split_over_threads_clamps_every_part():
    G = nn.backend.ELEMENTWISE_GRAIN
    g = numpy.random.default_rng(0).uniform(-100, 100, 3 * G)
    g[[0, G, 3 * G - 1]] = [-1e9, 1e9, numpy.nan]
    expected = numpy.clip(g, -50, 50)
    with nn.backend.host_threads(3):
        assert optim.clip_gradients(g, 50) is g
    numpy.testing.assert_array_equal(g, expected)


def _split_in_child(queue):
    with nn.backend.host_threads(2):
        queue.put(nn.backend.host_parallel(lambda lo, hi: hi - lo, nn.backend.host_ranges(numpy, 6)))


def test_a_forked_child_makes_its_own_pool():
    """A process forked after the pool exists (the parent's threads are not in the child)
    still splits, with a pool of its own, rather than waiting on threads that are gone."""
    import multiprocessing
    with nn.backend.host_threads(2):
        nn.backend.host_parallel(lambda lo, hi: None, nn.backend.host_ranges(numpy, 6))  # the pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [3, 3]
