"""How NumPy's BLAS uses the cores, for the processes digitnet starts (training and serving).

Training: give the second core back between GEMMs. OpenBLAS's idle threads busy-wait after each call
(for 2^28 cycles by default), holding the core that ``digitnet.nn.parallel`` wants for the
element-wise passes between GEMMs. A short wait (``OPENBLAS_THREAD_TIMEOUT=4``) makes them
sleep at once; the next GEMM wakes them in microseconds. Measured on the Keras example CNN:
a training step 15-25 % faster.

OpenBLAS reads the setting when NumPy loads it, so it must come before ``import numpy``; and it
is a process-wide setting, so only the applications call it (the ``digitnet`` command, the
benchmarks), never the library on import. From a script of your own, set the variable in the
environment before starting Python.
"""

from __future__ import annotations

import os
import sys

VARIABLE, SHORT_WAIT = "OPENBLAS_THREAD_TIMEOUT", "4"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def short_blas_spin() -> bool:
    """Ask OpenBLAS for a short spin unless the environment already says something; True if
    it can still take effect (NumPy not loaded yet)."""
    os.environ.setdefault(VARIABLE, SHORT_WAIT)
    return "numpy" not in sys.modules


def single_blas_thread() -> bool:
    """One BLAS thread (unless the environment says otherwise): for a server, whose GEMMs are
    one image's, too small to share out (measured: a CNN request's network part 1 ms faster),
    and whose other cores serve other requests. True if it can still take effect."""
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    return "numpy" not in sys.modules


def available_cores(at_most: int) -> int:
    """The cores this process may run on (its CPU affinity where the system tells it), at
    least 1 and at most ``at_most``. Safe before NumPy loads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, at_most))
