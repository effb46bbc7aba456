"""Profile one training step of a Table 1 model and print where the time goes.

    python benchmarks/profile_step.py --model ae-convlstm-flow --batch 16 --seq 10

Prints a Markdown table of the functions with the most time of their own
(cProfile ``tottime``); NumPy's matrix products run inside the calling function,
so the convolution functions' own time is mostly GEMM.

cProfile sees only the calling thread. On the host, convolutions, max pooling and the
optimizer's passes run in ranges side by side (``nnlite.backend.host_parallel``), and the
pool threads' share appears in the table as the caller waiting (``acquire``). So the script
also prints the wall time of those split calls, by calling function, and what is left of
the step outside them: one core's work, but for BLAS calls made there, which run on
OpenBLAS's own threads (the Fourier path's bin products and DFT GEMMs, ``nnlite.conv_ops``).

With ``--convolutions`` it first times one more step with every convolution call wrapped,
and prints their wall time by call: direction (forward, or the backward with the gradients
it computes), frames, planes, kernel, frame size, and the path ``nnlite.conv_ops`` took.
"""
import argparse
import collections
import cProfile
import inspect
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nnlite as nn  # noqa: E402  (first: it picks OpenBLAS's kernels before NumPy loads them)
import numpy  # noqa: E402

import models  # noqa: E402
from models.training import Trainer  # noqa: E402


def _wrap_everywhere(original, wrapper):
    """Put ``wrapper`` in place of ``original`` in every loaded nnlite module that holds it."""
    for name, module in list(sys.modules.items()):
        for attr, value in list(vars(module).items()) if name.startswith("nnlite") else ():
            if value is original:
                setattr(module, attr, wrapper)


def time_split_calls():
    """Wrap ``host_parallel`` wherever nnlite's modules call it; returns a Counter that sums
    each split call's wall time under the name of the function that made it."""
    totals = collections.Counter()
    original = nn.backend.host_parallel

    def timed(part, ranges):
        code = sys._getframe(1).f_code
        caller = getattr(code, "co_qualname", code.co_name)  # Python 3.11 names the class too
        t0 = time.perf_counter()
        try:
            return original(part, ranges)
        finally:
            totals[caller] += time.perf_counter() - t0

    _wrap_everywhere(original, timed)
    return totals


def time_convolutions():
    """Wrap ``conv_ops.conv2d`` and ``conv_ops.conv2d_backward`` wherever nnlite's modules call
    them; returns a dict from a call's description to [calls, wall seconds]. Undo with the
    function it also returns."""
    ops = nn.conv_ops
    forward = ops.conv2d
    totals = collections.defaultdict(lambda: [0, 0.0])

    signatures = {fn: inspect.signature(fn) for fn in (forward, ops.conv2d_backward)}

    def describe(fn, args, kwargs):
        a = signatures[fn].bind(*args, **kwargs)
        a.apply_defaults()
        a = a.arguments
        F, C, kH, kW = a["weight"].shape
        geometry = (a["dH"], a["dW"], a["padH"], a["padW"])
        if fn is forward:
            B, _, H, W = a["x"].shape
            return "forward", B, C, F, kH, H, ops.forward_path(C, H, W, F, kH, kW, *geometry, frames=B)
        B, _, H, W = a["input_shape"]
        need_weight = a["x"] is not None
        what = "+".join(["dL/dx"] * a["need_input"] + ["dL/dW"] * need_weight)
        return (f"backward {what}", B, C, F, kH, H,
                ops.backward_path(C, H, W, F, kH, kW, *geometry, a["need_input"], need_weight, B))

    def timed(fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                wall = time.perf_counter() - t0  # before the bookkeeping below
                entry = totals[describe(fn, args, kwargs)]
                entry[0] += 1
                entry[1] += wall
        return call

    wrappers = {fn: timed(fn) for fn in signatures}
    for fn, wrapper in wrappers.items():
        _wrap_everywhere(fn, wrapper)
    return totals, lambda: [_wrap_everywhere(w, fn) for fn, w in wrappers.items()]


def print_convolutions(totals, step_s):
    print("| call | frames | planes | kernel | size | path | calls | wall ms |\n"
          "|---|---:|---|---:|---:|---|---:|---:|")
    for (what, B, C, F, k, H, path), (calls, t) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"| {what} | {B} | {C} -> {F} | {k}x{k} | {H} | {path} | {calls} | {1000 * t:.1f} |")
    conv = sum(t for _, t in totals.values())
    print(f"\nconvolutions {conv:.3f} s of the step's {step_s:.3f} s\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-convlstm-flow", choices=sorted(models.MODELS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=10)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first (as bench_step.py: the heap grows to its high-water mark)")
    p.add_argument("--convolutions", action="store_true",
                   help="also print each convolution call's wall time, from one more step")
    args = p.parse_args(argv)
    nn.manualSeed(0)
    trainer = Trainer(models.build(args.model))
    frames = numpy.random.default_rng(0).random((args.seq + 1, args.batch, 1, 64, 64), dtype=numpy.float32)
    for _ in range(max(1, args.warmup)):
        trainer.step(frames)
    if args.convolutions:
        totals, undo = time_convolutions()
        t0 = time.perf_counter()
        trainer.step(frames)
        print_convolutions(totals, time.perf_counter() - t0)
        undo()
    split = time_split_calls()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(trainer.step, frames)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:args.top]
    print("| function | calls | own time (s) | share |\n|---|---:|---:|---:|")
    for (path, line, name), (_, calls, tottime, _, _) in rows:
        where = f"{os.path.relpath(path) if os.path.exists(path) else path}:{line}({name})"
        print(f"| `{where}` | {calls} | {tottime:.3f} | {100 * tottime / total:.0f}% |")
    print(f"\nstep total {total:.3f} s")
    inside = sum(split.values())
    calls = ", ".join(f"{name} {t:.3f}" for name, t in split.most_common())
    print(f"split calls (host_parallel, wall s): {calls or 'none'}; {inside:.3f} s of the "
          f"step's {wall:.3f} s, {wall - inside:.3f} s outside them")


if __name__ == "__main__":
    main()
