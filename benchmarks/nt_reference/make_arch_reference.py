"""Generate neural-tangents 0.6.5 reference values for ``NetworkKernel`` (architectures as data).

Not part of the package, never run in CI; needs the separate environment with neural-tangents 0.6.5
(see ``make_reference.py``)::

    ntvenv/bin/python benchmarks/nt_reference/make_arch_reference.py [--out tests/data]

It writes ``tests/data/nt_arch_reference.npz`` / ``.json``:

* for every network of ``NETWORKS`` (a small layer language shared with the tests, stored in the
  JSON): ``k(X, X)``, ``k(X, Y)`` (NTK and NNGP) of ``stax.serial(...)`` with the inputs reshaped to
  ``(n,) + input_shape``;
* for one CNN, ``predict.gradient_descent_mse_ensemble`` mean and covariance at finite ``t`` and
  ``t = inf`` (NTK and NNGP).

Layer language: an entry is an activation name (``"relu"``), ``[name, kwargs]`` for a layer
(``["Conv", {"filter_shape": [3, 3], "padding": "same"}]``), ``["Residual", [entries]]``,
``["parallel", [[entries], [entries]]]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WIDTH = 64  # irrelevant for the infinite-width kernel

ACTS = {
    "relu": stax.Relu,
    "erf": stax.Erf,
    "gelu": lambda: stax.Gelu(approximate=False),
    "sin": stax.Sin,
    "abs": stax.Abs,
    "sign": stax.Sign,
    "identity": stax.Identity,
    "leaky_relu": lambda: stax.LeakyRelu(alpha=0.1),
}


def C(fs, **kw):
    return ["Conv", dict(filter_shape=list(fs), **kw)]


def D(**kw):
    return ["Dense", kw]


GAP, GSP, FLAT, LN = ["GlobalAvgPool", {}], ["GlobalSumPool", {}], ["Flatten", {}], ["LayerNorm", {}]

# name -> (input_shape, weight_std, bias_std, layers)
NETWORKS = {
    "cnn_gap_same": ((4, 5, 2), 1.4, 0.3, [C((3, 3)), "relu", C((3, 3)), "relu", GAP, D()]),
    "cnn_flatten_even": ((4, 5, 2), 1.2, 0.2, [C((3, 3)), "relu", C((2, 2)), "erf", FLAT, D()]),
    "cnn_valid_stride": ((4, 5, 2), 1.5, 0.1,
                         [C((2, 3), strides=[2, 1], padding="valid"), "relu", GAP, D()]),
    "cnn_circular_stride": ((5, 4, 2), 1.3, 0.2,
                            [C((3, 3), strides=[2, 2], padding="circular"), "gelu",
                             C((2, 2), padding="circular"), "relu", FLAT, D()]),
    "cnn_same_stride_gsp": ((5, 4, 2), 1.1, 0.4,
                            [C((2, 3), strides=[2, 2]), "abs", C((3, 2)), "relu", GSP, D()]),
    "avgpool_valid": ((4, 5, 2), 1.3, 0.2,
                      [C((3, 3)), "relu", ["AvgPool", {"window_shape": [2, 2]}], FLAT, D()]),
    "avgpool_same_stride": ((5, 4, 2), 1.2, 0.3,
                            [C((3, 3)), "leaky_relu",
                             ["AvgPool", {"window_shape": [3, 2], "strides": [2, 1],
                                          "padding": "same"}],
                             C((2, 2), padding="valid"), "relu", GSP, D()]),
    "avgpool_circular": ((4, 4, 1), 1.0, 0.5,
                         [C((3, 3), padding="circular"), "relu",
                          ["AvgPool", {"window_shape": [2, 3], "strides": [2, 2],
                                       "padding": "circular"}],
                          C((2, 2), padding="circular"), "relu", GAP, D()]),
    "residual_cnn": ((4, 5, 2), 1.2, 0.2,
                     [C((3, 3)), ["Residual", ["relu", C((3, 3))]], "relu", GAP, D()]),
    "parallel_cnn": ((4, 5, 2), 1.3, 0.1,
                     [["FanOut", {"num": 2}],
                      ["parallel", [[C((3, 3))], [C((1, 1), weight_std=0.7, bias_std=0.0)]]],
                      ["FanInSum", {}], "erf", FLAT, D()]),
    "layernorm_cnn": ((4, 5, 2), 1.4, 0.3,
                      [C((3, 3)), LN, "relu", C((3, 3)), "relu", GAP, D()]),
    "dense_on_image": ((4, 5, 2), 1.1, 0.2, [D(), "relu", C((3, 3)), "sin", FLAT, D()]),
    "sign_cnn_nobias": ((4, 5, 2), 1.5, 0.0, [C((3, 3)), "sign", C((3, 3)), "relu", GAP, D()]),
    "fixed_layer_stds": ((4, 5, 2), 1.3, 0.2,
                         [C((3, 3), weight_std=2.0, bias_std=0.5), "relu", C((3, 3)), "relu",
                          GAP, D(weight_std=0.8, bias_std=0.0)]),
    "seq_flatten": ((7, 3), 1.4, 0.2,
                    [C((3,)), "relu", C((2,), strides=[2], padding="valid"), "sin", FLAT, D()]),
    "seq_gap_circular": ((6, 2), 1.2, 0.3,
                         [C((3,), padding="circular"), "relu", C((4,), padding="circular"),
                          "erf", GAP, D()]),
    "seq_avgpool": ((7, 2), 1.3, 0.1,
                    [C((2,)), "relu", ["AvgPool", {"window_shape": [3], "strides": [2]}],
                     C((2,)), "relu", FLAT, D()]),
    "vol_3d": ((3, 3, 4, 1), 1.2, 0.2, [C((2, 2, 3)), "relu", C((2, 2, 2)), "relu", GAP, D()]),
    "mlp_residual_layernorm": ((6,), 1.3, 0.2,
                               [D(), ["Residual", ["relu", D()]], LN, "relu", D()]),
    "mlp_layernorm_erf": ((6,), 1.5, 0.1, [D(), LN, "erf", D(), "gelu", D()]),
}


def to_stax(entries):
    layers = []
    for e in entries:
        if isinstance(e, str):
            layers.append(ACTS[e]())
            continue
        name, arg = e
        if name == "Residual":
            layers.append(stax.serial(stax.FanOut(2), stax.parallel(to_stax(arg), stax.Identity()),
                                      stax.FanInSum()))
        elif name == "parallel":
            layers.append(stax.parallel(*[to_stax(b) for b in arg]))
        elif name in ("Dense", "Conv"):
            kw = dict(arg)
            w = kw.pop("weight_std", None)
            b = kw.pop("bias_std", None)
            kw["W_std"] = CURRENT["w"] if w is None else w
            kw["b_std"] = CURRENT["b"] if b is None else b
            if kw["b_std"] == 0.0:
                kw["b_std"] = None
            if name == "Dense":
                layers.append(stax.Dense(WIDTH, **kw))
            else:
                fs = tuple(kw.pop("filter_shape"))
                if "strides" in kw:
                    kw["strides"] = tuple(kw["strides"])
                kw["padding"] = kw.get("padding", "same").upper()
                layers.append(stax.Conv(WIDTH, fs, **kw))
        elif name == "AvgPool":
            kw = dict(arg)
            ws = tuple(kw.pop("window_shape"))
            if "strides" in kw:
                kw["strides"] = tuple(kw["strides"])
            kw["padding"] = kw.get("padding", "valid").upper()
            layers.append(stax.AvgPool(ws, **kw))
        elif name == "FanOut":
            layers.append(stax.FanOut(arg["num"]))
        else:
            layers.append(getattr(stax, name)(**arg))
    return stax.serial(*layers)


CURRENT = {}


def inputs(shape):
    """X (6, d) with a zero image, a duplicate and norms 1e-2 .. 30; Y (3, d) with an X row."""
    d = int(np.prod(shape))
    rng = np.random.default_rng(20251201 + d)
    X = rng.standard_normal((6, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True) / np.sqrt(d)
    X *= np.array([0.0, 1.0, 1e-2, 30.0, 1.0, 0.4])[:, None]
    X[4] = X[1]
    Y = rng.standard_normal((3, d)) * 0.8
    Y[2] = X[5]
    return X, Y


def kernels(kfn, X, Y, shape):
    Xr = X.reshape((-1,) + shape)
    Yr = Y.reshape((-1,) + shape)
    kxx = kfn(Xr, None, ("ntk", "nngp"))
    kxy = kfn(Xr, Yr, ("ntk", "nngp"))
    return {
        "ntk_xx": np.asarray(kxx.ntk, np.float64), "nngp_xx": np.asarray(kxx.nngp, np.float64),
        "ntk_xy": np.asarray(kxy.ntk, np.float64), "nngp_xy": np.asarray(kxy.nngp, np.float64),
    }


PREDICT_NET = "cnn_gap_same"
PREDICT_T = [0.5, 5.0, None]


def predict_reference(arrays, meta):
    shape, w, b, entries = NETWORKS[PREDICT_NET]
    CURRENT.update(w=w, b=b)
    kfn = to_stax(entries)[2]
    d = int(np.prod(shape))
    rng = np.random.default_rng(11)
    Xtr = rng.standard_normal((10, d))
    Xte = rng.standard_normal((4, d))
    Xte[0] = Xtr[2]
    ytr = np.sin(Xtr[:, :3].sum(1, keepdims=True)) + 0.1 * rng.standard_normal((10, 1))
    arrays.update(pred_X_train=Xtr, pred_X_test=Xte, pred_y=ytr)
    alpha, lr = 0.01, 1.0
    pfn = nt.predict.gradient_descent_mse_ensemble(
        kfn, Xtr.reshape((-1,) + shape), ytr, learning_rate=lr, diag_reg=alpha,
        diag_reg_absolute_scale=True)
    for get in ("ntk", "nngp"):
        for t in PREDICT_T:
            out = pfn(t=t, x_test=Xte.reshape((-1,) + shape), get=get, compute_cov=True)
            key = f"pred_{get}_t{'inf' if t is None else t}"
            arrays[key + "_mean"] = np.asarray(out.mean, np.float64)
            arrays[key + "_cov"] = np.asarray(out.covariance, np.float64)
    meta["predict"] = {
        "network": PREDICT_NET, "alpha": alpha, "learning_rate": lr,
        "t": ["inf" if t is None else t for t in PREDICT_T], "gets": ["ntk", "nngp"],
        "call": "nt.predict.gradient_descent_mse_ensemble(kernel_fn, X_train, y, "
        "learning_rate=lr, diag_reg=alpha, diag_reg_absolute_scale=True)"
        "(t=t, x_test=X_test, get=get, compute_cov=True)",
    }


def main(outdir):
    arrays, meta = {}, {
        "format": "for network N: N_{ntk,nngp}_{xx,xy}; inputs X_<d>, Y_<d> with d = "
        "prod(input_shape); X rows: 0 zero, 4 == 1, norms 0, 1, 1e-2, 30 (times sqrt(d)); "
        "Y row 2 == X row 5. pred_*: see 'predict'.",
        "neural_tangents_version": "0.6.5", "jax_version": jax.__version__,
        "networks": {},
    }
    for name, (shape, w, b, entries) in NETWORKS.items():
        CURRENT.update(w=w, b=b)
        d = int(np.prod(shape))
        if f"X_{d}" not in arrays:
            arrays[f"X_{d}"], arrays[f"Y_{d}"] = inputs(shape)
        kfn = to_stax(entries)[2]
        res = kernels(kfn, arrays[f"X_{d}"], arrays[f"Y_{d}"], shape)
        for k, v in res.items():
            arrays[f"{name}_{k}"] = v
        finite = all(np.isfinite(v).all() for v in res.values())
        meta["networks"][name] = {"input_shape": list(shape), "weight_std": w, "bias_std": b,
                                  "layers": entries, "finite": finite}
        print(f"{name:28s} finite={finite} ntk00={res['ntk_xx'][1, 1]:.6g}")
    predict_reference(arrays, meta)
    np.savez_compressed(outdir / "nt_arch_reference.npz", **arrays)
    (outdir / "nt_arch_reference.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data")
    main(parser.parse_args().out)
