#!/usr/bin/env python3
"""Train and evaluate the video models (Patraucean et al. 2016; Srivastava et al. 2015) on Moving MNIST.

Quick start (CPU, embedded digits, a few minutes)::

    python train.py --model ae-convlstm-flow --iterations 60 --batch-size 4 --seq-len 11 \\
        --n-train 200 --n-val 20 --n-test 20 --lr 1e-3 --out runs/quickstart

A run is a folder (``--out``):

    config.json          every setting of the run, written when it starts
    metrics.jsonl        one JSON line per training step, and one per validation
    checkpoint.h5        the last checkpoint (parameters, optimizer state, step, RNG state)
    checkpoint-best.h5   the checkpoint with the lowest validation loss so far
    prediction.png       labelled inputs, truth, prediction (and flow, with its colour key)
    prediction.gif       the truth and the prediction of every predicted frame, animated
    loss.png             training and validation loss
    eval.json, eval.md   written by --eval (eval-2.json, ... for later evaluations)

``--resume --out DIR`` continues a run with the settings in its config.json (only the
training length, the backend and the logging, validation and checkpoint cadence may be
given again with new values); its loss trajectory is the one of an uninterrupted run.
Ctrl-C or SIGTERM stops after the current step, writes a checkpoint and says how to resume.
``--eval CHECKPOINT`` evaluates with the checkpoint's own model, data and test-set settings.
Mistakes on the command line give one line on stderr and exit code 2.
"""
import argparse
import contextlib
import datetime
import glob
import json
import math
import os
import signal
import sys
import time

import nnlite as nn  # first: importing it picks OpenBLAS's kernels before NumPy loads them
import numpy
from tqdm import tqdm

import models
import moving_mnist
from models import pictures
from models.evaluation import evaluate
from models.training import Trainer, TrainingDiverged
from nnlite.atomic import atomic_path

#: exit codes: a user's mistake, and the conventional 128 + signal number
EXIT_USAGE, EXIT_SIGNAL = 2, 128


class UserError(Exception):
    """A mistake of the user's (a flag, a file): one line on stderr, exit code 2."""


# ------------------------------------------------------------------------------ flags
def _ranged(kind, low=None, high=None, low_open=False):
    """An argparse type: ``kind`` (int or float) within [low, high] (``low_open``: > low)."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return v
    return parse


POSITIVE_INT = _ranged(int, 1)
NONNEG_INT = _ranged(int, 0)
POSITIVE = _ranged(float, 0, low_open=True)
NONNEG = _ranged(float, 0)

#: settings that define a run: saved in config.json; on --resume they must not change
RUN_SETTINGS = {
    "model": ("ae-convlstm-flow", None, "the architecture (see --summary)"),
    "batch_size": (16, POSITIVE_INT, "sequences per step (paper: 16)"),
    "seq_len": (20, _ranged(int, 2), "frames per training sequence (paper: 20)"),
    "lr": (1e-4, POSITIVE, "RMSprop learning rate (paper: 1e-4)"),
    "lr_decay": (0.9, _ranged(float, 0, 1, low_open=True), "learning-rate factor every --lr-decay-every epochs"),
    "lr_decay_every": (5, POSITIVE_INT, "epochs between learning-rate decays (paper: 5)"),
    "clip": (50.0, NONNEG, "clip each gradient entry to [-clip, clip]; 0: off (original code: 50)"),
    "loss": ("bce", None, "reconstruction loss (paper: bce)"),
    "last_frame_only": (False, None, "train on the last prediction of each sequence only "
                                     "(the original Torch script; the paper trains on every next frame)"),
    "seed": (0, NONNEG_INT, "seed of the initial weights, the data and its order"),
    "digits": ("embedded", None, "'embedded' (no download) or a directory of MNIST IDX files"),
    "binarize": (True, None, "binary frames, as the paper feeds them (digits thresholded at 0.5)"),
    "n_train": (10000, POSITIVE_INT, "training sequences (paper: 10k)"),
    "n_val": (3000, POSITIVE_INT, "validation sequences (paper: 3k)"),
    "n_test": (3000, POSITIVE_INT, "test sequences"),
    "val_size": (64, POSITIVE_INT, "validation sequences scored every --val-every steps (a fixed subset)"),
}
#: model options: passed to the model only when given; None means the model's own default
MODEL_FLAGS = {
    "huber_weight": (NONNEG, "flow smoothness weight (ae-convlstm-flow; paper: 1e-2)"),
    "forget_bias": (_ranged(float), "initial forget-gate bias of the memory (paper: 1; original scripts: 0)"),
    "flow_zero_1x1": (None, "original code: a zero-initialised 1x1 conv ends the flow regressor (+6 parameters)"),
    "flow_clamp": (None, "original code: Clamp(-0.5, 0.5) on the flow"),
    "hidden": (POSITIVE_INT, "LSTM units per layer (ae-fclstm: 384; lstm-*, Srivastava et al.: 2048)"),
    "layers": (POSITIVE_INT, "LSTM layers of the encoder and of each decoder (lstm-*; paper: 1 or 2)"),
    "seg_features": (POSITIVE_INT, "segnet, segnet-flow: SegNet's features in its first stage (default 16)"),
    "seg_kernel": (POSITIVE_INT, "segnet, segnet-flow: SegNet's kernel size (default 7)"),
    "labelled_frame": (_ranged(int), "segnet, segnet-flow: the frame of each training sequence with labels "
                                     "(negative: from the end; default -1)"),
    "merge_kernel": (POSITIVE_INT, "segnet-flow: kernel size of the merging block M (default 3)"),
    "seg_weight": (NONNEG, "segnet-flow: weight of the cross-entropy in the loss (default 1)"),
    "init_flow": (None, "segnet-flow: start the flow branch from this ae-convlstm-flow checkpoint"),
}
#: settings that may change between a run and its resumption
CADENCE = {
    "iterations": (None, POSITIVE_INT, "training steps in all (overrides --epochs)"),
    "epochs": (1.0, POSITIVE, "passes over the training set"),
    "backend": ("numpy", None, "numpy (CPU) or cupy (CUDA GPU)"),
    "log_every": (1, POSITIVE_INT, "steps between progress lines (when not on a terminal)"),
    "checkpoint_every": (100, POSITIVE_INT, "steps between checkpoints (and at the end)"),
    "val_every": (100, POSITIVE_INT, "steps between validations (and at the end)"),
    "stall_steps": (50, POSITIVE_INT, "stop when this many steps in a row leave every parameter unchanged"),
    "threads": (None, POSITIVE_INT, "host threads: the BLAS's, and the ranges a convolution's frames "
                                    "and the optimizer's passes split into (default: the BLAS's own, "
                                    "one per core; as benchmarks/bench_step.py --threads)"),
}
CHOICES = {"model": sorted(models.MODELS), "loss": ["bce", "mse"], "backend": ["numpy", "cupy"]}
BOOLEAN = {"last_frame_only", "binarize", "flow_zero_1x1", "flow_clamp"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise UserError(message)


def _flag(name):
    return "--" + name.replace("_", "-")


def parse_args(argv=None):
    """The namespace holds only the flags the user gave (``argparse.SUPPRESS`` defaults)."""
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                argument_default=argparse.SUPPRESS)
    for group, table in (("run settings (saved in config.json)", RUN_SETTINGS),
                         ("length and cadence (may change on --resume)", CADENCE)):
        g = p.add_argument_group(group)
        for name, (default, kind, text) in table.items():
            help_text = f"{text} (default: {default})"
            if name in BOOLEAN:
                g.add_argument(_flag(name), action=argparse.BooleanOptionalAction, help=help_text)
            else:
                g.add_argument(_flag(name), type=kind or str, choices=CHOICES.get(name), help=help_text)
    g = p.add_argument_group("model options (saved in config.json; default: the model's own)")
    for name, (kind, text) in MODEL_FLAGS.items():
        if name in BOOLEAN:
            g.add_argument(_flag(name), action=argparse.BooleanOptionalAction, help=text)
        else:
            g.add_argument(_flag(name), type=kind, help=text)
    g = p.add_argument_group("what to do")
    g.add_argument("--out", help="the run folder (default: runs/default)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out")
    g.add_argument("--overwrite", action="store_true", help="delete the run in --out and start a new one")
    g.add_argument("--eval", metavar="CHECKPOINT", help="evaluate a checkpoint on its test set and exit")
    g.add_argument("--eval-batches", type=POSITIVE_INT, help="limit --eval to this many batches")
    g.add_argument("--summary", action="store_true", help="print the model and its parameter count, then exit")
    return vars(p.parse_args(argv))


def defaults():
    cfg = {k: v[0] for k, v in {**RUN_SETTINGS, **CADENCE}.items()}
    cfg.update({k: None for k in MODEL_FLAGS})
    cfg["created"] = None  # when the run started (UTC), for the record
    return cfg


def resolve(given, saved=None):
    """The run's settings: defaults, then the saved run's, then the flags given.

    A given flag that contradicts a saved run setting is an error naming both values.
    """
    cfg = defaults()
    if saved is not None:
        unknown = sorted(set(saved) - set(cfg))
        if unknown:
            raise UserError(f"the run's config.json has unknown settings {unknown}")
        cfg.update(saved)
        for k in list(RUN_SETTINGS) + list(MODEL_FLAGS):
            if k in given and given[k] != saved.get(k):
                raise UserError(f"{_flag(k)} {given[k]} contradicts the run's {k} = {saved.get(k)!r} "
                                f"(only the length, backend and cadence may change on --resume; "
                                f"start a new --out for other settings)")
    cfg.update({k: v for k, v in given.items() if k in cfg})
    return cfg


def model_options(cfg):
    return {k: cfg[k] for k in MODEL_FLAGS if cfg.get(k) is not None}


def build_model(cfg):
    try:
        return models.build(cfg["model"], **model_options(cfg))
    except (TypeError, ValueError) as e:
        raise UserError(str(e)) from None


# ------------------------------------------------------------------------------- data
def array_module(backend):
    if backend == "cupy":
        if not nn.gpu_available():
            raise UserError("--backend cupy needs CuPy and a CUDA device")
        return nn.backend.cupy
    return numpy


def data_splits(cfg, seq_len=None):
    try:
        return moving_mnist.make_splits(n_train=cfg["n_train"], n_val=cfg["n_val"], n_test=cfg["n_test"],
                                        seq_len=seq_len or cfg["seq_len"], seed=cfg["seed"],
                                        source=cfg["digits"], binarize=cfg["binarize"])
    except (OSError, ValueError) as e:
        raise UserError(f"--digits {cfg['digits']}: {e}") from None


def load_batch(split, indices, needs, xp):
    """One batch as a dict of arrays on ``xp``: "frames" and the extra entries in ``needs``."""
    want = {"labels": "labels" in needs, "flow": "flow" in needs or "flow_mask" in needs}
    if not any(want.values()):
        return {"frames": xp.asarray(split.batch(indices))}
    return {k: xp.asarray(v) for k, v in split.batch(indices, **want).items()}


def batches(split, batch_size, needs, xp, limit=None):
    """The split in order, in batches (the last may be smaller), at most ``limit`` of them."""
    n = -(-len(split) // batch_size)
    for b in range(n if limit is None else min(n, limit)):
        yield load_batch(split, numpy.arange(b * batch_size, min((b + 1) * batch_size, len(split))), needs, xp)


# ------------------------------------------------------------------------------- files
def strict_json(record):
    """A JSON line in which non-finite numbers are null (JSON has no NaN or Infinity)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean, allow_nan=False)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def read_records(path, upto=None):
    """The metrics.jsonl records (those with step <= ``upto`` when given)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if upto is None or r["step"] <= upto]


RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.h5", "checkpoint-best.h5", "prediction.png",
             "prediction.gif", "loss.png", "eval*.json", "eval*.md", "test_prediction*.png")


def remove_run(out, folder=False):
    """Delete the files of the run in ``out`` (and the folder itself when ``folder`` and empty)."""
    for pattern in RUN_FILES:
        for f in glob.glob(os.path.join(glob.escape(out), pattern)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f)
    if folder:
        with contextlib.suppress(OSError):
            os.rmdir(out)


def holds_run(out):
    return any(os.path.exists(os.path.join(out, f)) for f in ("config.json", "checkpoint.h5"))


def print_settings(cfg, path):
    width = max(map(len, cfg))
    lines = [f"settings ({path}):"] + [f"  {k:<{width}}  {json.dumps(v)}" for k, v in cfg.items()]
    if nn.BLAS_KERNELS:  # not a setting of the run, but said, since nnlite chose it
        lines.append(f"OpenBLAS kernels: {nn.BLAS_KERNELS}, nnlite's choice on this processor "
                     "(nnlite/blas_kernels.py; OPENBLAS_CORETYPE chooses another)")
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------- progress
class Progress:
    """A tqdm bar (step, ETA, rate, loss, lr) on a terminal; plain lines every ``every`` steps elsewhere."""

    def __init__(self, total, start, every):
        self.every = every
        self.bar = tqdm(total=total, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True,
                        disable=not sys.stderr.isatty())
        self.total, self.start, self.t0 = total, start, time.perf_counter()

    def update(self, step, epoch, logged, lr):
        values = " ".join(f"{k} {v:.5g}" for k, v in logged.items())
        if not self.bar.disable:
            self.bar.set_postfix_str(f"epoch {epoch:.2f} {values} lr {lr:.3g}", refresh=False)
            self.bar.update(step - self.bar.n)
            return
        if step % self.every == 0 or step == self.total:
            elapsed = time.perf_counter() - self.t0
            rate = (step - self.start) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - step) / rate if rate > 0 else 0.0
            print(f"step {step}/{self.total} epoch {epoch:.2f} {values} lr {lr:.3g} "
                  f"{rate:.2f} step/s ETA {datetime.timedelta(seconds=round(eta))}", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


class StopRequest:
    """SIGINT/SIGTERM during training: remember the signal, finish the step, then stop."""

    def __init__(self):
        self.signum = None
        self.previous = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self.previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)


# ------------------------------------------------------------------------------ train
def validate(trainer, batch_list):
    """The validation record: ``val_loss`` (the training criterion, in evaluation mode) and
    ``val_METRIC`` for each test metric of the model (its ``evaluate_batch``: for the flow
    model the frame errors and the flow's endpoint error) on the fixed validation batches."""
    model = trainer.model
    model.evaluate()
    total, n = 0.0, 0
    for batch in batch_list:
        inputs, targets = model.split(batch)
        b = batch["frames"].shape[1]
        total += float(trainer.criterion.forward(model.forward(inputs), targets)) * b
        n += b
    record = {"val_loss": total / n}
    metrics = evaluate(model, batch_list, progress=False)
    record.update({f"val_{k}": v for k, v in metrics.items() if k != "sequences"})
    model.training()
    return record


def write_pictures(model, batch, out, records):
    paths = []
    model.evaluate()
    model.predict(batch)
    paths.append(pictures.prediction_figure(model.picture_rows(batch), os.path.join(out, "prediction.png"),
                                            title=f"{type(model).__name__}: validation sequence 0",
                                            key=model.picture_key))
    paths.append(pictures.prediction_animation(model, batch, os.path.join(out, "prediction.gif")))
    paths.append(pictures.loss_curve(records, os.path.join(out, "loss.png")))
    model.training()
    return paths


def prepare_run(given):
    """Settings, model or checkpoint, data: everything that can fail on the user's input,
    before anything is written."""
    out = given.get("out", "runs/default")
    config_path = os.path.join(out, "config.json")
    if given.get("resume"):
        if given.get("overwrite"):
            raise UserError("--resume and --overwrite contradict each other")
        if not os.path.exists(config_path):
            raise UserError(f"--resume: {out} holds no run (no config.json)")
        try:
            with open(config_path) as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"--resume: cannot read {config_path}: {e}") from None
        cfg = resolve(given, saved)
    else:
        if holds_run(out) and not given.get("overwrite"):
            raise UserError(f"{out} already holds a run: continue it with --resume, choose a new --out, "
                            f"or replace it with --overwrite")
        cfg = resolve(given)
    xp = array_module(cfg["backend"])
    nn.manualSeed(cfg["seed"])  # the initial weights are a function of the seed
    model = build_model(cfg)  # checks the model options even on resume
    if cfg["seq_len"] < model.min_train_frames:
        raise UserError(f"--seq-len {cfg['seq_len']} is too short for {cfg['model']}: "
                        f"it trains on at least {model.min_train_frames} frames")
    # the pictures and the test metric need min_frames; training crops to --seq-len
    splits = data_splits(cfg, seq_len=max(cfg["seq_len"], model.min_frames))
    return out, cfg, xp, model, splits


def train(given):
    out, cfg, xp, model, splits = prepare_run(given)
    ckpt_path = os.path.join(out, "checkpoint.h5")
    metrics_path = os.path.join(out, "metrics.jsonl")
    kw = dict(loss=cfg["loss"], lr=cfg["lr"], clip=cfg["clip"], decay=cfg["lr_decay"],
              decay_every=cfg["lr_decay_every"], last_frame_only=cfg["last_frame_only"])
    device = "cuda" if xp is not numpy else "cpu"
    new_folder = not os.path.isdir(out)
    if given.get("resume"):
        if not os.path.exists(ckpt_path):
            raise UserError(f"--resume: {out} has no checkpoint yet; start it again with --overwrite")
        try:
            trainer, ckpt = Trainer.resume(ckpt_path, device=device, **kw)
        except (OSError, ValueError) as e:
            raise UserError(f"--resume: {e}") from None
        best = ckpt.get("best_val_loss")
        records = read_records(metrics_path, upto=trainer.step_count)
        write_text(metrics_path, "".join(strict_json(r) + "\n" for r in records))  # each step once
        print(f"resumed {out} at step {trainer.step_count}", file=sys.stderr)
    else:
        if xp is not numpy:
            model.cuda()
        trainer, best, records = Trainer(model, **kw), None, []
    with StopRequest() as stop:
        if not given.get("resume"):
            remove_run(out)  # only reached with --overwrite when a run is there
            os.makedirs(out, exist_ok=True)
            cfg["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=1) + "\n")
            write_text(metrics_path, "")
        with nn.backend.host_threads(cfg["threads"]):
            return run_steps(trainer, cfg, out, xp, splits, best, records, stop,
                             fresh=not given.get("resume"), new_folder=new_folder)


def run_steps(trainer, cfg, out, xp, splits, best, records, stop, fresh, new_folder):
    """The training loop of a prepared run; stops at the end, on a signal, on divergence."""
    ckpt_path, best_path = os.path.join(out, "checkpoint.h5"), os.path.join(out, "checkpoint-best.h5")
    metrics_path = os.path.join(out, "metrics.jsonl")
    print_settings(cfg, os.path.join(out, "config.json"))
    model = trainer.model
    n_train = len(splits["train"])
    per_epoch = -(-n_train // cfg["batch_size"])
    total = cfg["iterations"] or max(1, int(round(cfg["epochs"] * per_epoch)))
    needs = tuple(model.train_needs) + tuple(model.eval_needs)
    val_batches = list(batches(splits["val"], cfg["batch_size"], needs, xp,
                               limit=-(-min(cfg["val_size"], len(splits["val"])) // cfg["batch_size"])))
    train_len = cfg["seq_len"]

    def save(path):
        trainer.save(path, {"config": cfg, "best_val_loss": best})
        return path

    progress = Progress(total, trainer.step_count, cfg["log_every"])
    log = open(metrics_path, "a")
    stalled = 0
    message, code = None, 0
    model.training()
    try:
        while trainer.step_count < total and stop.signum is None and code == 0:
            # the data order is a function of (seed, epoch): a resumed run sees the same batches
            epoch_index, b = divmod(trainer.step_count, per_epoch)
            order = numpy.random.default_rng([cfg["seed"], epoch_index]).permutation(n_train)
            idx = order[b * cfg["batch_size"]:(b + 1) * cfg["batch_size"]]
            batch = load_batch(splits["train"], idx, model.train_needs, xp)
            batch["frames"] = batch["frames"][:train_len]
            epoch = trainer.step_count / per_epoch
            t0 = time.perf_counter()
            try:
                logged = trainer.step(batch, epoch)
            except TrainingDiverged as e:
                message, code = f"{e}; stopping (try a lower --lr)", 1
                break
            step = trainer.step_count
            lr = trainer.learning_rate(epoch)
            record = dict(step=step, epoch=round(epoch, 4), **logged, lr=lr,
                          step_s=round(time.perf_counter() - t0, 4))
            stalled = stalled + 1 if not trainer.moved else 0
            if step % cfg["val_every"] == 0 or step == total:
                record.update(validate(trainer, val_batches))
                if best is None or record["val_loss"] < best:
                    best = record["val_loss"]
                    save(best_path)
            log.write(strict_json(record) + "\n")
            log.flush()
            records.append(record)
            progress.update(step, epoch, logged, lr)
            if step % cfg["checkpoint_every"] == 0 or step == total:
                save(ckpt_path)
            if stalled >= cfg["stall_steps"]:
                message, code = (f"no parameter has changed for {stalled} steps (saturated outputs or "
                                 f"vanished gradients, loss {logged['loss']:.5g}); stopping "
                                 f"(lower --lr)"), 1
    finally:
        log.close()
        progress.close()
    step = trainer.step_count
    if stop.signum is not None or code:
        if step > 0:
            save(ckpt_path)
            where = f"the checkpoint {ckpt_path} holds step {step}"
        elif fresh:  # nothing to keep: leave no half-made run behind
            remove_run(out, folder=new_folder)
            where = "no step was completed; nothing was kept"
        else:
            where = f"the checkpoint {ckpt_path} is unchanged"
        if stop.signum is not None:
            name = signal.Signals(stop.signum).name
            print(f"train.py: {name} at step {step}; {where}. Continue with: "
                  f"python train.py --resume --out {out}", file=sys.stderr)
            sys.exit(EXIT_SIGNAL + stop.signum)
        print(f"train.py: {message}; {where}", file=sys.stderr)
        sys.exit(code)
    for p in write_pictures(model, val_batches[0], out, records):
        print("picture:", p)
    print(f"checkpoint: {ckpt_path}")
    return trainer


# ------------------------------------------------------------------------------- eval
def next_free(out, stem, ext):
    path, k = os.path.join(out, f"{stem}.{ext}"), 1
    while os.path.exists(path):
        k += 1
        path = os.path.join(out, f"{stem}-{k}.{ext}")
    return path


def run_eval(given):
    path = given["eval"]
    try:
        ckpt = nn.load(path)
    except (OSError, ValueError) as e:
        raise UserError(f"--eval: {e}") from None
    if "config" not in ckpt:
        raise UserError(f"--eval: {path} holds no run settings (a checkpoint written before run "
                        f"folders existed); retrain, or evaluate it from Python with models.evaluation")
    # the test set is the run's; the batch size only groups it (the metrics are per sequence)
    cfg = resolve({k: v for k, v in given.items() if k in CADENCE}, ckpt["config"])
    cfg["batch_size"] = given.get("batch_size", cfg["batch_size"])
    xp = array_module(cfg["backend"])
    model = ckpt["model"]
    if xp is not numpy:
        model.cuda()
    splits = data_splits(cfg, seq_len=max(cfg["seq_len"], model.min_frames))
    limit = given.get("eval_batches")
    n = -(-len(splits["test"]) // cfg["batch_size"])
    with nn.backend.host_threads(cfg["threads"]):
        result = evaluate(model, batches(splits["test"], cfg["batch_size"], model.eval_needs, xp, limit),
                          total=min(n, limit or n))
    result.update(model=cfg["model"], checkpoint=os.path.abspath(path), step=int(ckpt["step"]))
    out = os.path.dirname(os.path.abspath(path))
    first = next(batches(splits["test"], 1, model.eval_needs, xp))
    model.predict(first)
    result["picture"] = pictures.prediction_figure(model.picture_rows(first), next_free(out, "test_prediction", "png"),
                                                   title=f"{result['model']}: test sequence 0",
                                                   key=model.picture_key)
    json_path = next_free(out, "eval", "json")
    write_text(json_path, json.dumps(result, indent=1) + "\n")
    table = ["| metric | value |", "|---|---:|"] + [
        f"| {k} | {v:.5f} |" for k, v in result.items() if isinstance(v, float)]
    md = (f"# Evaluation of {result['model']} at step {result['step']}\n\n{result['sequences']} test "
          f"sequences; means per sequence.\n\n" + "\n".join(table) + "\n")
    write_text(json_path[:-len("json")] + "md", md)
    print("\n".join(table))
    print(f"report: {json_path}")
    return result


def summary(given):
    cfg = resolve(given)
    model = build_model(cfg)
    print(model)
    print(f"parameters: {models.count_parameters(model):,}")


def main(argv=None):
    try:
        given = parse_args(argv)
        if given.get("summary"):
            return summary(given)
        if given.get("eval"):
            return run_eval(given)
        return train(given)
    except UserError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("train.py: interrupted before training started; nothing was written", file=sys.stderr)
        sys.exit(EXIT_SIGNAL + signal.SIGINT)


if __name__ == "__main__":
    main()
