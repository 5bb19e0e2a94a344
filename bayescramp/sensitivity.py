"""Sensitivity functions, tornado tables and tuning, in closed form.

``P(e)`` is multilinear in the network's parameters. Vary one parameter θ (a table entry,
the rest of its row co-varying proportionally as :func:`bayescramp.spec.with_parameters`
does, or a noisy-OR leak or link) and every CPT entry of its node becomes an affine
function of θ, ``table(θ) = offset + slope * θ``. Writing ``G(x, u) = ∂P(e)/∂P(x | u)`` (the
network polynomial's partial derivative, which does not depend on that node's CPT),

    P(e)(θ)    = γ θ + δ,    γ = Σ slope · G,     δ = P(e) + Σ (offset - table) · G
    P(y, e)(θ) = α θ + β,    α = Σ slope · G_y,   β = P(y, e) + Σ (offset - table) · G_y

so the posterior is the sensitivity function ``f(θ) = (αθ + β) / (γθ + δ)`` (Castillo,
Gutiérrez & Hadi 1997; Coupé & van der Gaag 2002). ``G`` comes from the family marginals
``P(x, u | e)`` of one propagation: ``G = P(x, u, e) / P(x | u)`` (Kjærulff & van der Gaag
2000); ``G_y`` likewise from one propagation with the target added to the evidence. Where
a needed CPT entry is zero that division is undefined, so ``G`` is then read from one extra
propagation with that node's CPT replaced by ones (which is ``G`` itself). When the engine
compiled an enumerated core (a small joint of the non-leaf nodes, as for the default model),
``G`` of every node is instead read off that joint with the node's own factor left out: a
few matrix products per node, exact for zero entries too. Either way every parameter of the
network costs about two propagations in all; inference is never re-run per parameter.

All coefficients are kept divided by ``P(e)`` internally, so rows whose ``P(e)`` underflows
still give exact posteriors; the tables report them multiplied back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list, is_number
from ._errors import InputError, one_of
from .engine import CompiledNetwork, absorbed_nodes, distinct_rows, propagate
from .evidence import case_evidence, case_likelihood, impossible_evidence_error
from .scoring import STATUS_IMPOSSIBLE, STATUS_OK, cell_problems, check_column_labels, encode_frame, invalid_error
from .spec import NoisyOrCPD, Spec, TableCPD, parameters_by_id

__all__ = [
    "DEFAULT_TARGET",
    "ParameterEffect",
    "SensitivityFunctions",
    "parameter_effects",
    "sensitivity_functions",
    "sensitivity",
    "tune",
    "cd_distance",
    "parse_target",
]

#: The target reported when none is given.
DEFAULT_TARGET = ("potassium_deficiency", "present")

#: CPT entries at or below this are treated as zero (``G`` is then propagated, not divided out).
_TINY = 1e-150
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
    """A ``(node, state)`` pair from ``("node", "state")`` or ``"node=state"``, checked against the network.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> parse_target(compile_spec(load_spec()), "magnesium_deficiency=present")
    ('magnesium_deficiency', 'present')
    """
    if isinstance(target, str):
        node, sep, state = target.partition("=")
        if not sep:
            raise InputError(f"target {target!r}: expected node=state, e.g. potassium_deficiency=present.")
    elif isinstance(target, (tuple, list)) and len(target) == 2 and all(isinstance(t, str) for t in target):
        node, state = target
    else:
        raise InputError(f"target: got {target!r}; expected a (node, state) pair or \"node=state\".")
    if node not in network.states:
        raise InputError(f"target {node}={state}: unknown node {node!r}; expected one of {one_of(network.names)}.")
    if state not in network.states[node]:
        raise InputError(f"target {node}={state}: unknown state {state!r}; expected one of "
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
    if parameters is None:
        wanted = list(known)
    else:
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
        wanted = list(dict.fromkeys(wanted))
    effects = []
    for parameter_id in wanted:
        name, parameter = known[parameter_id]
        node = spec.nodes[name]
        table = network.tables[name]
        if isinstance(node.cpd, TableCPD):
            offset, slope, configuration = _table_effect(spec, name, parameter_id, table)
        else:
            offset, slope, configuration = _noisy_or_effect(spec, name, parameter_id, table)
        effects.append(ParameterEffect(id=parameter_id, node=name, configuration=configuration,
                                       value=float(parameter.value), low=float(parameter.low),
                                       high=float(parameter.high), offset=offset, slope=slope))
    return effects


def _table_effect(spec: Spec, name: str, parameter_id: str, table: np.ndarray):
    node = spec.nodes[name]
    for row in node.cpd.rows:
        for state, parameter in row.probability.items():
            if parameter is not None and parameter.id == parameter_id:
                break
        else:
            continue
        break
    column = tuple(spec.nodes[p].states.index(s) for p, s in zip(node.parents, row.when))
    j = node.states.index(state)
    theta = float(table[column + (j,)])
    offset, slope = table.copy(), np.zeros_like(table)
    k = len(node.states)
    # mirror with_parameters: the rest of the row is rescaled by (1 - θ') / (1 - θ), or
    # shares 1 - θ' equally when the entry was 1
    if theta < 1.0:
        offset[column] = table[column] / (1.0 - theta)
        slope[column] = -table[column] / (1.0 - theta)
    else:
        offset[column] = 1.0 / (k - 1)
        slope[column] = -1.0 / (k - 1)
    offset[column + (j,)] = 0.0
    slope[column + (j,)] = 1.0
    configuration = ",".join(f"{p}={s}" for p, s in zip(node.parents, row.when))
    return offset, slope, configuration


def _noisy_or_effect(spec: Spec, name: str, parameter_id: str, table: np.ndarray):
    node = spec.nodes[name]
    cpd: NoisyOrCPD = node.cpd
    cards = [len(spec.nodes[p].states) for p in node.parents]

    def factor(axis: int, parent: str) -> np.ndarray:
        states = spec.nodes[parent].states
        values = np.ones(len(states))
        for state, link in cpd.links.get(parent, {}).items():
            values[states.index(state)] = 1.0 - link.value
        shape = [1] * len(cards)
        shape[axis] = len(states)
        return values.reshape(shape)

    if parameter_id == cpd.leak.id:
        # P(off | u) = (1 - leak) * c(u)
        inactive_free = np.ones(cards)
        for axis, parent in enumerate(node.parents):
            inactive_free = inactive_free * factor(axis, parent)
        mask = np.ones(cards, dtype=bool)
        configuration = ""
    else:
        parent, state = next((p, s) for p, by_state in cpd.links.items() for s, q in by_state.items()
                             if q.id == parameter_id)
        axis = node.parents.index(parent)
        inactive_free = np.full(cards, 1.0 - cpd.leak.value)
        for other_axis, other in enumerate(node.parents):
            if other_axis != axis:
                inactive_free = inactive_free * factor(other_axis, other)
        selector = np.zeros(cards[axis], dtype=bool)
        selector[spec.nodes[parent].states.index(state)] = True
        shape = [1] * len(cards)
        shape[axis] = cards[axis]
        mask = np.broadcast_to(selector.reshape(shape), cards)
        configuration = f"{parent}={state}"
    offset, slope = table.copy(), np.zeros_like(table)
    offset[..., 0] = np.where(mask, inactive_free, table[..., 0])
    slope[..., 0] = np.where(mask, -inactive_free, 0.0)
    offset[..., 1] = np.where(mask, 1.0 - inactive_free, table[..., 1])
    slope[..., 1] = np.where(mask, inactive_free, 0.0)
    return offset, slope, configuration


@dataclass(frozen=True)
class SensitivityFunctions:
    """The sensitivity functions of many parameters for a batch of evidence rows.

    ``f(θ) = (alpha θ + beta) / (gamma θ + delta)`` for row ``r`` and parameter ``j`` with
    ``alpha[r, j]`` etc. **divided by P(e) of the row** (so they stay finite however small
    ``P(e)`` is); multiply by :attr:`evidence_probability` for ``P(y, e)`` and ``P(e)``.

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
        1e-12 of the current ``P(e)``) or the row is impossible.
        """
        numerator = self.alpha * theta + self.beta
        denominator = self.gamma * theta + self.delta
        positive = self._possible(theta, denominator)
        return np.where(positive, numerator / np.where(positive, denominator, 1.0), np.nan)

    def _possible(self, theta, denominator: np.ndarray) -> np.ndarray:
        # P(e)(θ) = 0 comes out as rounding noise of the size of its terms (P(e)(value) / P(e) = 1
        # is one of them), not as an exact 0
        scale = 1.0 + np.abs(self.gamma * theta) + np.abs(self.delta)
        return denominator > _ZERO_RELATIVE * scale

    def derivative(self, theta) -> np.ndarray:
        """``f'(θ) = (αδ − βγ) / (γθ + δ)²`` ``[n_rows, n_params]``."""
        denominator = self.gamma * theta + self.delta
        positive = self._possible(theta, denominator)
        return np.where(positive, (self.alpha * self.delta - self.beta * self.gamma)
                        / np.where(positive, denominator, 1.0) ** 2, np.nan)


def sensitivity_functions(spec: Spec, network: CompiledNetwork, likelihood: Mapping[str, np.ndarray],
                          target: Any = DEFAULT_TARGET, *, parameters: Sequence[str] | str | None = None,
                          n_rows: int | None = None, method: str = "auto") -> SensitivityFunctions:
    """Coefficients of every selected parameter's sensitivity function, for a batch of rows.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    likelihood : mapping
        Node -> ``[n_rows, n_states]`` evidence likelihood (as for :func:`bayescramp.engine.propagate`).
    target : (node, state) or "node=state"
    parameters : sequence of str, optional
        Parameter ids or node names (default: all).
    n_rows : int, optional
        Needed only when ``likelihood`` is empty.
    method : {"auto", "junction_tree"}
        ``auto`` enumerates the engine's small core when the network has one (the default
        model: a few matrix products per node, nothing divided by a CPT entry) and otherwise
        reads family marginals off the junction tree; ``junction_tree`` forces the latter.

    Returns
    -------
    SensitivityFunctions

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import case_likelihood
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> functions = sensitivity_functions(spec, network, case_likelihood(network.states, {"leg_cramps": "yes"}))
    >>> functions.alpha.shape == (1, len(functions.ids))
    True
    """
    node_y, state_y = parse_target(network, target)
    effects = parameter_effects(spec, network, parameters)
    if n_rows is None:
        sizes = {np.shape(v)[0] for v in likelihood.values()}
        if len(sizes) != 1:
            raise InputError(f"likelihood: arrays have row counts {sorted(sizes)}; expected one common count "
                             "(or pass n_rows when nothing is observed).")
        n_rows = sizes.pop()
    likelihood = {k: np.asarray(v, dtype=float) for k, v in likelihood.items()}
    indicator = np.zeros(len(network.states[node_y]))
    indicator[network.states[node_y].index(state_y)] = 1.0
    with_target = dict(likelihood)
    with_target[node_y] = likelihood.get(node_y, np.ones((n_rows, indicator.size))) * indicator

    nodes = list(dict.fromkeys(e.node for e in effects))
    if method not in ("auto", "junction_tree"):
        raise InputError(f"method: got {method!r}; expected \"auto\" or \"junction_tree\".")
    enumeration = _enumeration(network) if method == "auto" else None
    if enumeration is not None:
        if node_y in enumeration.nodes:
            # a core target: the second pass is the first with the configurations of y only
            mask = (enumeration.state_of[node_y] == network.states[node_y].index(state_y)).astype(float)
            (derivatives, log_scale, impossible), (derivatives_y, log_scale_y, impossible_y) = \
                _derivatives_enumerated(network, enumeration, likelihood, nodes, n_rows, masks=[mask])
        else:
            [(derivatives, log_scale, impossible)] = _derivatives_enumerated(network, enumeration, likelihood,
                                                                             nodes, n_rows)
            [(derivatives_y, log_scale_y, impossible_y)] = _derivatives_enumerated(network, enumeration, with_target,
                                                                                   nodes, n_rows)
        log_pe = np.where(impossible, -np.inf, log_scale)
        posterior = np.where(impossible, np.nan, np.where(impossible_y, 0.0, _ratio(log_scale_y, log_scale,
                                                                                     impossible)))
    else:
        derivatives, derivatives_y, posterior, log_pe, impossible = _derivatives_junction_tree(
            network, likelihood, with_target, nodes, n_rows, node_y, state_y)
    posterior_or_zero = np.where(impossible, 0.0, posterior)

    n_params = len(effects)
    alpha, beta, gamma, delta = (np.zeros((n_rows, n_params)) for _ in range(4))
    for name in nodes:
        columns = [j for j, e in enumerate(effects) if e.node == name]
        table = network.tables[name]
        offsets = np.stack([effects[j].offset - table for j in columns]).reshape(len(columns), -1)
        slopes = np.stack([effects[j].slope for j in columns]).reshape(len(columns), -1)
        derivative, derivative_y = derivatives[name], derivatives_y[name]
        if enumeration is not None:
            # G / P(e) and G_y / P(e) from their own scales
            derivative = derivative * _ratio(log_scale, log_scale, impossible)[:, None]
            derivative_y = derivative_y * _ratio(log_scale_y, log_scale, impossible)[:, None]
        gamma[:, columns] = derivative @ slopes.T
        delta[:, columns] = 1.0 + derivative @ offsets.T
        alpha[:, columns] = derivative_y @ slopes.T
        beta[:, columns] = posterior_or_zero[:, None] + derivative_y @ offsets.T
    for array in (alpha, beta, gamma, delta):
        array[impossible] = np.nan
    return SensitivityFunctions(effects=effects, target=(node_y, state_y), alpha=alpha, beta=beta, gamma=gamma,
                                delta=delta, posterior=posterior, log_evidence_probability=log_pe,
                                impossible=impossible)


def _ratio(log_numerator: np.ndarray, log_pe: np.ndarray, impossible: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(impossible | ~np.isfinite(log_numerator), 0.0, np.exp(log_numerator - np.where(
            impossible, 0.0, log_pe)))


def _derivatives_junction_tree(network: CompiledNetwork, likelihood, with_target, nodes: list[str], n_rows: int,
                               node_y: str, state_y: str):
    """``G / P(e)`` and ``G_y / P(e)`` per node ``[n_rows, cells]`` from family marginals.

    Two propagations, plus two per node with a zero CPT entry (its ``G`` cannot be divided out).
    """
    base = propagate(network, likelihood, targets=[node_y], families=nodes, n_rows=n_rows)
    joint = propagate(network, with_target, targets=[], families=nodes, n_rows=n_rows)
    log_pe = base.log_evidence_probability
    impossible = base.impossible
    posterior = base.marginals[node_y][:, network.states[node_y].index(state_y)]
    posterior_or_zero = np.where(impossible, 0.0, posterior)
    derivatives, derivatives_y = {}, {}
    for name in nodes:
        flat_table = network.tables[name].reshape(-1)
        if (flat_table <= _TINY).any():
            derivatives[name], derivatives_y[name] = _derivatives_by_propagation(network, name, likelihood,
                                                                                 with_target, n_rows, log_pe)
            continue
        family = np.nan_to_num(base.families[name].reshape(n_rows, -1))
        family_y = np.nan_to_num(joint.families[name].reshape(n_rows, -1))
        derivatives[name] = family / flat_table
        derivatives_y[name] = family_y * posterior_or_zero[:, None] / flat_table
    return derivatives, derivatives_y, posterior, log_pe, impossible


def _derivatives_by_propagation(network: CompiledNetwork, name: str, likelihood, with_target, n_rows: int,
                                log_pe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G / P(e)`` and ``G_y / P(e)`` for one node, from propagations with its CPT replaced by ones."""
    ones = {name: np.ones((1,) + network.tables[name].shape)}
    results = []
    for evidence in (likelihood, with_target):
        result = propagate(network, evidence, targets=[], families=[name], tables=ones, n_rows=n_rows)
        scale = np.exp(np.where(result.impossible, -np.inf, result.log_evidence_probability - log_pe))
        family = np.nan_to_num(result.families[name].reshape(n_rows, -1))
        results.append(family * np.where(np.isfinite(scale), scale, 0.0)[:, None])
    return results[0], results[1]


#: Rows handled together on the enumerated path (keeps the [rows, core] blocks in cache).
_BLOCK_ROWS = 512


#: Largest joint of the core (non-absorbed) nodes that is enumerated.
_CORE_LIMIT = 4096


@dataclass(frozen=True)
class _Enumeration:
    """The network split into a small enumerated *core* and absorbed single-parent chains.

    A node is absorbed when it has parents and its children are all absorbed with it as
    their only parent (the symptoms and cramp timing of the default model); the rest form
    the core, whose joint ``prior[S]`` is enumerated. An *attached* node is absorbed with
    all its parents in the core.
    """

    nodes: tuple[str, ...]
    prior: np.ndarray                      # [S]
    state_of: dict[str, np.ndarray]        # core node -> [S] its state in each configuration
    attached: tuple[str, ...]
    emission: dict[str, np.ndarray]        # attached node -> [k, S] P(node | its parents' states in S)
    children: dict[str, tuple[str, ...]]   # absorbed node -> its absorbed children


def _enumeration(network: CompiledNetwork) -> _Enumeration | None:
    """The core enumeration of ``network``, or None when the core's joint is too large."""
    names, parents = network.names, network.parents
    children = {n: [c for c in names if n in parents[c]] for n in names}
    absorbed = absorbed_nodes(names, parents)
    core = [n for n in names if n not in absorbed]
    cards = [len(network.states[n]) for n in core]
    if not absorbed or float(np.prod([float(c) for c in cards])) > _CORE_LIMIT:
        return None
    grid = np.indices(cards).reshape(len(core), -1)
    state_of = {n: grid[j] for j, n in enumerate(core)}
    prior = np.ones(grid.shape[1])
    for name in core:
        prior = prior * network.tables[name][tuple(state_of[p] for p in parents[name]) + (state_of[name],)]
    attached = tuple(n for n in names if n in absorbed and all(p not in absorbed for p in parents[n]))
    emission = {n: np.ascontiguousarray(network.tables[n][tuple(state_of[p] for p in parents[n])].T)
                for n in attached}
    return _Enumeration(nodes=tuple(core), prior=prior, state_of=state_of, attached=attached, emission=emission,
                        children={n: tuple(children[n]) for n in absorbed})


def _derivatives_enumerated(network: CompiledNetwork, core: _Enumeration, likelihood: Mapping[str, np.ndarray],
                            nodes: list[str], n_rows: int, *, masks: Sequence[np.ndarray] = ()
                            ) -> list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """``G = ∂P(e)/∂(CPT entry)`` for every CPT entry of ``nodes``, by enumerating the core.

    The core's joint ``prior[S]`` times one evidence factor per attached subtree or observed
    core node gives ``P(e)``; ``G`` of a core node is that sum with the node's own CPT factor
    left out, of an absorbed node the outside message times the evidence below it. Nothing
    is divided by a CPT entry, so zero entries are exact. Returns ``G`` scaled by
    ``exp(-log_scale)`` per row, ``log_scale`` and the impossible-row mask (``P(e) = 0``).

    Each of ``masks`` (``[S]``, 0/1 over core configurations: a core target's state) adds
    one more result, for the evidence plus that finding. It shares every elementwise product
    with the first result: only the weight matrices are masked.
    """
    core_nodes = list(core.nodes)
    size = core.prior.size
    children = core.children
    cell_of = {}
    for name in core_nodes:
        parents = network.parents[name]
        shape = network.tables[name].shape
        cell_of[name] = np.ravel_multi_index(tuple(core.state_of[p] for p in parents) + (core.state_of[name],), shape)
    # core node: [S, cells] indicator of its CPT entry in each configuration, weighted by the
    # other core CPTs (its own factor left out)
    cell_weights = {}
    for name in nodes:
        if name in core.nodes:
            factor = np.ones(size)
            for other in core_nodes:
                if other != name:
                    factor = factor * network.tables[other].reshape(-1)[cell_of[other]]
            weights = np.zeros((size, network.tables[name].size))
            weights[np.arange(size), cell_of[name]] = factor
            cell_weights[name] = weights
    # attached node: [S, parent cells] indicator, weighted by the core prior
    parent_weights = {}
    for name in core.attached:
        parents = network.parents[name]
        cells = (np.ravel_multi_index(tuple(core.state_of[p] for p in parents), network.tables[name].shape[:-1])
                 if parents else np.zeros(size, dtype=int))
        weights = np.zeros((size, int(np.prod(network.tables[name].shape[:-1]))))
        weights[np.arange(size), cells] = core.prior
        parent_weights[name] = weights
    # with every emission entry positive, an attached factor is zero only on a dead row, so
    # dividing it out of the product is exact to rounding; zero entries need prefix/suffix products
    divide = all(core.emission[name].min() > 0 for name in core.attached)
    variants = [np.ones(size)] + [np.asarray(m, dtype=float) for m in masks]
    masked_cells = [{n: w * m[:, None] for n, w in cell_weights.items()} for m in variants]
    masked_parents = [{n: w * m[:, None] for n, w in parent_weights.items()} for m in variants]
    masked_prior = [core.prior * m for m in variants]
    outs = [{name: np.zeros((n_rows, network.tables[name].size)) for name in nodes} for _ in variants]
    log_scales = [np.zeros(n_rows) for _ in variants]
    impossibles = [np.zeros(n_rows, dtype=bool) for _ in variants]
    for start in range(0, n_rows, _BLOCK_ROWS):
        rows = slice(start, min(start + _BLOCK_ROWS, n_rows))
        n_block = rows.stop - rows.start
        direct = {n: np.asarray(v, dtype=float)[rows] for n, v in likelihood.items()}
        below, messages = {}, {}

        def lam_tilde(name: str) -> np.ndarray:
            # evidence on name and everything absorbed below it, [n_block, k]
            values = direct.get(name, np.ones((n_block, len(network.states[name]))))
            for child in children[name]:
                messages[child] = lam_tilde(child) @ network.tables[child].T
                values = values * messages[child]
            below[name] = values
            return values

        factors, owners, tops = [], [], {}
        block_scale = np.zeros(n_block)
        dead = np.zeros(n_block, dtype=bool)
        for name in core.attached:
            values = lam_tilde(name)
            top = values.max(axis=1)
            dead |= top <= 0
            top = np.where(top > 0, top, 1.0)
            block_scale += np.log(top)
            tops[name] = top
            below[name] = values / top[:, None]
            factors.append(below[name] @ core.emission[name])
            owners.append(name)
        for name in core_nodes:
            if name in direct:
                values = direct[name]
                top = values.max(axis=1)
                dead |= top <= 0
                top = np.where(top > 0, top, 1.0)
                block_scale += np.log(top)
                factors.append((values / top[:, None])[:, core.state_of[name]])
                owners.append(name)
        # every attached subtree contributes a factor (all ones when nothing below it is observed)
        if divide:
            # attached factors are positive on every live row: leave one out by dividing it out;
            # on a dead row (a factor all zero) the derivatives still matter, so multiply exactly
            product = factors[0] if factors else np.ones((n_block, size))
            for f in factors[1:]:
                product = product * f
            dead_rows = np.flatnonzero(dead)
            left_out = {}
            for k, name in enumerate(owners):
                if name not in core.attached:
                    continue
                if not dead_rows.size:
                    left_out[name] = product / factors[k]
                    continue
                left_out[name] = product / np.where(dead[:, None], 1.0, factors[k])
                exact = np.ones((dead_rows.size, size))
                for j, f in enumerate(factors):
                    if j != k:
                        exact = exact * f[dead_rows]
                left_out[name][dead_rows] = exact
        else:
            # prefix/suffix products give every leave-one-out product without dividing
            prefix = [np.ones((n_block, size))]
            for f in factors:
                prefix.append(prefix[-1] * f)
            suffix = [np.ones((n_block, size))]
            for f in reversed(factors):
                suffix.append(suffix[-1] * f)
            suffix = suffix[::-1]
            product = prefix[-1]
            left_out = {name: prefix[k] * suffix[k + 1] for k, name in enumerate(owners) if name in core.attached}
        for v in range(len(variants)):
            out = outs[v]
            total = product @ masked_prior[v]
            dead_v = dead | (total <= 0)
            peak = np.where(dead_v, 1.0, total)
            log_scales[v][rows] = block_scale + np.log(peak)
            impossibles[v][rows] = dead_v
            for name in nodes:
                if name in core.nodes:
                    out[name][rows] = (product @ masked_cells[v][name]) / peak[:, None]

            def visit(name: str, into: np.ndarray, scale: np.ndarray, evidence_below: np.ndarray,
                      child_scale: np.ndarray, out: dict = out) -> None:
                # into[b, parent cell]: everything outside name's family; evidence_below[b, k]: evidence under it
                if name in out:
                    out[name][rows] = ((into[:, :, None] * evidence_below[:, None, :]).reshape(n_block, -1)
                                       * scale[:, None])
                reaching = into @ network.tables[name].reshape(into.shape[1], -1)
                for child in children[name]:
                    others = direct.get(name, np.ones_like(reaching))
                    for sibling in children[name]:
                        if sibling != child:
                            others = others * messages[sibling]
                    visit(child, reaching * others, child_scale, below[child], child_scale)

            for name in core.attached:
                # the attached node's own evidence factor was rescaled by its row maximum; the raw
                # evidence of its subtree carries that scale back
                visit(name, left_out[name] @ masked_parents[v][name], 1.0 / peak, below[name],
                      1.0 / (peak * tops[name]))
    return list(zip(outs, log_scales, impossibles))


def _likelihood_for(network: CompiledNetwork, evidence) -> tuple[dict[str, np.ndarray], int, np.ndarray | None]:
    """Likelihood arrays of distinct evidence patterns, their count, and each input row's pattern."""
    if isinstance(evidence, pd.DataFrame):
        check_column_labels(evidence, caller="sensitivity")
        encoded, _ = encode_frame(network, evidence)
        listed, n_bad = cell_problems(encoded, source="data", row_label=lambda r: f"row {r}")
        if n_bad:
            raise invalid_error(listed, n_bad)
        n_rows = len(evidence)
        if not encoded:
            return {}, 1, np.zeros(n_rows, dtype=np.int64)
        codes = np.column_stack([c.codes for c in encoded])
        patterns, inverse = distinct_rows(codes, [len(c.alphabet.vectors) for c in encoded])
        likelihood = {c.node: c.alphabet.vectors[patterns[:, j]] for j, c in enumerate(encoded)}
        return likelihood, patterns.shape[0], inverse
    return case_likelihood(network.states, evidence), 1, None


def sensitivity(spec: Spec, network: CompiledNetwork, evidence, target: Any = DEFAULT_TARGET, *,
                parameters: Sequence[str] | str | None = None, summary: str = "mean") -> pd.DataFrame:
    """Sensitivity of one posterior to every parameter, for one case or a cohort.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    evidence : mapping or DataFrame
        One case (node -> state, set of states or likelihood) or a cohort (columns named
        like nodes, blank = no finding).
    target : (node, state) or "node=state"
        The posterior studied, ``P(target | e)``.
    parameters : sequence of str, optional
        Parameter ids or node names (default: every parameter).
    summary : {"mean", "rows"}
        For a cohort only: ``"mean"`` averages each column over the rows whose evidence
        is possible (one row per parameter, plus ``swing_max`` and ``n_rows``); ``"rows"``
        gives one row per (input row, parameter) with a leading ``row`` column (0-based
        position), in parameter order within each row, and a last ``status`` column (``ok``
        or ``impossible_evidence``, whose numbers are NaN); its index repeats the input row's
        index entry (levels and names kept), so it aligns with the input by label.

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
    >>> table = sensitivity(spec, compile_spec(spec), {"leg_cramps": "yes", "diuretic": "thiazide"})
    >>> table.iloc[0]["id"]
    'link(potassium_deficiency<-diuretic=thiazide)'
    """
    if summary not in ("mean", "rows"):
        raise InputError(f"summary: got {summary!r}; expected \"mean\" or \"rows\".")
    likelihood, n_patterns, inverse = _likelihood_for(network, evidence)
    functions = sensitivity_functions(spec, network, likelihood, target, parameters=parameters, n_rows=n_patterns)
    if inverse is None and functions.impossible[0]:
        raise impossible_evidence_error(case_evidence(evidence))
    low, high, value = functions.low, functions.high, functions.value
    at_low = functions.evaluate(low)
    at_high = functions.evaluate(high)
    per_pattern = {
        "alpha": functions.alpha * functions.evidence_probability[:, None],
        "beta": functions.beta * functions.evidence_probability[:, None],
        "gamma": functions.gamma * functions.evidence_probability[:, None],
        "delta": functions.delta * functions.evidence_probability[:, None],
        "posterior": np.broadcast_to(functions.posterior[:, None], at_low.shape),
        "sensitivity_value": np.abs(functions.derivative(value)),
        "posterior_at_low": at_low,
        "posterior_at_high": at_high,
        "swing": np.abs(at_high - at_low),
    }
    effects = functions.effects
    described = {"id": [e.id for e in effects], "node": [e.node for e in effects],
                 "configuration": [e.configuration for e in effects], "value": value, "low": low, "high": high}
    if inverse is None:
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
    weights = np.bincount(inverse[possible], minlength=n_patterns).astype(float)
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


def tune(spec: Spec, network: CompiledNetwork, evidence: Mapping[str, Any] | None, target: Any,
         threshold: float | Any, *, parameters: Sequence[str] | str | None = None) -> pd.DataFrame:
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
    target : (node, state) or "node=state"
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
    ...              "potassium_deficiency=present", 0.5)
    >>> bool(table["achievable"].any())
    True
    """
    if isinstance(evidence, pd.DataFrame):
        raise InputError(f"tune: evidence got a DataFrame of {len(evidence)} rows; expected a mapping node -> finding "
                         "for one case (tune one case at a time).")
    evidence = case_evidence(evidence, where="tune: evidence")
    likelihood = case_likelihood(network.states, evidence)
    functions = sensitivity_functions(spec, network, likelihood, target, parameters=parameters, n_rows=1)
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
        rival = sensitivity_functions(spec, network, likelihood, threshold, parameters=parameters, n_rows=1)
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

