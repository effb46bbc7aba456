"""Helpers shared by the tests."""
import numpy

from nnlite import jacobian

TOL = 1e-6


def on(xp, module):
    """The module in float64 on the backend of ``xp`` (for gradient checks)."""
    module.double()
    return module.cuda() if xp is not numpy else module


def rand(xp, rng, *shape, low=-1.0, high=1.0):
    """A float64 array of U(low, high) values on the backend of ``xp``."""
    return xp.asarray(rng.uniform(low, high, size=shape))


def assert_jacobian(module, input, tol=TOL):
    """The input Jacobian and every parameter Jacobian agree with finite differences."""
    errs = jacobian.testAll(module, input)
    worst = max(errs.values())
    assert worst < tol, f"{module.typename()} Jacobian errors {errs}"
    return errs


def host(a):
    """A NumPy copy of a NumPy or CuPy array (or list of them)."""
    if isinstance(a, (list, tuple)):
        return [host(x) for x in a]
    return a.get() if hasattr(a, "get") and not isinstance(a, numpy.ndarray) else numpy.asarray(a)
