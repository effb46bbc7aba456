"""Read Torch7 ``.t7`` files (``torch.save``'s binary format) into nnlite, with ``torchfile``.

::

    model = nn.load_t7('model.t7')      # an nn module with an nnlite twin -> that nnlite module
    data = nn.load_t7('data.t7')        # tensors -> NumPy arrays, tables -> lists or dicts

What comes back:

* a tensor is a NumPy array of its dtype (a DoubleTensor float64, a FloatTensor float32);
* a table whose keys are exactly 1..n is a list (Lua's order); any other table a dict (Lua
  strings as ``str``, numbers as ``int``/``float``); a string a ``str``;
* an nn module whose class has an nnlite twin (``TWINS``) is that nnlite module, with its
  weights, biases and hyper-parameters (sizes, strides, padding, ceil mode, ...) taken
  from the file and zeroed gradients; containers are converted child by child. nngraph's
  ``nn.gModule`` becomes a ``GModule`` (the same graph of converted modules). rnn/viorik's
  ``nn.ConvLSTM``, which kept one gate per module (``inputGate``, ``forgetGate``,
  ``cellGate``, ``outputGate``, each ``{NarrowTable, ParallelTable(input conv, hidden conv),
  CAddTable, Sigmoid|Tanh}``), becomes an ``nnlite.ConvLSTM`` whose fused gate blocks are
  stacked in nnlite's order (input, forget, cell candidate, output); its ``UntiedConvLSTM``
  adds the first step's ``inputGateUntied``, ``cellGateUntied``, ``outputGateUntied``
  (``{SpatialConvolution, Sigmoid|Tanh}``) as ``weightFirst``/``biasFirst``. rnn's
  ``Sequencer`` becomes an nnlite ``Sequencer`` of its module (a ``Recursor`` unwrapped), so
  viorik's demo model, ``Sequencer(Sequential(encoder, UntiedConvLSTM, decoder, Sigmoid))``,
  loads whole.

Any other Torch class (an nn module without a twin, a custom ``torch.class``) is a
``ValueError`` that names it and where it sits; so is a file ``torchfile`` cannot read.
"""
from .backend import host_xp, is_array
from .containers import ConcatTable, OnePassContainer, ParallelTable, Sequential, child_call
from .module import grad_name
from .tables import map_table


# ------------------------------------------------------------------ plain values
def _is_torch_object(v):
    return type(v).__name__ == "TorchObject"


def _fields(obj):
    """The fields of a TorchObject (or a Lua table read as a dict) with ``str`` keys."""
    d = obj._obj if _is_torch_object(obj) else obj
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _typename(obj):
    name = obj._typename
    return name.decode() if isinstance(name, bytes) else name


def _table(d, where, convert):
    """A Lua table: a list when its keys are exactly 1..n, else a dict."""
    keys = list(d.keys())
    if keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys) \
            and sorted(keys) == list(range(1, len(keys) + 1)):
        return [convert(d[k], f"{where}[{k - 1}]") for k in sorted(keys)]
    return {k: convert(v, f"{where}[{k!r}]") for k, v in d.items()}


class _Reader:
    """Converts what ``torchfile`` read, remembering converted objects (shared references
    stay shared, and a table that holds itself is an error instead of a RecursionError)."""

    def __init__(self, path):
        self.path = path
        self.done = {}
        self.busy = set()

    def convert(self, v, where):
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if is_array(v):
            return v
        key = id(v)
        if key in self.done:
            return self.done[key]
        if key in self.busy:
            raise ValueError(f"nnlite.load_t7: {self.path}: {where} contains itself; nnlite "
                             f"cannot build a self-referencing table or object")
        self.busy.add(key)
        try:
            if _is_torch_object(v):
                out = self.module(v, where)
            elif isinstance(v, dict):
                out = _table(v, where, self.convert)
            elif isinstance(v, (list, tuple)):
                out = [self.convert(x, f"{where}[{i}]") for i, x in enumerate(v)]
            else:
                raise ValueError(f"nnlite.load_t7: {self.path}: {where} is a {type(v).__name__}, "
                                 f"which nnlite does not read")
        finally:
            self.busy.discard(key)
        self.done[key] = out
        return out

    # ------------------------------------------------------------------ modules
    def module(self, obj, where):
        name = _typename(obj)
        short = name.split(".", 1)[-1]
        make = TWINS.get(short) if name.split(".", 1)[0] in ("nn", "cudnn") else None
        if make is None:
            raise ValueError(f"nnlite.load_t7: {self.path}: {where} is a {name}, which has no "
                             f"nnlite twin (known: {', '.join(sorted(TWINS))})")
        fields = _fields(obj)
        try:
            return make(self, fields, f"{where} ({name})")
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"nnlite.load_t7: {self.path}: {where} ({name}) lacks or has a "
                             f"malformed field ({e!r})") from None

    def children(self, fields, where):
        mods = self.convert(fields.get("modules", []), f"{where}.modules")
        return mods if isinstance(mods, list) else [mods[k] for k in sorted(mods)]


def _set_params(m, fields, *names):
    """Copy the named arrays of a Torch module into ``m`` (same shapes), gradients zeroed."""
    for n in names:
        a = fields.get(n)
        if a is None or getattr(a, "size", 0) == 0:
            setattr(m, n, None)
            setattr(m, grad_name(n), None)
            continue
        target = getattr(m, n)
        a = a.reshape(target.shape).copy()
        setattr(m, n, a)
        setattr(m, grad_name(n), host_xp.zeros_like(a))
    return m


def _linear(reader, f, where):
    from .linear import Linear
    out, inp = f["weight"].shape
    return _set_params(Linear(inp, out), f, "weight", "bias")


def _conv(reader, f, where):
    from .conv import SpatialConvolution
    m = SpatialConvolution(f["nInputPlane"], f["nOutputPlane"], f["kW"], f["kH"], f.get("dW", 1),
                           f.get("dH", 1), f.get("padW", f.get("padding", 0)),
                           f.get("padH", f.get("padding", 0)))
    return _set_params(m, f, "weight", "bias")  # a 2-D (nOut, nIn kH kW) weight reshapes too


def _max_pool(reader, f, where):
    from .pooling import SpatialMaxPooling
    m = SpatialMaxPooling(f["kW"], f["kH"], f["dW"], f["dH"], f.get("padW", 0), f.get("padH", 0))
    return m.ceil() if f.get("ceil_mode") else m


def _plain(cls_name):
    """A twin without parameters or hyper-parameters."""
    def make(reader, f, where):
        import nnlite
        return getattr(nnlite, cls_name)()
    return make


def _container(cls):
    def make(reader, f, where):
        return cls(*reader.children(f, where))
    return make


def _gate_weights(gate, where):
    """(input weight, input bias, hidden weight) of one viorik gate ``{NarrowTable,
    ParallelTable(input conv, hidden conv), CAddTable, nonlinearity}``."""
    para = _fields(gate)["modules"][2]
    conv_x, conv_h = (_fields(c) for c in (_fields(para)["modules"][k] for k in (1, 2)))
    return conv_x["weight"], conv_x["bias"], conv_h["weight"]


def _fuse(m, name, parts):
    """``m.name`` = the gate blocks ``parts`` stacked (zeroed gradient alongside)."""
    a = host_xp.concatenate(parts)
    setattr(m, name, a)
    setattr(m, grad_name(name), host_xp.zeros_like(a))


def _convlstm(reader, f, where):
    from .recurrent import ConvLSTM, UntiedConvLSTM
    inp, out, kc, km = f["inputSize"], f["outputSize"], f["kc"], f["km"]
    untied = "untiedModule" in f or "inputGateUntied" in f
    m = (UntiedConvLSTM if untied else ConvLSTM)(inp, out, f.get("rho", 9999), kc, km, f.get("stride", 1))
    # viorik's gates, in nnlite's block order (input, forget, cell candidate, output)
    gates = [_gate_weights(f[g], where) for g in ("inputGate", "forgetGate", "cellGate", "outputGate")]
    _fuse(m, "weight", [g[0].reshape(out, inp, kc, kc) for g in gates])
    _fuse(m, "bias", [g[1].reshape(out) for g in gates])
    _fuse(m, "weightHidden", [g[2].reshape(out, out, km, km) for g in gates])
    if untied:  # the first step's gates {SpatialConvolution, Sigmoid|Tanh}: input, cell, output
        convs = [_fields(_fields(f[g])["modules"][1])
                 for g in ("inputGateUntied", "cellGateUntied", "outputGateUntied")]
        _fuse(m, "weightFirst", [c["weight"].reshape(out, inp, kc, kc) for c in convs])
        _fuse(m, "biasFirst", [c["bias"].reshape(out) for c in convs])
    return m


def _upsampling(reader, f, where):
    from .pooling import SpatialUpSamplingNearest
    return SpatialUpSamplingNearest(f["scale_factor"])


def _sequencer(reader, f, where):
    """rnn's Sequencer: its module (a Recursor around a plain module is unwrapped)."""
    from .recurrent import Sequencer
    return Sequencer(reader.convert(f["module"], f"{where}.module"))


def _recursor(reader, f, where):
    """rnn's Recursor (the per-step clone keeper of a Sequencer): the module it steps."""
    inner = f.get("module", f.get("recurrentModule"))
    return reader.convert(inner, f"{where}.module")


def _gmodule(reader, f, where):
    """nngraph's gModule: its forward nodes (already in topological order) become ``GModule``
    nodes; each node's inputs come from its parents in ``mapindex`` order."""
    fnodes = f["forwardnodes"]
    fnodes = fnodes if isinstance(fnodes, list) else [fnodes[k] for k in sorted(fnodes)]
    index = {}
    nodes, modules = [], []
    for k, node in enumerate(fnodes):
        data = _fields(node)["data"]
        d = _fields(data)
        index[id(data)] = k
        mapindex = d.get("mapindex", {})
        items = mapindex.items() if hasattr(mapindex, "items") else enumerate(mapindex, 1)
        parents = []
        for pos, parent in sorted((p, v) for p, v in items if isinstance(p, int)):
            if id(parent) not in index:
                raise ValueError(f"nnlite.load_t7: {reader.path}: {where}: node {k} reads a node "
                                 f"that comes later (not in topological order)")
            parents.append(index[id(parent)])
        if "module" in d:
            modules.append(reader.convert(d["module"], f"{where}.node[{k}].module"))
            nodes.append(["module", parents, len(modules) - 1])
        elif "selectindex" in d:
            nodes.append(["select", parents, int(d["selectindex"]) - 1])
        elif not parents:
            nodes.append(["input", [], None])
        else:
            nodes.append(["pass", parents, None])
    return GModule(nodes, modules)


#: Torch class name (after ``nn.`` or ``cudnn.``) -> converter to the nnlite twin
TWINS = {
    "Linear": _linear,
    "SpatialConvolution": _conv,
    "SpatialConvolutionMM": _conv,
    "SpatialMaxPooling": _max_pool,
    "Tanh": _plain("Tanh"),
    "Sigmoid": _plain("Sigmoid"),
    "ReLU": _plain("ReLU"),
    "Identity": _plain("Identity"),
    "CAddTable": _plain("CAddTable"),
    "CMulTable": _plain("CMulTable"),
    "Sequential": _container(Sequential),
    "ConcatTable": _container(ConcatTable),
    "ParallelTable": _container(ParallelTable),
    "ConvLSTM": _convlstm,
    "UntiedConvLSTM": _convlstm,
    "SpatialUpSamplingNearest": _upsampling,
    "Sequencer": _sequencer,
    "Recursor": _recursor,
    "gModule": _gmodule,
}


def load_t7(path, **torchfile_options):
    """The object of the Torch7 file ``path`` converted as the module doc says.

    ``torchfile_options`` go to ``torchfile.load`` (e.g. ``force_8bytes_long=True`` for
    files written on Windows). A file torchfile cannot parse is a ``ValueError`` naming it.
    """
    import torchfile

    torchfile_options.setdefault("utf8_decode_strings", True)
    try:
        raw = torchfile.load(path, **torchfile_options)
    except FileNotFoundError:
        raise
    except Exception as e:  # torchfile raises whatever its parser meets (struct, Unicode, T7ReaderException)
        raise ValueError(f"nnlite.load_t7: {path} is not a readable Torch7 file ({type(e).__name__}: "
                         f"{e})") from e
    return _Reader(path).convert(raw, "obj")


# ------------------------------------------------------------------------ GModule
class GModule(OnePassContainer):
    """``GModule(nodes, modules)``: nngraph's ``gModule``, a graph of modules, as read from a
    Torch7 file.

    ``nodes`` is a list in topological order of ``[kind, parents, arg]`` (parents: indices of
    earlier nodes): ``'input'`` (the graph's input), ``'module'`` (child ``arg`` applied to its
    input), ``'select'`` (entry ``arg`` of a table), ``'pass'`` (its input); the last node is
    the output. A node's input is its parent's output, or the table of its parents' outputs
    in order when it has several.

    Backward visits the nodes in reverse: a node's gradOutput is the sum of what its
    consumers sent back (a table entry for ``'select'``, zeros where nothing came); a
    module node sends its child's gradInput to its parents (entry j to parent j when it has
    several), and the input node's gradient is ``gradInput``.
    """
    _transient = OnePassContainer._transient + ("_values",)

    def __init__(self, nodes, modules):
        super().__init__(*modules)
        self.nodes = [[kind, list(parents), arg] for kind, parents, arg in nodes]
        self._values = None

    def _node_input(self, values, parents):
        return values[parents[0]] if len(parents) == 1 else [values[p] for p in parents]

    def updateOutput(self, input):
        values = []
        for kind, parents, arg in self.nodes:
            if kind == "input":
                values.append(input)
                continue
            x = self._node_input(values, parents)
            if kind == "module":
                m = self.modules[arg]
                values.append(child_call(self, arg, m, m.updateOutput, x))
            elif kind == "select":
                values.append(x[arg])
            else:
                values.append(x)
        self._values = values
        self.output = values[-1]
        return self.output

    def _backward_pass(self, input, gradOutput, step):
        values = self._values
        if values is None:
            raise RuntimeError(f"{self.typename()}: backward needs a forward first")
        grads = [None] * len(self.nodes)
        grads[-1] = gradOutput
        for k in range(len(self.nodes) - 1, -1, -1):
            kind, parents, arg = self.nodes[k]
            g = _complete(grads[k], values[k])
            if kind == "input":
                return g
            if kind == "select":
                p = parents[0]
                table = grads[p] if grads[p] is not None else [None] * len(values[p])
                table[arg] = g if table[arg] is None else _add(table[arg], g)
                grads[p] = table
                continue
            if kind == "module":
                m = self.modules[arg]
                g = child_call(self, arg, m, step, m, self._node_input(values, parents), g)
            sent = [g] if len(parents) == 1 else g
            for p, gp in zip(parents, sent):
                grads[p] = gp if grads[p] is None else _add(grads[p], gp)
        raise ValueError(f"{self.typename()}: the graph has no input node")


def _add(a, b):
    return map_table(lambda x, y: x + y, a, b)


def _complete(g, value):
    """A gradient shaped like ``value``: zeros where nothing came back (None)."""
    if g is None:
        return map_table(lambda v: v * 0, value)
    if isinstance(value, list):
        return [_complete(gi, vi) for gi, vi in zip(g, value)]
    return g
