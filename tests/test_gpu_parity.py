"""The CuPy backend computes what the NumPy backend computes (issue 7).

Each case builds a module in float32 on the CPU, copies it to the GPU with
``clone().cuda()``, runs forward and backward on both with the same input and
gradOutput, and compares outputs, gradInputs and every parameter gradient within
float32 tolerance. Skipped where CuPy or a CUDA device is missing; the namespace
test needs only an importable CuPy.
"""
import glob
import os
import re

import numpy
import pytest

import models
import nnlite as nn
from models.training import Trainer
from nnlite import backend
from nnlite.tables import table_leaves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gpu = pytest.mark.skipif(not backend.gpu_available(), reason="CuPy or a CUDA device is missing")


def test_every_array_function_the_library_calls_exists_in_cupy():
    cupy = pytest.importorskip("cupy")
    used = set()
    for path in glob.glob(os.path.join(ROOT, "nnlite", "**", "*.py"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "models", "*.py")):
        used.update(re.findall(r"\bxp\.([A-Za-z_][\w.]*)", open(path).read()))
    assert len(used) > 30
    missing = []
    for name in sorted(used):
        obj = cupy
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            missing.append(name)
    assert not missing, f"xp functions with no CuPy counterpart: {missing}"


def _rand(rng, shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(numpy.float32)


CASES = {
    "conv im2col": (lambda: nn.SpatialConvolution(3, 5, 3, 3, 2, 2, 1, 1), [(2, 3, 9, 8)]),
    "conv shift-add": (lambda: nn.SpatialConvolution(6, 2, 5, 5, 1, 1, 2, 2), [(2, 6, 7, 7)]),
    "maxpool ceil": (lambda: nn.SpatialMaxPooling(3, 3, 2, 2).ceil(), [(2, 3, 8, 7)]),
    "upsampling": (lambda: nn.SpatialUpSamplingNearest(2), [(2, 3, 4, 5)]),
    "linear": (lambda: nn.Linear(6, 4), [(3, 6)]),
    "tanh": (nn.Tanh, [(3, 5)]),
    "sigmoid": (nn.Sigmoid, [(3, 5)]),
    "relu": (nn.ReLU, [(3, 5)]),
    "clamp": (lambda: nn.Clamp(-0.5, 0.5), [(3, 5)]),
    "mul": (nn.Mul, [(3, 5)]),
    "cmul": (lambda: nn.CMul(2, 1, 1), [(3, 2, 4, 4)]),
    "view": (lambda: nn.View(-1), [(3, 2, 4)]),
    "transpose": (lambda: nn.Transpose((0, 1)), [(3, 2, 4)]),
    "concat+cadd": (lambda: nn.Sequential(nn.ConcatTable(nn.Linear(4, 3), nn.Linear(4, 3)),
                                          nn.CAddTable()), [(2, 4)]),
    "convlstm": (lambda: nn.ConvLSTM(2, 3, 5, 3, 3), [(3, 2, 2, 5, 5)]),
    "untied convlstm": (lambda: nn.UntiedConvLSTM(2, 3, 5, 3, 3), [(3, 2, 2, 5, 5)]),
    "lstm peephole": (lambda: nn.LSTM(4, 3, peephole=True), [(3, 2, 4)]),
    "sequencer": (lambda: nn.Sequencer(nn.Linear(4, 3)), [(3, 2, 4)]),
    "grid generator": (lambda: nn.GridGenerator(5, 6), [(2, 2, 5, 6)]),
    "huber": (lambda: nn.HuberPenalty(2, 1e-2, 1e-3), [(2, 2, 5, 6)]),
    "sampler": (nn.BilinearSampler, [(2, 3, 6, 7), (2, 5, 4, 2)]),
}


def _compare(a, b, what, rtol=2e-4, atol=2e-5):
    for x, y in zip(table_leaves(a), table_leaves(b)):
        numpy.testing.assert_allclose(backend.to_numpy(y), x, rtol=rtol, atol=atol, err_msg=what)


@gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_module_forward_and_backward_match_numpy(name):
    make, shapes = CASES[name]
    rng = numpy.random.default_rng(0)
    cpu = make()
    gpu_module = cpu.clone().cuda()
    xs = [_rand(rng, s) for s in shapes]
    x_cpu = xs[0] if len(xs) == 1 else xs
    x_gpu = nn.to_device(x_cpu, "cuda")
    out = cpu.forward(x_cpu)
    _compare(out, gpu_module.forward(x_gpu), f"{name}: output")
    go = [_rand(rng, o.shape) for o in table_leaves(out)]
    go = go[0] if len(go) == 1 else go
    cpu.zeroGradParameters()
    gpu_module.zeroGradParameters()
    gi = cpu.backward(x_cpu, go)
    _compare(gi, gpu_module.backward(x_gpu, nn.to_device(go, "cuda")), f"{name}: gradInput")
    _compare(cpu.parameters()[1], gpu_module.parameters()[1], f"{name}: parameter gradients")


@gpu
@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_criteria_match_numpy(loss):
    rng = numpy.random.default_rng(1)
    crit = nn.BCECriterion() if loss == "bce" else nn.MSECriterion()
    x, t = _rand(rng, (3, 4), 0.05, 0.95), _rand(rng, (3, 4), 0, 1)
    xg, tg = nn.to_device(x, "cuda"), nn.to_device(t, "cuda")
    assert abs(crit.forward(x, t) - crit.forward(xg, tg)) < 1e-5
    _compare(crit.backward(x, t), crit.backward(xg, tg), "criterion gradInput")


@gpu
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_training_step_matches_numpy(name):
    """One full training step of each Table 1 model (small frames) on both backends.

    The gradients are compared, not the updated parameters: RMSprop's first step is
    about 10 lr sign(g), so a gradient near zero may flip sign between backends.
    """
    nn.manualSeed(0)
    cpu_model = models.build(name, height=16, width=16)
    gpu_model = cpu_model.clone().cuda()
    T = 12 if name == "ae-conv" else 4
    frames = numpy.random.default_rng(2).random((T, 2, 1, 16, 16), dtype=numpy.float32)
    cpu_trainer, gpu_trainer = Trainer(cpu_model, lr=1e-3), Trainer(gpu_model, lr=1e-3)
    cpu_loss, _ = cpu_trainer.step(frames)
    gpu_loss, _ = gpu_trainer.step(nn.to_device(frames, "cuda"))
    assert abs(cpu_loss - gpu_loss) < 1e-4 * max(1.0, abs(cpu_loss))
    scale = float(numpy.abs(cpu_trainer.grads).max())
    _compare(cpu_trainer.grads, gpu_trainer.grads, f"{name}: gradients", rtol=1e-3, atol=1e-4 * scale)


@gpu
def test_mixing_numpy_and_cupy_is_a_clear_error():
    m = nn.Linear(3, 2).cuda()
    with pytest.raises(TypeError, match="module.cuda\\(\\) or module.cpu\\(\\)"):
        m.forward(numpy.ones((2, 3), dtype=numpy.float32))
