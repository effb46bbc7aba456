"""How long a convolutional model's training step spends in its convolutions' matrix
products alone: a floor for any GEMM-based implementation of the same convolutions.

    python benchmarks/gemm_bound.py --model ae-conv

Runs one warm-up step and then one recorded step of the model, at batch 16 x 10 frames
on NumPy, as ``bench_step.py`` builds it. Every ``numpy.matmul`` call of the recorded
step is kept with its operands. Afterwards each product is timed again alone on the same
operands and output (best of ``--repeats``), with none of the copies, sums and layout
changes around it. It prints the products grouped by operand shapes, slowest first, with
their GFLOP/s, then the step's time and the sum of its products' times.

A step can be no faster than that sum unless its products change: other shapes, fewer
multiply-adds (an FFT), or code that is not a BLAS call. ``conv_ops`` makes every
product of a convolution with ``xp.matmul``; ``Linear`` and ``LSTM`` write theirs with
``@``, which this does not record, so it takes the three convolutional Table 1 models.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# first: bench_step imports nnlite, which picks OpenBLAS's kernels, before NumPy loads them
from benchmarks.bench_step import blas_line, make_frames, make_trainer, parse_args  # noqa: E402
import numpy  # noqa: E402

MODELS = ["ae-conv", "ae-convlstm", "ae-convlstm-flow"]


def record_products(step):
    """Run ``step()`` with ``numpy.matmul`` wrapped; return its time and the (a, b, out) of each call."""
    calls, matmul = [], numpy.matmul

    def recording(a, b, out=None):
        calls.append((a, b, out))
        return matmul(a, b, out=out)

    numpy.matmul = recording
    try:
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0, calls
    finally:
        numpy.matmul = matmul


def product_flops(a, b):
    """2 m k n per matrix of a (batched) product of a (..., m, k) and b (..., k, n)."""
    batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return 2 * int(numpy.prod(batch)) * a.shape[-2] * a.shape[-1] * b.shape[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-conv", choices=MODELS)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    bench = parse_args(["--model", args.model])
    frames = make_frames(bench)
    trainer = make_trainer(args.model, bench, "cpu")
    trainer.step(frames)  # warm-up: optimizer state, work buffers
    step_s, calls = record_products(lambda: trainer.step(frames))
    groups = {}
    for a, b, out in calls:
        best = min(_timed(a, b, out) for _ in range(args.repeats))
        key = (a.shape, b.shape)
        seconds, flops, n = groups.get(key, (0.0, 0, 0))
        groups[key] = (seconds + best, flops + product_flops(a, b), n + 1)
    print(blas_line())
    print("| a | b | calls | ms | GFLOP/s |\n|---|---|---:|---:|---:|")
    for (sa, sb), (seconds, flops, n) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        print(f"| {sa} | {sb} | {n} | {seconds * 1e3:.1f} | {flops / seconds / 1e9:.0f} |")
    total = sum(seconds for seconds, _, _ in groups.values())
    print(f"\n{args.model}: step {step_s * 1e3:.1f} ms, {len(calls)} products, products alone {total * 1e3:.1f} ms")


def _timed(a, b, out):
    t0 = time.perf_counter()
    numpy.matmul(a, b, out=out)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
