"""One guarded training step, the learning-rate schedule, and checkpoints.

A step is Torch's closure pattern: ``feval(x)`` runs forward, the loss, backward
through time, clips the flat gradient to ``[-clip, clip]`` (the paper's clipping) and
returns ``(loss, grads)``; ``optim.rmsprop`` then updates the flat parameter vector in
place. Every model family goes through the same code: the model says what it trains on
(``split``), with which criterion (``make_criterion``) and which extra terms it logs
(``loss_terms``); see ``models/video_predictor.py``.

The guard: a step is kept only if the loss, every gradient and every updated parameter
are finite. To stay within one device-to-host transfer per step, the update is applied
and then checked with device reductions; the loss, the logged terms and the verdict come
back together, and a step that failed is undone from a copy of the parameters and the
optimizer state taken before it. Nothing non-finite therefore ever reaches a checkpoint.
"""
import math
import os

import nnlite as nn
from nnlite.backend import host_all, host_any, host_rows, is_array
from nnlite.optim import clip_gradients


class TrainingDiverged(RuntimeError):
    """A step gave a non-finite loss, gradient or parameter; it was undone.

    The parameters and the optimizer state are those of the last good step."""


class Trainer:
    """Holds a model, its flat parameters and the RMSprop state; ``step(batch)`` trains once.

    ``last_frame_only`` trains on the last prediction of each sequence only (the original
    Torch script's objective, SPEC §8); the paper trains on every next frame.

    Creating a Trainer tells the C allocator to keep freed host memory for reuse
    (``nnlite.backend.keep_freed_host_memory``: the steps would otherwise spend about a
    twelfth of their time in the kernel, zeroing fresh pages for the same large arrays).
    """

    def __init__(self, model, loss="bce", lr=1e-4, clip=50.0, decay=0.9, decay_every=5,
                 last_frame_only=False):
        # every step frees and retakes the same large host arrays: keep them off the kernel
        nn.backend.keep_freed_host_memory()
        # nothing needs the gradient of the frames: the model's first layers skip it
        self.model = model.noGradInput()
        self.criterion = model.make_criterion(loss)
        self.params, self.grads = model.getParameters()
        self.optimizer = nn.optim.RMSprop({"learningRate": lr})
        self.lr0, self.clip, self.decay, self.decay_every = lr, clip, decay, decay_every
        self.last_frame_only = last_frame_only
        self.step_count = 0
        self.moved = True
        self._saved = {}  # reused buffers of the state before the step in progress

    def learning_rate(self, epoch):
        """The paper's schedule: ``lr0 * decay ** (epoch // decay_every)``."""
        return nn.optim.step_decay(self.lr0, int(epoch), self.decay, self.decay_every)

    def _objective(self, output, targets):
        """(output, targets) the criterion sees, and how to widen its gradient back."""
        if not self.last_frame_only:
            return output, targets, lambda g: g
        if not (is_array(output) and is_array(targets)):
            raise ValueError(f"Trainer: last_frame_only needs a model with one stacked output, "
                             f"{type(self.model).__name__} returns several")

        def widen(g):
            full = nn.get_xp(g).zeros_like(output)
            full[-1:] = g
            return full
        return output[-1:], targets[-1:], widen

    def _save_state(self):
        """Copy the parameters and the optimizer's arrays into reused buffers."""
        state = {"params": self.params, **self.optimizer.state}
        xp = nn.get_xp(self.params)
        for k in list(self._saved):
            if k not in state:
                del self._saved[k]
        for k, v in state.items():
            if is_array(v):
                buf = self._saved.get(k)
                if buf is None or buf.shape != v.shape or buf.dtype != v.dtype:
                    buf = self._saved[k] = v.copy()
                else:
                    host_rows(lambda rows: xp.copyto(buf[rows], v[rows]), v)
            else:
                self._saved[k] = v

    def _restore_state(self):
        self.params[...] = self._saved["params"]
        for k in list(self.optimizer.state):
            if k not in self._saved:
                del self.optimizer.state[k]  # created by the failed step
        for k, v in self._saved.items():
            if k == "params":
                continue
            if is_array(v):
                self.optimizer.state[k][...] = v
            else:
                self.optimizer.state[k] = v

    def step(self, batch, epoch=0):
        """Train on one batch and return the logged values as floats: ``loss`` and each loss term.

        ``batch`` is a dict (``"frames"`` (T, B, 1, H, W) and what the model needs) or the
        frames alone. Raises ``TrainingDiverged`` when the step was non-finite; it has then
        been undone. Reads the device once. Afterwards ``moved`` says whether any parameter
        changed (a run whose parameters stop moving has saturated).
        """
        batch = batch if isinstance(batch, dict) else {"frames": batch}
        inputs, targets = self.model.split(batch)
        xp = nn.get_xp(self.params)
        checks = {}

        def feval(x):
            self.grads.fill(0)
            output = self.model.forward(inputs)
            out, tgt, widen = self._objective(output, targets)
            loss = xp.asarray(self.criterion.updateOutput(out, tgt))
            self.model.backward(inputs, widen(self.criterion.updateGradInput(out, tgt)))
            if self.clip:
                clip_gradients(self.grads, self.clip)
            checks["loss"] = loss
            checks["grads"] = host_all(lambda rows: xp.isfinite(self.grads[rows]).all(), self.grads)
            return loss, self.grads

        self._save_state()
        self.optimizer.config["learningRate"] = self.learning_rate(epoch)
        with nn.backend.host_xp.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # a diverging step overflows on NumPy; the guard below reports it once, clearly
            self.optimizer.step(feval, self.params)
        terms = self.model.loss_terms()
        # the passes over every parameter run side by side on the host (nnlite.backend.host_rows)
        params, saved = self.params, self._saved["params"]
        ok = checks["grads"] & host_all(lambda rows: xp.isfinite(params[rows]).all(), params)
        moved = host_any(lambda rows: (params[rows] != saved[rows]).any(), params)
        values = [checks["loss"], *terms.values(), ok, moved]
        host = nn.to_numpy(xp.stack([xp.asarray(v, dtype=self.params.dtype) for v in values]))
        logged = dict(zip(["loss", *terms], (float(v) for v in host[:-2])))
        self.moved = bool(host[-1])
        if not (host[-2] and all(math.isfinite(v) for v in logged.values())):
            self._restore_state()
            bad = "the loss" if not math.isfinite(logged["loss"]) else "a gradient or parameter"
            raise TrainingDiverged(f"step {self.step_count + 1} made {bad} non-finite "
                                   f"(loss {logged['loss']}); the update was undone")
        self.step_count += 1
        return logged

    def state(self, extra=None):
        """Everything needed to resume: model, optimizer state, step counter, RNG state, extras."""
        state = {"model": self.model, "optim": self.optimizer.state_dict(), "step": self.step_count,
                 "rng": nn.getRNGState()}
        state.update(extra or {})
        return state

    def save(self, path, extra=None):
        """Write a checkpoint atomically: parameters and optimizer state, no gradients.

        Refuses (``RuntimeError``) to write non-finite parameters; the step guard makes
        that unreachable, so this is the last line of defence, at one read per checkpoint.
        """
        xp = nn.get_xp(self.params)
        if not bool(xp.isfinite(self.params).all()):
            raise RuntimeError(f"Trainer.save: refusing to write non-finite parameters to {path}")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        nn.save(path, self.state(extra), gradients=False)

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
