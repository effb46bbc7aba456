"""Train the four Table 1 models with one shared configuration and write a Markdown
table beside the paper's numbers (Patraucean et al. 2016, Table 1).

    python -m experiments.table1 --out runs/table1 --iterations 250 --batch-size 4 \\
        --seq-len 11 --lr 1e-3 --n-test 300 --table results/table1_cpu.md

Each model is trained with ``train.py`` (same data, seed, steps, learning rate),
then evaluated on the test sequences: the next frame after 10 inputs, mean
per-pixel BCE and squared error, and the copy-last-frame baseline.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import models  # noqa: E402
import train  # noqa: E402

ORDER = ["ae-conv", "ae-fclstm", "ae-convlstm", "ae-convlstm-flow"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/table1")
    p.add_argument("--table", default="results/table1.md", help="where to write the Markdown table")
    p.add_argument("--models", nargs="+", default=ORDER, choices=ORDER)
    p.add_argument("--iterations", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=11)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", type=float, default=0.9, help="learning-rate factor every --lr-decay-every epochs")
    p.add_argument("--lr-decay-every", type=int, default=5, help="epochs between learning-rate decays")
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def shared_flags(args):
    return ["--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
            "--lr", str(args.lr), "--lr-decay", str(args.lr_decay),
            "--lr-decay-every", str(args.lr_decay_every), "--n-train", str(args.n_train), "--n-val", "50",
            "--n-test", str(args.n_test), "--seed", str(args.seed), "--backend", args.backend,
            "--log-every", "10"]


def run_model(name, args):
    out = os.path.join(args.out, name)
    flags = shared_flags(args)
    t0 = time.perf_counter()
    train.main(["--model", name, "--iterations", str(args.iterations), "--out", out,
                "--checkpoint-every", str(args.iterations)] + flags)
    train_s = time.perf_counter() - t0
    result = train.main(["--eval", os.path.join(out, "checkpoint.h5"), "--batch-size", "20"] + flags[2:])
    result["train_s"] = train_s
    return result


def markdown(results, args, command):
    lines = [
        "# Table 1 on Moving MNIST, reduced CPU configuration",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"backend {args.backend}; date {time.strftime('%Y-%m-%d')}.  ",
        f"Shared configuration: {args.iterations} RMSprop steps of {args.batch_size} sequences "
        f"of {args.seq_len} frames from {args.n_train} training sequences, learning rate {args.lr} "
        f"(x{args.lr_decay} every {args.lr_decay_every} epochs), clip 50, BCE loss, embedded digits, "
        f"seed {args.seed}; test error on {results[args.models[0]]['sequences']} test sequences: "
        "the next frame after 10 inputs.",
        "",
        "| model | parameters (ours) | parameters (paper) | per-pixel BCE | per-pixel sq. error "
        "| paper test error | train time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.models:
        r = results[name]
        n_params, paper_err = models.PAPER_TABLE1[name]
        ours = models.count_parameters(models.build(name))
        lines.append(f"| {name} | {ours:,} | {n_params:,} | {r['bce']:.4f} | {r['sqerr']:.4f} "
                     f"| {paper_err} | {r['train_s']:.0f} |")
    base = results[args.models[0]]
    lines.append(f"| copy last frame | 0 | - | {base['copy_bce']:.4f} | {base['copy_sqerr']:.4f} | - | - |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    command = "python -m experiments.table1 " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {}
    for name in args.models:
        results[name] = run_model(name, args)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    text = markdown(results, args, command)
    os.makedirs(os.path.dirname(os.path.abspath(args.table)), exist_ok=True)
    with open(args.table, "w") as f:
        f.write(text)
    pictures = os.path.join(os.path.dirname(os.path.abspath(args.table)), "pictures")
    os.makedirs(pictures, exist_ok=True)
    for name in args.models:
        shutil.copy(os.path.join(args.out, name, "test_prediction.png"),
                    os.path.join(pictures, f"{name}.png"))
    print(text)


if __name__ == "__main__":
    main()
