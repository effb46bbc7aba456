"""Time each convolution of the Table 1 models, forward and backward, on each path.

    python benchmarks/conv_paths.py

For every 7x7 'same' convolution of AE-Conv and of AE-ConvLSTM's two ConvLSTMs, at
batch 16 x 10 frames (the ConvLSTMs' input-to-gates maps run once over the 160
frames, their hidden-to-gates maps once per step over 16), it prints the best of
``--repeats`` times of ``conv_ops.conv2d`` on each forward path (``columns``,
``shift``, ``rows``, ``fourier``), of ``conv_ops.conv2d_backward`` (both gradients) on each
backward path (``columns``, ``gradient``, ``rows``, ``fourier``), and of the backward without the input
gradient (what a model's first layer needs after ``noGradInput``), each with its share
of the SGEMM figure measured at the start; a star marks the path that
``forward_path``/``backward_path`` picks by memory traffic and multiply-adds.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnlite import backend, conv_ops  # noqa: E402  (first: it picks OpenBLAS's kernels before NumPy loads them)
import numpy  # noqa: E402

from benchmarks.conv_parts import best_ms  # noqa: E402

#: (label, frames, input planes, output planes, frame size)
LAYERS = [("ae-conv 1", 16, 10, 16, 64), ("ae-conv 2", 16, 16, 64, 32), ("ae-conv 3", 16, 64, 16, 32),
          ("ae-conv 4 (decoder)", 16, 16, 1, 64), ("convlstm 1 input", 160, 16, 256, 32),
          ("convlstm 1 hidden (1 step)", 16, 64, 256, 32), ("convlstm 2 input", 160, 64, 64, 32),
          ("convlstm 2 hidden (1 step)", 16, 16, 64, 32)]


def time_layer(rng, B, C, F, n, k, repeats, forward, backward):
    """Best forward, backward and weight-only backward times (ms) on the given paths."""
    pad = k // 2
    x = rng.random((B, C, n, n), dtype=numpy.float32)
    w = rng.random((F, C, k, k), dtype=numpy.float32)
    b = numpy.zeros(F, numpy.float32)
    gy = rng.random((B, F, n, n), dtype=numpy.float32)
    gw, gb = numpy.zeros_like(w), numpy.zeros_like(b)
    geometry = dict(padH=pad, padW=pad)
    conv_ops.FORWARD_PATH, conv_ops.BACKWARD_PATH = forward, backward
    try:
        return (best_ms(lambda: conv_ops.conv2d(x, w, b, **geometry), repeats),
                best_ms(lambda: conv_ops.conv2d_backward(gy, w, x.shape, x, gw, gb, **geometry), repeats),
                best_ms(lambda: conv_ops.conv2d_backward(gy, w, x.shape, x, gw, gb, need_input=False,
                                                         **geometry), repeats))
    finally:
        conv_ops.FORWARD_PATH = conv_ops.BACKWARD_PATH = None


FORWARD_PATHS = ("columns", "shift", "rows", "fourier")
BACKWARD_PATHS = ("columns", "gradient", "rows", "fourier")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    backend.keep_freed_host_memory()  # as the Trainer does: large arrays come back without page faults
    rng = numpy.random.default_rng(0)
    a = rng.random((2048, 2048), dtype=numpy.float32)
    sgemm = 2 * 2048 ** 3 / 1e9 / (best_ms(lambda: a @ a, args.repeats) / 1e3)
    print(f"sgemm_2048_gflops {sgemm:.1f}\n")
    print("| layer | planes | path (forward / backward) | forward ms (% sgemm) | backward ms (% sgemm) "
          "| backward, no dL/dx, ms |")
    print("|---|---|---|---:|---:|---:|")
    k, pad = args.k, args.k // 2
    for label, B, C, F, n in LAYERS:
        gflop = 2 * B * F * C * k ** 2 * n * n / 1e9
        picks = (conv_ops.forward_path(C, n, n, F, k, k, padH=pad, padW=pad, frames=B),
                 conv_ops.backward_path(C, n, n, F, k, k, padH=pad, padW=pad, frames=B))
        for fwd, bwd in zip(FORWARD_PATHS, BACKWARD_PATHS):
            backend.free_scratch()
            f_ms, b_ms, bw_ms = time_layer(rng, B, C, F, n, k, args.repeats, fwd, bwd)
            shown = f"{fwd}{'*' if fwd == picks[0] else ''} / {bwd}{'*' if bwd == picks[1] else ''}"
            print(f"| {label} | {C} -> {F} | {shown} | {f_ms:.1f} ({100 * gflop / f_ms * 1e3 / sgemm:.0f}%) "
                  f"| {b_ms:.1f} ({100 * 2 * gflop / b_ms * 1e3 / sgemm:.0f}%) | {bw_ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
