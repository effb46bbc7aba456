"""The Torch7 ``nn.Module`` contract.

A module keeps its last results on itself (``output``, ``gradInput``) and splits
backpropagation in two, as Torch did:

* ``updateOutput(input)``                 computes ``output = f(input)``;
* ``updateGradInput(input, gradOutput)``  computes ``gradInput = (df/dinput)^T gradOutput``;
* ``accGradParameters(input, gradOutput, scale)`` *adds* ``scale * (df/dtheta)^T gradOutput``
  to each parameter gradient. Accumulation is what lets one module be applied
  several times (recurrent steps, shared weights) and summed over.

Parameters follow Torch's naming: an attribute ``weight`` has its gradient in
``gradWeight``; a subclass lists its parameter attributes in ``parameter_names``.
"""
import copy

from . import backend
from .backend import data_key, get_xp, is_array


def grad_name(name):
    """Torch's gradient attribute name: ``weight`` -> ``gradWeight``."""
    return "grad" + name[0].upper() + name[1:]


def _flat_base(arrays):
    """The 1-D array of which ``arrays`` are, in order, the consecutive C-contiguous views
    (what ``getParameters`` made), else None."""
    base = arrays[0].base
    if not is_array(base) or base.ndim != 1 or base.size != sum(a.size for a in arrays):
        return None
    pos = data_key(base)[0]
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or data_key(a)[0] != pos:
            return None
        pos += a.nbytes
    return base


def _make_stale(a):
    """Mark an array a module no longer uses: read-only where the backend allows (NumPy)."""
    if not backend.is_cupy(a):
        a.flags.writeable = False


class Module:
    #: parameter attributes of a leaf module (their gradients via ``grad_name``)
    parameter_names = ("weight", "bias")
    #: attributes that are results or caches: dropped by ``clearState`` and never saved
    _transient = ("output", "gradInput")

    #: whether ``backward`` computes dL/dinput (``noGradInput`` turns it off)
    gradInputNeeded = True

    def __init__(self):
        self.output = None
        self.gradInput = None
        self.train = True

    def noGradInput(self):
        """Stop ``backward`` from computing dL/dinput: Torch's idiom ``module.gradInput = nil``
        (its layers skip ``updateGradInput`` then), which PyTorch does by itself for inputs
        that do not require a gradient. ``backward`` then only accumulates the parameter
        gradients and leaves ``gradInput`` None; ``updateGradInput``, called directly, still
        computes it. For a model's first layers when nothing needs the gradient of the data
        (``models.training.Trainer`` calls it on the model): the first convolution's input
        gradient is a GEMM and a col2im as large as its weight gradient. ``Sequential`` and
        ``Sequencer`` pass it on to the children whose gradInput would only reach theirs;
        other modules that override ``backward`` may ignore it (they then compute the
        gradient as before). Returns self."""
        self.gradInputNeeded = False
        return self

    # ------------------------------------------------------------------ compute
    def forward(self, input):
        """``output = updateOutput(input)``; returns ``self.output``."""
        return self.updateOutput(input)

    def backward(self, input, gradOutput, scale=1.0):
        """``updateGradInput`` then ``accGradParameters(scale)``; returns ``gradInput``
        (after ``noGradInput()``: ``accGradParameters`` alone, returning None)."""
        if not self.gradInputNeeded:
            self.accGradParameters(input, gradOutput, scale)
            self.gradInput = None
            return None
        self.updateGradInput(input, gradOutput)
        self.accGradParameters(input, gradOutput, scale)
        return self.gradInput

    def __call__(self, input, gradOutput=None):
        """Torch's ``module(input)``: ``forward``, returning the output; with ``gradOutput``
        also ``backward``, returning ``(output, gradInput)``."""
        self.forward(input)
        if gradOutput is None:
            return self.output
        self.backward(input, gradOutput)
        return self.output, self.gradInput

    def updateOutput(self, input):
        raise NotImplementedError(f"{self.typename()} does not implement updateOutput")

    def updateGradInput(self, input, gradOutput):
        raise NotImplementedError(f"{self.typename()} does not implement updateGradInput")

    def accGradParameters(self, input, gradOutput, scale=1.0):
        """Modules without parameters have nothing to accumulate."""

    def _check_forward_seen(self, seen_shape, input):
        """A backward that reads what the last forward kept (its output, argmax indices) needs
        that forward to have run on an input of this shape (``seen_shape``; None: no forward)."""
        if seen_shape is None:
            raise RuntimeError(f"{self.typename()}: backward needs a forward first (it uses what "
                               f"the forward kept)")
        if tuple(seen_shape) != tuple(input.shape):
            raise ValueError(f"{self.typename()}: backward's input has shape {tuple(input.shape)} "
                             f"but the last forward's had {tuple(seen_shape)}; call forward on this "
                             f"input first")

    # --------------------------------------------------------------- structure
    def children(self):
        """Direct sub-modules (containers override)."""
        return []

    def modules_tree(self):
        """This module and all its descendants, depth first."""
        yield self
        for c in self.children():
            yield from c.modules_tree()

    def listModules(self):
        """This module and all its descendants, depth first (Torch's ``listModules``)."""
        return list(self.modules_tree())

    def apply(self, fn):
        """Call ``fn(module)`` on this module and every descendant, depth first; returns self."""
        for m in self.modules_tree():
            fn(m)
        return self

    def findModules(self, typename):
        """``(modules, containers)``: every module of the tree of type ``typename`` (Torch's name,
        e.g. ``'nn.Linear'``, matched exactly, or a class, matched with ``isinstance``) and, at
        the same index, the container holding it (None for this module itself)."""
        def match(m):
            return m.typename() == typename if isinstance(typename, str) else isinstance(m, typename)

        found, containers = [], []

        def visit(m, parent):
            if match(m):
                found.append(m)
                containers.append(parent)
            for c in m.children():
                visit(c, m)

        visit(self, None)
        return found, containers

    def replace(self, callback):
        """Torch's ``replace``: ``callback(module)`` for this module, then for each child (whose
        result takes the child's place in the container's list); returns ``callback(self)``.

        Only the list of children is updated: a container that also keeps its children in
        named attributes keeps the old ones there.
        """
        out = callback(self)
        kids = self.children()
        for i, c in enumerate(kids):
            kids[i] = c.replace(callback)
        return out

    def reset(self, stdv=None):
        """Re-draw the parameters with Torch's default init (a module with parameters
        overrides this; ``stdv`` gives U(+-stdv sqrt(3)) instead); containers reset every child."""
        for c in self.children():
            if stdv is None:
                c.reset()
            else:
                c.reset(stdv)
        return self

    def _param_slots(self):
        """(module, parameter attribute, gradient attribute) for every parameter in the tree."""
        for m in self.modules_tree():
            for name in m.parameter_names:
                if is_array(getattr(m, name, None)):
                    yield m, name, grad_name(name)

    def parameters(self):
        """``(params, grads)``: two lists, each shared array listed once."""
        params, grads, seen = [], [], set()
        for m, p, g in self._param_slots():
            key = data_key(getattr(m, p))
            if key not in seen:
                seen.add(key)
                params.append(getattr(m, p))
                grads.append(getattr(m, g))
        return params, grads

    def getParameters(self):
        """Flatten every parameter into one vector and every gradient into another.

        Afterwards each module's arrays are views into the two vectors, so an
        optimiser that updates the flat vector updates the model. Arrays shared
        between modules (same memory) are stored once and stay shared. Calling it
        again returns the same two vectors when the parameters are still their views,
        and re-flattens otherwise (after adding modules or changing type).

        Torch re-pointed the existing tensors at the new storage; a NumPy array cannot
        be re-pointed, so the arrays a module held before are *stale* afterwards: on
        NumPy they are made read-only, so that writing through a reference taken
        before the call (an optimiser, a Jacobian test) fails loudly instead of
        changing an array the module no longer uses. Take references after the call.
        Parameters that overlap in memory without being the same view (a weight tied
        to another through a transpose) cannot stay tied in one flat vector: that is
        a ``ValueError``.
        """
        who = f"{self.typename()}.getParameters"
        slots = list(self._param_slots())
        if not slots:
            raise ValueError(f"{who}: the module has no parameters")
        first = getattr(slots[0][0], slots[0][1])
        xp = get_xp(*[getattr(m, p) for m, p, _ in slots])
        for m, p, _ in slots:
            a = getattr(m, p)
            if a.dtype != first.dtype:
                raise TypeError(f"{who}: parameters of mixed dtypes ({first.dtype} and {a.dtype}); "
                                f"call .float() or .double() first")
        distinct = self._distinct_parameters(who, "one flat vector cannot keep them tied")
        entries = list(distinct.values())
        flat = _flat_base([a for a, _, _ in entries])
        flat_grad = _flat_base([ga for _, ga, _ in entries])
        if flat is not None and flat_grad is not None:
            return flat, flat_grad
        total = sum(a.size for a, _, _ in entries)
        flat = xp.empty(total, dtype=first.dtype)
        flat_grad = xp.empty(total, dtype=first.dtype)
        views, off = {}, 0
        for key, (a, ga, _) in distinct.items():
            pv = flat[off:off + a.size].reshape(a.shape)
            gv = flat_grad[off:off + a.size].reshape(a.shape)
            pv[...] = a
            gv[...] = ga
            views[key] = (pv, gv)
            off += a.size
        for m, p, g in slots:
            pv, gv = views[data_key(getattr(m, p))]
            setattr(m, p, pv)
            setattr(m, g, gv)
        for a, ga, _ in entries:
            _make_stale(a)
            _make_stale(ga)
        return flat, flat_grad

    def zeroGradParameters(self):
        for g in self.parameters()[1]:
            g.fill(0)

    def updateParameters(self, learningRate):
        """Plain gradient descent: ``p -= learningRate * gradP``."""
        params, grads = self.parameters()
        for p, g in zip(params, grads):
            p -= learningRate * g

    # -------------------------------------------------------------------- modes
    def training(self):
        for m in self.modules_tree():
            m.train = True
        return self

    def evaluate(self):
        for m in self.modules_tree():
            m.train = False
        return self

    # ------------------------------------------------------------ copy & share
    def clone(self, *names):
        """Deep copy; with ``names`` the copy then shares those arrays with ``self``."""
        c = copy.deepcopy(self)
        if names:
            c.share(self, *names)
        return c

    def share(self, other, *names):
        """Make the named arrays of ``self`` (and, pairwise, of its children) those of ``other``."""
        for n in names:
            if is_array(getattr(other, n, None)):
                setattr(self, n, getattr(other, n))
        for a, b in zip(self.children(), other.children()):
            a.share(b, *names)
        return self

    def clearState(self):
        """Drop results and caches (``_transient`` attributes) in the whole tree."""
        for m in self.modules_tree():
            for n in m._transient:
                setattr(m, n, None)
        return self

    # -------------------------------------------------------------------- types
    def _distinct_parameters(self, who, why):
        """``{data_key: (param, grad, where)}`` of every distinct parameter array, in the order
        met. Two that overlap in memory in different layouts (a weight tied to another through
        a transpose) are a ``ValueError``: flattening or converting would silently untie them."""
        distinct = {}
        for m, p, g in self._param_slots():
            a = getattr(m, p)
            distinct.setdefault(data_key(a), (a, getattr(m, g), f"{m.typename()}.{p}"))
        entries = list(distinct.values())
        for i, (a, _, where) in enumerate(entries):
            for b, _, other in entries[:i]:
                if get_xp(a, b).may_share_memory(a, b):
                    raise ValueError(f"{who}: {other} and {where} share memory in different layouts "
                                     f"(one is a view of the other, e.g. its transpose); {why}. Tie "
                                     f"parameters by sharing the same array (module.share), or untie "
                                     f"them with a copy")
        return distinct

    def _map_arrays(self, fn, memo):
        """Replace every array reachable from this tree by ``fn(array)``.

        ``memo`` maps the memory identity of an array to ``(array, converted)`` so
        that arrays shared before the conversion are shared after it. It keeps the
        source array alive until the conversion is over: a source freed half-way
        (its last reference replaced here) could have its address reused by a
        converted array, whose key would then find the wrong entry.
        """
        def conv(v):
            if is_array(v):
                key = data_key(v)
                if key not in memo:
                    memo[key] = (v, fn(v))
                return memo[key][1]
            if isinstance(v, Module):
                v._map_arrays(fn, memo)
                return v
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, tuple):
                return tuple(conv(x) for x in v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        for k, v in list(self.__dict__.items()):
            self.__dict__[k] = conv(v)
        return self

    def type(self, dtype=None, device=None):
        """Convert floating arrays to ``dtype`` and/or move all arrays to ``device``.

        Integer arrays (index caches) keep their dtype. Shared arrays stay shared;
        parameters tied through a view in another layout (a transpose) cannot be, and are a
        ``ValueError`` before anything is converted.
        """
        self._distinct_parameters(f"{self.typename()}.type", "a conversion would untie them")
        def fn(a):
            if device is not None:
                a = backend.to_device(a, device)
            if dtype is not None and a.dtype.kind == "f":
                a = a.astype(dtype, copy=False)
            return a
        return self._map_arrays(fn, {})

    def float(self):
        return self.type(dtype="float32")

    def double(self):
        return self.type(dtype="float64")

    def cuda(self):
        return self.type(device="cuda")

    def cpu(self):
        return self.type(device="cpu")

    # --------------------------------------------------------------- printing
    @classmethod
    def typename(cls):
        return "nn." + cls.__name__

    def extra_repr(self):
        """Arguments shown after the type name, e.g. ``(16 -> 64)``."""
        return ""

    def __repr__(self):
        return self.typename() + self.extra_repr()
