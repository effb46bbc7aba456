"""Reshape, View and Transpose: Torch's shape rules, gradients and errors."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Reshape(6), (2, 3)),
    (lambda: nn.Reshape(3, 2), (4, 6)),
    (lambda: nn.View(-1, 2), (3, 2, 2)),
    (lambda: nn.View(6).setNumInputDims(2), (2, 3, 2)),
    (lambda: nn.Transpose((0, 1), (1, 2)), (2, 3, 4)),
    (lambda: nn.Transpose((0, 2)).setNumInputDims(3), (2, 2, 3, 1)),
])
def test_jacobian(xp, rng, make, shape):
    m = on(xp, make())
    assert_jacobian(m, rand(xp, rng, *shape))


@pytest.mark.parametrize("args,kw,shape,out", [
    ((6,), {}, (2, 3), (6,)),                   # exactly prod(size) elements: no batch
    ((6,), {}, (4, 2, 3), (4, 6)),              # more elements: the first axis is a batch
    ((2, 3), {}, (1, 6), (1, 2, 3)),            # first axis 1: Torch keeps a batch of one
    ((2, 3), {"batchMode": False}, (1, 6), (2, 3)),
    ((3,), {"batchMode": True}, (3, 3), (3, 3)),  # 9 elements but batchMode: a batch of 3
    ((4,), {"batchMode": True}, (2, 2, 2), (2, 4)),
])
def test_reshape_batch_rules(xp, rng, args, kw, shape, out):
    m = nn.Reshape(*args, **kw)
    x = rand(xp, rng, *shape)
    y = m.forward(x)
    assert y.shape == out
    numpy.testing.assert_array_equal(host(y).ravel(), host(x).ravel())
    gy = rand(xp, rng, *out)
    gx = m.backward(x, gy)
    assert gx.shape == shape
    numpy.testing.assert_array_equal(host(gx).ravel(), host(gy).ravel())


@pytest.mark.parametrize("args,dims,shape,out", [
    ((-1,), None, (2, 3, 4), (24,)),             # -1: the whole input, no batch
    ((4,), None, (3, 4), (3, 4)),                # 3 * prod(size) elements: a batch of 3
    ((12,), None, (3, 4), (12,)),
    ((3, -1), None, (2, 6), (3, 4)),
    ((-1,), 3, (5, 2, 3, 4), (5, 24)),           # setNumInputDims: leading axes are the batch
    ((-1,), 3, (2, 3, 4), (24,)),                # no leading axis: no batch
    ((4, 6), 3, (2, 2, 3, 4, 2), (4, 4, 6)),     # two leading axes flattened into one batch
])
def test_view_batch_rules(xp, rng, args, dims, shape, out):
    m = nn.View(*args)
    if dims is not None:
        m.setNumInputDims(dims)
    x = rand(xp, rng, *shape)
    y = m.forward(x)
    assert y.shape == out
    numpy.testing.assert_array_equal(host(y).ravel(), host(x).ravel())
    assert m.backward(x, rand(xp, rng, *out)).shape == shape


def test_transpose_matches_numpy_swaps_and_is_contiguous(xp, rng):
    m = nn.Transpose((0, 1), (1, 2))
    x = rand(xp, rng, 2, 3, 4)
    y = m.forward(x)
    ref = host(x).swapaxes(0, 1).swapaxes(1, 2)
    assert y.shape == (3, 4, 2) and y.flags.c_contiguous
    numpy.testing.assert_array_equal(host(y), ref)
    gy = rand(xp, rng, 3, 4, 2)
    gx = m.backward(x, gy)
    numpy.testing.assert_array_equal(host(gx), host(gy).swapaxes(1, 2).swapaxes(0, 1))
    x[0, 0, 0] = 42  # the output is a copy, not a view of the input
    assert host(y)[0, 0, 0] != 42


def test_transpose_num_input_dims_skips_the_batch(xp, rng):
    m = nn.Transpose((0, 1)).setNumInputDims(2)
    assert m.forward(rand(xp, rng, 5, 2, 3)).shape == (5, 3, 2)
    assert m.forward(rand(xp, rng, 2, 3)).shape == (3, 2)


def test_repr():
    assert repr(nn.Reshape(2, 3)) == "nn.Reshape(2x3)"
    assert repr(nn.View(-1, 4)) == "nn.View(-1, 4)"
    assert repr(nn.Transpose((0, 1), (2, 3))) == "nn.Transpose(0,1, 2,3)"


def test_element_count_mismatch_is_an_error():
    x = numpy.zeros((2, 5))
    with pytest.raises(ValueError, match=r"nn.Reshape: input of shape \(2, 5\) \(10 elements\) cannot be "
                                         r"viewed as \('B', 3\)"):
        nn.Reshape(3).forward(x)
    with pytest.raises(ValueError, match=r"cannot be viewed as \(4,\)"):
        nn.Reshape(4, batchMode=False).forward(x)
    with pytest.raises(ValueError, match=r"nn.View: input of shape \(2, 5\) \(10 elements\) cannot be viewed as \(3, -1\)"):
        nn.View(3, -1).forward(x)
    with pytest.raises(ValueError, match="nn.View: input of shape"):
        nn.View(4).setNumInputDims(1).forward(x)


def test_bad_sizes_are_errors():
    with pytest.raises(ValueError, match=r"nn.View: sizes must be >= 1 \(one of them may be -1\), got \(-1, -1\)"):
        nn.View(-1, -1)
    with pytest.raises(ValueError, match=r"nn.Reshape: sizes must be >= 1, got \(-1, 2\)"):
        nn.Reshape(-1, 2)
    with pytest.raises(TypeError, match="nn.Reshape: each size must be an integer, got 2.5"):
        nn.Reshape(2.5)
    with pytest.raises(TypeError, match="nn.Transpose: each argument must be a pair of axes, got 1"):
        nn.Transpose(1, 2)


def test_transpose_errors():
    m = nn.Transpose((0, 3))
    with pytest.raises(ValueError, match=r"nn.Transpose: swaps \[\(0, 3\)\] need an input of at least 4 axes, "
                                         r"got shape \(2, 3\)"):
        m.forward(numpy.zeros((2, 3)))
    m = nn.Transpose((0, 1))
    x = numpy.zeros((2, 3))
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(3, 2\), got shape \(2, 3\)"):
        m.backward(x, x)


def test_wrong_grad_output_shape_is_an_error():
    m, x = nn.View(-1), numpy.zeros((2, 3))
    m.forward(x)
    with pytest.raises(ValueError, match=r"nn.View: gradOutput must be of shape \(6,\), got shape \(2, 3\)"):
        m.backward(x, x)
