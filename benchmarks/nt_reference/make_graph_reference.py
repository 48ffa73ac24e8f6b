"""Generate neural-tangents 0.6.5 reference values for graph networks (``layers.Aggregate``).

Not part of the package, never run in CI; needs the separate environment with neural-tangents 0.6.5
(see ``make_reference.py``)::

    ntvenv/bin/python benchmarks/nt_reference/make_graph_reference.py [--out tests/data]

It writes ``tests/data/nt_graph_reference.npz`` / ``.json``: graphs ``A_i`` (adjacency, directed and
weighted, some self-loops), ``H_i`` (node features) of different sizes, and for every network of
``NETWORKS`` (the layer language of ``make_arch_reference.py``) the NTK and NNGP between every pair
of graphs, one ``kernel_fn(x1, x2, pattern=(A1, A2))`` call per pair (neural-tangents accepts two
graphs of different sizes in one call; the batch dimension is 1).
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
from make_arch_reference import CURRENT, D, to_stax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
AGG, GSP, GAP, LN = ["Aggregate", {}], ["GlobalSumPool", {}], ["GlobalAvgPool", {}], ["LayerNorm", {}]
SQ2 = float(np.sqrt(2.0))

# name -> (weight_std, bias_std, layers)
NETWORKS = {
    "agg_sum": (1.3, 0.2, [D(), "relu", AGG, D(), "relu", AGG, GSP, D()]),
    "agg_avg": (1.2, 0.3, [AGG, D(), "erf", AGG, D(), "relu", GAP, D()]),
    "gntk_2blocks": (SQ2, 0.0, [AGG, D(), "relu", D(), "relu", AGG, D(), "relu", D(), "relu",
                                GSP, D()]),
    "gntk_jk": (SQ2, 0.1, [AGG, D(), "relu", ["FanOut", {"num": 2}],
                           ["parallel", [[GSP, D()], [AGG, D(), "relu", GSP, D()]]],
                           ["FanInSum", {}]]),
    "agg_layernorm": (1.4, 0.2, [D(), "relu", AGG, D(), LN, "gelu", GAP, D()]),
    "agg_residual": (1.1, 0.1, [D(), ["Residual", ["relu", AGG, D()]], "relu", GSP, D()]),
}


def graphs():
    """Seven graphs with 1 to 7 nodes, C = 3: directed weighted edges, zero features, a duplicate."""
    rng = np.random.default_rng(20261201)
    sizes = [4, 6, 1, 5, 7, 4, 3]
    out = []
    for i, n in enumerate(sizes):
        A = (rng.random((n, n)) < 0.45) * rng.uniform(0.5, 1.5, (n, n))
        if i % 2 == 0:
            A[np.diag_indices(n)] = 1.0  # self-loops on some graphs
        H = rng.standard_normal((n, 3))
        out.append([A, H])
    out[2][1] = np.zeros((1, 3))  # a one-node graph with zero features
    out[5] = [out[0][0].copy(), out[0][1].copy()]  # a duplicate of graph 0
    return out


def main(outdir):
    gs = graphs()
    arrays = {}
    for i, (A, H) in enumerate(gs):
        arrays[f"A_{i}"], arrays[f"H_{i}"] = A, H
    meta = {
        "format": "graphs A_i (adjacency, A[i, j] = weight of the edge i -> j), H_i (nodes x 3); "
        "for network N: N_ntk, N_nngp of shape (n_graphs, n_graphs); graph 5 duplicates graph 0, "
        "graph 2 has one node and zero features",
        "neural_tangents_version": "0.6.5", "jax_version": jax.__version__,
        "n_graphs": len(gs), "networks": {},
    }
    n = len(gs)
    for name, (w, b, entries) in NETWORKS.items():
        CURRENT.update(w=w, b=b)
        kfn = jax.jit(to_stax(entries)[2], static_argnames=("get",))
        ntk, nngp = np.zeros((n, n)), np.zeros((n, n))
        for i, (A1, H1) in enumerate(gs):
            for j, (A2, H2) in enumerate(gs):
                k = kfn(H1[None], H2[None], get=("ntk", "nngp"), pattern=(A1[None], A2[None]))
                ntk[i, j], nngp[i, j] = float(k.ntk[0, 0]), float(k.nngp[0, 0])
        arrays[f"{name}_ntk"], arrays[f"{name}_nngp"] = ntk, nngp
        meta["networks"][name] = {"weight_std": w, "bias_std": b, "layers": entries,
                                  "finite": bool(np.isfinite(ntk).all() and np.isfinite(nngp).all())}
        print(f"{name:16s} ntk00={ntk[0, 0]:.6g} sym={np.abs(ntk - ntk.T).max():.2e}")
    np.savez_compressed(outdir / "nt_graph_reference.npz", **arrays)
    (outdir / "nt_graph_reference.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data")
    main(parser.parse_args().out)
