"""Generate neural-tangents 0.6.5 reference values for ``layers.GlobalSelfAttention``.

Not part of the package, never run in CI; needs the separate environment with neural-tangents 0.6.5
(see ``make_reference.py``)::

    ntvenv/bin/python benchmarks/nt_reference/make_attention_reference.py [--out tests/data]

It writes ``tests/data/nt_attention_reference.npz`` / ``.json``: for every network of ``NETWORKS``
(the layer language of ``make_arch_reference.py`` plus ``["GlobalSelfAttention", kwargs]``) on
sequences of ``input_shape`` ``(T, C)``, the NTK and NNGP of ``k(X, X)`` and ``k(X, Y)``. Attention
is ``stax.GlobalSelfAttention(n_chan_out, n_chan_key, n_chan_val, n_heads, linear_scaling=True,
W_key_std=W_value_std=W_query_std=W_out_std=w, b_std=b, attention_mechanism="SOFTMAX")``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from make_arch_reference import CURRENT, D, inputs, kernels, to_stax  # noqa: E402
from neural_tangents import stax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
_ORIGINAL = stax.GlobalSelfAttention


def _attention(n_heads=1, weight_std=None, bias_std=None):
    w = CURRENT["w"] if weight_std is None else weight_std
    b = CURRENT["b"] if bias_std is None else bias_std
    return _ORIGINAL(64, 64, 64, n_heads, linear_scaling=True, W_key_std=w, W_value_std=w,
                     W_query_std=w, W_out_std=w, b_std=None if b == 0.0 else b,
                     attention_mechanism="SOFTMAX")


stax.GlobalSelfAttention = _attention  # the layer language's name -> the closed-form variant


def ATT(**kw):
    return ["GlobalSelfAttention", kw]


GAP, LN = ["GlobalAvgPool", {}], ["LayerNorm", {}]

# name -> (input_shape, weight_std, bias_std, layers)
NETWORKS = {
    "attn_input": ((5, 3), 1.2, 0.2, [ATT(), GAP, D()]),
    "attn_relu": ((5, 3), 1.1, 0.3, [D(), "relu", ATT(n_heads=4), "relu", GAP, D()]),
    "attn_twice": ((6, 2), 0.9, 0.1, [D(), "erf", ATT(), D(), "relu", ATT(), GAP, D()]),
    "attn_fixed_std": ((5, 3), 1.3, 0.2,
                       [D(), "relu", ATT(weight_std=0.8, bias_std=0.0), "gelu", GAP, D()]),
    "attn_transformer": ((4, 3), 1.2, 0.1,
                         [D(), ["Residual", [ATT()]], LN,
                          ["Residual", [D(), "relu", D()]], LN, GAP, D()]),
    "attn_flatten": ((5, 2), 1.0, 0.2, [D(), "relu", ATT(), "relu", ["Flatten", {}], D()]),
}


def main(outdir):
    arrays, meta = {}, {
        "format": "for network N: N_{ntk,nngp}_{xx,xy}; inputs X_<d>, Y_<d> with d = "
        "prod(input_shape), made as in make_arch_reference.inputs (X row 0 zero, row 4 == row 1)",
        "neural_tangents_version": "0.6.5", "jax_version": jax.__version__, "networks": {},
    }
    for name, (shape, w, b, entries) in NETWORKS.items():
        CURRENT.update(w=w, b=b)
        d = int(np.prod(shape))
        if f"X_{d}" not in arrays:
            arrays[f"X_{d}"], arrays[f"Y_{d}"] = inputs(shape)
        res = kernels(to_stax(entries)[2], arrays[f"X_{d}"], arrays[f"Y_{d}"], shape)
        for k, v in res.items():
            arrays[f"{name}_{k}"] = v
        finite = all(np.isfinite(v).all() for v in res.values())
        meta["networks"][name] = {"input_shape": list(shape), "weight_std": w, "bias_std": b,
                                  "layers": entries, "finite": finite}
        print(f"{name:18s} finite={finite} ntk11={res['ntk_xx'][1, 1]:.6g}")
    np.savez_compressed(outdir / "nt_attention_reference.npz", **arrays)
    (outdir / "nt_attention_reference.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data")
    main(parser.parse_args().out)
