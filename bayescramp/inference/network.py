"""Compiled networks and the engine's entry points: posteriors, ``P(e)``, families, derivatives, MAP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .._errors import InputError, one_of
from ..evidence import BatchEvidence, distinct_rows
from ..spec import ModelInfo, Spec, model_info, probability_table, topological_order
from .condition import Plan, block_inputs, cut_candidates, mask_order, plan_masks
from .core import Core, Prepared, build_core, contracted, core_derivatives, core_pass, prepare_draws
from .tree import Tree, build_tree, cpt_products, families, left_out_families, marginals, max_product, sum_product

__all__ = ["CompiledNetwork", "Propagation", "Derivatives", "MostProbable", "compile_spec", "compile_network",
           "propagate", "propagate_draws", "cpt_derivatives", "most_probable", "propagate_codes", "distinct_rows",
           "CORE_BLOCK_ROWS", "WORK_ENTRIES", "DRAW_WORK_ENTRIES"]

#: Rows propagated together on the core path, at most (keeps the [rows, scope] blocks in cache).
CORE_BLOCK_ROWS = 4096
#: Rows x largest core-tree clique entries propagated together on the core path.
CORE_WORK_ENTRIES = 1 << 17
#: Rows x largest clique entries propagated together on the general path (bounds memory).
WORK_ENTRIES = 1 << 22
#: Rows x draws x largest clique entries propagated together by :func:`propagate_draws`.
DRAW_WORK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class CompiledNetwork:
    """A network compiled for batched inference.

    Attributes
    ----------
    names : list of str
        Node names in topological order; node ``i`` in the arrays below.
    states : dict
        Node name -> tuple of state names.
    parents : dict
        Node name -> tuple of parent names.
    tables : dict
        Node name -> CPD array ``[*parent_cards, n_states]``.
    tree : Tree
        The junction tree of the whole network.
    core : Core or None
        The core fast path, when the network has nodes hanging off a core.
    info : ModelInfo
        Default targets, positive states, observable nodes (the priors file's ``[meta]``).
    """

    names: list[str]
    states: dict[str, tuple[str, ...]]
    parents: dict[str, tuple[str, ...]]
    tables: dict[str, np.ndarray]
    tree: Tree = field(repr=False)
    core: Core | None = field(default=None, repr=False)
    info: ModelInfo | None = field(default=None, repr=False)
    variants: dict = field(default_factory=dict, repr=False, compare=False)   # MAP trees, conditioned cores

    @property
    def cards(self) -> dict[str, int]:
        """Node name -> number of states."""
        return {name: len(s) for name, s in self.states.items()}

    @property
    def index(self) -> dict[str, int]:
        """Node name -> index."""
        return self.tree.index

    @property
    def cliques(self) -> list[tuple[int, ...]]:
        """Junction-tree cliques as sorted node indices."""
        return self.tree.junction.cliques

    @property
    def family_clique(self) -> dict[str, int]:
        """Node -> the clique holding its family (its CPT and evidence go there)."""
        return self.tree.clique_of


@dataclass
class Propagation:
    """Result of :func:`propagate` for a batch of rows.

    Attributes
    ----------
    marginals : dict
        Node -> posterior ``[n_rows, n_states]``; rows with impossible evidence hold NaN.
    log_evidence_probability : ndarray
        ``log P(e)`` per row (``-inf`` when impossible).
    impossible : ndarray of bool
        Rows whose evidence has probability zero under the model.
    families : dict
        Node -> posterior of its family ``P(parents, node | e)`` as
        ``[n_rows, *parent_cards, n_states]``, for the nodes asked for.
    """

    marginals: dict[str, np.ndarray]
    log_evidence_probability: np.ndarray
    impossible: np.ndarray
    families: dict[str, np.ndarray]

    @property
    def evidence_probability(self) -> np.ndarray:
        """``P(e)`` per row (0 for impossible rows; may underflow to 0 below ~1e-308)."""
        return np.exp(self.log_evidence_probability)


def compile_spec(spec: Spec) -> CompiledNetwork:
    """Compile a validated :class:`~bayescramp.spec.Spec` for batched inference.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> network.names[0]
    'sex'
    """
    names = topological_order(spec)
    return compile_network(states={n: tuple(spec.nodes[n].states) for n in names},
                           parents={n: tuple(spec.nodes[n].parents) for n in names},
                           tables={n: probability_table(spec, n) for n in names}, info=model_info(spec))


def compile_network(states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
                    tables: Mapping[str, np.ndarray], *, enumerate_core: bool = True,
                    info: ModelInfo | None = None) -> CompiledNetwork:
    """Compile a network given as plain arrays.

    Parameters
    ----------
    states : mapping
        Node -> state names. Iteration order must list parents before children.
    parents : mapping
        Node -> parent names.
    tables : mapping
        Node -> CPD ``[*parent_cards, n_states]``, the last axis summing to 1.
    enumerate_core : bool
        Also prepare the core fast path when the network has nodes hanging off a core
        (see :mod:`bayescramp.inference.core`).
    info : ModelInfo, optional
        Default targets and the like; default: the fallbacks of an empty ``[meta]``.

    Raises
    ------
    SpecError
        When a junction-tree clique would exceed :data:`~bayescramp.spec.MAX_TABLE_ENTRIES`.
    """
    names = list(states)
    tables = {n: np.asarray(tables[n], dtype=float) for n in names}
    tree = build_tree(names, [len(states[n]) for n in names], parents, tables)
    return CompiledNetwork(
        names=names, states={n: tuple(states[n]) for n in names}, parents={n: tuple(parents[n]) for n in names},
        tables=tables, tree=tree, core=build_core(names, states, parents, tables) if enumerate_core else None,
        info=info if info is not None else ModelInfo.from_meta({}, names, parents, states))


def _row_count(network: CompiledNetwork, n_rows: int | None, **arrays: Mapping[str, np.ndarray]) -> int:
    """The one row count of every per-row array (tables and factors may also have one shared row)."""
    sizes = {}
    for kind, mapping in arrays.items():
        for name, values in (mapping or {}).items():
            if name not in network.states:
                raise InputError(f"{kind}: unknown node {name!r}; expected one of {one_of(network.names)}.")
            size = np.shape(values)[0] if np.ndim(values) else 0
            if kind == "likelihood" and (np.ndim(values) != 2 or np.shape(values)[1] != len(network.states[name])):
                raise InputError(f"likelihood[{name!r}]: got an array of shape {np.shape(values)}; expected "
                                 f"[n_rows, {len(network.states[name])}], one column per state of {name} "
                                 f"({', '.join(network.states[name])}).")
            if kind == "likelihood" or size != 1:
                sizes[f"{kind}[{name!r}]"] = size
    counts = set(sizes.values()) | ({n_rows} if n_rows is not None else set())
    if len(counts) > 1:
        listed = ", ".join(f"{where} has {size}" for where, size in sizes.items())
        raise InputError(f"propagate: row counts differ ({listed}{'' if n_rows is None else f', n_rows={n_rows}'}); "
                         "expected one row count for every per-row array.")
    if not counts:
        raise InputError("propagate: pass n_rows when no node is observed.")
    return counts.pop()


def _evidence(network: CompiledNetwork, evidence: BatchEvidence,
              **arrays: Mapping[str, np.ndarray] | None) -> tuple[dict[str, np.ndarray], int]:
    """The likelihood arrays of ``evidence`` and its row count, checked against the network and ``arrays``."""
    likelihood = evidence.likelihood()
    return likelihood, _row_count(network, evidence.n_rows, likelihood=likelihood, **arrays)


def _known(network: CompiledNetwork, names: Sequence[str], what: str) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in network.states]
    if unknown:
        raise InputError(f"{what}: unknown node {unknown[0]!r}; expected some of {one_of(network.names)}.")
    return names


def _rows_of(values: np.ndarray, rows: slice) -> np.ndarray:
    return values if values.shape[0] == 1 else values[rows]


def _core_rows(core: Core) -> int:
    return max(64, min(CORE_BLOCK_ROWS, CORE_WORK_ENTRIES // core.tree.largest_clique))


def _blocks(n_rows: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n_rows)) for start in range(0, max(n_rows, 1), max(size, 1))] \
        if n_rows else []


def propagate(network: CompiledNetwork, evidence: BatchEvidence, *,
              targets: Sequence[str] | None = None, families: Sequence[str] = (),
              tables: Mapping[str, np.ndarray] | None = None,
              factors: Mapping[str, np.ndarray] | None = None) -> Propagation:
    """Exact posterior marginals and ``P(e)`` for a batch of evidence rows.

    Parameters
    ----------
    network : CompiledNetwork
        From :func:`compile_spec` or :func:`compile_network`.
    evidence : BatchEvidence
        The rows' findings (:class:`bayescramp.evidence.BatchEvidence`); nodes it leaves out
        are unobserved.
    targets : sequence of str, optional
        Nodes whose posterior marginals are returned (default: every node).
    families : sequence of str
        Nodes whose family posteriors ``P(parents, node | e)`` are returned too.
    tables : mapping, optional
        Per-row CPDs replacing the compiled ones: node -> ``[n_rows or 1, *parent_cards, n_states]``
        (used to score parameter draws).
    factors : mapping, optional
        Per-row factors multiplied into a node's family, node -> ``[n_rows or 1, *parent_cards, n_states]``.

    Returns
    -------
    Propagation
        Marginals (NaN on impossible rows), ``log P(e)`` (``-inf`` when impossible), the
        impossible-row mask and the family posteriors asked for.

    Raises
    ------
    InputError
        Unknown nodes, or per-row arrays whose row counts differ.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> result = propagate(network, BatchEvidence.from_likelihoods({"leg_cramps": np.array([[0.0, 1.0]])}))
    >>> result.marginals["magnesium_deficiency"].shape
    (1, 2)
    """
    likelihood, n_rows = _evidence(network, evidence, tables=tables, factors=factors)
    wanted = list(network.names) if targets is None else _known(network, targets, "targets")
    families = _known(network, families, "families")
    tables = {name: np.asarray(table, dtype=float) for name, table in (tables or {}).items()}
    result = Propagation(marginals={t: np.empty((n_rows, len(network.states[t]))) for t in wanted},
                         log_evidence_probability=np.empty(n_rows), impossible=np.empty(n_rows, dtype=bool),
                         families={name: np.empty((n_rows, *network.tables[name].shape)) for name in families})
    if network.core is not None and not families and not factors and set(wanted) <= set(network.core.nodes):
        for plan in plan_masks(network.variants, network.core, network.names, network.states, network.parents,
                               network.tables, likelihood, wanted, n_rows):
            _propagate_plan(plan, likelihood, tables, wanted, result)
        return result
    for rows in _blocks(n_rows, WORK_ENTRIES // network.tree.largest_clique):
        state = sum_product(network.tree, {k: v[rows] for k, v in likelihood.items()}, rows.stop - rows.start,
                            tables={k: _rows_of(v, rows) for k, v in tables.items()},
                            factors={k: _rows_of(np.asarray(v, dtype=float), rows) for k, v in (factors or {}).items()},
                            distribute=wanted + families)
        _store(result, rows, marginals(state, wanted), _families(state, families), state.log_evidence_probability,
               state.impossible)
    return result


def _propagate_plan(plan: Plan, likelihood: Mapping[str, np.ndarray], tables: Mapping[str, np.ndarray],
                    wanted: Sequence[str], result: Propagation) -> None:
    """Propagate a plan's rows through its conditioned core, block by block, into ``result``."""
    core = plan.conditioned.core
    hard = [name for name in wanted if name in plan.conditioned.hard]
    inside = [name for name in wanted if name not in plan.conditioned.hard]
    for rows in _blocks(len(plan.rows), _core_rows(core)):
        index = plan.rows[rows]
        block = {name: values[index] for name, values in likelihood.items()}
        inputs = block_inputs(plan, rows, tables)
        prepared = Prepared(products=inputs.products, laid_out={}) if inputs.products is not None else None
        found, state = core_pass(core, block, (len(index),), inputs.tables, distribute=inside, prepared=prepared,
                                 emissions=inputs.emissions)
        dead = found.dead | state.impossible
        state.impossible = dead
        block_marginals = marginals(state, inside)
        for name in hard:   # observed in one state: that state
            block_marginals[name] = block[name] / block[name].sum(axis=-1, keepdims=True)
        _store(result, index, block_marginals, {},
               np.where(dead, -np.inf, found.log_scale + state.log_evidence_probability), dead)


def _families(state, names: Sequence[str]) -> dict[str, np.ndarray]:
    return families(state, names) if names else {}


def _store(result: Propagation, rows: slice, block_marginals: Mapping[str, np.ndarray],
           block_families: Mapping[str, np.ndarray], log_pe: np.ndarray, impossible: np.ndarray) -> None:
    for name, marginal in block_marginals.items():
        marginal[impossible] = np.nan
        result.marginals[name][rows] = marginal
    for name, family in block_families.items():
        result.families[name][rows] = family
    result.log_evidence_probability[rows] = log_pe
    result.impossible[rows] = impossible


def propagate_draws(network: CompiledNetwork, evidence: BatchEvidence,
                    tables: Mapping[str, np.ndarray], *, targets: Sequence[str]) -> Propagation:
    """Posterior marginals of every evidence row under every draw of the CPDs: a rows x draws batch.

    The evidence (by row) and the drawn CPDs (by draw) are never repeated for each other: the
    engine works on a two-axis batch ``[rows, draws]`` in which a drawn CPD is shared by every
    row, and a finding's factor under every draw is one matrix product.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
    tables : mapping
        Node -> ``[n_draws, *parent_cards, n_states]``: drawn CPDs (other nodes keep theirs).
    targets : sequence of str

    Returns
    -------
    Propagation
        Marginals ``[n_rows, n_draws, n_states]``, ``log P(e)`` and the impossible mask
        ``[n_rows, n_draws]``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> draws = {"ppi_use": np.array([[0.9, 0.1], [0.8, 0.2]])}     # P(ppi_use) under 2 draws
    >>> evidence = BatchEvidence.from_likelihoods({"leg_cramps": np.array([[0.0, 1.0]])})
    >>> result = propagate_draws(network, evidence, draws, targets=["diuretic"])
    >>> result.marginals["diuretic"].shape
    (1, 2, 5)
    """
    likelihood, n_rows = _evidence(network, evidence)
    targets = _known(network, targets, "targets")
    _known(network, tables, "tables")
    draw_counts = {np.shape(table)[0] for table in tables.values()}
    if len(draw_counts) > 1:
        raise InputError(f"propagate_draws: tables have {sorted(draw_counts)} draws; expected one number of draws.")
    n_draws = draw_counts.pop() if draw_counts else 1
    for name, table in tables.items():
        if np.shape(table)[1:] != network.tables[name].shape:
            raise InputError(f"tables[{name!r}]: got an array of shape {np.shape(table)}; expected [n_draws, "
                             f"{', '.join(map(str, network.tables[name].shape))}] (parent states, then states of "
                             f"{name}).")
    likelihood = {name: np.asarray(values, dtype=float) for name, values in likelihood.items()}
    shared = {name: np.asarray(table, dtype=float)[None] for name, table in tables.items()}
    result = Propagation(marginals={t: np.empty((n_rows, n_draws, len(network.states[t]))) for t in targets},
                         log_evidence_probability=np.empty((n_rows, n_draws)),
                         impossible=np.empty((n_rows, n_draws), dtype=bool), families={})
    use_core = network.core is not None and set(targets) <= set(network.core.nodes)
    largest = network.core.tree.largest_clique if use_core else network.tree.largest_clique
    # the drawn tables' share of the work, done once for every block of rows
    prepared = prepare_draws(network.core, shared) if use_core else cpt_products(network.tree, shared, 2)
    for rows in _blocks(n_rows, max(1, DRAW_WORK_ENTRIES // (n_draws * largest))):
        batch = (rows.stop - rows.start, n_draws)
        block = {name: values[rows][:, None, :] for name, values in likelihood.items()}
        if use_core:
            found, state = core_pass(network.core, block, batch, shared, distribute=targets, prepared=prepared)
            dead = found.dead | state.impossible
            state.impossible = dead
            log_pe = np.where(dead, -np.inf, found.log_scale + state.log_evidence_probability)
        else:
            state = sum_product(network.tree, block, batch, tables=shared, distribute=targets, products=prepared)
            dead, log_pe = state.impossible, state.log_evidence_probability
        _store(result, rows, marginals(state, targets), {}, log_pe, dead)
    return result


@dataclass
class Derivatives:
    """Derivatives of ``P(e)`` (and ``P(y, e)``) with respect to every CPT entry of some nodes.

    Attributes
    ----------
    evidence : dict
        Node -> ``∂P(e)/∂P(x | u) / P(e)``, ``[n_rows, *parent_cards, n_states]``.
    joint : dict
        Node -> ``∂P(y, e)/∂P(x | u) / P(e)`` for the target ``y`` (empty without a target).
    target : tuple of str or None
        ``(node, state)``.
    posterior : ndarray or None
        ``P(y | e)`` per row (NaN where ``P(e) = 0``).
    log_evidence_probability : ndarray
    impossible : ndarray of bool
        Rows with ``P(e) = 0`` at the current tables: their derivatives are not divided by
        ``P(e)`` but absolute (``∂P(e)/∂P(x | u)``), exact as well, since a change of one table
        can make such evidence possible (e.g. a stratum whose prior probability is 0).
    """

    evidence: dict[str, np.ndarray]
    joint: dict[str, np.ndarray]
    target: tuple[str, str] | None
    posterior: np.ndarray | None
    log_evidence_probability: np.ndarray
    impossible: np.ndarray


def cpt_derivatives(network: CompiledNetwork, evidence: BatchEvidence, nodes: Sequence[str], *,
                    target: tuple[str, str] | None = None,
                    weights: Mapping[str, np.ndarray] | None = None) -> Derivatives:
    """``∂P(e)/∂θ`` (and ``∂P(y, e)/∂θ``) for every CPT entry ``θ = P(x | u)`` of ``nodes``, per row.

    ``P(e)`` is multilinear in the CPT entries, so these derivatives give ``P(e)`` and
    ``P(y, e)`` exactly as functions of any change of one node's CPT (the basis of sensitivity
    analysis). They come from the family of each node with its own CPT left out, on the core
    path when the network has one and on the junction tree otherwise; nothing is divided by
    a CPT entry, so zero entries are exact. Derivatives are divided by ``P(e)`` of the row, so
    they stay in range however small ``P(e)`` is; on rows whose evidence is impossible at the
    current tables (``P(e) = 0``) they are absolute.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
    nodes : sequence of str
        Nodes whose CPT entries are differentiated.
    target : (node, state), optional
        Also differentiate ``P(y, e)`` for ``y`` = this finding.
    weights : mapping, optional
        Node -> ``[n_weights, *parent_cards, n_states]``: return each node's derivatives
        contracted with these, ``[n_rows, n_weights]`` (``Σ derivative × weight`` per row and
        weight), without building the per-entry arrays (sensitivity needs only such sums).

    Returns
    -------
    Derivatives

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> evidence = BatchEvidence.from_likelihoods({"leg_cramps": np.array([[0.0, 1.0]])})
    >>> result = cpt_derivatives(network, evidence, ["diuretic"])
    >>> # P(e) is linear in the diuretic's table: sum of derivative x entry gives P(e) back
    >>> round(float((result.evidence["diuretic"][0] * network.tables["diuretic"]).sum()), 12)
    1.0
    """
    likelihood, n_rows = _evidence(network, evidence)
    nodes = list(dict.fromkeys(_known(network, nodes, "nodes")))
    with_target = dict(likelihood)
    if target is not None:
        node_y, state_y = target
        _known(network, [node_y], "target")
        indicator = (np.asarray(network.states[node_y]) == state_y).astype(float)
        with_target[node_y] = likelihood.get(node_y, np.ones((n_rows, indicator.size))) * indicator
    parts: list[tuple[dict[str, np.ndarray], np.ndarray, int]] = []
    size = _core_rows(network.core) if network.core is not None else WORK_ENTRIES // network.tree.largest_clique
    for rows in _blocks(n_rows, max(1, size)):
        n_block = rows.stop - rows.start
        stacked = {name: np.concatenate([likelihood.get(name, np.ones((n_rows, len(network.states[name]))))[rows],
                                         with_target[name][rows]]) if target else with_target[name][rows]
                   for name in with_target}
        derivatives, block_log_pe = _block_derivatives(network, stacked, nodes, 2 * n_block if target else n_block,
                                                       n_block, weights or {})
        parts.append((derivatives, block_log_pe, n_block))
    shapes = {name: (len(weights[name]),) if weights and name in weights else network.tables[name].shape
              for name in nodes}
    evidence, joint, log_pe, log_joint = _joined(parts, nodes, n_rows, target is not None, shapes)
    impossible = ~np.isfinite(log_pe)
    posterior = None
    if target:
        with np.errstate(invalid="ignore"):
            posterior = np.where(impossible, np.nan, np.exp(log_joint - np.where(impossible, 0.0, log_pe)))
    return Derivatives(evidence=evidence, joint=joint, target=target, posterior=posterior,
                       log_evidence_probability=log_pe, impossible=impossible)


def _joined(parts: list, nodes: Sequence[str], n_rows: int, stacked: bool, shapes: Mapping[str, tuple]):
    """Per-block derivatives (base rows first, then their copies with the target) joined into whole arrays."""
    def joined(pieces: list[np.ndarray], empty: tuple) -> np.ndarray:
        return pieces[0] if len(pieces) == 1 else (np.concatenate(pieces) if pieces else np.zeros(empty))

    evidence = {name: joined([d[name][:n] for d, _, n in parts], (0, *shapes[name])) for name in nodes}
    joint = {name: joined([d[name][n:] for d, _, n in parts], (0, *shapes[name])) for name in nodes} if stacked \
        else {}
    log_pe = joined([log[:n] for _, log, n in parts], (0,))
    log_joint = joined([log[n:] for _, log, n in parts], (0,)) if stacked else None
    return evidence, joint, log_pe, log_joint


def _block_derivatives(network: CompiledNetwork, likelihood: Mapping[str, np.ndarray], nodes: Sequence[str],
                       n_rows: int, n_base: int, weights: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray],
                                                                                           np.ndarray]:
    """Derivatives of one block, relative to ``P(e)`` of its first ``n_base`` rows (repeated for the rest)."""
    def reference(log_pe: np.ndarray) -> np.ndarray:
        # log P(e) of the base rows, repeated for the stacked copy (0 where impossible)
        base = np.where(np.isfinite(log_pe[:n_base]), log_pe[:n_base], 0.0)
        return np.tile(base, n_rows // n_base)

    if network.core is not None:
        derivatives, log_pe = core_derivatives(network.core, likelihood, n_rows, nodes, reference, weights)
    else:
        state = sum_product(network.tree, likelihood, n_rows, distribute=nodes)
        log_pe = state.log_evidence_probability
        derivatives = contracted(left_out_families(state, nodes, reference(log_pe)), weights)
    return derivatives, log_pe


@dataclass
class MostProbable:
    """Result of :func:`most_probable`.

    Attributes
    ----------
    states : ndarray of int ``[n_rows, n_over]``
        State index of each ``over`` node in the most probable configuration.
    log_joint : ndarray
        ``log P(configuration, e)`` (``-inf`` when the evidence is impossible).
    log_evidence_probability : ndarray
    """

    states: np.ndarray
    log_joint: np.ndarray
    log_evidence_probability: np.ndarray

    @property
    def probability(self) -> np.ndarray:
        """``P(configuration | e)`` (NaN when the evidence is impossible)."""
        possible = np.isfinite(self.log_evidence_probability)
        with np.errstate(invalid="ignore"):
            return np.where(possible, np.exp(self.log_joint - np.where(possible, self.log_evidence_probability, 0.0)),
                            np.nan)


def most_probable(network: CompiledNetwork, evidence: BatchEvidence, over: Sequence[str]) -> MostProbable:
    """The jointly most probable states of ``over`` given the evidence, per row (marginal MAP).

    Max-product over a junction tree triangulated with ``over`` eliminated last: nodes not in
    ``over`` are summed out, ``over`` is maximised, and the maximising states are traced back.
    Ties (within :data:`~bayescramp.inference.tree.TIE_TOLERANCE`) go to the first configuration
    in ``itertools.product`` order over ``over`` (each node's states in declared order).

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> evidence = BatchEvidence.from_likelihoods({"pale_skin": np.array([[0.0, 1.0]])})
    >>> best = most_probable(network, evidence, ["iron_deficiency", "anemia"])
    >>> best.states.tolist()
    [[0, 0]]
    """
    likelihood, n_rows = _evidence(network, evidence)
    over = _known(network, over, "over")
    key = tuple(over)
    if key not in network.variants:
        network.variants[key] = build_tree(network.names, [len(network.states[n]) for n in network.names],
                                           network.parents, network.tables, last=over)
    tree = network.variants[key]
    states = np.zeros((n_rows, len(over)), dtype=np.int64)
    log_joint = np.empty(n_rows)
    for rows in _blocks(n_rows, WORK_ENTRIES // tree.largest_clique):
        states[rows], log_joint[rows] = max_product(tree, {k: v[rows] for k, v in likelihood.items()}, over,
                                                    rows.stop - rows.start)
    log_pe = propagate(network, evidence, targets=[]).log_evidence_probability
    return MostProbable(states=states, log_joint=log_joint, log_evidence_probability=log_pe)


def propagate_codes(network: CompiledNetwork, evidence: BatchEvidence, *, targets: Sequence[str] | None = None,
                    chunk_size: int = 65536, distinct: bool = False) -> Propagation:
    """Posteriors for rows of coded evidence, scoring each distinct row once.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
        Rows of codes into per-node alphabets (a table's rows repeat few patterns).
    targets : sequence of str, optional
        Nodes whose marginals are returned (default: every node).
    chunk_size : int
        Distinct patterns propagated at a time; bounds memory.
    distinct : bool
        The caller guarantees the rows are already distinct: skip the deduplication.

    Returns
    -------
    Propagation
        One entry per input row, in input order.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.evidence import Alphabet
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> alphabet = Alphabet(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), ("no", "yes", "unobserved"))
    >>> evidence = BatchEvidence(n_rows=3, nodes=("leg_cramps",), codes=np.array([[1], [2], [1]]),
    ...                          alphabets=(alphabet,))
    >>> result = propagate_codes(network, evidence)
    >>> bool(np.allclose(result.marginals["leg_cramps"][0], [0, 1]))
    True
    """
    wanted = list(network.names) if targets is None else list(targets)
    if evidence.n_rows == 0:
        return Propagation(marginals={t: np.zeros((0, len(network.states[t]))) for t in wanted},
                           log_evidence_probability=np.zeros(0), impossible=np.zeros(0, dtype=bool), families={})
    patterns, inverse = (evidence, np.arange(evidence.n_rows)) if distinct else evidence.distinct()
    if network.core is not None and patterns.n_rows > chunk_size:
        # chunks of rows sharing their hard findings' mask each run under one conditioned core
        nodes = list(patterns.nodes)
        order = mask_order(cut_candidates(network.core, network.names, network.parents, nodes), nodes,
                           patterns.codes, [a.vectors for a in patterns.alphabets])
        patterns = patterns.with_codes(patterns.codes[order])
        inverse = np.argsort(order)[inverse]
    n_patterns = patterns.n_rows
    marginals_out = {t: np.empty((n_patterns, len(network.states[t]))) for t in wanted}
    log_pe = np.empty(n_patterns)
    impossible = np.empty(n_patterns, dtype=bool)
    for start in range(0, n_patterns, chunk_size):
        block = slice(start, min(start + chunk_size, n_patterns))
        result = propagate(network, patterns.rows(block.start, block.stop), targets=wanted)
        for t in wanted:
            marginals_out[t][block] = result.marginals[t]
        log_pe[block] = result.log_evidence_probability
        impossible[block] = result.impossible
    return Propagation(marginals={t: m[inverse] for t, m in marginals_out.items()},
                       log_evidence_probability=log_pe[inverse], impossible=impossible[inverse], families={})
