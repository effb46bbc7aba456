"""Criterions: BCE, ClassNLL, CrossEntropy (plain and spatial) and SequencerCriterion."""
import numpy
import pytest

import nnlite as nn
from nnlite.backend import is_array
from nnlite.jacobian import flatten
from tests.helpers import host, on, rand

F32 = numpy.float32


def fd_error(crit, input, target, h=1e-6):
    """max |backward - central differences of forward| over every input element (float64)."""
    analytic = flatten(crit.backward(input, target))
    numeric = []
    for a in ([input] if is_array(input) else input):
        flat = a.reshape(-1)
        for i in range(a.size):
            orig = float(flat[i])
            flat[i] = orig + h
            plus = crit.forward(input, target)
            flat[i] = orig - h
            minus = crit.forward(input, target)
            flat[i] = orig
            numeric.append((plus - minus) / (2 * h))
    return float(numpy.abs(analytic - numpy.array(numeric)).max())


def labels(xp, rng, C, *shape):
    return xp.asarray(rng.integers(0, C, size=shape))


def test_fd_check_catches_a_wrong_gradient(rng):
    class Wrong(nn.MSECriterion):
        def updateGradInput(self, input, target):
            return super().updateGradInput(input, target) * 0.5
    x, t = rng.standard_normal(4), rng.standard_normal(4)
    assert fd_error(Wrong(), x, t) > 1e-2 and fd_error(nn.MSECriterion(), x, t) < 1e-6


# ------------------------------------------------------------------------- BCE
def bce_reference(x, t, w=None, size_average=True):
    eps = 1e-12
    w = numpy.ones_like(x) if w is None else w
    terms = w * (t * numpy.log(x + eps) + (1 - t) * numpy.log(1 - x + eps))
    grad = -(t - x) / ((1 - x + eps) * (x + eps)) * w
    n = x.size if size_average else 1
    return -terms.sum() / n, grad / n


@pytest.mark.parametrize("shape", [(3, 4), (4,)])
def test_bce_matches_spec_and_finite_differences(xp, rng, shape):
    x, t = rand(xp, rng, *shape, low=0.05, high=0.95), rand(xp, rng, *shape, low=0, high=1)
    for crit, w, avg in [(nn.BCECriterion(), None, True),
                         (nn.BCECriterion(rng.uniform(0.5, 2, 4), sizeAverage=False), True, False)]:
        crit = on(xp, crit)
        loss, grad = bce_reference(host(x), host(t), None if w is None else host(crit.weights), avg)
        assert crit.forward(x, t) == pytest.approx(loss, rel=1e-12)
        numpy.testing.assert_allclose(host(crit.backward(x, t)), grad, rtol=1e-12)
        assert fd_error(crit, x, t) < 1e-6


def test_bce_is_finite_at_zero_and_one(rng):
    x, t = numpy.array([0.0, 1.0, 0.0, 1.0]), numpy.array([0.0, 1.0, 1.0, 0.0])
    crit = nn.BCECriterion()
    loss = crit.forward(x, t)
    assert numpy.isfinite(loss) and loss == pytest.approx(-2 * numpy.log(1e-12) / 4)
    assert numpy.isfinite(crit.backward(x, t)).all()


def test_bce_bad_inputs():
    crit = nn.BCECriterion()
    with pytest.raises(ValueError, match=r"nn.BCECriterion: input must hold probabilities in \[0, 1\]"):
        crit.forward(numpy.array([0.5, 1.5], dtype=F32), numpy.zeros(2, dtype=F32))
    with pytest.raises(ValueError, match="must hold probabilities"):
        crit.backward(numpy.array([-0.1], dtype=F32), numpy.zeros(1, dtype=F32))
    with pytest.raises(ValueError, match=r"target must have the shape of input \(2,\), got \(3,\)"):
        crit.forward(numpy.zeros(2, dtype=F32), numpy.zeros(3, dtype=F32))
    weighted = nn.BCECriterion([1.0, 2.0])
    with pytest.raises(ValueError, match=r"weights of shape \(2,\) do not fit input \(2, 3\)"):
        weighted.forward(numpy.zeros((2, 3), dtype=F32), numpy.zeros((2, 3), dtype=F32))
    with pytest.raises(TypeError, match="dtype float64 but the parameters are float32"):
        weighted.forward(numpy.zeros(2), numpy.zeros(2))


def test_criterion_weights_follow_type_conversions():
    crit = nn.SequencerCriterion(nn.ClassNLLCriterion([1, 2, 3]))
    assert crit.criterion.weights.dtype == F32
    assert crit.double() is crit and crit.criterion.weights.dtype == numpy.float64


# -------------------------------------------------------------------- ClassNLL
def nll_reference(logp, t, w=None, ignore=None):
    """Rows (N, C) of log-probabilities, labels (N,): Torch's weighted average."""
    w = numpy.ones(logp.shape[1]) if w is None else w
    keep = numpy.ones(t.shape, bool) if ignore is None else t != ignore
    ws = w[t[keep]]
    return -(ws * logp[keep, t[keep]]).sum() / ws.sum()


def rows_of(x, axis):
    return numpy.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])


@pytest.mark.parametrize("shape,tshape,axis", [((3, 5), (3,), 1), ((4, 2, 3, 3), (4, 3, 3), 1),
                                               ((4, 3, 3), (3, 3), 0)])
def test_class_nll_matches_reference_and_finite_differences(xp, rng, shape, tshape, axis):
    C = shape[axis]
    x, t = rand(xp, rng, *shape), labels(xp, rng, C, *tshape)
    t[(0,) * len(tshape)] = 1  # one pixel ignored below
    w = rng.uniform(0.5, 2, C)
    for crit, ww, ign in [(nn.ClassNLLCriterion(), None, None),
                          (nn.ClassNLLCriterion(w, ignoreIndex=1), w, 1)]:
        crit = on(xp, crit)  # weights are stored as float32: compare with those values
        ww = None if ww is None else host(crit.weights)
        ref = nll_reference(rows_of(host(x), axis), host(t).ravel(), ww, ign)
        assert crit.forward(x, t) == pytest.approx(ref, rel=1e-12)
        assert crit.backward(x, t).shape == x.shape
        assert fd_error(crit, x, t) < 1e-6


def test_class_nll_unbatched_with_an_int_label(xp, rng):
    x = rand(xp, rng, 4)
    crit = on(xp, nn.ClassNLLCriterion())
    assert crit.forward(x, 2) == pytest.approx(-float(x[2]))
    assert crit.forward(x, xp.asarray(3)) == pytest.approx(-float(x[3]))
    numpy.testing.assert_array_equal(host(crit.backward(x, 2)), [0, 0, -1, 0])


def test_class_nll_sums_without_size_average_and_ignores(rng):
    x, t = rng.standard_normal((3, 4)), numpy.array([0, 3, 3])
    crit = nn.ClassNLLCriterion(sizeAverage=False, ignoreIndex=0).double()
    assert crit.forward(x, t) == pytest.approx(-(x[1, 3] + x[2, 3]))
    assert not crit.backward(x, t)[0].any()
    every_ignored = nn.ClassNLLCriterion(ignoreIndex=3).double()
    assert every_ignored.forward(x[1:], t[1:]) == 0 and not every_ignored.backward(x[1:], t[1:]).any()


def test_class_nll_bad_inputs():
    crit = nn.ClassNLLCriterion()
    x = numpy.zeros((2, 3), dtype=F32)
    with pytest.raises(TypeError, match="nn.ClassNLLCriterion: target must be an integer array"):
        crit.forward(x, numpy.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target labels must be integers in \[0, 3\), got 3"):
        crit.forward(x, numpy.array([0, 3]))
    with pytest.raises(ValueError, match=r"in \[0, 3\) or the ignoreIndex 7, got -1"):
        nn.ClassNLLCriterion(ignoreIndex=7).forward(x, numpy.array([7, -1]))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\) for input \(2, 3\)"):
        crit.forward(x, numpy.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4, 4\) for input \(2, 3, 4, 4\)"):
        crit.forward(numpy.zeros((2, 3, 4, 4), dtype=F32), numpy.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match=r"input must be \(C,\), \(B, C\), \(C, H, W\) or \(B, C, H, W\)"):
        crit.forward(numpy.zeros((1, 1, 1, 1, 1), dtype=F32), numpy.zeros((1, 1, 1, 1), dtype=int))
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\) for 3 classes, got \(2,\)"):
        nn.ClassNLLCriterion([1, 1]).forward(x, numpy.array([0, 1]))


# ---------------------------------------------------------------- CrossEntropy
def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - numpy.log(numpy.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("shape,tshape,axis", [((3, 5), (3,), 1), ((5,), (), 0),
                                               ((2, 3, 2, 3), (2, 2, 3), 1)])
def test_cross_entropy_is_log_softmax_then_nll(xp, rng, shape, tshape, axis):
    C = shape[axis]
    x, t = rand(xp, rng, *shape, low=-3, high=3), labels(xp, rng, C, *tshape)
    w = rng.uniform(0.5, 2, C)
    for crit, ww in [(nn.CrossEntropyCriterion(), None), (nn.CrossEntropyCriterion(w), w)]:
        crit = on(xp, crit)
        ww = None if ww is None else host(crit.weights)
        ref = nll_reference(rows_of(log_softmax(host(x), axis), axis), host(t).ravel(), ww)
        assert crit.forward(x, t) == pytest.approx(ref, rel=1e-12)
        assert fd_error(crit, x, t) < 1e-6


def test_cross_entropy_is_stable_for_huge_scores(rng):
    x = numpy.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], dtype=F32)
    crit = nn.CrossEntropyCriterion()
    assert crit.forward(x, numpy.array([0, 1])) == pytest.approx(numpy.log(2) / 2, rel=1e-5)
    g = crit.backward(x, numpy.array([0, 1]))
    assert g.dtype == F32 and numpy.isfinite(g).all()
    numpy.testing.assert_allclose(g, [[0, 0, 0], [0, -0.25, 0.25]], atol=1e-6)
    with pytest.raises(ValueError, match=r"nn.CrossEntropyCriterion: target labels must be integers"):
        crit.forward(x, numpy.array([0, 5]))


# ------------------------------------------------------------ SequencerCriterion
def test_sequencer_criterion_sums_steps_for_lists_and_stacks(xp, rng):
    x = [rand(xp, rng, 2, 3) for _ in range(3)]
    t = [rand(xp, rng, 2, 3) for _ in range(3)]
    crit = nn.SequencerCriterion(nn.MSECriterion())
    step = nn.MSECriterion()
    assert crit.forward(x, t) == pytest.approx(sum(step.forward(a, b) for a, b in zip(x, t)))
    gi = crit.backward(x, t)
    assert isinstance(gi, list) and len(gi) == 3
    numpy.testing.assert_allclose(host(gi[2]), host(step.backward(x[2], t[2])))
    assert fd_error(crit, x, t) < 1e-6
    xs, ts = xp.stack(x), xp.stack(t)
    assert crit.forward(xs, t) == pytest.approx(crit.forward(x, ts))
    gs = crit.backward(xs, ts)
    assert gs.shape == (3, 2, 3)
    numpy.testing.assert_allclose(host(gs), numpy.stack(host(gi)))
    assert fd_error(crit, xs, ts) < 1e-6


def test_sequencer_criterion_with_class_labels(xp, rng):
    x, t = rand(xp, rng, 4, 2, 3), labels(xp, rng, 3, 4, 2)
    crit = on(xp, nn.SequencerCriterion(nn.CrossEntropyCriterion()))
    step = on(xp, nn.CrossEntropyCriterion())
    assert crit.forward(x, t) == pytest.approx(sum(step.forward(x[i], t[i]) for i in range(4)))
    assert fd_error(crit, x, t) < 1e-6


def test_sequencer_criterion_bad_inputs():
    crit = nn.SequencerCriterion(nn.MSECriterion())
    x = [numpy.zeros(2, dtype=F32)] * 3
    with pytest.raises(ValueError, match=r"target must have as many steps as input \(3\), got 2"):
        crit.forward(x, x[:2])
    with pytest.raises(ValueError, match=r"nn.SequencerCriterion \(1\) nn.MSECriterion: target must "
                                         r"have the shape of input \(2,\), got \(3,\)"):
        crit.forward(x, [x[0], numpy.zeros(3, dtype=F32), x[0]])
    with pytest.raises(TypeError, match="input must be a list"):
        crit.forward(3.0, x)
    with pytest.raises(ValueError, match="got a 0-d array"):
        crit.forward(numpy.ones((), F32), x)
    with pytest.raises(TypeError, match="expected an nn.Criterion, got Linear"):
        nn.SequencerCriterion(nn.Linear(2, 2))
    assert repr(crit) == "nn.SequencerCriterion(nn.MSECriterion)"


def test_input_and_target_on_different_devices_are_refused(xp):
    if xp is numpy:
        pytest.skip("needs CuPy: a NumPy/CuPy pair")
    x = xp.full((2, 3), 0.5, dtype=F32)
    with pytest.raises(TypeError, match="nn.BCECriterion: input and target must both be NumPy or both"):
        nn.BCECriterion().forward(x, numpy.zeros((2, 3), dtype=F32))
    with pytest.raises(TypeError, match="nn.ClassNLLCriterion: input and target must both be"):
        nn.ClassNLLCriterion().forward(x, numpy.zeros(2, dtype=int))
