"""An explicit, user-owned cache of eigendecompositions keyed by kernel content."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np


class FactorizationCache:
    """An explicit, user-owned store of eigendecompositions, keyed by the train kernel's bytes.

    Pass one instance as ``cache=`` to several estimators (for example to the estimator inside
    a ``GridSearchCV`` over ``t``, ``alpha`` or ``learning_rate``): fits whose train kernel
    (after sample weights) is bitwise identical then share one eigendecomposition. The key is a
    hash of the kernel *values*, never of the kernel's parameters or code, so a cached entry can
    never stand for a different kernel, and a hit returns exactly what a miss would compute.
    ``clone`` and ``copy.deepcopy`` keep the same instance (so grid searches share it); pickling
    gives an empty cache with the same bound.

    Parameters
    ----------
    max_bytes : int, default=512 MiB
        Bound on the stored arrays; least recently used entries are dropped first.
    """

    def __init__(self, max_bytes=512 * 2**20):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) \
                or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self._data = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (FactorizationCache, (self.max_bytes,))

    def __repr__(self):
        return f"FactorizationCache(max_bytes={self.max_bytes})"

    @staticmethod
    def key(A, tag=""):
        """Content hash of a matrix (its shape, dtype and bytes) and a tag."""
        A = np.ascontiguousarray(A)
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{tag}|{A.shape}|{A.dtype.str}".encode())
        h.update(memoryview(A).cast("B"))
        return h.hexdigest()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        size = sum(a.nbytes for a in value)
        if size > self.max_bytes:
            return
        for a in value:
            a.flags.writeable = False
        with self._lock:
            if key in self._data:
                self._bytes -= sum(a.nbytes for a in self._data.pop(key))
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._data.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old)

    def clear(self):
        """Drop every entry."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
