"""SpatialFullConvolution: Jacobians, PyTorch's conv_transpose2d, a NumPy scatter loop, errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

# (nIn, nOut, kW, kH, dW, dH, padW, padH, adjW, adjH), input (B, C, H, W)
CASES = [
    ((2, 3, 3, 3), (2, 2, 3, 3)),                        # stride 1, nIn < nOut
    ((3, 2, 3, 2, 2, 2, 1, 0, 1, 0), (2, 3, 3, 2)),      # stride 2, padding, adj, kW != kH
    ((2, 2, 2, 3, 3, 1, 0, 1), (1, 2, 2, 3)),            # stride 3 x 1
]


def reference(x, w, b, dW, dH, padW, padH, adjW, adjH):
    """Each input pixel adds W[c] x[b, c, p, q] to the kernel-sized patch at (p dH - padH, q dW - padW)."""
    B, C, H, W = x.shape
    _, O, kH, kW = w.shape
    oH, oW = (H - 1) * dH - 2 * padH + kH + adjH, (W - 1) * dW - 2 * padW + kW + adjW
    full = numpy.zeros((B, O, oH + 2 * padH + kH, oW + 2 * padW + kW))
    for p in range(H):
        for q in range(W):
            full[:, :, p * dH:p * dH + kH, q * dW:q * dW + kW] += numpy.einsum("bc,coij->boij", x[:, :, p, q], w)
    return full[:, :, padH:padH + oH, padW:padW + oW] + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("args,shape", CASES)
def test_jacobian_batched_and_unbatched(xp, rng, args, shape):
    m = on(xp, nn.SpatialFullConvolution(*args))
    assert_jacobian(m, rand(xp, rng, *shape))
    assert_jacobian(m, rand(xp, rng, *shape[1:]))
    assert_jacobian(m.noBias(), rand(xp, rng, *shape))


@pytest.mark.parametrize("args,shape", CASES)
def test_forward_matches_scatter_loop_and_torch(xp, rng, args, shape):
    m = on(xp, nn.SpatialFullConvolution(*args))
    x = rand(xp, rng, *shape)
    y = host(m.forward(x))
    ref = reference(host(x), host(m.weight), host(m.bias), m.dW, m.dH, m.padW, m.padH, m.adjW, m.adjH)
    numpy.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-13)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(host(x), requires_grad=True)
    tw, tb = (torch.tensor(host(a), requires_grad=True) for a in (m.weight, m.bias))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride=(m.dH, m.dW), padding=(m.padH, m.padW),
                                              output_padding=(m.adjH, m.adjW))
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    m.zeroGradParameters()
    numpy.testing.assert_allclose(host(m.backward(x, xp.asarray(gy))), tx.grad.numpy(), rtol=1e-11, atol=1e-13)
    numpy.testing.assert_allclose(host(m.gradWeight), tw.grad.numpy(), rtol=1e-11, atol=1e-13)
    numpy.testing.assert_allclose(host(m.gradBias), tb.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_float32_init_and_repr():
    m = nn.SpatialFullConvolution(4, 2, 3, 3, 2, 2, 1, 1, 1, 1)
    assert m.weight.shape == (4, 2, 3, 3) and m.weight.dtype == numpy.float32
    assert abs(m.weight).max() <= 1 / 6 and abs(m.bias).max() <= 1 / 6
    y = m.forward(numpy.ones((1, 4, 5, 5), numpy.float32))
    assert y.shape == (1, 2, 10, 10) and y.dtype == numpy.float32
    assert repr(m) == "nn.SpatialFullConvolution(4 -> 2, 3x3, 2,2, 1,1, 1,1)"


def test_bad_inputs():
    with pytest.raises(ValueError, match="nn.SpatialFullConvolution: adjW and adjH must be smaller than dW and dH"):
        nn.SpatialFullConvolution(1, 1, 3, 3, 2, 2, 0, 0, 2, 0)
    m = nn.SpatialFullConvolution(2, 1, 3, 3, 1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"nn.SpatialFullConvolution: the input's channel count C \(axis 0\) must be 2, got 3"):
        m.forward(numpy.zeros((3, 4, 4), numpy.float32))
    with pytest.raises(ValueError, match=r"input image 1x1 gives an empty -1x-1 output"):
        m.forward(numpy.zeros((2, 1, 1), numpy.float32))
    with pytest.raises(ValueError, match=r"input must be \(C, H, W\) or \(B, C, H, W\)"):
        m.forward(numpy.zeros((2, 4), numpy.float32))
    x = numpy.zeros((2, 4, 4), numpy.float32)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(1, 2, 2\), got shape \(1, 4, 4\)"):
        m.backward(x, numpy.zeros((1, 4, 4), numpy.float32))
    assert m.forward(numpy.zeros((0, 2, 4, 4), numpy.float32)).shape == (0, 1, 2, 2)  # empty batch


def test_table_form_takes_adj_from_the_target(xp, rng):
    m = on(xp, nn.SpatialFullConvolution(2, 3, 3, 3, 2, 2, 1, 1))
    x = rand(xp, rng, 2, 2, 3, 4)
    for tH, tW in [(5, 7), (6, 8), (5, 8)]:
        target = xp.zeros((2, 1, tH, tW))
        y = m.forward([x, target])
        assert y.shape == (2, 3, tH, tW)
        fixed = on(xp, nn.SpatialFullConvolution(2, 3, 3, 3, 2, 2, 1, 1, tW - 7, tH - 5))
        fixed.weight[...] = m.weight
        fixed.bias[...] = m.bias
        numpy.testing.assert_allclose(host(y), host(fixed.forward(x)), rtol=1e-14)
        g = m.backward([x, target], xp.ones_like(y))
        assert len(g) == 2 and not host(g[1]).any()
        numpy.testing.assert_allclose(host(g[0]), host(fixed.backward(x, xp.ones_like(y))), rtol=1e-14)
    with pytest.raises(ValueError, match="nn.SpatialFullConvolution: no adj reaches the target's 9x7 from a 3x4 input"):
        m.forward([x, xp.zeros((1, 9, 7))])
    with pytest.raises(ValueError, match="nn.SpatialFullConvolution: input must be a list of 2 arrays, got 3"):
        m.forward([x, x, x])
