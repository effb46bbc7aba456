#!/usr/bin/env python3
"""Train and evaluate the video autoencoders of Patraucean et al. (2016) on Moving MNIST.

Quick start (CPU, embedded digits, a few minutes)::

    python train.py --model ae-convlstm-flow --iterations 60 --batch-size 4 --seq-len 11 \\
        --n-train 200 --lr 1e-3 --out runs/flow

writes ``runs/flow/checkpoint.h5``, ``runs/flow/metrics.jsonl`` and
``runs/flow/prediction.png``. ``--resume`` continues from the checkpoint with the same
loss trajectory as an uninterrupted run; ``--eval CHECKPOINT`` reports Table 1's
metric on the test sequences; ``--summary`` prints the model and its parameter count.
"""
import argparse
import json
import os
import sys
import time

import numpy

import models
import moving_mnist
import nnlite as nn
from models.evaluation import evaluate, prediction_strip
from models.training import Trainer, TrainingDiverged


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--model", default="ae-convlstm-flow", choices=sorted(models.MODELS), help="architecture of Table 1")
    a("--backend", default="numpy", choices=["numpy", "cupy"], help="numpy (CPU) or cupy (CUDA GPU)")
    a("--batch-size", type=int, default=16, help="sequences per step (paper: 16)")
    a("--seq-len", type=int, default=20, help="frames per training sequence (paper: 20)")
    a("--iterations", type=int, default=None, help="training steps (overrides --epochs)")
    a("--epochs", type=float, default=1.0, help="passes over the training set")
    a("--lr", type=float, default=1e-4, help="RMSprop learning rate (paper: 1e-4)")
    a("--lr-decay", type=float, default=0.9, help="learning-rate factor every --lr-decay-every epochs")
    a("--lr-decay-every", type=int, default=5, help="epochs between learning-rate decays (paper: 5)")
    a("--clip", type=float, default=50.0, help="clip each gradient entry to [-clip, clip] (0: off)")
    a("--loss", default="bce", choices=["bce", "mse"], help="reconstruction loss (paper: bce)")
    a("--huber-weight", type=float, default=1e-2, help="flow smoothness weight (flow model)")
    a("--seed", type=int, default=0, help="seed of the initial weights, the data and its order")
    a("--digits", default="embedded", help="'embedded' (no download) or a directory of MNIST IDX files")
    a("--n-train", type=int, default=10000, help="training sequences (paper: 10k)")
    a("--n-val", type=int, default=3000, help="validation sequences (paper: 3k)")
    a("--n-test", type=int, default=3000, help="test sequences")
    a("--out", default="runs/default", help="output directory: checkpoint, metrics log, pictures")
    a("--checkpoint-every", type=int, default=100, help="steps between checkpoints (and at the end)")
    a("--log-every", type=int, default=1, help="steps between progress lines")
    a("--resume", action="store_true", help="continue from OUT/checkpoint.h5")
    a("--eval", metavar="CHECKPOINT", help="evaluate a checkpoint on the test set and exit")
    a("--eval-batches", type=int, default=None, help="limit evaluation to this many batches")
    a("--summary", action="store_true", help="print the module tree and parameter count, then exit")
    return p.parse_args(argv)


def array_module(backend):
    if backend == "cupy":
        if not nn.gpu_available():
            sys.exit("train.py: --backend cupy needs CuPy and a CUDA device")
        return nn.backend.cupy
    return numpy


def data_splits(args):
    return moving_mnist.make_splits(n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                                    seq_len=args.seq_len, seed=args.seed, source=args.digits)


def test_batches(splits, args):
    for i, frames in enumerate(moving_mnist.iterate(splits["test"], args.batch_size)):
        if args.eval_batches is not None and i >= args.eval_batches:
            return
        yield frames


def run_eval(args, xp):
    ckpt = nn.load(args.eval)
    model = ckpt["model"]
    if xp is not numpy:
        model.cuda()
    saved = ckpt.get("args", {})
    args.seq_len = max(args.seq_len, 11)
    splits = data_splits(args)
    result = evaluate(model, test_batches(splits, args), xp)
    result["model"] = saved.get("model", type(model).__name__)
    out_dir = os.path.dirname(os.path.abspath(args.eval))
    first = xp.asarray(next(moving_mnist.iterate(splits["test"], 1)))
    result["picture"] = prediction_strip(model, first, os.path.join(out_dir, "test_prediction.png"))
    print(json.dumps(result))
    return result


class Progress:
    """One status line: step, epoch, loss, speed (sequences per second)."""

    def __init__(self, total, batch, start_step):
        self.total, self.batch, self.start = total, batch, start_step
        self.t0 = time.perf_counter()

    def update(self, step, epoch, loss, penalty):
        rate = (step - self.start) * self.batch / (time.perf_counter() - self.t0)
        done = int(30 * step / self.total)
        sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] step {step}/{self.total} "
                         f"epoch {epoch:.2f} loss {loss:.5f} penalty {penalty:.2e} {rate:.1f} seq/s")
        sys.stderr.flush()


def train(args, xp):
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "checkpoint.h5")
    splits = data_splits(args)
    n_train = len(splits["train"])
    per_epoch = -(-n_train // args.batch_size)
    total = args.iterations or int(round(args.epochs * per_epoch))
    kw = dict(loss=args.loss, lr=args.lr, clip=args.clip, decay=args.lr_decay,
              decay_every=args.lr_decay_every)
    if args.resume:
        trainer, _ = Trainer.resume(ckpt_path, device="cuda" if xp is not numpy else "cpu", **kw)
        print(f"resumed from {ckpt_path} at step {trainer.step_count}", file=sys.stderr)
    else:
        nn.manualSeed(args.seed)
        model = models.build(args.model, huber_weight=args.huber_weight) \
            if args.model == "ae-convlstm-flow" else models.build(args.model)
        if xp is not numpy:
            model.cuda()
        trainer = Trainer(model, **kw)
    log = open(os.path.join(args.out, "metrics.jsonl"), "a")
    progress = Progress(total, args.batch_size, trainer.step_count)
    trainer.model.training()
    try:
        while trainer.step_count < total:
            # the data order is a function of (seed, epoch): a resumed run sees the same batches
            epoch_index, first = divmod(trainer.step_count, per_epoch)
            order = numpy.random.default_rng([args.seed, epoch_index]).permutation(n_train)
            for b in range(first, per_epoch):
                if trainer.step_count >= total:
                    break
                idx = order[b * args.batch_size:(b + 1) * args.batch_size]
                frames = xp.asarray(splits["train"].batch(idx))
                epoch = trainer.step_count / per_epoch
                t0 = time.perf_counter()
                loss, penalty = trainer.step(frames, epoch)
                record = dict(step=trainer.step_count, epoch=round(epoch, 4), loss=loss, penalty=penalty,
                              lr=trainer.learning_rate(epoch), step_s=round(time.perf_counter() - t0, 4))
                log.write(json.dumps(record) + "\n")
                log.flush()
                if trainer.step_count % args.log_every == 0:
                    progress.update(trainer.step_count, epoch, loss, penalty)
                if trainer.step_count % args.checkpoint_every == 0 or trainer.step_count == total:
                    trainer.save(ckpt_path, {"args": vars(args)})
    except TrainingDiverged as e:
        sys.stderr.write("\n")
        sys.exit(f"train.py: {e}")
    finally:
        log.close()
    sys.stderr.write("\n")
    val = xp.asarray(next(moving_mnist.iterate(splits["val"], 1)))
    if val.shape[0] >= 11:
        print("picture:", prediction_strip(trainer.model, val, os.path.join(args.out, "prediction.png")))
    print(f"checkpoint: {ckpt_path}")
    return trainer


def main(argv=None):
    args = parse_args(argv)
    xp = array_module(args.backend)
    if args.summary:
        model = models.build(args.model)
        print(model)
        print(f"parameters: {models.count_parameters(model):,}")
        return
    if args.eval:
        return run_eval(args, xp)
    return train(args, xp)


if __name__ == "__main__":
    main()
