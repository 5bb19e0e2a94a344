"""Conditioning on hard findings: a node observed in one state loses its outgoing edges.

When a row observes node ``X`` in one state ``x`` (a likelihood with exactly one positive
entry), the network in which every child of ``X`` has its CPT read at ``X = x`` and the edge
from ``X`` dropped gives the same ``P(e)`` and the same posteriors (Darwiche 2009, *Modeling
and Reasoning with Bayesian Networks*, section 6.9, "pruning edges"); ``X`` keeps its own CPT
and its finding. Cut edges shrink the core: on the default model a row that observes sex, age
group, diuretic, PPI use, kidney disease and magnesium intake runs a core tree whose cliques
hold 32 and 128 entries instead of 960.

Rows are grouped by the set of core nodes with children they observe hard (their *mask*). A
mask held by at least :data:`MASK_MIN_ROWS` rows of a call gets its own core (compiled once per
network and kept, up to :data:`MAX_CONDITIONED_CORES`); a row whose mask is rarer runs under the
cheapest compiled mask inside its own (the empty mask, the network's own core, always
qualifies). :func:`mask_order` lets callers that propagate in chunks put rows of one mask
together. A cut child's CPT depends on each row's observed states; where small enough, the
product of a core-tree clique's CPTs and the emission of an attached finding are computed once
per configuration of their hard parents (:class:`ByConfiguration`) and read per row, so a
conditioned core does no more work per row than a core whose tables are shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, MutableMapping, Sequence

import numpy as np

from .core import Core, build_core
from .graph import children_of
from .tree import configurations, cpt_products

__all__ = ["BlockInputs", "ByConfiguration", "Conditioned", "CutTable", "Plan", "CONFIGURATION_ENTRIES",
           "MASK_MIN_ROWS", "MAX_CONDITIONED_CORES", "block_inputs", "condition", "cut_candidates", "mask_order",
           "plan_masks"]

#: Rows of one call that must share a mask before that mask gets a core of its own (a core pass
#: costs about a millisecond of Python whatever its size; a conditioned core saves up to ~0.1 ms a row).
MASK_MIN_ROWS = 32
#: Conditioned cores kept per network, at most (each is small: a few cliques of a cut network).
MAX_CONDITIONED_CORES = 256
#: The key of a network's cache under which its conditioned cores are kept (hard nodes -> core).
_CORES = object()


#: Entries (configurations of the hard parents x table entries) up to which a clique's CPT product
#: or a finding's emission is computed once per configuration and read per row, not built per row.
CONFIGURATION_ENTRIES = 1 << 18


def _configuration_index(parents: Sequence[str], sizes: Sequence[int], states: Mapping[str, np.ndarray],
                         rows: slice) -> np.ndarray:
    """Each row's configuration (C order, mixed radix) of the observed states of ``parents``."""
    index = np.zeros(rows.stop - rows.start, dtype=np.int64)
    for parent, size in zip(parents, sizes):
        index = index * size + states[parent][rows]
    return index


@dataclass(frozen=True)
class ByConfiguration:
    """An array computed once per configuration of some hard-observed nodes: ``values[i]`` at the ``i``-th."""

    parents: tuple[str, ...]
    sizes: tuple[int, ...]
    values: np.ndarray

    def read(self, states: Mapping[str, np.ndarray], rows: slice) -> np.ndarray:
        """``values`` at each row's configuration, ``[n_rows, ...]``."""
        return self.values[_configuration_index(self.parents, self.sizes, states, rows)]


@dataclass(frozen=True)
class CutTable:
    """A child's CPT with the axes of its hard-observed parents first and flattened.

    ``flat[i]`` is the CPT read at the ``i``-th configuration (C order) of ``parents``,
    ``[*other parent cards, n_states]``; ``axes`` are those parents' positions in the CPT.
    """

    parents: tuple[str, ...]
    sizes: tuple[int, ...]
    axes: tuple[int, ...]
    flat: np.ndarray

    def at(self, states: Mapping[str, np.ndarray], rows: slice) -> np.ndarray:
        """The configuration index of each row's observed parent states."""
        return _configuration_index(self.parents, self.sizes, states, rows)

    def read(self, table: np.ndarray, at: np.ndarray, index: np.ndarray) -> np.ndarray:
        """A per-row replacement table ``[n_rows or 1, *parent cards, n_states]`` read at ``at`` for rows ``index``."""
        moved = np.moveaxis(table, [a + 1 for a in self.axes], list(range(1, len(self.axes) + 1)))
        moved = moved.reshape((moved.shape[0], -1) + moved.shape[len(self.axes) + 1:])
        return moved[0, at] if moved.shape[0] == 1 else moved[index, at]


@dataclass(frozen=True)
class Conditioned:
    """The core of a network whose hard-observed nodes ``hard`` have lost their outgoing edges.

    Attributes
    ----------
    hard : frozenset of str
    core : Core
        Built on the cut network (its tables for cut children are placeholders: every row
        brings its own, see :func:`row_tables`).
    cut : dict
        Child -> its :class:`CutTable`.
    cost : int
        Entries handled per row: the core tree's cliques plus the groups' scopes.
    products : dict
        Core-tree clique -> the product of its CPTs per configuration of their hard parents,
        :class:`ByConfiguration` ``[n_configurations, *clique cards]`` (cliques holding cut
        children, where small enough).
    emissions : dict
        Attached finding with hard parents -> its emission over its group's scope per
        configuration of those parents, :class:`ByConfiguration` ``[n_configurations, k, n_scope]``.
    """

    hard: frozenset[str]
    core: Core
    cut: dict[str, CutTable]
    cost: int
    products: dict[int, ByConfiguration]
    emissions: dict[str, ByConfiguration]


@dataclass(frozen=True)
class Plan:
    """Rows of a call that run under one conditioned core, and each row's observed states."""

    conditioned: Conditioned
    rows: np.ndarray
    states: dict[str, np.ndarray]    # hard node -> observed state of each row in ``rows``


def _cost(core: Core) -> int:
    tree = core.tree
    cliques = sum(math.prod(tree.cards[v] for v in clique) for clique in tree.junction.cliques)
    return cliques + sum(math.prod(group.shape) for group in core.groups)


def condition(names: Sequence[str], states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
              tables: Mapping[str, np.ndarray], hard: frozenset[str]) -> Conditioned | None:
    """The conditioned core for ``hard`` (None when the cut network has no core path)."""
    kept_parents = {name: tuple(p for p in parents[name] if p not in hard) for name in names}
    cut, placeholders = {}, {}
    for name in names:
        hard_parents = tuple(p for p in parents[name] if p in hard)
        if not hard_parents:
            placeholders[name] = tables[name]
            continue
        axes = tuple(parents[name].index(p) for p in hard_parents)
        table = np.moveaxis(np.asarray(tables[name], dtype=float), axes, list(range(len(axes))))
        flat = np.ascontiguousarray(table.reshape((-1,) + table.shape[len(axes):]))
        cut[name] = CutTable(parents=hard_parents, sizes=tuple(len(states[p]) for p in hard_parents), axes=axes,
                             flat=flat)
        placeholders[name] = flat[0]
    core = build_core(list(names), states, kept_parents, placeholders)
    if core is None:
        return None
    order = {name: j for j, name in enumerate(names)}
    return Conditioned(hard=hard, core=core, cut=cut, cost=_cost(core), products=_clique_products(core, cut, order),
                       emissions=_emissions(core, cut))


def _clique_products(core: Core, cut: Mapping[str, CutTable], order: Mapping[str, int]) -> dict[int, ByConfiguration]:
    """Per core-tree clique holding cut children: its CPT product at every configuration of their hard parents."""
    tree = core.tree
    products = {}
    for c, assigned in enumerate(tree.assigned):
        here = [name for name in assigned if name in cut]
        if not here:
            continue
        hard_parents = sorted({p for name in here for p in cut[name].parents}, key=order.__getitem__)
        sizes = [next(cut[n].sizes[cut[n].parents.index(p)] for n in here if p in cut[n].parents)
                 for p in hard_parents]
        n_configurations = math.prod(sizes)
        if n_configurations * math.prod(tree.cards[v] for v in tree.junction.cliques[c]) > CONFIGURATION_ENTRIES:
            continue
        grid = dict(zip(hard_parents, configurations(sizes)))
        every = slice(0, n_configurations)
        tables = {name: cut[name].flat[cut[name].at(grid, every)] for name in here}
        products[c] = ByConfiguration(parents=tuple(hard_parents), sizes=tuple(sizes),
                                      values=cpt_products(tree, tables, 1)[c])
    return products


def _emissions(core: Core, cut: Mapping[str, CutTable]) -> dict[str, ByConfiguration]:
    """Per attached finding with hard parents: its emission ``[k, n_scope]`` at every configuration of them."""
    emissions = {}
    for group in core.groups:
        for member, emission in group.members.items():
            if emission is None or member not in cut:
                continue
            if cut[member].flat.shape[0] * emission.size > CONFIGURATION_ENTRIES:
                continue
            per_scope = cut[member].flat[(slice(None),) + group.member_parents[member]]   # [n_conf, n_scope, k]
            emissions[member] = ByConfiguration(parents=cut[member].parents, sizes=cut[member].sizes,
                                                values=np.ascontiguousarray(per_scope.transpose(0, 2, 1)))
    return emissions


def _hard(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: is the likelihood one-hot (one positive entry)? and the state it points at."""
    positive = values > 0
    return positive.sum(axis=-1) == 1, positive.argmax(axis=-1)


def cut_candidates(core: Core, names: Sequence[str], parents: Mapping[str, Sequence[str]],
                   observed: Sequence[str]) -> list[str]:
    """The observed core nodes with children: the nodes whose hard findings are worth cutting."""
    children = children_of(names, parents)
    return [name for name in core.nodes if name in observed and children[name]]


def mask_order(candidates: Sequence[str], nodes: Sequence[str], codes: np.ndarray,
               alphabets: Sequence[np.ndarray]) -> np.ndarray:
    """A stable order of coded rows that puts rows with the same mask of hard findings together.

    ``codes[r, j]`` indexes ``alphabets[j]`` (the likelihood vector of each code) for node
    ``nodes[j]``; only the columns of ``candidates`` count.
    """
    key = np.zeros(codes.shape[0], dtype=np.int64)
    for bit, name in enumerate(candidates[:62]):   # as plan_masks
        column = list(nodes).index(name)
        one_hot = (np.asarray(alphabets[column]) > 0).sum(axis=-1) == 1
        key |= one_hot[codes[:, column]].astype(np.int64) << bit
    return np.argsort(key, kind="stable")


def plan_masks(cache: MutableMapping, core: Core, names: Sequence[str], states: Mapping[str, Sequence[str]],
               parents: Mapping[str, Sequence[str]], tables: Mapping[str, np.ndarray],
               likelihood: Mapping[str, np.ndarray], wanted: Sequence[str], n_rows: int) -> list[Plan]:
    """Group a call's rows by the conditioned core each runs under (see the module docstring).

    ``cache`` keeps the conditioned cores of a network between calls; ``core`` is the
    network's own core (the empty mask). Only core nodes with children are worth cutting.
    """
    candidates = cut_candidates(core, names, parents, list(likelihood))[:62]   # one bit each in an int64
    unconditioned = Conditioned(hard=frozenset(), core=core, cut={}, cost=_cost(core), products={}, emissions={})
    if not candidates or n_rows < MASK_MIN_ROWS:
        return [Plan(unconditioned, np.arange(n_rows), {})]
    flags, observed = zip(*(_hard(np.broadcast_to(likelihood[name], (n_rows, len(states[name]))))
                            for name in candidates))
    code = np.zeros(n_rows, dtype=np.int64)
    for j, flag in enumerate(flags):
        code |= flag.astype(np.int64) << j
    codes, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    bit = {name: 1 << j for j, name in enumerate(candidates)}
    cores = cache.setdefault(_CORES, {})
    compiled = {sum(bit[name] for name in hard): conditioned for hard, conditioned in tuple(cores.items())
                if hard <= bit.keys()}   # cores compiled by earlier calls serve too
    for k in np.argsort(-counts, kind="stable"):
        mask = int(codes[k])
        if mask == 0 or mask in compiled or counts[k] < MASK_MIN_ROWS \
                or len(cores) >= MAX_CONDITIONED_CORES:
            continue
        hard = frozenset(name for name in candidates if mask & bit[name])
        compiled[mask] = cores[hard] = condition(names, states, parents, tables, hard)
    usable = {mask: conditioned for mask, conditioned in compiled.items()
              if conditioned is not None and set(wanted) - conditioned.hard <= set(conditioned.core.nodes)
              and conditioned.cost < unconditioned.cost}
    usable[0] = unconditioned
    # each mask runs under the cheapest usable mask inside it
    chosen = np.array([min((m for m in usable if m & ~int(mask) == 0), key=lambda m: usable[m].cost)
                       for mask in codes])
    by_row = chosen[inverse.reshape(-1)]
    plans = []
    for mask in np.unique(chosen):
        rows = np.flatnonzero(by_row == mask)
        conditioned = usable[int(mask)]
        plans.append(Plan(conditioned, rows, {name: observed[j][rows] for j, name in enumerate(candidates)
                                              if name in conditioned.hard}))
    return plans


@dataclass
class BlockInputs:
    """What a block of a plan's rows brings to the conditioned core besides its evidence.

    Attributes
    ----------
    tables : dict
        Per-row tables ``[n_rows, *parent_cards, n_states]``: cut children read at the rows'
        observed states, and the caller's replacements.
    products : list or None
        Per core-tree clique, its CPT product ``[n_rows, *clique cards]`` (None where the
        compiled one serves); None when the core tree builds them from ``tables``.
    emissions : dict
        Attached finding -> its emission over its group's scope per row ``[n_rows, k, n_scope]``.
    """

    tables: dict[str, np.ndarray]
    products: list[np.ndarray | None] | None
    emissions: dict[str, np.ndarray]


def block_inputs(plan: Plan, rows: slice, tables: Mapping[str, np.ndarray]) -> BlockInputs:
    """The per-row inputs of a block of a plan's rows (see :class:`BlockInputs`).

    ``tables`` are the caller's replacements ``[n_rows or 1, *parent_cards, n_states]``
    (indexed by the call's rows), cut the same way; with them every product is built per row.
    Without them, cliques and findings whose values were computed per configuration of their
    hard parents (:attr:`Conditioned.products`, :attr:`Conditioned.emissions`) read those.
    """
    conditioned = plan.conditioned
    index = plan.rows[rows]
    if tables:
        result = {name: table if table.shape[0] == 1 else table[index] for name, table in tables.items()}
        for name, cut in conditioned.cut.items():
            result[name] = cut.flat[cut.at(plan.states, rows)] if name not in tables \
                else cut.read(tables[name], cut.at(plan.states, rows), index)
        return BlockInputs(tables=result, products=None, emissions={})
    emissions = {name: by.read(plan.states, rows) for name, by in conditioned.emissions.items()}
    per_row = {name: cut.flat[cut.at(plan.states, rows)] for name, cut in conditioned.cut.items()
               if name not in emissions}
    tree = conditioned.core.tree
    covered = {name for c in conditioned.products for name in tree.assigned[c]}
    built = {name: table for name, table in per_row.items() if name in tree.index and name not in covered}
    products = cpt_products(tree, built, 1)
    for c, by in conditioned.products.items():
        products[c] = by.read(plan.states, rows)
    return BlockInputs(tables=per_row, products=products, emissions=emissions)
