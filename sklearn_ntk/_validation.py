"""Input validation shared by kernels and estimators (validation happens at the boundary only)."""

from __future__ import annotations

import os

import numpy as np
from sklearn.utils import check_array


def check_kernel_input(X, name="X"):
    """Validate a kernel argument: a finite, real, dense, non-empty 2-D array -> float64 C array.

    The caller's array is never modified: a converted copy is returned whenever conversion is
    needed, and the kernel never writes into its inputs.
    """
    if X is None:
        raise TypeError(f"{name} must be an array-like of shape (n_samples, n_features), got None")
    if hasattr(X, "dtype") and np.issubdtype(np.asarray(X).dtype, np.complexfloating):
        raise ValueError(f"{name} is complex; the NTK is defined for real inputs only")
    try:
        arr = check_array(
            X,
            accept_sparse=False,
            dtype=np.float64,
            order="C",
            ensure_2d=True,
            allow_nd=False,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            input_name=name,
        )
    except TypeError as exc:  # sparse input
        raise TypeError(f"{name}: {exc}") from None
    except ValueError as exc:
        msg = str(exc)
        if "could not convert" in msg or "dtype" in msg and "object" in msg:
            raise TypeError(f"{name} must contain numbers; {msg}") from None
        raise ValueError(f"{name}: {msg}") from None
    return arr


def available_memory_bytes():
    """Best estimate of the memory that can still be allocated (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(n_bytes, what):
    """Raise ``MemoryError`` naming the size if ``n_bytes`` cannot be allocated."""
    avail = available_memory_bytes()
    if avail is not None and n_bytes > avail:
        raise MemoryError(
            f"{what} needs {n_bytes / 2**30:.2f} GiB but only {avail / 2**30:.2f} GiB is available; "
            "evaluate the kernel on smaller blocks of rows."
        )
