"""Conditioning on hard findings: a node observed in one state loses its outgoing edges.

When a row observes node ``X`` in one state ``x`` (a likelihood with exactly one positive
entry), the network in which every child of ``X`` has its CPT read at ``X = x`` and the edge
from ``X`` dropped gives the same ``P(e)`` and the same posteriors (Darwiche 2009, *Modeling
and Reasoning with Bayesian Networks*, section 6.9, "pruning edges"); ``X`` keeps its own CPT
and its finding. Cut edges shrink the core: on the default model a row that observes sex, age
group, diuretic, PPI use, kidney disease and magnesium intake runs a core tree whose cliques
hold 32 and 128 entries instead of 960.

Rows are grouped by the set of nodes they observe hard (their *mask*). A mask held by at least
:data:`MASK_MIN_ROWS` rows of a call gets its own core (compiled once per network and cached);
a row whose mask is rarer runs under the cheapest such mask inside its own (the empty mask,
the network's own core, always qualifies). The cut children's CPTs become per-row tables,
read at each row's observed states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, MutableMapping, Sequence

import numpy as np

from .core import Core, build_core
from .graph import children_of

__all__ = ["Conditioned", "CutTable", "Plan", "MASK_MIN_ROWS", "condition", "cut_candidates", "mask_order",
           "plan_masks", "row_tables"]

#: Rows of one call that must share a mask before that mask gets a core of its own (a core pass
#: costs about a millisecond of Python whatever its size; a conditioned core saves up to ~0.1 ms a row).
MASK_MIN_ROWS = 32


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
        index = np.zeros(rows.stop - rows.start, dtype=np.int64)
        for parent, size in zip(self.parents, self.sizes):
            index = index * size + states[parent][rows]
        return index

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
    """

    hard: frozenset[str]
    core: Core
    cut: dict[str, CutTable]
    cost: int


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
    return Conditioned(hard=hard, core=core, cut=cut, cost=_cost(core))


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
    unconditioned = Conditioned(hard=frozenset(), core=core, cut={}, cost=_cost(core))
    if not candidates or n_rows < MASK_MIN_ROWS:
        return [Plan(unconditioned, np.arange(n_rows), {})]
    flags, observed = zip(*(_hard(np.broadcast_to(likelihood[name], (n_rows, len(states[name]))))
                            for name in candidates))
    code = np.zeros(n_rows, dtype=np.int64)
    for j, flag in enumerate(flags):
        code |= flag.astype(np.int64) << j
    codes, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    usable = {0: unconditioned}
    for k in np.argsort(-counts, kind="stable"):
        mask = int(codes[k])
        if mask == 0 or counts[k] < MASK_MIN_ROWS:
            continue
        hard = frozenset(name for j, name in enumerate(candidates) if mask >> j & 1)
        key = ("conditioned", hard)
        if key not in cache:
            cache[key] = condition(names, states, parents, tables, hard)
        conditioned = cache[key]
        if conditioned is not None and set(wanted) - hard <= set(conditioned.core.nodes) \
                and conditioned.cost < unconditioned.cost:
            usable[mask] = conditioned
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


def row_tables(plan: Plan, rows: slice, tables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-row tables of a block of a plan's rows: cut children read at the observed states.

    ``tables`` are the caller's replacements ``[n_rows or 1, *parent_cards, n_states]``
    (indexed by the call's rows), cut the same way.
    """
    index = plan.rows[rows]
    result = {name: table if table.shape[0] == 1 else table[index] for name, table in tables.items()}
    for name, cut in plan.conditioned.cut.items():
        at = cut.at(plan.states, rows)
        result[name] = cut.flat[at] if name not in tables else cut.read(tables[name], at, index)
    return result
