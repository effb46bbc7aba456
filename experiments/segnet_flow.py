"""SegNet alone against SegNet-flow on labelled Moving MNIST (Patraucean et al. 2016, section
5.2: Table 2's per-class and global accuracy, Figure 8's pictures).

Both models train through ``train.py`` with the same budget: the same training sequences and
order (``--seed``), iterations, batch size and learning rate, and labels on the same one frame
per training sequence (``--labelled-frame``, default the last of ``--seq-len`` 6 frames: the
paper trained on 6-frame sequences around CamVid's labelled frames). SegNet alone trains on
those labelled frames; SegNet-flow on the whole sequences, with the reconstruction loss of
its AE-ConvLSTM-flow branch plus the cross-entropy on the labelled frame, end to end
(optionally from a trained ``ae-convlstm-flow`` checkpoint, ``--init-flow``). A SegNet-flow
step costs far more than a SegNet step (the flow branch runs on every frame): the budget is
equal in steps and labels, not in compute.

Both are then scored with ``train.py --eval`` on the test split, whose sequences (digits
unseen in training) have labels on every frame: per-class accuracy (pixels of the class
labelled right / pixels of the class), the class average over the classes present, and the
global accuracy over all pixels, on every frame of every test sequence. SegNet-flow's own
SegNet (its per-frame prediction Lb before the merging block) is reported too: the
difference between the two SegNet-flow rows is what the propagation adds.

CPU smoke run (seconds)::

    python -m experiments.segnet_flow --iterations 2 --n-train 8 --n-test 4 --out /tmp/sf \\
        --table /tmp/sf/table.md

A longer run (hours on a CPU; the flags are those of ``train.py``)::

    python -m experiments.segnet_flow --iterations 2000 --batch-size 8 --n-train 2000 \\
        --n-test 200 --lr 1e-3 --out runs/segnet_flow --table results/segnet_flow_cpu.md

Resumable as ``experiments.table1``: running the same command again continues an unfinished
run from its checkpoint and rewrites the table. Writes the table (Markdown) and, beside it,
the Figure 8 picture (``.png``) of test sequence 0.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

import models  # noqa: E402
import nnlite as nn  # noqa: E402
import train  # noqa: E402
from experiments.table1 import train_seconds  # noqa: E402
from models import pictures  # noqa: E402
from models.segnet import CLASS_NAMES, accuracies  # noqa: E402
from nnlite.atomic import atomic_path  # noqa: E402

ORDER = ["segnet", "segnet-flow"]

#: the paper's Table 2 (CamVid, 240x180 frames, 11 classes): SegNet, then SegNet-flow, per
#: class, then class average and global average, in %. The column names are lost in the
#: paper's text; the pairs are listed in the order the text gives them.
PAPER_TABLE2 = {
    "per_class": [("89.2", "92.9"), ("65.4", "73.4"), ("22.6", "3.22"), ("92.0", "97.2"), ("70.7", "62.9"),
                  ("44.8", "52.3"), ("14.9", "2.37"), ("5.38", "2.35"), ("60.5", "63.3"), ("25.6", "14.9"),
                  ("2.73", "1.70")],
    "class_avg": ("44.9", "42.4"),
    "global": ("75.3", "76.9"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/segnet_flow", help="folder of the two runs")
    p.add_argument("--table", default="results/segnet_flow_cpu.md", help="the Markdown table to write")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=6, help="frames per training and test sequence")
    p.add_argument("--labelled-frame", type=int, default=-1, help="the training frame with labels")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-val", type=int, default=20)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seg-features", type=int, help="SegNet's first-stage features (default 16)")
    p.add_argument("--seg-weight", type=float, help="SegNet-flow: the cross-entropy's weight (default 1)")
    p.add_argument("--init-flow", help="SegNet-flow: an ae-convlstm-flow checkpoint to start the flow branch from")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--eval-batch-size", type=int, default=10)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=True)
    return p.parse_args(argv)


def run_flags(name, args):
    """The train.py flags of the run of model ``name``."""
    every = max(1, min(500, args.iterations // 10))
    flags = ["--model", name, "--out", os.path.join(args.out, name), "--seed", args.seed,
             "--iterations", args.iterations, "--batch-size", args.batch_size, "--seq-len", args.seq_len,
             "--labelled-frame", args.labelled_frame, "--lr", args.lr, "--n-train", args.n_train,
             "--n-val", args.n_val, "--n-test", args.n_test, "--val-size", args.n_val,
             "--backend", args.backend, "--log-every", args.log_every, "--val-every", every,
             "--checkpoint-every", every, "--binarize" if args.binarize else "--no-binarize"]
    if args.seg_features:
        flags += ["--seg-features", args.seg_features]
    if name == "segnet-flow":
        flags += ["--seg-weight", args.seg_weight] if args.seg_weight is not None else []
        flags += ["--init-flow", args.init_flow] if args.init_flow else []
    return [str(f) for f in flags]


def run_one(name, args):
    """Train (or continue) the run of ``name``, then evaluate its checkpoint on the test split."""
    out = os.path.join(args.out, name)
    flags = run_flags(name, args)
    if os.path.exists(os.path.join(out, "checkpoint.h5")):
        flags.append("--resume")
    elif os.path.exists(os.path.join(out, "config.json")):
        flags.append("--overwrite")  # stopped before its first checkpoint: nothing to continue
    train.main(flags)
    ckpt = os.path.join(out, "checkpoint.h5")
    result = train.main(["--eval", ckpt, "--batch-size", str(args.eval_batch_size), "--backend", args.backend])
    result["train_s"] = train_seconds(out)
    result["parameters"] = models.count_parameters(nn.load(ckpt)["model"])
    return result


def percent(v):
    return "n/a" if v is None else f"{100 * v:.1f}"


def table_row(label, acc):
    cells = [percent(acc["per_class"][n]) for n in CLASS_NAMES] + [percent(acc["class_avg"]),
                                                                  percent(acc["global"])]
    return f"| {label} | " + " | ".join(cells) + " |"


def comparison(base, flow):
    """One factual sentence: where SegNet-flow's accuracy is above and below SegNet's."""
    pairs = [(n, base["per_class"][n], flow["per_class"][n]) for n in CLASS_NAMES]
    pairs = [(n, b, f) for n, b, f in pairs if b is not None and f is not None]
    up, down = [n for n, b, f in pairs if f > b], [n for n, b, f in pairs if f < b]
    return (f"SegNet-flow is above SegNet on {len(up)} of {len(pairs)} classes ({', '.join(up) or 'none'}) "
            f"and below on {len(down)} ({', '.join(down) or 'none'}); class average "
            f"{percent(base['class_avg'])} -> {percent(flow['class_avg'])}, global "
            f"{percent(base['global'])} -> {percent(flow['global'])}.")


def markdown(results, args, command):
    seg, flow = results["segnet"], results["segnet-flow"]
    acc = {"SegNet": accuracies(seg), "SegNet-flow": accuracies(flow),
           "SegNet inside SegNet-flow (Lb, before M)": accuracies(flow, prefix="basic_")}
    head = "| model | " + " | ".join(f"digit {n}" if n.isdigit() else n for n in CLASS_NAMES) + \
           " | class avg. | global avg. |"
    rule = "|---|" + "---:|" * (len(CLASS_NAMES) + 2)
    rows = [table_row(label, a) for label, a in acc.items()]
    cost = "\n".join(f"| {name} | {r['parameters']:,} | {r['step']} | {r['train_s']:.0f} |"
                     for name, r in (("SegNet", seg), ("SegNet-flow", flow)))
    paper_head = "| model | " + " | ".join(f"c{i + 1}" for i in range(11)) + " | class avg. | global avg. |"
    paper_rows = [f"| {label} | " + " | ".join(pair[k] for pair in PAPER_TABLE2["per_class"]) +
                  f" | {PAPER_TABLE2['class_avg'][k]} | {PAPER_TABLE2['global'][k]} |"
                  for k, label in enumerate(("SegNet", "SegNet-flow"))]
    k = args.labelled_frame % args.seq_len
    return f"""# SegNet against SegNet-flow on labelled Moving MNIST (paper section 5.2, Table 2)

Command: `{command}`

Training: {args.n_train} sequences of {args.seq_len} frames, labels on frame {k + 1} of {args.seq_len} of
each only; {args.iterations} steps of batch {args.batch_size} for both models, learning rate {args.lr}, seed
{args.seed}{f", flow branch from {args.init_flow}" if args.init_flow else ""}. Test: {seg['sequences']} sequences
of digits unseen in training, labels on every frame, all {args.seq_len} frames of each scored.
Accuracy in % (pixels of the class labelled right / pixels of the class; class average over
the classes present; global over all pixels). "background" is the pixels no digit covers.

{head}
{rule}
{chr(10).join(rows)}

{comparison(acc["SegNet"], acc["SegNet-flow"])}

| model | parameters | steps | training time (s) |
|---|---:|---:|---:|
{cost}

Figure 8 (test sequence 0): `{os.path.basename(picture_path(args.table))}`.

## The paper's figures (CamVid, for reference)

Table 2 of the paper, per-class and global accuracy in % on CamVid's labelled test frames
(240x180, 11 classes). The class names of its columns are lost in the paper's text: the
eleven per-class pairs are given in the order the text lists them (c1 .. c11).

{paper_head}
{"|---|" + "---:|" * 13}
{chr(10).join(paper_rows)}

The paper reads it as: the accuracy goes up for the large classes and down for the small,
thin structures (class average 44.9 -> 42.4, global 75.3 -> 76.9), which it puts down to the
small training set (SegNet-flow has about a million parameters more) and to the flow being
estimated at half resolution. Here SegNet-flow has
{flow['parameters'] - seg['parameters']:,} parameters more than SegNet.
"""


def picture_path(table):
    return os.path.splitext(table)[0] + ".png"


def figure_8(args):
    """Input, ground truth, SegNet, SegNet-flow (and its Lb) on test sequence 0."""
    loaded = {name: nn.load(os.path.join(args.out, name, "checkpoint.h5")) for name in ORDER}
    cfg = loaded["segnet-flow"]["config"]
    splits = train.data_splits(cfg, seq_len=cfg["seq_len"])
    batch = train.load_batch(splits["test"], numpy.arange(1), ("labels",), numpy)
    rows = {}
    for name in ORDER:
        model = loaded[name]["model"]
        model.evaluate()
        model.predict(batch)
        rows[name] = model.picture_rows(batch)
    flow_rows = dict(rows["segnet-flow"])
    figure = [("input", flow_rows["input"]), ("truth", flow_rows["truth"]),
              ("SegNet", dict(rows["segnet"])["SegNet"]), ("SegNet-flow", flow_rows["SegNet-flow"]),
              ("its Lb (before M)", flow_rows["SegNet"])]
    return pictures.prediction_figure(figure, picture_path(args.table),
                                      title="SegNet and SegNet-flow: test sequence 0 (colour = class)",
                                      key=loaded["segnet"]["model"].picture_key)


def main(argv=None):
    args = parse_args(argv)
    command = "python -m experiments.segnet_flow " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {name: run_one(name, args) for name in ORDER}
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, "results.json")) as tmp, open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    figure_8(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.table)), exist_ok=True)
    with atomic_path(args.table) as tmp, open(tmp, "w") as f:
        f.write(markdown(results, args, command))
    print(f"table: {args.table}\npicture: {picture_path(args.table)}")
    return results


if __name__ == "__main__":
    main()
