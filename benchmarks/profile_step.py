"""Profile one training step of a Table 1 model and print where the time goes.

    python benchmarks/profile_step.py --model ae-convlstm-flow --batch 16 --seq 10

Prints a Markdown table of the functions with the most time of their own
(cProfile ``tottime``); NumPy's matrix products run inside the calling function,
so the convolution functions' own time is mostly GEMM.

cProfile sees only the calling thread. On the host, convolutions, max pooling and the
optimizer's passes run in ranges side by side (``nnlite.backend.host_parallel``), and the
pool threads' share appears in the table as the caller waiting (``acquire``). So the script
also prints the wall time of those split calls, by calling function, and what is left of
the step: the part that ran on one core.
"""
import argparse
import collections
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

import models  # noqa: E402
import nnlite as nn  # noqa: E402
from models.training import Trainer  # noqa: E402


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

    for name, module in list(sys.modules.items()):
        if name.startswith("nnlite") and getattr(module, "host_parallel", None) is original:
            module.host_parallel = timed
    return totals


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-convlstm-flow", choices=sorted(models.MODELS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=10)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first (as bench_step.py: the heap grows to its high-water mark)")
    args = p.parse_args(argv)
    nn.manualSeed(0)
    trainer = Trainer(models.build(args.model))
    frames = numpy.random.default_rng(0).random((args.seq + 1, args.batch, 1, 64, 64), dtype=numpy.float32)
    for _ in range(max(1, args.warmup)):
        trainer.step(frames)
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
          f"step's {wall:.3f} s, {wall - inside:.3f} s on one core")


if __name__ == "__main__":
    main()
