"""Time one full training step of a Table 1 model: forward over the sequence, BCE loss
(+ the Huber flow term), backward through time, gradient clipping, RMSprop update.

    python benchmarks/bench_step.py --model ae-convlstm-flow --batch 16 --seq 10 --vs-torch

Prints the median step time, the achieved GFLOP/s (convolution and GEMM work only,
see ``flops.py``), the peak memory of a step, and, with ``--vs-torch``, the same
step of the same architecture in PyTorch and the ratio nnlite / PyTorch. The last
line is exactly ``median_step_s <seconds>`` (nnlite's).
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

import models  # noqa: E402
import nnlite as nn  # noqa: E402
from benchmarks.flops import step_flops  # noqa: E402
from models.training import Trainer  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-convlstm-flow", choices=sorted(models.MODELS))
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=10, help="input frames per sequence")
    p.add_argument("--size", type=int, default=64, help="frame height and width")
    p.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up)")
    p.add_argument("--threads", type=int, default=None, help="BLAS / PyTorch threads")
    p.add_argument("--vs-torch", action="store_true", help="also time the PyTorch twin")
    p.add_argument("--tf32", action="store_true", help="PyTorch CUDA: allow TF32 matmuls")
    return p.parse_args(argv)


def sync(xp):
    if xp is not numpy:
        xp.cuda.Device().synchronize()


def time_steps(step, n, xp=numpy):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        sync(xp)
        times.append(time.perf_counter() - t0)
    return times


def gemm_throughput(xp, n=2048, reps=5):
    """Single-precision GEMM GFLOP/s of this machine's BLAS: the ceiling for conv work."""
    a = xp.asarray(numpy.random.default_rng(0).random((n, n), dtype=numpy.float32))
    b = a.copy()
    a @ b
    sync(xp)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(xp)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def bench_nnlite(args, frames_host):
    xp = nn.backend.cupy if args.backend == "cupy" else numpy
    nn.manualSeed(0)
    model = models.build(args.model, height=args.size, width=args.size)
    if args.backend == "cupy":
        model.cuda()
    trainer = Trainer(model)
    frames = xp.asarray(frames_host)
    trainer.step(frames)  # warm-up (allocations, kernel compilation)
    flops = step_flops(model)
    times = time_steps(lambda: trainer.step(frames), args.steps, xp)
    if xp is numpy:
        nn.backend.free_scratch()  # so the step's reused work buffers count in its peak
        tracemalloc.start()
        trainer.step(frames)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        pool = xp.get_default_memory_pool()
        peak = pool.total_bytes()
    return statistics.median(times), flops, peak


def bench_torch(args, frames_host):
    import torch

    from benchmarks import torch_models
    device = "cuda" if args.backend == "cupy" else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(0)
    _, step = torch_models.make_step(args.model, device)
    frames = torch.from_numpy(frames_host).to(device)
    step(frames)

    def run():
        step(frames).item()
    times = time_steps(run, args.steps)
    return statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    rng = numpy.random.default_rng(0)
    frames = rng.random((args.seq + 1, args.batch, 1, args.size, args.size), dtype=numpy.float32)
    xp = nn.backend.cupy if args.backend == "cupy" else numpy
    print(f"model {args.model}  backend {args.backend}  batch {args.batch}  seq {args.seq}  "
          f"size {args.size}  steps {args.steps}")
    ceiling = gemm_throughput(xp)
    print(f"sgemm_2048_gflops {ceiling:.1f}")
    med, flops, peak = bench_nnlite(args, frames)
    print(f"nnlite_step_s {med:.4f}  step_gflop {flops / 1e9:.1f}  gflops {flops / med / 1e9:.1f} "
          f"({100 * flops / med / 1e9 / ceiling:.0f}% of sgemm)  peak_mem_gb {peak / 2**30:.2f}")
    if args.vs_torch:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        tmed = bench_torch(args, frames)
        print(f"torch_step_s {tmed:.4f}  ratio_nnlite_over_torch {med / tmed:.2f}")
    print(f"median_step_s {med:.6f}")


if __name__ == "__main__":
    main()
