"""``Sequencer``: apply a module over a sequence (rnn's ``nn.Sequencer``)."""
from ..backend import get_xp, is_array
from ..checks import check_array, check_same_structure, check_table
from ..containers import Container, child_call
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


def _step(tree, t):
    """Step ``t`` of a tree of (T, ...) arrays."""
    return _map_leaves(lambda a: a[t], tree)


class Sequencer(Container):
    """``Sequencer(module, batched=True)``: apply ``module`` to every step of a sequence.

    A sequence is a list of T steps (each an array, or a table of arrays) or, for
    array steps, one stacked array (T, B, ...); results come back in the same form.

    * ``module`` consumes sequences (it is, or contains, a recurrent module or a
      Sequencer, e.g. ``Sequential(Sequencer(enc), ConvLSTM(...))``): the whole
      sequence is handed to it, and BPTT happens inside the recurrent modules.
    * A plain module (shared parameters at every step): time is folded into the
      batch, ``(T, B, ...) -> (T B, ...) -> module -> (T, B, ...)``; a stacked input
      is folded by a reshape (no copy), a list is stacked once; tables are folded
      leaf by leaf. The module sees one big batch, so its parameter gradients sum
      over all steps: mathematically this is Torch's Sequencer, whose per-step
      clones share parameters and accumulate into one gradient, but each layer
      runs one large GEMM instead of T small ones. It assumes the module treats
      batch items independently (true of every nnlite layer). With
      ``batched=False`` the steps are single samples ((C, H, W), ...) and the T
      steps themselves form the batch.

    ``remember(mode)`` and ``forget()`` reach every recurrent module inside.
    Backward uses the input folded by the forward (one sequence, one backward).
    """

    _transient = Container._transient + ("_folded",)

    def __init__(self, module, batched=True):
        super().__init__(module)
        self.batched = bool(batched)
        self._folded = None

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
    def _fold(self, seq, what):
        """``(folded, T, was_list)``: the sequence as one batch of T B items for the module."""
        who = self.typename()
        if isinstance(seq, (list, tuple)):
            check_table(self, seq, what=what)
            if not seq:
                raise ValueError(f"{who}: {what} is an empty sequence")
            for t, s in enumerate(seq):
                check_same_structure(self, seq[0], s, f"{what} step 0", f"{what} step {t}")
            stacked = _stack_steps(seq)
        else:
            check_array(self, seq, range(2 if self.batched else 1, 33), what,
                        layout="a stacked sequence (T, B, ...) or a list of T steps")
            if seq.shape[0] == 0:
                raise ValueError(f"{who}: {what} is an empty sequence (T = 0)")
            stacked = seq
        T = len(seq)
        folded = _map_leaves(fold_time, stacked) if self.batched else stacked
        return folded, T, isinstance(seq, (list, tuple))

    def _unfold(self, y, T, was_list):
        stacked = _map_leaves(lambda a: unfold_time(a, T), y) if self.batched else y
        return [_step(stacked, t) for t in range(T)] if was_list else stacked

    # ---------------------------------------------------------------- compute
    def updateOutput(self, input):
        m = self.module
        if takes_sequences(m):
            self.output = child_call(self, 0, m, m.forward, input)
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

    def _run_backward(self, input, gradOutput, fn):
        """``fn(x, g)`` on the module, with folded arguments for a plain module; its result
        (a gradInput, or None) comes back unfolded."""
        m = self.module
        if takes_sequences(m):
            return child_call(self, 0, m, fn, input, gradOutput)
        folded, g, T, was_list = self._folded_backward(input, gradOutput)
        r = child_call(self, 0, m, fn, folded, g)
        return None if r is None else self._unfold(r, T, was_list)

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._run_backward(input, gradOutput, self.module.updateGradInput)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._run_backward(input, gradOutput, lambda x, g: self.module.accGradParameters(x, g, scale))

    def backward(self, input, gradOutput, scale=1.0):
        self.gradInput = self._run_backward(input, gradOutput,
                                            lambda x, g: self.module.backward(x, g, scale))
        return self.gradInput

    def __repr__(self):
        return self.typename() + " @ " + repr(self.module).replace("\n", "\n  ")
