"""Test metrics of any model family: the sums of ``model.evaluate_batch`` over the test set.

For the Table 1 models that is the next frame after 10 input frames (the paper reports a
"per-pixel test error" without defining it; we report the mean per-pixel binary
cross-entropy and the mean per-pixel squared error), for the model and for the baseline
that copies the last input frame. Other families report their own metrics through the
same call.
"""
import sys

from tqdm import tqdm

import nnlite as nn


def evaluate(model, batches, total=None, progress=True):
    """Average ``model.evaluate_batch`` over ``batches`` (dicts, see ``video_predictor``).

    Returns ``model.summarize({metric: mean over sequences, ...})`` with ``'sequences': n``.
    The sums stay on the device and are read once at the end. The model is put in
    evaluation mode (no per-step caches; conditional decoders run free) and left there. ``progress`` shows a bar on a
    terminal (tqdm) with ``total`` batches.
    """
    model.evaluate()
    sums = {}
    bar = tqdm(batches, total=total, desc="evaluating", unit="batch", file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()), leave=False)
    for batch in bar:
        for k, v in model.evaluate_batch(batch).items():
            sums[k] = v if k not in sums else sums[k] + v
    n = sums.pop("sequences", 0)
    if not n:
        raise ValueError("evaluate: no test sequences")
    names = list(sums)  # 0-d arrays of the model's namespace: one read for all of them
    xp = nn.get_xp(*sums.values())
    host = nn.to_numpy(xp.stack([sums[k].astype("float64") for k in names]))
    result = model.summarize({k: float(v) / n for k, v in zip(names, host)})
    result["sequences"] = int(n)
    return result
