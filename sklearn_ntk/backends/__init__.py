"""How a kernel state is pushed through a network: evaluators of the layer recursion.

``fused`` is the compiled single-pass evaluator of plain fully-connected networks.
"""
