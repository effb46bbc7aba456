"""Bad input found by the audit: empty batches, backward before forward or with a stale
forward, and a gradOutput of the wrong shape; every error names the module."""
import numpy
import pytest

import nnlite as nn


def z(*shape):
    return numpy.zeros(shape)


@pytest.mark.parametrize("make, x", [
    (lambda: nn.Linear(3, 2), z(0, 3)),
    (lambda: nn.SpatialMaxPooling(2, 2), z(0, 2, 4, 4)),
    (lambda: nn.SpatialUpSamplingNearest(2), z(0, 2, 4, 4)),
    (lambda: nn.Tanh(), z(0, 3)), (lambda: nn.Sigmoid(), z(0, 3)), (lambda: nn.ReLU(), z(0, 3)),
    (lambda: nn.Sqrt(), z(0, 3)), (lambda: nn.Square(), z(0, 3)), (lambda: nn.Clamp(0, 1), z(0, 3)),
    (lambda: nn.CMul(3), z(0, 3)), (lambda: nn.Mul(), z(0, 3)),
])
def test_an_empty_batch_gives_an_empty_result(make, x):
    m = make().double()
    y = m.forward(x)
    assert y.shape[0] == 0
    assert m.backward(x, y).shape == x.shape


@pytest.mark.parametrize("make, x", [
    (lambda: nn.SpatialConvolution(2, 3, 3, 3), z(0, 2, 5, 5)),
    (lambda: nn.ConvLSTM(2, 3, 9, 3, 3), z(2, 0, 2, 4, 4)),
    (lambda: nn.LSTM(3, 2), z(2, 0, 3)),
    (lambda: nn.LSTM(3, 2, mode="step"), z(0, 3)),
    (lambda: nn.HuberPenalty(2), z(0, 2, 4, 4)),
    (lambda: nn.BilinearSampler(), [z(0, 3, 4, 4), z(0, 4, 4, 2)]),
])
def test_an_empty_batch_is_a_clear_error_where_the_kernels_need_one(make, x):
    m = make().double()
    with pytest.raises(ValueError, match=rf"{m.typename()}: the (input )?batch is empty \(B = 0"):
        m.forward(x)


@pytest.mark.parametrize("make, x", [
    (nn.Tanh, z(4, 3)), (nn.Sigmoid, z(4, 3)), (lambda: nn.Sqrt(), z(4, 3) + 1),
    (lambda: nn.SpatialMaxPooling(2, 2), z(2, 2, 4, 4)),
])
def test_backward_needs_a_forward_of_this_input(make, x):
    m = make().double()
    with pytest.raises(RuntimeError, match=f"{m.typename()}: backward needs a forward first"):
        m.backward(x, m.clone().forward(x))
    gy = m.forward(x).copy()
    m.forward(x[:1])  # a stale forward: its output would broadcast against the new gradOutput
    with pytest.raises(ValueError, match=rf"{m.typename()}: backward's input has shape {x.shape}".replace("(", r"\(").replace(")", r"\)")):
        m.backward(x, gy)


def test_linear_checks_its_gradoutput():
    m = nn.Linear(3, 2).double()
    x = z(4, 3)
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.Linear: gradOutput must be of shape \(4, 2\), got shape \(4, 3\)"):
        m.backward(x, z(4, 3))
    with pytest.raises(ValueError, match=r"nn.Linear: gradOutput must be of shape \(4, 2\)"):
        m.accGradParameters(x, z(2, 2))
    with pytest.raises(TypeError, match="nn.Linear: gradOutput has dtype float32"):
        m.updateGradInput(x, z(4, 2).astype(numpy.float32))


@pytest.mark.parametrize("make", [nn.MSECriterion, nn.BCECriterion, nn.AbsCriterion, nn.SmoothL1Criterion])
def test_a_size_averaged_loss_of_an_empty_input_is_a_clear_error(make):
    c = make()
    with pytest.raises(ValueError, match=rf"{c.typename()}: input of shape \(0, 3\) is empty"):
        c.forward(z(0, 3), z(0, 3))
    assert float(make(sizeAverage=False).forward(z(0, 3), z(0, 3))) == 0.0
