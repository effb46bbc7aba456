"""Profile one training step of a Table 1 model and print where the time goes.

    python benchmarks/profile_step.py --model ae-convlstm-flow --batch 16 --seq 10

Prints a Markdown table of the functions with the most time of their own
(cProfile ``tottime``); NumPy's matrix products run inside the calling function,
so the convolution functions' own time is mostly GEMM.
"""
import argparse
import cProfile
import os
import pstats
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

import models  # noqa: E402
import nnlite as nn  # noqa: E402
from models.training import Trainer  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ae-convlstm-flow", choices=sorted(models.MODELS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=10)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    nn.manualSeed(0)
    trainer = Trainer(models.build(args.model))
    frames = numpy.random.default_rng(0).random((args.seq + 1, args.batch, 1, 64, 64), dtype=numpy.float32)
    trainer.step(frames)
    prof = cProfile.Profile()
    prof.runcall(trainer.step, frames)
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:args.top]
    print("| function | calls | own time (s) | share |\n|---|---:|---:|---:|")
    for (path, line, name), (_, calls, tottime, _, _) in rows:
        where = f"{os.path.relpath(path) if os.path.exists(path) else path}:{line}({name})"
        print(f"| `{where}` | {calls} | {tottime:.3f} | {100 * tottime / total:.0f}% |")
    print(f"\nstep total {total:.3f} s")


if __name__ == "__main__":
    main()
