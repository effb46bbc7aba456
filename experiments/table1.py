"""Train the four Table 1 models with one shared configuration, over several seeds, and write a
Markdown table beside the paper's numbers (Patraucean et al. 2016, Table 1).

Reduced configuration (CPU, the defaults below)::

    python -m experiments.table1 --out runs/table1 --iterations 250 --batch-size 4 \\
        --seq-len 11 --lr 1e-3 --n-test 300 --table results/table1_cpu.md

The paper's configuration (``--full``: 10k training and 3k validation and test sequences of
20 frames, batch 16, RMSprop at 1e-4 times 0.9 every 5 epochs, gradients clipped to +-50),
for a GPU::

    python -m experiments.table1 --full --backend cupy --out runs/table1_full \\
        --table results/table1_full.md

The paper does not say how long it trained; ``--full`` trains ``--epochs`` (default 20)
epochs of 625 steps unless ``--iterations`` is given. Every flag above can still override
a ``--full`` value.

Each (model, seed) is one ``train.py`` run in ``OUT/MODEL/seed-S``, then ``train.py --eval``
on its test set: the next frame after 10 inputs, mean per-pixel BCE and squared error, the
copy-last-frame baseline and, for the flow model, the endpoint and angular error of its flow
against the generator's true motion (with the zero-flow and true-flow references).
**Resumable**: running the same command again continues every unfinished run from its last
checkpoint (``train.py --resume``), keeps the evaluations already made of a finished run
(``OUT/results.json``, keyed by the checkpoint's step) and rewrites the table. The frames are
binary by default (``--no-binarize`` for grey), as the paper feeds them; the seed sets the
initial weights, the data sets and their order.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import models  # noqa: E402
import train  # noqa: E402
from nnlite.atomic import atomic_path  # noqa: E402

ORDER = ["ae-conv", "ae-fclstm", "ae-convlstm", "ae-convlstm-flow"]
FLOW_MODEL = "ae-convlstm-flow"

#: the paper's configuration (section 5.1 and SPEC §5): what ``--full`` sets
FULL = dict(n_train=10000, n_val=3000, n_test=3000, seq_len=20, batch_size=16, lr=1e-4,
            lr_decay=0.9, lr_decay_every=5, clip=50.0)
#: the reduced CPU configuration: the defaults without ``--full``
REDUCED = dict(n_train=10000, n_val=50, n_test=300, seq_len=11, batch_size=4, lr=1e-3,
               lr_decay=0.9, lr_decay_every=5, clip=50.0, iterations=250)
FULL_EPOCHS = 20

#: the flow model's extra metrics, as (key of train.py --eval's result, column title)
FLOW_COLUMNS = [("epe", "EPE (px)"), ("zero_epe", "zero-flow EPE = mean speed"),
                ("ae", "angular error (deg)"), ("zero_ae", "zero-flow angular error"),
                ("true_flow_bce", "BCE with the true flow")]


def experiment_parser(doc, name, order, seeds):
    """The flags every table experiment shares (``experiments.table1``, ``experiments.table2``)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=f"runs/{name}", help="folder of the runs (one per model and seed)")
    p.add_argument("--table", default=f"results/{name}.md", help="where to write the Markdown table")
    p.add_argument("--models", nargs="+", default=order, choices=order)
    p.add_argument("--seeds", nargs="+", type=int, default=seeds,
                   help="one run per seed; the table gives the mean and the spread")
    p.add_argument("--model-seeds", nargs="+", default=[], metavar="MODEL=S,S",
                   help="other seeds for some models, e.g. ae-fclstm=0 (default: --seeds)")
    p.add_argument("--full", action="store_true", help="the paper's configuration (see above)")
    p.add_argument("--epochs", type=float, default=FULL_EPOCHS,
                   help="with --full and no --iterations: training length in epochs")
    p.add_argument("--iterations", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seq-len", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-decay", type=float, help="learning-rate factor every --lr-decay-every epochs")
    p.add_argument("--lr-decay-every", type=int, help="epochs between learning-rate decays")
    p.add_argument("--clip", type=float, help="gradient clipping to [-clip, clip]")
    p.add_argument("--n-train", type=int)
    p.add_argument("--n-val", type=int)
    p.add_argument("--n-test", type=int)
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=True,
                   help="binary frames, as the paper (default: on)")
    p.add_argument("--digits", help="a directory with the MNIST IDX files (default: the embedded digits)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--val-every", type=int,
                   help="steps between validations (default: a tenth of the run, at most 500)")
    p.add_argument("--checkpoint-every", type=int,
                   help="steps between checkpoints (default: a tenth of the run, at most 500)")
    p.add_argument("--eval-batch-size", type=int, default=20, help="sequences per evaluation batch")
    p.add_argument("--eval-batches", type=int, help="evaluate on this many test batches only")
    return p


def seeds_of(args, name):
    """The seeds of model ``name``: its ``--model-seeds`` entry, else ``--seeds``."""
    for entry in args.model_seeds:
        model, _, seeds = entry.partition("=")
        if model == name:
            return [int(x) for x in seeds.split(",")]
    return args.seeds


def resolve(args, full, reduced):
    """Fill ``args`` from the paper's (``--full``) or the reduced configuration; flags given win."""
    config = dict(full if args.full else reduced)
    config.update({k: v for k, v in vars(args).items() if k in set(full) | {"iterations"} and v is not None})
    if args.full and args.iterations is None:
        config["iterations"] = round(args.epochs * -(-config["n_train"] // config["batch_size"]))
    for k, v in config.items():
        setattr(args, k, v)
    return args


def parse_args(argv=None):
    return resolve(experiment_parser(__doc__, "table1", ORDER, [0, 1]).parse_args(argv), FULL, REDUCED)


def shared_flags(args):
    """The train.py flags of one run, except --model, --out and --seed."""
    every = max(1, min(500, args.iterations // 10))
    flags = ["--iterations", args.iterations, "--batch-size", args.batch_size, "--seq-len", args.seq_len,
             "--lr", args.lr, "--lr-decay", args.lr_decay, "--lr-decay-every", args.lr_decay_every,
             "--clip", args.clip, "--n-train", args.n_train, "--n-val", args.n_val,
             "--n-test", args.n_test, "--backend", args.backend, "--log-every", args.log_every,
             "--val-every", args.val_every or every, "--checkpoint-every", args.checkpoint_every or every,
             "--binarize" if args.binarize else "--no-binarize"]
    if args.digits:
        flags += ["--digits", args.digits]
    return [str(f) for f in flags]


def train_seconds(out):
    """Training time of a run: the sum of its steps' times in metrics.jsonl (over resumptions)."""
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return sum(json.loads(line).get("step_s", 0.0) for line in f if line.strip())


def latest_evaluation(out):
    """The newest ``train.py --eval`` report in a run folder (``eval.json``, ``eval-2.json``, ...), or None."""
    reports = glob.glob(os.path.join(glob.escape(out), "eval*.json"))
    if not reports:
        return None
    with open(max(reports, key=os.path.getmtime)) as f:
        return json.load(f)


def run_one(name, seed, args, known, model_flags=()):
    """Train (or continue) one run and evaluate it, unless ``known`` holds its evaluation.

    ``model_flags``: the model's own train.py flags (e.g. Table 2's ``--hidden``)."""
    out = os.path.join(args.out, name, f"seed-{seed}")
    flags = ["--model", name, "--out", out, "--seed", str(seed), *model_flags] + shared_flags(args)
    if os.path.exists(os.path.join(out, "checkpoint.h5")):
        flags.append("--resume")
    elif os.path.exists(os.path.join(out, "config.json")):
        flags.append("--overwrite")  # stopped before its first checkpoint: nothing to continue
    trainer = train.main(flags)
    known = known or latest_evaluation(out)
    if known and known.get("step") == trainer.step_count:
        return {**known, "train_s": train_seconds(out)}
    eval_flags = ["--eval", os.path.join(out, "checkpoint.h5"), "--batch-size", str(args.eval_batch_size),
                  "--backend", args.backend]
    if args.eval_batches:
        eval_flags += ["--eval-batches", str(args.eval_batches)]
    result = train.main(eval_flags)
    result["train_s"] = train_seconds(out)
    return result


def mean_spread(values, digits=4):
    """``'mean +- standard deviation'`` over seeds (the sample deviation; just the mean for one),
    with ``digits`` decimals."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(results, args, command):
    runs = {name: [results[name][str(s)] for s in seeds_of(args, name)] for name in args.models}
    first = runs[args.models[0]]
    frames = "binary (digits thresholded at 0.5)" if args.binarize else "grey"
    floor = ("the BCE floor is 0 (binary targets have no entropy)" if args.binarize else
             "grey targets have entropy: the BCE cannot reach 0")
    which = "the paper's" if args.full else "a reduced"
    lines = [
        f"# Table 1 on Moving MNIST, {which} configuration",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"backend {args.backend}; date {time.strftime('%Y-%m-%d')}.  ",
        f"Shared configuration: {args.iterations} RMSprop steps of {args.batch_size} sequences "
        f"of {args.seq_len} frames from {args.n_train} training sequences, learning rate {args.lr} "
        f"(x{args.lr_decay} every {args.lr_decay_every} epochs), clip {args.clip}, BCE loss, "
        f"{frames} frames of {'MNIST digits from ' + args.digits if args.digits else 'the embedded digits'}; "
        f"seeds {seed_list(args)}. Test error on {first[0]['sequences']} test sequences per seed: the "
        f"next frame after 10 inputs; {floor}. Values are the mean ± the standard deviation "
        f"over the seeds.",
        "",
        "| model | parameters (ours) | parameters (paper) | per-pixel BCE | per-pixel sq. error "
        "| paper test error | train time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.models:
        r = runs[name]
        n_params, paper_err = models.PAPER_TABLE1[name]
        ours = models.count_parameters(models.build(name))
        lines.append(f"| {name} | {ours:,} | {n_params:,} | {mean_spread([x['bce'] for x in r])} "
                     f"| {mean_spread([x['sqerr'] for x in r])} | {paper_err} "
                     f"| {statistics.mean(x['train_s'] for x in r):.0f} |")
    lines.append(f"| copy last frame | 0 | - | {mean_spread([x['copy_bce'] for x in first])} "
                 f"| {mean_spread([x['copy_sqerr'] for x in first])} | - | - |")
    if FLOW_MODEL in args.models and "epe" in runs[FLOW_MODEL][0]:
        r = runs[FLOW_MODEL]
        lines += ["", f"Flow of {FLOW_MODEL} against the true motion of the test frame (at the flow's "
                      "32x32 resolution, in its pixels, over the pixels one digit covers; "
                      "`models/flow_metrics.py`):", "",
                  "| " + " | ".join(title for _, title in FLOW_COLUMNS) + " |",
                  "|" + "---:|" * len(FLOW_COLUMNS),
                  "| " + " | ".join(mean_spread([x[k] for x in r]) for k, _ in FLOW_COLUMNS) + " |"]
    lines += ["", "Per seed:", "", "| model | seed | step | BCE | sq. error | copy BCE | EPE |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name in args.models:
        for s, x in zip(seeds_of(args, name), runs[name]):
            epe = f"{x['epe']:.4f}" if "epe" in x else "-"
            lines.append(f"| {name} | {s} | {x['step']} | {x['bce']:.4f} | {x['sqerr']:.4f} "
                         f"| {x['copy_bce']:.4f} | {epe} |")
    return "\n".join(lines) + "\n"


def seed_list(args):
    """The seeds of the table in words: ``0, 1`` (and the models with other seeds)."""
    other = [f"{e.partition('=')[0]}: {e.partition('=')[2]}" for e in args.model_seeds]
    return ", ".join(map(str, args.seeds)) + (f" ({'; '.join(other)})" if other else "")


def write_json(path, obj):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)


def run_table(args, markdown, command, run=run_one, picture_prefix=""):
    """Train and evaluate every (model, seed) (resumable: ``OUT/results.json``), write the
    Markdown table ``markdown(results, args, command)`` and copy each model's test picture
    beside it, in ``pictures/``. Returns the results."""
    results_path = os.path.join(args.out, "results.json")
    results = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            results = json.load(f)
    for name in args.models:
        for seed in seeds_of(args, name):
            runs = results.setdefault(name, {})
            runs[str(seed)] = run(name, seed, args, runs.get(str(seed)))
            write_json(results_path, results)
    text = markdown(results, args, command)
    os.makedirs(os.path.dirname(os.path.abspath(args.table)), exist_ok=True)
    with atomic_path(args.table) as tmp, open(tmp, "w") as f:
        f.write(text)
    pictures = os.path.join(os.path.dirname(os.path.abspath(args.table)), "pictures")
    os.makedirs(pictures, exist_ok=True)
    for name in args.models:
        picture = results[name][str(seeds_of(args, name)[0])].get("picture")
        if picture and os.path.exists(picture):
            shutil.copy(picture, os.path.join(pictures, f"{picture_prefix}{name}.png"))
    print(text)
    return results


def main(argv=None):
    args = parse_args(argv)
    command = "python -m experiments.table1 " + " ".join(argv if argv is not None else sys.argv[1:])
    return run_table(args, markdown, command)


if __name__ == "__main__":
    main()
