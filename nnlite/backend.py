"""Array namespaces: NumPy on the CPU, CuPy on a CUDA GPU.

Every module asks its input for the namespace (``xp = get_xp(x)``) and writes its
math once against ``xp``. This file is the only place that imports NumPy or CuPy
by name; the few operations whose spelling differs between the two libraries
(moving arrays between devices, kernel fusion) live here.

CuPy is optional: ``import nnlite`` works without it, and ``cupy`` is ``None``.

**The device namespace is one hook.** ``cupy`` is whatever module plays CuPy: the
real one by default, or the module named by the environment variable
``NNLITE_CUPY`` (the test suite's strict NumPy-backed stand-in,
``NNLITE_CUPY=tests.strict_cupy``, so that the GPU code path runs on a CPU), or one
set with ``use_cupy(module)``. Everything here (``get_xp``, ``to_device``,
``to_numpy``, ``gpu_available``...) reads that one name, so the rest of the library
never asks which it is.
"""
import contextlib
import ctypes
from concurrent.futures import ThreadPoolExecutor, wait
import functools
import importlib
import json
import os
import threading

import numpy


def _import_device_module(name):
    try:  # CuPy is an optional extra (``pip install nnlite[gpu]``).
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the machine
        return None


#: the module that plays CuPy, or None (see the module docstring)
cupy = _import_device_module(os.environ.get("NNLITE_CUPY") or "cupy")


def use_cupy(module):
    """Make ``module`` (CuPy, a stand-in with CuPy's API, or None) the device namespace."""
    global cupy
    cupy = module
    _fused.clear()

#: The namespace of host arrays, for code that works on the CPU by design whatever the
#: modules' backend: the Jacobian tester's float64 matrices, serialization's buffers.
host_xp = numpy

_rng = numpy.random.default_rng(0)


def manualSeed(seed):
    """Seed the generator that initialises parameters (Torch's ``torch.manualSeed``)."""
    global _rng
    _rng = numpy.random.default_rng(seed)


def host_rng():
    """The NumPy generator behind parameter initialisation (always on the host)."""
    return _rng


def getRNGState():
    """The state of ``host_rng()`` as a JSON string (for checkpoints; Torch's ``getRNGState``)."""
    return json.dumps(_rng.bit_generator.state)


def setRNGState(state):
    """Restore a state returned by ``getRNGState``."""
    _rng.bit_generator.state = json.loads(state)


def gpu_available():
    """True when CuPy is importable and sees at least one CUDA device."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy without a driver raises CUDARuntimeError
        return False


def is_array(a):
    """True for a NumPy or CuPy ndarray."""
    return isinstance(a, numpy.ndarray) or (cupy is not None and isinstance(a, cupy.ndarray))


def is_cupy(a):
    return cupy is not None and isinstance(a, cupy.ndarray)


def get_xp(*arrays):
    """The namespace (``numpy`` or ``cupy``) of the given arrays.

    Nested lists (Torch tables) are searched. Mixing NumPy and CuPy arrays in one
    call is an error: silently copying between devices would hide a slow path.
    """
    kinds = set()
    stack = list(arrays)
    while stack:
        a = stack.pop()
        if isinstance(a, (list, tuple)):
            stack.extend(a)
        elif is_cupy(a):
            kinds.add("cupy")
        elif isinstance(a, numpy.ndarray):
            kinds.add("numpy")
    if len(kinds) > 1:
        raise TypeError("nnlite: NumPy and CuPy arrays mixed in one call; move everything "
                        "to one device with module.cuda()/.cpu() and nnlite.to_device()")
    return cupy if kinds == {"cupy"} else numpy


def to_numpy(a):
    """A host (NumPy) copy of a NumPy or CuPy array; other values pass through."""
    if is_cupy(a):
        return cupy.asnumpy(a)
    return a


def to_device(a, device):
    """Move an array to ``'cpu'`` (NumPy) or ``'cuda'`` (CuPy); lists are mapped."""
    if isinstance(a, (list, tuple)):
        return type(a)(to_device(v, device) for v in a)
    if device == "cpu":
        return to_numpy(a)
    if device == "cuda":
        if cupy is None:
            raise RuntimeError("nnlite: device 'cuda' needs CuPy (pip install nnlite[gpu])")
        return cupy.asarray(a)
    raise ValueError(f"nnlite: unknown device {device!r}; expected 'cpu' or 'cuda'")


def scatter_add(target, indices, values):
    """``target[indices] += values`` where repeated indices accumulate (unbuffered):
    ``xp.add.at``, one scatter kernel with atomic adds on CuPy (``cupyx.scatter_add``
    is deprecated since CuPy 13.6)."""
    get_xp(target).add.at(target, indices, values)


_fused = {}


def fuse(fn):
    """``fn(xp, *args)`` as one kernel: ``cupy.fuse`` on the device, the plain function
    on NumPy (same arithmetic, so the NumPy tests check it).

    ``fn`` must be elementwise (ufuncs, operators, Python scalars) and return an array
    or a tuple of arrays; it reads its namespace from its first argument because inside
    ``cupy.fuse`` the arrays are symbolic and ``get_xp`` cannot tell. Returns
    ``call(*args)``, which picks the namespace from the arrays given.
    """
    def call(*args):
        xp = get_xp(*args)
        f = _fused.get((fn, xp))
        if f is None:
            def bound(*a):
                return fn(xp, *a)
            bound.__name__ = fn.__name__
            f = _fused[(fn, xp)] = bound if xp is numpy else xp.fuse(bound)
        return f(*args)
    call.__name__, call.__doc__ = fn.__name__, fn.__doc__
    return call


def data_key(a):
    """Identity of the memory an array views: equal keys mean the same elements."""
    ptr = a.data.ptr if is_cupy(a) else a.__array_interface__["data"][0]
    return (ptr, a.shape, a.strides, a.dtype.str)


def new_parameter(*shape):
    """A zeroed float32 host array: where every parameter and gradient starts (as in Torch)."""
    return numpy.zeros(shape, dtype=numpy.float32)


_scratch = threading.local()
#: every thread's scratch store, so that ``free_scratch`` reaches the host pool's threads too
_scratch_stores = []
_scratch_lock = threading.Lock()


def scratch(xp, n, dtype):
    """A flat work array of ``n`` elements, reused from call to call (Torch's ``finput``
    buffers of SpatialConvolutionMM, shared as cunn shares its columns buffer).

    One buffer is kept per thread, array namespace, device and dtype, and grows to the
    largest ``n`` asked for; the caller gets a prefix view and must be done with it
    before the next ``scratch`` call. Per thread, so that the frames ``host_parallel``
    runs side by side each have their own. Why reuse: a fresh large NumPy array is fresh
    pages from the kernel, and zeroing those cost a quarter of the paper's training step
    (``benchmarks/RESULTS.md``). ``free_scratch()`` gives the memory back.
    """
    device = xp.cuda.Device().id if xp is cupy else None
    key = (xp.__name__, device, numpy.dtype(dtype).str)
    store = getattr(_scratch, "arrays", None)
    if store is None:
        store = _scratch.arrays = {}
        with _scratch_lock:
            _scratch_stores.append(store)
    a = store.get(key)
    if a is None or a.size < n:
        store.pop(key, None)  # free the old buffer before allocating the larger one
        a = store[key] = xp.empty(n, dtype=dtype)
    return a[:n]


def free_scratch():
    """Drop every thread's ``scratch`` buffers; call it between steps, when no
    convolution is running."""
    with _scratch_lock:
        for store in _scratch_stores:
            store.clear()


#: glibc's ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@functools.lru_cache(maxsize=None)
def keep_freed_host_memory(keep_bytes=1 << 30):
    """Have the C allocator keep freed host memory for reuse rather than give it back to
    the kernel; returns whether it took effect (False where the C library is not glibc).

    Why: NumPy takes every array from ``malloc``. glibc serves blocks of 32 MiB and more
    with ``mmap`` and unmaps them when freed, so the large arrays a training step creates
    and drops every step (AE-ConvLSTM's input-to-gates maps over all frames and their
    gradients, 170 MB each) come back as fresh pages, which the kernel zeroes on first
    touch: 14,000 page faults and 0.86 s of system time in a 12.7 s step
    (``benchmarks/RESULTS.md``, fifth round). With mmap off (``M_MMAP_MAX = 0``) large
    blocks come from the heap, and with ``M_TRIM_THRESHOLD = keep_bytes`` up to that
    much freed memory stays there for the next step. The process's memory high-water
    mark is unchanged; what is kept is not returned to the system until exit. Called
    once per process by the ``Trainer``; a later call is a no-op.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, int(keep_bytes)))


def host_threads(n=None):
    """A context in which the host's BLAS (and any OpenMP pool) runs ``n`` threads; with
    ``n`` None, the library's own choice (OpenBLAS: one per core) is left alone. It acts
    on the libraries loaded when it is called (NumPy's BLAS among them).

    ``train.py --threads`` and ``benchmarks/bench_step.py --threads`` both go through
    here, so a timed step and a training run use the same setting. It is set through
    threadpoolctl, which finds the BLAS that NumPy loaded; how long OpenBLAS's idle workers
    spin before they sleep is read from ``OPENBLAS_THREAD_TIMEOUT`` when the library
    loads and cannot be changed afterwards (``benchmarks/RESULTS.md``, third round).
    Like threadpoolctl's ``threadpool_limits``, the limit holds from the call on, and
    leaving a ``with`` block restores the previous one. The same number also sets how many
    parts ``host_parallel`` splits a convolution's frames into, so ``--threads 1`` runs
    everything on one core."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n)


@functools.lru_cache(maxsize=None)
def _host_blas():
    """threadpoolctl's controller of the BLAS libraries loaded now (NumPy's among them),
    made once: finding them scans the process's libraries (a few milliseconds)."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController().select(user_api="blas")


#: The fewest elements an elementwise pass hands to a thread of its own (``host_ranges``'
#: ``grain``): handing over costs some tens of microseconds, the time of a pass over a few
#: tens of thousands of elements.
ELEMENTWISE_GRAIN = 1 << 16


def host_blas_threads():
    """The threads of the host BLAS that nnlite steers: those found loaded when it was first
    needed, NumPy's among them (a BLAS that another package loads later, SciPy's own for
    one, keeps its own setting; nnlite never calls it)."""
    return max((lib.num_threads for lib in _host_blas().lib_controllers), default=1)


_parallel = threading.local()
_pool, _pool_size = None, 0
_pool_lock = threading.Lock()


def _forget_pool():
    """In a forked child: the parent's pool threads do not exist there, so make a new pool."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def host_ranges(xp, n, grain=1):
    """Split ``n`` items (frames, or rows of an elementwise update) into contiguous
    ``(lo, hi)`` ranges for ``host_parallel``: one per host BLAS thread (``host_threads``),
    each of at least ``grain`` items. A single range ``[(0, n)]`` on a device, at one thread,
    and inside a range that ``host_parallel`` is already running (no nested splits).
    ``grain`` keeps small elementwise work in one thread (``ELEMENTWISE_GRAIN``)."""
    if xp is not numpy or getattr(_parallel, "inside", False):
        return [(0, n)]
    k = min(n // grain, host_blas_threads())
    if k < 2:
        return [(0, n)]
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def _run_inside(part, lo, hi):
    _parallel.inside = True
    try:
        return part(lo, hi)
    finally:
        _parallel.inside = False


def host_parallel(part, ranges):
    """``[part(lo, hi) for (lo, hi) in ranges]``, the ranges run side by side on the host,
    each with a one-thread BLAS: the first in the calling thread, the others in a pool kept
    for the process. One range runs as a plain call.

    Why: Torch7's SpatialConvolutionMM runs the frames of a batch in parallel (an OpenMP
    loop over frames, each with its own columns buffer) rather than one large GEMM on
    several BLAS threads. NumPy releases the GIL inside its copies, reductions and BLAS
    calls, so threads do the same here: the im2col copies, col2im sums and reductions,
    which NumPy runs on one core, now run on all of them, and each GEMM runs on one core
    without OpenBLAS's hand-offs between its threads (``benchmarks/RESULTS.md``, eighth
    round). The BLAS thread count is set once around the whole run (OpenBLAS's count is
    global to the process) and restored afterwards; an exception in any part is raised
    after every part has finished."""
    if len(ranges) == 1:
        return [part(*ranges[0])]
    global _pool, _pool_size
    with _pool_lock:
        if _pool_size < len(ranges) - 1:  # more threads than before: a larger pool
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool_size = len(ranges) - 1
            _pool = ThreadPoolExecutor(_pool_size, thread_name_prefix="nnlite-host")
        pool = _pool
    with _host_blas().limit(limits=1):
        futures = [pool.submit(_run_inside, part, lo, hi) for lo, hi in ranges[1:]]
        try:
            first = _run_inside(part, *ranges[0])
        finally:
            wait(futures)
    return [first] + [f.result() for f in futures]


def host_rows(part, a):
    """``[part(rows) for rows in ...]`` over contiguous slices ``rows`` of ``a``'s first axis
    that together cover it (``Ellipsis`` for a 0-d ``a``), run side by side on the host
    (``host_parallel``) when ``a`` holds at least ``ELEMENTWISE_GRAIN`` elements per thread:
    for the passes over a whole parameter vector (the optimizer's update, clipping, the step's
    finiteness checks), which only move memory and which NumPy runs on one core. On a
    device, or for a small ``a``, one call over all of ``a``."""
    n = a.shape[0] if a.ndim else 1
    ranges = host_ranges(get_xp(a), n, -(-ELEMENTWISE_GRAIN * n // max(1, a.size)))
    return host_parallel(lambda lo, hi: part(slice(lo, hi) if a.ndim else Ellipsis), ranges)


def host_all(test, a):
    """Whether ``test(rows)`` (a 0-d boolean array, for a slice ``rows`` of ``a``'s first axis)
    holds for every part of ``host_rows``: on a device the device array itself (no
    transfer), on the host a bool."""
    return _host_combine(all, test, a)


def host_any(test, a):
    """Whether ``test(rows)`` holds for any part of ``host_rows`` (as ``host_all``)."""
    return _host_combine(any, test, a)


def _host_combine(combine, test, a):
    parts = host_rows(test, a)
    return parts[0] if len(parts) == 1 else combine(bool(p) for p in parts)
