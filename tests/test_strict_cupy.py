"""The CuPy stand-in (tests/strict_cupy.py) behaves like CuPy where it matters, offers
only CuPy's names, and its snapshot of CuPy's API is that of the real CuPy.

Regenerate the snapshot where CuPy imports (no GPU needed)::

    python tests/test_strict_cupy.py --write
"""
import glob
import inspect
import json
import os
import re
import sys
import types

import numpy
import pytest

if __package__ in (None, ""):  # run as a script to write the snapshot
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT = os.path.join(ROOT, "tests", "cupy_api.json")

#: names the stand-in imitates beyond those the code calls today
BASE_NAMES = """
add subtract multiply divide true_divide floor_divide remainder power negative absolute abs exp log
tanh sqrt floor maximum minimum arctan2 less less_equal greater greater_equal equal not_equal
logical_and logical_or logical_not bitwise_and bitwise_or bitwise_xor invert isfinite square
add.at asarray array asnumpy empty empty_like zeros ones full zeros_like ones_like full_like arange
where clip concatenate stack pad take_along_axis sum any all max min mean moveaxis broadcast_to split
reshape transpose swapaxes squeeze expand_dims ascontiguousarray matmul dot vdot bincount copyto fuse
get_default_memory_pool get_array_module may_share_memory shares_memory ndarray lib lib.stride_tricks lib.stride_tricks.as_strided
cuda cuda.Device cuda.Event cuda.get_elapsed_time cuda.runtime cuda.runtime.getDeviceCount
cuda.runtime.runtimeGetVersion cuda.runtime.driverGetVersion cuda.runtime.getDeviceProperties
float16 float32 float64 int8 int32 int64 uint8 bool_ intp pi inf nan newaxis
ndarray.reshape ndarray.transpose ndarray.swapaxes ndarray.squeeze ndarray.ravel ndarray.view
ndarray.copy ndarray.astype ndarray.fill ndarray.sum ndarray.mean ndarray.max ndarray.min ndarray.any
ndarray.all ndarray.argmax ndarray.clip ndarray.dot ndarray.get ndarray.item ndarray.tolist
ndarray.shape ndarray.dtype ndarray.ndim ndarray.size ndarray.strides ndarray.itemsize ndarray.nbytes
ndarray.data ndarray.flags ndarray.T ndarray.device ndarray.base
""".split()

#: the stand-in's own API (counting), not CuPy's
OWN = {"Counts", "counting", "gemms_as_zeros", "live_bytes", "SNAPSHOT", "ufunc"}


def used_names():
    """Every ``xp.NAME``, ``get_xp(...).NAME`` and ``cupy.NAME`` the library, the models,
    train.py and the benchmarks call."""
    paths = (glob.glob(os.path.join(ROOT, "nnlite", "**", "*.py"), recursive=True)
             + glob.glob(os.path.join(ROOT, "models", "*.py"))
             + glob.glob(os.path.join(ROOT, "benchmarks", "*.py")) + [os.path.join(ROOT, "train.py")])
    names = set()
    for path in paths:
        text = open(path).read()
        names.update(re.findall(r"\bxp\.([A-Za-z_][\w.]*)", text))
        names.update(re.findall(r"\bget_xp\([^()]*\)\.([A-Za-z_]\w*)", text))
        names.update(re.findall(r"\bcupy\.([A-Za-z_][\w.]*)", text))
    return names - {"__name__", "__version__"}


def describe(obj):
    """What the snapshot records of one CuPy name: its kind and, for a Python
    function, its parameters (``/p`` positional-only, ``=p`` keyword-only, ``*p``,
    ``**p``)."""
    if isinstance(obj, types.ModuleType):
        return "module"
    if type(obj).__name__ in ("ufunc", "_GUFunc") and hasattr(obj, "nin"):
        return f"ufunc nin={obj.nin} nout={obj.nout}"
    if isinstance(obj, type):
        return "class"
    if obj is None or isinstance(obj, (int, float)):
        return "constant"
    if type(obj).__name__ in ("getset_descriptor", "member_descriptor", "property"):
        return "attribute"
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "callable"
    marks = {inspect.Parameter.POSITIONAL_ONLY: "/", inspect.Parameter.KEYWORD_ONLY: "=",
             inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return "function(" + ", ".join(marks.get(p.kind, "") + p.name for p in sig.parameters.values()) + ")"


def lookup(module, name):
    obj = module
    for part in name.split("."):
        if isinstance(obj, type):
            obj = obj.__dict__[part] if part in obj.__dict__ else getattr(obj, part)
        else:
            obj = getattr(obj, part)
    return obj


def snapshot_of(cupy, names):
    return {n: describe(lookup(cupy, n)) for n in sorted(names)}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    import cupy
    old = json.load(open(SNAPSHOT))["names"] if os.path.exists(SNAPSHOT) else {}
    names = set(BASE_NAMES) | used_names() | set(old)
    with open(SNAPSHOT, "w") as f:
        json.dump({"cupy": cupy.__version__, "names": snapshot_of(cupy, names)}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(names)} names of CuPy {cupy.__version__} to {SNAPSHOT}")
    sys.exit(0)

from tests import strict_cupy as sc  # noqa: E402


def test_the_snapshot_matches_the_real_cupy():
    cupy = pytest.importorskip("cupy")
    with open(sc.SNAPSHOT) as f:
        snap = json.load(f)
    assert snap["cupy"] == cupy.__version__, "regenerate: python tests/test_strict_cupy.py --write"
    assert snapshot_of(cupy, snap["names"]) == snap["names"]


def test_every_name_the_code_calls_is_in_the_snapshot():
    missing = sorted(used_names() - set(sc._API))
    assert len(used_names()) > 30
    assert not missing, f"not in tests/cupy_api.json (regenerate where CuPy imports): {missing}"


def test_the_stand_in_offers_every_snapshot_name_and_no_other():
    for name in sc._API:
        lookup(sc, name)  # raises if the stand-in lacks it
    public = {n for n, v in vars(sc).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
              or n in ("lib", "cuda")}
    extra = public - set(sc._API) - OWN - {"collections", "contextlib", "json", "operator", "os",
                                           "sys", "types", "weakref"}
    assert not extra, f"the stand-in offers names CuPy's snapshot lacks: {sorted(extra)}"


# ------------------------------------------------------------------------ behaviour
def test_arrays_refuse_implicit_conversion_and_host_operands():
    a = sc.arange(6, dtype="float32")
    with pytest.raises(TypeError, match="Implicit conversion"):
        numpy.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + numpy.ones(6, dtype=numpy.float32)
    with pytest.raises(TypeError, match="Unsupported type"):
        numpy.ones(6, dtype=numpy.float32) * a
    with pytest.raises(TypeError, match="Unsupported type"):
        sc.multiply(a, numpy.ones(6, dtype=numpy.float32))
    assert float((a * 2.0 + numpy.float32(1)).sum()) == 36.0  # scalars are fine


def test_reductions_and_scalar_indexing_stay_on_the_device_until_read():
    a = sc.asarray(numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    with sc.counting() as c:
        s, first, m = a.sum(), a[1, 2], sc.max(a)
    assert all(isinstance(v, sc.ndarray) and v.ndim == 0 for v in (s, first, m))
    assert c.totals()["sync"] == 0
    with sc.counting() as c:
        assert float(s) == 15.0 and int(first) == 5 and bool(m > 4) and a.get().shape == (2, 3)
    assert c.totals()["sync"] == 4
    assert dict(c.by_site("sync"))  # each site is named
    assert all(site.startswith("tests/test_strict_cupy.py:") for site, _ in c.by_site("sync"))


def test_host_and_device_never_share_memory():
    host = numpy.zeros(4, dtype=numpy.float32)
    with sc.counting() as c:
        dev = sc.asarray(host)
    host[0] = 7
    assert float(dev[0]) == 0
    back = dev.get()
    back[1] = 5
    assert float(dev[1]) == 0
    assert c.totals()["h2d"] == 1


def test_counts_launches_gemms_masks_float64_and_memory():
    a = sc.ones((4, 8), dtype="float32")
    b = sc.ones((8, 3), dtype="float32")
    base = sc.live_bytes()
    with sc.counting() as c:
        y = a @ b               # one GEMM, 2*4*3*8 flops
        z = y * 2 + 1           # two elementwise kernels
        v = z.reshape(-1)       # a view: nothing
        d = sc.zeros(3, dtype="float64")   # one fill, one float64 array
        sel = v[v > 3]          # a compare kernel, a mask (sync), the gather
        sc.add.at(d, sc.asarray(numpy.array([0, 0, 1])), 1.0)   # one h2d, one scatter
    t = c.totals()
    assert (t["gemm"], t["flop"]) == (1, 192)
    assert t["launch"] == 2 + 1 + 2 + 1
    assert (t["sync"], t["float64"], t["h2d"]) == (1, 1, 1)
    assert d.get().tolist() == [2.0, 1.0, 0.0] and sel.shape == (12,)
    assert c.peak_bytes >= base + 4 * 3 * 4 * 2 + 3 * 8
    del y, z, v, sel
    assert sc.live_bytes() < c.peak_bytes


def test_fuse_is_one_kernel_and_elementwise_only():
    def f(x, y):
        return sc.tanh(x) * y + 1, x - y

    fused = sc.fuse(f)
    x, y = sc.ones(5, dtype="float32"), sc.full(5, 2.0, dtype="float32")
    with sc.counting() as c:
        u, v = fused(x, y)
    assert c.totals()["launch"] == 1
    assert numpy.allclose(u.get(), numpy.tanh(1) * 2 + 1) and numpy.allclose(v.get(), -1)
    with pytest.raises(TypeError, match="not an elementwise"):
        sc.fuse(lambda x: x.sum())(x)


def test_keyword_arguments_follow_the_snapshot():
    with pytest.raises(TypeError, match="unexpected keyword"):
        sc.zeros(3, dtyp="float32")
    assert sc.zeros(3, dtype="float32").dtype == numpy.float32
