"""The GPU step's budget, counted on the strict CuPy stand-in (tests/strict_cupy.py):
one training step of each Table 1 model at batch 16 x 10 frames of 64x64 makes at
most one device-to-host sync, creates no float64 array, copies nothing from the
host, and AE-ConvLSTM-flow launches at most 1,000 kernels besides its GEMMs.

Also: the two ways ``conv_ops`` sums over kernel offsets (Python loops, NumPy's
choice; one indexed kernel, the device's) give the same numbers on both backends.
"""
import numpy
import pytest

import nnlite as nn
from nnlite import conv_ops
from tests.test_conv import GEOMETRIES
from tests.helpers import assert_jacobian, host, on, rand


@pytest.mark.parametrize("g", GEOMETRIES)
def test_offset_loops_and_indexed_kernels_agree(xp, rng, g, monkeypatch):
    m = on(xp, nn.SpatialConvolution(*g["args"]))
    x = rand(xp, rng, *g["shape"])
    results = {}
    for loops in (True, False):
        monkeypatch.setattr(conv_ops, "OFFSET_LOOPS", loops)
        m.zeroGradParameters()
        y = m.forward(x)
        gy = xp.asarray(numpy.random.default_rng(5).uniform(-1, 1, y.shape))
        results[loops] = [host(a) for a in (y, m.backward(x, gy), m.gradWeight, m.gradBias)]
        if not loops:
            assert_jacobian(m, x)
    for a, b in zip(results[True], results[False]):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_each_backend_gets_its_own_way(xp):
    assert conv_ops.offset_loops(xp) is (xp is numpy)
