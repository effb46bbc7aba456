"""The Jacobian tester itself: Torch's signature, the split path, kinks, parameter names."""
import numpy
import pytest

import nnlite as nn
from nnlite import jacobian
from tests.helpers import on, rand


class WrongSplit(nn.Tanh):
    """A Tanh whose ``backward`` is right but whose ``updateGradInput`` alone is wrong."""

    def backward(self, input, gradOutput, scale=1.0):
        return super().updateGradInput(input, gradOutput)

    def updateGradInput(self, input, gradOutput):
        self.gradInput = 2 * super().updateGradInput(input, gradOutput)
        return self.gradInput


class WrongReLU(nn.ReLU):
    """Passes the gradient everywhere: wrong for x < 0."""

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput


def test_torchs_signature_redraws_the_input_in_range(rng):
    m = nn.Tanh()
    x = numpy.zeros((3, 4))
    assert jacobian.testJacobian(m, x, -3, 5) < 1e-6
    assert x.min() >= -3 and x.max() <= 5 and x.std() > 0.5
    y = rng.standard_normal((3, 4))
    kept = y.copy()
    assert jacobian.testJacobian(m, y, perturbation=1e-5) < 1e-6
    numpy.testing.assert_array_equal(y, kept)  # without a range the input is used as given


def test_the_split_path_is_checked_too(rng):
    x = rng.standard_normal((3, 4))
    assert jacobian.testJacobian(WrongSplit(), x) > 0.1
    assert jacobian.testJacobian(nn.Tanh(), x) < 1e-6


def test_a_point_on_a_kink_does_not_fail_a_correct_module_but_a_wrong_one_fails(xp, rng):
    x = xp.asarray([[0.0, 0.5, -0.5, 2e-7, -3e-7]])
    assert jacobian.testJacobian(nn.ReLU(), x) < 1e-6  # the central difference alone gives 0.5
    assert jacobian.testJacobian(WrongReLU(), x) > 0.9
    pool = nn.SpatialMaxPooling(2, 2)
    tie = xp.asarray(numpy.ones((1, 1, 2, 2)))
    assert jacobian.testJacobian(pool, tie) < 1e-6


def test_sampler_on_the_identity_grid(xp, rng):
    grid = nn.GridGenerator(3, 4)
    g = grid.forward(xp.zeros((1, 2, 3, 4)))
    m = nn.BilinearSampler()
    assert jacobian.testJacobian(m, [rand(xp, rng, 1, 2, 3, 4), g.copy()]) < 1e-6


def test_test_all_names_the_parameters(xp, rng):
    m = on(xp, nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 2))))
    errs = jacobian.testAll(m, rand(xp, rng, 2, 3))
    assert list(errs) == ["input", "(0) nn.Linear.weight", "(0) nn.Linear.bias",
                          "(2)(0) nn.Linear.weight", "(2)(0) nn.Linear.bias"]
    assert max(errs.values()) < 1e-6
    assert list(jacobian.testAll(on(xp, nn.Linear(2, 2)), rand(xp, rng, 2))) == ["input", "weight", "bias"]
