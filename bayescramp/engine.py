"""Batched exact inference: a junction tree compiled once, propagated over many rows at once.

The network is compiled (moralised, triangulated by min-fill, arranged as a junction
tree) once. Evidence for a batch is one likelihood array ``[n_rows, n_states]`` per
observed node: a hard finding is one-hot, a blank is all ones, a set of states is an
indicator, soft evidence is any non-negative vector. One collect and one distribute pass
(Shafer-Shenoy) over the batch give every node's posterior marginal and ``P(e)`` per row;
there is no Python loop over rows. Messages are rescaled per row and the scale factors
kept in log space, so ``P(e)`` far below 1e-300 still gives correct posteriors.

When the asked-for posteriors all lie in a small *core* (the default model's diuretic,
deficiencies and anaemia) that the findings hang off, a fast path (:class:`_Core`) turns
each finding into one small matrix product and runs the junction tree of the core alone.
:func:`propagate_codes` scores each distinct row of coded evidence once.

This module imports numpy only: no pgmpy, no pandas.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .spec import Spec, probability_table, topological_order

__all__ = ["CompiledNetwork", "Propagation", "compile_spec", "compile_network", "propagate", "propagate_codes",
           "absorbed_nodes", "distinct_rows"]


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
    cliques : list of tuple of int
        Junction-tree cliques as sorted node indices.
    """

    names: list[str]
    states: dict[str, tuple[str, ...]]
    parents: dict[str, tuple[str, ...]]
    tables: dict[str, np.ndarray]
    cliques: list[tuple[int, ...]]
    tree_parent: list[int]              # parent clique of each clique (-1 for the root)
    collect_order: list[int]            # cliques, leaves first (root last)
    children: list[list[int]]
    separators: list[tuple[int, ...]]   # separator between clique c and tree_parent[c]
    family_clique: dict[str, int]       # node -> clique holding its family (CPD and evidence go here)
    static: list[np.ndarray] = field(repr=False)   # clique potential from CPDs, [1, *clique_cards]
    core: "_Core | None" = field(default=None, repr=False)   # the enumerated-core fast path, when small

    @property
    def cards(self) -> dict[str, int]:
        """Node name -> number of states."""
        return {name: len(s) for name, s in self.states.items()}

    @property
    def index(self) -> dict[str, int]:
        """Node name -> index."""
        return {name: i for i, name in enumerate(self.names)}


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
    >>> len(network.names)
    25
    """
    names = topological_order(spec)
    return compile_network(
        states={n: tuple(spec.nodes[n].states) for n in names},
        parents={n: tuple(spec.nodes[n].parents) for n in names},
        tables={n: probability_table(spec, n) for n in names},
    )


def compile_network(states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
                    tables: Mapping[str, np.ndarray], *, enumerate_core: bool = True) -> CompiledNetwork:
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
        Also prepare the core fast path when the network has a small core (see :class:`_Core`).
    """
    names = list(states)
    index = {n: i for i, n in enumerate(names)}
    cards = [len(states[n]) for n in names]
    families = [tuple(sorted([index[p] for p in parents[n]] + [index[n]])) for n in names]
    cliques = _triangulate(len(names), families, cards)
    tree_parent, collect_order, children = _junction_tree(cliques)
    separators = [tuple(sorted(set(c) & set(cliques[p]))) if p >= 0 else () for c, p in
                  zip(cliques, tree_parent)]
    family_clique = {}
    for i, family in enumerate(families):
        holders = [c for c, clique in enumerate(cliques) if set(family) <= set(clique)]
        family_clique[names[i]] = min(holders, key=lambda c: np.prod([cards[v] for v in cliques[c]]))
    static = []
    for c, clique in enumerate(cliques):
        potential = np.ones((1,) + tuple(cards[v] for v in clique))
        for i, name in enumerate(names):
            if family_clique[name] == c:
                potential = potential * _into_clique(np.asarray(tables[name], dtype=float)[None],
                                                     _family_axes(i, parents[name], index), clique, cards)
        static.append(potential)
    return CompiledNetwork(
        names=names,
        states={n: tuple(states[n]) for n in names},
        parents={n: tuple(parents[n]) for n in names},
        tables={n: np.asarray(tables[n], dtype=float) for n in names},
        cliques=cliques, tree_parent=tree_parent, collect_order=collect_order, children=children,
        separators=separators, family_clique=family_clique, static=static,
        core=_build_core(names, states, parents, tables) if enumerate_core else None,
    )


def _family_axes(i: int, node_parents: Sequence[str], index: Mapping[str, int]) -> list[int]:
    """Node indices of a CPD's axes: parents in order, then the node itself."""
    return [index[p] for p in node_parents] + [i]


def _into_clique(array: np.ndarray, axes: Sequence[int], clique: Sequence[int], cards: Sequence[int]) -> np.ndarray:
    """Reshape ``array[batch, *axes]`` to broadcast against ``[batch, *clique]`` (clique sorted)."""
    order = sorted(range(len(axes)), key=lambda k: axes[k])
    array = np.transpose(array, [0] + [k + 1 for k in order])
    present = set(axes)
    shape = (array.shape[0],) + tuple(cards[v] if v in present else 1 for v in clique)
    return array.reshape(shape)


def _triangulate(n_nodes: int, families: list[tuple[int, ...]], cards: list[int]) -> list[tuple[int, ...]]:
    """Maximal cliques of a min-fill triangulation of the moral graph."""
    neighbours: list[set[int]] = [set() for _ in range(n_nodes)]
    for family in families:
        for a in family:
            neighbours[a].update(v for v in family if v != a)
    remaining = set(range(n_nodes))
    cliques: list[set[int]] = []
    while remaining:
        def cost(v: int) -> tuple[int, float]:
            nbrs = neighbours[v] & remaining
            fill = sum(1 for a in nbrs for b in nbrs if a < b and b not in neighbours[a])
            return fill, float(np.prod([cards[u] for u in nbrs | {v}]))

        v = min(sorted(remaining), key=cost)
        nbrs = neighbours[v] & remaining
        for a in nbrs:
            neighbours[a].update(nbrs - {a})
        clique = nbrs | {v}
        if not any(clique <= other for other in cliques):
            cliques = [other for other in cliques if not other <= clique] + [clique]
        remaining.remove(v)
    return [tuple(sorted(c)) for c in cliques]


def _junction_tree(cliques: list[tuple[int, ...]]) -> tuple[list[int], list[int], list[list[int]]]:
    """A maximum-weight spanning tree over separator sizes (Kruskal), rooted at clique 0.

    Disconnected components are joined through empty separators, so one tree always results.
    """
    n = len(cliques)
    edges = sorted(((len(set(a) & set(b)), i, j) for i, a in enumerate(cliques)
                    for j, b in enumerate(cliques) if i < j), reverse=True)
    component = list(range(n))

    def find(x: int) -> int:
        while component[x] != x:
            component[x] = component[component[x]]
            x = component[x]
        return x

    adjacency: list[list[int]] = [[] for _ in range(n)]
    for _, i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            component[ri] = rj
            adjacency[i].append(j)
            adjacency[j].append(i)
    tree_parent = [-1] * n
    order = [0]
    seen = {0}
    for c in order:
        for d in adjacency[c]:
            if d not in seen:
                seen.add(d)
                tree_parent[d] = c
                order.append(d)
    children = [[d for d in range(n) if tree_parent[d] == c] for c in range(n)]
    return tree_parent, order[::-1], children


def _normalise(array: np.ndarray, n_rows: int, log_scale: np.ndarray, impossible: np.ndarray) -> np.ndarray:
    """Divide each row by its total, adding log(total) to ``log_scale``; flag zero rows."""
    totals = array.reshape(array.shape[0], -1).sum(axis=1)
    zero = totals <= 0
    if zero.any():
        impossible |= np.broadcast_to(zero, (n_rows,)) if zero.shape[0] == 1 else zero
        totals = np.where(zero, 1.0, totals)
    log_scale += np.log(totals) if totals.shape[0] == n_rows else np.log(totals[0])
    return array / totals.reshape((-1,) + (1,) * (array.ndim - 1))


#: Largest joint (number of configurations) of the core nodes for the enumerated-core path.
CORE_SIZE_LIMIT = 4096
#: Rows propagated together on the enumerated-core path (keeps the [rows, core] block in cache).
CORE_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class _Group:
    """Findings multiplied together over a small set of core nodes (the group's scope).

    ``members`` maps a finding's node to its emission over the scope, ``[k, n_scope]``
    (P(node | the scope's states); the identity for a core node's own finding). Scopes are
    sorted core positions, so a group's values ``[rows, *scope_cards]`` broadcast into a larger
    scope (or the whole core) by a reshape with ones for the missing axes: ``children`` are
    smaller groups with that reshape into this scope, ``in_core`` the reshape into the core.
    """

    scope: tuple[int, ...]
    shape: tuple[int, ...]
    members: dict[str, np.ndarray]
    children: list[tuple["_Group", tuple[int, ...]]]
    in_core: tuple[int, ...]
    # attached member -> its parents' states in each scope configuration (to read per-row tables)
    member_parents: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Core:
    """The enumerated-core fast path.

    Nodes whose children are all absorbable, single-parent descendants hang off a *core*
    of the other nodes. When the core's joint is small (the diuretic, the six deficiencies
    and anaemia of the default model: 512 configurations), each finding becomes a small
    ``[rows, k] @ [k, scope]`` matrix product over the core nodes it depends on; findings are
    multiplied in nested groups over the smallest scopes that hold them. Each top-level group
    then enters a junction tree of the core alone (``tree``) as a per-row factor on a one-state
    stand-in node whose parents are the group's scope, so the core is never enumerated whole.
    """

    nodes: tuple[str, ...]
    tree: CompiledNetwork                    # the core's CPDs plus one stand-in node per top group
    stand_ins: tuple[str, ...]               # the stand-in node of each top group
    top_groups: list[_Group]
    absorbed_children: dict[str, tuple[str, ...]]   # absorbed node -> its (absorbed, single-parent) children


def _configurations(cards: Sequence[int]) -> np.ndarray:
    """All configurations ``[n_vars, prod(cards)]`` in C order (last variable fastest)."""
    return np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=int)


def _scope_index(scope: Sequence[int], within: Sequence[int], cards: Sequence[int]) -> np.ndarray:
    """For each configuration of ``within``, the index of its restriction to ``scope``."""
    grid = _configurations([cards[v] for v in within])
    index = np.zeros(grid.shape[1], dtype=np.int64)
    for v in scope:
        index = index * cards[v] + grid[list(within).index(v)]
    return index


def absorbed_nodes(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> set[str]:
    """Nodes that hang off the core of a network.

    Each has parents, and all its children are absorbed and have it as their only parent (the
    symptoms and cramp timing of the default model). ``names`` must list parents before children.

    Examples
    --------
    >>> sorted(absorbed_nodes(["a", "b", "c"], {"a": (), "b": ("a",), "c": ("b",)}))
    ['b', 'c']
    """
    children: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for parent in parents[name]:
            children[parent].append(name)
    absorbed: set[str] = set()
    for name in reversed(names):
        if parents[name] and all(c in absorbed and tuple(parents[c]) == (name,) for c in children[name]):
            absorbed.add(name)
    return absorbed


def _build_core(names, states, parents, tables) -> _Core | None:
    children: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for parent in parents[name]:
            children[parent].append(name)
    absorbed = absorbed_nodes(names, parents)
    core = [n for n in names if n not in absorbed]
    cards = [len(states[n]) for n in core]
    if not absorbed or float(np.prod([float(c) for c in cards])) > CORE_SIZE_LIMIT:
        return None
    position = {n: j for j, n in enumerate(core)}
    everything = tuple(range(len(core)))
    # each finding: its scope over the core and its emission [k, n_scope]
    findings: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
    finding_parents: dict[str, tuple[int, ...]] = {}
    for name in names:
        if name in absorbed and all(p not in absorbed for p in parents[name]):
            scope = tuple(sorted(position[p] for p in parents[name]))
            scope_grid = _configurations([cards[v] for v in scope])
            parent_states = tuple(scope_grid[scope.index(position[p])] for p in parents[name])
            findings[name] = (scope, np.ascontiguousarray(np.asarray(tables[name], dtype=float)[parent_states].T))
            finding_parents[name] = tuple(position[p] for p in parents[name])
        elif name not in absorbed:
            findings[name] = ((position[name],), np.eye(cards[position[name]]))
    top_groups = _group_findings(findings, finding_parents, cards, everything)
    stand_ins = tuple(f"__findings_{k}" for k in range(len(top_groups)))
    tree_states = {n: tuple(states[n]) for n in core}
    tree_parents = {n: tuple(parents[n]) for n in core}
    tree_tables = {n: np.asarray(tables[n], dtype=float) for n in core}
    for stand_in, group in zip(stand_ins, top_groups):
        tree_states[stand_in] = ("seen",)
        tree_parents[stand_in] = tuple(core[v] for v in group.scope)
        tree_tables[stand_in] = np.ones((*group.shape, 1))
    tree = compile_network(tree_states, tree_parents, tree_tables, enumerate_core=False)
    return _Core(nodes=tuple(core), tree=tree, stand_ins=stand_ins, top_groups=top_groups,
                 absorbed_children={n: tuple(children[n]) for n in names if n in absorbed})


def _group_findings(findings: Mapping[str, tuple[tuple[int, ...], np.ndarray]],
                    finding_parents: Mapping[str, tuple[int, ...]], cards: Sequence[int],
                    everything: tuple[int, ...]) -> list[_Group]:
    """Nest findings in groups over the smallest scopes that hold them.

    Each finding joins the smallest group whose scope holds it; each group folds into the
    smallest strictly larger group that holds it; the rest are top level.
    """
    def size(scope):
        return int(np.prod([cards[v] for v in scope]))

    scopes: list[tuple[int, ...]] = []
    placed: dict[str, tuple[int, ...]] = {}
    for name, (scope, _) in sorted(findings.items(), key=lambda item: size(item[1][0])):
        holders = [g for g in scopes if set(scope) <= set(g)]
        home = min(holders, key=size) if holders else scope
        if not holders:
            scopes.append(scope)
        placed[name] = home
    parent_of: dict[tuple[int, ...], tuple[int, ...] | None] = {}
    for scope in scopes:
        larger = [g for g in scopes if g != scope and set(scope) < set(g)]
        parent_of[scope] = min(larger, key=size) if larger else None

    def build(scope: tuple[int, ...]) -> _Group:
        members = {}
        member_parents = {}
        scope_grid = _configurations([cards[v] for v in scope])
        for name, home in placed.items():
            if home == scope:
                own_scope, emission = findings[name]
                members[name] = np.ascontiguousarray(emission[:, _scope_index(own_scope, scope, cards)])
                if name in finding_parents:
                    member_parents[name] = tuple(scope_grid[scope.index(v)] for v in finding_parents[name])
        nested = [(build(child), _broadcast_shape(child, scope, cards)) for child in scopes
                  if parent_of[child] == scope]
        return _Group(scope=scope, shape=tuple(cards[v] for v in scope), members=members, children=nested,
                      in_core=_broadcast_shape(scope, everything, cards), member_parents=member_parents)

    return [build(scope) for scope in scopes if parent_of[scope] is None]


def _broadcast_shape(scope: Sequence[int], within: Sequence[int], cards: Sequence[int]) -> tuple[int, ...]:
    """Shape that broadcasts ``[*scope_cards]`` (sorted scope) against ``[*within_cards]``."""
    return tuple(cards[v] if v in scope else 1 for v in within)


def _rows_of(table: np.ndarray, rows: slice) -> np.ndarray:
    """The rows of a per-row table ``[n_rows or 1, ...]`` (a shared table stays shared)."""
    return table if table.shape[0] == 1 else table[rows]


def _absorbed_likelihood(network: CompiledNetwork, name: str, likelihood: Mapping[str, np.ndarray],
                         rows: slice, tables: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Likelihood of all evidence on ``name`` and its absorbed descendants, as ``[rows, k]``.

    None when nothing below it is observed: the subtree is barren and sums to one.
    """
    values = likelihood.get(name)
    values = None if values is None else np.asarray(values, dtype=float)[rows]
    for child in network.core.absorbed_children.get(name, ()):
        below = _absorbed_likelihood(network, child, likelihood, rows, tables)
        if below is None:
            continue
        if child in tables:   # per-row table [rows, k_parent, k_child]
            message = np.einsum("nc,npc->np", below, _rows_of(tables[child], rows))
        else:                 # child's table is [k_parent, k_child]
            message = below @ network.tables[child].T
        values = message if values is None else values * message
    return values


def _rescale(values: np.ndarray, log_scale: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Divide each row by its maximum (added to ``log_scale``); flag all-zero rows in ``dead``."""
    flat = values.reshape(values.shape[0], -1)
    if flat.shape[1] <= 4:
        # a few columns: elementwise maxima beat a reduction over a short axis
        top = flat[:, 0]
        for j in range(1, flat.shape[1]):
            top = np.maximum(top, flat[:, j])
    else:
        top = flat.max(axis=1)
    zero = top <= 0
    dead |= zero
    top = np.where(zero, 1.0, top)
    log_scale += np.log(top)
    return values / top.reshape((-1,) + (1,) * (values.ndim - 1))


def _group_value(network: CompiledNetwork, group: _Group, likelihood: Mapping[str, np.ndarray], rows: slice,
                 log_scale: np.ndarray, dead: np.ndarray, tables: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The product of a group's findings over its scope, ``[rows, n_scope]`` (None: no findings)."""
    value = None
    n_factors = 0
    for name, emission in group.members.items():
        values = _absorbed_likelihood(network, name, likelihood, rows, tables)
        if values is None:
            continue
        values = _rescale(values, log_scale, dead)
        if name in tables and name in group.member_parents:
            # per-row table [rows, *parent_cards, k] read at the scope's parent states: [rows, n_scope, k]
            table = _rows_of(tables[name], rows)
            per_row = table[(slice(None), *group.member_parents[name])]
            factor = np.einsum("nk,nsk->ns", values, per_row).reshape((-1, *group.shape))
        else:
            factor = (values @ emission).reshape((-1, *group.shape))
        value = factor if value is None else value * factor
        n_factors += 1
    for child, shape in group.children:
        below = _group_value(network, child, likelihood, rows, log_scale, dead, tables)
        if below is None:
            continue
        below = below.reshape((-1, *shape))
        value = below if value is None else value * below
        n_factors += 1
    if value is None:
        return None
    if n_factors > 8:
        # findings were rescaled one by one; rescale their product too when many multiply up
        value = _rescale(value, log_scale, dead)
    # a value built only from nested groups may still have broadcast (size-1) axes
    return np.broadcast_to(value, (value.shape[0], *group.shape))


def _propagate_core(network: CompiledNetwork, likelihood: Mapping[str, np.ndarray], targets: Sequence[str],
                    n_rows: int, tables: Mapping[str, np.ndarray] | None = None) -> Propagation:
    core = network.core
    tables = {name: np.asarray(table, dtype=float) for name, table in (tables or {}).items()}
    marginals = {t: np.empty((n_rows, len(network.states[t]))) for t in targets}
    log_pe = np.zeros(n_rows)
    impossible = np.zeros(n_rows, dtype=bool)
    for start in range(0, n_rows, CORE_BLOCK_ROWS):
        rows = slice(start, min(start + CORE_BLOCK_ROWS, n_rows))
        n_block = rows.stop - rows.start
        log_scale = np.zeros(n_block)
        dead = np.zeros(n_block, dtype=bool)
        factors = {}
        for stand_in, group in zip(core.stand_ins, core.top_groups):
            value = _group_value(network, group, likelihood, rows, log_scale, dead, tables)
            if value is not None:
                factors[stand_in] = value[..., None]
        block_tables = {name: _rows_of(table, rows) for name, table in tables.items() if name in core.nodes}
        result = propagate(core.tree, {}, targets=targets, tables=block_tables, factors=factors, n_rows=n_block)
        dead |= result.impossible
        log_pe[rows] = np.where(dead, -np.inf, log_scale + result.log_evidence_probability)
        impossible[rows] = dead
        for t in targets:
            marginal = result.marginals[t]
            marginal[dead] = np.nan
            marginals[t][rows] = marginal
    return Propagation(marginals=marginals, log_evidence_probability=log_pe, impossible=impossible, families={})


def propagate(network: CompiledNetwork, likelihood: Mapping[str, np.ndarray], *,
              targets: Sequence[str] | None = None, families: Sequence[str] = (),
              tables: Mapping[str, np.ndarray] | None = None, factors: Mapping[str, np.ndarray] | None = None,
              n_rows: int | None = None) -> Propagation:
    """Exact posterior marginals and ``P(e)`` for a batch of evidence rows.

    Parameters
    ----------
    network : CompiledNetwork
        From :func:`compile_spec` or :func:`compile_network`.
    likelihood : mapping
        Node -> ``[n_rows, n_states]`` non-negative likelihood. Nodes left out are unobserved.
    targets : sequence of str, optional
        Nodes whose posterior marginals are returned (default: every node).
    families : sequence of str
        Nodes whose family posteriors ``P(parents, node | e)`` are returned too.
    tables : mapping, optional
        Per-row CPDs replacing the compiled ones: node -> ``[n_rows or 1, *parent_cards, n_states]``
        (used to score parameter draws).
    factors : mapping, optional
        Per-row factors multiplied into a node's family, node -> ``[n_rows or 1, *parent_cards, n_states]``
        (the core fast path passes its findings this way).
    n_rows : int, optional
        Needed only when ``likelihood`` is empty.

    Returns
    -------
    Propagation
        Marginals (NaN on impossible rows), ``log P(e)`` (``-inf`` when impossible), the
        impossible-row mask and the family posteriors asked for.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> result = propagate(network, {"leg_cramps": np.array([[0.0, 1.0]])})
    >>> result.marginals["magnesium_deficiency"].shape
    (1, 2)
    """
    index = network.index
    cards = [len(network.states[n]) for n in network.names]
    if n_rows is None:
        sizes = {np.shape(v)[0] for v in likelihood.values()}
        sizes |= {np.shape(v)[0] for v in (tables or {}).values() if np.shape(v)[0] != 1}
        if not sizes:
            raise ValueError("propagate: pass n_rows when no node is observed.")
        n_rows = sizes.pop()
    wanted = list(network.names) if targets is None else list(targets)
    if network.core is not None and not families and not factors and set(wanted) <= set(network.core.nodes):
        return _propagate_core(network, likelihood, wanted, n_rows, tables)
    log_scale = np.zeros(n_rows)
    impossible = np.zeros(n_rows, dtype=bool)
    n_cliques = len(network.cliques)
    potentials = list(network.static)
    if tables:
        for c in {network.family_clique[name] for name in tables}:
            potentials[c] = _rebuild(network, c, tables, cards)
    for name, values in likelihood.items():
        values = np.asarray(values, dtype=float)
        c = network.family_clique[name]
        potentials[c] = potentials[c] * _into_clique(values, [index[name]], network.cliques[c], cards)
    for name, values in (factors or {}).items():
        c = network.family_clique[name]
        potentials[c] = potentials[c] * _into_clique(np.asarray(values, dtype=float),
                                                     _family_axes(index[name], network.parents[name], index),
                                                     network.cliques[c], cards)
    for c in range(n_cliques):
        if potentials[c].shape[0] != 1:
            potentials[c] = _normalise(potentials[c], n_rows, log_scale, impossible)

    upward: list[np.ndarray | None] = [None] * n_cliques
    for c in network.collect_order:
        product = potentials[c]
        for child in network.children[c]:
            product = product * upward[child]
        parent = network.tree_parent[c]
        if parent < 0:
            total = product.reshape(product.shape[0], -1).sum(axis=1)
            zero = total <= 0
            impossible |= np.broadcast_to(zero, (n_rows,))
            log_scale += np.log(np.where(zero, 1.0, total))
            continue
        upward[c] = _message(product, network.cliques[c], network.cliques[parent], network.separators[c],
                             n_rows, log_scale, impossible, cards)

    downward: list[np.ndarray | None] = [None] * n_cliques
    scratch_scale = np.zeros(n_rows)
    scratch_flags = np.zeros(n_rows, dtype=bool)
    for c in reversed(network.collect_order):
        base = potentials[c] if downward[c] is None else potentials[c] * downward[c]
        for child in network.children[c]:
            product = base
            for other in network.children[c]:
                if other != child:
                    product = product * upward[other]
            downward[child] = _message(product, network.cliques[c], network.cliques[child],
                                       network.separators[child], n_rows, scratch_scale, scratch_flags, cards)

    belief_cache: dict[int, np.ndarray] = {}

    def unnormalised_belief(c: int) -> np.ndarray:
        product = potentials[c] if downward[c] is None else potentials[c] * downward[c]
        for child in network.children[c]:
            product = product * upward[child]
        return np.broadcast_to(product, (n_rows,) + product.shape[1:])

    def belief(c: int) -> np.ndarray:
        if c not in belief_cache:
            product = unnormalised_belief(c)
            totals = product.reshape(n_rows, -1).sum(axis=1)
            safe = np.where(totals > 0, totals, 1.0)
            belief_cache[c] = product / safe.reshape((-1,) + (1,) * (product.ndim - 1))
        return belief_cache[c]

    marginals = {}
    by_clique: dict[int, list[str]] = {}
    for name in wanted:
        by_clique.setdefault(network.family_clique[name], []).append(name)
    for c, names_here in by_clique.items():
        # every target read from this clique in one matrix product with a one-hot indicator
        clique = network.cliques[c]
        grid = _configurations([cards[v] for v in clique])
        indicator = np.hstack([np.eye(cards[index[n]])[grid[clique.index(index[n])]] for n in names_here])
        # unnormalised: each node's columns sum to the clique total, which normalises them
        read = unnormalised_belief(c).reshape(n_rows, -1) @ indicator
        at = 0
        for name in names_here:
            k = cards[index[name]]
            marginal = read[:, at:at + k]
            total = marginal.sum(axis=1, keepdims=True)
            marginal = marginal / np.where(total > 0, total, 1.0)
            marginal[impossible] = np.nan
            marginals[name] = marginal
            at += k
    family_posteriors = {}
    for name in families:
        c = network.family_clique[name]
        clique = network.cliques[c]
        axes_nodes = _family_axes(index[name], network.parents[name], index)
        keep = sorted(axes_nodes)
        summed = belief(c).sum(axis=tuple(k + 1 for k, v in enumerate(clique) if v not in keep))
        # summed has the family in sorted node order; return it as [*parents, node]
        permutation = [0] + [keep.index(v) + 1 for v in axes_nodes]
        family = np.transpose(summed, permutation).copy()
        family[impossible] = np.nan
        family_posteriors[name] = family
    log_pe = np.where(impossible, -np.inf, log_scale)
    return Propagation(marginals=marginals, log_evidence_probability=log_pe, impossible=impossible,
                       families=family_posteriors)


def _rebuild(network: CompiledNetwork, c: int, replaced: Mapping[str, np.ndarray], cards: list[int]) -> np.ndarray:
    index = network.index
    clique = network.cliques[c]
    potential = np.ones((1,) + tuple(cards[v] for v in clique))
    for name in network.names:
        if network.family_clique[name] != c:
            continue
        table = np.asarray(replaced[name], dtype=float) if name in replaced else network.tables[name][None]
        potential = potential * _into_clique(table, _family_axes(index[name], network.parents[name], index),
                                             clique, cards)
    return potential


#: Largest clique-size x separator-size for which messages are summed by a projection matrix product.
PROJECTION_LIMIT = 1 << 14


def _size(nodes: Sequence[int], cards: Sequence[int]) -> int:
    return int(np.prod([cards[v] for v in nodes])) if nodes else 1


@functools.lru_cache(maxsize=1024)
def _projection(source: tuple[int, ...], separator: tuple[int, ...], source_cards: tuple[int, ...]) -> np.ndarray:
    """0/1 matrix ``[n_source_configs, n_separator_configs]`` summing a clique table onto a separator."""
    cards = dict(zip(source, source_cards))
    grid = _configurations(list(source_cards))
    column = np.zeros(grid.shape[1], dtype=np.int64)
    for v in separator:
        column = column * cards[v] + grid[source.index(v)]
    projection = np.zeros((grid.shape[1], int(np.prod([cards[v] for v in separator]))))
    projection[np.arange(grid.shape[1]), column] = 1.0
    return projection


def _message(product: np.ndarray, source: tuple[int, ...], target: tuple[int, ...],
             separator: tuple[int, ...], n_rows: int, log_scale: np.ndarray, impossible: np.ndarray,
             cards: list[int]) -> np.ndarray:
    """Sum ``product`` (over ``source``) down to ``separator``, rescale, shape it for ``target``."""
    summed_axes = tuple(k + 1 for k, v in enumerate(source) if v not in separator)
    if not summed_axes:
        message = product
    elif product.shape[0] > 1 and product[0].size * max(1, _size(separator, cards)) <= PROJECTION_LIMIT:
        # a sum over scattered axes is slow in numpy; a product with a 0/1 projection is BLAS work
        flat = np.broadcast_to(product, (n_rows, *product.shape[1:])).reshape(n_rows, -1)
        message = (flat @ _projection(source, separator, tuple(cards[v] for v in source)))
        message = message.reshape((n_rows, *(cards[v] for v in separator)))
    else:
        message = product.sum(axis=summed_axes)
    message = _normalise(message, n_rows, log_scale, impossible)
    shape = (message.shape[0],) + tuple(cards[v] if v in separator else 1 for v in target)
    return message.reshape(shape)


def distinct_rows(codes: np.ndarray, sizes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an integer code table and, per input row, the index of its distinct row.

    ``sizes[j]`` bounds column ``j``'s codes (default: its maximum + 1). Rows become one integer
    key (mixed radix) when that fits in int64, raw bytes otherwise: both far faster than
    ``np.unique(axis=0)``.

    Examples
    --------
    >>> patterns, inverse = distinct_rows(np.array([[1, 0], [0, 2], [1, 0]]))
    >>> patterns.tolist(), inverse.tolist()
    ([[0, 2], [1, 0]], [1, 0, 1])
    """
    codes = np.asarray(codes, dtype=np.int64)
    n_rows, n_columns = codes.shape
    if n_columns == 0:
        return np.zeros((min(1, n_rows), 0), dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    if n_rows == 0:
        return codes, np.zeros(0, dtype=np.int64)
    if sizes is None:
        sizes = (codes.max(axis=0) + 1).tolist()
    if float(np.prod([float(s) for s in sizes])) < 2.0 ** 62:
        key = np.zeros(n_rows, dtype=np.int64)
        for j, size in enumerate(sizes):
            key = key * int(size) + codes[:, j]
    else:
        small = np.ascontiguousarray(codes.astype(np.uint8 if max(sizes) <= 256 else np.int64))
        key = small.view(np.dtype((np.void, small.dtype.itemsize * n_columns))).reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return codes[first], inverse.reshape(-1)


def propagate_codes(network: CompiledNetwork, nodes: Sequence[str], codes: np.ndarray,
                    alphabets: Sequence[np.ndarray], *, targets: Sequence[str] | None = None,
                    chunk_size: int = 65536, distinct: bool = False) -> Propagation:
    """Posteriors for rows of coded evidence, scoring each distinct row once.

    Parameters
    ----------
    network : CompiledNetwork
    nodes : sequence of str
        The observed nodes, one per column of ``codes``.
    codes : ndarray of int, ``[n_rows, n_nodes]``
        ``codes[r, j]`` indexes ``alphabets[j]``.
    alphabets : sequence of ndarray
        ``alphabets[j]`` is ``[n_codes, n_states]``: the likelihood vector of each code.
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
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> alphabet = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])   # no, yes, unobserved
    >>> codes = np.array([[1], [2], [1]])
    >>> result = propagate_codes(network, ["leg_cramps"], codes, [alphabet])
    >>> bool(np.allclose(result.marginals["leg_cramps"][0], [0, 1]))
    True
    """
    codes = np.asarray(codes, dtype=np.int64)
    n_rows = codes.shape[0]
    wanted = list(network.names) if targets is None else list(targets)
    if n_rows == 0:
        return Propagation(marginals={t: np.zeros((0, len(network.states[t]))) for t in wanted},
                           log_evidence_probability=np.zeros(0), impossible=np.zeros(0, dtype=bool), families={})
    if distinct:
        patterns, inverse = codes, np.arange(n_rows)
    else:
        patterns, inverse = distinct_rows(codes, [len(a) for a in alphabets])
    n_patterns = patterns.shape[0]
    marginals = {t: np.empty((n_patterns, len(network.states[t]))) for t in wanted}
    log_pe = np.empty(n_patterns)
    impossible = np.empty(n_patterns, dtype=bool)
    for start in range(0, n_patterns, chunk_size):
        block = patterns[start:start + chunk_size]
        likelihood = {node: np.asarray(alphabets[j])[block[:, j]] for j, node in enumerate(nodes)}
        result = propagate(network, likelihood, targets=wanted, n_rows=block.shape[0])
        for t in wanted:
            marginals[t][start:start + block.shape[0]] = result.marginals[t]
        log_pe[start:start + block.shape[0]] = result.log_evidence_probability
        impossible[start:start + block.shape[0]] = result.impossible
    return Propagation(marginals={t: m[inverse] for t, m in marginals.items()},
                       log_evidence_probability=log_pe[inverse], impossible=impossible[inverse], families={})
