"""BatchNormalization and SpatialBatchNormalization: Jacobians, PyTorch reference, running stats."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

SHAPES = {"BatchNormalization": [(5, 3)],
          "SpatialBatchNormalization": [(2, 3, 2, 3), (3, 2, 3)]}


def make(name, affine=True):
    return getattr(nn, name)(3, affine=affine)


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("affine", [True, False])
def test_jacobian_in_training_and_evaluate_mode(xp, rng, name, affine):
    m = on(xp, make(name, affine))
    for shape in SHAPES[name]:
        x = rand(xp, rng, *shape)
        m.training()
        errs = assert_jacobian(m, x)
        assert len(errs) == (3 if affine else 1)
        m.evaluate()
        assert_jacobian(m, x)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_matches_torch_forward_backward_and_running_stats(xp, rng, name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    m = on(xp, make(name))
    m.momentum = 0.3
    shape = SHAPES[name][0]
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    w = torch.tensor(host(m.weight), requires_grad=True)
    b = torch.tensor(host(m.bias), requires_grad=True)
    for step in range(2):  # two batches: the running averages compound
        x = rand(xp, rng, *shape, low=-2, high=3)
        gy = rand(xp, rng, *shape)
        tx = torch.tensor(host(x), requires_grad=True)
        ty = F.batch_norm(tx, rm, rv, w, b, training=True, momentum=0.3, eps=1e-5)
        ty.backward(torch.tensor(host(gy)))
        m.zeroGradParameters()
        numpy.testing.assert_allclose(host(m.forward(x)), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(host(m.backward(x, gy)), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        numpy.testing.assert_allclose(host(m.gradWeight), w.grad.numpy(), rtol=1e-10)
        numpy.testing.assert_allclose(host(m.gradBias), b.grad.numpy(), rtol=1e-10)
        w.grad = b.grad = None
        numpy.testing.assert_allclose(host(m.running_mean), rm.numpy(), rtol=1e-12)
        numpy.testing.assert_allclose(host(m.running_var), rv.numpy(), rtol=1e-12)
    m.evaluate()
    x = rand(xp, rng, *shape)
    ref = F.batch_norm(torch.tensor(host(x)), rm, rv, w.detach(), b.detach(), training=False, eps=1e-5)
    numpy.testing.assert_allclose(host(m.forward(x)), ref.numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(host(m.running_var), rv.numpy(), rtol=1e-12)  # unchanged


def test_numpy_reference_per_channel_and_unbiased_running_var(rng):
    m = nn.SpatialBatchNormalization(2, eps=1e-3, momentum=0.5).double()
    x = rng.standard_normal((4, 2, 3, 3)) * 2 + 1
    y = m.forward(x)
    for c in range(2):
        v = x[:, c]
        ref = (v - v.mean()) / numpy.sqrt(v.var() + 1e-3) * m.weight[c] + m.bias[c]
        numpy.testing.assert_allclose(y[:, c], ref, rtol=1e-12)
        assert m.running_mean[c] == pytest.approx(0.5 * v.mean(), rel=1e-12)
        assert m.running_var[c] == pytest.approx(0.5 + 0.5 * v.var(ddof=1), rel=1e-12)


def test_init_float32_and_repr():
    nn.manualSeed(3)
    m = nn.BatchNormalization(4)
    assert m.weight.dtype == numpy.float32 and (m.weight >= 0).all() and (m.weight <= 1).all()
    assert (m.bias == 0).all() and (m.running_var == 1).all() and (m.running_mean == 0).all()
    assert m.forward(numpy.ones((2, 4), numpy.float32)).dtype == numpy.float32
    assert repr(m) == "nn.BatchNormalization (4)"
    assert repr(nn.SpatialBatchNormalization(2, affine=False)) == "nn.SpatialBatchNormalization (2, affine=False)"
    assert nn.BatchNormalization(4, affine=False).parameters() == ([], [])


def test_bad_inputs():
    m = nn.BatchNormalization(3)
    with pytest.raises(ValueError, match=r"nn.BatchNormalization: input must be \(B, nOutput\) with nOutput=3, got shape \(3,\)"):
        m.forward(numpy.zeros(3, numpy.float32))
    with pytest.raises(ValueError, match=r"nn.BatchNormalization: the input's axis 1 \(nOutput\) must be 3, got 4"):
        m.forward(numpy.zeros((2, 4), numpy.float32))
    with pytest.raises(ValueError, match="nn.BatchNormalization: input of shape \\(0, 3\\) is empty"):
        m.forward(numpy.zeros((0, 3), numpy.float32))
    with pytest.raises(ValueError, match="training needs at least 2 values per feature"):
        m.forward(numpy.zeros((1, 3), numpy.float32))
    assert m.evaluate().forward(numpy.zeros((1, 3), numpy.float32)).shape == (1, 3)
    with pytest.raises(TypeError, match="has dtype float64 but the parameters are float32"):
        m.forward(numpy.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="nn.SpatialBatchNormalization: backward needs a forward first"):
        nn.SpatialBatchNormalization(3).backward(numpy.zeros((2, 3, 2, 2), numpy.float32),
                                                 numpy.zeros((2, 3, 2, 2), numpy.float32))
    s = nn.SpatialBatchNormalization(3)
    x = numpy.ones((2, 3, 2, 2), numpy.float32)
    s.forward(x)
    with pytest.raises(ValueError, match=r"SpatialBatchNormalization: gradOutput must be of shape \(2, 3, 2, 2\)"):
        s.backward(x, numpy.ones((2, 3, 2), numpy.float32))
    with pytest.raises(ValueError, match=r"SpatialBatchNormalization: backward's input has shape \(1, 3, 2, 2\) but the last forward's had \(2, 3, 2, 2\)"):
        s.backward(x[:1], x[:1])
    with pytest.raises(TypeError, match="affine must be True or False"):
        nn.BatchNormalization(3, affine=1)


def test_backward_differentiates_in_the_mode_of_its_forward(rng):
    m = nn.BatchNormalization(3).double()
    x, gy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    m.forward(x)
    train_grad = m.backward(x, gy).copy()
    m.evaluate()
    numpy.testing.assert_array_equal(m.backward(x, gy), train_grad)  # still the training forward's
    m.forward(x)
    assert not numpy.allclose(m.backward(x, gy), train_grad)
