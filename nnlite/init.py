"""Parameter initialisation.

All draws come from ``nnlite.manualSeed``'s host generator, so a seed fixes a
model's initial weights on the CPU and on the GPU alike; the values are written
in place into arrays of either kind.
"""
from .backend import get_xp, host_rng


def uniform_(a, low, high):
    """Fill ``a`` in place with U(low, high); returns ``a``."""
    xp = get_xp(a)
    a[...] = xp.asarray(host_rng().uniform(low, high, size=a.shape).astype(a.dtype))
    return a


def fans(weight):
    """``(fan_in, fan_out)`` of a weight ``(nOut, nIn, *kernel)`` or ``(nOut, nIn)``.

    ``fan_in = nIn * prod(kernel)``, ``fan_out = nOut * prod(kernel)`` (SPEC §2).
    """
    receptive = 1
    for k in weight.shape[2:]:
        receptive *= k
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def xavier_(weight, bias=None):
    """Xavier/Glorot: ``W ~ U(+-sqrt(6 / (fan_in + fan_out)))``, bias 0 (the paper's init)."""
    fan_in, fan_out = fans(weight)
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    uniform_(weight, -bound, bound)
    if bias is not None:
        bias.fill(0)
    return weight


def lstm_(weights, gate_bias, forget_slice, low=-0.08, high=0.08):
    """The paper's memory init: every weight ~ U(low, high), gate biases 0, forget-gate bias 1.

    ``forget_slice`` selects the forget-gate block of ``gate_bias``.
    """
    for w in weights:
        uniform_(w, low, high)
    gate_bias.fill(0)
    gate_bias[forget_slice] = 1
    return gate_bias


def xavier(module):
    """Apply ``xavier_`` to every module of the tree that has a ``weight`` of 2+ dims."""
    for m in module.modules_tree():
        w = getattr(m, "weight", None)
        if w is not None and getattr(w, "ndim", 0) >= 2:
            xavier_(w, getattr(m, "bias", None))
    return module


def reset_(stdv, default_bound, *arrays):
    """Torch's ``module:reset(stdv)`` for the given arrays, in place.

    With ``stdv`` the values are U(+-stdv sqrt(3)), whose standard deviation is
    ``stdv`` (Torch's rule); without it, U(+-default_bound). ``None`` entries (a
    removed bias) are skipped.
    """
    bound = default_bound if stdv is None else stdv * 3 ** 0.5
    for a in arrays:
        if a is not None:
            uniform_(a, -bound, bound)
