"""The one interface every model family shares: training, evaluation and pictures call only this.

A *batch* is a dict of arrays in the model's namespace (NumPy or CuPy). It always holds
``"frames"``, a stacked sequence (T, B, 1, H, W) in [0, 1]; a model that needs more names
it in ``train_needs`` / ``eval_needs`` and the data loader adds it (``"labels"``: per-pixel
digit classes (T, B, H, W); ``"flow"``, ``"flow_mask"``: the generator's true motion).

Training (``models.training.Trainer``) does, for every family::

    inputs, targets = model.split(batch)
    output = model.forward(inputs)
    loss = criterion.updateOutput(output, targets)      # criterion = model.make_criterion(name)
    model.backward(inputs, criterion.updateGradInput(output, targets))

Outputs and targets may be arrays or lists of arrays (a ``ParallelCriterion`` for several
decoders). Extra loss terms that a module injects in backward (the flow smoothness) are
reported by ``loss_terms()`` for logging. Evaluation sums ``evaluate_batch`` over the test
batches; pictures show ``picture_rows``.

The Table 1 models (this class's defaults) take ``X`` (T, B, 1, H, W) and return ``Y``
(T - first, B, 1, H, W) where ``Y[k]`` predicts frame ``first + k + 1`` from frames
``0 .. first + k``. Recurrent models predict from the first frame on (``first = 0``);
AE-Conv needs a window of 10 frames (``first = 9``). Their test metric is Table 1's: the
next frame after ``n_inputs = 10`` input frames.
"""
import nnlite as nn


class VideoPredictor:
    """Mixin for the models: what a step trains on, its loss, its test metrics, its pictures."""
    #: index of the first input frame after which the model makes a prediction
    first = 0
    #: frames the model reads before the frame(s) it is scored on at test time
    n_inputs = 10
    #: extra batch entries training needs (besides "frames"): "labels", "flow", "flow_mask"
    train_needs = ()
    #: extra batch entries evaluation needs
    eval_needs = ()

    @classmethod
    def typename(cls):
        return "models." + cls.__name__

    @property
    def min_frames(self):
        """The shortest sequence the test metric and the pictures need."""
        return self.n_inputs + 1

    @property
    def min_train_frames(self):
        """The shortest sequence a training step can use (one prediction and its target)."""
        return self.first + 2

    def targets(self, frames):
        """The frames that the predictions for input ``frames[:-1]`` should match."""
        return frames[self.first + 1:]

    def split(self, batch):
        """``(inputs, targets)`` of one training step on ``batch``."""
        frames = batch["frames"]
        return frames[:-1], self.targets(frames)

    def make_criterion(self, loss):
        """The reconstruction criterion by name: ``'bce'`` or ``'mse'`` (per-pixel mean)."""
        if loss == "bce":
            return nn.BCECriterion()
        if loss == "mse":
            return nn.MSECriterion()
        raise ValueError(f"{type(self).__name__}: unknown loss {loss!r}; expected 'bce' or 'mse'")

    def loss_terms(self):
        """Extra loss terms injected in backward, by name, as 0-d arrays (logged, not re-added)."""
        return {}

    def predict(self, batch):
        """The model's prediction of frame ``n_inputs`` from frames ``0 .. n_inputs-1`` (B, 1, H, W)."""
        return self.forward(batch["frames"][:self.n_inputs])[-1]

    def evaluate_batch(self, batch):
        """Per-batch *sums over sequences* of the test metrics, as 0-d arrays, and ``sequences``.

        Table 1's metric: the next frame after ``n_inputs`` inputs, mean per-pixel BCE and
        squared error per sequence, for the model and for copying the last input frame. The
        caller divides by the number of sequences; nothing here reads the device.
        """
        frames = batch["frames"]
        xp = nn.get_xp(frames)
        target = frames[self.n_inputs]
        copy = xp.clip(frames[self.n_inputs - 1], 0, 1)
        sums = {}
        for name, pred in (("", self.predict(batch)), ("copy_", copy)):
            sums[name + "bce"] = per_pixel_bce(pred, target).sum()
            sums[name + "sqerr"] = ((pred - target) ** 2).mean(axis=tuple(range(1, pred.ndim))).sum()
        sums["sequences"] = frames.shape[1]
        return sums

    def summarize(self, means):
        """The reported metrics from the means over sequences of ``evaluate_batch``'s sums.

        The default reports them as they are. A metric that is a ratio of totals (a
        per-class accuracy: correct pixels over pixels of the class) is returned as its two
        sums and divided here, where the per-sequence averaging cancels.
        """
        return means

    #: ``(name, rgb)`` pairs that explain the colours of ``picture_rows``' RGB tiles (None: none)
    picture_key = None

    def picture_rows(self, batch):
        """Labelled rows for the pictures of the batch's first sequence after ``predict``.

        A list of ``(label, [tile, ...])``; a tile is an (H, W) array in [0, 1], an (H, W, 3)
        RGB picture in [0, 1] or an (h, w, 2) flow (y, x) in pixels. Call ``predict`` (or
        ``evaluate_batch``) first.
        """
        frames = nn.to_numpy(batch["frames"][:, 0, 0])
        pred = nn.to_numpy(self.output[-1][0, 0])
        return [("input", list(frames[:self.n_inputs])),
                ("truth", [frames[self.n_inputs]]),
                ("prediction", [pred])]


def per_pixel_bce(pred, target):
    """Mean per-pixel binary cross-entropy of each sequence of a (B, ...) batch: (B,).

    ``BCECriterion``'s formula (its ``log_likelihood``), averaged per sequence.
    """
    return -nn.BCECriterion.log_likelihood(pred, target).mean(axis=tuple(range(1, pred.ndim)))
