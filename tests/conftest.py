"""Shared fixtures: every test that takes ``xp`` runs once on NumPy and once on CuPy.

The CuPy run is skipped cleanly when CuPy or a CUDA device is missing. With
``NNLITE_XP=strict-cupy`` in the environment (or ``pytest --xp strict-cupy``) it runs
on the strict NumPy-backed stand-in ``tests/strict_cupy.py`` instead, which
``nnlite.backend`` then treats as CuPy; scripts the tests start see it through
``NNLITE_CUPY``.
"""
import os

import numpy
import pytest
from threadpoolctl import threadpool_limits

import nnlite
from nnlite import backend

_BACKENDS = ["numpy", "cupy"]
STAND_IN = "strict-cupy"


def pytest_addoption(parser):
    parser.addoption("--xp", choices=["cupy", STAND_IN], default=os.environ.get("NNLITE_XP") or "cupy",
                     help="what plays CuPy in the tests: the real CuPy, or the strict stand-in "
                          "tests/strict_cupy.py (default: $NNLITE_XP, else cupy)")
    parser.addoption("--device-half-only", action="store_true",
                     help="run only the tests that can behave differently on the device (implied "
                          "by --xp strict-cupy)")


def pytest_configure(config):
    if config.getoption("--xp") == STAND_IN:
        from tests import strict_cupy
        os.environ["NNLITE_CUPY"] = "tests.strict_cupy"
        backend.use_cupy(strict_cupy)


def _device_dependent(item):
    """Whether a test can behave differently on the device: it takes the ``xp`` fixture's
    CuPy half, or carries a ``skipif`` (the device tests' ``gpu_available()`` and
    stand-in conditions are such marks)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "xp" in params:
        return params["xp"] == "cupy"
    return any(True for _ in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config, items):
    """CI's second pass (on the stand-in) keeps only the tests that can behave differently
    there: the CuPy halves of the ``xp`` tests and the device tests with a ``skipif``. The
    rest repeat the first pass exactly and are deselected."""
    if config.getoption("--xp") != STAND_IN and not config.getoption("--device-half-only"):
        return
    keep, drop = [], []
    for item in items:
        (keep if _device_dependent(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def on_stand_in():
    """True when the stand-in plays CuPy in this run."""
    return getattr(backend.cupy, "__name__", "") == "tests.strict_cupy"

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
