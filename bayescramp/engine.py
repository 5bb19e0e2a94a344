"""Batched exact inference: a junction tree compiled once, propagated over many rows at once.

The network is compiled (moralised, triangulated by min-fill, arranged as a junction tree)
once. Evidence for a batch is one likelihood array ``[n_rows, n_states]`` per observed node: a
hard finding is one-hot, a blank is all ones, a set of states is an indicator, soft evidence
is any non-negative vector. One collect and one distribute pass (Shafer-Shenoy) over the
batch give every node's posterior marginal and ``P(e)`` per row; there is no Python loop over
rows. Messages are rescaled per row and the scale factors kept in log space, so ``P(e)`` far
below 1e-300 still gives correct posteriors.

Everything that propagates lives here (implemented in :mod:`bayescramp.inference`):

* :func:`propagate` — posterior marginals, ``P(e)``, family posteriors, optionally with
  per-row CPDs (parameter draws); :func:`propagate_codes` scores each distinct coded row once;
* :func:`propagate_draws` — posteriors of every row under every draw of the CPDs (credible
  intervals), a rows x draws batch in which drawn CPDs are shared by every row;
* :func:`cpt_derivatives` — ``∂P(e)/∂θ`` and ``∂P(y, e)/∂θ`` for every CPT entry (sensitivity);
* :func:`most_probable` — max-product for the most probable joint states of some nodes.

When nodes hang off a *core* (the default model's symptoms off its diuretic, deficiencies and
anaemia), a fast path turns each finding into one small matrix product and runs a junction
tree of the core alone (:mod:`bayescramp.inference.core`).

Evidence comes in one shape, :class:`bayescramp.evidence.BatchEvidence` (a likelihood per row
and observed node, as codes into per-node alphabets); every entry point takes it. The
engine's own code is numpy only: no pgmpy, no pandas.
"""

from __future__ import annotations

from .inference.graph import absorbed_nodes
from .inference.network import (
    CORE_BLOCK_ROWS,
    CompiledNetwork,
    Derivatives,
    MostProbable,
    Propagation,
    compile_network,
    compile_spec,
    cpt_derivatives,
    distinct_rows,
    most_probable,
    propagate,
    propagate_codes,
    propagate_draws,
)
from .inference.tree import TIE_TOLERANCE

__all__ = ["CompiledNetwork", "Propagation", "Derivatives", "MostProbable", "compile_spec", "compile_network",
           "propagate", "propagate_codes", "propagate_draws", "cpt_derivatives", "most_probable", "absorbed_nodes",
           "distinct_rows", "CORE_BLOCK_ROWS", "TIE_TOLERANCE"]
