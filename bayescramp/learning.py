"""Learning from cohorts: the priors updated by data, with blanks and hidden nodes.

:func:`fit` takes a table (a DataFrame, or a CSV/Parquet file streamed in chunks), counts its
distinct evidence patterns once, and updates every free parameter of the model:

- **Prior pseudo-counts from ranges.** Each parameter's prior is the Beta that the credible
  intervals use (:func:`bayescramp.uncertainty.beta_parameters`: mean = value, central 95% as
  wide as the range). Its concentration κ = α + β becomes κ pseudo-observations placed at the
  prior value: κ·value "yes" and κ·(1 − value) "no" for a noisy-OR leak or link. A table row is
  one Dirichlet over its free states (the free explicit entries and the ``remainder``) with
  pseudo-count ``κ_row · value_j / (free mass)`` per state, where ``κ_row`` is the smallest κ of
  the row's free entries (no entry is held tighter than its own range says) and the free mass is
  1 minus the row's fixed entries. ``prior_strength=N`` uses κ = N for every parameter instead
  (``0``: maximum likelihood); a mapping ``{node: N}`` does so node by node.
- **Fixed parameters** stay as they are: an empty range (``low == high``, e.g. a structural zero
  ``[0, 0]``) or ``distribution = { kind = "fixed" }``. With a numeric ``prior_strength`` the
  ranges are ignored and only structural values (``[0, 0]``, ``[1, 1]``) and ``kind = "fixed"``
  stay fixed (imported BIF networks carry no ranges: fit them with a number).
- **Fitted value = posterior mean.** On complete data a table row's fit is the Dirichlet
  posterior mean ``(n_j + α_j) / Σ (n + α)`` (times the free mass): exactly pgmpy's
  ``BayesianEstimator``; ``prior_strength=0`` gives the maximum-likelihood estimate.
- **Blanks and hidden nodes: EM.** The objective is ``J(θ) = log P(data | θ) + Σ α log θ`` (the
  log-likelihood plus the pseudo-counts' log-prior; its maximiser on complete data is the
  posterior mean above). The E-step propagates every distinct evidence pattern once per
  iteration through the batched engine (:func:`bayescramp.engine.propagate` with ``families=``),
  in blocks, weighted by how many rows hold it; patterns that observe every node are counted
  directly. A row informs a node's table only if the node or one of its descendants is observed
  in it (otherwise the table sums out of ``P(e)``), so only those rows' family posteriors enter
  its expected counts. EM never decreases ``J``; it stops when the relative increase
  ``(J_k − J_{k−1}) / |J_k|`` falls below ``tol`` (pyAgrum's "rate" criterion). Restart 0 starts
  from the model's values, restarts 1.. from random draws of each free row and parameter from its
  prior (pseudo-counts raised to at least 1); the restart with the largest ``J`` wins.
- **Noisy-OR nodes keep their kind.** The M-step maximises the expected complete-data
  log-likelihood of the leaky noisy-OR over its family posteriors exactly: in ``t = −log(1 − λ)``
  it is concave, ``Σ_u −m_off(u)·T_u + m_on(u)·log(1 − e^{−T_u})`` with ``T_u`` the sum of the
  active ``t``'s, and Newton's method with backtracking (starting at the current values, so it
  never lowers ``J``) finds the maximum. This is the exact M-step that one step of the
  hidden-cause augmentation (each active cause's inhibitor and the leak latent) only approximates.
- **Intervals.** A table family observed in every row that informs it has the exact Dirichlet
  posterior. Otherwise the covariance is the inverse of the observed information plus the
  pseudo-counts' curvature. A row that observes a node's family contributes that node's exact
  information (its likelihood factorises: no cross terms); where hidden states couple nodes the
  row's information is estimated by the outer product of its score over those nodes (the
  empirical information, Meilijson 1989; Fisher's identity gives each score from the family
  posteriors). Each parameter's posterior is then the Beta with the fitted value as mean and that
  variance, and the interval is its central ``interval`` (default 95%, the reading of a range).
- **Uninformed and non-identifiable parameters.** A parameter whose parent configuration has no
  expected count in rows that inform its node keeps its prior value (status ``uninformed``,
  :class:`UninformedParameterWarning`). A parameter is flagged ``not_identifiable``
  (:class:`NotIdentifiableWarning`) when the observed columns carry less than
  :data:`IDENTIFIABLE_SHARE` (1%) of the information the same rows would carry about it if every
  family were observed (the fraction of observed information of Dempster, Laird & Rubin, each
  from the inverse of its information matrix, so the parameter's partners are profiled out), or
  when restarts that reach an equally good ``J`` disagree about it by more than its interval's
  width (for example swapped labels of a hidden node).

This module works on a :class:`~bayescramp.spec.Spec` and its compiled network; ``Model.fit``
is the user's entry point.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._errors import InputError, one_of
from .codebook import Codebook, check_unique_columns, column_code_maps
from .engine import CompiledNetwork, distinct_rows, propagate
from .evidence import BatchEvidence, encode_codes
from .scoring import MAX_LISTED_PROBLEMS, cell_problems, invalid_error
from .spec import NoisyOrCPD, Parameter, Spec, TableCPD, check, parameters_by_id, replace_parameters
from .survey import _chunks, _located, _row_token, _Source, resolve_codebook
from .tabular import atomic_path
from .uncertainty import DEFAULT_RANGE_COVERAGE, beta_parameters

__all__ = ["fit", "FitResult", "PatternCounts", "count_patterns", "FitWarning", "UninformedParameterWarning",
           "NotIdentifiableWarning", "ImpossibleRowsWarning", "NotConvergedWarning", "IDENTIFIABLE_SHARE",
           "DEFAULT_MAX_ITER", "DEFAULT_TOL", "DEFAULT_RESTARTS"]

#: A parameter is flagged not identifiable below this share of the information fully observed families would give.
IDENTIFIABLE_SHARE = 0.01
DEFAULT_MAX_ITER = 500
DEFAULT_TOL = 1e-6
DEFAULT_RESTARTS = 3
#: Rows read at a time from a file.
DEFAULT_CHUNK_ROWS = 200_000
#: Distinct patterns propagated per engine call.
ENGINE_BLOCK = 2048
#: Below this expected count a parent configuration counts as informed by no row.
MIN_EXPECTED_COUNT = 1e-8
# a free value of exactly 0 or 1 would never move in EM: starting points keep this far from them
_START_MARGIN = 1e-3
_T_MAX = 50.0
#: A fitted value closer than this to 0 (or to 1 for a noisy-OR parameter) counts as on the boundary.
_BOUNDARY = 1e-10

STATUS_FITTED, STATUS_FIXED, STATUS_UNINFORMED, STATUS_NOT_IDENTIFIABLE = (
    "fitted", "fixed", "uninformed", "not_identifiable")
REPORT_COLUMNS = ["id", "node", "kind", "parents", "state", "prior", "prior_low", "prior_high", "fitted", "lower",
                  "upper", "change_in_widths", "expected_count", "prior_count", "information_share", "status", "note"]


class FitWarning(UserWarning):
    """Something about a fit the user should know (base class of the fit warnings)."""


class UninformedParameterWarning(FitWarning):
    """Parameters that no row informs: they keep their prior values."""


class NotIdentifiableWarning(FitWarning):
    """Parameters the observed columns cannot pin down: read their fitted values as prior-driven."""


class ImpossibleRowsWarning(FitWarning):
    """Rows whose evidence the model's fixed parameters rule out: they are left out of the fit."""


class NotConvergedWarning(FitWarning):
    """EM stopped at ``max_iter`` before the objective's relative change fell below ``tol``."""


# ---------------------------------------------------------------------------------------------
# data in: distinct evidence patterns and their counts


@dataclass
class PatternCounts:
    """The distinct evidence patterns of a table and how many rows hold each.

    Attributes
    ----------
    nodes : list of str
        The observed node of each code column.
    alphabets : list of ndarray
        ``alphabets[j][code]`` is the likelihood vector ``[n_states]`` a code of column ``j`` stands for.
    patterns : ndarray of int ``[n_patterns, n_nodes]``
    counts : ndarray ``[n_patterns]``
        Rows holding each pattern.
    source : str
        The file name, or ``"DataFrame"``.
    sha256 : str
        SHA-256 of the file's bytes, or of the DataFrame's contents (pandas row hashes).
    """

    nodes: list[str]
    alphabets: list[np.ndarray]
    patterns: np.ndarray
    counts: np.ndarray
    source: str
    sha256: str

    @property
    def n_rows(self) -> int:
        """Rows counted."""
        return int(round(float(self.counts.sum())))

    @property
    def n_patterns(self) -> int:
        """Distinct patterns."""
        return int(self.patterns.shape[0])


def count_patterns(network: CompiledNetwork, data: pd.DataFrame | str | Path, *,
                   codebook: Codebook | str | Path | None = None,
                   chunk_size: int = DEFAULT_CHUNK_ROWS) -> PatternCounts:
    """Encode a table's evidence and count its distinct patterns (a file is streamed in chunks).

    Parameters
    ----------
    network : CompiledNetwork
    data : DataFrame, or path of a ``.csv``, ``.csv.gz`` or ``.parquet`` file
        Columns named like nodes (or mapped by ``codebook``) are evidence; blank = no finding.
    codebook : Codebook or path, optional
    chunk_size : int
        Rows read at a time from a file; memory holds one chunk and the distinct patterns.

    Returns
    -------
    PatternCounts

    Raises
    ------
    InputError
        No column informs the model, or cells that cannot be read (the first
        :data:`~bayescramp.scoring.MAX_LISTED_PROBLEMS` listed with their rows).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> frame = pd.DataFrame({"fatigue": ["yes", "no", "yes"], "id": [1, 2, 3]})
    >>> counts = count_patterns(compile_spec(load_spec()), frame)
    >>> counts.patterns.tolist(), counts.counts.tolist()
    ([[0], [1]], [1.0, 2.0])
    """
    book = resolve_codebook(codebook)
    if isinstance(data, pd.DataFrame):
        return _frame_patterns(network, data, book)
    if isinstance(data, (str, Path)):
        return _file_patterns(network, Path(data), book, chunk_size)
    raise InputError(f"fit: data got {type(data).__name__}; expected a pandas DataFrame or the path of a .csv, "
                     ".csv.gz or .parquet file.")


def _frame_patterns(network: CompiledNetwork, data: pd.DataFrame, book: Codebook | None) -> PatternCounts:
    check_unique_columns([str(c) for c in data.columns], "data")
    maps = column_code_maps(network, [str(c) for c in data.columns], book, source="data")
    encoded = [encode_codes(data[m.column], m) for m in maps]
    listed, n_bad = cell_problems(BatchEvidence.from_columns(encoded, len(data)), source="data",
                                  row_label=lambda r: f"row {data.index[r]!r}")
    if n_bad:
        raise _bad_cells(listed, n_bad)
    codes = np.column_stack([c.codes for c in encoded]) if len(data) else np.zeros((0, len(encoded)), dtype=np.int64)
    sizes = [len(c.alphabet.vectors) for c in encoded]
    patterns, inverse = distinct_rows(codes, sizes)
    counts = np.bincount(inverse, minlength=patterns.shape[0]).astype(float)
    digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes()).hexdigest()
    return PatternCounts(nodes=[c.node for c in encoded], alphabets=[np.asarray(c.alphabet.vectors) for c in encoded],
                         patterns=patterns, counts=counts, source="DataFrame", sha256=digest)


def _file_patterns(network: CompiledNetwork, path: Path, book: Codebook | None, chunk_size: int) -> PatternCounts:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"chunk_size: got {chunk_size!r}; expected a positive number of rows.")
    source = _Source(path)
    maps = column_code_maps(network, source.columns, book, source=str(path))
    wanted = list(dict.fromkeys(m.column for m in maps))
    sizes = [len(m.alphabet.vectors) for m in maps]
    patterns = np.zeros((0, len(maps)), dtype=np.int64)
    counts = np.zeros(0)
    problems: list[str] = []
    n_bad_cells = 0
    offset = 0
    for chunk in _chunks(source.batches(wanted, chunk_size), chunk_size):
        encoded = [encode_codes(chunk.column(m.column), m) for m in maps]
        n_bad = sum(len(c.bad_rows) for c in encoded)
        if n_bad:
            if len(problems) < MAX_LISTED_PROBLEMS:
                listed, _ = cell_problems(BatchEvidence.from_columns(encoded, chunk.num_rows), source=str(path),
                                          row_label=lambda r, offset=offset: _row_token(offset + r))
                problems.extend(listed[:MAX_LISTED_PROBLEMS - len(problems)])
            n_bad_cells += n_bad
        elif not n_bad_cells:
            chunk_patterns, inverse = distinct_rows(np.column_stack([c.codes for c in encoded]), sizes)
            chunk_counts = np.bincount(inverse, minlength=chunk_patterns.shape[0]).astype(float)
            merged, inverse = distinct_rows(np.vstack([patterns, chunk_patterns]), sizes)
            counts = np.bincount(inverse, weights=np.concatenate([counts, chunk_counts]), minlength=merged.shape[0])
            patterns = merged
        offset += chunk.num_rows
    if n_bad_cells:
        raise _bad_cells(_located(problems, source), n_bad_cells)
    return PatternCounts(nodes=[m.node for m in maps], alphabets=[np.asarray(m.alphabet.vectors) for m in maps],
                         patterns=patterns, counts=counts, source=path.name, sha256=_file_sha256(path))


def _bad_cells(listed: list[str], n_bad: int) -> InputError:
    """The error for unreadable cells in a fit, whose advice offers no flag option (a fit uses every row)."""
    return invalid_error(listed, n_bad, advice="Fix them or map them in a codebook (--codebook FILE); a fit uses "
                                               "every row, so it stops rather than skip rows with unreadable cells.")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# the parameters being learned


@dataclass
class _TableNode:
    """A table CPD as arrays over its flattened parent configurations ``u`` and states ``j``."""

    name: str
    shape: tuple[int, ...]          # (*parent_cards, n_states)
    ids: list[list[str | None]]     # [U][k]: parameter id, or None for the remainder state
    prior: np.ndarray               # [U, k] the prior table
    free: np.ndarray                # [U, k] states learned (a row learns two or more, or none)
    alpha: np.ndarray               # [U, k] Dirichlet pseudo-counts of the free states

    @property
    def free_mass(self) -> np.ndarray:
        """``[U]`` probability shared by a row's free states (1 minus its fixed entries)."""
        return np.where(self.free, self.prior, 0.0).sum(axis=1)


@dataclass
class _NoisyOrNode:
    """A leaky noisy-OR: parameter ``p`` (leak first) acts in configuration ``u`` when ``activity[u, p]``."""

    name: str
    shape: tuple[int, ...]
    ids: list[str]
    activity: np.ndarray            # [U, P] 0/1 (the leak's column is all ones)
    prior: np.ndarray               # [P]
    free: np.ndarray                # [P] bool
    a: np.ndarray                   # [P] pseudo-counts "acts"
    b: np.ndarray                   # [P] pseudo-counts "blocked"


def _strength(prior_strength: Any, node: str) -> float | None:
    """The node's pseudo-observation count, or None for "from the ranges"."""
    if isinstance(prior_strength, Mapping):
        value = prior_strength.get(node, "ranges")
    else:
        value = prior_strength
    return None if isinstance(value, str) else float(value)


def _check_strength(prior_strength: Any, spec: Spec) -> None:
    expected = ("expected \"ranges\", a number of pseudo-observations >= 0, or a mapping {node: number or "
                "\"ranges\"}")

    def bad(value: Any) -> bool:
        if isinstance(value, str):
            return value != "ranges"
        return isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0

    if isinstance(prior_strength, Mapping):
        for node, value in prior_strength.items():
            if node not in spec.nodes:
                raise InputError(f"prior_strength: unknown node {node!r}; expected node names among "
                                 f"{one_of(spec.nodes)}.")
            if bad(value):
                raise InputError(f"prior_strength[{node!r}]: got {value!r}; {expected}.")
    elif bad(prior_strength):
        raise InputError(f"prior_strength: got {prior_strength!r}; {expected}.")


def _prior_of(parameter: Parameter, strength: float | None) -> float | None:
    """The parameter's prior concentration κ (pseudo-observations), or None when it is fixed."""
    if (parameter.distribution or {}).get("kind") == "fixed":
        return None
    if strength is not None:
        return None if parameter.low == parameter.high and parameter.value in (0.0, 1.0) else strength
    shapes = beta_parameters(parameter)
    return None if shapes is None else float(shapes[0] + shapes[1])


def _table_node(spec: Spec, name: str, table: np.ndarray, strength: float | None) -> _TableNode:
    node = spec.nodes[name]
    parent_cards = table.shape[:-1]
    k = table.shape[-1]
    n_configs = int(np.prod(parent_cards)) if parent_cards else 1
    ids: list[list[str | None]] = [[None] * k for _ in range(n_configs)]
    free = np.zeros((n_configs, k), dtype=bool)
    alpha = np.zeros((n_configs, k))
    prior = table.reshape(n_configs, k).copy()
    for row in node.cpd.rows:
        index = tuple(spec.nodes[p].states.index(s) for p, s in zip(node.parents, row.when))
        u = int(np.ravel_multi_index(index, parent_cards)) if parent_cards else 0
        concentrations = []
        for j, state in enumerate(node.states):
            parameter = row.probability[state]
            if parameter is None:
                continue
            ids[u][j] = parameter.id
            kappa = _prior_of(parameter, strength)
            if kappa is not None:
                free[u, j] = True
                concentrations.append(kappa)
        remainder = [j for j, s in enumerate(node.states) if row.probability[s] is None]
        if concentrations and remainder:
            free[u, remainder[0]] = True
        mass = prior[u][free[u]].sum()
        if free[u].sum() < 2 or mass <= 1e-12:
            free[u] = False
            continue
        alpha[u, free[u]] = min(concentrations) * prior[u, free[u]] / mass
    return _TableNode(name=name, shape=table.shape, ids=ids, prior=prior, free=free, alpha=alpha)


def _noisy_or_node(spec: Spec, name: str, table: np.ndarray, strength: float | None) -> _NoisyOrNode:
    node = spec.nodes[name]
    cpd: NoisyOrCPD = node.cpd
    parent_cards = table.shape[:-1]
    grid = np.indices(parent_cards).reshape(len(parent_cards), -1) if parent_cards else np.zeros((0, 1), dtype=int)
    parameters = [cpd.leak]
    columns = [np.ones(grid.shape[1])]
    for axis, parent in enumerate(node.parents):
        states = spec.nodes[parent].states
        for state, parameter in cpd.links.get(parent, {}).items():
            parameters.append(parameter)
            columns.append((grid[axis] == states.index(state)).astype(float))
    kappas = [_prior_of(p, strength) for p in parameters]
    free = np.array([k is not None for k in kappas])
    prior = np.array([p.value for p in parameters])
    kappa = np.array([k or 0.0 for k in kappas])
    return _NoisyOrNode(name=name, shape=table.shape, ids=[p.id for p in parameters],
                        activity=np.column_stack(columns), prior=prior, free=free, a=kappa * prior,
                        b=kappa * (1.0 - prior))


def _t_of(probability: np.ndarray) -> np.ndarray:
    """``t = −log(1 − λ)`` (capped so a link of 1 stays finite)."""
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log1p(-np.minimum(probability, 1.0)), _T_MAX)


def _noisy_or_table(node: _NoisyOrNode, values: np.ndarray) -> np.ndarray:
    off = np.exp(-node.activity @ _t_of(values))
    return np.stack([off, 1.0 - off], axis=-1).reshape(node.shape)


# ---------------------------------------------------------------------------------------------
# the noisy-OR M-step: an exact concave maximisation in t = -log(1 - λ)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 − e^{−x})`` for ``x ≥ 0`` (−inf at 0), accurate for small and large ``x``."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x < math.log(2.0), np.log(-np.expm1(-np.minimum(x, math.log(2.0)))),
                        np.log1p(-np.exp(-np.maximum(x, math.log(2.0)))))


def _noisy_or_objective(t, offset, activity, m_off, m_on, a, b) -> float:
    total = offset + activity @ t
    with np.errstate(invalid="ignore"):
        on = np.where(m_on > 0, m_on * _log1mexp(total), 0.0)
        off = np.where(m_off > 0, m_off * total, 0.0)
        prior = np.where(a > 0, a * _log1mexp(t), 0.0)
    value = float(on.sum() - off.sum() + prior.sum() - (b * t).sum())
    return value if math.isfinite(value) else -math.inf


def _noisy_or_maximise(t_start: np.ndarray, offset: np.ndarray, activity: np.ndarray, m_off: np.ndarray,
                       m_on: np.ndarray, a: np.ndarray, b: np.ndarray, *, max_steps: int = 100) -> np.ndarray:
    """Maximise the concave noisy-OR objective over ``t ≥ 0`` by projected Newton steps from ``t_start``.

    Every accepted step raises the objective, so the result is never worse than the start.
    """
    t = np.clip(np.asarray(t_start, dtype=float), 0.0, _T_MAX)
    value = _noisy_or_objective(t, offset, activity, m_off, m_on, a, b)
    for _ in range(max_steps):
        total = offset + activity @ t
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            g_total = np.where(total > 0, 1.0 / np.expm1(total), np.inf)
            g_t = np.where(t > 0, 1.0 / np.expm1(t), np.inf)
        g_total = np.where(m_on > 0, g_total, 0.0)
        g_t = np.where(a > 0, g_t, 0.0)
        gradient = activity.T @ (m_on * g_total - m_off) + a * g_t - b
        curvature_total = m_on * g_total * (1.0 + g_total)
        curvature_t = a * g_t * (1.0 + g_t)
        if not (np.isfinite(gradient).all() and np.isfinite(curvature_total).all() and np.isfinite(curvature_t).all()):
            break
        # variables held at the bound t = 0 where the objective still wants to go down
        held = (t <= 0.0) & (gradient <= 0.0)
        moving = ~held
        if not moving.any():
            break
        hessian = (activity[:, moving].T * curvature_total) @ activity[:, moving] + np.diag(curvature_t[moving])
        hessian += np.eye(hessian.shape[0]) * 1e-12 * max(1.0, float(np.abs(np.diag(hessian)).max(initial=0.0)))
        try:
            direction = np.zeros_like(t)
            direction[moving] = np.linalg.solve(hessian, gradient[moving])
        except np.linalg.LinAlgError:
            direction = np.where(moving, gradient, 0.0)
        if gradient @ direction <= 0:
            direction = np.where(moving, gradient, 0.0)
        step = 1.0
        accepted = False
        while step > 1e-12:
            candidate = np.clip(t + step * direction, 0.0, _T_MAX)
            candidate_value = _noisy_or_objective(candidate, offset, activity, m_off, m_on, a, b)
            if candidate_value >= value:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        change = float(np.abs(candidate - t).max())
        gain = candidate_value - value
        t, value = candidate, candidate_value
        if change < 1e-12 or gain <= 1e-15 * max(1.0, abs(value)):
            break
    return t


# ---------------------------------------------------------------------------------------------
# the EM problem: patterns, weights, and which rows inform which node


class _Problem:
    """Everything fixed during EM: the network, the learnable nodes and the weighted patterns."""

    def __init__(self, spec: Spec, network: CompiledNetwork, data: PatternCounts, prior_strength: Any):
        self.spec = spec
        self.network = network
        self.names = list(network.names)
        self.tables: dict[str, _TableNode] = {}
        self.noisy: dict[str, _NoisyOrNode] = {}
        for name in self.names:
            strength = _strength(prior_strength, name)
            base = network.tables[name]
            if isinstance(spec.nodes[name].cpd, TableCPD):
                self.tables[name] = _table_node(spec, name, base, strength)
            else:
                self.noisy[name] = _noisy_or_node(spec, name, base, strength)
        self.data = data
        n_patterns = data.n_patterns
        index = {n: j for j, n in enumerate(data.nodes)}
        self.likelihood = {node: np.asarray(data.alphabets[j], dtype=float)[data.patterns[:, j]]
                           for j, node in enumerate(data.nodes)}
        observed = {n: np.zeros(n_patterns, dtype=bool) for n in self.names}
        hard_code = {n: np.full(n_patterns, -1) for n in self.names}
        for node, j in index.items():
            vectors = np.asarray(data.alphabets[j], dtype=float)
            blank = np.all(vectors == 1.0, axis=1)
            one_hot = (np.isin(vectors, (0.0, 1.0)).all(axis=1)) & (vectors.sum(axis=1) == 1.0)
            codes = data.patterns[:, j]
            observed[node] = ~blank[codes]
            hard_code[node] = np.where(one_hot[codes], np.argmax(vectors, axis=1)[codes], -1)
        self.observed = observed
        self.hard_code = hard_code
        children: dict[str, list[str]] = {n: [] for n in self.names}
        for name in self.names:
            for parent in network.parents[name]:
                children[parent].append(name)
        self.informed: dict[str, np.ndarray] = {}
        for name in reversed(self.names):
            mask = observed[name].copy()
            for child in children[name]:
                mask |= self.informed[child]
            self.informed[name] = mask
        self.complete = np.ones(n_patterns, dtype=bool)
        for name in self.names:
            self.complete &= hard_code[name] >= 0
        self.weights = np.asarray(data.counts, dtype=float)
        self.family_hard = {name: np.all([hard_code[v] >= 0 for v in (*network.parents[name], name)], axis=0)
                            for name in self.names}

    def learnable(self) -> list[str]:
        """Nodes with at least one free parameter."""
        return [n for n in self.names if (self.tables[n] if n in self.tables else self.noisy[n]).free.any()]

    def flat_config(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Flat family index ``u·k + x`` of hard-observed rows."""
        shape = self.network.tables[name].shape
        codes = [self.hard_code[v][rows] for v in (*self.network.parents[name], name)]
        return np.ravel_multi_index(codes, shape) if codes else np.zeros(int(rows.sum()), dtype=np.int64)

    def drop(self, keep: np.ndarray) -> None:
        """Leave out patterns (impossible ones)."""
        self.weights = np.where(keep, self.weights, 0.0)


@dataclass
class _State:
    """Current values: the learnable nodes' tables ``[*parents, k]`` and the noisy-ORs' parameters."""

    tables: dict[str, np.ndarray]
    noisy: dict[str, np.ndarray]


@dataclass
class _EStep:
    counts: dict[str, np.ndarray]      # node -> [U, k] expected counts from rows informing it
    log_likelihood: float


def _e_step(problem: _Problem, state: _State, nodes: Sequence[str], complete_counts: Mapping[str, np.ndarray]
            ) -> _EStep:
    """Expected family counts over the patterns (complete ones counted directly) and ``log P(data)``."""
    network = problem.network
    weights = problem.weights
    tables = state.tables
    counts = {n: complete_counts[n].copy() for n in nodes}
    log_likelihood = 0.0
    for name, observed in complete_counts.items():
        observed = observed.reshape(-1)
        full = tables.get(name, network.tables[name]).reshape(-1)
        log_likelihood += float(np.where(observed > 0, observed * np.log(np.where(observed > 0, full, 1.0)), 0.0).sum())
    pending = np.flatnonzero((weights > 0) & ~problem.complete)
    per_row_tables = {n: t[None] for n, t in tables.items()}
    for start in range(0, len(pending), ENGINE_BLOCK):
        rows = pending[start:start + ENGINE_BLOCK]
        likelihood = {node: values[rows] for node, values in problem.likelihood.items()}
        wanted = [n for n in nodes if problem.informed[n][rows].any()]
        result = propagate(network, BatchEvidence.from_likelihoods(likelihood, n_rows=len(rows)), targets=[],
                           families=wanted, tables=per_row_tables)
        w = weights[rows]
        log_likelihood += float(np.where(w > 0, w * result.log_evidence_probability, 0.0).sum())
        for name in wanted:
            family = result.families[name].reshape(len(rows), -1)
            effective = np.where(problem.informed[name][rows] & (w > 0), w, 0.0)
            counts[name] += (effective @ np.nan_to_num(family)).reshape(counts[name].shape)
    return _EStep(counts=counts, log_likelihood=log_likelihood)


def _complete_counts(problem: _Problem) -> dict[str, np.ndarray]:
    """Family counts of the fully observed patterns, for every node: node -> [U, k]."""
    rows = problem.complete & (problem.weights > 0)
    counts = {}
    for name in problem.names:
        shape = problem.network.tables[name].shape
        k = shape[-1]
        flat = problem.flat_config(name, rows)
        total = np.bincount(flat, weights=problem.weights[rows], minlength=int(np.prod(shape))).astype(float)
        counts[name] = total.reshape(-1, k)
    return counts


def _prior_term(problem: _Problem, state: _State) -> float:
    total = 0.0
    for name, node in problem.tables.items():
        if name in state.tables:
            theta = state.tables[name].reshape(node.prior.shape)
            with np.errstate(divide="ignore"):
                total += float(np.where(node.alpha > 0, node.alpha * np.log(np.where(node.alpha > 0, theta, 1.0)),
                                        0.0).sum())
    for name, node in problem.noisy.items():
        if name in state.noisy:
            values = state.noisy[name]
            with np.errstate(divide="ignore"):
                total += float(np.where(node.a > 0, node.a * np.log(np.where(node.a > 0, values, 1.0)), 0.0).sum())
                total += float(np.where(node.b > 0, node.b * np.log1p(-np.where(node.b > 0, values, 0.0)), 0.0).sum())
    return total


def _m_step(problem: _Problem, state: _State, counts: Mapping[str, np.ndarray], frozen: Mapping[str, np.ndarray]
            ) -> _State:
    """Closed-form Dirichlet update of table rows; exact noisy-OR maximisation."""
    tables = dict(state.tables)
    noisy = dict(state.noisy)
    for name, table in state.tables.items():
        if name not in counts:
            continue  # every free parameter of this node is uninformed
        if name in problem.tables:
            node = problem.tables[name]
            learn = node.free & ~frozen[name][:, None]
            theta = table.reshape(node.prior.shape).copy()
            numerator = np.where(learn, counts[name] + node.alpha, 0.0)
            total = numerator.sum(axis=1, keepdims=True)
            rows = learn.any(axis=1) & (total[:, 0] > 0)
            theta[rows] = np.where(learn[rows], node.free_mass[rows, None] * numerator[rows] /
                                   total[rows], theta[rows])
            tables[name] = theta.reshape(node.shape)
        else:
            node = problem.noisy[name]
            learn = node.free & ~frozen[name]
            values = state.noisy[name].copy()
            if learn.any():
                t = _t_of(values)
                offset = node.activity[:, ~learn] @ t[~learn]
                m = counts[name]
                t[learn] = _noisy_or_maximise(t[learn], offset, node.activity[:, learn], m[:, 0], m[:, 1],
                                              node.a[learn], node.b[learn])
                values[learn] = -np.expm1(-t[learn])
            noisy[name] = values
            tables[name] = _noisy_or_table(node, values)
    return _State(tables=tables, noisy=noisy)


def _start(problem: _Problem, nodes: Sequence[str], frozen: Mapping[str, np.ndarray],
           rng: np.random.Generator | None) -> _State:
    """Restart 0 (``rng`` None): the model's values; otherwise draws from each free row's prior."""
    tables, noisy = {}, {}
    for name in nodes:
        if name in problem.tables:
            node = problem.tables[name]
            theta = node.prior.copy()
            learn = node.free & ~frozen[name][:, None]
            mass = node.free_mass
            for u in np.flatnonzero(learn.any(axis=1)):
                free = learn[u]
                share = (theta[u, free] / mass[u] if rng is None
                         else rng.dirichlet(np.maximum(node.alpha[u, free], 1.0)))
                if rng is not None or (share <= 0).any():
                    share = (1.0 - _START_MARGIN) * share + _START_MARGIN / free.sum()
                theta[u, free] = mass[u] * share
            tables[name] = theta.reshape(node.shape)
        else:
            node = problem.noisy[name]
            values = node.prior.copy()
            learn = node.free & ~frozen[name]
            if rng is not None and learn.any():
                values[learn] = rng.beta(np.maximum(node.a[learn], 1.0), np.maximum(node.b[learn], 1.0))
            values[learn] = np.clip(values[learn], _START_MARGIN, 1.0 - _START_MARGIN)
            noisy[name] = values
            tables[name] = _noisy_or_table(node, values)
    return _State(tables=tables, noisy=noisy)


# ---------------------------------------------------------------------------------------------
# the result


@dataclass
class FitResult:
    """A fitted model with its report, EM trace and provenance.

    Attributes
    ----------
    spec : Spec
        The fitted specification: every fitted parameter carries its fitted value, its interval
        as ``range``, ``basis = "fitted"``, a ``source`` naming the data and a ``note`` with the
        prior it replaced; all others are unchanged.
    report : DataFrame
        One row per parameter: ``id``, ``node``, ``kind`` (``table``, ``leak``, ``link``),
        ``parents`` (named configuration, or ``parent=state`` for a link), ``state``, ``prior``,
        ``prior_low``, ``prior_high``, ``fitted``, ``lower`` and ``upper`` (the central
        ``interval`` of the parameter's posterior), ``change_in_widths`` ((fitted − prior) / (prior
        high − prior low); NaN for an empty range), ``expected_count`` (expected number of rows in
        the parameter's parent configuration among rows that inform its node: its effective sample
        size), ``prior_count`` (its pseudo-observations), ``information_share`` (share of the
        information the same rows would carry if every family were observed that the observed
        columns carry: 1 when the family is observed, near 0 when the data cannot tell its value),
        ``status`` (``fitted``, ``fixed``, ``uninformed``, ``not_identifiable``) and ``note``.
    log_likelihood_trace : DataFrame
        Per restart and EM iteration: ``log_likelihood`` (natural log of P(data) under the values
        of that iteration), ``prior_term`` (Σ α log θ) and ``objective`` (their sum, which EM
        never lowers), and ``chosen`` (the restart kept).
    provenance : dict
        Data name and SHA-256, rows used and left out, distinct patterns, iterations, restarts,
        convergence, final log-likelihood and objective, prior files, prior strength, date.
    """

    spec: Spec
    report: pd.DataFrame
    log_likelihood_trace: pd.DataFrame
    provenance: dict
    _model_type: Callable[[Spec], Any] | None = field(default=None, repr=False)
    _model: Any = field(default=None, repr=False)

    @property
    def model(self):
        """The fitted :class:`~bayescramp.Model` (built from :attr:`spec` on first use)."""
        if self._model is None:
            if self._model_type is None:
                raise InputError("FitResult.model: this result was made without a Model type; call Model.fit, or "
                                 "build one with bayescramp.Model(result.spec).")
            self._model = self._model_type(self.spec)
        return self._model

    def largest_changes(self, top: int = 10) -> pd.DataFrame:
        """The ``top`` fitted parameters that moved most, in units of their prior's width.

        Parameters with an empty prior range (a numeric ``prior_strength``) are ranked by their
        absolute change instead, after the others.
        """
        report = self.report[self.report["status"].isin([STATUS_FITTED, STATUS_NOT_IDENTIFIABLE])].copy()
        report["_width"] = report["change_in_widths"].abs()
        report["_absolute"] = (report["fitted"] - report["prior"]).abs()
        report = report.sort_values(["_width", "_absolute"], ascending=False, na_position="last")
        return report.drop(columns=["_width", "_absolute"]).head(top).reset_index(drop=True)

    def summary(self) -> str:
        """One paragraph: what was fitted, from what, and how EM ended."""
        p = self.provenance
        counts = self.report["status"].value_counts()
        state = "converged" if p["converged"] else f"stopped at max_iter = {p['max_iter']} before converging"
        return (f"fitted {int(counts.get(STATUS_FITTED, 0) + counts.get(STATUS_NOT_IDENTIFIABLE, 0)):,} of "
                f"{len(self.report):,} parameters ({int(counts.get(STATUS_FIXED, 0)):,} fixed, "
                f"{int(counts.get(STATUS_UNINFORMED, 0)):,} uninformed, "
                f"{int(counts.get(STATUS_NOT_IDENTIFIABLE, 0)):,} not identifiable) from {p['n_rows']:,} rows of "
                f"{p['data']} ({p['n_patterns']:,} distinct patterns"
                + (f"; {p['n_rows_impossible']:,} impossible rows left out" if p["n_rows_impossible"] else "")
                + f"): EM {p['iterations']} iteration(s), restart {p['restart'] + 1} of {p['n_restarts']}, {state}; "
                  f"log-likelihood {p['log_likelihood']:.6f}, objective {p['objective']:.6f}.")

    def save_overlay(self, path: str | Path) -> Path:
        """Write the fitted numbers as a prior overlay (TOML), atomically.

        ``load_model(*prior_files, path)`` then gives exactly the fitted model. Every parameter
        whose value changed is written under ``[parameters]`` with its fitted ``value``, its
        interval as ``range``, ``basis = "fitted"``, a ``source`` naming the data and its
        SHA-256, a ``note`` with the prior it replaced, and (when it is a proper Beta) its
        posterior as ``distribution`` so credible intervals of the learned model use it. ``[meta]``
        and the header comments record the provenance; ``meta.base`` names the prior file(s) the
        overlay was fitted on, when one file (with its own base) reproduces them.

        Parameters
        ----------
        path : str or Path
            A ``.toml`` file in an existing folder.

        Returns
        -------
        Path
        """
        path = Path(path)
        if path.suffix.lower() != ".toml":
            raise InputError(f"{path}: an overlay is a TOML file; expected a name ending in .toml.")
        text = _overlay_text(self, path)
        with atomic_path(path) as temporary:
            temporary.write_text(text, encoding="utf-8")
        return path


# ---------------------------------------------------------------------------------------------
# fit


def fit(spec: Spec, network: CompiledNetwork, data: pd.DataFrame | str | Path | PatternCounts, *,
        codebook: Codebook | str | Path | None = None, prior_strength: str | float | Mapping[str, Any] = "ranges",
        max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, n_restarts: int = DEFAULT_RESTARTS,
        rng: np.random.Generator | int | None = None, interval: float = DEFAULT_RANGE_COVERAGE,
        progress: bool = False, model_type: Callable[[Spec], Any] | None = None) -> FitResult:
    """Update a model's parameters from a cohort (Bayesian update; EM with blanks and hidden nodes).

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    data : DataFrame, path, or PatternCounts
        The cohort: columns named like nodes (or mapped by ``codebook``); blank = no finding; a
        node without a column is hidden. A ``.csv``, ``.csv.gz`` or ``.parquet`` path is streamed
        in chunks (memory holds one chunk and the distinct patterns).
    codebook : Codebook or path, optional
    prior_strength : "ranges", number, or mapping
        ``"ranges"``: each parameter's pseudo-observations come from its value and range (the
        module docstring says how); a number N: N pseudo-observations at the prior value for every
        row and parameter (0: maximum likelihood); ``{node: N or "ranges"}``: per node (others
        from their ranges).
    max_iter : int
        EM iterations (M-steps) per restart at most.
    tol : float
        Stop when the objective's relative increase ``(J_k − J_{k−1}) / |J_k|`` is below ``tol``.
    n_restarts : int
        EM runs: the model's values, then random starting points from ``rng``; the best objective wins.
    rng : numpy Generator or int seed, optional
    interval : float
        Probability inside each parameter's reported interval (default 0.95, as prior ranges are read).
    progress : bool
        Show a progress bar of EM iterations on stderr.
    model_type : callable, optional
        Builds ``FitResult.model`` from the fitted spec (``Model.fit`` passes ``Model``).

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Unreadable data or cells, bad options, or no row left after impossible rows are removed.

    Warns
    -----
    UninformedParameterWarning, NotIdentifiableWarning, ImpossibleRowsWarning, NotConvergedWarning

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> frame = pd.DataFrame({"age_group": ["65_plus"] * 100, "diuretic": ["none"] * 80 + ["thiazide"] * 20})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", UninformedParameterWarning)   # no column below the diuretic
    ...     result = fit(spec, compile_spec(spec), frame, prior_strength=0)
    >>> round(float(result.report.set_index("id").loc["P(diuretic=thiazide|age_group=65_plus)", "fitted"]), 12)
    0.2
    """
    _check_options(max_iter, tol, n_restarts, interval)
    _check_strength(prior_strength, spec)
    counts = data if isinstance(data, PatternCounts) else count_patterns(network, data, codebook=codebook)
    if counts.n_rows == 0:
        raise InputError(f"{counts.source}: has no rows; expected at least one row to fit the model to.")
    problem = _Problem(spec, network, counts, prior_strength)
    rng = np.random.default_rng(rng)
    nodes = problem.learnable()
    no_freeze = {n: _no_freeze(problem, n) for n in nodes}
    start = _start(problem, nodes, no_freeze, None)
    n_impossible = _drop_impossible(problem, start, nodes)
    complete_counts = _complete_counts(problem)
    first = _e_step(problem, start, nodes, complete_counts)
    frozen = _uninformed(problem, nodes, first.counts)
    learning = [n for n in nodes if (~_frozen_mask(problem, n, frozen)).any()]
    runs = []
    if not (~problem.complete & (problem.weights > 0)).any():
        # complete data: the objective is concave (Dirichlet rows; noisy-ORs in t), one optimum, no restarts
        n_restarts = 1
    total_steps = (max_iter + 1) * n_restarts
    bar = _progress(progress, total_steps)
    try:
        for restart in range(n_restarts):
            state = _start(problem, nodes, frozen, None if restart == 0 else rng)
            # the first E-step already ran at restart 0's start when nothing had to be frozen
            reuse = first if restart == 0 and not any(f.any() for f in frozen.values()) else None
            runs.append(_run_em(problem, state, nodes, learning, frozen, complete_counts, max_iter, tol, restart,
                                bar, reuse))
    finally:
        bar.close()
    best = max(range(len(runs)), key=lambda r: runs[r].objective)
    run = runs[best]
    trace = pd.DataFrame([row for r in runs for row in r.trace])
    trace["chosen"] = trace["restart"] == best
    report, fitted_spec = _report(problem, run, runs, best, frozen, interval, tol, counts)
    provenance = {
        "data": counts.source, "sha256": counts.sha256, "n_rows": counts.n_rows - n_impossible,
        "n_rows_impossible": n_impossible, "n_patterns": counts.n_patterns, "iterations": run.iterations,
        "restart": best, "n_restarts": n_restarts, "converged": run.converged, "log_likelihood": run.log_likelihood,
        "objective": run.objective, "max_iter": max_iter, "tol": tol,
        "prior_strength": prior_strength if not isinstance(prior_strength, Mapping) else dict(prior_strength),
        "priors": [Path(f).name for f in spec.files], "prior_paths": list(spec.files), "interval": interval,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    result = FitResult(spec=fitted_spec, report=report, log_likelihood_trace=trace, provenance=provenance,
                       _model_type=model_type)
    _warn(result, n_impossible, counts)
    return result


def _check_options(max_iter, tol, n_restarts, interval) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise InputError(f"max_iter: got {max_iter!r}; expected a whole number of EM iterations >= 0.")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise InputError(f"tol: got {tol!r}; expected a relative change >= 0, e.g. 1e-6.")
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, (int, np.integer)) or n_restarts < 1:
        raise InputError(f"n_restarts: got {n_restarts!r}; expected a whole number of EM runs >= 1.")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0.0 < interval < 1.0:
        raise InputError(f"interval: got {interval!r}; expected a probability strictly between 0 and 1, e.g. 0.95.")


def _progress(enabled: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit=" it", file=sys.stderr, desc="EM", leave=False,
                mininterval=0.5)


def _no_freeze(problem: _Problem, name: str) -> np.ndarray:
    if name in problem.tables:
        return np.zeros(problem.tables[name].prior.shape[0], dtype=bool)
    return np.zeros(len(problem.noisy[name].ids), dtype=bool)


def _frozen_mask(problem: _Problem, name: str, frozen: Mapping[str, np.ndarray]) -> np.ndarray:
    """Free parameters of ``name`` that EM leaves alone (uninformed), as a mask over its free ones."""
    if name in problem.tables:
        node = problem.tables[name]
        return ~(node.free & ~frozen[name][:, None])[node.free]
    node = problem.noisy[name]
    return ~(node.free & ~frozen[name])[node.free]


def _drop_impossible(problem: _Problem, start: _State, nodes: Sequence[str]) -> int:
    """Leave out patterns impossible under the fixed parameters; return how many rows they hold.

    ``start`` has every free value strictly inside (0, 1), so a pattern impossible under it is
    impossible under every value of the free parameters.
    """
    tables = {n: start.tables.get(n, problem.network.tables[n]) for n in problem.names}
    possible = np.ones(problem.data.n_patterns, dtype=bool)
    complete = problem.complete
    for name in problem.names:
        flat = problem.flat_config(name, complete)
        possible[complete] &= tables[name].reshape(-1)[flat] > 0
    pending = np.flatnonzero(~complete)
    per_row = {n: tables[n][None] for n in nodes}
    for begin in range(0, len(pending), ENGINE_BLOCK):
        rows = pending[begin:begin + ENGINE_BLOCK]
        likelihood = {node: values[rows] for node, values in problem.likelihood.items()}
        result = propagate(problem.network, BatchEvidence.from_likelihoods(likelihood, n_rows=len(rows)), targets=[],
                           tables=per_row)
        possible[rows] = ~result.impossible
    n_impossible = int(round(float(problem.weights[~possible].sum())))
    problem.drop(possible)
    if problem.weights.sum() <= 0:
        raise InputError(f"{problem.data.source}: every row's evidence is impossible under the model's fixed "
                         "parameters (structural zeros); expected rows the model allows.")
    return n_impossible


def _uninformed(problem: _Problem, nodes: Sequence[str], counts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per node: parent configurations (tables) or parameters (noisy-ORs) that no row informs."""
    frozen = {}
    for name in nodes:
        configuration_counts = counts[name].sum(axis=1)
        if name in problem.tables:
            frozen[name] = configuration_counts < MIN_EXPECTED_COUNT
        else:
            node = problem.noisy[name]
            frozen[name] = node.activity.T @ configuration_counts < MIN_EXPECTED_COUNT
    return frozen


@dataclass
class _Run:
    state: _State
    e_step: _EStep
    objective: float
    log_likelihood: float
    iterations: int
    converged: bool
    trace: list[dict]


def _run_em(problem, state, nodes, learning, frozen, complete_counts, max_iter, tol, restart, bar,
            first: _EStep | None) -> _Run:
    trace = []
    previous = None
    converged = False
    iterations = 0
    for iteration in range(max_iter + 1):
        e_step = first if (iteration == 0 and first is not None) else _e_step(problem, state, learning,
                                                                               complete_counts)
        prior_term = _prior_term(problem, state)
        objective = e_step.log_likelihood + prior_term
        trace.append({"restart": restart, "iteration": iteration, "log_likelihood": e_step.log_likelihood,
                      "prior_term": prior_term, "objective": objective})
        bar.update(1)
        bar.set_postfix_str(f"restart {restart + 1}, objective {objective:.6g}", refresh=False)
        if previous is not None and (objective - previous) <= tol * abs(objective):
            converged = True
            break
        if iteration == max_iter or not learning:
            converged = not learning
            break
        state = _m_step(problem, state, e_step.counts, frozen)
        iterations += 1
        previous = objective
    bar.update((max_iter + 1) - len(trace))
    return _Run(state=state, e_step=e_step, objective=objective, log_likelihood=e_step.log_likelihood,
                iterations=iterations, converged=converged, trace=trace)


# ---------------------------------------------------------------------------------------------
# intervals: exact Dirichlet for observed families, observed information otherwise


@dataclass
class _Coordinate:
    """One free coordinate of the information matrix."""

    node: str
    u: int            # parent configuration (tables) or -1
    j: int            # state (tables) or parameter index (noisy-ORs)
    reference: int    # the row's reference state (tables) or -1


def _coordinates(problem: _Problem, run: _Run, frozen, nodes: set[str]) -> list[_Coordinate]:
    """The free, informed, interior parameters of ``nodes`` as information-matrix coordinates."""
    coordinates = []
    for name, node in problem.tables.items():
        if name not in nodes or not node.free.any():
            continue
        theta = run.state.tables[name].reshape(node.prior.shape)
        for u in np.flatnonzero(node.free.any(axis=1) & ~frozen.get(name, np.zeros(len(node.prior), bool))):
            # an entry at (or underflowing to) 0 is on the boundary: no interior coordinate
            free = np.flatnonzero(node.free[u] & (theta[u] > _BOUNDARY))
            if len(free) < 2:
                continue
            reference = int(free[np.argmax(theta[u, free])])
            coordinates.extend(_Coordinate(name, int(u), int(j), reference) for j in free if j != reference)
    for name, node in problem.noisy.items():
        if name not in nodes:
            continue
        values = run.state.noisy.get(name, node.prior)
        # a link at 0 (its lower bound) still has a score; only a value of 1 has none
        learn = node.free & ~frozen.get(name, np.zeros(len(node.ids), bool)) & (values < 1.0 - _BOUNDARY)
        coordinates.extend(_Coordinate(name, -1, int(p), -1) for p in np.flatnonzero(learn))
    return coordinates


def _family_posteriors(problem: _Problem, state: _State, rows: np.ndarray, nodes: Sequence[str]
                       ) -> dict[str, np.ndarray]:
    """Family posteriors ``[n, U, k]`` of ``nodes`` for pattern ``rows``: one-hot where complete, else propagated."""
    result = {}
    complete = problem.complete[rows]
    flat_shape = {n: problem.network.tables[n].shape for n in nodes}
    for name in nodes:
        shape = flat_shape[name]
        result[name] = np.zeros((len(rows), int(np.prod(shape[:-1])) if len(shape) > 1 else 1, shape[-1]))
    if complete.any():
        chosen = np.zeros(problem.data.n_patterns, dtype=bool)
        chosen[rows[complete]] = True
        for name in nodes:
            flat = problem.flat_config(name, chosen)
            block = np.zeros((int(complete.sum()), result[name].shape[1] * result[name].shape[2]))
            block[np.arange(len(flat)), flat] = 1.0
            result[name][complete] = block.reshape(-1, *result[name].shape[1:])
    if (~complete).any():
        sub = rows[~complete]
        likelihood = {node: values[sub] for node, values in problem.likelihood.items()}
        propagated = propagate(problem.network, BatchEvidence.from_likelihoods(likelihood, n_rows=len(sub)),
                               targets=[], families=list(nodes), tables={n: t[None] for n, t in state.tables.items()})
        for name in nodes:
            family = propagated.families[name].reshape(len(sub), *result[name].shape[1:])
            result[name][~complete] = np.nan_to_num(family)
    return result


def _observed_information(problem: _Problem, run: _Run, coordinates: list[_Coordinate]) -> np.ndarray:
    """The observed information of ``coordinates``, summed over rows.

    In a row where a node's family is observed (hard findings on the node and its parents),
    ``log P(e)`` splits into that family's ``log θ(x | u)`` plus terms free of it, so the row's
    information about the node is exactly its score's outer product (a multinomial's Hessian)
    and has no cross terms with other nodes. The rest of the row, where hidden states couple the
    nodes, is estimated by the outer product of the row's score over those nodes (the empirical
    information; Fisher's identity gives each score from the family posteriors). Keeping the
    exact part exact stops a few rows in a rare configuration from making the estimate singular.
    """
    size = len(coordinates)
    information = np.zeros((size, size))
    if not size:
        return information
    nodes = list(dict.fromkeys(c.node for c in coordinates))
    by_node = {n: [i for i, c in enumerate(coordinates) if c.node == n] for n in nodes}
    node_of = np.array([nodes.index(c.node) for c in coordinates])
    same_node = node_of[:, None] == node_of[None, :]
    rows_all = np.flatnonzero(problem.weights > 0)
    for start in range(0, len(rows_all), ENGINE_BLOCK):
        rows = rows_all[start:start + ENGINE_BLOCK]
        families = _family_posteriors(problem, run.state, rows, nodes)
        scores = np.zeros((len(rows), size))
        observed = np.zeros((len(rows), size), dtype=bool)
        for name in nodes:
            family = families[name]
            where = by_node[name]
            informed = problem.informed[name][rows][:, None]
            if name in problem.tables:
                theta = run.state.tables[name].reshape(family.shape[1:])
                us = np.array([coordinates[i].u for i in where])
                js = np.array([coordinates[i].j for i in where])
                rs = np.array([coordinates[i].reference for i in where])
                score = family[:, us, js] / theta[us, js] - family[:, us, rs] / theta[us, rs]
            else:
                node = problem.noisy[name]
                values = run.state.noisy[name]
                off = np.exp(-node.activity @ _t_of(values))
                on = 1.0 - off
                ratio = np.where(on > 0, off / np.where(on > 0, on, 1.0), 0.0)
                ps = np.array([coordinates[i].j for i in where])
                per_configuration = -family[:, :, 0] + family[:, :, 1] * ratio
                score = per_configuration @ (node.activity[:, ps] / (1.0 - values[ps]))
            scores[:, where] = np.where(informed, score, 0.0)
            observed[:, where] = problem.family_hard[name][rows][:, None]
        weights = problem.weights[rows][:, None]
        exact = np.where(observed, scores, 0.0)
        coupled = np.where(observed, 0.0, scores)
        information += np.where(same_node, exact.T @ (exact * weights), 0.0) + coupled.T @ (coupled * weights)
    return information


def _same_row(coordinates: list[_Coordinate]) -> np.ndarray:
    """``[P, P]`` True where two table coordinates share a row (node and parent configuration)."""
    groups = {}
    index = np.array([groups.setdefault((c.node, c.u), len(groups)) if c.u >= 0 else -1 - i
                      for i, c in enumerate(coordinates)])
    return index[:, None] == index[None, :]


def _row_information(problem: _Problem, run: _Run, coordinates: list[_Coordinate], weight) -> np.ndarray:
    """``diag(w_j / θ_j^x) + (w_r / θ_r^x)`` on each table row's block, for the row weights ``weight``.

    ``weight(node, u, j, theta)`` gives ``(w_j / θ_j^x, w_r / θ_r^x)`` for a coordinate and its
    row's reference state: the information of Σ w log θ (x = 2) or of a multinomial (x = 1).
    """
    size = len(coordinates)
    own = np.zeros(size)
    shared = np.zeros(size)
    for i, c in enumerate(coordinates):
        if c.u >= 0:
            node = problem.tables[c.node]
            theta = run.state.tables[c.node].reshape(node.prior.shape)
            own[i], shared[i] = weight(c.node, c.u, c.j, c.reference, theta)
    return np.diag(own) + np.where(_same_row(coordinates), shared[:, None], 0.0)


def _prior_information(problem: _Problem, run: _Run, coordinates: list[_Coordinate]) -> np.ndarray:
    """Curvature of the pseudo-counts' log-prior Σ α log θ in the same coordinates."""

    def weight(name, u, j, reference, theta):
        alpha = problem.tables[name].alpha
        return (alpha[u, j] / theta[u, j] ** 2 if alpha[u, j] > 0 else 0.0,
                alpha[u, reference] / theta[u, reference] ** 2 if alpha[u, reference] > 0 else 0.0)

    information = _row_information(problem, run, coordinates, weight)
    for i, c in enumerate(coordinates):
        if c.u < 0:
            node = problem.noisy[c.node]
            value = run.state.noisy[c.node][c.j]
            acts = node.a[c.j] / value ** 2 if node.a[c.j] > 0 else 0.0
            information[i, i] += acts + node.b[c.j] / (1.0 - value) ** 2
    return information


def _complete_information(problem: _Problem, run: _Run, coordinates: list[_Coordinate],
                          counts: Mapping[str, np.ndarray]) -> np.ndarray:
    """The information the rows would carry if every family were observed (the identifiability yardstick).

    The same estimator as for observed families (the per-row score's outer product), over the
    expected counts of each family configuration: ``m_j / θ_j² + m_r / θ_r²`` for a table row,
    the per-configuration sum for a noisy-OR. Where every family is observed it equals the
    observed information, so the share is 1.
    """

    def weight(name, u, j, reference, theta):
        m = counts[name][u]
        return m[j] / theta[u, j] ** 2, m[reference] / theta[u, reference] ** 2

    information = _row_information(problem, run, coordinates, weight)
    for name in dict.fromkeys(c.node for c in coordinates if c.u < 0):
        where = [i for i, c in enumerate(coordinates) if c.node == name]
        block = [coordinates[i] for i in where]
        information[np.ix_(where, where)] += _configuration_information(problem, run, block, counts)
    return information


def _configuration_information(problem: _Problem, run: _Run, coordinates: list[_Coordinate],
                               counts: Mapping[str, np.ndarray]) -> np.ndarray:
    """Σ of outer products of the per-row scores of one noisy-OR whose family every informing row observes.

    Such a row's score depends only on its family configuration, so the sum runs over
    configurations weighted by their counts, not over rows.
    """
    name = coordinates[0].node
    node = problem.noisy[name]
    ps = np.array([c.j for c in coordinates])
    values = run.state.noisy[name]
    off = np.exp(-node.activity @ _t_of(values))
    on = 1.0 - off
    blocked = -node.activity[:, ps] / (1.0 - values[ps])[None, :]
    acts = -blocked * np.where(on > 0, off / np.where(on > 0, on, 1.0), 0.0)[:, None]
    m = counts[name]
    return blocked.T @ (blocked * m[:, :1]) + acts.T @ (acts * m[:, 1:2])


def _inverse(matrix: np.ndarray) -> np.ndarray:
    if not matrix.size:
        return matrix
    try:
        return np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix, hermitian=True)


def _variances(coordinates: list[_Coordinate], covariance: np.ndarray) -> dict[tuple, float]:
    """Variance per (node, u, j) (tables, references included) or (node, -1, p) (noisy-ORs)."""
    result: dict[tuple, float] = {}
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(coordinates):
        result[(c.node, c.u, c.j)] = float(covariance[i, i])
        if c.u >= 0:
            groups.setdefault((c.node, c.u, c.reference), []).append(i)
    for key, where in groups.items():
        result[key] = float(covariance[np.ix_(where, where)].sum())
    return result


def _beta_matched(mean: float, variance: float) -> tuple[float, float] | None:
    """``(α, β)`` of the Beta with this mean and variance, or None when there is none."""
    if not (0.0 < mean < 1.0) or not math.isfinite(variance) or variance <= 0 or variance >= mean * (1.0 - mean):
        return None
    concentration = mean * (1.0 - mean) / variance - 1.0
    return mean * concentration, (1.0 - mean) * concentration


def _interval(mean: float, variance: float, n_effective: float, level: float) -> tuple[float, float, tuple | None]:
    """``(lower, upper, Beta shapes or None)``: central ``level`` of the moment-matched Beta.

    A value on the boundary (0 or 1) gets a one-sided interval holding ``level``: from its
    variance when it has one (a noisy-OR parameter), else the bound after ``n_effective`` rows
    without the state (``Beta(1, n + 1)``).
    """
    from scipy import stats

    tail = (1.0 - level) / 2.0
    shapes = _beta_matched(mean, variance)
    if shapes is not None:
        lower, upper = stats.beta.ppf([tail, 1.0 - tail], *shapes)
        return min(float(lower), mean), max(float(upper), mean), shapes
    if mean <= _BOUNDARY or mean >= 1.0 - _BOUNDARY:
        if math.isfinite(variance) and variance > 0:
            reach = min(1.0, float(stats.norm.ppf(level)) * math.sqrt(variance))
        elif n_effective > 0:
            reach = 1.0 - (1.0 - level) ** (1.0 / (n_effective + 1.0))
        else:
            reach = 1.0
        return (0.0, max(reach, mean), None) if mean <= 0.5 else (min(1.0 - reach, mean), 1.0, None)
    if variance == 0.0:
        return mean, mean, None
    return 0.0, 1.0, None


# ---------------------------------------------------------------------------------------------
# the report and the fitted spec


def _report(problem: _Problem, run: _Run, runs: list[_Run], best: int, frozen, level: float, tol: float,
            counts: PatternCounts) -> tuple[pd.DataFrame, Spec]:
    expected = run.e_step.counts
    # a family observed in every row that informs it: its parameters' likelihood factor multiplies out of
    # P(e), so their information is its own block (exact Dirichlet for tables, per-configuration for noisy-ORs)
    observed = {name for name in problem.learnable() if name in expected and
                bool(np.all(problem.family_hard[name] | ~problem.informed[name] | (problem.weights <= 0)))}
    exact = observed & set(problem.tables)
    coordinates = _coordinates(problem, run, frozen, set(problem.learnable()) - observed)
    data_information = _observed_information(problem, run, coordinates)
    prior_information = _prior_information(problem, run, coordinates)
    complete_information = _complete_information(problem, run, coordinates, expected)
    ridge = np.diag(np.diag(complete_information)) * 1e-10 + np.eye(len(coordinates)) * 1e-300
    posterior_variance = _variances(coordinates, _inverse(data_information + prior_information + ridge))
    data_variance = _variances(coordinates, _inverse(data_information + ridge))
    complete_variance = _variances(coordinates, _inverse(complete_information + ridge))
    for name in observed - exact:
        block = _coordinates(problem, run, frozen, {name})
        if block:
            information = _configuration_information(problem, run, block, expected)
            variance = _variances(block, _inverse(information + _prior_information(problem, run, block)))
            posterior_variance.update(variance)
            data_variance.update(variance)
            complete_variance.update(variance)
    spread = _restart_spread(problem, runs, best, tol)
    parameters = parameters_by_id(problem.spec)
    rows = []
    replacements: dict[str, Parameter] = {}
    source = f"fitted to {counts.source} (sha256 {counts.sha256[:16]}..., {counts.n_rows:,} rows)"
    for name in problem.names:
        for key, parameter_id, prior_value, fitted_value, is_free, alpha, prior_count_total in \
                _parameter_entries(problem, run, name):
            parameter = parameters[parameter_id][1]
            kind, parents, state = parameter.kind, parameter.configuration, parameter.state
            n_effective = _expected_count(problem, name, key, expected)
            row = {"id": parameter_id, "node": name, "kind": kind, "parents": parents, "state": state,
                   "prior": parameter.value, "prior_low": parameter.low, "prior_high": parameter.high,
                   "fitted": fitted_value, "lower": parameter.low, "upper": parameter.high,
                   "expected_count": n_effective, "prior_count": prior_count_total, "information_share": math.nan,
                   "status": STATUS_FITTED, "note": ""}
            is_frozen = _is_frozen(problem, name, key, frozen)
            if not is_free:
                row.update(fitted=parameter.value, lower=parameter.value, upper=parameter.value, status=STATUS_FIXED,
                           prior_count=0.0, note="fixed by the prior (an empty range or distribution kind fixed)")
            elif is_frozen:
                row.update(fitted=parameter.value, status=STATUS_UNINFORMED, information_share=0.0,
                           note="no row informs it: kept at the prior value and range")
            else:
                variance, share = _parameter_variance(problem, run, name, key, exact, posterior_variance,
                                                      data_variance, complete_variance, expected, prior_count_total)
                lower, upper, shapes = _interval(fitted_value, variance, n_effective, level)
                row.update(lower=lower, upper=upper, information_share=share)
                notes = []
                if share < IDENTIFIABLE_SHARE:
                    notes.append(f"the observed columns carry {share:.2g} of the information observed families "
                                 "would")
                width = upper - lower
                if spread.get(parameter_id, 0.0) > max(width, 1e-3):
                    notes.append(f"restarts with equally good fits differ by {spread[parameter_id]:.3g}")
                if notes:
                    row.update(status=STATUS_NOT_IDENTIFIABLE, note="not identifiable: " + "; ".join(notes))
                if fitted_value != parameter.value and parameter is not None:
                    replacements[parameter_id] = _fitted_parameter(parameter, fitted_value, lower, upper, shapes,
                                                                   source, n_effective, share, row["note"])
            width = parameter.high - parameter.low
            row["change_in_widths"] = (row["fitted"] - parameter.value) / width if width > 0 else math.nan
            rows.append(row)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    # every fitted row comes from one normalised update, so rows still sum to 1: check() confirms it
    fitted_spec = check(replace_parameters(problem.spec, replacements))
    return report, fitted_spec


def _parameter_entries(problem: _Problem, run: _Run, name: str):
    """(key, id, prior value, fitted value, free, pseudo-count, row pseudo-count total) per explicit parameter."""
    if name in problem.tables:
        node = problem.tables[name]
        theta = run.state.tables[name].reshape(node.prior.shape) if name in run.state.tables else node.prior
        for u, ids in enumerate(node.ids):
            for j, parameter_id in enumerate(ids):
                if parameter_id is None:
                    continue
                yield ((u, j), parameter_id, float(node.prior[u, j]), float(theta[u, j]), bool(node.free[u, j]),
                       float(node.alpha[u, j]), float(node.alpha[u].sum()))
    else:
        node = problem.noisy[name]
        values = run.state.noisy.get(name, node.prior)
        for p, parameter_id in enumerate(node.ids):
            yield ((-1, p), parameter_id, float(node.prior[p]), float(values[p]), bool(node.free[p]),
                   float(node.a[p] + node.b[p]), float(node.a[p] + node.b[p]))


def _expected_count(problem: _Problem, name: str, key, expected) -> float:
    if name not in expected:
        return 0.0 if name in problem.learnable() else math.nan
    configuration = expected[name].sum(axis=1)
    u, j = key
    if u >= 0:
        return float(configuration[u])
    return float(problem.noisy[name].activity[:, j] @ configuration)


def _is_frozen(problem: _Problem, name: str, key, frozen) -> bool:
    if name not in frozen:
        return False
    u, j = key
    return bool(frozen[name][u] if u >= 0 else frozen[name][j])


def _parameter_variance(problem, run, name, key, exact, posterior_variance, data_variance, complete_variance,
                        expected, prior_count_total) -> tuple[float, float]:
    """(posterior variance, information share) of one fitted parameter."""
    u, j = key
    if name in exact:
        node = problem.tables[name]
        mass = node.free_mass[u]
        total = float((expected[name][u] + node.alpha[u])[node.free[u]].sum())
        share_of_mass = run.state.tables[name].reshape(node.prior.shape)[u, j] / mass
        return mass ** 2 * share_of_mass * (1.0 - share_of_mass) / (total + 1.0), 1.0
    index = (name, u, j)
    if index not in posterior_variance:
        # a table entry at 0 (a maximum-likelihood zero) or a link at 1 has no score
        return 0.0, math.nan
    variance_data = data_variance[index]
    share = complete_variance[index] / variance_data if variance_data > 0 else 1.0
    return posterior_variance[index], float(min(max(share, 0.0), 1.0))


def _fitted_parameter(parameter: Parameter, value: float, lower: float, upper: float, shapes, source: str,
                      n_effective: float, share: float, note: str) -> Parameter:
    text = (f"prior {parameter.value:.6g} [{parameter.low:.6g}, {parameter.high:.6g}] ({parameter.basis}; "
            f"{parameter.source}); expected count {n_effective:,.1f}; information share {share:.3g}")
    if note:
        text += f"; {note}"
    distribution = None if shapes is None else {"kind": "beta", "alpha": float(shapes[0]), "beta": float(shapes[1])}
    return replace(parameter, value=float(value), low=float(min(lower, value)), high=float(max(upper, value)),
                   basis="fitted", source=source, note=text, distribution=distribution)


def _restart_spread(problem: _Problem, runs: list[_Run], best: int, tol: float) -> dict[str, float]:
    """Per parameter id, the largest difference to the best run among runs with an equally good objective."""
    target = runs[best].objective
    close = [r for i, r in enumerate(runs) if i != best and target - r.objective <= 10 * tol * abs(target) + 1e-9]
    spread: dict[str, float] = {}
    for other in close:
        for name in problem.names:
            if name in problem.tables and name in other.state.tables:
                node = problem.tables[name]
                difference = np.abs(other.state.tables[name].reshape(node.prior.shape) -
                                    runs[best].state.tables[name].reshape(node.prior.shape))
                for u, ids in enumerate(node.ids):
                    for j, parameter_id in enumerate(ids):
                        if parameter_id is not None and node.free[u, j]:
                            spread[parameter_id] = max(spread.get(parameter_id, 0.0), float(difference[u, j]))
            elif name in problem.noisy and name in other.state.noisy:
                difference = np.abs(other.state.noisy[name] - runs[best].state.noisy[name])
                for p, parameter_id in enumerate(problem.noisy[name].ids):
                    spread[parameter_id] = max(spread.get(parameter_id, 0.0), float(difference[p]))
    return spread


def _warn(result: FitResult, n_impossible: int, counts: PatternCounts) -> None:
    report = result.report
    uninformed = report.loc[report["status"] == STATUS_UNINFORMED, "id"].tolist()
    unidentified = report.loc[report["status"] == STATUS_NOT_IDENTIFIABLE, "id"].tolist()
    if len(report) and (report["status"] == STATUS_FIXED).all():
        warnings.warn(f"every parameter is fixed (an empty range or distribution kind fixed, as in a network imported "
                      f"from BIF), so {counts.source} changed nothing; pass prior_strength=N (a number of "
                      "pseudo-observations, 0 for maximum likelihood) to learn them.", FitWarning, stacklevel=3)
    if n_impossible:
        warnings.warn(f"{counts.source}: {n_impossible:,} row(s) hold evidence the model's fixed parameters rule out "
                      "(probability zero, e.g. leg_cramps = no with cramp_timing = night) and were left out of the "
                      "fit; expected rows the model allows.", ImpossibleRowsWarning, stacklevel=3)
    if uninformed:
        warnings.warn(f"{len(uninformed)} parameter(s) are informed by no row of {counts.source} and keep their prior "
                      f"values ({_first(uninformed)}); see the report's status column.",
                      UninformedParameterWarning, stacklevel=3)
    if unidentified:
        warnings.warn(f"{len(unidentified)} parameter(s) are not identifiable from the observed columns of "
                      f"{counts.source} ({_first(unidentified)}): the data barely inform them or restarts end at "
                      "equally good fits with different values, so read their fitted values as prior-driven (see "
                      "the report's note column).", NotIdentifiableWarning, stacklevel=3)
    if not result.provenance["converged"]:
        warnings.warn(f"EM stopped after max_iter = {result.provenance['max_iter']} iterations before the objective's "
                      f"relative change fell below tol = {result.provenance['tol']:g}; raise max_iter or tol.",
                      NotConvergedWarning, stacklevel=3)


def _first(ids: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")


# ---------------------------------------------------------------------------------------------
# the overlay file


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True).replace("\x7f", "\\u007f")


def _toml_float(value: float) -> str:
    text = repr(float(value))
    return text if any(c in text for c in ".en") else text + ".0"


def _toml_parameter(parameter: Parameter) -> str:
    parts = [f"value = {_toml_float(parameter.value)}",
             f"range = [{_toml_float(parameter.low)}, {_toml_float(parameter.high)}]",
             f"basis = {_toml_string(parameter.basis)}", f"source = {_toml_string(parameter.source)}",
             f"note = {_toml_string(parameter.note)}"]
    if parameter.distribution is not None:
        d = parameter.distribution
        parts.append(f"distribution = {{ kind = \"beta\", alpha = {_toml_float(d['alpha'])}, "
                     f"beta = {_toml_float(d['beta'])} }}")
    return "{ " + ", ".join(parts) + " }"


def _base_of(files: Sequence[str], overlay: Path) -> str | None:
    """The ``meta.base`` that makes the overlay at ``overlay`` load alone on top of ``files``, or None.

    A base names a bundled prior or a file in the overlay's own folder (what ``meta.base`` allows);
    priors elsewhere get no base, and the header comment says to load them explicitly.
    """
    from .priors import bundled_path, load_spec

    toml_files = [f for f in files if str(f).lower().endswith(".toml")]
    if not files or len(toml_files) != len(files):
        return None
    last = Path(files[-1])
    if bundled_path(last.name).resolve() == last.resolve():
        name = last.stem
    elif last.resolve().parent == overlay.resolve().parent:
        name = last.name
    else:
        return None
    try:
        if tuple(str(Path(f).resolve()) for f in load_spec(last).files) != tuple(str(Path(f).resolve())
                                                                                for f in files):
            return None
    except Exception:  # a prior file that no longer loads: no base, the comments still name it
        return None
    return name


def _overlay_text(result: FitResult, path: Path) -> str:
    from . import __version__

    p = result.provenance
    report = result.report.set_index("id")
    changed = parameters_by_id(result.spec)
    written = [(pid, changed[pid][1]) for pid in report.index if changed[pid][1].basis == "fitted"
               and report.loc[pid, "fitted"] != report.loc[pid, "prior"]]
    counts = result.report["status"].value_counts()
    base = _base_of(p["prior_paths"], path)
    lines = [
        f"# Parameters fitted by bayescramp {__version__} (`bayescramp fit` / Model.fit), {p['date']}.",
        f"# data: {p['data']}, sha256 {p['sha256']}; {p['n_rows']:,} rows used"
        f" ({p['n_rows_impossible']:,} impossible rows left out), {p['n_patterns']:,} distinct evidence patterns.",
        f"# priors: {', '.join(p['priors'])}; prior strength: {p['prior_strength']!r}; intervals: central "
        f"{p['interval']:g} of each parameter's posterior.",
        f"# EM: {p['iterations']} iteration(s), restart {p['restart'] + 1} of {p['n_restarts']}, "
        + ("converged" if p["converged"] else "NOT converged") + f" (tol {p['tol']:g}); log-likelihood "
        f"{p['log_likelihood']:.6f}, objective {p['objective']:.6f}.",
        f"# {len(written)} changed parameter(s) written; {int(counts.get(STATUS_FIXED, 0))} fixed and "
        f"{int(counts.get(STATUS_UNINFORMED, 0))} uninformed parameter(s) keep their prior values.",
        "# Load it on top of the priors it was fitted on: bayescramp.load_model(" +
        ", ".join(repr(Path(f).stem if Path(f).suffix == ".toml" else f) for f in p["priors"]) +
        f", {path.name!r}).",
        "",
        "[meta]",
        f"name = {_toml_string(path.stem)}",
        f"description = {_toml_string('Parameters fitted to ' + p['data'] + ' by bayescramp fit.')}",
    ]
    if base is not None:
        lines.append(f"base = {_toml_string(base)}")
    meta = {"fitted_data": p["data"], "fitted_data_sha256": p["sha256"], "fitted_rows": str(p["n_rows"]),
            "fitted_rows_impossible": str(p["n_rows_impossible"]), "fitted_patterns": str(p["n_patterns"]),
            "fitted_iterations": str(p["iterations"]), "fitted_converged": str(p["converged"]).lower(),
            "fitted_log_likelihood": repr(p["log_likelihood"]), "fitted_objective": repr(p["objective"]),
            "fitted_date": p["date"], "fitted_priors": ", ".join(p["priors"]),
            "fitted_prior_strength": str(p["prior_strength"]), "fitted_by": f"bayescramp {__version__}"}
    lines.extend(f"{key} = {_toml_string(value)}" for key, value in meta.items())
    lines.extend(["", "[parameters]"])
    for parameter_id, parameter in written:
        row = report.loc[parameter_id]
        change = row["change_in_widths"]
        lines.append(f"# {row['node']}: prior {row['prior']:.6g} [{row['prior_low']:.6g}, {row['prior_high']:.6g}] -> "
                     f"{row['fitted']:.6g} [{row['lower']:.6g}, {row['upper']:.6g}]"
                     + (f", {change:+.2f} prior widths" if math.isfinite(change) else "")
                     + f"; expected count {row['expected_count']:,.1f}"
                     + ("; NOT IDENTIFIABLE" if row["status"] == STATUS_NOT_IDENTIFIABLE else ""))
        lines.append(f"{_toml_string(parameter_id)} = {_toml_parameter(parameter)}")
    return "\n".join(lines) + "\n"
