"""Shared fixtures: every test that takes ``xp`` runs once on NumPy and once on CuPy.

The CuPy run is skipped cleanly when CuPy or a CUDA device is missing.
"""
import numpy
import pytest

import nnlite
from nnlite import backend

_BACKENDS = ["numpy", "cupy"]


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
