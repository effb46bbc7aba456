"""Input validation shared by all modules.

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong
shape or value) with a message that names the module, what was expected and
what came, so a user never has to decode a NumPy broadcast error.
"""
import math
import numbers

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


def check_int(module, value, what, minimum=1):
    """A constructor argument that must be an integer ``>= minimum``; returns it as ``int``."""
    who = _who(module)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {what} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{who}: {what} must be >= {minimum}, got {value}")
    return int(value)


def check_sizes(module, sizes, allow_infer=False):
    """Torch's ``...`` size arguments: ints, or one tuple/list of ints; returns a tuple.

    Every size must be >= 1; with ``allow_infer`` one of them may be -1 (Torch's View).
    """
    who = _who(module)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not sizes:
        raise ValueError(f"{who}: at least one size is needed")
    out = tuple(check_int(module, s, "each size", minimum=-math.inf) for s in sizes)
    inferred = out.count(-1) if allow_infer else 0
    if inferred > 1 or sum(n < 1 for n in out) > inferred:
        one = " (one of them may be -1)" if allow_infer else ""
        raise ValueError(f"{who}: sizes must be >= 1{one}, got {out}")
    return out


def check_shape(module, x, shape, what="gradOutput"):
    """``x`` must be a floating array of exactly ``shape`` (e.g. a gradOutput like the output)."""
    shape = tuple(shape)
    check_array(module, x, (len(shape),), what, layout=f"of shape {shape}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{_who(module)}: {what} must be of shape {shape}, got shape {tuple(x.shape)}")
    return x


def check_spatial(module, x, channels=None, what="input"):
    """``x`` must be (C, H, W) or (B, C, H, W), with C == ``channels`` when given.

    Returns the (B, C, H, W) view (B = 1 for a 3-D input) that spatial modules compute on.
    """
    layout = "(C, H, W) or (B, C, H, W)" + (f" with C={channels}" if channels is not None else "")
    check_array(module, x, (3, 4), what, layout=layout)
    x4 = x if x.ndim == 4 else x[None]
    if channels is not None:
        check_size(module, x4.shape[1], channels, f"the {what}'s channel count C (axis {x.ndim - 3})")
    return x4


def check_window_fits(module, x4, kH, kW, padH, padW):
    """A kH x kW window must fit in the padded image of a (B, C, H, W) input."""
    H, W = x4.shape[-2:]
    if H + 2 * padH < kH or W + 2 * padW < kW:
        raise ValueError(f"{_who(module)}: input image {H}x{W} (height x width; {H + 2 * padH}x"
                         f"{W + 2 * padW} after padding) is smaller than the {kH}x{kW} kernel")


def check_same_kind(module, a, b, what_a, what_b):
    """Two inputs of one module must be arrays of one library (NumPy or CuPy) and one dtype."""
    kind_a, kind_b = ((type(x).__module__.split(".")[0], x.dtype) for x in (a, b))
    if kind_a != kind_b:
        raise TypeError(f"{_who(module)}: {what_b} must be a {kind_a[0]} {kind_a[1]} array like "
                        f"{what_a}, got a {kind_b[0]} {kind_b[1]} array")


def check_array_list(module, xs, what="input", min_length=1, ndims=range(0, 33)):
    """``xs`` must be a list of at least ``min_length`` floating arrays of one dtype on one device.

    Returns the namespace (``numpy`` or ``cupy``) of the arrays.
    """
    check_table(module, xs, what=what)
    if len(xs) < min_length:
        raise ValueError(f"{_who(module)}: {what} must be a list of at least {min_length} arrays, "
                         f"got {len(xs)}")
    for i, x in enumerate(xs):
        check_array(module, x, ndims, what=f"{what}[{i}]")
        check_same_kind(module, xs[0], x, f"{what}[0]", f"{what}[{i}]")
    return get_xp(*xs)


def check_same_structure(module, template, t, what_template="input", what="gradOutput"):
    """``t`` must nest like ``template`` (arrays or lists of them), shape for shape."""
    who = _who(module)
    if is_array(template):
        if not is_array(t):
            raise TypeError(f"{who}: {what} must be an array of shape {tuple(template.shape)} "
                            f"like {what_template}, got {type(t).__name__}")
        check_same_shape(module, template, t, what_template, what)
    elif isinstance(template, (list, tuple)):
        if not isinstance(t, (list, tuple)):
            raise TypeError(f"{who}: {what} must be a list of {len(template)} entries "
                            f"like {what_template}, got {type(t).__name__}")
        if len(t) != len(template):
            raise ValueError(f"{who}: {what} must be a list of {len(template)} entries "
                             f"like {what_template}, got {len(t)}")
        for i, (a, b) in enumerate(zip(template, t)):
            check_same_structure(module, a, b, f"{what_template}[{i}]", f"{what}[{i}]")
    else:
        raise TypeError(f"{who}: {what_template} must be an array or a (nested) list of arrays, "
                        f"got {type(template).__name__}")


def check_same_device(module, a, b, what_a="input", what_b="target"):
    """Two arrays of any dtypes must both be NumPy or both CuPy arrays."""
    try:
        get_xp(a, b)
    except TypeError:
        raise TypeError(f"{_who(module)}: {what_a} and {what_b} must both be NumPy or both CuPy "
                        f"arrays; move them to one device") from None


#: ``ndims`` for ``check_array`` where any rank will do (NumPy allows up to 64 axes)
ANY_RANK = range(65)


def check_nonempty_batch(who, batch, input):
    """A batch of B = 0 is an error naming ``who`` (for modules whose result needs one item)."""
    if batch.shape[0] == 0:
        raise ValueError(f"{_who(who)}: the input batch is empty (B = 0, shape {tuple(input.shape)})")
