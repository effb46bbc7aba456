"""The Jacobian tester: compare a module's hand-written backward with finite differences.

For a module ``y = f(x)`` with ``n`` input and ``m`` output elements, two
``n x m`` matrices are built:

* the *backprop* Jacobian, column ``k`` = ``gradInput`` (or a parameter
  gradient) returned by ``backward`` for ``gradOutput = e_k`` (one-hot);
* the *finite-difference* Jacobian, row ``i`` =
  ``(f(x + h e_i) - f(x - h e_i)) / (2 h)`` (central differences, error O(h^2)).

The functions return ``max |J_backprop - J_fd|``. Everything runs in float64:
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

from .backend import get_xp, host_xp, is_array, is_cupy, to_numpy
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


def _fd_rows(module, input, arrays, h):
    """Rows of the finite-difference Jacobian w.r.t. the elements of ``arrays``."""
    rows = []
    for a, i in _elements(arrays):
        flat = a.reshape(-1)
        orig = float(flat[i])
        flat[i] = orig + h
        plus = flatten(module.forward(input))
        flat[i] = orig - h
        minus = flatten(module.forward(input))
        flat[i] = orig
        rows.append((plus - minus) / (2 * h))
    return host_xp.array(rows)


def _backprop_columns(module, input, read):
    """Columns of the backprop Jacobian: ``read()`` after backward with each one-hot gradOutput."""
    out = module.forward(input)
    nout = flatten(out).size
    cols = []
    for k in range(nout):
        module.forward(input)
        module.zeroGradParameters()
        module.backward(input, _one_hot_like(out, k))
        cols.append(read())
    return host_xp.array(cols).T


def _check_contiguous(arrays, what):
    # a non-contiguous array reshapes to a copy: perturbing the copy would not reach the module
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError(f"jacobian: {what} must be C-contiguous to be perturbed in place")


def testJacobian(module, input, perturbation=1e-6):
    """Max error of ``d output / d input`` (``updateGradInput``) against central differences."""
    leaves = _leaves(input)
    _require_float64(leaves, "input")
    _check_contiguous(leaves, "input")
    jb = _backprop_columns(module, input, lambda: flatten(module.gradInput))
    jf = _fd_rows(module, input, leaves, perturbation)
    return float(host_xp.abs(jb - jf).max()) if jf.size else 0.0


def testJacobianParameters(module, input, param, dparam, perturbation=1e-6):
    """Max error of ``d output / d param`` (``accGradParameters``) against central differences.

    ``param`` and ``dparam`` are a parameter array of the module and its gradient
    (or two lists of them).
    """
    params = _leaves(param)
    _require_float64(params, "param")
    _check_contiguous(params, "param")
    jb = _backprop_columns(module, input, lambda: flatten(dparam))
    jf = _fd_rows(module, input, params, perturbation)
    return float(host_xp.abs(jb - jf).max()) if jf.size else 0.0


def testJacobianUpdateParameters(module, input, param, perturbation=1e-6):
    """Like ``testJacobianParameters`` but reads the gradient through ``updateParameters``.

    For each one-hot gradOutput it calls ``updateParameters(1)`` and takes
    ``param_before - param_after`` as the Jacobian column, then restores ``param``:
    this checks that the update uses the accumulated gradient with the right sign.
    """
    params = _leaves(param)
    _require_float64(params, "param")
    every = module.parameters()[0]
    saved = [a.copy() for a in every]

    def read():
        before = flatten(params)
        module.updateParameters(1.0)
        after = flatten(params)
        for a, s in zip(every, saved):  # the update moved every parameter: undo it all
            a[...] = s
        return before - after

    jb = _backprop_columns(module, input, read)
    jf = _fd_rows(module, input, params, perturbation)
    return float(host_xp.abs(jb - jf).max()) if jf.size else 0.0


def testAll(module, input, perturbation=1e-6):
    """The largest of ``testJacobian`` and ``testJacobianParameters`` over every parameter.

    Returns a dict ``{'input': err, 'param0': err, ...}``; ``max(d.values())`` is the
    figure to compare with a tolerance.
    """
    errs = {"input": testJacobian(module, input, perturbation)}
    params, grads = module.parameters()
    for i, (p, g) in enumerate(zip(params, grads)):
        errs[f"param{i}"] = testJacobianParameters(module, input, p, g, perturbation)
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
