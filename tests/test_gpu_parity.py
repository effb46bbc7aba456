"""The CuPy backend computes what the NumPy backend computes (issue 7).

Each case builds a module in float32 on the CPU, copies it to the GPU with
``clone().cuda()``, runs forward and backward on both with the same input and
gradOutput, and compares outputs, gradInputs and every parameter gradient within
float32 tolerance. Skipped where CuPy or a CUDA device is missing, and run on the
strict stand-in (tests/strict_cupy.py) in CI's second pass. That every array function
the library calls exists in CuPy is checked in test_strict_cupy.py.
"""
import weakref

import numpy
import pytest

import models
import nnlite as nn
from models.training import Trainer
from nnlite import backend
from nnlite.tables import table_leaves

gpu = pytest.mark.skipif(not backend.gpu_available(), reason="CuPy or a CUDA device is missing")


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
@pytest.mark.parametrize("name", sorted(models.PAPER_TABLE1))
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
    cpu_loss = cpu_trainer.step(frames)["loss"]
    gpu_loss = gpu_trainer.step(nn.to_device(frames, "cuda"))["loss"]
    assert abs(cpu_loss - gpu_loss) < 1e-4 * max(1.0, abs(cpu_loss))
    scale = float(numpy.abs(cpu_trainer.grads).max())
    _compare(cpu_trainer.grads, gpu_trainer.grads, f"{name}: gradients", rtol=1e-3, atol=1e-4 * scale)


@gpu
def test_mixing_numpy_and_cupy_is_a_clear_error():
    m = nn.Linear(3, 2).cuda()
    with pytest.raises(TypeError, match="module.cuda\\(\\) or module.cpu\\(\\)"):
        m.forward(numpy.ones((2, 3), dtype=numpy.float32))


@gpu
def test_bce_out_of_range_input_gives_a_nan_loss_on_the_device_without_a_sync():
    """On NumPy the range check raises; on a device it is folded into the loss (no sync)."""
    x = numpy.array([[0.5, 1.5]], dtype=numpy.float32)
    t = numpy.zeros_like(x)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        nn.BCECriterion().updateOutput(x, t)
    loss = nn.BCECriterion().updateOutput(nn.to_device(x, "cuda"), nn.to_device(t, "cuda"))
    assert backend.is_cupy(loss) and loss.ndim == 0 and numpy.isnan(float(loss))
    good = nn.BCECriterion().updateOutput(nn.to_device(x / 2, "cuda"), nn.to_device(t, "cuda"))
    assert abs(float(good) - nn.BCECriterion().forward(x / 2, t)) < 1e-6


def test_criterion_update_output_is_a_0d_array_and_forward_a_float(xp):
    x = xp.asarray(numpy.full((2, 3), 0.25, dtype=numpy.float32))
    t = xp.zeros((2, 3), dtype=xp.float32)
    for crit in (nn.BCECriterion(), nn.MSECriterion()):
        out = crit.updateOutput(x, t)
        assert nn.get_xp(out) is xp and out.ndim == 0 and crit.output is out
        assert type(crit.forward(x, t)) is float


def test_type_conversion_keeps_every_source_alive_until_it_is_done(xp):
    """The memo of ``_map_arrays`` is keyed by address: a source freed half-way could have
    its address reused by a converted array and be mistaken for another (issue 14)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model.zeroGradParameters()
    sources = []

    def convert(a):
        sources.append(weakref.ref(a))
        return xp.asarray(nn.to_numpy(a)).copy()

    model._map_arrays(convert, {})
    assert len(sources) == 8 and all(r() is not None for r in sources)


@gpu
def test_a_reloaded_checkpoint_moves_to_the_device_intact(tmp_path):
    nn.manualSeed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model.zeroGradParameters()
    nn.save(tmp_path / "m.h5", model)
    loaded = nn.load(tmp_path / "m.h5").cuda()
    for a, b in zip(model.parameters()[0] + model.parameters()[1],
                    loaded.parameters()[0] + loaded.parameters()[1]):
        numpy.testing.assert_array_equal(backend.to_numpy(b), a)
