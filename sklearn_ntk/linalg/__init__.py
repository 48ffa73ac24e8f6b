"""Linear algebra behind the dynamics: kernel operators and small solvers.

* :mod:`~sklearn_ntk.linalg.operators` -- dense, packed-triangle, blocked-on-the-fly and scaled
  symmetric operators;
* :mod:`~sklearn_ntk.linalg.filters` -- the spectral filters of kernel gradient descent;
* :mod:`~sklearn_ntk.linalg.dense` -- eigendecomposition and Cholesky factorisation;
* :mod:`~sklearn_ntk.linalg.lanczos` -- matrix functions times vectors for many times;
* :mod:`~sklearn_ntk.linalg.cg` -- conjugate gradients;
* :mod:`~sklearn_ntk.linalg.nystrom` -- the streaming Nyström reductions.
"""
