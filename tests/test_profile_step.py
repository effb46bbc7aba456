"""``benchmarks/profile_step.py --convolutions`` names every convolution call of a module,
with the path ``conv_ops`` takes, and puts the functions back afterwards."""
import numpy

import nnlite as nn
from benchmarks.profile_step import time_convolutions
from nnlite import conv, conv_ops


def test_each_convolution_call_is_named_with_its_path_and_undo_restores(rng):
    originals = conv.conv2d, conv.conv2d_backward, conv_ops.conv2d_backward
    m = nn.SpatialConvolution(3, 4, 3, 3, 1, 1, 1, 1)
    x = rng.random((2, 3, 8, 8)).astype(numpy.float32)
    totals, undo = time_convolutions()
    try:
        y = m.forward(x)
        m.backward(x, y)
        m.updateGradInput(x, y)  # dL/dx alone: a call of its own
    finally:
        undo()
    assert (conv.conv2d, conv.conv2d_backward, conv_ops.conv2d_backward) == originals
    geometry = (3, 8, 8, 4, 3, 3, 1, 1, 1, 1)
    forward = ("forward", 2, 3, 4, 3, 8, conv_ops.forward_path(*geometry, frames=2))
    assert totals[forward][0] == 1
    # backward() is one call for both gradients; updateGradInput asks dL/dx alone
    for what, need_input, need_weight in (("backward dL/dx+dL/dW", True, True), ("backward dL/dx", True, False)):
        path = conv_ops.backward_path(*geometry, need_input, need_weight, frames=2)
        assert totals[(what, 2, 3, 4, 3, 8, path)][0] == 1
    assert len(totals) == 3
    assert all(seconds > 0 for _, seconds in totals.values())
