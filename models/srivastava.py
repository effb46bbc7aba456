"""The LSTM encoder-decoder models of Srivastava, Mansimov and Salakhutdinov (ICML 2015).

Frames are flattened to vectors of P = H W pixels (4096 for 64x64 Moving MNIST). With
``layers`` stacked LSTMs of ``hidden`` units (the paper: 2048, 1 or 2 layers)::

    encoder:  LSTM_1(P -> hidden), LSTM_l(hidden -> hidden), l = 2..layers, read frames 0..n-1
    copy:     (h_l, c_l) = the encoder's final output and cell state of layer l, every l
    decoder:  the same stack, started from the copied (h_l, c_l); per step a readout
              y_t = sigmoid(W h_top,t + b)  (Linear hidden -> P, logistic units)

* **LSTM Autoencoder** (section 2.1): one decoder reconstructing the n input frames in
  reverse order, ``y_k`` ~ frame ``n-1-k``.
* **Future Predictor** (2.2): one decoder predicting frames ``n .. n+F-1``.
* **Composite** (2.4): one encoder, both decoders started from the same copied state; the
  loss is the sum of both decoders' cross-entropies.
* **Conditional** decoders (2.3): the input of step k >= 1 is the frame of step k-1, the
  ground truth when training (teacher forcing) and the decoder's own prediction in
  evaluation mode (run free, step by step); step 0 gets a zero frame. An unconditioned
  decoder gets no input at all: its first LSTM has ``inputSize`` 0, so it is driven by its
  copied state and biases alone (no dead input weights).

Backward (BPTT through the copy): each decoder hands back ``dL/dh_l = gradH0`` and
``dL/dc_l = gradC0`` of its layers; the encoder receives their sum over decoders,
``dL/dh_l`` added to the gradient of its last output of layer l and ``dL/dc_l`` as
``gradFinalCell`` (the gradient at its final cell state), then runs its own BPTT. A
conditional decoder's input gradient reaches the ground-truth frames it was fed.

The LSTMs are Graves (2013)'s, as the paper says: with peepholes (``nn.LSTM(...,
peephole=True)``: diagonal weights from the cell to the input, forget and output gates,
his equations 7-11), gate biases, the project's memory init (U(-0.08, 0.08), forget bias
1). Layers are stacked plainly (layer l reads layer l-1; the readout sees the top layer
only): the paper mentions no skip connections. Parameters, with
``lstm(i, h) = 4 h (i + h + 1) + 3 h``::

    encoder            lstm(P, h) + (layers - 1) lstm(h, h)
    each decoder       lstm(P or 0, h) + (layers - 1) lstm(h, h) + h P + P

(P if conditional, 0 if not). At the paper's size (P = 4096, h = 2048, 2 layers) the
composite model has 201,420,800 parameters.
"""
import nnlite as nn
from nnlite.containers import OnePassContainer
from nnlite.checks import check_array, check_int, check_table
from nnlite.recurrent import fold_time, unfold_time

from .video_predictor import VideoPredictor, per_pixel_bce

DECODER_KINDS = (None, "unconditioned", "conditional")


def lstm_parameters(n_in, hidden):
    """Parameters of a peephole ``nn.LSTM(n_in, hidden)``: weight, bias, weightHidden, peepholes."""
    return 4 * hidden * (n_in + hidden + 1) + 3 * hidden


def parameter_count(height, width, hidden, layers, conditional):
    """The module doc's formula; ``conditional``: one flag per decoder."""
    P, h = height * width, hidden
    deep = (layers - 1) * lstm_parameters(h, h)
    return lstm_parameters(P, h) + deep + sum(lstm_parameters(P if c else 0, h) + deep + h * P + P
                                              for c in conditional)


class _Wired(OnePassContainer):
    """A container wired by hand: ``_backward_pass(input, gradOutput, step)`` runs the
    children's ``step(module, x, g)`` in reverse order and returns the gradient at the input
    (``nnlite.containers.OnePassContainer``)."""

    @classmethod
    def typename(cls):
        return "models." + cls.__name__


def _lstm_stack(n_in, hidden, layers):
    return [nn.LSTM(n_in, hidden, True)] + [nn.LSTM(hidden, hidden, True) for _ in range(layers - 1)]


class LSTMEncoder(_Wired):
    """``LSTMEncoder(nInput, hidden, layers)``: stacked peephole LSTMs over (T, B, nInput);
    the output is the final state of every layer, ``[h_1, c_1, ..., h_L, c_L]`` (each (B, hidden)).

    Backward takes ``[dh_1, dc_1, ...]``: from the top layer down, layer l gets
    ``gy = gradInput of layer l+1`` (zero for the top) with ``dh_l`` added at the last step,
    and ``gradFinalCell = dc_l``.
    """

    def __init__(self, nInput, hidden, layers):
        self.lstms = _lstm_stack(nInput, hidden, layers)
        super().__init__(*self.lstms)

    def updateOutput(self, input):
        h, self.output = input, []
        for m in self.lstms:
            h = m.forward(h)
            self.output += [h[-1], m.finalCell]
        return self.output

    def _backward_pass(self, input, gradOutput, step):
        check_table(self, gradOutput, 2 * len(self.lstms), "gradOutput")
        g = None
        for l in range(len(self.lstms) - 1, -1, -1):
            m = self.lstms[l]
            # a fresh array: the layer above keeps its gradInput (accGradParameters reads it again)
            g = nn.get_xp(m.output).zeros_like(m.output) if g is None else g.copy()
            g[-1] += gradOutput[2 * l]
            m.gradFinalCell = gradOutput[2 * l + 1]
            g = step(m, self.lstms[l - 1].output if l else input, g)
            m.gradFinalCell = None
        return g


class LSTMDecoder(_Wired):
    """``LSTMDecoder(nOutput, hidden, layers, conditional)``: stacked peephole LSTMs started
    from a given state, with a logistic readout per step.

    Input ``[x, h_1, c_1, ..., h_L, c_L]``: ``x`` (T, B, nOutput) the frames fed to steps
    0..T-1 (conditional; (T, B, 0) otherwise: no input), ``(h_l, c_l)`` (B, hidden) the
    initial state of layer l. Output (T, B, nOutput): ``y_t = sigmoid(W h_top,t + b)``.
    In evaluation mode a conditional decoder reads only ``x[0]`` and feeds ``y_{t-1}`` to
    step t. gradInput: ``[dx, dh_1, dc_1, ...]`` (the layers' ``gradH0``, ``gradC0``).
    """

    def __init__(self, nOutput, hidden, layers, conditional):
        self.conditional = bool(conditional)
        self.lstms = _lstm_stack(nOutput if self.conditional else 0, hidden, layers)
        self.readout = nn.Sequential(nn.Linear(hidden, nOutput), nn.Sigmoid())
        if self.conditional:  # free running: one-step sequences that carry the state
            for m in self.lstms:
                m.remember("eval")
        super().__init__(*self.lstms, self.readout)

    def updateOutput(self, input):
        check_table(self, input, 1 + 2 * len(self.lstms))
        x = input[0]
        for l, m in enumerate(self.lstms):
            m.h0, m.c0 = input[1 + 2 * l], input[2 + 2 * l]
        if self.conditional and not self.train:
            self.output = self._run_free(x)
            return self.output
        h = x
        for m in self.lstms:
            h = m.forward(h)
        self.output = unfold_time(self.readout.forward(fold_time(h)), h.shape[0])
        return self.output

    def _run_free(self, x):
        """Evaluation: step t reads the prediction of step t-1 (step 0 reads ``x[0]``)."""
        T, B, n = x.shape
        y = nn.get_xp(x).empty((T, B, n), dtype=x.dtype)
        for m in self.lstms:
            m.forget()
        prev = x[:1]
        for t in range(T):
            h = prev
            for m in self.lstms:
                h = m.forward(h)
            y[t] = self.readout.forward(h[0])
            prev = y[t:t + 1]
        return y

    def _backward_pass(self, input, gradOutput, step):
        T = gradOutput.shape[0]
        top = self.lstms[-1].output
        g = unfold_time(step(self.readout, fold_time(top), fold_time(gradOutput)), T)
        for l in range(len(self.lstms) - 1, -1, -1):
            g = step(self.lstms[l], self.lstms[l - 1].output if l else input[0], g)
        grads = [g]
        for m in self.lstms:
            grads += [m.gradH0, m.gradC0]
        return grads


class LSTMEncoderDecoder(VideoPredictor, _Wired):
    """``LSTMEncoderDecoder(height=64, width=64, hidden=2048, layers=2, n_inputs=10,
    n_future=10, reconstruction=None, future=None)``: the family (see the module doc).

    ``reconstruction`` and ``future`` are each None (no such decoder), 'unconditioned' or
    'conditional'. Input: frames (n_inputs + n_future, B, 1, H, W); the encoder reads the
    first n_inputs, a conditional decoder in training mode reads its ground-truth targets.
    Output: the decoders' predictions (T_d, B, 1, H, W), reconstruction (in reverse time
    order) then future; a list when there are two, else the one array.
    """
    _transient = _Wired._transient + ("_fed",)

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10,
                 reconstruction=None, future=None):
        self.height, self.width = check_int(self, height, "height"), check_int(self, width, "width")
        self.hidden, self.layers = check_int(self, hidden, "hidden"), check_int(self, layers, "layers")
        self.n_inputs = check_int(self, n_inputs, "n_inputs")
        self.n_future = check_int(self, n_future, "n_future")
        self.tasks, decoders = [], []
        for task, kind in (("reconstruction", reconstruction), ("future", future)):
            if kind not in DECODER_KINDS:
                raise ValueError(f"{self.typename()}: {task} must be one of {DECODER_KINDS}, got {kind!r}")
            if kind is not None:
                self.tasks.append(task)
                decoders.append(LSTMDecoder(height * width, hidden, layers, kind == "conditional"))
        if not decoders:
            raise ValueError(f"{self.typename()}: no decoder (reconstruction and future are both None)")
        self.encoder = LSTMEncoder(height * width, hidden, layers)
        self.decoders = decoders
        super().__init__(self.encoder, *decoders)

    @property
    def min_frames(self):
        """Every step, training or test, reads n_inputs frames and scores the n_future after them."""
        return self.n_inputs + self.n_future

    @property
    def min_train_frames(self):
        return self.min_frames

    def parameter_count(self):
        """The module doc's formula for this model (the tests compare it with the arrays)."""
        return parameter_count(self.height, self.width, self.hidden, self.layers,
                               [d.conditional for d in self.decoders])

    def task_frames(self, seq):
        """The targets of each decoder as views of ``seq`` (time on axis 0): the first
        n_inputs steps reversed, and the n_future after them."""
        n = self.n_inputs
        views = {"reconstruction": seq[:n][::-1], "future": seq[n:n + self.n_future]}
        return {task: views[task] for task in self.tasks}

    # ------------------------------------------------------------------ compute
    def _flat(self, frames):
        """(T, B, 1, H, W) -> (T, B, H W), a view."""
        return frames.reshape(frames.shape[:2] + (self.height * self.width,))

    def updateOutput(self, input):
        check_array(self, input, (5,), layout="frames (T, B, 1, H, W)")
        want = (self.min_frames, input.shape[1], 1, self.height, self.width)
        if tuple(input.shape) != want:
            raise ValueError(f"{self.typename()}: input must be {self.min_frames} frames (T, B, 1, "
                             f"{self.height}, {self.width}) = {want}, got {tuple(input.shape)}")
        flat = self._flat(input)
        xp = nn.get_xp(input)
        states = self.encoder.forward(flat[:self.n_inputs])
        self._fed, outputs = [], []
        for dec, target in zip(self.decoders, self.task_frames(flat).values()):
            T, B, P = target.shape
            if dec.conditional:  # step 0 gets a zero frame, step k the target of step k-1
                x = xp.zeros((T, B, P), dtype=input.dtype)
                x[1:] = target[:-1]
            else:
                x = xp.zeros((T, B, 0), dtype=input.dtype)
            self._fed.append(x)
            y = dec.forward([x] + states)
            outputs.append(y.reshape((T, B, 1, self.height, self.width)))
        self.output = outputs if len(outputs) > 1 else outputs[0]
        return self.output

    def _backward_pass(self, input, gradOutput, step):
        grads = gradOutput if len(self.decoders) > 1 else [gradOutput]
        check_table(self, grads, len(self.decoders), "gradOutput")
        flat = self._flat(input)
        grad = nn.get_xp(input).zeros(flat.shape, dtype=input.dtype)
        g_state = None
        states = self.encoder.output
        teacher = self.task_frames(grad).values()
        for dec, x, g, g_target in zip(self.decoders, self._fed, grads, teacher):
            g_in = step(dec, [x] + states, self._flat(g))
            if dec.conditional:
                g_target[:-1] += g_in[0][1:]
            g_state = g_in[1:] if g_state is None else [a + b for a, b in zip(g_state, g_in[1:])]
        grad[:self.n_inputs] += step(self.encoder, flat[:self.n_inputs], g_state)
        return grad.reshape(input.shape)

    # --------------------------------------------------------- the model interface
    def split(self, batch):
        frames = batch["frames"][:self.min_frames]
        targets = list(self.task_frames(frames).values())
        return frames, targets if len(targets) > 1 else targets[0]

    def make_criterion(self, loss):
        """One reconstruction criterion per decoder; two are summed (``ParallelCriterion``)."""
        if len(self.decoders) == 1:
            return super().make_criterion(loss)
        both = nn.ParallelCriterion()
        for _ in self.decoders:
            both.add(super().make_criterion(loss))
        return both

    def _outputs(self):
        return dict(zip(self.tasks, self.output if len(self.tasks) > 1 else [self.output]))

    def predict(self, batch):
        """The future prediction (n_future, B, 1, H, W) (the reconstruction, in reverse time
        order, for an autoencoder alone)."""
        self.forward(batch["frames"][:self.min_frames])
        outputs = self._outputs()
        return outputs.get("future", outputs.get("reconstruction"))

    def evaluate_batch(self, batch):
        """Sums over the batch's sequences: Table 2's cross-entropy of the n_future predicted
        frames summed over pixels and frames (``xent``) and its per-pixel mean (``bce``); the
        same for the reconstruction (``recon_xent``, ``recon_bce``) when there is one."""
        frames = batch["frames"][:self.min_frames]
        self.predict(batch)
        targets = self.task_frames(frames)
        sums = {}
        for task, pred in self._outputs().items():
            per_seq = per_pixel_bce(pred.swapaxes(0, 1), targets[task].swapaxes(0, 1))
            prefix = "" if task == "future" else "recon_"
            sums[prefix + "bce"] = per_seq.sum()
            sums[prefix + "xent"] = per_seq.sum() * (pred.size // pred.shape[1])
        sums["sequences"] = frames.shape[1]
        return sums

    def picture_rows(self, batch):
        """Figure 4's rows for the first sequence: the input frames, their reconstruction (in
        time order), the true future and its prediction. Call ``predict`` first."""
        frames = nn.to_numpy(batch["frames"][:self.min_frames, 0, 0])
        n, rows = self.n_inputs, [("input", list(frames[:self.n_inputs]))]
        outputs = {k: nn.to_numpy(v[:, 0, 0]) for k, v in self._outputs().items()}
        if "reconstruction" in outputs:
            rows.append(("reconstruction", list(outputs["reconstruction"][::-1])))
        if "future" in outputs:
            rows += [("future", list(frames[n:])), ("prediction", list(outputs["future"]))]
        return rows


class LSTMAutoencoder(LSTMEncoderDecoder):
    """lstm-autoencoder: the input reconstructed in reverse order by an unconditioned decoder."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__(height, width, hidden, layers, n_inputs, n_future, reconstruction="unconditioned")


class LSTMFuturePredictor(LSTMEncoderDecoder):
    """lstm-future: the next n_future frames from an unconditioned decoder."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__(height, width, hidden, layers, n_inputs, n_future, future="unconditioned")


class LSTMComposite(LSTMEncoderDecoder):
    """lstm-composite: both unconditioned decoders from one encoder."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__(height, width, hidden, layers, n_inputs, n_future,
                         reconstruction="unconditioned", future="unconditioned")


class LSTMConditionalFuturePredictor(LSTMEncoderDecoder):
    """lstm-future-cond: the future predictor with a conditional decoder."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__(height, width, hidden, layers, n_inputs, n_future, future="conditional")


class LSTMCompositeConditionalFuture(LSTMEncoderDecoder):
    """lstm-composite-cond: the composite model with a conditional future predictor (the
    reconstruction decoder stays unconditioned, as in the paper's Table 2)."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__(height, width, hidden, layers, n_inputs, n_future,
                         reconstruction="unconditioned", future="conditional")
