"""Which of OpenBLAS's kernel sets NumPy's matrix products run, chosen before NumPy loads it.

OpenBLAS, as NumPy ships it, carries kernels for several processor generations and picks
one set when it is loaded, from the processor's features; ``OPENBLAS_CORETYPE`` overrides
that pick, and only before the library is loaded. On an AMD Zen 4 (family 25 with
AVX-512) it picks its AVX-512 set, ``SkylakeX``, although Zen 4 runs 512-bit instructions
as two 256-bit halves, and its AVX2 set, ``Haswell``, is faster there. One thread, float32
(``benchmarks/RESULTS.md``, tenth round):

=====================================  ========  =======
product (M x K) x (K x N), GFLOP/s      SkylakeX  Haswell
=====================================  ========  =======
2048 x 2048 x 2048                          103      108
256 x 3136 x 1024 (ConvLSTM hidden)          96      106
64 x 784 x 1024 (AE-Conv 16 -> 64)           83      102
112 x 70 x 4096 (AE-Conv 10 -> 16, rows)     74      101
=====================================  ========  =======

and the ConvLSTM's convolutions take 4-17% less time. On a Zen 5 (family 26, full-width
AVX-512) ``SkylakeX`` is twice as fast as ``Haswell`` (ninth round), and on Intel's
processors it is OpenBLAS's own choice; so only Zen 4 is changed.

``choose()`` runs when ``nnlite`` is imported, first of all its imports. It sets
``OPENBLAS_CORETYPE=Haswell`` in this process's environment (which child processes
inherit) only where all of these hold: the processor is a Zen 4, the variable is not set
already (a user's or a machine's own choice is kept), and NumPy is not loaded yet (after
that the choice could not act). A program that wants it imports ``nnlite`` before NumPy,
as ``train.py`` and the benchmarks do; ``nnlite.BLAS_KERNELS`` says what was chosen.
The kernel sets give the same products up to float32 rounding. Only the standard library
is used here, since NumPy must not be loaded yet.
"""
import os
import sys


def is_zen4(cpuinfo="/proc/cpuinfo"):
    """Whether the first processor listed in ``cpuinfo`` is an AMD Zen 4: vendor
    AuthenticAMD, family 25 (0x19, Zen 3 and Zen 4), with AVX-512 (Zen 3 has none). False
    where the file cannot be read (not Linux)."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():  # the blank line after the first processor
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return False
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


def choose(environ=None, cpuinfo="/proc/cpuinfo", numpy_loaded=None):
    """Set ``OPENBLAS_CORETYPE=Haswell`` in ``environ`` (default ``os.environ``) on a Zen 4
    when it is not set and NumPy is not loaded yet (``numpy_loaded``, default: whether it
    is in ``sys.modules``); returns the kernel set chosen, or None where nothing changed."""
    environ = os.environ if environ is None else environ
    numpy_loaded = "numpy" in sys.modules if numpy_loaded is None else numpy_loaded
    if "OPENBLAS_CORETYPE" in environ or numpy_loaded or not is_zen4(cpuinfo):
        return None
    environ["OPENBLAS_CORETYPE"] = "Haswell"
    return "Haswell"
