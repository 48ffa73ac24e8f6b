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


def all_finite(a, block_bytes=1 << 22):
    """Whether every entry of ``a`` is finite, without a boolean array the size of ``a``.

    A finite sum proves it at once; otherwise (a non-finite entry, or finite entries whose sum
    overflows) the leading axis is checked in blocks of about ``block_bytes``.
    """
    a = np.asarray(a)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    if a.ndim == 0:
        return False
    step = max(1, block_bytes // max(1, a[:1].nbytes))
    return all(np.isfinite(a[i:i + step]).all() for i in range(0, a.shape[0], step))


# --- the memory guard -----------------------------------------------------------------------
# Paths are module attributes so that tests can point them at fake files.
_MEMINFO = "/proc/meminfo"
_SELF_STATUS = "/proc/self/status"
_SELF_CGROUP = "/proc/self/cgroup"
_SELF_MOUNTINFO = "/proc/self/mountinfo"
_DEFAULT_CGROUP_MOUNTS = ((2, "/sys/fs/cgroup", "/"), (1, "/sys/fs/cgroup/memory", "/"))
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number close to 2**63


def _read_text(path):
    try:
        with open(path, "rb", buffering=0) as fh:  # unbuffered binary: the cheapest read
            return fh.read().decode("ascii", "replace")
    except OSError:
        return None


def _read_bytes_value(path):
    """Integer content of a cgroup file; None if absent, unreadable or unlimited ("max")."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        value = int(text.split()[0])
    except (ValueError, IndexError):
        return None  # "max" (cgroup v2 for no limit) or garbage
    return value if 0 <= value < _UNLIMITED else None


def _field(text, key, unit=1):
    """Value of the line ``key<sep> number ...`` in ``text`` (times ``unit``), or None."""
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[0] == key:
            try:
                return int(parts[1]) * unit
            except ValueError:
                return None
    return None


def _meminfo_available():
    """``MemAvailable`` of ``/proc/meminfo`` (Linux), else the free physical pages, else None."""
    value = _field(_read_text(_MEMINFO), "MemAvailable", 1024)
    if value is not None:
        return value
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_mounts():
    """``(version, mount point, mounted cgroup root)`` of the memory cgroup hierarchies."""
    text = _read_text(_SELF_MOUNTINFO)
    if text is None:
        return list(_DEFAULT_CGROUP_MOUNTS)
    mounts = []
    for line in text.splitlines():
        if " - cgroup" not in line:  # cheap filter: most mounts are not cgroups
            continue
        pre, sep, post = line.partition(" - ")
        pre, post = pre.split(), post.split()
        if not sep or len(pre) < 5 or len(post) < 3:
            continue
        if post[0] == "cgroup2":
            mounts.append((2, pre[4], pre[3]))
        elif post[0] == "cgroup" and "memory" in post[2].split(","):
            mounts.append((1, pre[4], pre[3]))
    return mounts


_LAYOUT = {}  # (cgroup file, mountinfo file) -> directories: where to look, never a limit


def _cgroup_dirs():
    """Memory-cgroup directories of this process with their version, innermost first.

    Every ancestor is included: a limit set on any enclosing cgroup applies as well.  Where
    they are (the mount table and this process's cgroup) is found once per process, since
    reading ``/proc/self/mountinfo`` costs more than a small kernel; the limits and the usage
    in them are read afresh on every check.
    """
    key = (_SELF_CGROUP, _SELF_MOUNTINFO)
    if key not in _LAYOUT:
        _LAYOUT[key] = _find_cgroup_dirs()
    return _LAYOUT[key]


def _find_cgroup_dirs():
    text = _read_text(_SELF_CGROUP)
    if text is None:
        return []
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths[2] = parts[2]
        elif "memory" in parts[1].split(","):
            paths[1] = parts[2]
    dirs = []
    for version, mount, root in _cgroup_mounts():
        if version not in paths:
            continue
        rel = paths[version]
        if root != "/" and (rel == root or rel.startswith(root.rstrip("/") + "/")):
            rel = rel[len(root.rstrip("/")):]
        d = os.path.join(mount, rel.lstrip("/")) if rel.strip("/") else mount
        if not os.path.isdir(d):  # path of another namespace: the mount's own limits apply
            d = mount
        mount = os.path.normpath(mount)
        d = os.path.normpath(d)
        while True:
            dirs.append((version, d))
            if d == mount or len(d) <= len(mount):
                break
            d = os.path.dirname(d)
    return dirs


def _cgroup_available():
    """Tightest ``limit - working set`` over this process's memory cgroups, or None.

    The working set is the usage minus the inactive file cache (which the kernel reclaims
    before it kills), as container runtimes count it.
    """
    names = {
        2: ("memory.max", "memory.current", "inactive_file"),
        1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
    }
    best = None
    for version, d in _cgroup_dirs():
        limit_file, usage_file, inactive_key = names[version]
        limit = _read_bytes_value(os.path.join(d, limit_file))
        if limit is None:
            continue
        usage = _read_bytes_value(os.path.join(d, usage_file)) or 0
        inactive = _field(_read_text(os.path.join(d, "memory.stat")), inactive_key) or 0
        avail = max(limit - max(usage - inactive, 0), 0)
        best = avail if best is None else min(best, avail)
    return best


def _address_space_available():
    """``RLIMIT_AS`` minus the current address space (``VmSize``), or None without a limit."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        infinity = resource.RLIM_INFINITY
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == infinity or soft < 0:
        return None
    used = _field(_read_text(_SELF_STATUS), "VmSize", 1024) or 0
    return max(soft - used, 0)


def memory_limits():
    """Memory still available under each limit that applies to this process, in bytes.

    Returns
    -------
    limits : dict
        ``{"MemAvailable": ..., "cgroup limit": ..., "RLIMIT_AS": ...}``; a value is None where
        that limit does not apply or cannot be read.
    """
    return {
        "MemAvailable": _meminfo_available(),
        "cgroup limit": _cgroup_available(),
        "RLIMIT_AS": _address_space_available(),
    }


def available_memory_bytes():
    """Best estimate of the memory that can still be allocated, in bytes (None if unknown).

    The tightest of ``MemAvailable`` (Linux), the memory cgroup (container) limit minus the
    cgroup's working set (v1 and v2, every enclosing cgroup), and ``RLIMIT_AS`` minus the
    current address space.
    """
    known = [v for v in memory_limits().values() if v is not None]
    return min(known) if known else None


def _gib(n_bytes):
    gib = n_bytes / 2**30
    if gib >= 0.01:
        return f"{gib:.2f} GiB"
    return f"{gib:.3g} GiB ({int(n_bytes):,} bytes)"


_DEFAULT_HINT = "evaluate the kernel on smaller blocks of rows."


def check_memory(n_bytes, what, *, available=None, hint=None):
    """Raise ``MemoryError`` stating both sizes if ``n_bytes`` cannot be allocated.

    Parameters
    ----------
    n_bytes : int
        Everything the operation needs at its peak (outputs and temporaries), in bytes.
    what : str
        The operation, as the message names it (e.g. ``"NTKKernel on 10 x 10 inputs"``).
    available : int, default=None
        Bytes available on the target device; None reads the host's limits
        (:func:`available_memory_bytes`).
    hint : str, default=None
        What the user can do instead; None suggests evaluating on smaller blocks of rows.
    """
    avail = available_memory_bytes() if available is None else available
    if avail is None or n_bytes <= avail:
        return
    detail = ""
    if available is None:
        limits = [f"{k} {_gib(v)}" for k, v in memory_limits().items() if v is not None]
        detail = f" ({'; '.join(limits)})" if limits else ""
    raise MemoryError(
        f"{what} needs {_gib(n_bytes)} but only {_gib(avail)} is available{detail}; "
        f"{_DEFAULT_HINT if hint is None else hint}"
    )
