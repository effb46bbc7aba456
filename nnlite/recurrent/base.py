"""``AbstractRecurrent``: what every recurrent module shares (sequences, state, remember).

A recurrent module consumes a whole sequence in one call, so backpropagation
through time (BPTT) is written once, inside the module, instead of being spread
over per-step clones as in Torch's rnn package. A sequence comes either stacked,
one array ``(T, B, *step)``, or as a list of T arrays ``(B, *step)``; results
are given back in the form that came (list in, list out). Unbatched steps
(``(T, *step)`` stacked, a list of ``*step`` arrays) are accepted too.
"""
from ..backend import get_xp
from ..checks import (check_array, check_array_list, check_int, check_matches_params, check_same_shape,
                      check_size)
from ..module import Module

REMEMBER_MODES = ("both", "train", "eval", "neither")


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
    """Base of the recurrent modules: sequence forms, initial state, ``remember``/``forget``.

    * ``rho`` is kept for Torch's API only: BPTT always covers the whole sequence
      given to ``forward`` (truncate by giving shorter sequences).
    * Initial state: ``h0``, ``c0`` (None = zeros, the default). A user may set
      arrays of the state's shape, ``(B, outputSize, ...)`` (or without B for
      unbatched sequences); ``backward`` then *writes* (does not accumulate)
      ``gradH0 = dL/dh0`` and ``gradC0 = dL/dc0``. They are not parameters:
      ``parameters()`` and ``zeroGradParameters`` leave them alone, and an optimiser
      does not train them.
    * ``remember(mode)``, mode in 'both', 'train', 'eval', 'neither' (default
      'neither', as in rnn's Sequencer): when remembering in the current mode
      (``train`` flag), the final ``(h, c)`` of a sequence is kept in ``lastState``
      (a tuple of (B, outputSize, ...) arrays; transient: never saved) and becomes the initial state of the next sequence, taking precedence over
      ``h0``/``c0``. No gradient flows into the previous sequence (truncated BPTT:
      the carried state is a constant of the new sequence, and ``gradH0``/``gradC0``
      are not written). Otherwise the state is forgotten before each sequence.
      A remembered state is dropped when the mode (training/evaluation) changed
      since it was made, as rnn forgets on ``training()``/``evaluate()``.
      ``forget()`` (and ``clearState()``) drop it.
    * Evaluation mode keeps no per-step caches, only the running state; backward
      then needs a new forward in training mode.

    ``backward`` uses the sequence cached by the forward (a stacked input is the
    caller's array itself, a list input is stacked once); the input given to
    backward must have the same length. ``backward()`` runs BPTT once; calling
    ``updateGradInput`` and ``accGradParameters`` separately runs it twice.

    A subclass sets ``inputSize``, ``step_ndim`` (rank of one unbatched step),
    ``step_layout`` and ``input_what`` (its axes and what axis 0 of a step holds, for
    messages) and writes ``_state_shape(x)``, ``_forward_sequence(x, h, c)`` and
    ``_bptt(gy, need_input, scale)``.
    """
    _transient = Module._transient + ("_cache", "lastState")
    step_ndim = None
    step_layout = None
    input_what = None

    def __init__(self, rho=9999):
        super().__init__()
        self.rho = check_int(self, rho, "rho")
        self.rememberMode = "neither"
        self.lastState = None
        self._stateTrain = None
        self._cache = None
        self.h0 = None
        self.c0 = None

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
        """Drop the remembered state: the next sequence starts from ``h0``, ``c0``."""
        self.lastState = None
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
        check_array(self, seq, (n + 1, n + 2), what,
                    layout=f"a stacked sequence (T, B, {self.step_layout[1:]} or (T, {self.step_layout[1:]}, "
                           f"or a list of T steps")
        if seq.shape[0] == 0:
            raise ValueError(f"{who}: {what} is an empty sequence (T = 0)")
        return seq.shape[0], False, seq.ndim == n + 2

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

    # ------------------------------------------------------------------ compute
    def updateOutput(self, input):
        x, form = self._read_sequence(input, "input")
        self._check_input(x)
        if not self._remembering():
            self.lastState = None
        h, c, user_h, user_c = self._initial_state(x)
        H, c_last, steps = self._forward_sequence(x, h, c)
        self._cache = None
        if self.train:
            self._cache = dict(x=x, h=H, h0=h, c0=c, user_h=user_h, user_c=user_c, **steps)
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
        T = self._cache["h"].shape[0]
        T_in, was_list, batched = self._sequence_form(input, "input")
        gy, _ = self._read_sequence(gradOutput, "gradOutput")
        for what, n in (("input", T_in), ("gradOutput", gy.shape[0])):
            if n != T:
                raise ValueError(f"{who}: {what} of backward has {n} steps but the forward "
                                 f"sequence had {T}")
        check_same_shape(self, self._cache["h"], gy, "the output (T, B, ...)", "gradOutput (T, B, ...)")
        check_matches_params(self, gy, self.weight, "gradOutput")
        return gy, (was_list, batched)

    def updateGradInput(self, input, gradOutput):
        gy, form = self._prepare_backward(input, gradOutput)
        self.gradInput = self._write_sequence(self._bptt(gy, True, None), form)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        gy, _ = self._prepare_backward(input, gradOutput)
        self._bptt(gy, False, scale)

    def backward(self, input, gradOutput, scale=1.0):
        gy, form = self._prepare_backward(input, gradOutput)
        self.gradInput = self._write_sequence(self._bptt(gy, True, scale), form)
        return self.gradInput

    def _write_initial_gradients(self, dh, dc):
        """``gradH0``/``gradC0`` = the gradient at the user-set initial state (written in place)."""
        k = self._cache
        if k["user_h"]:
            self.gradH0[...] = dh.reshape(self.gradH0.shape)
        if k["user_c"]:
            self.gradC0[...] = dc.reshape(self.gradC0.shape)

    def _check_input(self, x):
        """The steps must have ``inputSize`` on axis 2 of (T, B, ...) and the parameters' dtype."""
        check_size(self, x.shape[2], self.inputSize, f"the steps' {self.input_what}")
        check_matches_params(self, x, self.weight)
