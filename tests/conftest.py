"""Shared fixtures: every test that takes ``xp`` runs once on NumPy and once on CuPy.

The CuPy run is skipped cleanly when CuPy or a CUDA device is missing.
"""
import numpy
import pytest
from threadpoolctl import threadpool_limits

import nnlite
from nnlite import backend

_BACKENDS = ["numpy", "cupy"]

# The tests multiply tiny matrices: BLAS threads only add start-up cost there, and with
# a busy second core they made the suite several times slower.
threadpool_limits(1)


@pytest.fixture(params=_BACKENDS)
def xp(request):
    if request.param == "cupy":
        if not backend.gpu_available():
            pytest.skip("CuPy or a CUDA device is missing")
        return backend.cupy
    return numpy


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed():
    nnlite.manualSeed(0)
