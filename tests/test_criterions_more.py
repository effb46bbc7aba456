"""Abs, SmoothL1, DistKLDiv, Margin, MultiMargin and Parallel criterions; SequencerCriterion's
sizeAverage."""
import numpy
import pytest

import nnlite as nn
from tests import strict_cupy
from tests.conftest import on_stand_in
from tests.helpers import host, on, rand
from tests.test_criterions import fd_error, labels

F32 = numpy.float32


def away_from(x, points, gap=0.05):
    """Move values within ``gap`` of a kink so finite differences do not straddle it."""
    for p in points:
        x = numpy.where(abs(x - p) < gap, p + 2 * gap, x)
    return x


def pointwise_case(name, xp, rng, shape):
    """(criterion factory, input, target, torch reference or None, NumPy loss reference)."""
    x = host(rand(xp, rng, *shape, low=-2, high=2))
    if name == "AbsCriterion":
        t = x + away_from(rng.uniform(-2, 2, shape), (0,))
        return (nn.AbsCriterion, x, t, lambda F, a, b: F.l1_loss(a, b), lambda a, b: abs(a - b))
    if name == "SmoothL1Criterion":
        t = x + away_from(rng.uniform(-2, 2, shape), (-1, 1))
        return (nn.SmoothL1Criterion, x, t, lambda F, a, b: F.smooth_l1_loss(a, b, beta=1.0),
                lambda a, b: numpy.where(abs(a - b) < 1, 0.5 * (a - b) ** 2, abs(a - b) - 0.5))
    if name == "DistKLDivCriterion":
        t = rng.uniform(0, 1, shape)
        t.reshape(-1)[0] = 0  # a zero-probability term counts 0
        return (nn.DistKLDivCriterion, x, t, lambda F, a, b: F.kl_div(a, b, reduction="sum") / a.numel(),
                lambda a, b: numpy.where(b > 0, b * (numpy.log(numpy.where(b > 0, b, 1)) - a), 0))
    t = numpy.sign(rng.uniform(-1, 1, shape))
    x = away_from(x, (-1, 1))  # t x = margin is the hinge
    return (lambda sizeAverage=True: nn.MarginCriterion(1.0, sizeAverage), x, t, None,
            lambda a, b: numpy.maximum(0, 1 - a * b))


POINTWISE = ["AbsCriterion", "SmoothL1Criterion", "DistKLDivCriterion", "MarginCriterion"]


@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_pointwise_criterions_match_numpy_and_finite_differences(xp, rng, name, shape):
    make, x, t, _, ref = pointwise_case(name, xp, rng, shape)
    for avg in (True, False):
        crit = make(sizeAverage=avg)
        loss = ref(x, t).sum() / (x.size if avg else 1)
        assert float(crit.forward(xp.asarray(x), xp.asarray(t))) == pytest.approx(loss, rel=1e-12)
        assert fd_error(crit, xp.asarray(x), xp.asarray(t)) < 1e-6


@pytest.mark.parametrize("name", POINTWISE[:3])
def test_pointwise_criterions_match_torch(rng, name):
    torch = pytest.importorskip("torch")
    make, x, t, tref, _ = pointwise_case(name, numpy, rng, (4, 3))
    tx = torch.tensor(x, requires_grad=True)
    loss = tref(torch.nn.functional, tx, torch.tensor(t))
    loss.backward()
    crit = make()
    assert float(crit.forward(x, t)) == pytest.approx(loss.item(), rel=1e-12)
    numpy.testing.assert_allclose(crit.backward(x, t), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_pointwise_float32_and_subgradients():
    x = numpy.array([0.5, 2.0, -1.0], F32)
    t = numpy.array([0.5, 0.0, 0.0], F32)
    assert nn.AbsCriterion().backward(x, t).tolist() == pytest.approx([0, 1 / 3, -1 / 3])
    assert nn.AbsCriterion().backward(x, t).dtype == F32
    assert nn.SmoothL1Criterion(False).backward(x, t).tolist() == [0, 1, -1]
    m = nn.MarginCriterion(2.0, sizeAverage=False)
    assert float(m.forward(x, numpy.array([1, 1, -1], F32))) == pytest.approx(1.5 + 0 + 1)
    assert m.backward(x, numpy.array([1, 1, -1], F32)).tolist() == [-1, 0, 1]
    assert repr(m) == "nn.MarginCriterion(2)"


@pytest.mark.parametrize("make", [nn.AbsCriterion, nn.SmoothL1Criterion, nn.DistKLDivCriterion,
                                  nn.MarginCriterion])
def test_pointwise_bad_inputs(make):
    with pytest.raises(ValueError, match=r"nn\.\w+Criterion: target must have the shape of input \(2,\), got \(3,\)"):
        make().forward(numpy.zeros(2, F32), numpy.zeros(3, F32))
    with pytest.raises(TypeError, match=r"nn\.\w+Criterion: input must be a NumPy or CuPy array, got list"):
        make().backward([0.0], numpy.zeros(1, F32))
    empty = numpy.zeros((0, 3), F32)
    with pytest.raises(ValueError, match=r"nn\.\w+Criterion: input of shape \(0, 3\) is empty"):
        make().forward(empty, empty)
    assert float(make(sizeAverage=False).forward(empty, empty)) == 0


# ------------------------------------------------------------------ MultiMargin
def multi_margin_reference(x, t, p, w, margin):
    """Torch's loop, sample by sample and class by class; mean over the batch."""
    total = 0.0
    for n in range(x.shape[0]):
        for i in range(x.shape[1]):
            if i != t[n]:
                z = margin - x[n, t[n]] + x[n, i]
                total += w[t[n]] * max(z, 0) ** p / x.shape[1]
    return total / x.shape[0]


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_matches_loop_torch_and_finite_differences(xp, rng, p):
    x, t = rand(xp, rng, 4, 5, low=-1, high=1), labels(xp, rng, 5, 4)
    w = rng.uniform(0.5, 2, 5)
    crit = on(xp, nn.MultiMarginCriterion(p, w, margin=0.7))
    ww = host(crit.weights)
    loss = float(crit.forward(x, t))
    assert loss == pytest.approx(multi_margin_reference(host(x), host(t), p, ww, 0.7), rel=1e-12)
    assert fd_error(crit, x, t) < 1e-6
    unbatched = on(xp, nn.MultiMarginCriterion(p))
    assert float(unbatched.forward(x[1], t[1])) == pytest.approx(
        multi_margin_reference(host(x[1:2]), host(t[1:2]), p, numpy.ones(5), 1.0), rel=1e-12)
    assert fd_error(unbatched, x[1].copy(), int(t[1])) < 1e-6
    torch = pytest.importorskip("torch")
    tx = torch.tensor(host(x), requires_grad=True)
    ref = torch.nn.functional.multi_margin_loss(tx, torch.tensor(host(t)), p=p, margin=0.7,
                                                weight=torch.tensor(ww, dtype=torch.float64))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    numpy.testing.assert_allclose(host(crit.backward(x, t)), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_multi_margin_bad_inputs():
    crit = nn.MultiMarginCriterion()
    x = numpy.zeros((2, 3), F32)
    with pytest.raises(ValueError, match="nn.MultiMarginCriterion: p must be 1 or 2, got 3"):
        nn.MultiMarginCriterion(3)
    with pytest.raises(TypeError, match="nn.MultiMarginCriterion: target must be an integer array of class labels"):
        crit.forward(x, numpy.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target labels must be integers in \[0, 3\), got 3"):
        crit.forward(x, numpy.array([0, 3]))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\) for input \(2, 3\), got \(3,\)"):
        crit.forward(x, numpy.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"input must be \(C,\) or \(B, C\), got shape \(1, 2, 3\)"):
        crit.forward(x[None], numpy.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\) for 3 classes, got \(2,\)"):
        nn.MultiMarginCriterion(1, [1, 2]).forward(x, numpy.array([0, 1]))
    assert crit.forward(numpy.zeros((0, 3), F32), numpy.zeros(0, int)) == 0  # empty batch: no loss


# ---------------------------------------------------------------------- Parallel
def test_parallel_criterion_weighted_sum_and_gradients(xp, rng):
    x = [rand(xp, rng, 2, 3), rand(xp, rng, 4, 5)]
    t = [rand(xp, rng, 2, 3), labels(xp, rng, 5, 4)]
    crit = on(xp, nn.ParallelCriterion().add(nn.MSECriterion(), 0.5).add(nn.CrossEntropyCriterion()))
    a, b = nn.MSECriterion(), nn.CrossEntropyCriterion()
    want = 0.5 * float(a.forward(x[0], t[0])) + float(b.forward(x[1], t[1]))
    assert float(crit.forward(x, t)) == pytest.approx(want, rel=1e-12)
    g = crit.backward(x, t)
    numpy.testing.assert_allclose(host(g[0]), 0.5 * host(a.backward(x[0], t[0])), rtol=1e-12)
    numpy.testing.assert_allclose(host(g[1]), host(b.backward(x[1], t[1])), rtol=1e-12)
    assert fd_error(crit, x, t) < 1e-6
    assert repr(crit) == "nn.ParallelCriterion(0.5 * nn.MSECriterion, 1 * nn.CrossEntropyCriterion)"


def test_parallel_criterion_repeat_target(xp, rng):
    x, t = [rand(xp, rng, 3), rand(xp, rng, 3)], rand(xp, rng, 3)
    crit = nn.ParallelCriterion(True).add(nn.MSECriterion()).add(nn.AbsCriterion(), 2)
    want = float(nn.MSECriterion().forward(x[0], t)) + 2 * float(nn.AbsCriterion().forward(x[1], t))
    assert float(crit.forward(x, t)) == pytest.approx(want, rel=1e-12)
    assert fd_error(crit, x, t) < 1e-6


def test_parallel_criterion_bad_inputs_and_conversion():
    crit = nn.ParallelCriterion()
    x = [numpy.zeros(2, F32)]
    with pytest.raises(ValueError, match="nn.ParallelCriterion: no criterion added yet"):
        crit.forward(x, x)
    with pytest.raises(TypeError, match=r"nn.ParallelCriterion.add: expected an nn.Criterion, got ReLU"):
        crit.add(nn.ReLU())
    crit.add(nn.BCECriterion([1.0, 1.0]))
    with pytest.raises(ValueError, match="target must be a list of 1 arrays, got 2"):
        crit.forward(x, x * 2)
    with pytest.raises(TypeError, match="input must be a list of arrays"):
        crit.forward(x[0], x)
    with pytest.raises(ValueError, match=r"nn.ParallelCriterion \(0\) nn.BCECriterion: target must have the shape"):
        crit.forward(x, [numpy.zeros(3, F32)])
    assert crit.double().criterions[0].weights.dtype == numpy.float64


# ------------------------------------------------------- SequencerCriterion sizeAverage
def test_sequencer_criterion_size_average_divides_by_steps(xp, rng):
    x = [rand(xp, rng, 2, 3) for _ in range(4)]
    t = [rand(xp, rng, 2, 3) for _ in range(4)]
    total, mean = nn.SequencerCriterion(nn.AbsCriterion()), nn.SequencerCriterion(nn.AbsCriterion(), True)
    assert not total.sizeAverage
    assert float(mean.forward(x, t)) == pytest.approx(float(total.forward(x, t)) / 4, rel=1e-12)
    for a, b in zip(mean.backward(x, t), total.backward(x, t)):
        numpy.testing.assert_allclose(host(a), host(b) / 4, rtol=1e-12)
    assert fd_error(mean, x, t) < 1e-6


def test_multi_margin_bad_label_on_a_gpu_gives_nan_without_a_sync(xp):
    if xp is numpy:
        pytest.skip("the device path: NumPy raises (test_multi_margin_bad_inputs)")
    x, labels_ = xp.zeros((2, 3), dtype=F32), xp.asarray(numpy.array([0, 3]))
    crit = nn.MultiMarginCriterion()
    if on_stand_in():
        with strict_cupy.counting() as c:
            loss = crit.updateOutput(x, labels_)
        assert c.totals().get("sync", 0) == 0
    else:
        loss = crit.updateOutput(x, labels_)
    assert numpy.isnan(float(loss))
    assert float(crit.updateOutput(x, xp.asarray(numpy.array([0, 2])))) == pytest.approx(2 / 3)
