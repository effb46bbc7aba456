"""Save and load models and checkpoints as HDF5 files (``torch.save``/``torch.load`` for nnlite).

::

    nn.save('ckpt.h5', {'model': model, 'optim': optimizer.state_dict(), 'step': 12})
    ckpt = nn.load('ckpt.h5')          # arrays come back as NumPy; call ckpt['model'].cuda()

What can be saved: ``Module`` and ``Criterion`` objects, dicts with string keys, lists,
tuples, NumPy/CuPy arrays (numeric dtypes), NumPy scalars, and ``int``/``float``/``bool``/
``str``/``None``, nested in any way. Anything else raises ``TypeError`` naming where it sits
(e.g. ``obj['model'].modules[2].fn``) before the file is touched.

File layout (readable with h5py/h5ls; format ``nnlite``, version 1 in the root attributes
``format`` and ``format_version``):

* every saved container is an HDF5 group whose attribute ``kind`` is ``module``, ``dict``,
  ``list`` or ``tuple``. Its attribute ``keys`` is the JSON list of its entries in order
  (attribute names of a module, keys of a dict, ``"0"``, ``"1"``, ... of a list); ``values``
  is a JSON object holding the entries that are ``None``/``bool``/``int``/``float``/``str``;
  every other entry is a member named by its key (``%`` and ``/`` escaped as ``%25``/``%2F``,
  the key ``.`` as ``%2E``, the empty key as ``%``). The root group holds one entry, ``obj``.
* a module group records its class in ``module`` (import path) and ``qualname``. Its
  ``__dict__`` is saved, except the attributes in the module's ``_transient`` (results and
  caches), which are saved as ``None``.
* an array is a dataset (``kind`` ``array``); CuPy arrays are copied to the host and
  marked ``device = 'cuda'`` for information only: ``load`` always returns NumPy arrays.
  Every non-empty dataset carries an HDF5 Fletcher-32 checksum (version 2 on), so a
  flipped byte raises ``ValueError`` on load instead of loading wrong numbers; 0-d arrays
  and NumPy scalars are stored with shape (1,) and the attribute ``shape0d`` (HDF5 cannot
  checksum a scalar dataset).
* ``save(path, obj, gradients=False)`` leaves out every parameter gradient (the
  ``gradWeight`` of each ``weight`` in ``parameter_names``), stored as ``None``: a checkpoint
  needs parameters and optimizer state only (an AE-fcLSTM checkpoint halves). A module
  loaded without gradients gets zero-filled ones, so it trains as before.
* sharing survives a round trip. One object (module, list, dict, tuple) or one array view
  (same ``backend.data_key``) reached twice is written once and hard-linked, and loads as
  one object (tied parameters stay tied: ``b.weight is a.weight``). Distinct arrays whose
  memory overlaps (the views ``getParameters()`` makes, saved together with the flat
  vector) are written as one 1-D block under ``/shared`` plus, for each array, a group
  (``kind`` ``view``) with its ``offset``, ``shape`` and ``strides`` in elements and a
  hard link ``base`` to the block; they load as views of one NumPy array, so writing
  through one is seen through the others, as before saving. Arrays that merely sit side by
  side in one allocation (weight and bias views of a flat vector that is not saved) share no
  element and are written on their own.

Writing is atomic: the file is written to a temporary file in the target's directory,
flushed to disk, then renamed onto the target (``os.replace``); a failing save leaves an
existing file untouched and removes its temporary file.

Loading creates module objects with ``cls.__new__(cls)`` and sets their ``__dict__``
(``__init__`` is not run). Classes are found by import path and qualified name; the named
Python module is imported (its top-level code runs, as with ``pickle``), but only
subclasses of ``Module`` or ``Criterion`` are created: any other class, an unknown format,
a file that is not HDF5 or a damaged/truncated one raises ``ValueError`` with the path.
"""
import importlib
import json
import os

import h5py

from .atomic import atomic_path
from .backend import data_key, get_xp, host_xp, is_array, is_cupy, to_numpy
from .criterions import Criterion
from .module import Module, grad_name

FORMAT = "nnlite"
FORMAT_VERSION = 2

_NUMERIC_KINDS = "biufc"
_CONTAINERS = {dict: "dict", list: "list", tuple: "tuple"}
_GROUP_KINDS = ("module", "dict", "list", "tuple")


# ------------------------------------------------------------------- shared helpers
def _escape(key):
    """The HDF5 member name of an entry key (HDF5 names cannot contain ``/`` or be ``.``)."""
    if key in ("", "."):
        return {"": "%", ".": "%2E"}[key]
    return key.replace("%", "%25").replace("/", "%2F")


def _find_class(module_name, qualname):
    """The ``Module``/``Criterion`` subclass named ``module_name.qualname``, else ``ValueError``."""
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"class {module_name}.{qualname} cannot be found ({e})") from None
    if not (isinstance(obj, type) and issubclass(obj, (Module, Criterion))):
        raise ValueError(f"{module_name}.{qualname} is not an nnlite Module or Criterion class; "
                         f"refusing to create it")
    return obj


def _extent(start, shape, strides, itemsize):
    """``(lo, hi)``: the lowest and one-past-highest address a strided array touches.

    ``start`` is the address of element ``[0, ..., 0]``; negative strides reach below it.
    Units are those of ``start``, ``strides`` and ``itemsize`` (bytes or elements).
    """
    lo = hi = start
    for n, s in zip(shape, strides):
        reach = s * (n - 1)
        lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
    return lo, hi + itemsize


def _view(block, offset, shape, strides):
    """The view of the 1-D ``block`` starting at element ``offset`` with element ``strides``.

    The extent is checked, so a damaged file can never make a view reach outside the block.
    """
    if len(shape) != len(strides) or min(shape, default=0) < 0:
        raise ValueError(f"view shape {shape} and strides {strides} are not a valid layout")
    lo, hi = _extent(offset, shape, strides, 1)
    if min(shape, default=1) > 0 and (lo < 0 or hi > block.size):
        raise ValueError(f"view (offset {offset}, shape {shape}, strides {strides}) reaches "
                         f"outside its block of {block.size} elements")
    xp = get_xp(block)
    return xp.lib.stride_tricks.as_strided(block[offset:] if offset < block.size else block,
                                           shape=shape,
                                           strides=[s * block.itemsize for s in strides])


# --------------------------------------------------------------------------- saving
def _path(parent, kind, key):
    """How a user would reach an entry, for error messages: ``obj['a'].weight[0]``."""
    if kind == "module":
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]" if kind == "dict" else f"{parent}[{key}]"


def _describe(v, where, gradients=True):
    """``(kind, entries)`` of a value; entries (key, child) for containers, else ``[]``.

    Kinds: module, dict, list, tuple, array, scalar (NumPy scalar), json. Raises
    ``TypeError`` for anything that cannot be saved.
    """
    if isinstance(v, (Module, Criterion)):
        cls = type(v)
        try:
            found = _find_class(cls.__module__, cls.__qualname__)
        except ValueError:
            found = None
        if found is not cls:
            raise TypeError(f"nnlite.save: {where} is a {cls.__qualname__}, a class that cannot "
                            f"be found again by its import path (defined inside a function?)")
        transient = set(getattr(v, "_transient", ()))
        if not gradients:
            transient.update(grad_name(n) for n in getattr(v, "parameter_names", ()))
        return "module", [(k, None if k in transient else x) for k, x in vars(v).items()]
    if type(v) in _CONTAINERS:
        kind = _CONTAINERS[type(v)]
        if kind != "dict":
            return kind, [(str(i), x) for i, x in enumerate(v)]
        bad = [k for k in v if not isinstance(k, str)]
        if bad:
            raise TypeError(f"nnlite.save: {where} has the key {bad[0]!r}; dict keys must be strings")
        return kind, list(v.items())
    if v is None or type(v) in (bool, int, float, str):
        return "json", []
    if hasattr(v, "dtype") and (is_array(v) or getattr(v, "shape", None) == ()):
        if v.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"nnlite.save: {where} has dtype {v.dtype}; only numeric arrays "
                            f"(bool, integer, float, complex) can be saved")
        return ("array" if is_array(v) else "scalar"), []
    raise TypeError(f"nnlite.save: {where} is a {type(v).__name__}, which cannot be saved "
                    f"(expected modules, dicts with string keys, lists, tuples, arrays, numbers, "
                    f"strings or None)")


def _identity(kind, v):
    """What makes two references the same saved object (``None``: never linked)."""
    if kind == "array":
        return data_key(v)
    return None if kind in ("json", "scalar") else ("obj", id(v))


def _span(a):
    """``(lo, hi)``: the byte addresses an array touches, ``hi`` exclusive."""
    return _extent(data_key(a)[0], a.shape, a.strides, a.itemsize)


class _Writer:
    """Two passes: ``__init__`` checks everything and plans shared blocks; ``write`` writes."""

    def __init__(self, obj, gradients=True):
        self.obj = obj
        self.gradients = gradients
        self.written = {}   # identity -> h5py object already written
        self.views = {}     # data_key -> (block index, offset, strides) for overlapping arrays
        self.blocks = []    # (dtype, length, [arrays]) per block of overlapping arrays
        self._plan_blocks(self._collect_arrays())

    def _collect_arrays(self):
        """Every distinct array view reachable from ``obj`` (also validates every value)."""
        arrays, seen, stack = {}, set(), [(self.obj, "obj")]
        while stack:
            v, where = stack.pop()
            kind, entries = _describe(v, where, self.gradients)
            ident = _identity(kind, v)
            if ident is None or ident in seen:
                continue
            seen.add(ident)
            if kind == "array":
                arrays[ident] = v
            stack.extend((x, _path(where, kind, k)) for k, x in entries)
        return arrays

    def _plan_blocks(self, arrays):
        """Group arrays whose bytes overlap; each group of two or more becomes one block."""
        spans = sorted(((is_cupy(a), *_span(a), key) for key, a in arrays.items() if a.size),
                       key=lambda t: t[:3])
        groups = []
        for gpu, lo, hi, key in spans:
            if groups and groups[-1][0] == gpu and lo < groups[-1][2]:
                groups[-1][2] = max(groups[-1][2], hi)
                groups[-1][3].append(key)
            else:
                groups.append([gpu, lo, hi, [key]])
        for _, lo, hi, keys in groups:
            if len(keys) > 1:
                self._add_block(lo, hi, [arrays[k] for k in keys])

    def _add_block(self, lo, hi, members):
        dtype, size = members[0].dtype, members[0].itemsize
        # the stride of a length-1 axis is never used (and NumPy may set it to anything)
        layouts = [(data_key(a)[0] - lo, [s if n > 1 else 0 for n, s in zip(a.shape, a.strides)])
                   for a in members]
        if any(a.dtype != dtype for a in members) or any(
                off % size or any(s % size for s in strides) for off, strides in layouts):
            dtypes = sorted({str(a.dtype) for a in members})
            raise TypeError(f"nnlite.save: arrays of dtypes {dtypes} share memory with different "
                            f"dtypes or alignments; save copies of them instead")
        index = len(self.blocks)
        for a, (off, strides) in zip(members, layouts):
            self.views[data_key(a)] = (index, off // size, [s // size for s in strides])
        self.blocks.append((dtype, (hi - lo) // size, members))

    def write(self, f):
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        if self.blocks:
            shared = f.create_group("shared")
            for index, (dtype, length, members) in enumerate(self.blocks):
                host = host_xp.zeros(length, dtype=dtype)
                for a in members:
                    _, offset, strides = self.views[data_key(a)]
                    _view(host, offset, a.shape, strides)[...] = to_numpy(a)
                _dataset(shared, str(index), host).attrs["kind"] = "block"
        self._put_entries(f, "root", [("obj", self.obj)], "obj")

    def _put_entries(self, group, kind, entries, where):
        values = {}
        for key, v in entries:
            child = where if kind == "root" else _path(where, kind, key)
            if _describe(v, child, self.gradients)[0] == "json":
                values[key] = v
            else:
                self._put(group, _escape(key), v, child)
        group.attrs["keys"] = json.dumps([k for k, _ in entries])
        group.attrs["values"] = json.dumps(values)

    def _put(self, group, name, v, where):
        kind, entries = _describe(v, where, self.gradients)
        ident = _identity(kind, v)
        if ident in self.written:
            group[name] = self.written[ident]  # an HDF5 hard link: one object, two names
            return
        if kind == "array" and ident in self.views:
            index, offset, strides = self.views[ident]
            obj = group.create_group(name)
            obj["base"] = group.file["shared"][str(index)]
            obj.attrs["view"] = json.dumps({"offset": offset, "shape": list(v.shape),
                                            "strides": strides})
            kind = "view"
        elif kind in ("array", "scalar"):
            obj = _dataset(group, name, to_numpy(v))
        else:
            obj = group.create_group(name, track_order=True)
        obj.attrs["kind"] = kind
        if kind in ("array", "view"):
            obj.attrs["device"] = "cuda" if is_cupy(v) else "cpu"
        if ident is not None:
            self.written[ident] = obj  # before the entries: a module may refer back to itself
        if kind == "module":
            obj.attrs["module"] = type(v).__module__
            obj.attrs["qualname"] = type(v).__qualname__
        if kind in _GROUP_KINDS:
            self._put_entries(obj, kind, entries, where)


def _dataset(group, name, host):
    """A checksummed dataset holding the NumPy array (or scalar) ``host``."""
    host = host_xp.asarray(host)
    shape0d = host.ndim == 0
    if shape0d:
        host = host.reshape(1)
    ds = group.create_dataset(name, data=host, fletcher32=host.size > 0)
    if shape0d:
        ds.attrs["shape0d"] = True
    return ds


def _read(ds):
    """The value of a dataset written by ``_dataset`` (or by format version 1)."""
    if ds.attrs.get("shape0d", False):
        v = ds[0]
        return v if ds.attrs["kind"] == "scalar" else host_xp.asarray(v)
    return ds[()] if ds.attrs["kind"] == "scalar" else ds[...]


def save(path, obj, gradients=True):
    """Write ``obj`` (a module, criterion, or nested dicts/lists of them, arrays and plain
    values) to the HDF5 file ``path`` atomically; see the module docstring for the format.

    ``gradients=False`` leaves the parameter gradients out (checkpoints)."""
    writer = _Writer(obj, gradients)  # every TypeError comes here, before any file is created
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        writer.write(f)


# -------------------------------------------------------------------------- loading
def _json_attr(obj, name, kind):
    value = json.loads(obj.attrs[name])
    if not isinstance(value, kind):
        raise ValueError(f"attribute {name!r} of {obj.name} is not a JSON {kind.__name__}")
    return value


def _zero_missing_gradients(module):
    """A module saved with ``gradients=False`` gets zero gradients shaped like its parameters."""
    for name in getattr(module, "parameter_names", ()):
        p, g = getattr(module, name, None), grad_name(name)
        if is_array(p) and getattr(module, g, None) is None:
            setattr(module, g, host_xp.zeros_like(p))


class _Reader:
    def __init__(self):
        self.loaded = {}  # HDF5 object id -> Python object (hard links load as one object)
        self.pending = set()  # ids of tuples and views being read: they cannot contain themselves

    def entries(self, group):
        """The entries of a container group, in order, as a dict."""
        keys = _json_attr(group, "keys", list)
        values = _json_attr(group, "values", dict)
        return {k: values[k] if k in values else self.get(group[_escape(k)]) for k in keys}

    def get(self, obj):
        if obj.id in self.loaded:
            return self.loaded[obj.id]
        kind = obj.attrs["kind"]
        if obj.id in self.pending:
            raise ValueError(f"{obj.name} (a {kind}) contains itself, which no saved object can")
        if kind in ("array", "block", "scalar"):
            v = _read(obj)
        elif kind == "view":
            layout = _json_attr(obj, "view", dict)
            self.pending.add(obj.id)
            v = _view(self.get(obj["base"]), layout["offset"], tuple(layout["shape"]),
                      layout["strides"])
        elif kind == "module":
            cls = _find_class(obj.attrs["module"], obj.attrs["qualname"])
            v = cls.__new__(cls)
            self.loaded[obj.id] = v  # before the entries: a module may refer back to itself
            v.__dict__.update(self.entries(obj))
            _zero_missing_gradients(v)
        elif kind == "dict":
            v = self.loaded[obj.id] = {}
            v.update(self.entries(obj))
        elif kind == "list":
            v = self.loaded[obj.id] = []
            v.extend(self.entries(obj).values())
        elif kind == "tuple":
            self.pending.add(obj.id)
            v = tuple(self.entries(obj).values())
        else:
            raise ValueError(f"{obj.name} has the unknown kind {kind!r}")
        self.loaded[obj.id] = v
        return v


def load(path):
    """Read an object written by ``save``; arrays come back as NumPy arrays.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming ``path``)
    for a file that is not HDF5, not an nnlite file, from a newer format, damaged or
    truncated, or that names a class that is not an nnlite ``Module``/``Criterion``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"nnlite.load: no such file: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"nnlite.load: {path} is not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
            if not (isinstance(fmt, str) and fmt == FORMAT):
                raise ValueError(f"not an nnlite file (its root attribute 'format' is {fmt!r}, "
                                 f"expected {FORMAT!r})")
            if version is None or not 1 <= int(version) <= FORMAT_VERSION:
                raise ValueError(f"format version {version} is not supported (this nnlite reads "
                                 f"versions 1 to {FORMAT_VERSION}; the file may come from a newer nnlite)")
            return _Reader().entries(f)["obj"]
    except (OSError, KeyError) as e:
        raise ValueError(f"nnlite.load: {path} is damaged or truncated ({e})") from e
    except ValueError as e:
        raise ValueError(f"nnlite.load: {path}: {e}") from e
    except Exception as e:  # a damaged layout fails wherever it is read: attributes of the wrong type, ...
        raise ValueError(f"nnlite.load: {path} is damaged ({type(e).__name__}: {e})") from e
