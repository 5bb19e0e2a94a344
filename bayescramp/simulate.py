"""Vectorised forward sampling of a cohort from a compiled network."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ._arguments import as_flag, as_fraction, as_generator
from ._errors import InputError
from .engine import CompiledNetwork

__all__ = ["sample_codes", "simulate_cohort"]


def sample_codes(network: CompiledNetwork, n_rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw ``n_rows`` joint samples; return node -> state index array ``[n_rows]``.

    Nodes are sampled in topological order; each node's CPD row is picked by its parents'
    sampled states and one uniform draw per row is compared with the row's cumulative
    probabilities. No Python loop over rows.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> draws = sample_codes(compile_spec(load_spec()), 5, np.random.default_rng(0))
    >>> draws["leg_cramps"].shape
    (5,)
    """
    sampled: dict[str, np.ndarray] = {}
    for name in network.names:
        table = network.tables[name]
        parent_codes: Sequence[np.ndarray] = [sampled[p] for p in network.parents[name]]
        rows = table[tuple(parent_codes)] if parent_codes else np.broadcast_to(table, (n_rows, table.shape[-1]))
        cumulative = np.cumsum(rows, axis=1)
        uniform = rng.random(n_rows) * cumulative[:, -1]
        codes = (uniform[:, None] >= cumulative).sum(axis=1)
        sampled[name] = np.minimum(codes, table.shape[-1] - 1)
    return sampled


def simulate_cohort(network: CompiledNetwork, n: int, *, rng: np.random.Generator | int | None = None,
                    missing: float = 0.0, truth: bool = False) -> pd.DataFrame:
    """A simulated survey: the observable nodes' sampled states, blanked at random (:meth:`bayescramp.Model.simulate`).

    Columns are the network's observable nodes (``network.info.observable``), then, with
    ``truth``, every other node (never blanked). Each evidence cell is set to None with
    probability ``missing``; the index is ``0 .. n-1``.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> cohort = simulate_cohort(compile_spec(load_spec()), 4, rng=0, missing=0.5)
    >>> cohort.shape[0], bool(cohort.isna().any().any())
    (4, True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"simulate: n got {n!r}; expected a non-negative whole number.")
    missing = as_fraction(missing, argument="missing", caller="simulate")
    truth = as_flag(truth, argument="truth", caller="simulate")
    rng = as_generator(rng)
    n = int(n)
    codes = sample_codes(network, n, rng)
    observed = list(network.info.observable)
    columns = {}
    for node in observed:
        values = np.asarray(network.states[node], dtype=object)[codes[node]]
        if missing > 0:
            values[rng.random(n) < missing] = None
        columns[node] = values
    if truth:
        for node in network.names:
            if node not in observed:
                columns[node] = np.asarray(network.states[node], dtype=object)[codes[node]]
    return pd.DataFrame(columns, index=pd.RangeIndex(n))
