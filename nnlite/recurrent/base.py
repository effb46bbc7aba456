"""``AbstractRecurrent``: what every recurrent module shares (its two call forms, state, remember).

A recurrent module is called in one of two forms, chosen explicitly by its
``mode`` (constructor keyword ``mode=``, or ``setMode``); the form is never
guessed from the input's shape:

* ``mode='sequence'`` (the default; every model in ``models/`` uses it): one call
  consumes a whole sequence, and backpropagation through time (BPTT) runs inside
  one ``backward``. A sequence is one stacked array ``(T, B, *step)`` or a list of
  T steps, each ``(B, *step)`` or, unbatched, ``*step``; results come back in the
  form that came (list in, list out). A lone step ``(B, *step)`` is an error here.
* ``mode='step'`` (Torch's rnn default): one call is one batched time step
  ``(B, *step)``; the state carries from call to call until ``forget()``.
  ``backward`` (or ``updateGradInput`` then ``accGradParameters``) is then called
  once per step in *reverse* order of the forwards, as in rnn: each call
  backpropagates one step and hands the state gradient to the step before it.

``Sequencer`` puts the recurrent modules it drives in sequence mode.
"""
from .. import init
from ..backend import get_xp
from ..checks import (check_array, check_array_list, check_int, check_matches_params, check_same_shape,
                      check_size)
from ..module import Module

REMEMBER_MODES = ("both", "train", "eval", "neither")
MODES = ("sequence", "step")


def fold_time(a):
    """(T, B, ...) -> (T B, ...): every step of a sequence as one batch (a view)."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def unfold_time(a, T):
    """(T B, ...) -> (T, B, ...): the inverse of ``fold_time`` for a sequence of T steps."""
    return a.reshape((T, -1) + a.shape[1:])


def sigmoid_(a):
    """In place: ``a = sigmoid(a)``, written as ``(1 + tanh(a / 2)) / 2`` (never overflows)."""
    xp = get_xp(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


class AbstractRecurrent(Module):
    """Base of the recurrent modules: call forms, initial state, ``rho``, ``remember``/``forget``.

    * ``mode``: 'sequence' or 'step' (see the module doc); ``setMode(mode)`` changes
      it and forgets the state. An input of the other form's shape is an error
      that names the mode.
    * ``rho`` (rnn's): BPTT reaches back at most ``rho`` steps. In sequence mode,
      when T > rho only the last rho steps are kept for backward: their gradients
      are exact for the truncated graph (the state entering step ``T - rho`` is a
      constant), the earlier steps get a zero gradInput and add nothing to the
      parameter gradients. In step mode only the last rho steps are kept, and a
      backward beyond them is an error.
    * Initial state: ``h0``, ``c0`` (None = zeros, the default). A user may set
      arrays of the state's shape, ``(B, outputSize, ...)`` (or without B for
      unbatched sequences); ``backward`` then *writes* (does not accumulate)
      ``gradH0 = dL/dh0`` and ``gradC0 = dL/dc0``. They are not parameters:
      ``parameters()`` and ``zeroGradParameters`` leave them alone, and an optimiser
      does not train them.
    * Final state (sequence mode): ``finalCell`` is the last forward's final cell state
      ``c_T`` (the state's shape (B, outputSize, ...); transient), its final output
      ``h_T`` being ``output[-1]``. A user may set ``gradFinalCell`` (None = zero), an
      array of that shape that ``backward`` adds to ``dL/dc_T`` (rnn's
      ``userNextGradCell``; ``dL/dh_T`` simply goes into ``gradOutput[-1]``): with
      ``h0``/``c0`` and ``gradH0``/``gradC0`` this copies an encoder's final state into a
      decoder and backpropagates through the copy.
    * ``remember(mode)`` (sequence mode), mode in 'both', 'train', 'eval', 'neither'
      (default 'neither', as in rnn's Sequencer): when remembering in the current mode
      (``train`` flag), the final ``(h, c)`` of a sequence is kept in ``lastState``
      (a tuple of (B, outputSize, ...) arrays; transient: never saved) and becomes the initial state of the next sequence, taking precedence over
      ``h0``/``c0``. No gradient flows into the previous sequence (truncated BPTT:
      the carried state is a constant of the new sequence, and ``gradH0``/``gradC0``
      are not written). Otherwise the state is forgotten before each sequence.
      A remembered state is dropped when the mode (training/evaluation) changed
      since it was made, as rnn forgets on ``training()``/``evaluate()``.
      ``forget()`` (and ``clearState()``) drop it, and end a step-mode sequence.
    * Evaluation mode keeps no per-step caches, only the running state; backward
      then needs a new forward in training mode.

    ``backward`` uses the sequence cached by the forward (a stacked input is the
    caller's array itself, a list input is stacked once); the input given to
    backward must have the same length. ``backward()`` runs BPTT once; calling
    ``updateGradInput`` and ``accGradParameters`` separately runs it twice.

    A subclass sets ``inputSize``, ``step_ndim`` (rank of one unbatched step),
    ``step_layout`` and ``input_what`` (its axes and what axis 0 of a step holds, for
    messages) and writes ``_state_shape(x)``, ``_forward_sequence(x, h, c)`` and
    ``_bptt(gy, need_input, scale)``, which backpropagates the steps in ``_cache``
    (starting from the state gradients ``dh_in``, ``dc_in`` it may hold) and hands
    the gradient at the state before them to ``_write_initial_gradients``.
    """
    _transient = Module._transient + ("_cache", "lastState", "_steps", "_state", "_carry",
                                      "_gradStep", "_accStep", "finalCell")
    step_ndim = None
    step_layout = None
    input_what = None
    # class-level defaults, also for modules loaded from files saved before step mode existed
    mode = "sequence"
    _steps = _state = _carry = _gradStep = _accStep = None
    finalCell = gradFinalCell = None

    def __init__(self, rho=9999, mode="sequence"):
        super().__init__()
        self.rho = check_int(self, rho, "rho")
        self.rememberMode = "neither"
        self.lastState = None
        self._stateTrain = None
        self._cache = None
        self.h0 = None
        self.c0 = None
        self.setMode(mode)

    def setMode(self, mode):
        """Call form: 'sequence' (one call = a whole sequence) or 'step' (one call = one step)."""
        if mode not in MODES:
            raise ValueError(f"{self.typename()}.setMode: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        return self.forget()

    def reset(self, stdv=None):
        """Torch's default init of the maps fused here (the inner ``nn.Linear`` and
        ``SpatialConvolution`` layers of rnn's LSTM and viorik's ConvLSTM): each weight and
        its bias (``weight``/``bias``, ``weightFirst``/``biasFirst``; ``weightHidden`` and the
        peepholes have none) ~ U(+-1/sqrt(fan_in)), fan_in = in x kernel area of that map
        (``outputSize`` for the peepholes, each a ``CMul(outputSize)`` in rnn); or
        U(+-stdv sqrt(3)) given ``stdv``. Returns self; ``initBias`` sets the gate biases."""
        for name in self.parameter_names:
            w = getattr(self, name, None)
            if w is not None and name.startswith("weight"):
                b = getattr(self, name.replace("weight", "bias"), None)
                init.reset_(stdv, 1.0 / init.fans(w)[0] ** 0.5, w, b)
        return self

    def initBias(self, forgetBias=1.0, otherBias=0.0):
        """viorik's ``initBias``: the forget-gate block of ``bias`` = ``forgetBias``, the other
        gate biases (and ``biasFirst``, which has no forget gate) = ``otherBias``; returns self."""
        n = self.outputSize
        self.bias.fill(otherBias)
        self.bias[n:2 * n] = forgetBias
        first = getattr(self, "biasFirst", None)
        if first is not None:
            first.fill(otherBias)
        return self

    # ------------------------------------------------------------- initial state
    @property
    def h0(self):
        return self._h0

    @h0.setter
    def h0(self, value):
        self._h0, self.gradH0 = self._user_state(value, "h0")

    @property
    def c0(self):
        return self._c0

    @c0.setter
    def c0(self, value):
        self._c0, self.gradC0 = self._user_state(value, "c0")

    def _user_state(self, value, what):
        """(state, zeroed gradient) for a user-set initial state (None for the default zeros)."""
        if value is None:
            return None, None
        check_array(self, value, (self.step_ndim, self.step_ndim + 1), what,
                    layout="the state's shape (B, outputSize, ...) or, unbatched, (outputSize, ...)")
        return value, get_xp(value).zeros_like(value)

    # ------------------------------------------------------------------ memory
    def remember(self, mode="both"):
        """Carry the final state of a sequence into the next one in ``mode`` (see the class doc)."""
        if mode not in REMEMBER_MODES:
            raise ValueError(f"{self.typename()}.remember: mode must be one of {REMEMBER_MODES}, "
                             f"got {mode!r}")
        self.rememberMode = mode
        return self

    def forget(self):
        """Drop the remembered state (the next sequence starts from ``h0``, ``c0``) and end a
        step-mode sequence (its kept steps and state)."""
        self.lastState = None
        self._steps, self._state, self._carry = [], None, None
        self._gradStep = self._accStep = None
        return self

    def _remembering(self):
        return self.rememberMode == "both" or self.rememberMode == ("train" if self.train else "eval")

    # --------------------------------------------------------------- sequences
    def _sequence_form(self, seq, what):
        """``(T, was_list, batched)`` of a sequence, validated but not stacked."""
        n, who = self.step_ndim, self.typename()
        if isinstance(seq, (list, tuple)):
            check_array_list(self, seq, what, ndims=(n, n + 1))
            for t, s in enumerate(seq):
                if s.shape != seq[0].shape:
                    raise ValueError(f"{who}: every step of {what} must have the shape of step 0 "
                                     f"{tuple(seq[0].shape)}, step {t} has {tuple(s.shape)}")
            return len(seq), True, seq[0].ndim == n + 1
        check_array(self, seq, (n + 2,), what,
                    layout=f"a stacked sequence (T, B, {self.step_layout[1:]} or a list of T steps in "
                           f"sequence mode (one step (B, {self.step_layout[1:]} at a time needs "
                           f"mode='step'; an unbatched stacked sequence needs B = 1)")
        if seq.shape[0] == 0:
            raise ValueError(f"{who}: {what} is an empty sequence (T = 0)")
        return seq.shape[0], False, True

    def _read_sequence(self, seq, what):
        """The sequence as one ``(T, B, *step)`` array (a view when it came stacked) and its form."""
        T, was_list, batched = self._sequence_form(seq, what)
        x = get_xp(seq).stack(seq) if was_list else seq
        return (x if batched else x[:, None]), (was_list, batched)

    @staticmethod
    def _write_sequence(y, form):
        """A ``(T, B, *step)`` result in the form of the sequence that came."""
        was_list, batched = form
        y = y if batched else y[:, 0]
        return list(y) if was_list else y

    def _initial_state(self, x):
        """``(h, c, user_h, user_c)``: the remembered state, else ``h0``/``c0`` (None = zeros)."""
        shape = self._state_shape(x)
        if self.lastState is not None and self._stateTrain == self.train:
            for s in self.lastState:
                if s.shape != shape:
                    raise ValueError(f"{self.typename()}: the remembered state has shape "
                                     f"{tuple(s.shape)} but this sequence needs {shape}; call "
                                     f"forget() before changing the batch or image size")
            return self.lastState + (False, False)
        states = []
        for value, what in ((self._h0, "h0"), (self._c0, "c0")):
            if value is not None:
                user_shape = shape if value.ndim == len(shape) else shape[1:]
                if value.shape != user_shape or (value.ndim < len(shape) and shape[0] != 1):
                    raise ValueError(f"{self.typename()}: {what} must have the state's shape "
                                     f"{shape} for this sequence, got {tuple(value.shape)}")
                check_matches_params(self, value, self.weight, what)
                value = value.reshape(shape)
            states.append(value)
        return states[0], states[1], self._h0 is not None, self._c0 is not None

    def _truncated(self, k):
        """The cache ``k`` of a T-step sequence cut to its last ``rho`` steps (when T > rho):
        the state entering the first kept step becomes a constant, like a remembered state."""
        T = k["x"].shape[0]
        s = T - self.rho
        if s <= 0:
            return k
        c = k["c"]
        return dict(k, x=k["x"][s:], h=k["h"][s:], h0=k["h"][s - 1], c0=c[s - 1], user_h=False,
                    user_c=False, gates=k["gates"][s:], c=c[s:], tc=k["tc"][s:], fresh=False)

    # ------------------------------------------------------------------ compute
    def updateOutput(self, input):
        if self.mode == "step":
            return self._step_forward(input)
        x, form = self._read_sequence(input, "input")
        self._check_input(x)
        if not self._remembering():
            self.lastState = None
        h, c, user_h, user_c = self._initial_state(x)
        H, c_last, steps = self._forward_sequence(x, h, c)
        self.finalCell = c_last
        self._cache = None
        if self.train:
            self._cache = self._truncated(dict(x=x, h=H, h0=h, c0=c, user_h=user_h, user_c=user_c,
                                               shape=H.shape, **steps))
        if self._remembering():
            self.lastState, self._stateTrain = (H[-1], c_last), self.train
        self.output = self._write_sequence(H, form)
        return self.output

    def _prepare_backward(self, input, gradOutput):
        """The stacked gradOutput (T, B, ...), after checking it against the cached forward."""
        who = self.typename()
        if self._cache is None:
            raise RuntimeError(f"{who}: backward needs a forward in training mode first (evaluation "
                               f"mode keeps no per-step caches; call training() and forward again)")
        shape = self._cache["shape"]
        T_in, was_list, batched = self._sequence_form(input, "input")
        gy, _ = self._read_sequence(gradOutput, "gradOutput")
        for what, n in (("input", T_in), ("gradOutput", gy.shape[0])):
            if n != shape[0]:
                raise ValueError(f"{who}: {what} of backward has {n} steps but the forward "
                                 f"sequence had {shape[0]}")
        if tuple(gy.shape) != tuple(shape):
            raise ValueError(f"{who}: gradOutput (T, B, ...) must have the shape of the output "
                             f"(T, B, ...) {tuple(shape)}, got {tuple(gy.shape)}")
        check_matches_params(self, gy, self.weight, "gradOutput")
        return gy, (was_list, batched)

    def _sequence_bptt(self, input, gradOutput, need_input, scale):
        """BPTT over the kept steps of the cached sequence; dL/dinput (T, B, ...) in the input's form."""
        gy, form = self._prepare_backward(input, gradOutput)
        kept = self._cache["x"].shape[0]
        s = gy.shape[0] - kept
        if s and need_input:  # truncated by rho: the user's h0, c0 get no gradient
            for g in (self.gradH0, self.gradC0):
                if g is not None:
                    g.fill(0)
        self._cache["dc_in"] = self._final_cell_gradient()
        dx = self._bptt(gy[s:], need_input, scale)
        if not need_input:
            return None
        if s:
            full = get_xp(dx).zeros((gy.shape[0],) + dx.shape[1:], dtype=dx.dtype)
            full[s:] = dx
            dx = full
        return self._write_sequence(dx, form)

    def _final_cell_gradient(self):
        """``gradFinalCell`` after checking it against the cached forward's state (or None)."""
        g = self.gradFinalCell
        if g is not None:
            want = tuple(self._cache["shape"][1:])
            if tuple(g.shape) != want:
                raise ValueError(f"{self.typename()}: gradFinalCell must have the final cell state's "
                                 f"shape {want}, got {tuple(g.shape)}")
            check_matches_params(self, g, self.weight, "gradFinalCell")
        return g

    def updateGradInput(self, input, gradOutput):
        if self.mode == "step":
            return self._step_backward(input, gradOutput, True, None)
        self.gradInput = self._sequence_bptt(input, gradOutput, True, None)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        if self.mode == "step":
            self._step_backward(input, gradOutput, False, scale)
        else:
            self._sequence_bptt(input, gradOutput, False, scale)

    def backward(self, input, gradOutput, scale=1.0):
        if self.mode == "step":
            return self._step_backward(input, gradOutput, True, scale)
        self.gradInput = self._sequence_bptt(input, gradOutput, True, scale)
        return self.gradInput

    def _write_initial_gradients(self, dh, dc):
        """The gradient at the state before the backpropagated steps: carried to the step
        before (step mode), else written to ``gradH0``/``gradC0`` (in place) when the user set them."""
        k = self._cache
        if k.get("prev"):
            self._carry = (dh, dc)
            return
        if k["user_h"]:
            self.gradH0[...] = dh.reshape(self.gradH0.shape)
        if k["user_c"]:
            self.gradC0[...] = dc.reshape(self.gradC0.shape)

    def _check_input(self, x):
        """The steps must have ``inputSize`` on axis 2 of (T, B, ...) and the parameters' dtype."""
        check_size(self, x.shape[2], self.inputSize, f"the steps' {self.input_what}")
        if x.shape[1] == 0:
            raise ValueError(f"{self.typename()}: the batch is empty (B = 0, steps of shape "
                             f"{tuple(x.shape[1:])})")
        check_matches_params(self, x, self.weight)

    # --------------------------------------------------------------- step mode
    def _step_forward(self, input):
        """One time step (B, *step): the state goes on from the previous call (until ``forget``)."""
        check_array(self, input, (self.step_ndim + 1,), "input",
                    layout=f"one batched step (B, {self.step_layout[1:]} in step mode (a whole sequence "
                           f"needs mode='sequence' or a Sequencer)")
        x = input[None]  # a sequence of one step (a view)
        self._check_input(x)
        if self._steps is None:  # after clearState
            self.forget()
        if self._state is None:  # the first step of a sequence
            h, c, user_h, user_c = self._initial_state(x)
            prev = False
        else:
            (h, c), user_h, user_c, prev = self._state, True, True, True
            if tuple(h.shape) != self._state_shape(x):
                raise ValueError(f"{self.typename()}: this step needs the state shape "
                                 f"{self._state_shape(x)} but the previous step left "
                                 f"{tuple(h.shape)}; call forget() to start a new sequence")
        H, c_last, steps = self._forward_sequence(x, h, c)
        self._state = (H[0], c_last)
        if self.train:
            self._steps.append(dict(x=x, h=H, h0=h, c0=c, user_h=user_h, user_c=user_c, prev=prev,
                                    **steps))
            if len(self._steps) > self.rho:  # rnn keeps the last rho steps
                del self._steps[0]
                self._steps[0].update(user_h=False, user_c=False, prev=False)
        # a new forward starts the next backward pass at the newest step
        self._gradStep = self._accStep = len(self._steps)
        self._carry = None
        self.output = H[0]
        return self.output

    def _step_backward(self, input, gradOutput, need_input, scale):
        """Backpropagate the newest step not yet backpropagated in this pass (reverse order)."""
        who = self.typename()
        pointer = self._gradStep if need_input else self._accStep
        if not self._steps or pointer is None:
            raise RuntimeError(f"{who}: backward needs a forward in training mode first (evaluation "
                               f"mode keeps no per-step caches)")
        if pointer == 0:
            raise RuntimeError(f"{who}: backward called for more steps than were kept (the steps "
                               f"since forget(), at most rho = {self.rho}); call it once per step, "
                               f"in reverse order")
        if need_input and scale is not None and self._gradStep != self._accStep:
            raise RuntimeError(f"{who}: backward after updateGradInput/accGradParameters of only "
                               f"some steps; finish the split pass first")
        if not need_input and self._accStep <= self._gradStep:
            raise RuntimeError(f"{who}: accGradParameters of a step needs its updateGradInput "
                               f"first (both in reverse time order)")
        k = self._steps[pointer - 1]
        check_array(self, input, (self.step_ndim + 1,), "input", layout=f"one step (B, {self.step_layout[1:]}")
        check_same_shape(self, k["x"][0], input, "the step's forward input", "input of backward")
        check_array(self, gradOutput, (self.step_ndim + 1,), "gradOutput")
        check_same_shape(self, k["h"][0], gradOutput, "the step's output", "gradOutput")
        check_matches_params(self, gradOutput, self.weight, "gradOutput")
        if need_input:
            k["dh_in"], k["dc_in"] = self._carry or (None, None)
            self._gradStep -= 1
        if scale is not None:
            self._accStep -= 1
        self._cache = k
        dx = self._bptt(gradOutput[None], need_input, scale)
        self._cache = None
        if need_input:
            self.gradInput = dx[0]
            return self.gradInput
        return None
