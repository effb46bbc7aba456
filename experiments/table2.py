"""Train the four models of Srivastava et al. (2015)'s Table 2 with one shared configuration and
write a Markdown table beside the paper's numbers.

Table 2's MNIST column is the cross-entropy of the 10 predicted future frames, summed over
the 4096 pixels and the 10 frames and averaged over the test sequences (paper, 2 layers of
2048 LSTM units: Future Predictor 350.2, Composite 344.9, Conditional Future Predictor
343.5, Composite with Conditional Future Predictor 341.2). Every run reads 10 frames and
scores the 10 after them (``--seq-len 20``), on binary frames (``train.py --binarize``).

Reduced configuration (CPU, the defaults below: 2 layers of **256** units instead of 2048,
**3000** RMSprop steps of 16 sequences at learning rate 1e-3, 300 test sequences). The four
runs took 745 to 1128 s each, about an hour in all, on one core of the 2-core CPU machine
while another experiment used the other; ``results/table2_cpu.md`` is this command's table::

    python -m experiments.table2 --out runs/table2_3k --table results/table2_cpu.md

The paper's sizes (``--full``: 2 layers of 2048 units, 10k training and 3k validation and
test sequences, batch 16), for a GPU::

    python -m experiments.table2 --full --backend cupy --out runs/table2_full \\
        --table results/table2_full.md

This paper leaves its training settings (learning rate, batch, length) to its expanded
version; ``--full`` uses RMSprop at 1e-4 (x0.9 every 5 epochs), batch 16, ``--epochs``
(default 20) epochs unless ``--iterations`` is given. Any flag overrides a ``--full`` value.

Each (model, seed) is one ``train.py`` run in ``OUT/MODEL/seed-S``, then ``train.py --eval``
on its test set; like ``experiments.table1`` it is resumable (running the same command
again continues unfinished runs and keeps the evaluations of finished ones, in
``OUT/results.json``) and copies each model's Figure-4-style test picture (input,
reconstruction, future, prediction) next to the table, in ``pictures/table2-MODEL.png``.
"""
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import models  # noqa: E402
from experiments import table1  # noqa: E402
from models.srivastava import parameter_count  # noqa: E402

ORDER = ["lstm-future", "lstm-composite", "lstm-future-cond", "lstm-composite-cond"]
TITLES = {"lstm-future": "Future Predictor", "lstm-composite": "Composite Model",
          "lstm-future-cond": "Conditional Future Predictor",
          "lstm-composite-cond": "Composite Model with Conditional Future Predictor"}

#: the paper's sizes (section 3.3, Table 2) with our training settings: what ``--full`` sets
FULL = dict(hidden=2048, layers=2, n_train=10000, n_val=3000, n_test=3000, seq_len=20,
            batch_size=16, lr=1e-4, lr_decay=0.9, lr_decay_every=5, clip=50.0)
#: the reduced CPU configuration: the defaults without ``--full``
REDUCED = dict(hidden=256, layers=2, n_train=10000, n_val=50, n_test=300, seq_len=20,
               batch_size=16, lr=1e-3, lr_decay=0.9, lr_decay_every=5, clip=50.0, iterations=3000)
FULL_EPOCHS = 20


def parse_args(argv=None):
    p = table1.experiment_parser(__doc__, "table2", ORDER, [0])
    p.add_argument("--hidden", type=int, help="LSTM units per layer (paper: 2048)")
    p.add_argument("--layers", type=int, help="LSTM layers of the encoder and each decoder (paper: 2)")
    return table1.resolve(p.parse_args(argv), FULL, REDUCED)


def run_one(name, seed, args, known):
    """``experiments.table1.run_one`` with the model's size flags."""
    return table1.run_one(name, seed, args, known,
                          model_flags=["--hidden", str(args.hidden), "--layers", str(args.layers)])


def count(name, args):
    """The model's parameter count at the run's size (the formula: no model is built)."""
    tiny = models.build(name, height=1, width=1, hidden=1, layers=1)
    return parameter_count(64, 64, args.hidden, args.layers, [d.conditional for d in tiny.decoders])


def ordering(runs):
    """The paper's two findings, each with our numbers and whether they agree."""
    mean = {name: statistics.mean(x["xent"] for x in r) for name, r in runs.items()}
    claims = [("composite beats the future predictor alone", "lstm-composite", "lstm-future"),
              ("composite beats the future predictor alone (conditional decoders)",
               "lstm-composite-cond", "lstm-future-cond"),
              ("conditioning the future predictor helps", "lstm-future-cond", "lstm-future"),
              ("conditioning the composite's future predictor helps", "lstm-composite-cond",
               "lstm-composite")]
    lines = []
    for text, better, worse in claims:
        if better in mean and worse in mean:
            paper = models.PAPER_TABLE2
            agree = "agrees" if mean[better] < mean[worse] else "does not agree"
            lines.append(f"- {text}: paper {paper[better]} < {paper[worse]}; ours "
                         f"{mean[better]:.1f} vs {mean[worse]:.1f}: {agree}.")
    return lines


def markdown(results, args, command):
    runs = {name: [results[name][str(s)] for s in table1.seeds_of(args, name)] for name in args.models}
    frames = "binary (digits thresholded at 0.5)" if args.binarize else "grey"
    which = "the paper's sizes" if args.full else "a reduced configuration"
    n_test = runs[args.models[0]][0]["sequences"]
    lines = [
        f"# Table 2 (Srivastava et al. 2015) on Moving MNIST, {which}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"backend {args.backend}; date {time.strftime('%Y-%m-%d')}.  ",
        f"Shared configuration: {args.layers} layers of {args.hidden} peephole LSTM units (paper: 2 "
        f"layers of 2048), {args.iterations} RMSprop steps of {args.batch_size} sequences of "
        f"{args.seq_len} frames (10 read, 10 predicted) from {args.n_train} training sequences, "
        f"learning rate {args.lr} (x{args.lr_decay} every {args.lr_decay_every} epochs), clip "
        f"{args.clip}, cross-entropy loss (summed over both decoders for the composites), {frames} "
        f"frames of {'MNIST digits from ' + args.digits if args.digits else 'the embedded digits'}; "
        f"seeds {table1.seed_list(args)}. Test metric on {n_test} test sequences per seed: the "
        f"cross-entropy of the 10 predicted frames, summed over pixels and frames, per sequence "
        f"(the paper's Table 2; conditional decoders run free on their own predictions).",
        "",
        "| model | parameters (ours) | paper | ours | per-pixel BCE | reconstruction cross-entropy "
        "| train time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.models:
        r = runs[name]
        recon = table1.mean_spread([x["recon_xent"] for x in r], 1) if "recon_xent" in r[0] else "-"
        xent, bce = table1.mean_spread([x["xent"] for x in r], 1), table1.mean_spread([x["bce"] for x in r])
        lines.append(f"| {TITLES[name]} (`{name}`) | {count(name, args):,} | {models.PAPER_TABLE2[name]} "
                     f"| {xent} | {bce} | {recon} | {statistics.mean(x['train_s'] for x in r):.0f} |")
    lines += ["", "The paper's ordering against ours:", ""] + ordering(runs)
    lines += ["", "Per seed:", "", "| model | seed | step | cross-entropy | per-pixel BCE |",
              "|---|---:|---:|---:|---:|"]
    for name in args.models:
        for s, x in zip(table1.seeds_of(args, name), runs[name]):
            lines.append(f"| {name} | {s} | {x['step']} | {x['xent']:.1f} | {x['bce']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    command = "python -m experiments.table2 " + " ".join(argv if argv is not None else sys.argv[1:])
    return table1.run_table(args, markdown, command, run=run_one, picture_prefix="table2-")


if __name__ == "__main__":
    main()
