"""train.py end to end on a few Moving MNIST sequences (64x64 frames).

Training runs use AE-Conv: at 64x64 a step of a recurrent model takes 3-5 s on one
shared core against 0.1-0.3 s for AE-Conv, and what is tested here (the run folder,
settings, resumption, signals, the guard, flags, evaluation, pictures) is the same code
for every model. ``--seq-len 11`` is the shortest with which AE-Conv trains. Most tests
call ``train.main`` in-process; the ones about signals, exit codes and tracebacks run
``python train.py`` as a user would.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

import models
import nnlite as nn
import train
from models.training import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = ["--n-train", "4", "--n-val", "2", "--n-test", "2", "--batch-size", "1", "--seq-len", "11"]
PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF89a"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("nnlite-cache")


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    """The Moving MNIST split caches go to a temporary directory, not ~/.cache."""
    monkeypatch.setenv("NNLITE_CACHE", str(cache_dir))


def run(out, *flags, backend="numpy"):
    """``train.py --model ae-conv`` on the tiny data set, in-process."""
    return train.main(["--model", "ae-conv", "--backend", backend, "--out", str(out), *DATA, *flags])


def run_cli(*args, **kw):
    """``python train.py ARGS`` in a subprocess; returns the CompletedProcess (text)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, **kw)


def metrics(out):
    with open(out / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def train_steps(out):
    return [r["step"] for r in metrics(out)]


def user_error(capsys, argv):
    """Run ``train.main(argv)``: it must exit 2 with exactly one line on stderr; returns that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: "), err
    return err[0]


# --------------------------------------------------------------------------- runs
def test_summary_prints_the_tree_and_the_parameter_count(tmp_path, capsys):
    train.main(["--summary", "--model", "ae-convlstm-flow", "--out", str(tmp_path / "unused")])
    out = capsys.readouterr().out
    assert "ConvLSTM" in out and "BilinearSampler" in out and "HuberPenalty" in out
    assert out.rstrip().endswith("parameters: 1,035,067")
    assert not (tmp_path / "unused").exists()  # a summary trains nothing


def test_a_short_run_is_a_folder_with_settings_checkpoints_log_and_pictures(xp, tmp_path, capsys):
    run(tmp_path, "--iterations", "2", "--val-every", "1", backend="numpy" if xp is numpy else "cupy")
    out = capsys.readouterr().out
    assert out.startswith(f"settings ({tmp_path / 'config.json'}):")
    assert f"checkpoint: {tmp_path / 'checkpoint.h5'}" in out
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "ae-conv" and config["batch_size"] == 1 and config["binarize"] is True
    ckpt = nn.load(tmp_path / "checkpoint.h5")
    assert ckpt["step"] == 2 and isinstance(ckpt["model"], models.AEConv)
    assert ckpt["config"]["model"] == "ae-conv"
    assert not any(g.any() for g in ckpt["model"].parameters()[1])  # no gradients stored
    log = metrics(tmp_path)
    assert [r["step"] for r in log] == [1, 2]
    assert all(isinstance(r["loss"], float) and 0 < r["loss"] < 10 for r in log)
    assert all(isinstance(r["val_loss"], float) and r["val_copy_bce"] > 0 and r["val_bce"] > 0 for r in log)
    assert nn.load(tmp_path / "checkpoint-best.h5")["best_val_loss"] == min(r["val_loss"] for r in log)
    for name, magic in (("prediction.png", PNG), ("loss.png", PNG), ("prediction.gif", GIF)):
        assert (tmp_path / name).read_bytes().startswith(magic), name


def test_threads_hold_for_the_run_only_and_are_saved(tmp_path, monkeypatch):
    """``--threads N``: every training step runs with N threads in NumPy's BLAS, the
    setting is in config.json, and the process's own setting is back once the run ends."""
    from threadpoolctl import threadpool_info

    def blas_threads():  # {library file: threads}; the run may load more BLAS libraries (SciPy's)
        return {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before, seen, step = blas_threads(), [], Trainer.step

    def recording(self, *args, **kw):
        seen.append({path: blas_threads()[path] for path in before})
        return step(self, *args, **kw)

    monkeypatch.setattr(Trainer, "step", recording)
    want = 2 if 2 not in before.values() else 3
    run(tmp_path, "--iterations", "2", "--threads", str(want))
    assert seen == [dict.fromkeys(before, want)] * 2
    assert {path: blas_threads()[path] for path in before} == before
    assert json.loads((tmp_path / "config.json").read_text())["threads"] == want


def test_resume_with_no_flags_repeats_an_uninterrupted_run(tmp_path):
    """Run A: 4 steps. Run B: 2 steps, then ``--resume --iterations 4`` and nothing else.

    3 training sequences at batch 1 make step 4 the first of epoch 1, so the resumed run
    must also redo the (seed, epoch) data order and the learning-rate decay (every epoch),
    with its settings read from the run folder, not from the command line's defaults.
    """
    flags = ["--n-train", "3", "--lr-decay-every", "1", "--lr", "1e-3", "--val-every", "3"]
    a, b = tmp_path / "a", tmp_path / "b"
    run(a, *flags, "--iterations", "4")
    run(b, *flags, "--iterations", "2")
    train.main(["--resume", "--out", str(b), "--iterations", "4"])
    log_a, log_b = metrics(a), metrics(b)
    assert [r["step"] for r in log_b] == [1, 2, 3, 4]
    for ra, rb in zip(log_a, log_b):  # (run B also validated at its first end, step 2)
        assert (ra["loss"], ra["epoch"], ra["lr"]) == (rb["loss"], rb["epoch"], rb["lr"])
    assert log_a[2]["val_loss"] == log_b[2]["val_loss"]
    assert log_b[3]["lr"] < log_b[2]["lr"]  # the decay did happen at the epoch boundary
    params_a = nn.load(a / "checkpoint.h5")["model"].parameters()[0]
    params_b = nn.load(b / "checkpoint.h5")["model"].parameters()[0]
    for pa, pb in zip(params_a, params_b):
        numpy.testing.assert_array_equal(pa, pb)


def test_a_resume_that_contradicts_the_run_is_refused(tmp_path, capsys):
    run(tmp_path, "--iterations", "1")
    before = (tmp_path / "checkpoint.h5").read_bytes()
    line = user_error(capsys, ["--resume", "--out", str(tmp_path), "--batch-size", "2"])
    assert "--batch-size 2 contradicts the run's batch_size = 1" in line
    line = user_error(capsys, ["--resume", "--out", str(tmp_path), "--model", "ae-fclstm"])
    assert "--model ae-fclstm contradicts the run's model = 'ae-conv'" in line
    assert (tmp_path / "checkpoint.h5").read_bytes() == before


def test_a_new_run_into_a_run_folder_is_refused_unless_overwrite(tmp_path, capsys):
    run(tmp_path, "--iterations", "1")
    before = (tmp_path / "checkpoint.h5").read_bytes()
    line = user_error(capsys, ["--model", "ae-conv", "--out", str(tmp_path), *DATA, "--iterations", "2"])
    assert "already holds a run: continue it with --resume" in line and "--overwrite" in line
    assert (tmp_path / "checkpoint.h5").read_bytes() == before and train_steps(tmp_path) == [1]
    run(tmp_path, "--iterations", "2", "--overwrite")
    assert train_steps(tmp_path) == [1, 2] and nn.load(tmp_path / "checkpoint.h5")["step"] == 2


def test_sigint_mid_run_checkpoints_and_resume_logs_each_step_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--model", "ae-conv", "--out", str(out), *DATA,
           "--iterations", "400", "--checkpoint-every", "1000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").exists() or \
            len((out / "metrics.jsonl").read_text().splitlines()) < 3:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("train.py: SIGINT at step ") and f"--resume --out {out}" in last
    step = nn.load(out / "checkpoint.h5")["step"]
    assert 3 <= step < 400 and f"holds step {step}" in last
    done = run_cli("--resume", "--out", out, "--iterations", step + 2)
    assert done.returncode == 0, done.stderr
    assert train_steps(out) == list(range(1, step + 3))


def test_sigterm_exits_143_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--model", "ae-conv", "--out", str(out), *DATA,
           "--iterations", "400"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "SIGTERM at step" in err
    assert nn.load(out / "checkpoint.h5")["step"] >= 1


# ------------------------------------------------------------------ user mistakes
@pytest.mark.parametrize("flags, says", [
    (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["--batch-size", "-1"], "argument --batch-size: must be >= 1, got -1"),
    (["--log-every", "0"], "argument --log-every: must be >= 1"),
    (["--checkpoint-every", "0"], "argument --checkpoint-every: must be >= 1"),
    (["--val-every", "0"], "argument --val-every: must be >= 1"),
    (["--iterations", "-5"], "argument --iterations: must be >= 1"),
    (["--iterations", "0"], "argument --iterations: must be >= 1"),
    (["--lr", "-1"], "argument --lr: must be > 0"),
    (["--lr", "nan"], "argument --lr: expected a finite number"),
    (["--epochs", "0"], "argument --epochs: must be > 0"),
    (["--lr-decay", "1.5"], "argument --lr-decay: must be <= 1"),
    (["--batch-size", "two"], "argument --batch-size: expected an integer, got 'two'"),
    (["--model", "ae-nope"], "invalid choice: 'ae-nope'"),
    (["--seq-len", "1"], "argument --seq-len: must be >= 2"),
    (["--model", "ae-conv", "--seq-len", "5"], "--seq-len 5 is too short for ae-conv"),
    (["--model", "ae-conv", "--huber-weight", "0.1"], "huber_weight"),
    (["--digits", "/nonexistent/mnist"], "--digits /nonexistent/mnist"),
    (["--resume"], "holds no run (no config.json)"),
    (["--eval", "/nonexistent/ckpt.h5"], "--eval: nnlite.load: no such file"),
    (["--eval-batches", "0", "--eval", "x.h5"], "argument --eval-batches: must be >= 1"),
    (["--threads", "0"], "argument --threads: must be >= 1"),
])
def test_a_bad_flag_is_one_line_exit_2_and_leaves_no_folder(tmp_path, capsys, flags, says):
    out = tmp_path / "run"
    line = user_error(capsys, ["--out", str(out), "--iterations", "1", *flags])
    assert says in line
    assert not out.exists()


def test_user_errors_from_the_shell_have_no_traceback(tmp_path):
    out = tmp_path / "run"
    for flags in (["--batch-size", "0"], ["--digits", str(tmp_path / "none")]):
        p = run_cli("--model", "ae-conv", "--out", out, *flags)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("train.py: error: ")
    assert not out.exists()


def test_a_damaged_checkpoint_is_one_line_for_eval_and_resume(tmp_path, capsys):
    run(tmp_path, "--iterations", "1")
    ckpt = tmp_path / "checkpoint.h5"
    data = bytearray(ckpt.read_bytes())
    ckpt.write_bytes(bytes(data[:len(data) // 2]))
    assert "is damaged or truncated" in user_error(capsys, ["--eval", str(ckpt)])
    assert "is damaged or truncated" in user_error(capsys, ["--resume", "--out", str(tmp_path)])


# -------------------------------------------------------------------------- guard
def test_the_issue_nan_reproducer_ends_with_a_finite_checkpoint(tmp_path):
    """The flow model at lr 1e12: step 2 has a finite loss but NaN gradients. The update is
    undone, the run stops with a true message, and the checkpoint holds only finite values."""
    out = tmp_path / "run"
    p = run_cli("--model", "ae-convlstm-flow", "--batch-size", 2, "--seq-len", 4, "--n-train", 16,
                "--n-val", 2, "--n-test", 2, "--lr", "1e12", "--iterations", 6, "--checkpoint-every", 2,
                "--out", out)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "Warning" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    ckpt = nn.load(out / "checkpoint.h5")
    assert "the update was undone" in last and f"holds step {ckpt['step']}" in last
    values = ckpt["model"].parameters()[0] + [v for v in ckpt["optim"]["state"].values()
                                              if isinstance(v, numpy.ndarray)]
    assert all(numpy.isfinite(v).all() for v in values)
    assert all(r["loss"] is None or math.isfinite(r["loss"]) for r in metrics(out))


def test_a_run_whose_parameters_stop_moving_is_stopped(tmp_path, capsys, monkeypatch):
    """Saturated outputs give zero gradients and the parameters stop moving: the run stops
    saying so. (Simulated: the update is skipped, as a zero gradient would leave it.)"""
    init = Trainer.__init__

    def frozen(self, *args, **kw):
        init(self, *args, **kw)
        self.optimizer.step = lambda feval, x: (x, [feval(x)[0]])

    monkeypatch.setattr(Trainer, "__init__", frozen)
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--iterations", "10", "--stall-steps", "3")
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "no parameter has changed for 3 steps" in err and "holds step 3" in err
    assert nn.load(tmp_path / "checkpoint.h5")["step"] == 3


def test_metrics_are_strict_json():
    line = train.strict_json({"step": 1, "loss": float("nan"), "val_loss": float("inf"), "lr": 0.1})
    assert json.loads(line) == {"step": 1, "loss": None, "val_loss": None, "lr": 0.1}
    assert "NaN" not in line and "Infinity" not in line


# ---------------------------------------------------------------------- evaluation
def test_eval_uses_the_checkpoint_settings_and_never_overwrites_a_report(tmp_path, capsys):
    run(tmp_path, "--iterations", "1")
    capsys.readouterr()
    result = train.main(["--eval", str(tmp_path / "checkpoint.h5")])  # no data flags: the run's
    for key in ("bce", "sqerr", "copy_bce", "copy_sqerr"):
        assert math.isfinite(result[key]) and result[key] >= 0, key
    assert result["sequences"] == 2 and result["model"] == "ae-conv" and result["step"] == 1
    assert json.loads((tmp_path / "eval.json").read_text())["bce"] == result["bce"]
    assert "| bce |" in (tmp_path / "eval.md").read_text()
    assert (tmp_path / "test_prediction.png").read_bytes().startswith(PNG)
    train.main(["--eval", str(tmp_path / "checkpoint.h5")])
    assert (tmp_path / "eval-2.json").exists() and (tmp_path / "test_prediction-2.png").exists()
    assert json.loads((tmp_path / "eval-2.json").read_text())["bce"] == result["bce"]


@pytest.mark.skipif(nn.gpu_available(), reason="a CUDA device is present")
def test_the_cupy_backend_without_a_gpu_is_a_user_error(tmp_path, capsys):
    line = user_error(capsys, ["--backend", "cupy", "--out", str(tmp_path / "run"), "--iterations", "1"])
    assert "--backend cupy needs CuPy and a CUDA device" in line and not (tmp_path / "run").exists()


def test_only_nnlite_is_installed_as_a_package():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    include = cfg["options.packages.find"]["include"].split()
    assert include and all(p == "nnlite" or p.startswith("nnlite.") for p in include)


FAULTS_OF_A_RETAKEN_ARRAY = """
import resource, sys
import numpy
sys.path.insert(0, {root!r})
import models
from models.training import Trainer
if {trainer}:
    Trainer(models.build("ae-conv"))
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = numpy.ones(1 << 25, numpy.float32)  # 128 MiB, touched, then freed
del a
f0 = faults()
b = numpy.ones(1 << 25, numpy.float32)
print(faults() - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_trainer_keeps_freed_host_memory_for_the_next_step():
    """Without the Trainer, glibc unmaps a freed 128 MiB array and retaking it faults in
    every page again; once a Trainer exists (``backend.keep_freed_host_memory``) the same
    memory is reused without page faults."""
    if not nn.backend.keep_freed_host_memory():
        pytest.skip("the C library is not glibc")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    counts = {}
    for trainer in (False, True):
        code = FAULTS_OF_A_RETAKEN_ARRAY.format(root=root, trainer=trainer)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        counts[trainer] = int(out.stdout.split()[-1])
    assert counts[False] >= 64 and counts[True] * 10 < counts[False], counts  # 64: 2 MiB pages
