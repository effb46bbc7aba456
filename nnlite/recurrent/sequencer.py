"""``Sequencer``: apply a module over a sequence (rnn's ``nn.Sequencer``)."""
from ..backend import get_xp, is_array
from ..checks import check_array, check_same_structure, check_table
from ..containers import Container, Sequential, child_call
from .base import REMEMBER_MODES, AbstractRecurrent, fold_time, unfold_time


def takes_sequences(module):
    """True when ``module`` consumes whole sequences: it is or contains a recurrent module or a Sequencer."""
    return any(isinstance(m, (AbstractRecurrent, Sequencer)) for m in module.modules_tree())


def _map_leaves(fn, tree):
    """``tree`` (an array or nested list of arrays) with ``fn`` applied to every array."""
    return fn(tree) if is_array(tree) else [_map_leaves(fn, t) for t in tree]


def _stack_steps(steps):
    """A list of T steps, each an array or a (nested) table, -> one tree of (T, ...) arrays."""
    if is_array(steps[0]):
        return get_xp(*steps).stack(steps)
    return [_stack_steps([s[j] for s in steps]) for j in range(len(steps[0]))]


def _leaf(tree):
    """The first array of a tree."""
    return tree if is_array(tree) else _leaf(tree[0])


def _step(tree, t):
    """Step ``t`` of a tree of (T, ...) arrays."""
    return _map_leaves(lambda a: a[t], tree)


class Sequencer(Container):
    """``Sequencer(module, batched=True)``: apply ``module`` to every step of a sequence.

    A sequence is a list of T steps (each an array, or a table of arrays) or, for
    array steps, one stacked array (T, B, ...); results come back in the same form.
    With ``batched=False`` the steps are single samples ((C, H, W), ...).

    * A plain module (no recurrent module inside; shared parameters at every step):
      time is folded into the batch, ``(T, B, ...) -> (T B, ...) -> module -> (T, B, ...)``;
      a stacked input is folded by a reshape (no copy), a list is stacked once; tables
      are folded leaf by leaf. The module sees one big batch, so its parameter
      gradients sum over all steps: mathematically this is Torch's Sequencer, whose
      per-step clones share parameters and accumulate into one gradient, but each
      layer runs one large GEMM instead of T small ones. It assumes the module
      treats batch items independently (true of every nnlite layer). With
      ``batched=False`` the T steps themselves form the batch.
    * A recurrent module (``ConvLSTM``, ``LSTM``, ...): it is put in sequence mode
      and handed the whole (T, B, ...) sequence; BPTT runs inside it.
    * A ``Sequential`` holding recurrent modules, e.g. rnn's
      ``Sequencer(Sequential(encoder, ConvLSTM(...), decoder))``: the chain is run
      child by child over the whole sequence, each child as if wrapped in its own
      Sequencer (folded if plain, whole sequence if recurrent). Per step this is
      the same function as rnn's step-by-step Sequencer (each recurrent module's
      state depends on its own inputs only), and each plain layer still runs once
      over all T B frames.
    * Any other module holding recurrent modules (a custom container) is handed the
      whole stacked (T, B, ...) sequence and must handle it.

    Sequence-consuming modules always get stacked (T, B, ...) arrays (a list input
    is stacked once, an unbatched one gets B = 1), and the result is given back in
    the input's form. ``remember(mode)`` and ``forget()`` reach every recurrent
    module inside. Backward uses the input folded by the forward (one sequence,
    one backward).
    """

    _transient = Container._transient + ("_folded", "_chain")

    def __init__(self, module, batched=True):
        super().__init__(module)
        self.batched = bool(batched)
        self._folded = None
        self._chain = None
        for m in self._recurrent():
            m.setMode("sequence")

    def add(self, module):
        if self.modules:
            raise ValueError(f"{self.typename()} holds one module; wrap a Sequential to apply several")
        return super().add(module)

    @property
    def module(self):
        return self.modules[0]

    def remember(self, mode="both"):
        if mode not in REMEMBER_MODES:
            raise ValueError(f"{self.typename()}.remember: mode must be one of {REMEMBER_MODES}, "
                             f"got {mode!r}")
        for m in self._recurrent():
            m.remember(mode)
        return self

    def forget(self):
        for m in self._recurrent():
            m.forget()
        return self

    def _recurrent(self):
        return [m for m in self.modules_tree() if isinstance(m, AbstractRecurrent)]

    # ---------------------------------------------------------------- folding
    def _stack(self, seq, what):
        """``(stacked, T, was_list)``: the sequence as a tree of (T, ...) arrays, validated."""
        who = self.typename()
        if isinstance(seq, (list, tuple)):
            check_table(self, seq, what=what)
            if not seq:
                raise ValueError(f"{who}: {what} is an empty sequence")
            for t, s in enumerate(seq):
                check_same_structure(self, seq[0], s, f"{what} step 0", f"{what} step {t}")
            return _stack_steps(seq), len(seq), True
        check_array(self, seq, range(2 if self.batched else 1, 33), what,
                    layout="a stacked sequence (T, B, ...) or a list of T steps")
        if seq.shape[0] == 0:
            raise ValueError(f"{who}: {what} is an empty sequence (T = 0)")
        return seq, len(seq), False

    def _fold(self, seq, what):
        """``(folded, T, was_list)``: the sequence as one batch of T B items for the module."""
        stacked, T, was_list = self._stack(seq, what)
        folded = _map_leaves(fold_time, stacked) if self.batched else stacked
        return folded, T, was_list

    def _unfold(self, y, T, was_list):
        stacked = _map_leaves(lambda a: unfold_time(a, T), y) if self.batched else y
        return [_step(stacked, t) for t in range(T)] if was_list else stacked

    def _as_batched(self, seq, what):
        """``(stacked (T, B, ...) tree, was_list)`` for a sequence-consuming module."""
        stacked, _, was_list = self._stack(seq, what)
        return (stacked if self.batched else _map_leaves(lambda a: a[:, None], stacked)), was_list

    def _from_batched(self, y, was_list):
        y = y if self.batched else _map_leaves(lambda a: a[:, 0], y)
        return [_step(y, t) for t in range(len(_leaf(y)))] if was_list else y

    def _runner(self):
        """What consumes the whole sequence: the module, or for a Sequential holding
        recurrent modules a chain of one Sequencer per child (sharing the children)."""
        m = self.module
        if type(m) is Sequential:
            if self._chain is None or [s.module for s in self._chain.modules] != m.modules:
                self._chain = Sequential(*[Sequencer(c) for c in m.modules])
            return self._chain
        return m

    # ---------------------------------------------------------------- compute
    def updateOutput(self, input):
        m = self.module
        if takes_sequences(m):
            x, was_list = self._as_batched(input, "input")
            runner = self._runner()
            y = child_call(self, 0, m, runner.forward, x)
            m.output = y
            self.output = self._from_batched(y, was_list)
            return self.output
        folded, T, was_list = self._fold(input, "input")
        y = child_call(self, 0, m, m.forward, folded)
        self._folded = (folded, T)
        self.output = self._unfold(y, T, was_list)
        return self.output

    def _folded_backward(self, input, gradOutput):
        """(folded input, folded gradOutput, T, was_list) after checking them against the forward."""
        who = self.typename()
        if self._folded is None:
            raise RuntimeError(f"{who}: backward needs a forward first")
        folded, T = self._folded
        n = len(input) if isinstance(input, (list, tuple)) else getattr(input, "shape", (None,))[0]
        g, Tg, was_list = self._fold(gradOutput, "gradOutput")
        for what, k in (("input", n), ("gradOutput", Tg)):
            if k != T:
                raise ValueError(f"{who}: {what} of backward has {k} steps but the forward sequence had {T}")
        check_same_structure(self, self.module.output, g, "the module's output", "the folded gradOutput")
        return folded, g, T, isinstance(input, (list, tuple))

    def _run_backward(self, input, gradOutput, call):
        """``call(module, x, g)`` on what ran the forward, with the arguments in its form; its
        result (a gradInput, or None) comes back in the input's form."""
        m = self.module
        if takes_sequences(m):
            x, was_list = self._as_batched(input, "input")
            g, _ = self._as_batched(gradOutput, "gradOutput")
            r = child_call(self, 0, m, call, self._runner(), x, g)
            if r is None:
                return None
            m.gradInput = r
            return self._from_batched(r, was_list)
        folded, g, T, was_list = self._folded_backward(input, gradOutput)
        r = child_call(self, 0, m, call, m, folded, g)
        return None if r is None else self._unfold(r, T, was_list)

    def noGradInput(self):
        """``Module.noGradInput`` for the Sequencer and its module."""
        super().noGradInput()
        self.module.noGradInput()
        return self

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._run_backward(input, gradOutput, lambda m, x, g: m.updateGradInput(x, g))
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._run_backward(input, gradOutput, lambda m, x, g: m.accGradParameters(x, g, scale))

    def backward(self, input, gradOutput, scale=1.0):
        self.gradInput = self._run_backward(input, gradOutput, lambda m, x, g: m.backward(x, g, scale))
        return self.gradInput

    def __repr__(self):
        return self.typename() + " @ " + repr(self.module).replace("\n", "\n  ")
