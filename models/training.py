"""One training step, the learning-rate schedule, and checkpoints.

A step is Torch's closure pattern: ``feval(x)`` runs forward over the sequence,
the loss, backward through time, clips the flat gradient to ``[-clip, clip]``
(the paper's clipping) and returns ``(loss, grads)``; ``optim.rmsprop`` then
updates the flat parameter vector in place.
"""
import math
import os

import nnlite as nn
from nnlite.optim import clip_gradients


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf: training stops and the last good checkpoint is kept.

    Raised before the update, so the parameters and the optimizer state are those of
    the last good step."""


def make_criterion(loss):
    if loss == "bce":
        return nn.BCECriterion()
    if loss == "mse":
        return nn.MSECriterion()
    raise ValueError(f"unknown loss {loss!r}; expected 'bce' or 'mse'")


class Trainer:
    """Holds a model, its flat parameters and the RMSprop state; ``step(frames)`` trains once."""

    def __init__(self, model, loss="bce", lr=1e-4, clip=50.0, decay=0.9, decay_every=5):
        self.model = model
        self.criterion = make_criterion(loss)
        self.params, self.grads = model.getParameters()
        self.optimizer = nn.optim.RMSprop({"learningRate": lr})
        self.lr0, self.clip, self.decay, self.decay_every = lr, clip, decay, decay_every
        self.step_count = 0

    def learning_rate(self, epoch):
        """The paper's schedule: ``lr0 * decay ** (epoch // decay_every)``."""
        return nn.optim.step_decay(self.lr0, int(epoch), self.decay, self.decay_every)

    def step(self, frames, epoch=0):
        """Train on one batch of sequences (T, B, 1, H, W); returns (loss, flow penalty)."""
        inputs, targets = frames[:-1], self.model.targets(frames)

        def feval(x):
            self.grads.fill(0)
            pred = self.model.forward(inputs)
            loss = self.criterion.forward(pred, targets)
            if not math.isfinite(loss):
                # raised inside feval, before the update: parameters and RMSprop state stay good
                raise TrainingDiverged(f"loss became {loss} at step {self.step_count + 1}; stopping "
                                       f"(lower --lr or --clip; the last checkpoint is kept)")
            self.model.backward(inputs, self.criterion.backward(pred, targets))
            if self.clip:
                clip_gradients(self.grads, self.clip)
            return loss, self.grads

        self.optimizer.config["learningRate"] = self.learning_rate(epoch)
        _, (loss,) = self.optimizer.step(feval, self.params)
        self.step_count += 1
        return loss, self.model.penalty()

    def state(self, extra=None):
        """Everything needed to resume: model, optimizer state, step counter, RNG state, extras."""
        state = {"model": self.model, "optim": self.optimizer.state_dict(), "step": self.step_count,
                 "rng": nn.getRNGState()}
        state.update(extra or {})
        return state

    def save(self, path, extra=None):
        """Write a checkpoint atomically (``nnlite.save`` writes a temp file, then renames)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        nn.save(path, self.state(extra))

    @classmethod
    def resume(cls, path, device="cpu", **kwargs):
        """Rebuild a Trainer from a checkpoint; returns (trainer, checkpoint dict)."""
        ckpt = nn.load(path)
        model = ckpt["model"]
        if device == "cuda":
            model.cuda()
        trainer = cls(model, **kwargs)
        trainer.optimizer.load_state_dict(ckpt["optim"])  # its arrays follow the parameters' device
        trainer.step_count = int(ckpt["step"])
        if "rng" in ckpt:  # checkpoints from before the RNG state was saved carry none
            nn.setRNGState(ckpt["rng"])
        return trainer, ckpt
