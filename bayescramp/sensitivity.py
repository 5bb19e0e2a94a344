"""Sensitivity functions, tornado tables and tuning, in closed form.

``P(e)`` is multilinear in the network's parameters. Vary one parameter θ (a table entry,
the rest of its row co-varying proportionally as :func:`bayescramp.spec.with_parameters`
does, or a noisy-OR leak or link) and every CPT entry of its node becomes an affine
function of θ, ``table(θ) = offset + slope * θ``. Writing ``G(x, u) = ∂P(e)/∂P(x | u)`` (the
network polynomial's partial derivative, which does not depend on that node's CPT),

    P(e)(θ)    = γ θ + δ,    γ = Σ slope · G,     δ = P(e) + Σ (offset - table) · G
    P(y, e)(θ) = α θ + β,    α = Σ slope · G_y,   β = P(y, e) + Σ (offset - table) · G_y

so the posterior is the sensitivity function ``f(θ) = (αθ + β) / (γθ + δ)`` (Castillo,
Gutiérrez & Hadi 1997; Coupé & van der Gaag 2002). ``G`` and ``G_y`` of every CPT entry come
from the engine (:func:`bayescramp.engine.cpt_derivatives`, one batched pass over the rows
and their copies with the target added), exact for zero entries too; inference is never
re-run per parameter. The affine CPTs come from the one table builder,
:func:`bayescramp.spec.probability_table`, evaluated at θ = 0 and 1.

All coefficients are kept divided by ``P(e)`` internally, so rows whose ``P(e)`` underflows
still give exact posteriors; the tables report them multiplied back.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list, is_number, renamed
from ._errors import InputError, one_of
from .codebook import Codebook, resolve_codebook
from .engine import CompiledNetwork, cpt_derivatives
from .evidence import BatchEvidence, case_evidence, impossible_evidence_error
from .scoring import STATUS_IMPOSSIBLE, STATUS_OK, as_evidence
from .spec import Spec, TableCPD, covaried_values, parameters_by_id, probability_table

__all__ = [
    "ParameterEffect",
    "SensitivityFunctions",
    "parameter_effects",
    "sensitivity_functions",
    "sensitivity",
    "tune",
    "cd_distance",
    "parse_target",
]

#: ``P(e)(θ)`` below this fraction of the size of its terms counts as zero (impossible evidence at θ).
_ZERO_RELATIVE = 1e-12

_COLUMNS = ["id", "node", "configuration", "value", "low", "high", "alpha", "beta", "gamma", "delta", "posterior",
            "sensitivity_value", "posterior_at_low", "posterior_at_high", "swing"]
_MEAN_COLUMNS = ["id", "node", "configuration", "value", "low", "high", "posterior", "sensitivity_value",
                 "posterior_at_low", "posterior_at_high", "swing", "swing_max", "n_rows"]


@dataclass(frozen=True)
class ParameterEffect:
    """How one parameter moves its node's CPT: ``table(θ) = offset + slope * θ``.

    Attributes
    ----------
    id, node : str
        Parameter id and the node whose CPT it belongs to.
    configuration : str
        What it conditions on: ``parent=state,...`` for a table entry (empty for a root),
        ``parent=state`` for a noisy-OR link, empty for a leak.
    value, low, high : float
        Current value and configured range.
    offset, slope : ndarray ``[*parent_cards, n_states]``
        The CPT as an affine function of the parameter (equal to the compiled CPT at ``value``).
    """

    id: str
    node: str
    configuration: str
    value: float
    low: float
    high: float
    offset: np.ndarray
    slope: np.ndarray

    def table(self, theta: float) -> np.ndarray:
        """The node's CPT with the parameter set to ``theta``."""
        return self.offset + self.slope * theta


def parse_target(network: CompiledNetwork, target: Any) -> tuple[str, str]:
    """A ``(node, state)`` pair from ``"node=state"``, ``("node", "state")`` or a node with a positive state.

    A one-element list holding any of these works too (``targets=[...]`` in the vocabulary of
    the other analyses); a sensitivity function studies one posterior, so more targets are refused.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> parse_target(network, "magnesium_deficiency=present"), parse_target(network, ["iron_deficiency"])
    (('magnesium_deficiency', 'present'), ('iron_deficiency', 'present'))
    """
    if isinstance(target, (list, tuple)) and len(target) == 1:
        target = target[0]
    # ("node", "state") is one target; two node names (or two "node=state") are two targets
    pair = (isinstance(target, (tuple, list)) and len(target) == 2
            and all(isinstance(t, str) and "=" not in t for t in target)
            and not (target[0] in network.states and target[1] in network.states
                     and target[1] not in network.states[target[0]]))
    if isinstance(target, str):
        node, sep, state = target.partition("=")
        positive = network.info.positive_state(node) if not sep and node in network.states else None
        if positive is not None:
            state = positive
        elif not sep:
            example = f"{network.names[-1]}={network.states[network.names[-1]][-1]}"
            raise InputError(f"targets {target!r}: expected node=state (or a node with a positive state), e.g. "
                             f"{example}.")
    elif pair:
        node, state = target
    else:
        raise InputError(f"targets: got {target!r}; expected one target: \"node=state\", a (node, state) pair or a "
                         "node with a positive state (sensitivity studies one posterior at a time).")
    if node not in network.states:
        raise InputError(f"targets {node}={state}: unknown node {node!r}; expected one of {one_of(network.names)}.")
    if state not in network.states[node]:
        raise InputError(f"targets {node}={state}: unknown state {state!r}; expected one of "
                         f"{one_of(network.states[node])}.")
    return node, state


def parameter_effects(spec: Spec, network: CompiledNetwork,
                      parameters: Sequence[str] | str | None = None) -> list[ParameterEffect]:
    """The affine CPT of every selected parameter.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    parameters : sequence of str, optional
        Parameter ids, or node names standing for all of that node's parameters
        (default: every parameter, in :func:`bayescramp.spec.parameters_by_id` order).

    Returns
    -------
    list of ParameterEffect

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> effect = parameter_effects(spec, compile_spec(spec), ["P(diuretic=thiazide|age_group=40_64)"])[0]
    >>> [round(float(p), 4) for p in effect.table(0.2)[1]]   # the row of age_group = 40_64
    [0.7741, 0.2, 0.013, 0.0069, 0.0061]
    """
    known = parameters_by_id(spec)
    selected = _selected(spec, known, parameters)
    by_node: dict[str, list[str]] = {}
    for parameter_id in selected:
        by_node.setdefault(known[parameter_id][0], []).append(parameter_id)
    effects = {}
    for name, ids in by_node.items():
        at_ends = _tables_at_ends(spec, name, ids, known)
        for j, parameter_id in enumerate(ids):
            parameter = known[parameter_id][1]
            effects[parameter_id] = ParameterEffect(
                id=parameter_id, node=name, configuration=parameter.configuration, value=float(parameter.value),
                low=float(parameter.low), high=float(parameter.high), offset=at_ends[2 * j],
                slope=at_ends[2 * j + 1] - at_ends[2 * j])
    return [effects[parameter_id] for parameter_id in selected]


def _tables_at_ends(spec: Spec, name: str, ids: Sequence[str], known: Mapping[str, tuple[str, Any]]) -> np.ndarray:
    """The node's CPT with each parameter in turn at θ = 0 and 1, ``[2 * len(ids), *table shape]``, in one call.

    A table entry's row co-varies as :func:`bayescramp.spec.with_parameters` does; the CPT is
    affine in θ, so these two tables are its offset and offset + slope.
    """
    node = spec.nodes[name]
    row_of = ({p.id: row for row in node.cpd.rows for p in row.probability.values() if p is not None}
              if isinstance(node.cpd, TableCPD) else {})
    values = {}
    for j, parameter_id in enumerate(ids):
        if parameter_id in row_of:
            changed = covaried_values(row_of[parameter_id], {parameter_id: np.array([0.0, 1.0])})
        else:
            changed = {parameter_id: np.array([0.0, 1.0])}
        for changed_id, ends in changed.items():
            if changed_id not in values:
                values[changed_id] = np.full(2 * len(ids), known[changed_id][1].value)
            values[changed_id][2 * j:2 * j + 2] = ends
    return probability_table(spec, name, values)


def _selected(spec: Spec, known: Mapping[str, tuple[str, Any]], parameters: Sequence[str] | str | None) -> list[str]:
    """Parameter ids from ids or node names (default: all), each once, in the order given."""
    if parameters is None:
        return list(known)
    parameters = as_node_list(parameters, argument="parameters", caller="sensitivity",
                              expected="parameter ids or node names")
    wanted = []
    for key in parameters:
        if key in known:
            wanted.append(key)
        elif key in spec.nodes:
            wanted.extend(k for k, (node, _) in known.items() if node == key)
        else:
            raise InputError(f"parameters: unknown parameter id or node {key!r}; expected ids from "
                             "Model.parameters()['id'] or node names.")
    return list(dict.fromkeys(wanted))


@dataclass(frozen=True)
class SensitivityFunctions:
    """The sensitivity functions of many parameters for a batch of evidence rows.

    ``f(θ) = (alpha θ + beta) / (gamma θ + delta)`` for row ``r`` and parameter ``j`` with
    ``alpha[r, j]`` etc. **divided by P(e) of the row** (so they stay finite however small
    ``P(e)`` is); multiply by :attr:`evidence_probability` for ``P(y, e)`` and ``P(e)``. On
    :attr:`impossible` rows (``P(e) = 0`` at the current values) they are absolute
    probabilities instead, so ``f`` is exact there too wherever a parameter's new value makes
    the evidence possible (e.g. a stratum whose prior probability is 0).

    Attributes
    ----------
    effects : list of ParameterEffect
        One per column.
    target : tuple of str
        ``(node, state)``.
    alpha, beta, gamma, delta : ndarray ``[n_rows, n_params]``
    posterior : ndarray ``[n_rows]``
        ``P(y | e)`` at the current parameters (NaN on impossible rows).
    log_evidence_probability : ndarray ``[n_rows]``
    impossible : ndarray of bool ``[n_rows]``
        Rows whose evidence has ``P(e) = 0`` at the current values.
    """

    effects: list[ParameterEffect]
    target: tuple[str, str]
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    delta: np.ndarray
    posterior: np.ndarray
    log_evidence_probability: np.ndarray
    impossible: np.ndarray

    @property
    def ids(self) -> list[str]:
        """Parameter ids, one per column."""
        return [e.id for e in self.effects]

    @property
    def evidence_probability(self) -> np.ndarray:
        """``P(e)`` per row."""
        return np.exp(self.log_evidence_probability)

    def _column(self, name: str) -> np.ndarray:
        return np.array([getattr(e, name) for e in self.effects], dtype=float)

    @property
    def value(self) -> np.ndarray:
        """Current parameter values ``[n_params]``."""
        return self._column("value")

    @property
    def low(self) -> np.ndarray:
        """Lower ends of the configured ranges ``[n_params]``."""
        return self._column("low")

    @property
    def high(self) -> np.ndarray:
        """Upper ends of the configured ranges ``[n_params]``."""
        return self._column("high")

    def evaluate(self, theta) -> np.ndarray:
        """Posterior ``f(θ)`` ``[n_rows, n_params]``; ``theta`` broadcasts against that shape.

        NaN where ``P(e)(θ) = 0`` (the evidence would be impossible; in floating point: below
        1e-12 of the size of the terms of ``P(e)(θ)``), so on :attr:`impossible` rows at the
        current value.
        """
        numerator = self.alpha * theta + self.beta
        denominator = self.gamma * theta + self.delta
        positive = self._possible(theta, denominator)
        return np.where(positive, numerator / np.where(positive, denominator, 1.0), np.nan)

    def _possible(self, theta, denominator: np.ndarray) -> np.ndarray:
        # P(e)(θ) = 0 comes out as rounding noise of the size of its terms (P(e)(value) / P(e) = 1
        # is one of them; on impossible rows, absolute, γ·value is), not as an exact 0
        current = np.where(self.impossible[:, None], np.abs(self.gamma * self.value), 1.0)
        scale = current + np.abs(self.gamma * theta) + np.abs(self.delta)
        return denominator > _ZERO_RELATIVE * scale

    def derivative(self, theta) -> np.ndarray:
        """``f'(θ) = (αδ − βγ) / (γθ + δ)²`` ``[n_rows, n_params]``."""
        denominator = self.gamma * theta + self.delta
        positive = self._possible(theta, denominator)
        return np.where(positive, (self.alpha * self.delta - self.beta * self.gamma)
                        / np.where(positive, denominator, 1.0) ** 2, np.nan)


@renamed(target="targets", positional=("targets",))
def sensitivity_functions(spec: Spec, network: CompiledNetwork, evidence: BatchEvidence, *,
                          targets: Any = None, parameters: Sequence[str] | str | None = None,
                          method: str = "auto") -> SensitivityFunctions:
    """Coefficients of every selected parameter's sensitivity function, for a batch of rows.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    evidence : BatchEvidence
        The rows' findings (as for :func:`bayescramp.engine.propagate`).
    targets : "node=state", (node, state) or a node with a positive state, optional
        One posterior (see :func:`parse_target`); default the model's sensitivity target
        (``meta.sensitivity_target``). ``target=`` is its deprecated spelling.
    parameters : sequence of str, optional
        Parameter ids or node names (default: all).
    method : {"auto", "junction_tree"}
        ``auto`` lets the engine take its core fast path when the network has one;
        ``junction_tree`` forces the general junction tree (the two agree; for testing).

    Returns
    -------
    SensitivityFunctions

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import BatchEvidence
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> functions = sensitivity_functions(spec, network, BatchEvidence.from_case(network.states, {"leg_cramps": "yes"}),
    ...                                   targets="magnesium_deficiency=present")
    >>> functions.alpha.shape == (1, len(functions.ids))
    True
    """
    node_y, state_y = parse_target(network, network.info.default_sensitivity_target() if targets is None else targets)
    effects = parameter_effects(spec, network, parameters)
    if method not in ("auto", "junction_tree"):
        raise InputError(f"method: got {method!r}; expected \"auto\" or \"junction_tree\".")
    engine_network = network if method == "auto" else _without_core(network)
    nodes = list(dict.fromkeys(e.node for e in effects))
    columns = {name: [j for j, e in enumerate(effects) if e.node == name] for name in nodes}
    # P(e)(θ) = Σ G · table(θ) and Σ G · table = P(e): divided by P(e), δ = 1 + Σ G · (offset − table);
    # the engine contracts G with each parameter's slope and offset − table directly
    weights = {name: np.concatenate([np.stack([effects[j].slope for j in columns[name]]),
                                     np.stack([effects[j].offset - network.tables[name] for j in columns[name]])])
               for name in nodes}
    derivatives = cpt_derivatives(engine_network, evidence, nodes, target=(node_y, state_y), weights=weights)
    n_rows = len(derivatives.log_evidence_probability)
    posterior_or_zero = np.where(derivatives.impossible, 0.0, derivatives.posterior)
    # P(e)(value) relative to P(e): 1, or 0 (absolute) where the evidence is impossible now
    relative_pe = np.where(derivatives.impossible, 0.0, 1.0)
    alpha, beta, gamma, delta = (np.zeros((n_rows, len(effects))) for _ in range(4))
    for name in nodes:
        m = len(columns[name])
        evidence, joint = derivatives.evidence[name], derivatives.joint[name]
        gamma[:, columns[name]] = evidence[:, :m]
        delta[:, columns[name]] = relative_pe[:, None] + evidence[:, m:]
        alpha[:, columns[name]] = joint[:, :m]
        beta[:, columns[name]] = posterior_or_zero[:, None] + joint[:, m:]
    return SensitivityFunctions(effects=effects, target=(node_y, state_y), alpha=alpha, beta=beta, gamma=gamma,
                                delta=delta, posterior=derivatives.posterior,
                                log_evidence_probability=derivatives.log_evidence_probability,
                                impossible=derivatives.impossible)


def _without_core(network: CompiledNetwork) -> CompiledNetwork:
    if "junction_tree" not in network.variants:
        network.variants["junction_tree"] = replace(network, core=None, variants={})
    return network.variants["junction_tree"]


@renamed(target="targets", positional=("targets",))
def sensitivity(spec: Spec, network: CompiledNetwork, evidence, *, targets: Any = None,
                parameters: Sequence[str] | str | None = None, summary: str = "mean",
                codebook: Codebook | str | os.PathLike | None = None) -> pd.DataFrame:
    """Sensitivity of one posterior to every parameter, for one case or a cohort.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    evidence : mapping or DataFrame
        One case (node -> state, set of states or likelihood) or a cohort (columns named
        like nodes, blank = no finding).
    targets : "node=state", (node, state) or a node with a positive state, optional
        The one posterior studied, ``P(target | e)`` (default: the model's sensitivity target,
        ``meta.sensitivity_target`` of its priors file; see :class:`bayescramp.spec.ModelInfo`).
        ``target=`` (or the target by position) is its deprecated spelling.
    parameters : sequence of str, optional
        Parameter ids or node names (default: every parameter).
    summary : {"mean", "rows"}
        For a cohort only: ``"mean"`` averages each column over the rows whose evidence
        is possible (one row per parameter, plus ``swing_max`` and ``n_rows``); ``"rows"``
        gives one row per (input row, parameter) with a leading ``row`` column (0-based
        position), in parameter order within each row, and a last ``status`` column (``ok``
        or ``impossible_evidence``, whose numbers are NaN); its index repeats the input row's
        index entry (levels and names kept), so it aligns with the input by label.
    codebook : Codebook or path, optional
        Maps a cohort's survey columns and codes to nodes and states (:func:`bayescramp.load_codebook`).

    Returns
    -------
    DataFrame
        One row per parameter, sorted by ``swing`` (largest first): ``id``, ``node``,
        ``configuration``, ``value``, ``low``, ``high``; ``alpha``, ``beta`` (``P(y, e)(θ) =
        αθ + β``) and ``gamma``, ``delta`` (``P(e)(θ) = γθ + δ``), absolute probabilities;
        ``posterior`` ``P(y | e)``; ``sensitivity_value`` ``|f'(value)|``, the change in the
        posterior per unit change of the parameter; ``posterior_at_low`` and
        ``posterior_at_high``, the posterior with the parameter at each end of its range
        (``f`` is monotone, so these are its extremes over the range); ``swing``, their
        absolute difference. Rows with impossible evidence give NaN.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> table = sensitivity(spec, compile_spec(spec), {"leg_cramps": "yes", "diuretic": "thiazide"},
    ...                     targets="potassium_deficiency=present")
    >>> table.iloc[0]["id"]
    'link(potassium_deficiency<-diuretic=thiazide)'
    """
    if summary not in ("mean", "rows"):
        raise InputError(f"summary: got {summary!r}; expected \"mean\" or \"rows\".")
    book = resolve_codebook(codebook)
    evidence = as_evidence(network, evidence, encoder=None if book is None else book.encoder(), caller="sensitivity")
    patterns, inverse = evidence.distinct()
    functions = sensitivity_functions(spec, network, patterns, targets=targets, parameters=parameters)
    if evidence.case is not None and functions.impossible[0]:
        raise impossible_evidence_error(evidence.case)
    low, high, value = functions.low, functions.high, functions.value
    at_low = functions.evaluate(low)
    at_high = functions.evaluate(high)
    per_pattern = {
        "alpha": functions.alpha * functions.evidence_probability[:, None],
        "beta": functions.beta * functions.evidence_probability[:, None],
        "gamma": functions.gamma * functions.evidence_probability[:, None],
        "delta": functions.delta * functions.evidence_probability[:, None],
        "posterior": np.broadcast_to(functions.posterior[:, None], at_low.shape).copy(),
        "sensitivity_value": np.abs(functions.derivative(value)),
        "posterior_at_low": at_low,
        "posterior_at_high": at_high,
        "swing": np.abs(at_high - at_low),
    }
    for values in per_pattern.values():
        values[functions.impossible] = np.nan
    effects = functions.effects
    described = {"id": [e.id for e in effects], "node": [e.node for e in effects],
                 "configuration": [e.configuration for e in effects], "value": value, "low": low, "high": high}
    if evidence.case is not None:
        frame = pd.DataFrame({**described, **{k: v[0] for k, v in per_pattern.items()}}, columns=_COLUMNS)
        return frame.sort_values("swing", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    if summary == "rows":
        n_rows, n_params = len(inverse), len(effects)
        columns = {"row": np.repeat(np.arange(n_rows), n_params)}
        # categoricals: a cohort gives n_rows × n_params rows, and repeating strings is the slow part
        for key in ("id", "node", "configuration"):
            categories, codes = np.unique(np.asarray(described[key], dtype=object), return_inverse=True)
            columns[key] = pd.Categorical.from_codes(np.tile(codes, n_rows), categories=categories)
        columns.update({k: np.tile(v, n_rows) for k, v in described.items() if k in ("value", "low", "high")})
        columns.update({k: v[inverse].reshape(-1) for k, v in per_pattern.items()})
        columns["status"] = np.where(functions.impossible, STATUS_IMPOSSIBLE, STATUS_OK).astype(object)[
            np.repeat(inverse, n_params)]
        frame = pd.DataFrame(columns, columns=["row"] + _COLUMNS + ["status"])
        frame.index = evidence.index.repeat(n_params)
        return frame
    possible = ~functions.impossible[inverse]
    weights = np.bincount(inverse[possible], minlength=patterns.n_rows).astype(float)
    n_possible = weights.sum()
    means = {}
    for key in ("posterior", "sensitivity_value", "posterior_at_low", "posterior_at_high", "swing"):
        values = np.nan_to_num(per_pattern[key])
        means[key] = weights @ values / n_possible if n_possible else np.full(len(effects), np.nan)
    seen = weights > 0
    means["swing_max"] = (np.nan_to_num(per_pattern["swing"][seen]).max(axis=0) if seen.any()
                          else np.full(len(effects), np.nan))
    means["n_rows"] = np.full(len(effects), int(n_possible))
    frame = pd.DataFrame({**described, **means}, columns=_MEAN_COLUMNS)
    return frame.sort_values("swing", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def cd_distance(old_table: np.ndarray, new_table: np.ndarray) -> float:
    """Chan–Darwiche distance between two CPTs of one node: ``ln max(θ'/θ) − ln min(θ'/θ)``.

    Entries that are zero in both count as ratio 1; an entry that becomes zero, or
    becomes positive from zero, gives ``inf``. For a single table entry changed from ``θ``
    to ``θ'`` with proportional co-variation this is ``|logit θ' − logit θ|``.

    Examples
    --------
    >>> import numpy as np
    >>> round(cd_distance(np.array([0.8, 0.2]), np.array([0.6, 0.4])), 6)
    0.980829
    """
    old = np.asarray(old_table, dtype=float).reshape(-1)
    new = np.asarray(new_table, dtype=float).reshape(-1)
    both_zero = (old == 0) & (new == 0)
    old, new = old[~both_zero], new[~both_zero]
    if (old == 0).any() or (new == 0).any():
        return math.inf
    log_ratio = np.log(new) - np.log(old)
    return float(max(log_ratio.max(), 0.0) - min(log_ratio.min(), 0.0)) if log_ratio.size else 0.0


@renamed(target="targets", positional=("targets", "threshold"))
def tune(spec: Spec, network: CompiledNetwork, evidence: Mapping[str, Any] | None, *, targets: Any = None,
         threshold: float | Any, parameters: Sequence[str] | str | None = None) -> pd.DataFrame:
    """For each parameter, the smallest single change that moves ``P(target | e)`` across a threshold.

    Chan & Darwiche (2002): ``P(y | e) >= p`` holds exactly where ``(α − pγ) θ >= pδ − β``,
    a linear inequality in the parameter, so the boundary ``θ* = (pδ − β) / (α − pγ)`` is
    the nearest value that reaches the threshold (``f`` is monotone on [0, 1]). If the
    posterior is below ``p`` now, the goal is to reach ``>= p``; if it is at or above, to
    come down to ``p`` (any further step crosses it).

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
    evidence : mapping
        One case.
    targets : "node=state", (node, state) or a node with a positive state, optional
        The one posterior tuned (default: the model's sensitivity target). ``target=`` (or the
        target and threshold by position) is the deprecated spelling.
    threshold : float or (node, state)
        A probability ``p``, or a rival target: then the boundary is where the two
        posteriors are equal (they share ``P(e)(θ)``, so it is linear too), e.g. "how far
        must this parameter move before magnesium overtakes potassium?".
    parameters : sequence of str, optional
        Parameter ids or node names (default: all).

    Returns
    -------
    DataFrame
        One row per parameter, achievable changes first, by increasing ``cd_distance``:
        ``id``, ``node``, ``configuration``, ``value``, ``posterior``, ``goal`` (what is
        asked, in words), ``achievable`` (a value in [0, 1] reaches it), ``new_value`` (the
        boundary ``θ*``; NaN if not achievable), ``change`` (``new_value − value``),
        ``cd_distance`` (Chan–Darwiche distance of the changed CPT; ``|logit θ* − logit θ|``
        for a table entry), ``note`` (a sentence, saying why when not achievable).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> table = tune(spec, compile_spec(spec), {"leg_cramps": "yes", "diuretic": "thiazide"},
    ...              targets="potassium_deficiency=present", threshold=0.5)
    >>> bool(table["achievable"].any())
    True
    """
    if isinstance(evidence, pd.DataFrame):
        raise InputError(f"tune: evidence got a DataFrame of {len(evidence)} rows; expected a mapping node -> finding "
                         "for one case (tune one case at a time).")
    evidence = case_evidence(evidence, where="tune: evidence")
    batch = BatchEvidence.from_case(network.states, evidence)
    functions = sensitivity_functions(spec, network, batch, targets=targets, parameters=parameters)
    if functions.impossible[0]:
        raise impossible_evidence_error(evidence, where="tune: evidence")
    node_y, state_y = functions.target
    label = f"P({node_y}={state_y} | e)"
    alpha, beta, gamma, delta = (a[0] for a in (functions.alpha, functions.beta, functions.gamma, functions.delta))
    if is_number(threshold):
        p = float(threshold)
        if not 0.0 <= p <= 1.0:
            raise InputError(f"tune: threshold got {threshold!r}; expected a probability in [0, 1] or a rival "
                             "target node=state.")
        line_slope, line_offset = p * gamma, p * delta
        reference_now = np.full(len(functions.effects), p)
        reference_at_ends = np.full((2, len(functions.effects)), p)
        rival_label = f"{p:g}"
    else:
        rival = sensitivity_functions(spec, network, batch, targets=threshold, parameters=parameters)
        if rival.target == functions.target:
            raise InputError(f"tune: threshold names the target itself ({node_y}={state_y}); expected a probability "
                             "or another node=state.")
        line_slope, line_offset = rival.alpha[0], rival.beta[0]
        reference_now = np.full(len(functions.effects), rival.posterior[0])
        reference_at_ends = rival.evaluate(np.array([[0.0], [1.0]]))
        rival_label = f"P({rival.target[0]}={rival.target[1]} | e)"
    posterior = float(functions.posterior[0])
    # f is monotone on [0, 1]: the goal is reachable iff it holds at one end (NaN ends are
    # values at which the evidence itself would be impossible)
    at_ends = functions.evaluate(np.array([[0.0], [1.0]]))
    gap_at_ends = at_ends - reference_at_ends
    rows = []
    for j, effect in enumerate(functions.effects):
        below = posterior < reference_now[j]
        goal = f"{label} >= {rival_label}" if below else f"{label} <= {rival_label}"
        gaps = gap_at_ends[:, j][~np.isnan(gap_at_ends[:, j])]
        reachable = bool(gaps.size) and (gaps.max() >= 0 if below else gaps.min() <= 0)
        new_value = math.nan
        slope = alpha[j] - line_slope[j]
        if reachable and slope != 0:
            boundary = (line_offset[j] - beta[j]) / slope
            if -1e-9 <= boundary <= 1 + 1e-9:
                new_value = min(max(boundary, 0.0), 1.0)
        achievable = not math.isnan(new_value)
        if achievable:
            distance = cd_distance(network.tables[effect.node], effect.table(new_value))
            note = (f"setting {effect.id} to {new_value:.6g} (from {effect.value:.6g}) brings {label} to "
                    f"{rival_label}.")
        else:
            distance = math.nan
            ends = at_ends[:, j][~np.isnan(at_ends[:, j])]
            span = (f"{ends.min():.6g} to {ends.max():.6g}" if ends.size else "nowhere (the evidence is impossible "
                    "at both ends)")
            note = f"no value of {effect.id} in [0, 1] meets {goal}: over [0, 1] {label} ranges from {span}."
        rows.append({"id": effect.id, "node": effect.node, "configuration": effect.configuration,
                     "value": effect.value, "posterior": posterior, "goal": goal, "achievable": achievable,
                     "new_value": new_value, "change": new_value - effect.value, "cd_distance": distance,
                     "note": note})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["achievable", "cd_distance"], ascending=[False, True], kind="stable",
                             na_position="last").reset_index(drop=True)

