"""Architectures as data: compiled network plans and the per-layer kernel rules.

:mod:`~sklearn_ntk.arch.plan` validates a list of layers and infers shapes and requirements;
:mod:`~sklearn_ntk.arch.rules` holds the kernel state and one pure function per layer.
"""
