"""Posteriors as users read them: one case (:class:`Posterior`) or a table (one row per input row).

:func:`case_posterior` and :func:`score_table` are what :meth:`bayescramp.Model.posterior` and
:meth:`bayescramp.Model.score` do: evidence in, the engine's exact marginals out, with
credible bounds over parameter uncertainty when asked for (:mod:`bayescramp.uncertainty`).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list
from ._errors import EvidenceError, InputError, one_of
from .codebook import Codebook, resolve_codebook, table_encoder
from .engine import CompiledNetwork, propagate
from .evidence import BatchEvidence, case_evidence, impossible_evidence_error
from .scoring import score_frame
from .spec import Spec

__all__ = ["Posterior", "case_posterior", "prior_marginals", "score_table", "node_states"]


class Posterior(Mapping[str, pd.Series]):
    """Posterior marginals of one case: ``result["potassium_deficiency"]["present"]``.

    Attributes
    ----------
    evidence_probability : float
        ``P(e)``, the probability of the evidence under the model.
    log_evidence_probability : float
        ``log P(e)`` (exact even where ``P(e)`` underflows).
    evidence : dict
        The evidence as given.
    intervals : dict or None
        Node -> DataFrame (index: states; columns ``lower``, ``upper``): credible bounds over
        parameter uncertainty, when asked for (``Model.posterior(..., interval=0.9)``).
    """

    def __init__(self, marginals: Mapping[str, pd.Series], log_evidence_probability: float,
                 evidence: Mapping[str, Any], priors: Mapping[str, pd.Series] | None = None,
                 intervals: Mapping[str, pd.DataFrame] | None = None):
        self.intervals = dict(intervals) if intervals is not None else None
        self._marginals = dict(marginals)
        self.log_evidence_probability = float(log_evidence_probability)
        self.evidence_probability = float(np.exp(log_evidence_probability))
        self.evidence = dict(evidence)
        self._priors = priors

    def __getitem__(self, node: str) -> pd.Series:
        if node not in self._marginals:
            raise KeyError(f"{node!r} is not among the posterior's nodes; expected one of "
                           f"{one_of(self._marginals)}.")
        return self._marginals[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._marginals)

    def __len__(self) -> int:
        return len(self._marginals)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``node``, ``state``, ``probability`` (and ``prior`` when known)."""
        rows = []
        for node, series in self._marginals.items():
            for state, probability in series.items():
                row = {"node": node, "state": state, "probability": float(probability)}
                if self._priors is not None:
                    row["prior"] = float(self._priors[node][state])
                if self.intervals is not None:
                    row["lower"] = float(self.intervals[node].loc[state, "lower"])
                    row["upper"] = float(self.intervals[node].loc[state, "upper"])
                rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        lines = [f"Posterior(P(e) = {self.evidence_probability:.6g})"]
        for node, series in self._marginals.items():
            lines.append(f"  {node}: " + ", ".join(f"{s}={p:.4f}" for s, p in series.items()))
        return "\n".join(lines)


def node_states(network: CompiledNetwork, node: str) -> tuple[str, ...]:
    """The states of ``node``; an unknown node is an :class:`EvidenceError` listing the known ones.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> sorted(node_states(compile_spec(load_spec()), "leg_cramps"))
    ['no', 'yes']
    """
    if not isinstance(node, str) or node not in network.states:
        raise EvidenceError(f"unknown node {node!r}; expected one of {one_of(network.names)}.")
    return network.states[node]


def prior_marginals(network: CompiledNetwork) -> dict[str, pd.Series]:
    """Every node's marginal with no evidence, as Series over its states.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> round(float(prior_marginals(compile_spec(load_spec()))["diuretic"].sum()), 12)
    1.0
    """
    result = propagate(network, BatchEvidence.from_likelihoods({}, n_rows=1))
    return {n: pd.Series(result.marginals[n][0], index=list(network.states[n]), name=n) for n in network.names}


def case_posterior(spec: Spec, network: CompiledNetwork, evidence: Mapping[str, Any] | None = None, *,
                   targets: str | Sequence[str] | None = None, interval: float | None = None, n_draws: int = 1000,
                   rng: np.random.Generator | int | None = None,
                   priors: Mapping[str, pd.Series] | None = None) -> Posterior:
    """Exact posterior marginals for one case (see :meth:`bayescramp.Model.posterior` for the arguments).

    ``priors`` (from :func:`prior_marginals`) are attached for :meth:`Posterior.to_frame`; they are
    computed when not given.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> result = case_posterior(spec, compile_spec(spec), {"leg_cramps": "yes"}, targets="fatigue")
    >>> list(result)
    ['fatigue']
    """
    evidence = case_evidence(evidence)
    batch = BatchEvidence.from_case(network.states, evidence)
    if targets is None:
        hard = {k for k, v in evidence.items() if isinstance(v, str)}
        targets = [n for n in network.names if n not in hard]
    else:
        targets = as_node_list(targets, argument="targets", caller="posterior")
        for node in targets:
            node_states(network, node)
    result = propagate(network, batch, targets=targets)
    if result.impossible[0]:
        raise impossible_evidence_error(evidence)
    marginals = {t: pd.Series(result.marginals[t][0], index=list(network.states[t]), name=t) for t in targets}
    intervals = None
    if interval is not None:
        from .uncertainty import case_intervals

        intervals = case_intervals(spec, network, batch, targets, interval=interval, n_draws=n_draws, rng=rng)
    return Posterior(marginals, result.log_evidence_probability[0], evidence,
                     priors=prior_marginals(network) if priors is None else priors, intervals=intervals)


def score_table(spec: Spec, network: CompiledNetwork, data: pd.DataFrame, *,
                targets: str | Sequence[str] | None = None, codebook: Codebook | str | None = None,
                on_invalid: str = "error", interval: float | None = None, n_draws: int = 1000,
                rng: np.random.Generator | int | None = None, unmatched: str = "warn") -> pd.DataFrame:
    """Posteriors for every row of a table, index kept (see :meth:`bayescramp.Model.score` for the arguments).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> frame = pd.DataFrame({"leg_cramps": ["yes", None]}, index=["a", "b"])
    >>> score_table(spec, compile_spec(spec), frame, targets="magnesium_deficiency").index.tolist()
    ['a', 'b']
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"score: got {type(data).__name__}; expected a pandas DataFrame (use score_file for "
                         "CSV or Parquet files).")
    encoder = table_encoder(resolve_codebook(codebook), unmatched=unmatched, require_evidence=False)
    scored = score_frame(network, data, targets=targets, encoder=encoder, on_invalid=on_invalid)
    if interval is None:
        return scored
    from .uncertainty import add_interval_columns, score_intervals

    return add_interval_columns(scored, score_intervals(spec, network, data, targets=targets, encoder=encoder,
                                                        interval=interval, n_draws=n_draws, rng=rng))
