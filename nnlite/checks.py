"""Input validation shared by all modules.

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong
shape or value) with a message that names the module, what was expected and
what came, so a user never has to decode a NumPy broadcast error.
"""
from .backend import get_xp, is_array


def _who(module):
    return module if isinstance(module, str) else module.typename()


def check_array(module, x, ndims, what="input", layout=None):
    """``x`` must be a floating NumPy/CuPy array with ``x.ndim`` in ``ndims``.

    ``layout`` describes the expected axes for the message, e.g. ``"(C, H, W) or (B, C, H, W)"``.
    """
    who = _who(module)
    if not is_array(x):
        raise TypeError(f"{who}: {what} must be a NumPy or CuPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{who}: {what} must be floating point (float32 or float64), got {x.dtype}")
    if x.ndim not in ndims:
        want = layout or " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{who}: {what} must be {want}, got shape {tuple(x.shape)}")
    return x


def check_same_shape(module, a, b, what_a="input", what_b="gradOutput"):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{_who(module)}: {what_b} must have the shape of {what_a} "
                         f"{tuple(a.shape)}, got {tuple(b.shape)}")


def check_matches_params(module, x, param, what="input"):
    """The input must live where the parameters live and have their dtype."""
    who = _who(module)
    try:
        get_xp(x, param)
    except TypeError:
        raise TypeError(f"{who}: {what} is a {type(x).__module__.split('.')[0]} array but the "
                        f"parameters are {type(param).__module__.split('.')[0]} arrays; "
                        f"call module.cuda() or module.cpu()") from None
    if x.dtype != param.dtype:
        raise TypeError(f"{who}: {what} has dtype {x.dtype} but the parameters are {param.dtype}; "
                        f"call module.double()/module.float() or cast the input")


def check_size(module, value, expected, what):
    if value != expected:
        raise ValueError(f"{_who(module)}: {what} must be {expected}, got {value}")


def check_table(module, x, length=None, what="input"):
    """``x`` must be a list (Torch table), optionally of a given length."""
    who = _who(module)
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{who}: {what} must be a list of arrays (a table), got {type(x).__name__}")
    if length is not None and len(x) != length:
        raise ValueError(f"{who}: {what} must be a list of {length} arrays, got {len(x)}")
    return x


def check_finite(module, x, what="input"):
    xp = get_xp(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{_who(module)}: {what} contains NaN or Inf")
