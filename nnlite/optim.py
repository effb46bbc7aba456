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
* Torch's per-element ``learningRates``/``weightDecays`` vectors of ``sgd`` are not offered.

The ``RMSprop``, ``SGD`` and ``Adam`` classes hold a config and a state, with
``step(feval, x)`` and ``state_dict()``/``load_state_dict(d)`` for checkpoints.
"""
import numbers

from .backend import get_xp, is_array, is_cupy, to_device
from .checks import ANY_RANK, check_array, check_int, check_matches_params, check_same_shape


RMSPROP_DEFAULTS = {"learningRate": 1e-2, "alpha": 0.99, "epsilon": 1e-8, "weightDecay": 0,
                    "initialMean": 0}
SGD_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "weightDecay": 0, "momentum": 0,
                "dampening": None, "nesterov": False}
ADAM_DEFAULTS = {"learningRate": 1e-3, "learningRateDecay": 0, "beta1": 0.9, "beta2": 0.999,
                 "epsilon": 1e-8, "weightDecay": 0}


def _hyper(who, config, defaults):
    """The hyper-parameters of ``config`` with ``defaults`` filled in (``None`` means missing)."""
    if not isinstance(config, dict):
        raise TypeError(f"{who}: config must be a dict, got {type(config).__name__}")
    values = {}
    for key, default in defaults.items():
        v = config.get(key)
        v = default if v is None else v
        if v is not None and not isinstance(v, numbers.Real):
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
    """
    who = "optim.rmsprop"
    config = {} if config is None else config
    state = config if state is None else state
    h = _hyper(who, config, RMSPROP_DEFAULTS)
    fx, g = _evaluate(who, opfunc, x, h["weightDecay"])
    m = _state_array(who, state, "m", x, h["initialMean"])
    m *= h["alpha"]
    m += (1 - h["alpha"]) * g * g
    x -= h["learningRate"] * g / (get_xp(x).sqrt(m) + h["epsilon"])
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
    and ``dampening=0`` given explicitly, as in Torch.
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
    if mom != 0:
        if state.get("dfdx") is None:
            buf = state["dfdx"] = g.copy()
        else:
            buf = _state_array(who, state, "dfdx", x, 0)
            buf *= mom
            buf += (1 - damp) * g
        g = g + mom * buf if nesterov else buf
    x -= h["learningRate"] / (1 + nevals * h["learningRateDecay"]) * g
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
    Elementwise clamping, not norm rescaling; NaN stays NaN.
    """
    who = "optim.clip_gradients"
    check_array(who, grads, ANY_RANK, what="grads")
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not c > 0:
        raise ValueError(f"{who}: the clipping bound c must be a positive number, got {c!r}")
    return get_xp(grads).clip(grads, -c, c, out=grads)


def step_decay(lr0, epoch, factor=0.9, every=5):
    """The paper's schedule: ``lr0 * factor ** (epoch // every)``.

    ``epoch`` counts from 0, so epochs 0..every-1 use ``lr0``, the next ``every`` epochs
    ``lr0 * factor``, and so on (the paper: x0.9 every 5 epochs).
    """
    who = "optim.step_decay"
    epoch = check_int(who, epoch, "epoch", minimum=0)
    every = check_int(who, every, "every", minimum=1)
    return lr0 * factor ** (epoch // every)
