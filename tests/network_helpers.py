"""Shared helpers of the NetworkKernel tests: the small layer language of the stored reference."""

import json
from pathlib import Path

import numpy as np

from sklearn_ntk import layers as nl
from sklearn_ntk.activations import LeakyReLU

DATA = Path(__file__).parent / "data"
META = json.loads((DATA / "nt_arch_reference.json").read_text())
ARRAYS = np.load(DATA / "nt_arch_reference.npz")

_ACTS = {"leaky_relu": lambda: LeakyReLU(0.1)}
_LAYERS = {
    "Dense": nl.Dense,
    "Conv": nl.Conv,
    "AvgPool": nl.AvgPool,
    "GlobalAvgPool": nl.GlobalAvgPool,
    "GlobalSumPool": nl.GlobalSumPool,
    "Flatten": nl.Flatten,
    "LayerNorm": nl.LayerNorm,
    "FanOut": nl.FanOut,
    "FanInSum": nl.FanInSum,
}


def build(entries):
    """Translate the stored layer language into sklearn_ntk layers."""
    out = []
    for e in entries:
        if isinstance(e, str):
            out.append(_ACTS[e]() if e in _ACTS else e)
            continue
        name, arg = e
        if name == "Residual":
            out.append(nl.Residual(*build(arg)))
        elif name == "parallel":
            out.append(nl.parallel(*[nl.serial(*build(b)) for b in arg]))
        else:
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in arg.items()}
            out.append(_LAYERS[name](**kw))
    return out
