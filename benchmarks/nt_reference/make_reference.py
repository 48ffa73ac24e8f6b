"""Generate neural-tangents 0.6.5 reference values for the sklearn-ntk test-suite.

This script is NOT part of the package and is never run in CI. It needs a separate
virtual environment with ``neural-tangents==0.6.5`` (``jax``/``jaxlib`` 0.4.30,
``tf2jax`` 0.3.6, CPU only). It writes

* ``tests/data/nt_kernel_reference.npz`` / ``.json`` -- analytic NTK and NNGP of
  ``stax.serial(*[Dense(512, W_std=sw, b_std=sb), phi] * L, Dense(1, W_std=sw, b_std=sb))``;
* ``tests/data/nt_predict_reference.npz`` / ``.json`` -- outputs of
  ``neural_tangents.predict.gradient_descent_mse_ensemble`` (mean and covariance) together
  with the train/test kernels that produced them.

The file formats are described in the ``"format"`` entry of each JSON sidecar.

Runs only in a separate environment with neural-tangents 0.6.5 (it works with jax==0.4.30,
jaxlib==0.4.30, tf2jax==0.3.6; newer jax breaks neural-tangents 0.6.5), e.g. a venv ``ntvenv``::

    ntvenv/bin/python benchmarks/nt_reference/make_reference.py [--out tests/data]
    ntvenv/bin/python benchmarks/nt_reference/make_reference.py --timing
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------
# Activations: project name -> (stax layer factory, parameters recorded in the JSON)
# ---------------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": (lambda: stax.Relu(), {}),
    "leaky_relu": (lambda: stax.LeakyRelu(alpha=0.1), {"negative_slope": 0.1}),
    "ab_relu": (lambda: stax.ABRelu(a=-0.4, b=1.2), {"a": -0.4, "b": 1.2}),
    "abs": (lambda: stax.Abs(), {}),
    "erf": (lambda: stax.Erf(), {}),
    "gelu": (lambda: stax.Gelu(approximate=False), {"approximate": False}),
    "sin": (lambda: stax.Sin(), {}),
    "identity": (lambda: stax.Identity(), {}),
    "sign": (lambda: stax.Sign(), {}),
}


def network(depth, activation, weight_std, bias_std, width=512):
    """Return the stax triple of the fixed MLP architecture of DESIGN.md section 1."""
    factory, _ = ACTIVATIONS[activation]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=weight_std, b_std=bias_std), factory()]
    layers.append(stax.Dense(1, W_std=weight_std, b_std=bias_std))
    return stax.serial(*layers)


def kernel_inputs(d):
    """Inputs X (7, d) and Y (5, d) for the kernel reference.

    Row 0 of X is zero, row 4 duplicates row 1, the row norms span 1e-3 .. 1e3.
    """
    rng = np.random.default_rng(20240601 + d)
    dirs = rng.standard_normal((7, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    norms = np.array([0.0, 1.0, 1e-3, 1e3, 1.0, 0.3, 25.0])
    X = dirs * norms[:, None]
    X[4] = X[1]
    if d == 1:
        # make sure both signs occur (directions in 1-D are only +-1)
        X[:, 0] = np.array([0.0, 1.0, -1e-3, 1e3, 1.0, -0.3, -25.0])
    ydirs = rng.standard_normal((5, d))
    ydirs /= np.linalg.norm(ydirs, axis=1, keepdims=True)
    ynorms = np.array([0.5, 2.0, 1e-2, 1e2, 1.3])
    Y = ydirs * ynorms[:, None]
    if d == 1:
        Y[:, 0] = np.array([0.5, -2.0, 1e-2, -1e2, 1.3])
    # a Y row equal to an X row (cross-kernel "diagonal")
    Y[4] = X[5]
    return X, Y


def kernel_configs():
    """About 44 (activation, depth, weight_std, bias_std, d) configurations."""
    cfgs = []
    for act in ACTIVATIONS:
        cfgs.append((act, 1, 1.7, 0.3, 4))
        cfgs.append((act, 3, 1.0, 0.3, 4))
        cfgs.append((act, 1, 1.0, 0.3, 1))
        cfgs.append((act, 3, 1.7, 0.3, 1))
    for act in ("relu", "erf"):
        cfgs.append((act, 0, 1.7, 0.0, 4))
        cfgs.append((act, 0, 1.0, 0.3, 1))
        cfgs.append((act, 1, 1.7, 0.0, 4))
        cfgs.append((act, 3, 1.0, 0.0, 1))
    return cfgs


# ---------------------------------------------------------------------------------------
# Independent numpy check of the recursion (closed forms) for a few activations
# ---------------------------------------------------------------------------------------
def _np_recursion(X, Y, depth, act, sw, sb):
    d = X.shape[1]
    sxy = sw**2 * (X @ Y.T) / d + sb**2
    sxx = sw**2 * np.sum(X * X, 1) / d + sb**2
    syy = sw**2 * np.sum(Y * Y, 1) / d + sb**2
    theta = sxy.copy()
    for _ in range(depth):
        prod = np.sqrt(np.outer(sxx, syy))
        if act == "relu":
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.where(prod > 0, sxy / np.where(prod > 0, prod, 1), 0.0)
            c = np.clip(c, -1, 1)
            th = np.arccos(c)
            new = prod * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
            dot = (np.pi - th) / (2 * np.pi)
            sxx, syy = sxx / 2, syy / 2
        elif act == "erf":
            a = 1 + 2 * sxx
            b = 1 + 2 * syy
            new = 2 / np.pi * np.arcsin(2 * sxy / np.sqrt(np.outer(a, b)))
            dot = 4 / np.pi / np.sqrt(np.outer(a, b) - 4 * sxy**2)
            sxx = 2 / np.pi * np.arcsin(2 * sxx / a)
            syy = 2 / np.pi * np.arcsin(2 * syy / b)
        elif act == "identity":
            new, dot = sxy, np.ones_like(sxy)
        else:
            raise ValueError(act)
        sxy = sw**2 * new + sb**2
        sxx = sw**2 * sxx + sb**2
        syy = sw**2 * syy + sb**2
        theta = sxy + sw**2 * dot * theta
    return theta, sxy


def _relerr(a, b):
    mask = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[mask] - b[mask]) / (np.abs(b[mask]) + 1e-300 + 1e-12 * np.max(
        np.abs(b[mask])))))


def make_kernel_reference(outdir: Path):
    arrays = {}
    meta = {
        "format": (
            "For config i (key prefix 'c%02d_'): c%02d_ntk_xx, c%02d_nngp_xx (7,7) = k(X,X); "
            "c%02d_ntk_xy, c%02d_nngp_xy (7,5) = k(X,Y), with X = X_d{d}, Y = Y_d{d}. "
            "Values exactly as returned by neural-tangents 0.6.5 (float64); NaN entries, if "
            "any, are kept and counted in nan_count_*."
        ),
        "neural_tangents_version": nt.__version__ if hasattr(nt, "__version__") else "0.6.5",
        "jax_version": jax.__version__,
        "network": "stax.serial(*[Dense(512, W_std=weight_std, b_std=bias_std), phi] * depth, "
        "Dense(1, W_std=weight_std, b_std=bias_std)), NTK parameterisation",
        "inputs": {},
        "configs": [],
    }
    for d in (1, 4):
        X, Y = kernel_inputs(d)
        arrays[f"X_d{d}"] = X
        arrays[f"Y_d{d}"] = Y
        meta["inputs"][f"d{d}"] = {
            "X": f"X_d{d}", "Y": f"Y_d{d}", "zero_row": 0, "duplicate_rows": [1, 4],
            "Y_row_equal_to_X_row": [4, 5],
            "X_row_norms": np.linalg.norm(X, axis=1).tolist(),
        }
    checks = []
    for i, (act, depth, sw, sb, d) in enumerate(kernel_configs()):
        X, Y = arrays[f"X_d{d}"], arrays[f"Y_d{d}"]
        _, _, kfn = network(depth, act, sw, sb)
        kxx = kfn(X, None, ("ntk", "nngp"))
        kxy = kfn(X, Y, ("ntk", "nngp"))
        res = {
            "ntk_xx": np.asarray(kxx.ntk, dtype=np.float64),
            "nngp_xx": np.asarray(kxx.nngp, dtype=np.float64),
            "ntk_xy": np.asarray(kxy.ntk, dtype=np.float64),
            "nngp_xy": np.asarray(kxy.nngp, dtype=np.float64),
        }
        pre = f"c{i:02d}_"
        entry = {
            "id": i, "prefix": pre, "activation": act, "activation_params": ACTIVATIONS[act][1],
            "depth": depth, "weight_std": sw, "bias_std": sb, "d": d,
            "X": f"X_d{d}", "Y": f"Y_d{d}",
        }
        zero_nan = False
        for k, v in res.items():
            arrays[pre + k] = v
            entry[f"nan_count_{k}"] = int(np.sum(~np.isfinite(v)))
            zero_nan |= bool(np.any(~np.isfinite(v[0])))
            if k.endswith("_xx"):
                zero_nan |= bool(np.any(~np.isfinite(v[:, 0])))
        entry["zero_row_nan"] = zero_nan
        entry["any_nan"] = any(entry[f"nan_count_{k}"] > 0 for k in res)
        meta["configs"].append(entry)
        if act in ("relu", "erf", "identity"):
            for which, Yv in (("xx", X), ("xy", Y)):
                th, sg = _np_recursion(X, Yv, depth, act, sw, sb)
                checks.append((i, act, depth, which, _relerr(res[f"ntk_{which}"], th),
                               _relerr(res[f"nngp_{which}"], sg)))
        print(f"{pre}{act:10s} L={depth} sw={sw} sb={sb} d={d} zero_row_nan={zero_nan} "
              f"nan={[entry[f'nan_count_{k}'] for k in res]}")
    print("independent numpy closed-form check (max rel err ntk, nngp):")
    worst = 0.0
    for c in checks:
        worst = max(worst, c[4], c[5])
        print("   ", c)
    print("worst", worst)
    meta["numpy_closed_form_check_max_rel_err"] = worst
    np.savez_compressed(outdir / "nt_kernel_reference.npz", **arrays)
    with open(outdir / "nt_kernel_reference.json", "w") as fh:
        json.dump(meta, fh, indent=1)
    return meta


# ---------------------------------------------------------------------------------------
# predict.gradient_descent_mse_ensemble reference
# ---------------------------------------------------------------------------------------
T_VALUES = [0.0, 0.5, 3.0, 50.0, None]
ALPHAS = [0.0, 0.1]
ETAS = [1.0, 0.5]
GETS = ["ntk", "nngp"]
NETS = {
    "relu2": ("relu", 2, 1.5, 0.2),
    "erf1": ("erf", 1, 1.5, 0.2),
}


def _design_formula(k, y, alpha, eta, t, get, limit=False):
    """DESIGN.md section 2 formulas in plain numpy (for the self check only)."""
    ntk_dd, nngp_dd, ntk_td, nngp_td, nngp_tt = (
        k["ntk_train_train"], k["nngp_train_train"], k["ntk_test_train"],
        k["nngp_test_train"], k["nngp_test_test"])
    n, kk = y.shape
    if get == "ntk":
        A, A_td = ntk_dd, ntk_td
    else:
        A, A_td = nngp_dd, nngp_td
    At = A + alpha * np.eye(n)
    lam, V = np.linalg.eigh(At)

    tiny = np.abs(lam) < 1e-12 * np.max(np.abs(lam)) if limit else np.zeros(lam.shape, bool)
    safe = np.where(tiny, 1.0, lam)

    def Tmat(s):
        if s is None:
            f = np.where(tiny, 0.0, 1.0 / safe)
        else:
            f = np.where(tiny, eta * s / (n * kk), -np.expm1(-safe * eta * s / (n * kk)) / safe)
        return (V * f) @ V.T

    T = Tmat(t)
    mean = A_td @ T @ y
    if get == "ntk":
        cross = ntk_td @ T @ nngp_td.T
        cov = nngp_tt + ntk_td @ T @ nngp_dd @ T @ ntk_td.T - cross - cross.T
    else:
        T2 = Tmat(None if t is None else 2 * t)
        cov = nngp_tt - nngp_td @ T2 @ nngp_td.T
    return mean, cov


def make_predict_reference(outdir: Path):
    rng = np.random.default_rng(7)
    n_train, n_test, d = 12, 5, 3
    X_train = rng.standard_normal((n_train, d))
    X_test = rng.standard_normal((n_test, d))
    X_test[0] = X_train[3]  # one test point on a training point
    y1 = np.sin(X_train @ np.array([[1.0], [-0.5], [0.3]])) + 0.1 * rng.standard_normal((n_train,
                                                                                          1))
    y3 = np.concatenate([y1, np.cos(X_train[:, :1]), X_train[:, 1:2] ** 2 - 1], axis=1)
    arrays = {
        "X_train": X_train, "X_test": X_test, "y_k1": y1, "y_k3": y3,
        "t": np.array([np.inf if t is None else t for t in T_VALUES]),
        "alpha": np.array(ALPHAS), "learning_rate": np.array(ETAS),
    }
    meta = {
        "format": (
            "For net N in nets and k in (1, 3): N_k{k}_mean has shape "
            "(n_alpha, n_lr, n_get, n_t, n_test, k) and N_k{k}_cov has shape "
            "(n_alpha, n_lr, n_get, n_t, n_test, n_test); axis values in 'axes'. "
            "N_k{k}_finite (bool, (n_alpha, n_lr, n_get, n_t)) is False where NT returned "
            "any non-finite mean/cov entry (stored as returned). Kernels: "
            "N_{ntk,nngp}_{train_train,test_train,test_test}. t = inf means NT's t=None."
        ),
        "call": "predict_fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, X_train, y, "
        "learning_rate=lr, diag_reg=alpha, diag_reg_absolute_scale=True); "
        "predict_fn(t=t, x_test=X_test, get=get, compute_cov=True)",
        "axes": {"alpha": ALPHAS, "learning_rate": ETAS, "get": GETS,
                 "t": ["inf" if t is None else t for t in T_VALUES]},
        "n_train": n_train, "n_test": n_test, "d": d,
        "test_row_equal_to_train_row": [0, 3],
        "nets": {},
        "non_finite": [],
        "design_formula_check_max_rel_err": {},
    }
    for name, (act, depth, sw, sb) in NETS.items():
        meta["nets"][name] = {"activation": act, "depth": depth, "weight_std": sw,
                              "bias_std": sb, "width_in_stax": 512}
        _, _, kfn = network(depth, act, sw, sb)
        kdd = kfn(X_train, None, ("ntk", "nngp"))
        ktd = kfn(X_test, X_train, ("ntk", "nngp"))
        ktt = kfn(X_test, None, ("ntk", "nngp"))
        kern = {}
        for g in GETS:
            kern[f"{g}_train_train"] = np.asarray(getattr(kdd, g))
            kern[f"{g}_test_train"] = np.asarray(getattr(ktd, g))
            kern[f"{g}_test_test"] = np.asarray(getattr(ktt, g))
        for key, v in kern.items():
            arrays[f"{name}_{key}"] = v
        for kk, y in ((1, y1), (3, y3)):
            shape = (len(ALPHAS), len(ETAS), len(GETS), len(T_VALUES))
            means = np.zeros(shape + (n_test, kk))
            covs = np.zeros(shape + (n_test, n_test))
            fin = np.ones(shape, dtype=bool)
            worst = 0.0
            for ia, alpha in enumerate(ALPHAS):
                for ie, eta in enumerate(ETAS):
                    pfn = nt.predict.gradient_descent_mse_ensemble(
                        kfn, X_train, y, learning_rate=eta, diag_reg=alpha,
                        diag_reg_absolute_scale=True)
                    for ig, g in enumerate(GETS):
                        for it, t in enumerate(T_VALUES):
                            out = pfn(t=t, x_test=X_test, get=g, compute_cov=True)
                            m = np.asarray(out.mean)
                            c = np.asarray(out.covariance)
                            means[ia, ie, ig, it] = m
                            covs[ia, ie, ig, it] = c
                            ok = bool(np.all(np.isfinite(m)) and np.all(np.isfinite(c)))
                            fin[ia, ie, ig, it] = ok
                            if not ok:
                                meta["non_finite"].append(
                                    {"net": name, "k": kk, "alpha": alpha, "learning_rate": eta,
                                     "get": g, "t": "inf" if t is None else t})
                            else:
                                m2, c2 = _design_formula(kern, y, alpha, eta, t, g)
                                scale_m = np.max(np.abs(m2)) + 1e-300
                                scale_c = np.max(np.abs(c2))
                                worst = max(worst, float(np.max(np.abs(m - m2)) / scale_m)
                                            if scale_m > 1e-250 else float(np.max(np.abs(m))),
                                            float(np.max(np.abs(c - c2)) / scale_c))
            arrays[f"{name}_k{kk}_mean"] = means
            arrays[f"{name}_k{kk}_cov"] = covs
            arrays[f"{name}_k{kk}_finite"] = fin
            meta["design_formula_check_max_rel_err"][f"{name}_k{kk}"] = worst
            print(name, kk, "finite:", int(fin.sum()), "/", fin.size, "design check", worst)

    # Degenerate case: duplicated training row, alpha = 0 (records NT's lambda -> 0 behaviour)
    Xdup = X_train.copy()
    Xdup[5] = Xdup[2]
    ydup = y1.copy()
    ydup[5] = ydup[2]
    _, _, kfn = network(2, "relu", 1.5, 0.2)
    pfn = nt.predict.gradient_descent_mse_ensemble(kfn, Xdup, ydup, learning_rate=1.0,
                                                   diag_reg=0.0, diag_reg_absolute_scale=True)
    kd = kfn(Xdup, None, ("ntk", "nngp"))
    kt = kfn(X_test, Xdup, ("ntk", "nngp"))
    ktt = kfn(X_test, None, ("ntk", "nngp"))
    kern_dup = {}
    for g in GETS:
        kern_dup[f"{g}_train_train"] = np.asarray(getattr(kd, g))
        kern_dup[f"{g}_test_train"] = np.asarray(getattr(kt, g))
        kern_dup[f"{g}_test_test"] = np.asarray(getattr(ktt, g))
    degenerate = {}
    for g in GETS:
        for t in T_VALUES:
            out = pfn(t=t, x_test=X_test, get=g, compute_cov=True)
            m, c = np.asarray(out.mean), np.asarray(out.covariance)
            m2, c2 = _design_formula(kern_dup, ydup, 0.0, 1.0, t, g, limit=True)
            degenerate[f"{g}_t={'inf' if t is None else t}"] = {
                "mean_finite": bool(np.all(np.isfinite(m))),
                "cov_finite": bool(np.all(np.isfinite(c))),
                "max_abs_diff_mean_vs_limit_formula": float(np.max(np.abs(m - m2))),
                "max_abs_diff_cov_vs_limit_formula": float(np.max(np.abs(c - c2))),
                "mean_absmax": float(np.max(np.abs(m2))),
            }
    meta["degenerate_duplicate_train_row_alpha0"] = {
        "description": "relu2 net, X_train with row 5 := row 2 (and y), alpha=0, lr=1; not "
        "stored as arrays: whether NT's output was finite and how far it is from the DESIGN "
        "formulas evaluated with the lambda->0 limit (eigenvalues |lambda| < 1e-12 max: factor "
        "s; at t=inf: pseudo-inverse)",
        "eigenvalues_ntk_train_train_smallest": np.linalg.eigvalsh(
            kern_dup["ntk_train_train"])[:2].tolist(),
        "results": degenerate,
    }
    print("degenerate:", json.dumps(meta["degenerate_duplicate_train_row_alpha0"], indent=1))
    np.savez_compressed(outdir / "nt_predict_reference.npz", **arrays)
    with open(outdir / "nt_predict_reference.json", "w") as fh:
        json.dump(meta, fh, indent=1)
    return meta


# ---------------------------------------------------------------------------------------
# Timing (issue: "3.6x floor")
# ---------------------------------------------------------------------------------------
def timing(n=4000, d=64, depth=3, repeats=3):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    _, _, kfn = network(depth, "relu", 1.0, 0.1)
    jkfn = jax.jit(kfn, static_argnames=("get",))
    Xj = jnp.asarray(X)
    out = jkfn(Xj, None, get=("nngp", "ntk"))
    jax.block_until_ready(out)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jkfn(Xj, None, get=("nngp", "ntk"))
        jax.block_until_ready(out)
        ts.append(time.perf_counter() - t0)
    t_nt = min(ts)
    tg = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        G = X @ X.T
        tg.append(time.perf_counter() - t0)
    A = np.clip(G / np.max(np.abs(G)), -1, 1)
    ta = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.arccos(A)
        ta.append(time.perf_counter() - t0)
    floor = min(tg) + depth * min(ta)
    print(f"n={n} d={d} depth={depth} relu float64, threads: "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"neural-tangents jit kernel_fn (nngp+ntk): {t_nt:.3f} s  (runs {ts})")
    print(f"X@X.T: {min(tg):.3f} s   np.arccos {n}x{n}: {min(ta):.3f} s")
    print(f"floor = gram + {depth}*arccos = {floor:.3f} s;  NT / floor = {t_nt / floor:.2f}")
    return t_nt, min(tg), min(ta)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "tests" / "data"))
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--only", choices=["kernel", "predict"], default=None)
    args = parser.parse_args()
    if args.timing:
        timing()
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "kernel"):
        make_kernel_reference(out)
    if args.only in (None, "predict"):
        make_predict_reference(out)


if __name__ == "__main__":
    main()
