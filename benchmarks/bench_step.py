"""Time one full training step of a Table 1 model (or of ``lstm-composite``): forward over the sequence, BCE loss
(+ the Huber flow term), backward through time, gradient clipping, RMSprop update.

    python benchmarks/bench_step.py --model ae-convlstm-flow --batch 16 --seq 10 --vs-torch
    python benchmarks/bench_step.py --backend cupy --tf32 --vs-torch --profile
    python benchmarks/bench_step.py --backend stand-in --model all

Prints the versions and the device, NumPy's BLAS (the kernel set OpenBLAS runs, its
threads, and the variables that pin its kernels: a machine that sets
``OPENBLAS_CORETYPE`` times those kernels, so compare runs only with the same line, and
see ``benchmarks/RESULTS.md`` for the command that unsets them; on an AMD Zen 4 where
nothing set it, importing nnlite sets it to ``Haswell``, said on that line:
``nnlite/blas_kernels.py``), the median step time after
``--warmup`` untimed steps, the achieved GFLOP/s
(convolution and GEMM work only, see ``flops.py``) and its share of the 2048x2048
SGEMM speed (the mean of a reading just before the timed steps and one just after),
the peak memory of a step (NumPy: tracemalloc; CuPy: the memory pool's high-water mark
over one step, from an empty pool), and, with ``--vs-torch``, the same step of the same
architecture in PyTorch (timed in a fresh process: ``torch_in_child``) and the ratio
nnlite / PyTorch. ``--tf32`` allows TF32 matrix products on both sides
(CuPy through ``CUPY_TF32=1``, set before CuPy is imported, and its float32 compute
type; PyTorch through its matmul and cuDNN flags). ``--profile`` (CuPy) adds the GPU
time of each module call of one step, measured with CUDA events. The last line is
exactly ``median_step_s <seconds>`` (nnlite's).

Why several warm-up steps, on both sides: the first steps of a process grow the heap to
its high-water mark, and each new page costs a page fault (on a freshly booted virtual
machine, about 10 us of system time a page: AE-ConvLSTM spent 3.3 s of system time in its
first step, 0.8 s in its second and none from its fourth on, ``benchmarks/RESULTS.md``,
ninth round). A training run takes thousands of steps; the figure is the steady state.

``--backend stand-in`` runs the step on the strict CuPy stand-in of the tests
(``tests/strict_cupy.py``) and prints, instead of times, what the step would ask of a
GPU: kernel launches besides GEMMs, GEMMs, device-to-host syncs, host-to-device
copies, float64 arrays created and the peak of device bytes, then the busiest call
sites. Matrix products are counted, not computed (the counts do not depend on the
numbers), so this takes seconds; ``tests/test_budget.py`` holds the same figures to
their budget.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

if "--tf32" in sys.argv:  # CuPy reads it when imported, i.e. before the first GEMM
    os.environ["CUPY_TF32"] = "1"

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nnlite as nn  # noqa: E402  (first: it picks OpenBLAS's kernels before NumPy loads them)
import numpy  # noqa: E402

import models  # noqa: E402
from benchmarks.flops import step_flops  # noqa: E402
from models.training import Trainer  # noqa: E402

TABLE1 = sorted(models.PAPER_TABLE1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-convlstm-flow", choices=TABLE1 + ["all", "lstm-composite"],
                   help="a Table 1 model, all four, or Srivastava et al.'s composite model at the "
                        "paper's size (2 layers of 2048 units; give --seq 19: 10 frames read, 10 predicted)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "stand-in"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=10, help="input frames per sequence")
    p.add_argument("--size", type=int, default=64, help="frame height and width")
    p.add_argument("--steps", type=int, default=5, help="timed steps (after the warm-up steps)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first, on both sides (the heap grows to its high-water mark)")
    p.add_argument("--threads", type=int, default=None, help="BLAS / PyTorch threads")
    p.add_argument("--vs-torch", action="store_true", help="also time the PyTorch twin")
    p.add_argument("--tf32", action="store_true", help="CUDA: allow TF32 matmuls (CuPy and PyTorch)")
    p.add_argument("--profile", action="store_true", help="CuPy: GPU time per module call of one step")
    p.add_argument("--top", type=int, default=8, help="stand-in: call sites listed per kind")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)  # the child of --vs-torch
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
    for _ in range(3):  # the first products run while the cores wake up: up to 2x slower
        a @ b
    sync(xp)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(xp)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def enable_tf32(xp):
    """CuPy: TF32 for float32 matrix products (``CUPY_TF32`` was set at start-up; the
    compute type is set too, where this CuPy exposes it)."""
    linalg = getattr(getattr(xp, "_core", None), "_routines_linalg", None)
    if linalg is not None and hasattr(linalg, "set_compute_type"):
        linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_TF32)


def blas_line():
    """NumPy's BLAS: library, version, the kernel set it runs and its threads (threadpoolctl)."""
    from threadpoolctl import threadpool_info
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    described = "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture', '')} "
                          f"{p['num_threads']} threads" for p in blas) or "unknown"
    pinned = "  ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    chosen = " (nnlite's choice: nnlite/blas_kernels.py)" if nn.BLAS_KERNELS else ""
    return f"blas {described}  {pinned}{chosen}".rstrip()


def versions(args, xp):
    """The lines that say what was measured where."""
    lines = [f"python {sys.version.split()[0]}  numpy {numpy.__version__}  nnlite backend {args.backend}",
             blas_line()]
    if args.backend == "cupy":
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        rt = xp.cuda.runtime.runtimeGetVersion()
        lines.append(f"cupy {xp.__version__}  cuda_runtime {rt // 1000}.{rt % 1000 // 10}  "
                     f"driver {xp.cuda.runtime.driverGetVersion()}  device {name} "
                     f"({props['totalGlobalMem'] / 2**30:.0f} GiB)  tf32 {args.tf32} "
                     f"CUPY_TF32={os.environ.get('CUPY_TF32', '')}")
    if args.vs_torch:
        import torch
        lines.append(f"torch {torch.__version__}  cuda {torch.version.cuda}  "
                     f"cudnn {torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
    return lines


def make_frames(args, batch=None):
    rng = numpy.random.default_rng(0)
    return rng.random((args.seq + 1, batch or args.batch, 1, args.size, args.size), dtype=numpy.float32)


def make_trainer(name, args, device):
    nn.manualSeed(0)
    model = models.build(name, height=args.size, width=args.size)
    if device == "cuda":
        model.cuda()
    return Trainer(model, loss="bce", lr=1e-4, clip=50)


def count_step(name, batch=16, seq=10, size=64):
    """One training step of ``name`` on the stand-in (which must be ``backend.cupy``),
    counted after a warm-up step on a batch of the same size (optimizer state, caches, and
    the DFT matrices of the convolutions' Fourier path, which only a batch of many frames
    takes); returns the stand-in's ``Counts``. Matrix products are counted, not computed."""
    from tests import strict_cupy
    args = argparse.Namespace(seq=seq, size=size)
    trainer = make_trainer(name, args, "cuda")
    with strict_cupy.gemms_as_zeros():
        frames = nn.to_device(make_frames(args, batch), "cuda")
        trainer.step(frames)
        nn.backend.free_scratch()  # so the step's work buffers count in its peak
        with strict_cupy.counting() as counts:
            trainer.step(frames)
    return counts


def stand_in_line(name, counts):
    t = counts.totals()
    return (f"{name:18s} launches {t['launch']:5d}  gemms {t['gemm']:4d}  syncs {t['sync']}  "
            f"h2d {t['h2d']}  float64 {t['float64']}  peak_bytes {counts.peak_bytes:,}")


def run_stand_in(args):
    from tests import strict_cupy
    nn.backend.use_cupy(strict_cupy)
    print(versions(args, numpy)[0])
    print(f"stand-in step counts: batch {args.batch}  seq {args.seq}  size {args.size} "
          f"(strict_cupy, CuPy {strict_cupy.__version__} API)")
    for name in TABLE1 if args.model == "all" else [args.model]:
        counts = count_step(name, args.batch, args.seq, args.size)
        print(stand_in_line(name, counts))
        for line in counts.report(args.top).splitlines()[1:]:
            print("   " + line)


class EventProfile:
    """GPU time per module call of one step: each module's updateOutput, updateGradInput
    and accGradParameters are bracketed by CUDA events (no sync until the end); the
    times include the module's children."""

    METHODS = ("updateOutput", "updateGradInput", "accGradParameters", "backward")

    def __init__(self, cupy, model):
        self.cupy, self.events, self.patched = cupy, [], []
        for path, m in self._named(model, type(model).__name__):
            for meth in self.METHODS:
                if meth in type(m).__dict__ or (meth != "backward" and hasattr(m, meth)):
                    self._wrap(m, meth, f"{path}.{meth}")

    def _named(self, m, path):
        yield path, m
        for i, c in enumerate(m.children()):
            yield from self._named(c, f"{path}/{i}:{type(c).__name__}")

    def _wrap(self, m, meth, label):
        orig = getattr(m, meth)

        def timed(*a, **k):
            start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
            start.record()
            r = orig(*a, **k)
            end.record()
            self.events.append((label, start, end))
            return r
        setattr(m, meth, timed)
        self.patched.append((m, meth))

    def report(self, top=25):
        self.cupy.cuda.Device().synchronize()
        totals = {}
        for label, s, e in self.events:
            totals[label] = totals.get(label, 0.0) + self.cupy.cuda.get_elapsed_time(s, e)
        for m, meth in self.patched:
            del m.__dict__[meth]
        rows = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
        return ["| module call | GPU ms (children included) |", "|---|---:|"] + \
               [f"| `{label}` | {ms:.2f} |" for label, ms in rows]


def bench_nnlite(args, name, frames_host):
    xp = nn.backend.cupy if args.backend == "cupy" else numpy
    trainer = make_trainer(name, args, "cuda" if args.backend == "cupy" else "cpu")
    frames = xp.asarray(frames_host)
    for _ in range(max(1, args.warmup)):  # allocations, kernel compilation, fresh pages
        trainer.step(frames)
    flops = step_flops(trainer.model)
    times = time_steps(lambda: trainer.step(frames), args.steps, xp)
    nn.backend.free_scratch()  # so the step's reused work buffers count in its peak
    if xp is numpy:
        tracemalloc.start()
        trainer.step(frames)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:  # the pool keeps every block it hands out: from empty, its size after a step is the peak
        pool = xp.get_default_memory_pool()
        pool.free_all_blocks()
        trainer.step(frames)
        sync(xp)
        peak = pool.total_bytes()
    profile = None
    if args.profile and xp is not numpy:
        prof = EventProfile(xp, trainer.model)
        trainer.step(frames)
        profile = prof.report()
    return statistics.median(times), flops, peak, profile


def bench_torch(args, name, frames_host):
    import torch

    from benchmarks import torch_models
    device = "cuda" if args.backend == "cupy" else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(0)
    _, step = torch_models.make_step(name, device)
    frames = torch.from_numpy(frames_host).to(device)
    for _ in range(max(1, args.warmup)):
        step(frames)

    def run():
        step(frames).item()
    times = time_steps(run, args.steps)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return statistics.median(times), peak


def torch_in_child(args, name):
    """The PyTorch twin's (median step, peak memory), timed in a fresh process of this
    script: PyTorch as its users run it. In this process nnlite's Trainer has told the C
    allocator to keep freed memory (``backend.keep_freed_host_memory``); that setting
    speeds PyTorch up too (lstm-composite: 7.8 -> 3.2 s), and it is nnlite's, not PyTorch's."""
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-only", "--model", name,
           "--backend", args.backend, "--batch", str(args.batch), "--seq", str(args.seq),
           "--size", str(args.size), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += (["--threads", str(args.threads)] if args.threads else []) + (["--tf32"] if args.tf32 else [])
    # the child's stderr passes through, so that a failing twin says why
    words = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    med, peak = words[words.index("torch_result") + 1:][:2]
    return float(med), None if peak == "None" else int(peak)


def main(argv=None):
    args = parse_args(argv)
    if args.backend == "stand-in":
        return run_stand_in(args)
    if args.threads:
        nn.backend.host_threads(args.threads)  # set when made, kept for the whole process
        if args.torch_only:  # --vs-torch times PyTorch in a child, which sets its own threads
            import torch
            torch.set_num_threads(args.threads)
    if args.torch_only:
        print("torch_result", *bench_torch(args, args.model, make_frames(args)))
        return
    xp = numpy
    if args.backend == "cupy":
        if not nn.gpu_available():
            sys.exit("bench_step.py: --backend cupy needs CuPy and a CUDA device")
        xp = nn.backend.cupy
        if args.tf32:
            enable_tf32(xp)
    for line in versions(args, xp):
        print(line)
    med = None
    for name in TABLE1 if args.model == "all" else [args.model]:
        before = gemm_throughput(xp)
        print(f"sgemm_2048_gflops {before:.1f}")
        print(f"model {name}  backend {args.backend}  batch {args.batch}  seq {args.seq}  "
              f"size {args.size}  warmup {args.warmup}  steps {args.steps}  tf32 {args.tf32}")
        frames = make_frames(args)
        med, flops, peak, profile = bench_nnlite(args, name, frames)
        # this shared machine's GEMM speed drifts by tens of percent within minutes: the step
        # is compared with the mean of a reading taken just before it and one just after
        after = gemm_throughput(xp)
        ceiling = (before + after) / 2
        print(f"sgemm_2048_gflops_after {after:.1f}")
        print(f"nnlite_step_s {med:.4f}  step_gflop {flops / 1e9:.1f}  gflops {flops / med / 1e9:.1f} "
              f"({100 * flops / med / 1e9 / ceiling:.0f}% of sgemm, mean of before and after)  "
              f"peak_mem_gb {peak / 2**30:.2f}")
        if profile:
            print("\n".join(profile))
        if args.vs_torch:
            tmed, tpeak = torch_in_child(args, name)
            extra = "" if tpeak is None else f"  torch_peak_mem_gb {tpeak / 2**30:.2f}"
            print(f"torch_step_s {tmed:.4f}  ratio_nnlite_over_torch {med / tmed:.2f}{extra}")
    print(f"median_step_s {med:.6f}")


if __name__ == "__main__":
    main()
