"""The Jacobian tester: compare a module's hand-written backward with finite differences.

For a module ``y = f(x)`` with ``n`` input and ``m`` output elements, two
``n x m`` matrices are built:

* the *backprop* Jacobian, column ``k`` = ``gradInput`` (or a parameter
  gradient) returned by ``backward`` for ``gradOutput = e_k`` (one-hot);
* the *finite-difference* Jacobian, row ``i`` =
  ``(f(x + h e_i) - f(x - h e_i)) / (2 h)`` (central differences, error O(h^2)).

The functions return ``max |J_backprop - J_fd|`` over both backprop paths
(``backward``, and ``updateGradInput`` + ``accGradParameters``), comparing with the
nearer one-sided difference where a kink lies within ``h`` of the point (see
``_max_error``). Everything runs in float64:
call ``module.double()`` and pass float64 inputs; with ``h = 1e-6`` a correct
module gives errors around 1e-9, a wrong one errors of order 1.

Inputs and outputs may be arrays or (nested) lists of arrays (Torch tables).
The module must be deterministic and ``backward`` callable repeatedly after one
``forward`` (every nnlite module is). Use small inputs: the cost is
``n + m`` forward/backward calls.

Usage::

    import nnlite as nn
    m = nn.Linear(3, 2).double()
    x = numpy.random.rand(4, 3)
    assert nn.jacobian.testJacobian(m, x) < 1e-6
    assert nn.jacobian.testJacobianParameters(m, x, m.weight, m.gradWeight) < 1e-6
"""
import os
import tempfile

from .backend import data_key, get_xp, host_xp, is_array, is_cupy, to_numpy
from .module import grad_name
from .tables import rebuild_table, table_leaves


def _leaves(t):
    """The arrays of a nested list, in order."""
    if not (is_array(t) or isinstance(t, (list, tuple))):
        raise TypeError(f"jacobian: expected an array or a list of arrays, got {type(t).__name__}")
    return table_leaves(t)


def flatten(t):
    """A float64 host vector holding every element of an array or nested list."""
    leaves = _leaves(t)
    if not leaves:
        return host_xp.zeros(0)
    return host_xp.concatenate([to_numpy(a).astype(host_xp.float64).ravel() for a in leaves])


def _one_hot_like(t, k):
    """A structure like ``t`` (zeros) with element ``k`` of the flattened whole set to 1."""
    if is_array(t):
        xp = get_xp(t)
        z = xp.zeros(t.shape, dtype=t.dtype)
        if 0 <= k < t.size:
            z.reshape(-1)[k] = 1
        return z
    out, offset = [], 0
    for x in t:
        n = sum(a.size for a in _leaves(x))
        out.append(_one_hot_like(x, k - offset))
        offset += n
    return out


def _require_float64(arrays, what):
    for a in arrays:
        if a.dtype.kind == "f" and a.dtype.itemsize != 8:
            raise TypeError(f"jacobian: {what} must be float64 for finite differences, got "
                            f"{a.dtype}; call module.double() and cast the input")


def _elements(arrays):
    """Yield (array, flat index) for every element of a list of arrays."""
    for a in arrays:
        for i in range(a.size):
            yield a, i


#: a difference between the right and the left difference quotient above this is a kink
#: (smooth functions differ by about ``h f''``, 1e-6 times their curvature)
KINK = 1e-3


def _fd_rows(module, input, arrays, h):
    """The finite-difference Jacobian w.r.t. the elements of ``arrays``, as three matrices
    (rows = elements): central, right ``(f(x + h) - f(x)) / h`` and left ``(f(x) - f(x - h)) / h``
    differences."""
    center = flatten(module.forward(input))
    central, right, left = [], [], []
    for a, i in _elements(arrays):
        flat = a.reshape(-1)
        orig = float(flat[i])
        flat[i] = orig + h
        plus = flatten(module.forward(input))
        flat[i] = orig - h
        minus = flatten(module.forward(input))
        flat[i] = orig
        central.append((plus - minus) / (2 * h))
        right.append((plus - center) / h)
        left.append((center - minus) / h)
    return tuple(host_xp.array(rows).reshape(len(rows), center.size) for rows in (central, right, left))


def _backprop_columns(module, input, read):
    """The backprop Jacobian twice, through ``backward`` and through the split path
    (``updateGradInput`` then ``accGradParameters``): ``read()`` after each one-hot gradOutput."""
    out = module.forward(input)
    nout = flatten(out).size
    whole, split = [], []
    for k in range(nout):
        g = _one_hot_like(out, k)
        module.forward(input)
        module.zeroGradParameters()
        module.backward(input, g)
        whole.append(read())
        module.forward(input)
        module.zeroGradParameters()
        module.updateGradInput(input, g)
        module.accGradParameters(input, g)
        split.append(read())
    return tuple(host_xp.array(cols).reshape(nout, -1).T for cols in (whole, split))


def _max_error(jbs, fd):
    """Max |J_backprop - J_fd| over both backprop paths, kink-aware.

    Where the right and left differences disagree (a kink within ``h`` of the point:
    ReLU at 0, a tie in max pooling, the bilinear sampler on the grid), the central
    difference averages two slopes and a correct module would be off by half the
    jump; there the backprop value is compared with the nearer one-sided difference,
    which is the slope of the piece the point lies on. A wrong gradient matches neither.
    """
    central, right, left = fd
    if not central.size:
        return 0.0
    kink = host_xp.abs(right - left) > KINK
    worst = 0.0
    for jb in jbs:
        err = host_xp.abs(jb - central)
        if kink.any():
            err = host_xp.where(kink, host_xp.minimum(host_xp.abs(jb - right), host_xp.abs(jb - left)), err)
        worst = max(worst, float(err.max()))
    return worst


def _check_contiguous(arrays, what):
    # a non-contiguous array reshapes to a copy: perturbing the copy would not reach the module
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError(f"jacobian: {what} must be C-contiguous to be perturbed in place")


def _held_arrays(module):
    """Every array the module tree holds in its attributes (one per memory identity)."""
    held = {}

    def visit(v, depth):
        if is_array(v):
            held[data_key(v)] = v
        elif isinstance(v, (list, tuple)) and depth < 3:
            for x in v:
                visit(x, depth + 1)
        elif isinstance(v, dict) and depth < 3:
            for x in v.values():
                visit(x, depth + 1)

    for m in module.modules_tree():
        for v in vars(m).values():
            visit(v, 0)
    return list(held.values())


def _check_held(module, arrays, what):
    """Every array must be (a view into) one the module holds now: a reference taken before
    ``getParameters()`` (or ``double()``) is stale, and perturbing it would test nothing."""
    held = _held_arrays(module)
    keys = {data_key(h) for h in held}
    for a in arrays:
        xp = get_xp(a)
        if data_key(a) not in keys and not any(get_xp(h) is xp and xp.may_share_memory(a, h) for h in held):
            raise ValueError(f"jacobian: a {what} array {tuple(a.shape)} is not held by "
                             f"{module.typename()} (a stale reference, taken before getParameters() "
                             f"or a type change?); take the arrays from module.parameters() now")


def _fill_uniform(leaves, minval, maxval):
    """Torch's testJacobian: the input is re-drawn in place from U(minval, maxval)."""
    rng = host_xp.random.default_rng()
    for a in leaves:
        a[...] = get_xp(a).asarray(rng.uniform(minval, maxval, a.shape))


def testJacobian(module, input, minval=None, maxval=None, perturbation=1e-6):
    """Max error of ``d output / d input`` against central differences (kink-aware: see
    ``_max_error``), through ``backward`` and through ``updateGradInput`` alike.

    Torch's signature. With ``minval``/``maxval`` the input is first filled in place with
    U(minval, maxval) as Torch did (Torch's defaults were -2, 2); without them the input
    is used as given.
    """
    leaves = _leaves(input)
    _require_float64(leaves, "input")
    _check_contiguous(leaves, "input")
    if minval is not None or maxval is not None:
        _fill_uniform(leaves, -2.0 if minval is None else minval, 2.0 if maxval is None else maxval)
    jbs = _backprop_columns(module, input, lambda: flatten(module.gradInput))
    return _max_error(jbs, _fd_rows(module, input, leaves, perturbation))


def testJacobianParameters(module, input, param, dparam, minval=None, maxval=None, perturbation=1e-6):
    """Max error of ``d output / d param`` (``accGradParameters``, after ``backward`` and
    after the split path) against central differences, kink-aware.

    ``param`` and ``dparam`` are a parameter array of the module and its gradient (or two
    lists of them); both must be held by the module now (a stale reference is an error).
    ``minval``/``maxval`` re-draw the input as in ``testJacobian``.
    """
    params = _leaves(param)
    _require_float64(params, "param")
    _check_contiguous(params, "param")
    _check_held(module, params, "param")
    _check_held(module, _leaves(dparam), "gradient")
    if minval is not None or maxval is not None:
        _fill_uniform(_leaves(input), -2.0 if minval is None else minval, 2.0 if maxval is None else maxval)
    jbs = _backprop_columns(module, input, lambda: flatten(dparam))
    return _max_error(jbs, _fd_rows(module, input, params, perturbation))


def testJacobianUpdateParameters(module, input, param, perturbation=1e-6):
    """Like ``testJacobianParameters`` but reads the gradient through ``updateParameters``.

    For each one-hot gradOutput it calls ``updateParameters(1)`` and takes
    ``param_before - param_after`` as the Jacobian column, then restores ``param``:
    this checks that the update uses the accumulated gradient with the right sign.
    """
    params = _leaves(param)
    _require_float64(params, "param")
    _check_held(module, params, "param")
    every = module.parameters()[0]
    saved = [a.copy() for a in every]

    def read():
        before = flatten(params)
        module.updateParameters(1.0)
        after = flatten(params)
        for a, s in zip(every, saved):  # the update moved every parameter: undo it all
            a[...] = s
        return before - after

    jbs = _backprop_columns(module, input, read)
    return _max_error(jbs, _fd_rows(module, input, params, perturbation))


def parameter_names(module):
    """``{name: (param, grad)}`` for every distinct parameter of the tree, named by where it
    sits: ``'weight'`` on the module itself, ``'(1)(0) nn.Linear.bias'`` in a container's
    child 1, child 0 (each shared array under its first name)."""
    names, seen = {}, set()

    def visit(m, path):
        for n in m.parameter_names:
            a = getattr(m, n, None)
            if is_array(a) and data_key(a) not in seen:
                seen.add(data_key(a))
                names[f"{path} {m.typename()}.{n}" if path else n] = (a, getattr(m, grad_name(n)))
        for i, c in enumerate(m.children()):
            visit(c, f"{path}({i})")

    visit(module, "")
    return names


def testAll(module, input, minval=None, maxval=None, perturbation=1e-6):
    """``testJacobian`` and ``testJacobianParameters`` for every parameter.

    Returns a dict ``{'input': err, 'weight': err, '(0) nn.Linear.bias': err, ...}`` (names
    from ``parameter_names``); ``max(d.values())`` is the figure to compare with a tolerance.
    """
    errs = {"input": testJacobian(module, input, minval, maxval, perturbation)}
    for name, (p, g) in parameter_names(module).items():
        errs[name] = testJacobianParameters(module, input, p, g, perturbation=perturbation)
    return errs


def testIO(module, input, gradOutput=None):
    """Save the module to HDF5, load it back, and compare forward and backward results.

    Returns the max absolute difference of ``output`` and ``gradInput`` between
    the original and the reloaded module (0 for a faithful round trip).
    """
    from .serialization import load, save

    out = module.forward(input)
    if gradOutput is None:
        rng = host_xp.random.default_rng(0)
        gradOutput = [get_xp(a).asarray(rng.standard_normal(a.shape).astype(a.dtype))
                      for a in _leaves(out)]
        gradOutput = rebuild_table(out, gradOutput)
    ref_out = flatten(out)
    ref_gi = flatten(module.backward(input, gradOutput))
    fd, path = tempfile.mkstemp(suffix=".h5")
    os.close(fd)
    try:
        save(path, module)
        other = load(path)
    finally:
        os.remove(path)
    if is_cupy(_leaves(input)[0]):
        other.cuda()
    new_out = flatten(other.forward(input))
    new_gi = flatten(other.backward(input, gradOutput))
    return float(max(host_xp.abs(ref_out - new_out).max(initial=0),
                     host_xp.abs(ref_gi - new_gi).max(initial=0)))
