"""nnlite.blas_kernels: OpenBLAS's Haswell kernels on an AMD Zen 4, chosen only where
nothing else chose and NumPy is not loaded yet."""
import subprocess
import sys

import pytest

from nnlite import blas_kernels

ZEN4 = "AuthenticAMD", "25", "fpu avx2 avx512f avx512_bf16"


def cpuinfo(tmp_path, vendor, family, flags):
    """A /proc/cpuinfo with two processors (only the first is read)."""
    block = f"processor\t: {{}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: 17\nflags\t\t: {flags}\n"
    path = tmp_path / "cpuinfo"
    path.write_text(block.format(0) + "\n" + block.format(1))
    return str(path)


@pytest.mark.parametrize("vendor,family,flags,zen4", [
    (*ZEN4, True),
    ("AuthenticAMD", "25", "fpu avx2", False),               # Zen 3: no AVX-512
    ("AuthenticAMD", "26", "fpu avx2 avx512f", False),       # Zen 5: full-width AVX-512
    ("GenuineIntel", "6", "fpu avx2 avx512f amx_tile", False),
])
def test_only_a_zen4_gets_the_haswell_kernels(tmp_path, vendor, family, flags, zen4):
    path = cpuinfo(tmp_path, vendor, family, flags)
    assert blas_kernels.is_zen4(path) is zen4
    env = {}
    assert blas_kernels.choose(env, path, numpy_loaded=False) == ("Haswell" if zen4 else None)
    assert env == ({"OPENBLAS_CORETYPE": "Haswell"} if zen4 else {})


def test_a_choice_already_made_or_too_late_is_left_alone(tmp_path):
    path = cpuinfo(tmp_path, *ZEN4)
    env = {"OPENBLAS_CORETYPE": "SkylakeX"}  # the user's or the machine's
    assert blas_kernels.choose(env, path, numpy_loaded=False) is None
    assert env == {"OPENBLAS_CORETYPE": "SkylakeX"}
    env = {}
    assert blas_kernels.choose(env, path, numpy_loaded=True) is None and env == {}
    assert blas_kernels.is_zen4(str(tmp_path / "missing")) is False
    assert blas_kernels.choose({}, str(tmp_path / "missing"), numpy_loaded=False) is None


def test_importing_nnlite_first_acts_before_numpy_loads():
    """In a fresh process: nnlite's choice is in the environment NumPy's OpenBLAS read, or
    nothing changed (not a Zen 4 here, or the machine pins its own kernels)."""
    code = ("import os, sys; assert 'numpy' not in sys.modules; import nnlite; "
            "print(nnlite.BLAS_KERNELS, os.environ.get('OPENBLAS_CORETYPE'))")
    chosen, env = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()
    assert chosen in ("None", "Haswell")
    if chosen == "Haswell":
        assert env == "Haswell" and blas_kernels.is_zen4()
