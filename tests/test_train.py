"""train.py end to end, in-process, on a few Moving MNIST sequences (64x64 frames).

Training runs use AE-Conv: at 64x64 a step of a recurrent model takes 3-5 s on one
shared core against 0.3 s for AE-Conv, and what is tested here (checkpoints, the
metrics log, the data order and learning-rate schedule of a resumed run, divergence,
evaluation) is the same code for every model. ``--seq-len 11`` is the shortest with
which AE-Conv trains and evaluation (10 inputs + the next frame) works. The resumed
recurrent flow model is tested at the Trainer level in test_models.py.
"""
import json
import math

import numpy
import pytest

import models
import moving_mnist
import nnlite as nn
import train

DATA = ["--n-train", "4", "--n-val", "2", "--n-test", "2", "--batch-size", "1", "--seq-len", "11"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("nnlite-cache")


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    """The Moving MNIST split caches go to a temporary directory, not ~/.cache."""
    monkeypatch.setenv("NNLITE_CACHE", str(cache_dir))


def run(out, *flags, backend="numpy"):
    """``train.py --model ae-conv`` on the tiny data set; later flags override earlier ones."""
    return train.main(["--model", "ae-conv", "--backend", backend, "--out", str(out), *DATA, *flags])


def metrics(out):
    with open(out / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def test_summary_prints_the_tree_and_the_parameter_count(tmp_path, capsys):
    train.main(["--summary", "--model", "ae-convlstm-flow", "--out", str(tmp_path / "unused")])
    out = capsys.readouterr().out
    assert "ConvLSTM" in out and "BilinearSampler" in out and "HuberPenalty" in out
    assert out.rstrip().endswith("parameters: 1,035,067")
    assert not (tmp_path / "unused").exists()  # a summary trains nothing


def test_a_short_run_writes_checkpoint_metrics_and_picture(xp, tmp_path, capsys):
    run(tmp_path, "--iterations", "2", backend="numpy" if xp is numpy else "cupy")
    assert f"checkpoint: {tmp_path / 'checkpoint.h5'}" in capsys.readouterr().out
    ckpt = nn.load(tmp_path / "checkpoint.h5")
    assert ckpt["step"] == 2 and isinstance(ckpt["model"], models.AEConv)
    assert ckpt["args"]["model"] == "ae-conv"
    log = metrics(tmp_path)
    assert [r["step"] for r in log] == [1, 2]
    assert all(isinstance(r["loss"], float) and 0 < r["loss"] < 10 for r in log)
    assert (tmp_path / "prediction.png").read_bytes().startswith(PNG)


def test_resume_repeats_an_uninterrupted_run(tmp_path):
    """Run A: 4 steps. Run B: 2 steps, then --resume to 4. Steps 3 and 4 agree bit for bit.

    3 training sequences at batch 1 make step 4 the first of epoch 1, so the resumed run
    must also redo the (seed, epoch) data order and the learning-rate decay (every epoch).
    """
    flags = ["--n-train", "3", "--lr-decay-every", "1", "--lr", "1e-3"]
    a, b = tmp_path / "a", tmp_path / "b"
    run(a, *flags, "--iterations", "4")
    run(b, *flags, "--iterations", "2")
    run(b, *flags, "--iterations", "4", "--resume")
    log_a, log_b = metrics(a), metrics(b)
    assert [r["step"] for r in log_b] == [1, 2, 3, 4]
    for ra, rb in zip(log_a, log_b):
        assert (ra["loss"], ra["epoch"], ra["lr"]) == (rb["loss"], rb["epoch"], rb["lr"])
    assert log_b[3]["lr"] < log_b[2]["lr"]  # the decay did happen at the epoch boundary
    params_a = nn.load(a / "checkpoint.h5")["model"].parameters()[0]
    params_b = nn.load(b / "checkpoint.h5")["model"].parameters()[0]
    for pa, pb in zip(params_a, params_b):
        numpy.testing.assert_array_equal(pa, pb)


def test_a_nan_loss_stops_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    run(tmp_path, "--iterations", "2")
    saved = (tmp_path / "checkpoint.h5").read_bytes()
    render = moving_mnist.SequenceSet.batch

    def poisoned(self, indices, labels=False):
        frames = render(self, indices, labels)
        frames[-1, :, :, 5, 5] = numpy.nan
        return frames

    monkeypatch.setattr(moving_mnist.SequenceSet, "batch", poisoned)
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--iterations", "4", "--resume", "--checkpoint-every", "1")
    assert str(e.value.code).startswith("train.py: loss became nan at step 3; stopping")
    assert (tmp_path / "checkpoint.h5").read_bytes() == saved
    assert len(metrics(tmp_path)) == 2  # no line for the failed step


def test_eval_prints_the_metrics_and_writes_a_picture(tmp_path, capsys):
    run(tmp_path, "--iterations", "1")
    capsys.readouterr()
    train.main(["--eval", str(tmp_path / "checkpoint.h5"), *DATA])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("bce", "sqerr", "copy_bce", "copy_sqerr"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["sequences"] == 2 and result["model"] == "ae-conv"
    assert (tmp_path / "test_prediction.png").read_bytes().startswith(PNG)


def test_an_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "ae-nope"])
    assert e.value.code == 2
    assert "invalid choice: 'ae-nope'" in capsys.readouterr().err


@pytest.mark.skipif(nn.gpu_available(), reason="a CUDA device is present")
def test_the_cupy_backend_without_a_gpu_exits_with_a_message():
    with pytest.raises(SystemExit, match="--backend cupy needs CuPy and a CUDA device"):
        train.main(["--backend", "cupy", "--summary"])
