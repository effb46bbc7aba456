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


class Module:
    #: parameter attributes of a leaf module (their gradients via ``grad_name``)
    parameter_names = ("weight", "bias")
    #: attributes that are results or caches: dropped by ``clearState`` and never saved
    _transient = ("output", "gradInput")

    def __init__(self):
        self.output = None
        self.gradInput = None
        self.train = True

    # ------------------------------------------------------------------ compute
    def forward(self, input):
        """``output = updateOutput(input)``; returns ``self.output``."""
        return self.updateOutput(input)

    def backward(self, input, gradOutput, scale=1.0):
        """``updateGradInput`` then ``accGradParameters(scale)``; returns ``gradInput``."""
        self.updateGradInput(input, gradOutput)
        self.accGradParameters(input, gradOutput, scale)
        return self.gradInput

    def updateOutput(self, input):
        raise NotImplementedError(f"{self.typename()} does not implement updateOutput")

    def updateGradInput(self, input, gradOutput):
        raise NotImplementedError(f"{self.typename()} does not implement updateGradInput")

    def accGradParameters(self, input, gradOutput, scale=1.0):
        """Modules without parameters have nothing to accumulate."""

    # --------------------------------------------------------------- structure
    def children(self):
        """Direct sub-modules (containers override)."""
        return []

    def modules_tree(self):
        """This module and all its descendants, depth first."""
        yield self
        for c in self.children():
            yield from c.modules_tree()

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
        again re-flattens (needed after adding modules or changing type).
        """
        slots = list(self._param_slots())
        if not slots:
            raise ValueError(f"{self.typename()}.getParameters: the module has no parameters")
        first = getattr(slots[0][0], slots[0][1])
        xp = get_xp(*[getattr(m, p) for m, p, _ in slots])
        offsets, total = {}, 0
        for m, p, _ in slots:
            a = getattr(m, p)
            if a.dtype != first.dtype:
                raise TypeError(f"{self.typename()}.getParameters: parameters of mixed dtypes "
                                f"({first.dtype} and {a.dtype}); call .float() or .double() first")
            key = data_key(a)
            if key not in offsets:
                offsets[key] = total
                total += a.size
        flat = xp.empty(total, dtype=first.dtype)
        flat_grad = xp.empty(total, dtype=first.dtype)
        views = {}
        for m, p, g in slots:
            a, ga = getattr(m, p), getattr(m, g)
            key = data_key(a)
            if key not in views:
                off = offsets[key]
                pv = flat[off:off + a.size].reshape(a.shape)
                gv = flat_grad[off:off + a.size].reshape(a.shape)
                pv[...] = a
                gv[...] = ga
                views[key] = (pv, gv)
            setattr(m, p, views[key][0])
            setattr(m, g, views[key][1])
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

        Integer arrays (index caches) keep their dtype. Shared arrays stay shared.
        """
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
