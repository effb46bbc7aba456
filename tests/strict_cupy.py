"""A strict stand-in for CuPy, built on NumPy: the GPU code path, checked on a CPU.

``NNLITE_XP=strict-cupy pytest`` (or ``pytest --xp strict-cupy``) makes this module
the ``cupy`` of ``nnlite.backend``, so every test parametrised over ``xp`` runs its
CuPy half here; ``NNLITE_CUPY=tests.strict_cupy`` does the same for a script
(``train.py``, ``benchmarks/bench_step.py``) started from the repository root.

Where it behaves like CuPy, and fails where CuPy would:

* an ``ndarray`` refuses implicit conversion to NumPy (``__array__`` raises
  TypeError, as ``cupy.ndarray`` does) and a NumPy array as an operand of device math
  is a TypeError; host data reaches the device only through ``asarray``/``array``
  (a copy) and leaves it through ``.get()``/``asnumpy`` (a copy): host and device
  never share memory;
* reductions and scalar indexing return 0-d device arrays, not Python numbers;
* only the names in ``cupy_api.json`` exist (a snapshot of CuPy 14.2, checked
  against the real CuPy by ``test_strict_cupy.py`` wherever ``import cupy`` works),
  and keyword arguments are checked against the snapshot's signatures;
* ``fuse`` accepts elementwise work only, and counts as one kernel.

What it counts, per call site (the first frame outside this file, ``path:line``):

* ``launch``  kernels other than GEMMs: one per elementwise operation, reduction,
  copy, fill, gather or scatter (a view costs nothing, ``empty`` costs nothing);
* ``gemm`` and ``flop``: matrix products and their multiply-adds times 2;
* ``sync``    device-to-host transfers that block the host: ``float()``, ``int()``,
  ``bool()``, ``.item()``, ``.get()``, ``asnumpy``, printing, boolean-mask indexing
  and ``bincount`` (which reads the maximum to size its output);
* ``h2d``     host-to-device copies (``asarray`` of host data, host data written
  into a device array, host index arrays);
* ``float64`` float64 arrays created;

and the device bytes live and their peak (``live_bytes``, ``peak_bytes``): an
allocation is counted until the last array viewing it is garbage.

    from tests import strict_cupy
    with strict_cupy.counting() as c:
        trainer.step(frames)
    c.totals()["sync"], c.by_site("launch"), c.peak_bytes
"""
import builtins as _builtins
import collections
import contextlib
import json
import operator
import os
import sys
import types
import weakref

import numpy as _np

_HERE = os.path.abspath(__file__)
_ROOT = os.path.dirname(os.path.dirname(_HERE))
SNAPSHOT = os.path.join(os.path.dirname(_HERE), "cupy_api.json")

__version__ = "14.2.0"  # the CuPy release the snapshot was taken from

with open(SNAPSHOT) as _f:
    _API = json.load(_f)["names"]


# ----------------------------------------------------------------------------- counting
class Counts:
    """Counters of one ``counting()`` block: ``kind -> Counter(site -> n)``, device bytes."""

    KINDS = ("launch", "gemm", "flop", "sync", "h2d", "float64")

    def __init__(self):
        self.sites = {k: collections.Counter() for k in self.KINDS}
        self.peak_bytes = _MEMORY["live"]
        self.start_bytes = _MEMORY["live"]

    def totals(self):
        """``kind -> total`` over all call sites."""
        return {k: _builtins.sum(c.values()) for k, c in self.sites.items()}

    def by_site(self, kind):
        """``[(site, n), ...]`` for one kind, the most first."""
        return self.sites[kind].most_common()

    def report(self, top=8):
        """A few lines: the totals, then the busiest call sites of each non-zero kind."""
        t = self.totals()
        lines = ["  ".join(f"{k} {t[k]:,}" for k in self.KINDS) + f"  peak_bytes {self.peak_bytes:,}"]
        for k in ("launch", "sync", "h2d", "float64"):
            for site, n in self.by_site(k)[:top]:
                lines.append(f"  {k:8s} {n:6d}  {site}")
        return "\n".join(lines)


_MEMORY = {"live": 0}
_ACTIVE = []          # the Counts of the enclosing counting() blocks
_FUSING = [0]         # > 0 while a fused function runs (its inner work is one kernel)
_SITE_CACHE = {}


def _site():
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename == _HERE:
        f = f.f_back
    if f is None:
        return "?"
    path = f.f_code.co_filename
    rel = _SITE_CACHE.get(path)
    if rel is None:
        rel = _SITE_CACHE[path] = os.path.relpath(path, _ROOT) if path.startswith(_ROOT) else path
    return f"{rel}:{f.f_lineno}"


def _count(kind, n=1):
    if _ACTIVE and not _FUSING[0]:
        site = _site()
        for c in _ACTIVE:
            c.sites[kind][site] += n


@contextlib.contextmanager
def counting():
    """Count what the block does on the stand-in device; yields a ``Counts``."""
    c = Counts()
    _ACTIVE.append(c)
    try:
        yield c
    finally:
        _ACTIVE.remove(c)


_GEMM_ZEROS = [False]


@contextlib.contextmanager
def gemms_as_zeros():
    """Inside the block matrix products are counted but not computed: they return zeros
    of the right shape and dtype. For the budget tests, whose counts do not depend on
    the numbers, so that a full-size training step costs seconds, not minutes."""
    _GEMM_ZEROS[0] = True
    try:
        yield
    finally:
        _GEMM_ZEROS[0] = False


def live_bytes():
    return _MEMORY["live"]


_TRACKED = {}  # id of a NumPy array owning device memory -> a weak reference with the callback
_ROOTS = {}    # id of such an owner -> a weak reference to the device array that owns it


def _owner(a):
    b = a.base
    while b is not None:
        a = b
        b = getattr(a, "base", None)
    return a


def _track(a):
    """Register the memory under NumPy array ``a`` as a device allocation if it is new;
    True when it was (the operation that made ``a`` wrote fresh memory)."""
    if _FUSING[0]:
        return False
    owner = a if a.base is None else _owner(a)
    if not isinstance(owner, _np.ndarray):  # a view of a NumPy scalar or buffer: track the array
        owner = a
    key = id(owner)
    if key in _TRACKED:
        return False
    nbytes = int(getattr(owner, "nbytes", a.nbytes))

    def untrack(_, key=key, nbytes=nbytes):
        del _TRACKED[key]
        _ROOTS.pop(key, None)
        _MEMORY["live"] -= nbytes
    _TRACKED[key] = weakref.ref(owner, untrack)
    _MEMORY["live"] += nbytes
    for c in _ACTIVE:
        c.peak_bytes = _builtins.max(c.peak_bytes, _MEMORY["live"])
    if a.dtype == _np.float64:
        _count("float64")
    return True


# ------------------------------------------------------------------------ conversions
def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _dev(x):
    """An operand of device math as the NumPy array (or scalar) behind it."""
    t = type(x)
    if t is ndarray:
        return x._a
    if t is float or t is int or x is None:
        return x
    if isinstance(x, _np.ndarray):
        raise _unsupported(x)
    if t is list or t is tuple:
        return t([v._a if type(v) is ndarray else _dev(v) for v in x])
    if isinstance(x, dict):
        return {k: _dev(v) for k, v in x.items()}
    return x


def _wrap(r, fresh_launch=True):
    """NumPy result -> device array; counts a launch when the result is new memory."""
    if type(r) is _np.ndarray:  # the common case first
        if _track(r) and fresh_launch:
            _count("launch")
        return ndarray._of(r)
    if isinstance(r, tuple):
        return tuple(_wrap(v, fresh_launch) for v in r)
    if isinstance(r, list):
        return [_wrap(v, fresh_launch) for v in r]
    if isinstance(r, _np.generic):
        r = _np.asarray(r)
    if not isinstance(r, _np.ndarray):
        return r
    if _track(r) and fresh_launch:
        _count("launch")
    return ndarray._of(r)


def _host_index(k):
    if isinstance(k, ndarray):
        if k.dtype == _np.bool_:
            _count("sync")  # the number of selected elements sizes the result
        return k._a, k.dtype != _np.bool_ or k.ndim > 0
    if isinstance(k, (_np.ndarray, list)):
        _count("h2d")
        return _np.asarray(k), True
    return k, False


def _key(key):
    """A device index as a NumPy index; whether it is advanced (a gather, not a view)."""
    parts = key if isinstance(key, tuple) else (key,)
    out, advanced = [], False
    for k in parts:
        k, adv = _host_index(k)
        out.append(k)
        advanced |= adv
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced


_SIGNATURES = {}


def _signature(name):
    """(most positional arguments or None, accepted keywords or None) from the snapshot's
    signature of ``name`` (``/p`` positional-only, ``=p`` keyword-only, ``*p``, ``**p``)."""
    spec = _API.get(name, "")
    if not spec.startswith("function("):
        return None, None
    params = [p for p in spec[len("function("):-1].split(", ") if p]
    positional = keywords = None
    if not _builtins.any(p.startswith("*") and not p.startswith("**") for p in params):
        positional = len([p for p in params if p[0] not in "=*"]) - name.startswith("ndarray.")
    if not _builtins.any(p.startswith("**") for p in params):
        keywords = {p.lstrip("=") for p in params if p[0] not in "/*"}
    return positional, keywords


def _check_args(name, args, kwargs):
    """Positional count and keywords checked against the snapshot's signature of ``name``."""
    sig = _SIGNATURES.get(name)
    if sig is None:
        sig = _SIGNATURES[name] = _signature(name)
    positional, keywords = sig
    if positional is not None and len(args) > positional:
        raise TypeError(f"{name}() takes at most {positional} positional arguments ({len(args)} given)")
    if keywords is not None and kwargs and not keywords.issuperset(kwargs):
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(set(kwargs) - keywords)}")


def _no_fuse(name):
    if _FUSING[0]:
        raise TypeError(f"cupy.fuse: {name} is not an elementwise operation")


# ---------------------------------------------------------------------------- ndarray
class _Data:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


class ndarray:
    """A device array: a NumPy array the host may not read without a counted transfer."""
    __slots__ = ("_a", "_base", "__weakref__")
    __module__ = "cupy"         # as cupy.ndarray: error messages name the library "cupy"
    __array_ufunc__ = None      # NumPy operators hand over to ours, which refuse host arrays
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("strict_cupy.ndarray: memptr and strides are not imitated")
        self._a = _np.empty(shape, dtype=dtype, order=order)
        self._base = None
        _track(self._a)
        _ROOTS[id(self._a)] = weakref.ref(self)

    @classmethod
    def _of(cls, a):
        """The device array over NumPy array ``a``; a view's ``base`` is the device array
        that owns the memory (the same object every time, as CuPy's)."""
        obj = object.__new__(cls)
        obj._a = a
        owner = a if a.base is None else _owner(a)
        key = id(owner if isinstance(owner, _np.ndarray) else a)
        ref = _ROOTS.get(key)
        obj._base = ref() if ref is not None else None
        if obj._base is None:
            _ROOTS[key] = weakref.ref(obj)
        return obj

    # --- host transfers (each one a counted sync)
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None, blocking=True):
        _no_fuse("get")
        _count("sync")
        return _np.array(self._a, order=order)

    def item(self):
        _count("sync")
        return self._a.item()

    def tolist(self):
        _count("sync")
        return self._a.tolist()

    def _scalar(self, kind):
        _no_fuse(kind.__name__)
        if self.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars ({kind.__name__})")
        _count("sync")
        return kind(self._a.reshape(()).item())

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(bool)

    def __index__(self):
        if self.ndim or self.dtype.kind not in "iu":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return self._scalar(int)

    def __complex__(self):
        return self._scalar(complex)

    def __repr__(self):
        _count("sync")
        return repr(self._a).replace("array(", "array(", 1)

    def __str__(self):
        _count("sync")
        return str(self._a)

    def __format__(self, spec):
        _count("sync")
        return format(self._a.item() if self.ndim == 0 else self._a, spec)

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    data = property(lambda self: _Data(self._a.__array_interface__["data"][0]))
    flags = property(lambda self: types.SimpleNamespace(
        c_contiguous=self._a.flags.c_contiguous, f_contiguous=self._a.flags.f_contiguous,
        owndata=self._a.base is None))
    device = property(lambda self: cuda.Device(0))
    base = property(lambda self: self._base)

    @property
    def T(self):
        return ndarray._of(self._a.T)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        raise TypeError("strict_cupy.ndarray: pickling would copy to the host unseen; use .get()")

    # --- views and copies
    def _method(self, name, *args, **kwargs):
        _no_fuse(name)
        _check_args("ndarray." + name, args, kwargs)
        return _wrap(getattr(self._a, name)(*_dev(args), **_dev(kwargs)))

    def reshape(self, *shape, order="C"):
        return self._method("reshape", *shape, order=order)

    def transpose(self, *axes):
        return self._method("transpose", *axes)

    def swapaxes(self, a, b):
        return self._method("swapaxes", a, b)

    def squeeze(self, axis=None):
        return self._method("squeeze", axis)

    def ravel(self, order="C"):
        return self._method("ravel", order)

    def view(self, dtype=None):
        return self._method("view", dtype)

    def copy(self, order="C"):
        _no_fuse("copy")
        r = self._a.copy(order=order)
        _track(r)
        _count("launch")
        return ndarray._of(r)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        _no_fuse("astype")
        if not copy and _np.dtype(dtype) == self.dtype:
            return self
        r = self._a.astype(dtype, order=order)
        _track(r)
        _count("launch")
        return ndarray._of(r)

    def fill(self, value):
        _no_fuse("fill")
        self._a.fill(_dev(value) if not isinstance(value, ndarray) else value._a)
        _count("launch")

    # --- reductions (0-d device arrays, as CuPy)
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _reduce(_np.sum, "sum", self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _reduce(_np.mean, "mean", self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return _reduce(_np.max, "max", self, axis=axis, out=out, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return _reduce(_np.min, "min", self, axis=axis, out=out, keepdims=keepdims)

    def any(self, axis=None, out=None, keepdims=False):
        return _reduce(_np.any, "any", self, axis=axis, out=out, keepdims=keepdims)

    def all(self, axis=None, out=None, keepdims=False):
        return _reduce(_np.all, "all", self, axis=axis, out=out, keepdims=keepdims)

    def argmax(self, axis=None, out=None, keepdims=False):
        return _reduce(_np.argmax, "argmax", self, axis=axis, out=out, keepdims=keepdims)

    def clip(self, min=None, max=None, out=None):
        return clip(self, min, max, out=out)

    def dot(self, b, out=None):
        return dot(self, b, out=out)

    # --- indexing
    def __getitem__(self, key):
        _no_fuse("indexing")
        k, advanced = _key(key)
        r = self._a[k]
        if isinstance(r, _np.generic):  # CuPy's scalar indexing is a 0-d view
            r = self._a[(k if isinstance(k, tuple) else (k,)) + (Ellipsis,)]
        fresh = _track(r)
        if fresh or advanced:
            _count("launch")
        return ndarray._of(r)

    def __setitem__(self, key, value):
        _no_fuse("indexing")
        k, _ = _key(key)
        if isinstance(value, (_np.ndarray, list)):
            _count("h2d")
            v = _np.asarray(value)
        else:
            v = _dev(value)
        self._a[k] = v
        _count("launch")

    # --- arithmetic
    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return absolute(self)

    def __invert__(self):
        return invert(self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __imatmul__(self, other):  # pragma: no cover - as NumPy, not in place
        return NotImplemented


def _binary(uf):
    def op(self, other):
        return uf(self, other)

    def rop(self, other):
        return uf(other, self)

    def iop(self, other):
        uf(self, other, out=self)
        return self
    return op, rop, iop



# ----------------------------------------------------------------------------- ufuncs
class _Quiet:
    """``numpy.errstate(all="ignore")`` as a reusable context (NumPy's cannot be re-entered)."""

    def __enter__(self):
        self.old = _np.seterr(all="ignore")

    def __exit__(self, *exc):
        _np.seterr(**self.old)


_QUIET = _Quiet()


class ufunc:
    """An elementwise kernel: one launch per call (none inside ``fuse``)."""

    def __init__(self, name):
        self.__name__ = name
        self._np = getattr(_np, name)
        self.nin, self.nout = self._np.nin, self._np.nout

    def __repr__(self):
        return f"<ufunc 'cupy_{self.__name__}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        kw = {} if dtype is None else {"dtype": dtype}
        if casting != "same_kind":
            kw["casting"] = casting
        args = [a._a if type(a) is ndarray else _dev(a) for a in args]
        with _QUIET:  # a GPU raises no floating-point warnings: NaN and Inf just happen
            if out is not None:
                if not isinstance(out, ndarray):
                    raise _unsupported(out)
                self._np(*args, out=out._a, **kw)
                _count("launch")
                return out
            r = self._np(*args, **kw)
        return _wrap(r)

    def at(self, a, indices, b=None):
        """Unbuffered ``a[indices] op= b`` (atomics on the device): one scatter kernel."""
        _no_fuse(self.__name__ + ".at")
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        k, _ = _key(indices)
        if self.__name__ == "add" and b is not None and not _add_at_fast(a._a, k, _dev(b)):
            self._np.at(a._a, k, _dev(b))
        elif self.__name__ != "add" or b is None:
            self._np.at(a._a, k, *(() if b is None else (_dev(b),)))
        _count("launch")


def _add_at_fast(a, index, b):
    """``numpy.add.at(a, index, b)`` for a C-contiguous ``a`` indexed by one non-negative
    integer array per axis, as one ``bincount`` over flat indices (NumPy's ``add.at`` is
    slow on millions of elements); False when the case does not fit."""
    index = index if isinstance(index, tuple) else (index,)
    if (not a.flags.c_contiguous or len(index) != a.ndim
            or not _builtins.all(isinstance(k, _np.ndarray) and k.dtype.kind in "iu" for k in index)
            or _builtins.any(bool((k < 0).any()) for k in index)):
        return False
    flat = 0
    for k, stride in zip(index, _np.cumprod((a.shape[1:] + (1,))[::-1])[::-1]):
        flat = flat + k * int(stride)
    b = _np.broadcast_to(b, _np.broadcast_shapes(_np.shape(flat), _np.shape(b)))
    flat = _np.broadcast_to(flat, b.shape)
    a.reshape(-1)[...] += _np.bincount(flat.ravel(), weights=b.ravel(), minlength=a.size).astype(a.dtype)
    return True


def _reduce(fn, name, a, **kwargs):
    _no_fuse(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k != "dtype"}
    out = kwargs.pop("out", None)
    if out is not None:
        fn(a._a, out=out._a, **kwargs)
        _count("launch")
        return out
    r = fn(_dev(a), **kwargs)
    r = _np.asarray(r) if not isinstance(r, _np.ndarray) else r
    if not _track(r):  # a reduction always writes fresh memory (a 0-d result of a view, too)
        r = r.copy()
        _track(r)
    _count("launch")
    return ndarray._of(r)


_UFUNCS = [n.split(".")[0] for n, kind in _API.items() if kind.startswith("ufunc")]
for _name in _UFUNCS:
    globals()[_name] = ufunc(_name)

for _name, _uf in [("add", add), ("sub", subtract), ("mul", multiply), ("truediv", true_divide),  # noqa: F821
                   ("floordiv", floor_divide), ("mod", remainder), ("pow", power),  # noqa: F821
                   ("and", bitwise_and), ("or", bitwise_or), ("xor", bitwise_xor)]:  # noqa: F821
    _op, _rop, _iop = _binary(_uf)
    setattr(ndarray, f"__{_name}__", _op)
    setattr(ndarray, f"__r{_name}__", _rop)
    setattr(ndarray, f"__i{_name}__", _iop)
for _name, _uf in [("lt", less), ("le", less_equal), ("gt", greater), ("ge", greater_equal),  # noqa: F821
                   ("eq", equal), ("ne", not_equal)]:  # noqa: F821
    setattr(ndarray, f"__{_name}__", _binary(_uf)[0])


# ---------------------------------------------------------------------- other functions
def _function(name, fn=None, launch=True):
    """CuPy's ``name``: NumPy's function on the device arrays, checked and counted."""
    np_fn = fn or getattr(_np, name)

    def f(*args, **kwargs):
        _no_fuse(name)
        _check_args(name, args, kwargs)
        out = kwargs.pop("out", None)
        if out is not None:
            np_fn(*_dev(args), out=out._a, **_dev(kwargs))
            _count("launch")
            return out
        return _wrap(np_fn(*_dev(args), **_dev(kwargs)), launch)
    f.__name__ = name
    return f


def _host_to_device(a, dtype=None, copy=True, order="K", ndmin=0, blocking=False):
    """``asarray``/``array``: a device array stays (no copy unless asked or cast), host data
    is copied over."""
    _no_fuse("asarray")
    if isinstance(a, ndarray):
        if dtype is None or _np.dtype(dtype) == a.dtype:
            return a.copy() if copy else a
        return a.astype(dtype)
    if isinstance(a, (list, tuple)) and _builtins.any(isinstance(v, ndarray) for v in a):
        return stack([asarray(v, dtype) for v in a])  # noqa: F821 - defined below
    r = _np.array(a, dtype=dtype, copy=True, order="C" if order == "K" else order, ndmin=ndmin)
    _count("h2d")
    _track(r)
    return ndarray._of(r)


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    return _host_to_device(a, dtype, copy=bool(copy))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    return _host_to_device(obj, dtype, copy=copy, order=order, ndmin=ndmin)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return _np.asarray(a, order=order)


def empty(shape, dtype=float, order="C"):
    r = _np.empty(shape, dtype=dtype, order=order)
    _track(r)
    return ndarray._of(r)


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    r = _np.empty_like(_dev(prototype), dtype=dtype, order=order, shape=shape)
    _track(r)
    return ndarray._of(r)


def ascontiguousarray(a, dtype=None):
    _no_fuse("ascontiguousarray")
    return _wrap(_np.ascontiguousarray(_dev(a), dtype=dtype))


def matmul(a, b, out=None, **kwargs):
    _no_fuse("matmul")
    x, y = _dev(a), _dev(b)
    if _GEMM_ZEROS[0] and _np.ndim(x) >= 2 and _np.ndim(y) >= 2:
        shape = _np.broadcast_shapes(x.shape[:-2], y.shape[:-2]) + (x.shape[-2], y.shape[-1])
        r = out._a if out is not None else _np.empty(shape, _np.result_type(x, y))
        r.fill(0)
    elif out is not None:
        _np.matmul(x, y, out=out._a)
        r = out._a
    else:
        r = _np.matmul(x, y)
    if _np.ndim(x) >= 1 and _np.ndim(y) >= 1:
        k = _np.shape(x)[-1]
        _count("gemm")
        _count("flop", 2 * k * int(_np.prod(r.shape, dtype=_np.int64)))
    if out is not None:
        return out
    r = _np.asarray(r)  # a vector product's scalar is a 0-d device array
    _track(r)
    return ndarray._of(r)


def dot(a, b, out=None):
    return matmul(a, b, out=out)


def vdot(a, b):
    _no_fuse("vdot")
    r = _np.asarray(_np.vdot(_dev(a), _dev(b)))
    _track(r)
    _count("launch")
    return ndarray._of(r)


def bincount(x, weights=None, minlength=None):
    _no_fuse("bincount")
    _count("sync")  # CuPy reads max(x) + 1 to size the result
    return _wrap(_np.bincount(_dev(x), weights=_dev(weights), minlength=minlength or 0))


def may_share_memory(a, b, max_work=None):
    """On pointers and shapes alone, as CuPy: no kernel, no sync."""
    return _np.may_share_memory(_dev(a), _dev(b))


def shares_memory(a, b, max_work=None):
    return _np.shares_memory(_dev(a), _dev(b))


def copyto(dst, src, casting="same_kind", where=None):
    _no_fuse("copyto")
    if isinstance(src, (_np.ndarray, list)):
        _count("h2d")
        src = _np.asarray(src)
    _np.copyto(dst._a, _dev(src), casting=casting, where=True if where is None else _dev(where))
    _count("launch")


for _name in ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "where",
              "clip", "concatenate", "stack", "pad", "take_along_axis", "sum", "any", "all", "max",
              "min", "mean", "isfinite", "repeat"]:
    if _name in _API and _name not in globals():
        globals()[_name] = _function(_name)
for _name in ["moveaxis", "broadcast_to", "split", "reshape", "transpose", "swapaxes", "squeeze",
              "expand_dims"]:
    if _name in _API and _name not in globals():
        globals()[_name] = _function(_name)  # views: a launch only where NumPy had to copy


def fuse(*args, **kwargs):
    """``cupy.fuse``: the Python function runs once over whole arrays, as one kernel.

    Inside, only elementwise work is allowed (ufuncs and operators); any other
    operation raises TypeError, as it cannot be fused on the device.
    """
    def decorate(fn):
        def fused(*a):
            for v in a:
                if isinstance(v, _np.ndarray):
                    raise _unsupported(v)
            _FUSING[0] += 1
            try:
                r = fn(*a)
            finally:
                _FUSING[0] -= 1
            outs = r if isinstance(r, tuple) else (r,)
            for o in outs:
                if isinstance(o, ndarray):
                    _track(o._a)
            _count("launch")
            return r
        fused.__name__ = getattr(fn, "__name__", "fused")
        return fused
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


# ------------------------------------------------------------------ dtypes, submodules
for _name, _kind in _API.items():
    if _kind == "class" and "." not in _name and _name not in globals():
        globals()[_name] = getattr(_np, _name)
pi, inf, nan, newaxis = _np.pi, _np.inf, _np.nan, None

lib = types.ModuleType("strict_cupy.lib")
lib.stride_tricks = types.ModuleType("strict_cupy.lib.stride_tricks")


def _as_strided(x, shape=None, strides=None):
    _no_fuse("as_strided")
    return ndarray._of(_np.lib.stride_tricks.as_strided(_dev(x), shape, strides))


lib.stride_tricks.as_strided = _as_strided


class _Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    compute_capability = "90"


class _Event:
    """A CUDA event: the stand-in has no device clock, so every interval is 0 ms."""

    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


cuda = types.ModuleType("strict_cupy.cuda")
cuda.Device = _Device
cuda.Event = _Event
cuda.get_elapsed_time = lambda start, end: 0.0
cuda.runtime = types.ModuleType("strict_cupy.cuda.runtime")
cuda.runtime.getDeviceCount = lambda: 1
cuda.runtime.runtimeGetVersion = lambda: 0
cuda.runtime.driverGetVersion = lambda: 0
cuda.runtime.getDeviceProperties = lambda device: {"name": b"strict_cupy stand-in", "totalGlobalMem": 0}


class _MemoryPool:
    """``get_default_memory_pool()``: the stand-in frees at once, so the pool holds what lives."""

    def used_bytes(self):
        return _MEMORY["live"]

    def total_bytes(self):
        return _MEMORY["live"]

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_array_module(*args):
    return sys.modules[__name__] if _builtins.any(isinstance(a, ndarray) for a in args) else _np
