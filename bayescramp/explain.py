"""Why this posterior: retractions, weights of evidence, data conflict, most probable explanation.

Everything here is a batch operation over the compiled junction tree (:mod:`bayescramp.engine`):
evidence is coded as small integers per finding column (as in :mod:`bayescramp.scoring`), each
distinct evidence pattern is handled once, and the variants a question needs are stacked as
extra rows of one :func:`~bayescramp.engine.propagate_codes` call. There is no Python loop
over rows.

* **Retraction (leave-one-out).** A finding is retracted by replacing its likelihood with
  ones; the target's posterior without it is an exact posterior of the other findings.
* **Weights of evidence, in a fixed order.** Findings enter one at a time, in the model's
  node order (parents before children) unless ``order`` says otherwise. The weight of the
  ``i``-th finding toward the hypothesis ``H`` (e.g. ``magnesium_deficiency = present``) is

  ``W_i = log P(e_i | H, e_1..e_{i-1}) - log P(e_i | not H, e_1..e_{i-1})``
  ``    = logit P(H | e_1..e_i) - logit P(H | e_1..e_{i-1})``  (natural logs),

  so ``logit P(H) + sum_i W_i = logit P(H | e)`` exactly. The split depends on the order
  (a finding's weight is measured *after* the ones before it), as any additive split of a
  non-additive model must. The order-free companion ``weight_given_rest`` is the weight of
  a finding given *all* the other findings, ``logit P(H | e) - logit P(H | e without it)``;
  those do not add up in general.
* **Data conflict** (Jensen's measure): ``conflict = log(prod_i P(e_i) / P(e))``; positive
  means the findings are less likely together than if they were independent, i.e. they pull
  against each other (or the case is rare in a way the model does not explain).
* **Most probable explanation**: the jointly most likely states of ``targets`` (default: the
  model's default targets) given the evidence, by the engine's max-product (the other nodes
  summed out).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list, renamed
from ._errors import InputError, one_of
from .codebook import Codebook, resolve_codebook
from .engine import TIE_TOLERANCE, CompiledNetwork, propagate, propagate_codes
from .engine import most_probable as engine_most_probable
from .evidence import BatchEvidence, TableEncoder, distinct_rows, impossible_evidence_error
from .scoring import STATUS_IMPOSSIBLE, STATUS_OK, as_evidence, default_targets, target_columns

__all__ = ["explain", "top_findings", "most_probable", "EXPLAIN_COLUMNS", "TIE_TOLERANCE", "RAISE_TOLERANCE"]

#: Columns of the tidy table returned by :func:`explain` (``row`` first for tables).
EXPLAIN_COLUMNS = ["target", "state", "order", "finding", "value", "prior", "posterior", "posterior_without",
                   "change", "weight", "weight_given_rest", "conflict", "status"]
#: A finding "raised" a posterior when retracting it lowers the posterior by more than this (rounding).
RAISE_TOLERANCE = 1e-12
#: Distinct evidence patterns handled per engine call (bounds memory).
_PATTERNS_PER_CHUNK = 4096


def _code(network: CompiledNetwork, evidence: Any, encoder: TableEncoder | None) -> BatchEvidence:
    """The evidence as a batch whose every column has a "no finding" code (to retract findings)."""
    return as_evidence(network, evidence, encoder=encoder, caller="data").with_unobserved()


def _encoder(codebook, encoder: TableEncoder | None) -> TableEncoder | None:
    """The table encoder of a ``codebook=`` (object or path), or the ``encoder`` given (not both)."""
    if codebook is None:
        return encoder
    if encoder is not None:
        raise InputError("codebook and encoder: got both; expected one (the encoder is built from the codebook).")
    return resolve_codebook(codebook).encoder()


def _refuse_impossible_case(coded: BatchEvidence, impossible: np.ndarray) -> None:
    """One case (not a table) whose evidence is impossible is refused, as ``Model.posterior`` does."""
    if coded.case is not None and impossible.any():
        raise impossible_evidence_error(coded.case)


def _hypotheses(network: CompiledNetwork, targets: str | Sequence[str] | None,
                observed: Sequence[str]) -> list[tuple[str, str, int]]:
    """``(column, node, state index)`` per hypothesis: the positive state, or each state of other nodes."""
    if targets is None:
        targets = [t for t in default_targets(network, observed) if t not in set(observed)]
    else:
        targets = as_node_list(targets, argument="targets", caller="explain")
    unknown = [t for t in targets if t not in network.states]
    if unknown:
        raise InputError(f"targets: unknown node {unknown[0]!r}; expected some of {one_of(network.names)}.")
    return target_columns(network, list(targets))


def _order(network: CompiledNetwork, nodes: Sequence[str], order: Sequence[str] | None) -> list[int]:
    """Column positions in the order findings enter the weights of evidence."""
    if order is None:
        rank = {name: k for k, name in enumerate(network.names)}
        return sorted(range(len(nodes)), key=lambda j: (rank[nodes[j]], j))
    order = as_node_list(order, argument="order", caller="explain")
    unknown = [n for n in order if n not in network.states]
    if unknown:
        raise InputError(f"order: unknown node {unknown[0]!r}; expected node names of the model (some of "
                         f"{one_of(network.names)}).")
    missing = [n for n in nodes if n not in order]
    if missing:
        raise InputError(f"order: node {missing[0]!r} has a finding but is not listed; expected every observed node "
                         f"({one_of(dict.fromkeys(nodes))}) in the order.")
    rank = {name: k for k, name in enumerate(order)}
    return sorted(range(len(nodes)), key=lambda j: (rank[nodes[j]], j))


def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def _variants(patterns: np.ndarray, ones: np.ndarray, *, prefixes: bool) -> np.ndarray:
    """Stack the evidence variants of each pattern (columns already in entry order).

    Returns ``[n_variants, n_patterns, n_columns]``: the full evidence, then each column
    retracted, then (with ``prefixes``) the first ``k`` columns only, ``k = 0 .. n_columns - 1``.
    """
    n_patterns, n_columns = patterns.shape
    variants = [patterns]
    for j in range(n_columns):
        retracted = patterns.copy()
        retracted[:, j] = ones[j]
        variants.append(retracted)
    if prefixes:
        for k in range(n_columns):
            prefix = patterns.copy()
            prefix[:, k:] = ones[k:]
            variants.append(prefix)
    return np.stack(variants)


def _propagate_variants(network: CompiledNetwork, coded: BatchEvidence, columns: list[int], patterns: np.ndarray,
                        hypotheses: list[tuple[str, str, int]], *, prefixes: bool) -> tuple[dict, np.ndarray]:
    """P(hypothesis) for every variant of every pattern: ``{column: [n_variants, n_patterns]}`` and log P(e)."""
    ones = coded.unobserved[columns]
    n_variants = 1 + len(columns) + (len(columns) if prefixes else 0)
    probability = {name: np.empty((n_variants, patterns.shape[0])) for name, _, _ in hypotheses}
    log_pe = np.empty(patterns.shape[0])
    targets = list(dict.fromkeys(node for _, node, _ in hypotheses))
    step = max(1, _PATTERNS_PER_CHUNK // max(1, n_variants // 8))
    for start in range(0, patterns.shape[0], step):
        block = patterns[start:start + step]
        stacked = _variants(block, ones, prefixes=prefixes)
        result = propagate_codes(network, coded.with_codes(stacked.reshape(-1, len(columns)), columns=columns),
                                 targets=targets)
        for name, node, k in hypotheses:
            probability[name][:, start:start + block.shape[0]] = result.marginals[node][:, k].reshape(n_variants, -1)
        log_pe[start:start + block.shape[0]] = result.log_evidence_probability[:block.shape[0]]
    return probability, log_pe


def _prior_marginals(network: CompiledNetwork) -> dict[str, np.ndarray]:
    result = propagate(network, BatchEvidence.from_likelihoods({}, n_rows=1))
    return {name: marginal[0] for name, marginal in result.marginals.items()}


@renamed(target="targets")
def explain(network: CompiledNetwork, evidence: Mapping[str, Any] | pd.DataFrame | BatchEvidence, *,
            targets: str | Sequence[str] | None = None, order: Sequence[str] | None = None,
            codebook: Codebook | str | os.PathLike | None = None, encoder: TableEncoder | None = None) -> pd.DataFrame:
    """Why each target has its posterior: per finding, the posterior without it and its weight of evidence.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : mapping or DataFrame
        One case (node -> state, set of states, or ``{state: likelihood}``) or a table whose
        columns named like nodes are evidence (blank = no finding).
    targets : str or sequence of str, optional
        Nodes to explain; default the model's targets that are not themselves observed. The
        hypothesis is the positive state (``meta.positive_states``) of a two-state node, each
        state for other nodes. (``target=`` is its deprecated spelling.)
    order : sequence of str, optional
        The order findings enter the weights of evidence; default the model's node order
        (parents before children: diuretic, then symptoms, then cramp timing).
    codebook : Codebook or path, optional
        Maps a table's survey columns and codes to nodes and states (:func:`bayescramp.load_codebook`).
    encoder : callable, optional
        An encoder already built from a codebook (``codebook.encoder()``); give this or ``codebook``.

    Returns
    -------
    DataFrame
        One row per (row, target, finding), findings in entry order (tables add a first
        column ``row`` holding the input index label, and the table's index holds the input
        row's index entry, levels and names kept; rows without findings have no lines):

        - ``target``, ``state``: the hypothesis ``target = state``;
        - ``order``: 1-based position of the finding in the entry order;
        - ``finding``, ``value``: the node and what was observed;
        - ``prior``, ``posterior``: P(hypothesis) before any finding and given all of them;
        - ``posterior_without``: given every finding but this one (retraction);
        - ``change``: ``posterior - posterior_without`` (positive: this finding raised it);
        - ``weight``: sequential weight of evidence (natural log), so that
          ``logit(prior) + sum(weight) = logit(posterior)`` per row and target;
        - ``weight_given_rest``: ``logit(posterior) - logit(posterior_without)``, the
          log-likelihood ratio of the finding given all the others (order-free, not additive);
        - ``conflict``: ``log(prod P(e_i) / P(e))`` of the row (positive: findings conflict);
        - ``status``: ``ok``, or ``impossible_evidence`` for a table row whose evidence has
          probability zero (its posteriors, weights and conflict are NaN).

        Weights are infinite or NaN where a hypothesis becomes certain.

    Raises
    ------
    EvidenceError
        One case (a mapping) whose evidence is impossible, as :meth:`bayescramp.Model.posterior`.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> table = explain(network, {"diuretic": "thiazide", "cramp_timing": "night"}, targets="magnesium_deficiency")
    >>> table["finding"].tolist()
    ['diuretic', 'cramp_timing']
    >>> from scipy.special import logit
    >>> bool(np.isclose(logit(table["prior"].iloc[0]) + table["weight"].sum(), logit(table["posterior"].iloc[0])))
    True
    """
    coded = _code(network, evidence, _encoder(codebook, encoder))
    is_table = coded.case is None
    hypotheses = _hypotheses(network, targets, coded.nodes)
    columns = _order(network, coded.nodes, order)
    patterns, inverse = distinct_rows(coded.codes[:, columns])
    if coded.n_rows == 0 or not columns:
        return pd.DataFrame(columns=(["row"] if is_table else []) + EXPLAIN_COLUMNS,
                            index=coded.labels[:0] if is_table else None)
    probability, log_pe = _propagate_variants(network, coded, columns, patterns, hypotheses, prefixes=True)
    _refuse_impossible_case(coded, np.isneginf(log_pe))
    n_columns = len(columns)
    ones = coded.unobserved[columns]
    finding = patterns != ones                                   # [n_patterns, n_columns]
    priors = _prior_marginals(network)
    log_marginal = np.zeros(patterns.shape)
    for position, j in enumerate(columns):
        vectors = np.asarray(coded.alphabets[j].vectors, dtype=float)
        with np.errstate(divide="ignore"):
            log_marginal[:, position] = np.log(vectors @ priors[coded.nodes[j]])[patterns[:, position]]
    with np.errstate(invalid="ignore"):
        conflict = np.where(np.isfinite(log_pe), (log_marginal * finding).sum(axis=1) - log_pe, np.nan)

    row_of, position = np.nonzero(finding[inverse])              # row-major: row, then entry order
    pattern_of = inverse[row_of]
    values = _labels(coded, columns, patterns, pattern_of, position)
    finding_names = np.asarray([coded.nodes[j] for j in columns], dtype=object)[position]
    entry = np.cumsum(finding, axis=1)                           # 1-based rank among the row's findings
    parts = []
    for name, node, k in hypotheses:
        p = probability[name]
        full = p[0]
        retracted = p[1:1 + n_columns].T                         # [n_patterns, n_columns]
        prefix = np.vstack([p[1 + n_columns:], full[None]]).T    # [n_patterns, n_columns + 1]
        with np.errstate(invalid="ignore"):
            weight = np.diff(_logit(prefix), axis=1)
            given_rest = _logit(full)[:, None] - _logit(retracted)
        part = {
            "target": np.full(len(row_of), node, dtype=object),
            "state": np.full(len(row_of), network.states[node][k], dtype=object),
            "order": entry[pattern_of, position],
            "finding": finding_names,
            "value": values,
            "prior": prefix[pattern_of, 0],
            "posterior": full[pattern_of],
            "posterior_without": retracted[pattern_of, position],
            "change": full[pattern_of] - retracted[pattern_of, position],
            "weight": weight[pattern_of, position],
            "weight_given_rest": given_rest[pattern_of, position],
            "conflict": conflict[pattern_of],
            "status": np.where(np.isneginf(log_pe), STATUS_IMPOSSIBLE, STATUS_OK).astype(object)[pattern_of],
        }
        if is_table:
            part = {"row": coded.labels.to_numpy()[row_of], **part}
        parts.append(pd.DataFrame(part))
    table = pd.concat(parts, ignore_index=True)
    rows = np.tile(row_of, len(parts))
    hypothesis_rank = np.repeat(np.arange(len(parts)), len(row_of))
    entry_order = np.lexsort((table["order"].to_numpy(), hypothesis_rank, rows))
    table = table.iloc[entry_order].reset_index(drop=True)
    if is_table:
        table.index = coded.labels[rows[entry_order]]
    return table


def _labels(coded: BatchEvidence, columns: list[int], patterns: np.ndarray, pattern_of: np.ndarray,
            position: np.ndarray) -> np.ndarray:
    """What was observed, as the alphabet's label of each finding's code."""
    values = np.empty(len(position), dtype=object)
    for pos, j in enumerate(columns):
        at = position == pos
        values[at] = np.asarray(coded.alphabets[j].labels, dtype=object)[patterns[pattern_of[at], pos]]
    return values


@renamed(target="targets")
def top_findings(network: CompiledNetwork, evidence: Mapping[str, Any] | pd.DataFrame | BatchEvidence, *,
                 targets: str | Sequence[str] | None = None, codebook: Codebook | str | os.PathLike | None = None,
                 encoder: TableEncoder | None = None) -> pd.DataFrame:
    """Per row and target, the finding whose retraction lowers the posterior most (the one that raised it most).

    Parameters
    ----------
    network : CompiledNetwork
    evidence : mapping or DataFrame
        As for :func:`explain`.
    targets : str or sequence of str, optional
        Default: the model's targets not themselves observed. (``target=`` is its deprecated spelling.)
    codebook : Codebook or path, optional
        As for :func:`explain`.
    encoder : callable, optional
        An encoder already built from a codebook; give this or ``codebook``.

    Returns
    -------
    DataFrame
        One row per input row (same index), one column ``top_finding_<node>`` per target
        (``top_finding_<node>__<state>`` for nodes without a positive state) holding the
        node name of the finding with the largest ``posterior - posterior_without`` above
        :data:`RAISE_TOLERANCE`,
        or missing (NaN) when no finding raised the posterior (or the evidence is impossible). Ties go
        to the earlier finding in the model's node order.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> frame = pd.DataFrame({"diuretic": ["thiazide", "none"], "cramp_timing": ["night", None]})
    >>> top = top_findings(compile_spec(load_spec()), frame, targets="potassium_deficiency")
    >>> top["top_finding_potassium_deficiency"].tolist()
    ['diuretic', nan]
    """
    coded = _code(network, evidence, _encoder(codebook, encoder))
    hypotheses = _hypotheses(network, targets, coded.nodes)
    columns = _order(network, coded.nodes, None)
    names = ["top_finding_" + name[len("p_"):] for name, _, _ in hypotheses]
    if coded.n_rows == 0 or not columns:
        return pd.DataFrame({name: np.full(coded.n_rows, None, dtype=object) for name in names}, index=coded.labels)
    patterns, inverse = distinct_rows(coded.codes[:, columns])
    probability, _ = _propagate_variants(network, coded, columns, patterns, hypotheses, prefixes=False)
    ones = coded.unobserved[columns]
    finding = patterns != ones
    finding_names = np.asarray([coded.nodes[j] for j in columns] + [None], dtype=object)
    result = {}
    for (name, _, _), column in zip(hypotheses, names):
        p = probability[name]
        change = np.where(finding, p[0][:, None] - p[1:].T, -np.inf)
        change = np.where(np.isnan(change), -np.inf, change)
        best = np.argmax(change, axis=1)
        raised = np.take_along_axis(change, best[:, None], axis=1)[:, 0] > RAISE_TOLERANCE
        best = np.where(raised, best, len(columns))
        result[column] = finding_names[best][inverse]
    return pd.DataFrame(result, index=coded.labels)


@renamed(over="targets")
def most_probable(network: CompiledNetwork, evidence: Mapping[str, Any] | pd.DataFrame | BatchEvidence, *,
                  targets: str | Sequence[str] | None = None, codebook: Codebook | str | os.PathLike | None = None,
                  encoder: TableEncoder | None = None) -> pd.DataFrame:
    """The jointly most likely states of ``targets`` given the evidence, and their probability, per row.

    The engine's max-product (:func:`bayescramp.engine.most_probable`) sums out every other
    node and maximises over ``targets``, once per distinct evidence pattern: one pass, however
    many joint configurations ``targets`` has.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : mapping or DataFrame
        One case or a table, as for :func:`explain`.
    targets : str or sequence of str, optional
        The nodes explained jointly; default the model's default targets (``meta.targets``).
        (``over=`` is its deprecated spelling.)
    codebook : Codebook or path, optional
        As for :func:`explain`.
    encoder : callable, optional
        An encoder already built from a codebook; give this or ``codebook``.

    Returns
    -------
    DataFrame
        Same index as the input rows (one row for a case): one column per ``targets`` node with
        its state in the most probable configuration, ``probability`` = P(config | e), and
        ``status`` (``ok`` or ``impossible_evidence``, whose states are missing and probability NaN).

    Raises
    ------
    EvidenceError
        One case (a mapping) whose evidence is impossible, as :meth:`bayescramp.Model.posterior`.

    Notes
    -----
    Ties: configurations whose ``P(config, e)`` is within a relative :data:`TIE_TOLERANCE` of
    the largest count as tied, and the first in enumeration order wins. Enumeration order is
    ``itertools.product`` over the ``targets`` nodes in the order given, each node's states in
    their declared order (the last node varies fastest); for deficiency nodes ``absent``
    comes before ``present``, so ties resolve toward fewer deficiencies listed last.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> best = most_probable(compile_spec(load_spec()), {"pale_skin": "yes", "fatigue": "yes"},
    ...                      targets=["iron_deficiency", "anemia"])
    >>> best[["iron_deficiency", "anemia"]].iloc[0].tolist()
    ['absent', 'absent']
    """
    coded = _code(network, evidence, _encoder(codebook, encoder))
    over = network.info.default_targets() if targets is None else targets
    over = as_node_list(over, argument="targets", caller="most_probable")
    unknown = [n for n in over if n not in network.states]
    if unknown:
        raise InputError(f"targets: unknown node {unknown[0]!r}; expected some of {one_of(network.names)}.")
    if len(set(over)) != len(over) or not over:
        raise InputError(f"targets: got {over!r}; expected one or more distinct node names.")
    patterns, inverse = coded.distinct()
    if coded.n_rows == 0:
        patterns = coded
    best = engine_most_probable(network, patterns, over)
    possible = np.isfinite(best.log_joint)
    _refuse_impossible_case(coded, ~possible)
    columns = {}
    for k, node in enumerate(over):
        states = np.asarray(network.states[node] + (None,), dtype=object)
        columns[node] = states[np.where(possible, best.states[:, k], len(network.states[node]))][inverse]
    columns["probability"] = best.probability[inverse]
    columns["status"] = np.where(possible, STATUS_OK, STATUS_IMPOSSIBLE)[inverse].astype(object)
    return pd.DataFrame(columns, index=coded.labels)
