"""Time the parts of one convolution call: each GEMM against the layout work around it.

    python benchmarks/conv_parts.py                      # the ConvLSTM's 64 -> 256 7x7 hidden map
    python benchmarks/conv_parts.py --frames 4 --c 16 --f 256 --k 7 --size 32

For one batch chunk of ``--frames`` frames it prints, in milliseconds and GFLOP/s,
the forward GEMM, the two backward GEMMs, the im2col copy, col2im, and a plain
copy of as many bytes as the im2col buffer (the memory-bandwidth yardstick), then
the share of the layout work against the GEMM time. That share bounds what the
whole step can reach: if the GEMMs run at a fraction g of the SGEMM figure, a
step whose layout work costs s times its GEMM time reaches at most g / (1 + s).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnlite import conv_ops  # noqa: E402  (first: it picks OpenBLAS's kernels before NumPy loads them)
import numpy  # noqa: E402


def best_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8, help="frames in the chunk (batch 16 runs in chunks of 8)")
    p.add_argument("--c", type=int, default=64, help="input planes")
    p.add_argument("--f", type=int, default=256, help="output planes")
    p.add_argument("--k", type=int, default=7, help="kernel size (odd; padding k // 2)")
    p.add_argument("--size", type=int, default=32, help="frame height and width")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    rng = numpy.random.default_rng(0)
    B, C, F, k, n, pad = args.frames, args.c, args.f, args.k, args.size, args.k // 2
    x = rng.random((B, C, n, n), dtype=numpy.float32)
    gy = rng.random((B, F, n, n), dtype=numpy.float32)
    W2 = rng.random((F, C * k * k), dtype=numpy.float32)
    cols = conv_ops.im2col(x, k, k, 1, 1, pad, pad).copy()
    gyc = conv_ops.to_channel_major(gy)
    y = numpy.empty((F, cols.shape[1]), numpy.float32)
    gcols = numpy.empty_like(cols)
    src, dst = numpy.empty_like(cols), numpy.empty_like(cols)
    gflop = 2 * F * cols.shape[0] * cols.shape[1] / 1e9
    r = args.repeats
    gemms = {
        "forward GEMM  W @ cols": best_ms(lambda: numpy.matmul(W2, cols, out=y), r),
        "weight GEMM   gy @ cols^T": best_ms(lambda: gyc @ cols.T, r),
        "input GEMM    W^T @ gy": best_ms(lambda: numpy.matmul(W2.T, gyc, out=gcols), r),
    }
    im2col_ms = best_ms(lambda: conv_ops.im2col(x, k, k, 1, 1, pad, pad), r)
    layout = {
        "im2col (forward)": im2col_ms,
        "im2col (backward, recomputed)": im2col_ms,
        "col2im": best_ms(lambda: conv_ops.col2im(gcols, B, C, n, n, k, k, 1, 1, pad, pad), r),
    }
    copy_ms = best_ms(lambda: numpy.copyto(dst, src), r)
    a = rng.random((2048, 2048), dtype=numpy.float32)
    sgemm = 2 * 2048 ** 3 / 1e9 / (best_ms(lambda: a @ a, r) / 1e3)
    print(f"chunk: {B} frames, {C} -> {F} planes, {k}x{k}, {n}x{n}; columns {cols.shape[0]} x {cols.shape[1]} "
          f"({cols.nbytes / 2**20:.0f} MiB)")
    print(f"sgemm_2048_gflops {sgemm:.1f}")
    for name, ms in gemms.items():
        print(f"{name:32s} {ms:8.1f} ms  {gflop / ms * 1e3:6.1f} GFLOP/s ({100 * gflop / ms * 1e3 / sgemm:.0f}% of sgemm)")
    for name, ms in layout.items():
        print(f"{name:32s} {ms:8.1f} ms")
    print(f"{'plain copy of the columns':32s} {copy_ms:8.1f} ms")
    g_ms, l_ms = sum(gemms.values()), sum(layout.values())
    g = 3 * gflop / g_ms * 1e3 / sgemm
    print(f"layout / GEMM time {l_ms / g_ms:.2f}; GEMMs at {100 * g:.0f}% of sgemm; "
          f"bound for this layer: {100 * g / (1 + l_ms / g_ms):.0f}% of sgemm")


if __name__ == "__main__":
    main()
