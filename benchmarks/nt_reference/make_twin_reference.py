"""Generate neural-tangents 0.6.5 reference values for the finite PyTorch twins (``from_layers``).

Not part of the package, never run in CI; it needs the separate neural-tangents environment
described in ``make_reference.py``::

    ntvenv/bin/python benchmarks/nt_reference/make_twin_reference.py [--out tests/data]

It writes ``nt_twin_reference.json`` (the architectures, in a neutral spec that both this script
and the tests translate: to ``stax`` here, to ``sklearn_ntk.layers`` there) and
``nt_twin_reference.npz``:

* ``forward``: for each architecture, a finite ``stax`` network (width ``WIDTH``, ``OUT``
  outputs) initialised with ``PRNGKey(index)``: its parameters converted to the layout of
  ``torch.nn.Module.parameters()`` of the twin (``fwd{i}_p{j}``), inputs ``fwd{i}_X`` (rows
  flattened in C order) and ``apply_fn`` outputs ``fwd{i}_out``;
* ``montecarlo``: for each architecture, inputs ``mc{i}_X`` and the analytic ``mc{i}_ntk``,
  ``mc{i}_nngp`` of ``kernel_fn(X, X)``.

Spec format: a list of entries, each an activation name, ``[name, {kwargs}]`` for a layer
(``Dense``, ``Conv``, ``AvgPool``, ``GlobalAvgPool``, ``GlobalSumPool``, ``Flatten``,
``LayerNorm``, ``Identity``, ``FanOut``, ``FanInSum``) or ``["parallel", [spec, spec, ...]]``.
Every Dense/Conv has width channels except the last top-level one (the readout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from jax import random  # noqa: E402
from neural_tangents import stax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WIDTH, OUT = 3, 2

ACTS = {"relu": stax.Relu, "erf": stax.Erf, "identity": stax.Identity, "abs": stax.Abs}

# (input_shape, weight_std, bias_std, spec)
FORWARD = [
    ((5,), 1.3, 0.2, [["Dense", {}], "relu", ["Dense", {"weight_std": 2.0, "bias_std": 0.0}],
                      "erf", ["Dense", {}]]),
    ((6, 5, 2), 1.4, 0.1, [["Conv", {"filter_shape": [3, 3]}], "relu",
                           ["Conv", {"filter_shape": [3, 3], "padding": "same"}], "relu",
                           ["GlobalAvgPool", {}], ["Dense", {}]]),
    ((5, 7, 1), 1.2, 0.3, [["Conv", {"filter_shape": [2, 2], "strides": [2, 2]}], "relu",
                           ["Flatten", {}], ["Dense", {}]]),
    ((7, 6, 2), 1.1, 0.2, [["Conv", {"filter_shape": [4, 3], "strides": [2, 1],
                                     "padding": "circular"}], "erf",
                           ["AvgPool", {"window_shape": [3, 2], "strides": [2, 2],
                                        "padding": "same"}],
                           ["Flatten", {}], ["Dense", {}]]),
    ((9, 2), 1.5, 0.1, [["Conv", {"filter_shape": [3], "strides": [2], "padding": "valid"}],
                        "relu", ["AvgPool", {"window_shape": [2]}], ["GlobalSumPool", {}],
                        ["Dense", {}]]),
    ((4, 4, 3, 1), 1.3, 0.2, [["Conv", {"filter_shape": [2, 2, 2]}], "relu",
                              ["GlobalAvgPool", {}], ["Dense", {}]]),
    ((6,), 1.4, 0.3, [["Dense", {}], ["FanOut", {"num": 2}],
                      ["parallel", [["relu", ["Dense", {}]], [["Identity", {}]]]],
                      ["FanInSum", {}], ["LayerNorm", {}], "relu", ["Dense", {}]]),
    ((7, 7, 1), 1.2, 0.1, [["Conv", {"filter_shape": [3, 3], "padding": "circular"}], "relu",
                           ["AvgPool", {"window_shape": [3, 3], "strides": [2, 2],
                                        "padding": "circular"}],
                           ["Dense", {}], "abs", ["Flatten", {}], ["Dense", {}]]),
    ((4, 4, 2), 1.0, 0.5, [["Dense", {}], "relu", ["LayerNorm", {}],
                           ["Conv", {"filter_shape": [3, 1], "padding": "valid"}],
                           ["GlobalAvgPool", {}], ["Dense", {"bias_std": 0.0}]]),
]

MONTECARLO = {
    "cnn_gap": ((4, 4, 1), 1.4, 0.1, [["Conv", {"filter_shape": [3, 3]}], "relu",
                                      ["Conv", {"filter_shape": [3, 3]}], "relu",
                                      ["GlobalAvgPool", {}], ["Dense", {}]]),
    "cnn_flatten": ((4, 4, 1), 1.4, 0.1, [["Conv", {"filter_shape": [3, 3]}], "relu",
                                          ["Conv", {"filter_shape": [3, 3]}], "relu",
                                          ["Flatten", {}], ["Dense", {}]]),
    "residual_mlp": ((6,), 1.3, 0.2, [["Dense", {}], ["FanOut", {"num": 2}],
                                      ["parallel", [["relu", ["Dense", {}]], [["Identity", {}]]]],
                                      ["FanInSum", {}], "relu", ["Dense", {}]]),
    "layernorm_mlp": ((6,), 1.3, 0.2, [["Dense", {}], ["LayerNorm", {}], "relu", ["Dense", {}],
                                       ["LayerNorm", {}], "erf", ["Dense", {}]]),
}


def to_stax(spec, sw, sb, readout_out=None):
    """stax layers of a spec; ``readout_out`` gives the last top-level Dense/Conv its width."""
    weights = [i for i, e in enumerate(spec) if isinstance(e, list) and e[0] in ("Dense", "Conv")]
    readout = weights[-1] if readout_out is not None else None
    layers = []
    for i, entry in enumerate(spec):
        if isinstance(entry, str):
            layers.append(ACTS[entry]())
            continue
        name, kw = entry
        if name == "parallel":
            layers.append(stax.parallel(*[to_stax(b, sw, sb) for b in kw]))
            continue
        kw = dict(kw)
        if name in ("Dense", "Conv"):
            out = readout_out if i == readout else WIDTH
            W_std, b_std = kw.pop("weight_std", sw), kw.pop("bias_std", sb)
            if name == "Dense":
                layers.append(stax.Dense(out, W_std=W_std, b_std=b_std))
            else:
                layers.append(stax.Conv(out, tuple(kw["filter_shape"]),
                                        strides=tuple(kw["strides"]) if "strides" in kw else None,
                                        padding=kw.get("padding", "same").upper(),
                                        W_std=W_std, b_std=b_std))
        elif name == "AvgPool":
            layers.append(stax.AvgPool(tuple(kw["window_shape"]),
                                       strides=tuple(kw["strides"]) if "strides" in kw else None,
                                       padding=kw.get("padding", "valid").upper()))
        elif name == "FanOut":
            layers.append(stax.FanOut(kw["num"]))
        else:
            layers.append(getattr(stax, name)())
    return stax.serial(*layers)


def torch_layout(params):
    """Parameter leaves in the order and shapes of the twin's ``parameters()``."""
    out = []
    for leaf in jax.tree_util.tree_leaves(params):
        a = np.asarray(leaf)
        if a.ndim == 2 and len(out) % 2 == 0:  # Dense W (in, out) -> (out, in)
            out.append(a.T)
        elif a.ndim >= 3 and len(out) % 2 == 0:  # Conv W (*filter, in, out) -> (out, in, *filter)
            nd = a.ndim - 2
            out.append(np.transpose(a, (nd + 1, nd) + tuple(range(nd))))
        else:  # biases: (out,) or (1, ..., 1, out)
            out.append(a.reshape(-1))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO / "tests" / "data"))
    args = parser.parse_args()
    rng = np.random.default_rng(20261201)
    arrays, meta = {}, {"forward": [], "montecarlo": {}, "width": WIDTH, "out": OUT}
    for i, (shape, sw, sb, spec) in enumerate(FORWARD):
        init_fn, apply_fn, _ = to_stax(spec, sw, sb, readout_out=OUT)
        X = rng.standard_normal((3,) + shape)
        _, params = init_fn(random.PRNGKey(i), X.shape)
        arrays[f"fwd{i}_X"] = X.reshape(3, -1)
        arrays[f"fwd{i}_out"] = np.asarray(apply_fn(params, X))
        for j, p in enumerate(torch_layout(params)):
            arrays[f"fwd{i}_p{j}"] = p
        meta["forward"].append({"input_shape": shape, "weight_std": sw, "bias_std": sb,
                                "spec": spec})
    for name, (shape, sw, sb, spec) in MONTECARLO.items():
        _, _, kernel_fn = to_stax(spec, sw, sb, readout_out=1)
        X = rng.standard_normal((4,) + shape)
        if len(shape) > 1:  # smooth-ish images: neighbouring pixels correlated
            X = X + np.roll(X, 1, axis=1) + np.roll(X, 1, axis=2)
        k = kernel_fn(X, X, ("nngp", "ntk"))
        arrays[f"mc_{name}_X"] = X.reshape(4, -1)
        arrays[f"mc_{name}_ntk"] = np.asarray(k.ntk)
        arrays[f"mc_{name}_nngp"] = np.asarray(k.nngp)
        meta["montecarlo"][name] = {"input_shape": shape, "weight_std": sw, "bias_std": sb,
                                    "spec": spec}
    out = Path(args.out)
    np.savez_compressed(out / "nt_twin_reference.npz", **arrays)
    meta["format"] = __doc__
    (out / "nt_twin_reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {len(arrays)} arrays to {out / 'nt_twin_reference.npz'}")


if __name__ == "__main__":
    main()
