"""Shared by the twin tests: the neural-tangents reference data and its architecture specs.

``tests/data/nt_twin_reference.{json,npz}`` are written by
``benchmarks/nt_reference/make_twin_reference.py`` (format in its docstring); a spec is
translated here into ``sklearn_ntk.layers``.
"""

import json
from pathlib import Path

import numpy as np

from sklearn_ntk import layers as nl

DATA = Path(__file__).resolve().parent / "data"
META = json.loads((DATA / "nt_twin_reference.json").read_text())
ARRAYS = np.load(DATA / "nt_twin_reference.npz")


def to_layers(spec):
    """sklearn_ntk.layers list of a neutral spec (see the generator's docstring)."""
    out = []
    for entry in spec:
        if isinstance(entry, str):
            out.append(entry)
            continue
        name, kw = entry
        if name == "parallel":
            out.append(nl.parallel(*[to_layers(branch) for branch in kw]))
            continue
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
        out.append(getattr(nl, name)(**kw))
    return out


def case(group, key):
    """(layers, input_shape, weight_std, bias_std) of a reference architecture."""
    meta = META[group][key]
    return to_layers(meta["spec"]), tuple(meta["input_shape"]), meta["weight_std"], meta["bias_std"]
