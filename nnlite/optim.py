"""Optimisers with Torch's closure interface (torch/optim), plus clipping and a schedule.

Each optimiser is a function ``x, [fx] = method(feval, x, config=None, state=None)``:

* ``feval(x)`` returns ``(fx, dfdx)``: the loss at ``x`` and its gradient, an array of
  ``x``'s shape, dtype and device (typically the flat vectors of ``module.getParameters()``);
* ``x`` is updated **in place** and returned with the list ``[fx]`` (``fx`` as ``feval``
  gave it, the loss *before* the update);
* ``config`` holds the hyper-parameters (Torch's key names; a missing or ``None`` key takes
  the default, as a Lua ``nil`` did); ``state`` holds what persists between calls (running
  averages, counters). As in Torch, when ``state`` is ``None`` the ``config`` dict doubles
  as the state, so ``rmsprop(feval, x, cfg)`` called repeatedly keeps its averages in ``cfg``.

``feval`` is called exactly once per call. Choices where Torch is not the model:

* weight decay is added to a new array (``dfdx + wd x``); Torch added it into ``dfdx`` in
  place, which silently changed the caller's gradient buffer;
* a state array on the wrong device or dtype (a checkpoint loaded by ``nnlite.load`` holds
  NumPy arrays) is moved to ``x``'s device and dtype once, and stored back;
* ``lbfgs``, ``cg`` and ``asgd`` return Torch's extra values too (the evaluation count,
  the averaged ``x``); ``lbfgs`` and ``cg`` call ``feval`` several times, as in Torch, and
  read scalars (dot products) back to the host each iteration.

The ``RMSprop``, ``SGD`` and ``Adam`` classes hold a config and a state, with
``step(feval, x)`` and ``state_dict()``/``load_state_dict(d)`` for checkpoints.
"""
import math
import numbers

from .backend import get_xp, host_rows, is_array, is_cupy, scratch, to_device
from .checks import ANY_RANK, check_array, check_int, check_matches_params, check_same_shape


RMSPROP_DEFAULTS = {"learningRate": 1e-2, "alpha": 0.99, "epsilon": 1e-8, "weightDecay": 0,
                    "initialMean": 0}
SGD_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "weightDecay": 0, "momentum": 0,
                "dampening": None, "nesterov": False, "learningRates": None, "weightDecays": None}
ADAM_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "beta1": 0.9, "beta2": 0.999,
                 "epsilon": 1e-8, "weightDecay": 0}


#: config keys that hold one value per element of x (Torch's per-parameter vectors)
_VECTORS = ("learningRates", "weightDecays")


def _per_element(who, key, v, x):
    """A per-parameter vector of ``config`` (None when absent), checked against ``x``."""
    if v is None:
        return None
    check_array(who, v, ANY_RANK, what=f"config['{key}']")
    check_same_shape(who, x, v, "x", f"config['{key}']")
    check_matches_params(who, v, x, what=f"config['{key}']")
    return v


def _hyper(who, config, defaults):
    """The hyper-parameters of ``config`` with ``defaults`` filled in (``None`` means missing)."""
    if not isinstance(config, dict):
        raise TypeError(f"{who}: config must be a dict, got {type(config).__name__}")
    values = {}
    for key, default in defaults.items():
        v = config.get(key)
        v = default if v is None else v
        if v is not None and not isinstance(v, numbers.Real) and not (key in _VECTORS and is_array(v)):
            raise TypeError(f"{who}: config['{key}'] must be a number, got {v!r}")
        values[key] = v
    return values


def _evaluate(who, opfunc, x, weightDecay):
    """Call ``opfunc(x)`` once; returns ``fx`` and the gradient with weight decay added."""
    check_array(who, x, ANY_RANK, what="x")
    result = opfunc(x)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"{who}: feval(x) must return (loss, gradient), got {type(result).__name__}")
    fx, dfdx = result
    what = "the gradient returned by feval"
    check_array(who, dfdx, ANY_RANK, what=what)
    check_same_shape(who, x, dfdx, "x", what)
    check_matches_params(who, dfdx, x, what=what)
    return fx, (dfdx + weightDecay * x if weightDecay else dfdx)


def _state_array(who, state, key, x, fill):
    """``state[key]`` on ``x``'s device with ``x``'s dtype (moved and stored back if needed);
    created filled with ``fill`` when the state has no such entry yet."""
    a = state.get(key)
    if a is None:
        a = state[key] = get_xp(x).full(x.shape, fill, dtype=x.dtype)
        return a
    if not is_array(a) or tuple(a.shape) != tuple(x.shape):
        raise ValueError(f"{who}: state['{key}'] must be an array of shape {tuple(x.shape)} "
                         f"like x, got {getattr(a, 'shape', type(a).__name__)}")
    if is_cupy(a) != is_cupy(x) or a.dtype != x.dtype:
        a = to_device(a, "cuda" if is_cupy(x) else "cpu").astype(x.dtype, copy=False)
        state[key] = a
    return a


def rmsprop(opfunc, x, config=None, state=None):
    """RMSprop (torch/optim rmsprop.lua), SPEC §1.

    With ``g = dfdx + weightDecay * x``::

        m = alpha * m + (1 - alpha) * g^2          (state['m'], starts at initialMean = 0)
        x = x - learningRate * g / (sqrt(m) + epsilon)

    Defaults: learningRate 1e-2, alpha 0.99, epsilon 1e-8, weightDecay 0, initialMean 0.

    Every step works in place in one reused buffer (``backend.scratch``): for a model of
    tens of millions of parameters, each fresh temporary of x's size is fresh memory from the
    kernel, and the six of a plain expression made this update a third of AE-fcLSTM's step.
    On the host, a large x is updated in one contiguous range per BLAS thread side by side
    (``backend.host_rows``): the update reads and writes memory and nothing else, and
    NumPy runs each pass on one core.
    """
    who = "optim.rmsprop"
    config = {} if config is None else config
    state = config if state is None else state
    h = _hyper(who, config, RMSPROP_DEFAULTS)
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    m = _state_array(who, state, "m", x, h["initialMean"])
    xp = get_xp(x)
    t = scratch(xp, x.size, x.dtype).reshape(x.shape)

    def update(rows):
        xi, gi, mi, ti = x[rows], g[rows], m[rows], t[rows]
        mi *= h["alpha"]
        xp.multiply(gi, gi, out=ti)
        ti *= 1 - h["alpha"]
        mi += ti
        xp.sqrt(mi, out=ti)
        ti += h["epsilon"]
        xp.divide(gi, ti, out=ti)
        ti *= h["learningRate"]
        xi -= ti

    host_rows(update, x)
    return x, [fx]


def sgd(opfunc, x, config=None, state=None):
    """Stochastic gradient descent (torch/optim sgd.lua).

    With ``g = dfdx + weightDecay * x`` and ``n = state['evalCounter']`` (calls so far)::

        buf = g                                     on the first call with momentum
        buf = momentum * buf + (1 - dampening) * g  afterwards      (state['dfdx'])
        d   = g + momentum * buf if nesterov else buf      (d = g without momentum)
        x   = x - learningRate / (1 + n * learningRateDecay) * d

    Defaults: learningRate 1e-3, learningRateDecay 0, weightDecay 0, momentum 0,
    dampening = momentum (Torch's default), nesterov False. Nesterov needs a momentum
    and ``dampening=0`` given explicitly, as in Torch. Torch's per-parameter vectors (arrays
    of x's shape): ``weightDecays`` (used when weightDecay is 0: ``g = dfdx + weightDecays * x``)
    and ``learningRates`` (the step becomes ``learningRate / (1 + n lrd) * learningRates * d``).
    """
    who = "optim.sgd"
    config = {} if config is None else config
    state = config if state is None else state
    h = _hyper(who, config, SGD_DEFAULTS)
    mom, nesterov = h["momentum"], bool(h["nesterov"])
    damp = mom if h["dampening"] is None else h["dampening"]
    if nesterov and not (mom > 0 and damp == 0):
        raise ValueError(f"{who}: Nesterov momentum needs momentum > 0 and dampening = 0, "
                         f"got momentum {mom} and dampening {damp}")
    nevals = state.get("evalCounter") or 0
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    wds = _per_element(who, "weightDecays", h["weightDecays"], x)
    if wds is not None and not h["weightDecay"]:
        g = g + wds * x
    if mom != 0:
        if state.get("dfdx") is None:
            buf = state["dfdx"] = g.copy()
        else:
            buf = _state_array(who, state, "dfdx", x, 0)
            buf *= mom
            buf += (1 - damp) * g
        g = g + mom * buf if nesterov else buf
    lrs = _per_element(who, "learningRates", h["learningRates"], x)
    x -= h["learningRate"] / (1 + nevals * h["learningRateDecay"]) * (g if lrs is None else lrs * g)
    state["evalCounter"] = nevals + 1
    return x, [fx]


def adam(opfunc, x, config=None, state=None):
    """Adam (torch/optim adam.lua, Kingma & Ba 2015), with bias correction folded into the step.

    With ``g = dfdx + weightDecay * x``, ``t`` the 1-based step (state['t'])::

        m = beta1 * m + (1 - beta1) * g             (state['m'], starts at 0)
        v = beta2 * v + (1 - beta2) * g^2           (state['v'], starts at 0)
        x = x - lr_t * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)

    where ``lr_t = learningRate / (1 + (t - 1) * learningRateDecay)``. Defaults:
    learningRate 1e-3, learningRateDecay 0, beta1 0.9, beta2 0.999, epsilon 1e-8, weightDecay 0.
    """
    who = "optim.adam"
    config = {} if config is None else config
    state = config if state is None else state
    h = _hyper(who, config, ADAM_DEFAULTS)
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    t = state.get("t") or 0
    clr = h["learningRate"] / (1 + t * h["learningRateDecay"])
    t += 1
    state["t"] = t
    m = _state_array(who, state, "m", x, 0)
    v = _state_array(who, state, "v", x, 0)
    b1, b2 = h["beta1"], h["beta2"]
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    step = clr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
    x -= step * m / (get_xp(x).sqrt(v) + h["epsilon"])
    return x, [fx]


ADAGRAD_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "weightDecay": 0}
ADADELTA_DEFAULTS = {"rho": 0.9, "eps": 1e-6, "weightDecay": 0}
NAG_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "weightDecay": 0, "momentum": 0.9,
                "dampening": None, "learningRates": None}
ASGD_DEFAULTS = {"eta0": 1e-4, "lambda": 1e-4, "alpha": 0.75, "t0": 1e6}
LBFGS_DEFAULTS = {"maxIter": 20, "maxEval": None, "tolFun": 1e-5, "tolX": 1e-9, "nCorrection": 100,
                  "learningRate": 1}
CG_DEFAULTS = {"rho": 0.01, "sig": 0.5, "int": 0.1, "ext": 3.0, "maxIter": 20, "ratio": 100,
               "maxEval": None}


def _setup(who, config, state, defaults):
    """``(config, state, hyper-parameters)``: Torch's ``state = state or config``."""
    config = {} if config is None else config
    return config, (config if state is None else state), _hyper(who, config, defaults)


def adagrad(opfunc, x, config=None, state=None):
    """AdaGrad (torch/optim adagrad.lua, Duchi et al. 2011).

    With ``g = dfdx + weightDecay * x`` and ``n = state['evalCounter']``::

        paramVariance += g^2                              (state['paramVariance'], from 0)
        x -= learningRate / (1 + n learningRateDecay) * g / (sqrt(paramVariance) + 1e-10)

    Defaults: learningRate 1e-3, learningRateDecay 0, weightDecay 0.
    """
    who = "optim.adagrad"
    config, state, h = _setup(who, config, state, ADAGRAD_DEFAULTS)
    nevals = state.get("evalCounter") or 0
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    var = _state_array(who, state, "paramVariance", x, 0)
    var += g * g
    clr = h["learningRate"] / (1 + nevals * h["learningRateDecay"])
    x -= clr * g / (get_xp(x).sqrt(var) + 1e-10)
    state["evalCounter"] = nevals + 1
    return x, [fx]


def adadelta(opfunc, x, config=None, state=None):
    """AdaDelta (torch/optim adadelta.lua, Zeiler 2012); no learning rate.

    With ``g = dfdx + weightDecay * x``::

        paramVariance = rho paramVariance + (1 - rho) g^2        (state['paramVariance'], from 0)
        delta = sqrt(accDelta + eps) / sqrt(paramVariance + eps) * g
        x -= delta
        accDelta = rho accDelta + (1 - rho) delta^2               (state['accDelta'], from 0)

    Defaults: rho 0.9, eps 1e-6, weightDecay 0.
    """
    who = "optim.adadelta"
    config, state, h = _setup(who, config, state, ADADELTA_DEFAULTS)
    xp = get_xp(x)
    rho, eps = h["rho"], h["eps"]
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    var = _state_array(who, state, "paramVariance", x, 0)
    acc = _state_array(who, state, "accDelta", x, 0)
    var *= rho
    var += (1 - rho) * g * g
    delta = xp.sqrt(acc + eps) / xp.sqrt(var + eps) * g
    x -= delta
    acc *= rho
    acc += (1 - rho) * delta * delta
    state["evalCounter"] = (state.get("evalCounter") or 0) + 1
    return x, [fx]


def nag(opfunc, x, config=None, state=None):
    """Nesterov's accelerated gradient (torch/optim nag.lua, Sutskever et al. 2013's form).

    With ``v = state['dfdx']`` (the last step, absent at the first call), ``n`` the calls so far
    and ``clr = learningRate / (1 + n learningRateDecay)``::

        x += momentum v                        (look ahead; skipped at the first call)
        g = dfdx(x) + weightDecay x            (times ``learningRates`` when given)
        v = momentum v - clr g                 (v = -clr g at the first call)
        x -= clr g

    so after the call ``x`` is the look-ahead point minus the gradient step. Defaults:
    learningRate 1e-3, learningRateDecay 0, weightDecay 0, momentum 0.9 (must be > 0).
    """
    who = "optim.nag"
    config, state, h = _setup(who, config, state, NAG_DEFAULTS)
    mom = h["momentum"]
    if mom <= 0:
        raise ValueError(f"{who}: momentum must be positive for Nesterov's method, got {mom}")
    nevals = state.get("evalCounter") or 0
    if state.get("dfdx") is not None:
        x += mom * _state_array(who, state, "dfdx", x, 0)
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    lrs = _per_element(who, "learningRates", h["learningRates"], x)
    if lrs is not None:
        g = lrs * g
    clr = h["learningRate"] / (1 + nevals * h["learningRateDecay"])
    v = _state_array(who, state, "dfdx", x, 0)
    v *= mom
    v -= clr * g
    x -= clr * g
    state["evalCounter"] = nevals + 1
    return x, [fx]


def asgd(opfunc, x, config=None, state=None):
    """Averaged SGD (torch/optim asgd.lua, after L. Bottou's sgd-2.0); returns ``(x, [fx], ax)``.

    With ``t`` the calls so far (state['t']), ``eta_t`` and ``mu_t`` from the previous call
    (``eta0`` and 1 at first)::

        x  = (1 - lambda eta_t) x - eta_t dfdx
        ax = ax + mu_t (x - ax)           (ax = x while mu_t = 1)    (state['ax'])
        eta_{t+1} = eta0 / (1 + lambda eta0 (t + 1))^alpha,   mu_{t+1} = 1 / max(1, t + 1 - t0)

    Defaults: eta0 1e-4, lambda 1e-4, alpha 0.75, t0 1e6 (averaging starts after t0 calls).
    """
    who = "optim.asgd"
    config, state, h = _setup(who, config, state, ASGD_DEFAULTS)
    eta = state.get("eta_t") or h["eta0"]
    mu = state.get("mu_t") or 1
    t = state.get("t") or 0
    fx, g = _evaluate(who, opfunc, x, 0)
    x *= 1 - h["lambda"] * eta
    x -= eta * g
    ax = _state_array(who, state, "ax", x, 0)
    if mu != 1:
        ax += mu * (x - ax)
    else:
        ax[...] = x
    t += 1
    state["t"] = t
    state["eta_t"] = h["eta0"] / (1 + h["lambda"] * h["eta0"] * t) ** h["alpha"]
    state["mu_t"] = 1 / max(1, t - h["t0"])
    return x, [fx], ax


def _dot(a, b):
    """A dot product read back to the host (a Python float)."""
    return float(get_xp(a).vdot(a.reshape(-1), b.reshape(-1)))


def _abs_sum(a):
    return float(get_xp(a).abs(a).sum())


def _closure(who, opfunc, x):
    """``(f, a private copy of the gradient)``: the caller may reuse its gradient buffer."""
    f, g = _evaluate(who, opfunc, x, 0)
    return f, g.copy()


def lbfgs(opfunc, x, config=None, state=None):
    """L-BFGS (torch/optim lbfgs.lua, after minFunc); returns ``(x, f_hist, evaluations)``.

    Up to ``maxIter`` iterations in one call. The direction is ``d = -H g``, ``H`` the
    inverse Hessian approximation of the last ``nCorrection`` pairs ``s = t d`` (step),
    ``y = g_new - g_old`` (kept when ``y.s > 1e-10``), built by the two-loop recursion
    from ``H0 = (y.s / y.y) I`` of the newest pair. The first step of a run is
    ``t = min(1, 1 / sum|g|) learningRate``, then ``t = learningRate`` (no line search:
    Torch's default when ``lineSearch`` is unset). It stops when ``sum|g| <= tolFun``,
    ``g.d > -tolX``, ``sum|t d| <= tolX``, ``|f - f_old| < tolX``, or after ``maxIter``
    iterations / ``maxEval`` evaluations. ``f_hist`` holds f before the run and after each
    step (the last step is not re-evaluated, as in Torch). The memory and the last
    direction persist in ``state`` (``old_dirs``, ``old_stps``, ``Hdiag``, ``d``, ``t``,
    ``g_old``, ``f_old``, ``nIter``, ``funcEval``), so later calls continue the run.

    A user line search ``config['lineSearch'](opfunc, x, t, d, f, g, gtd, options)``
    returning ``(f, g, x, t, evaluations)`` may replace the fixed step, as in Torch.
    Defaults: maxIter 20, maxEval 1.25 maxIter, tolFun 1e-5, tolX 1e-9, nCorrection 100,
    learningRate 1.
    """
    who = "optim.lbfgs"
    config, state, h = _setup(who, config, state, LBFGS_DEFAULTS)
    maxIter = h["maxIter"]
    maxEval = maxIter * 1.25 if h["maxEval"] is None else h["maxEval"]
    tolFun, tolX, lr = h["tolFun"], h["tolX"], h["learningRate"]
    line_search = config.get("lineSearch")
    state["funcEval"] = state.get("funcEval", 0)
    state["nIter"] = state.get("nIter", 0)
    f, g = _closure(who, opfunc, x)
    f_hist, evals = [f], 1
    state["funcEval"] += 1
    if _abs_sum(g) <= tolFun:
        return x, f_hist, evals
    d, t = state.get("d"), state.get("t")
    old_dirs, old_stps = state.get("old_dirs"), state.get("old_stps")
    Hdiag, g_old, f_old = state.get("Hdiag"), state.get("g_old"), state.get("f_old")
    n_iter = 0
    while n_iter < maxIter:
        n_iter += 1
        state["nIter"] += 1
        if state["nIter"] == 1:
            d = -g
            old_dirs, old_stps, Hdiag = [], [], 1.0
        else:
            y = g - g_old
            s = d * t
            ys = _dot(y, s)
            if ys > 1e-10:
                if len(old_dirs) == h["nCorrection"]:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                old_dirs.append(s)
                old_stps.append(y)
                Hdiag = ys / _dot(y, y)
            # two-loop recursion: d = -H g
            ro = [1 / _dot(yi, si) for si, yi in zip(old_dirs, old_stps)]
            q = -g
            al = [0.0] * len(old_dirs)
            for i in range(len(old_dirs) - 1, -1, -1):
                al[i] = _dot(old_dirs[i], q) * ro[i]
                q -= al[i] * old_stps[i]
            d = q * Hdiag
            for i in range(len(old_dirs)):
                be = _dot(old_stps[i], d) * ro[i]
                d += (al[i] - be) * old_dirs[i]
        g_old, f_old = g.copy(), f
        gtd = _dot(g, d)
        if gtd > -tolX:
            break
        t = min(1.0, 1.0 / _abs_sum(g)) * lr if state["nIter"] == 1 else lr
        if callable(line_search):
            f, g, x, t, ls_evals = line_search(opfunc, x, t, d, f, g, gtd, config.get("lineSearchOptions"))
            f_hist.append(f)
        else:
            x += t * d
            ls_evals = 0
            if n_iter != maxIter:  # Torch skips the evaluation after the last step
                f, g = _closure(who, opfunc, x)
                ls_evals = 1
                f_hist.append(f)
        evals += ls_evals
        state["funcEval"] += ls_evals
        if (n_iter == maxIter or evals >= maxEval or _abs_sum(g) <= tolFun
                or _abs_sum(d) * abs(t) <= tolX or abs(f - f_old) < tolX):
            break
    state.update(old_dirs=old_dirs, old_stps=old_stps, Hdiag=Hdiag, g_old=g_old, f_old=f_old,
                 t=t, d=d)
    return x, f_hist, evals


def _div(a, b):
    """``a / b`` with IEEE results for b = 0 (Lua's), which the line search then catches."""
    if b:
        return a / b
    return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _root(v):
    return math.sqrt(v) if v >= 0 else math.nan


def _bad(z):
    return math.isnan(z) or math.isinf(z)


def cg(opfunc, x, config=None, state=None):
    """Conjugate gradients (torch/optim cg.lua, a rewrite of C. E. Rasmussen's minimize.m);
    returns ``(x, f_hist, evaluations)``.

    Polack-Ribiere directions ``s = (g2.g2 - g2.g1) / g1.g1 s - g2`` (steepest descent when
    that is not a descent direction), each searched by a line search with cubic/quadratic
    interpolation and extrapolation until the Wolfe-Powell conditions
    ``f2 <= f1 + z rho d1`` and ``|d2| <= -sig d1`` hold (``d`` the slopes along ``s``).
    At most ``maxEval`` evaluations (``maxIter`` per line search). When a line search
    fails, ``x`` goes back to where it started and the run ends (Torch's
    ``if ls_failed`` test is always true, a Lua ``0`` being true: kept).
    Defaults: rho 0.01, sig 0.5, int 0.1, ext 3.0, maxIter 20, ratio 100, maxEval 1.25 maxIter.
    """
    who = "optim.cg"
    config, _, h = _setup(who, config, state, CG_DEFAULTS)
    rho, sig, intv, ext, ratio = h["rho"], h["sig"], h["int"], h["ext"], h["ratio"]
    maxIter = h["maxIter"]
    maxEval = maxIter * 1.25 if h["maxEval"] is None else h["maxEval"]
    def probe(z):
        """Move x by z along s and evaluate: f, the gradient and the slope along s there."""
        x[...] += z * s
        f, df = _closure(who, opfunc, x)
        return f, df, _dot(df, s)

    def cubic(f2, f3, z3, d2, d3):
        """minimize.m's coefficients (A, B) of the cubic through points 2 and 3."""
        return _div(6 * (f2 - f3), z3) + 3 * (d2 + d3), 3 * (f3 - f2) - z3 * (d3 + 2 * d2)

    f1, df1 = _closure(who, opfunc, x)
    fx, i = [f1], 1
    s = -df1
    d1 = -_dot(s, s)
    z1 = 1 / (1 - d1)
    while i < abs(maxEval):
        x0, f0, df0 = x.copy(), f1, df1.copy()
        f2, df2, d2 = probe(z1)
        i += 1
        f3, d3, z3 = f1, d1, -z1
        m = min(maxIter, maxEval - i)
        success, limit = False, -1
        while True:
            while (f2 > f1 + z1 * rho * d1 or d2 > -sig * d1) and m > 0:
                limit = z1
                if f2 > f1:
                    z2 = z3 - _div(0.5 * d3 * z3 * z3, d3 * z3 + f2 - f3)
                else:
                    A, B = cubic(f2, f3, z3, d2, d3)
                    z2 = _div(_root(B * B - A * d2 * z3 * z3) - B, A)
                if _bad(z2):
                    z2 = z3 / 2
                z2 = max(min(z2, intv * z3), (1 - intv) * z3)
                z1 += z2
                f2, df2, d2 = probe(z2)
                i, m = i + 1, m - 1
                z3 -= z2
            if f2 > f1 + z1 * rho * d1 or d2 > -sig * d1:
                break
            if d2 > sig * d1:
                success = True
                break
            if m == 0:
                break
            A, B = cubic(f2, f3, z3, d2, d3)
            z2 = _div(-d2 * z3 * z3, B + _root(B * B - A * d2 * z3 * z3))
            if _bad(z2) or z2 < 0:
                z2 = z1 * (ext - 1) if limit < -0.5 else (limit - z1) / 2
            elif limit > -0.5 and z2 + z1 > limit:
                z2 = (limit - z1) / 2
            elif limit < -0.5 and z2 + z1 > z1 * ext:
                z2 = z1 * (ext - 1)
            elif z2 < -z3 * intv:
                z2 = -z3 * intv
            elif limit > -0.5 and z2 < (limit - z1) * (1 - intv):
                z2 = (limit - z1) * (1 - intv)
            f3, d3, z3 = f2, d2, -z2
            z1 += z2
            f2, df2, d2 = probe(z2)
            i, m = i + 1, m - 1
        if not success:
            x[...] = x0
            break
        f1 = f2
        fx.append(f1)
        ss = (_dot(df2, df2) - _dot(df2, df1)) / _dot(df1, df1)
        s = ss * s - df2
        df1, df2 = df2, df1
        d2 = _dot(df1, s)
        if d2 > 0:
            s = -df1
            d2 = -_dot(s, s)
        z1 *= min(ratio, d1 / (d2 - 1e-320))
        d1 = d2
    return x, fx, i


def _copy_entries(d):
    """A copy of a flat dict in which arrays are copied too (a snapshot, not a view)."""
    return {k: v.copy() if is_array(v) else v for k, v in d.items()}


class Optimizer:
    """An optimiser function bound to its own ``config`` and ``state`` dicts.

    ``step(feval, x)`` calls the function with them and returns ``(x, [fx])``.
    ``config`` may be changed between steps (e.g. ``opt.config['learningRate'] = lr``
    for a schedule). ``state_dict()`` returns ``{'config': ..., 'state': ...}``, plain
    dicts of numbers and array copies that ``nnlite.save`` can write;
    ``load_state_dict(d)`` restores them (arrays move to ``x``'s device at the next step).
    """
    #: the closure function (set by subclasses) and its defaults (the accepted config keys)
    method = None
    defaults = {}

    def __init__(self, config=None):
        self.config = self._checked_config(config or {})
        self.state = {}

    def _checked_config(self, config):
        if not isinstance(config, dict):
            raise TypeError(f"optim.{type(self).__name__}: config must be a dict, "
                            f"got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise ValueError(f"optim.{type(self).__name__}: unknown config keys {unknown}; "
                             f"expected some of {sorted(self.defaults)}")
        return dict(config)

    def step(self, feval, x):
        return type(self).method(feval, x, self.config, self.state)

    def state_dict(self):
        return {"config": _copy_entries(self.config), "state": _copy_entries(self.state)}

    def load_state_dict(self, d):
        if not (isinstance(d, dict) and isinstance(d.get("state"), dict)):
            raise ValueError(f"optim.{type(self).__name__}.load_state_dict: expected a dict "
                             f"{{'config': dict, 'state': dict}} from state_dict(), got {d!r:.80}")
        self.config = self._checked_config(d.get("config", {}))
        self.state = _copy_entries(d["state"])
        return self

    def __repr__(self):
        return f"optim.{type(self).__name__}({self.config})"


class RMSprop(Optimizer):
    """``rmsprop`` with its own config and state (see ``Optimizer``)."""
    method = staticmethod(rmsprop)
    defaults = RMSPROP_DEFAULTS


class SGD(Optimizer):
    """``sgd`` with its own config and state (see ``Optimizer``)."""
    method = staticmethod(sgd)
    defaults = SGD_DEFAULTS


class Adam(Optimizer):
    """``adam`` with its own config and state (see ``Optimizer``)."""
    method = staticmethod(adam)
    defaults = ADAM_DEFAULTS


def clip_gradients(grads, c):
    """Clamp every element of ``grads`` to ``[-c, c]`` in place and return it.

    The paper's clipping (SPEC §5: the original clipped to +-50 before each update).
    Elementwise clamping, not norm rescaling; NaN stays NaN. On the host, a large ``grads``
    is clamped in ranges side by side (``backend.host_rows``).
    """
    who = "optim.clip_gradients"
    check_array(who, grads, ANY_RANK, what="grads")
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not c > 0:
        raise ValueError(f"{who}: the clipping bound c must be a positive number, got {c!r}")
    xp = get_xp(grads)
    host_rows(lambda rows: xp.clip(grads[rows], -c, c, out=grads[rows]), grads)
    return grads


def step_decay(lr0, epoch, factor=0.9, every=5):
    """The paper's schedule: ``lr0 * factor ** (epoch // every)``.

    ``epoch`` counts from 0, so epochs 0..every-1 use ``lr0``, the next ``every`` epochs
    ``lr0 * factor``, and so on (the paper: x0.9 every 5 epochs).
    """
    who = "optim.step_decay"
    epoch = check_int(who, epoch, "epoch", minimum=0)
    every = check_int(who, every, "every", minimum=1)
    return lr0 * factor ** (epoch // every)
