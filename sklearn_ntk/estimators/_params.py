"""The parameter documentation shared by the three estimators."""

PARAMS_DOC = r"""
    kernel : sklearn.gaussian_process.kernels.Kernel or "precomputed", default=None
        The neural tangent kernel :math:`\Theta`. ``None`` means ``NTKKernel()`` (the default
        fully-connected ReLU network). Any scikit-learn kernel is accepted: the dynamics are then
        those of kernel gradient descent with that kernel. Grid search reaches its parameters as
        ``kernel__<name>`` (e.g. ``kernel__depth``). ``"precomputed"``: ``X`` is a kernel
        matrix you computed -- the symmetric ``(n_train, n_train)`` train kernel at ``fit``,
        the ``(n_test, n_train)`` kernel between test and *all* training rows at prediction
        (the estimator is then pairwise: ``GridSearchCV`` and ``cross_val_predict`` slice rows
        and columns, as for ``SVC(kernel="precomputed")``). The matrix is the kernel that
        drives the dynamics, so means (``predict``, ``decision_function``, ``staged_*``) are
        available; covariances (``return_std``, ``return_cov``, ``sample_y``,
        ``predict_proba``) also need the NNGP kernel and the test diagonal and are refused,
        and ``n_components`` needs a kernel object. ``X_fit_`` then holds the indices of the
        training rows used (those with positive weight).
    t : float, default=np.inf
        Training time in steps, ``>= 0`` (``np.inf``: trained to convergence).
    learning_rate : float, default=1.0
        Learning rate :math:`\eta > 0`; only the product :math:`\eta t` matters for
        ``dynamics="flow"``.
    alpha : float, default=0.0
        Absolute diagonal term :math:`\alpha \ge 0` added to the (weighted) train kernel (a
        ridge; it also makes ``t=inf`` well posed with duplicate training rows).
    dynamics : {"flow", "gd"}, default="flow"
        Continuous gradient flow, or the exact solution of discrete full-batch gradient descent
        (which a real network with a finite learning rate follows; a warning names the largest
        stable learning rate when it diverges).
    solver : {"auto", "eigh", "lanczos"}, default="auto"
        Exact path (``n_components=None``) only. ``"eigh"``: one eigendecomposition (finite
        ``t``) or Cholesky factorisation (``t=inf``) of the train kernel. ``"lanczos"``:
        matrix-free -- a Lanczos evaluation of the spectral filter (one Krylov basis for every
        ``t``, about 1e-9 relative accuracy) and conjugate gradients at ``t=inf``, on the dense
        kernel or, when that does not fit in memory, on one packed symmetric triangle, or, when
        neither fits, on kernel rows evaluated block by block at every iteration (slow: a
        ``PerformanceWarning`` says so).
        ``"auto"``: ``"eigh"`` up to 20,000 samples when it fits in memory, else ``"lanczos"``;
        a ``MemoryError`` says how much is needed when nothing fits.
    n_components : int, default=None
        ``None``: the exact kernel. An integer ``m``: the exact dynamics of the rank-``m``
        Nyström approximation :math:`K(X, C)\,K(C, C)^{+}K(C, X)` with ``m`` centres ``C``
        drawn uniformly from the training rows, fitted in :math:`O(n m^2 + m^3)` time and
        :math:`O(m^2 + \text{batch\_size}\cdot m)` memory by streaming over row blocks.
        ``n_components >= n_samples`` uses every row and reproduces the exact estimator.
    random_state : int, RandomState instance or None, default=None
        Draw of the Nyström centres.
    batch_size : int, default=None
        Rows per block when streaming (Nyström fit, predictions); ``None`` picks blocks of
        about 32 MiB. Does not change the results beyond round-off.
    cache : FactorizationCache, default=None
        An explicit :class:`sklearn_ntk.dynamics.FactorizationCache` shared between fits (for
        example inside ``GridSearchCV`` over ``t``, ``alpha`` or ``learning_rate``): fits whose
        train kernel is bitwise identical reuse one eigendecomposition. Keyed by the kernel's
        values, so it cannot go stale; results are identical with and without it.
    progress : bool or "auto", default="auto"
        Show a progress bar (tqdm) while streaming over row blocks; ``"auto"``: only when
        standard error is a terminal.
"""
