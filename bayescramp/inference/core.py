"""The core fast path: findings that hang off a core become matrix products over small scopes.

A node is *absorbed* when it has parents and its children are all absorbed with it as their
only parent (the symptoms and cramp timing of the default model); the other nodes form the
*core*. An *attached* node is absorbed with all its parents in the core. All the evidence on an
attached node and the absorbed nodes below it becomes one likelihood vector ``λ[rows, k]``
(a few matrix products down each chain), and then one factor over the core nodes it depends
on, ``λ @ P(node | parents)``: a ``[rows, k] @ [k, scope]`` product. Factors are multiplied
in nested *groups* over the smallest scopes that hold them; each top-level group enters a
junction tree of the core alone (:attr:`Core.tree`) as a per-row factor on a one-state
stand-in node whose parents are the group's scope. The core is never enumerated whole: its
junction tree limits the work, like any other.

Derivatives follow the same path backwards: the core tree gives ``∂P/∂(group factor)``, the
groups share it out to their members (leave-one-out products, nothing divided), and each
attached node passes it down its chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .._errors import SpecError
from .graph import absorbed_nodes, children_of
from .tree import (
    Pass,
    Tree,
    _products_leaving_one_out,
    _sum_axes,
    build_tree,
    configurations,
    cpt_products,
    left_out_families,
    sum_product,
)

__all__ = ["Core", "Group", "Findings", "Prepared", "build_core", "core_pass", "core_derivatives", "contracted",
           "prepare_draws", "by_draw", "contract"]


@dataclass(frozen=True)
class Group:
    """Findings multiplied together over a small set of core nodes (the group's scope).

    Attributes
    ----------
    scope : tuple of int
        Sorted core positions.
    shape : tuple of int
        Their numbers of states.
    members : dict
        Finding -> emission ``[k, n_scope]`` (``P(node | the scope's states)``), or None for a
        core node's own finding (its likelihood is the factor).
    parent_axes : dict
        Attached member -> the scope axes of its parents, in its CPT's parent order.
    member_parents : dict
        Attached member -> its parents' states in each scope configuration (to read per-row tables).
    children : tuple of int
        Nested groups (indices into :attr:`Core.groups`).
    parent : int
        The enclosing group, -1 at top level.
    in_parent : tuple of int
        Shape broadcasting ``[*shape]`` into the enclosing group's scope.
    stand_in : str
        The core tree's stand-in node of a top-level group ("" when nested).
    """

    scope: tuple[int, ...]
    shape: tuple[int, ...]
    members: dict[str, np.ndarray | None]
    parent_axes: dict[str, tuple[int, ...]]
    member_parents: dict[str, tuple[np.ndarray, ...]]
    children: tuple[int, ...]
    parent: int
    in_parent: tuple[int, ...]
    stand_in: str


@dataclass(frozen=True)
class Core:
    """The core fast path of a network (see the module docstring)."""

    nodes: tuple[str, ...]
    tree: Tree
    groups: tuple[Group, ...]               # nested groups before the group holding them
    absorbed: tuple[str, ...]               # parents before children
    absorbed_children: Mapping[str, tuple[str, ...]]
    tables: Mapping[str, np.ndarray] = field(repr=False)   # the network's CPDs


def build_core(names: Sequence[str], states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
               tables: Mapping[str, np.ndarray]) -> Core | None:
    """The core fast path, or None when the network has no absorbed nodes (or its core tree is too large)."""
    absorbed = absorbed_nodes(names, parents)
    if not absorbed:
        return None
    core = [n for n in names if n not in absorbed]
    position = {n: j for j, n in enumerate(core)}
    cards = [len(states[n]) for n in core]
    # a finding's scope: its parents (attached nodes) or itself (core nodes)
    scopes = {name: tuple(sorted(position[p] for p in parents[name])) if name in absorbed else (position[name],)
              for name in names if name not in absorbed or all(p not in absorbed for p in parents[name])}
    groups = [_with_members(group, parents, position, tables, cards) for group in _group_findings(scopes, cards)]
    try:
        tree = _core_tree(core, states, parents, tables, groups)
    except SpecError:
        return None   # the network's own junction tree decides whether it can be compiled
    children = children_of(names, parents)
    return Core(nodes=tuple(core), tree=tree, groups=tuple(groups),
                absorbed=tuple(n for n in names if n in absorbed),
                absorbed_children={n: tuple(children[n]) for n in names if n in absorbed}, tables=tables)


def _core_tree(core: Sequence[str], states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
               tables: Mapping[str, np.ndarray], groups: Sequence[Group]) -> Tree:
    """The junction tree of the core's CPTs plus a one-state stand-in per top-level group."""
    names = list(core)
    tree_parents = {n: tuple(parents[n]) for n in core}
    tree_tables = {n: np.asarray(tables[n], dtype=float) for n in core}
    for group in groups:
        if group.stand_in:
            names.append(group.stand_in)
            tree_parents[group.stand_in] = tuple(core[v] for v in group.scope)
            tree_tables[group.stand_in] = np.ones((*group.shape, 1))
    return build_tree(names, [len(states[n]) if n in states else 1 for n in names], tree_parents, tree_tables)


def _group_findings(scopes: Mapping[str, tuple[int, ...]], cards: Sequence[int]) -> list[Group]:
    """Nest findings in groups over the smallest scopes that hold them (groups smallest first).

    Each finding joins the smallest group whose scope holds it; each group folds into the
    smallest strictly larger group that holds it; the rest are top level.
    """
    def size(scope: tuple[int, ...]) -> int:
        return int(np.prod([cards[v] for v in scope]))

    placed = _homes(scopes, size)
    homes = sorted(dict.fromkeys(placed.values()), key=size)
    index = {scope: g for g, scope in enumerate(homes)}
    enclosing = []
    for scope in homes:
        larger = [g for g in homes if g != scope and set(scope) < set(g)]
        enclosing.append(index[min(larger, key=size)] if larger else -1)
    everything = tuple(range(len(cards)))
    return [Group(scope=scope, shape=tuple(cards[v] for v in scope),
                  members={name: None for name, home in placed.items() if home == scope}, parent_axes={},
                  member_parents={}, children=tuple(h for h in range(len(homes)) if enclosing[h] == g),
                  parent=enclosing[g],
                  in_parent=tuple(cards[v] if v in scope else 1
                                  for v in (homes[enclosing[g]] if enclosing[g] >= 0 else everything)),
                  stand_in="" if enclosing[g] >= 0 else f"__findings_{g}")
            for g, scope in enumerate(homes)]


def _homes(scopes: Mapping[str, tuple[int, ...]], size) -> dict[str, tuple[int, ...]]:
    """Each finding's group scope: the smallest scope already taken that holds its own, else its own."""
    homes: list[tuple[int, ...]] = []
    placed: dict[str, tuple[int, ...]] = {}
    for name, scope in sorted(scopes.items(), key=lambda item: size(item[1])):
        holders = [g for g in homes if set(scope) <= set(g)]
        if not holders:
            homes.append(scope)
        placed[name] = min(holders, key=size) if holders else scope
    return placed


def _with_members(group: Group, parents: Mapping[str, Sequence[str]], position: Mapping[str, int],
                  tables: Mapping[str, np.ndarray], cards: Sequence[int]) -> Group:
    """Fill in each attached member's emission over the group's scope and where its parents sit."""
    grid = configurations([cards[v] for v in group.scope])
    members, parent_axes, member_parents = {}, {}, {}
    for name in group.members:
        if name in position:   # a core node's own finding
            members[name] = None
            continue
        axes = tuple(group.scope.index(position[p]) for p in parents[name])
        states = tuple(grid[a] for a in axes)
        table = np.asarray(tables[name], dtype=float)
        members[name] = np.ascontiguousarray(table[states].T)
        parent_axes[name] = axes
        member_parents[name] = states
    return Group(scope=group.scope, shape=group.shape, members=members, parent_axes=parent_axes,
                 member_parents=member_parents, children=group.children, parent=group.parent,
                 in_parent=group.in_parent, stand_in=group.stand_in)


def _rescale(values: np.ndarray, n_batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values / item maximum, log maximum, all-zero items)``; all-zero items are left as they are."""
    flat = values.reshape(values.shape[:n_batch] + (-1,))
    if flat.shape[-1] <= 4:
        # a few columns: elementwise maxima beat a reduction over a short axis
        top = flat[..., 0]
        for j in range(1, flat.shape[-1]):
            top = np.maximum(top, flat[..., j])
    else:
        top = flat.max(axis=-1)
    zero = top <= 0
    top = np.where(zero, 1.0, top)
    return values / top.reshape(top.shape + (1,) * (values.ndim - n_batch)), np.log(top), zero


def by_draw(table: np.ndarray) -> np.ndarray:
    """A drawn table ``[1, n_draws, *rest, k]`` laid out as ``[k, n_draws * prod(rest)]`` for one matrix product."""
    n_draws, k = table.shape[1], table.shape[-1]
    return np.ascontiguousarray(table[0].reshape(n_draws, -1, k).transpose(2, 0, 1)).reshape(k, -1)


def contract(below: np.ndarray, table: np.ndarray, n_batch: int, laid_out: np.ndarray | None = None) -> np.ndarray:
    """``Σ_k below[*batch, k] · table[*batch, *rest, k]`` as ``[*batch, *rest]`` (batch axes may be 1).

    A table shared by the whole batch, or evidence by rows and a table by draws (batch ``[rows,
    draws]``; ``laid_out`` = :func:`by_draw` of the table, when computed once), is one matrix
    product; anything else is a few multiply-adds (or an ``einsum`` for many states).
    """
    k = table.shape[-1]
    rest = table.shape[n_batch:-1]
    n_rest = int(np.prod(rest, dtype=np.int64))
    if all(size == 1 for size in table.shape[:n_batch]):
        product = below @ table.reshape(n_rest, k).T
        return product.reshape(product.shape[:-1] + rest)
    if n_batch == 2 and below.shape[1] == 1 and table.shape[0] == 1:
        n_draws = table.shape[1]
        laid_out = by_draw(table) if laid_out is None else laid_out
        return (below[:, 0, :] @ laid_out).reshape((below.shape[0], n_draws) + rest)
    flat = table.reshape(table.shape[:n_batch] + (n_rest, k))
    if k <= 8:
        # a few states: multiply-adds over whole arrays beat einsum's broadcasting loops
        total = below[..., 0, None] * flat[..., 0]
        for j in range(1, k):
            total += below[..., j, None] * flat[..., j]
    else:
        total = np.einsum("...k,...rk->...r", below, flat)
    return total.reshape(total.shape[:-1] + rest)


@dataclass
class Findings:
    """A block of rows' evidence, folded into the core's groups (every array rescaled per row).

    Attributes
    ----------
    below : dict
        Absorbed node -> likelihood of all evidence on it and below it, ``[rows, k]``, divided by
        its row maximum (whose log is in ``below_log``); None when nothing there is observed.
    messages : dict
        Absorbed node with evidence below -> its message to its parent, ``below @ table.T``.
    parts : list
        Per group, ``(member name or nested group index, factor over the scope)``.
    values : list
        Per group, the product of its parts ``[rows, *shape]`` (None: no findings), divided by
        ``exp(value_log[g])`` when many parts multiply up.
    log_scale : ndarray
        The log of everything divided out, per row: ``P(e) = exp(log_scale) * P(core tree)``.
    dead : ndarray of bool
        Rows with a finding that is impossible whatever the core's states.
    """

    below: dict[str, np.ndarray | None]
    below_log: dict[str, np.ndarray]
    messages: dict[str, np.ndarray]
    parts: list[list[tuple[object, np.ndarray]]]
    values: list[np.ndarray | None]
    value_log: list[np.ndarray]
    log_scale: np.ndarray
    dead: np.ndarray


def fold_findings(core: Core, likelihood: Mapping[str, np.ndarray], batch: tuple[int, ...],
                  tables: Mapping[str, np.ndarray], prepared: Prepared | None = None,
                  emissions: Mapping[str, np.ndarray] | None = None) -> Findings:
    """Fold a batch's evidence into the core's groups (iteratively: any depth of chain works).

    ``likelihood`` and the per-item ``tables`` are ``[*batch, ...]`` with batch axes of length
    1 where shared. ``prepared`` holds drawn tables laid out once for many batches;
    ``emissions`` per-row emissions ``[rows, k, n_scope]`` of attached findings (rows only).
    """
    emissions = emissions or {}
    n_batch = len(batch)
    laid_out = prepared.laid_out if prepared is not None else {}
    found = Findings(below={}, below_log={}, messages={}, parts=[], values=[], value_log=[],
                     log_scale=np.zeros(batch), dead=np.zeros(batch, dtype=bool))

    def rescaled(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, log_top, zero = _rescale(values, n_batch)
        found.log_scale += log_top
        found.dead |= zero
        return values, log_top

    for name in reversed(core.absorbed):
        values = likelihood.get(name)
        for child in core.absorbed_children[name]:
            below = found.below.get(child)
            if below is None:
                continue
            table = tables[child] if child in tables else core.tables[child].reshape((1,) * n_batch
                                                                                    + core.tables[child].shape)
            message = contract(below, table, n_batch, laid_out.get(child))
            found.messages[child] = message
            values = message if values is None else values * message
        if values is not None:
            values, found.below_log[name] = rescaled(values)
        found.below[name] = values
    for group in core.groups:
        parts = []
        for member, emission in group.members.items():
            if member in emissions:
                factor = _emitted(found.below.get(member), emissions[member])
            else:
                factor = _member_factor(found, group, member, emission, likelihood, tables, n_batch, rescaled,
                                        laid_out.get(member))
            if factor is not None:
                parts.append((member, factor.reshape(factor.shape[:n_batch] + group.shape)))
        for h in group.children:
            if found.values[h] is not None:
                value = found.values[h]
                parts.append((h, value.reshape(value.shape[:n_batch] + core.groups[h].in_parent)))
        value = None
        # smallest parts first: nested groups over few core nodes meet before the full-scope factors
        for _, factor in sorted(parts, key=lambda part: part[1][(0,) * n_batch].size):
            value = factor if value is None else value * factor
        value_log = np.zeros(batch)
        if len(parts) > 8:
            # parts were rescaled one by one; rescale their product too when many multiply up
            value, value_log = rescaled(value)
        found.parts.append(parts)
        found.values.append(None if value is None else np.broadcast_to(value, batch + group.shape))
        found.value_log.append(value_log)
    return found


def _emitted(below: np.ndarray | None, emission: np.ndarray) -> np.ndarray | None:
    """``Σ_k below[rows, k] · emission[rows, k, n_scope]`` (None when nothing is observed)."""
    if below is None:
        return None
    factor = below[:, :1] * emission[:, 0]
    for k in range(1, emission.shape[1]):
        factor += below[:, k:k + 1] * emission[:, k]
    return factor


def _member_factor(found: Findings, group: Group, member: str, emission: np.ndarray | None,
                   likelihood: Mapping[str, np.ndarray], tables: Mapping[str, np.ndarray], n_batch: int,
                   rescaled, laid_out: np.ndarray | None) -> np.ndarray | None:
    """A finding's factor over its group's scope, ``[*batch, n_scope]`` (None when nothing is observed)."""
    if emission is None:   # a core node's own finding
        values = likelihood.get(member)
        return None if values is None else rescaled(np.asarray(values, dtype=float))[0]
    below = found.below.get(member)
    if below is None:
        return None
    if member in tables:
        if laid_out is not None and below.shape[1] == 1:
            n_scope = len(group.member_parents[member][0])
            return (below[:, 0, :] @ laid_out).reshape((below.shape[0], -1, n_scope))
        # per-item table [*batch, *parent_cards, k] read at the scope's parent states: [*batch, n_scope, k]
        per_item = tables[member][(slice(None),) * n_batch + group.member_parents[member]]
        return contract(below, per_item, n_batch)
    return below @ emission


@dataclass
class Prepared:
    """Drawn tables ``[1, n_draws, ...]`` prepared once for every block of a rows x draws batch.

    Attributes
    ----------
    products : list
        The core tree's CPT products (:func:`~bayescramp.inference.tree.cpt_products`).
    laid_out : dict
        Absorbed node -> its drawn table read at its group's scope (or, below an attached node,
        its drawn table) laid out by :func:`by_draw`.
    """

    products: list
    laid_out: dict[str, np.ndarray]


def prepare_draws(core: Core, tables: Mapping[str, np.ndarray]) -> Prepared:
    """Lay out drawn tables ``[1, n_draws, ...]`` once (see :class:`Prepared`)."""
    laid_out = {}
    for group in core.groups:
        for member, emission in group.members.items():
            if emission is not None and member in tables:
                laid_out[member] = by_draw(tables[member][(slice(None),) * 2 + group.member_parents[member]])
    for kids in core.absorbed_children.values():
        for kid in kids:
            if kid in tables:
                laid_out[kid] = by_draw(tables[kid])
    core_tables = {name: table for name, table in tables.items() if name in core.tree.index}
    return Prepared(products=cpt_products(core.tree, core_tables, 2), laid_out=laid_out)


def core_pass(core: Core, likelihood: Mapping[str, np.ndarray], batch: tuple[int, ...],
              tables: Mapping[str, np.ndarray], *, distribute: bool | Sequence[str],
              prepared: Prepared | None = None,
              emissions: Mapping[str, np.ndarray] | None = None) -> tuple[Findings, Pass]:
    """Fold a batch's findings and propagate them through the core tree (see :func:`fold_findings`)."""
    found = fold_findings(core, likelihood, batch, tables, prepared, emissions)
    factors = {group.stand_in: value[..., None] for group, value in zip(core.groups, found.values)
               if group.stand_in and value is not None}
    core_tables = {name: table for name, table in tables.items() if name in core.tree.index}
    state = sum_product(core.tree, {}, batch, tables=core_tables, factors=factors, distribute=distribute,
                        products=prepared.products if prepared is not None else None)
    return found, state


def core_derivatives(core: Core, likelihood: Mapping[str, np.ndarray], n: int, nodes: Sequence[str],
                     reference: Callable[[np.ndarray], np.ndarray],
                     weights: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``∂P(e)/∂(CPT entry) × exp(-reference(log P(e)))`` of every node in ``nodes``, for ``n`` rows.

    Returns the derivatives (node -> ``[n, *table shape]``, or ``[n, n_weights]`` contracted
    with ``weights[node]`` ``[n_weights, *table shape]`` where given) and ``log P(e)``
    (``-inf`` if impossible). The core tree's nodes are contracted by the caller.
    """
    stand_ins = [group.stand_in for group in core.groups if group.stand_in]
    in_tree = [name for name in nodes if name in core.tree.index]
    found, state = core_pass(core, likelihood, (n,), {}, distribute=in_tree + stand_ins)
    dead = found.dead | state.impossible
    log_pe = np.where(dead, -np.inf, found.log_scale + state.log_evidence_probability)
    wanted = {name: weights.get(name) for name in nodes}
    derivatives = left_out_families(state, in_tree + stand_ins, reference(log_pe) - found.log_scale)
    result = contracted({name: derivatives[name] for name in in_tree}, weights)
    needed = _with_absorbed_ancestors(core, [name for name in nodes if name not in core.tree.index])
    if not needed:
        return result, log_pe
    outside: list[np.ndarray | None] = [derivatives[g.stand_in][..., 0] if g.stand_in else None for g in core.groups]
    reach: dict[str, np.ndarray] = {}
    for g in range(len(core.groups) - 1, -1, -1):
        _share_out(core, found, g, outside, reach, needed, wanted, result, n)
    for name in core.absorbed:
        if name in reach and any(child in needed for child in core.absorbed_children[name]):
            _pass_down(core, found, name, likelihood, reach, needed, wanted, result, n)
    return result, log_pe


def contracted(derivatives: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-entry derivatives ``[rows, *table shape]`` contracted with ``weights[node]`` where given: ``[rows, m]``."""
    result = dict(derivatives)
    for name, values in derivatives.items():
        if name in weights:
            w = np.asarray(weights[name], dtype=float)
            result[name] = values.reshape(values.shape[0], -1) @ w.reshape(len(w), -1).T
    return result


def _with_absorbed_ancestors(core: Core, names: Sequence[str]) -> set[str]:
    parent_of = {child: name for name, kids in core.absorbed_children.items() for child in kids}
    needed = set()
    for name in names:
        while name is not None and name not in needed:
            needed.add(name)
            name = parent_of.get(name)
    return needed


def _share_out(core: Core, found: Findings, g: int, outside: list, reach: dict, needed: set, wanted: Mapping,
               result: dict, n: int) -> None:
    """Split group ``g``'s outside derivative among its members and nested groups (leave-one-out products)."""
    group = core.groups[g]
    base = np.broadcast_to(outside[g], (n, *group.shape)) * np.exp(-found.value_log[g]).reshape(
        (-1,) + (1,) * len(group.shape))
    parts = found.parts[g]
    left_out = dict(zip([key for key, _ in parts], _products_leaving_one_out(base, [f for _, f in parts])))
    everything = None

    def leaving_out(key) -> np.ndarray:
        nonlocal everything
        if key in left_out:
            return left_out[key]
        if everything is None:
            everything = base
            for _, factor in parts:
                everything = everything * factor
        return everything

    for h in group.children:
        summed = tuple(k + 1 for k, v in enumerate(group.scope) if v not in core.groups[h].scope)
        product = np.broadcast_to(leaving_out(h), (n, *group.shape))
        outside[h] = _sum_axes(product, summed).reshape((n, *core.groups[h].shape))
    for member, emission in group.members.items():
        if emission is None or member not in needed:
            continue
        axes = group.parent_axes[member]
        product = np.broadcast_to(leaving_out(member), (n, *group.shape))
        summed = _sum_axes(product, [k + 1 for k in range(len(group.shape)) if k not in axes])
        order = sorted(range(len(axes)), key=lambda j: axes[j])
        by_parents = np.transpose(summed, [0] + [order.index(j) + 1 for j in range(len(axes))]).reshape(n, -1)
        _record(core, found, member, by_parents, reach, wanted, result, n)


def _record(core: Core, found: Findings, name: str, by_parents: np.ndarray, reach: dict, wanted: Mapping, result: dict,
            n: int) -> None:
    """Store ``name``'s derivative (outside x evidence below) and what reaches its own evidence.

    With weights ``W[m, *table shape]`` the derivative is stored contracted, ``G @ W.T``, which
    for ``G = outside ⊗ below`` is one product per state and never materialises ``G``.
    """
    table = core.tables[name]
    k = table.shape[-1]
    below = found.below.get(name)
    if name in wanted:
        weights = wanted[name]
        if weights is None:
            below_or_ones = np.ones((n, k)) if below is None else below
            result[name] = (by_parents[:, :, None] * below_or_ones[:, None, :]).reshape((n, *table.shape))
        else:
            by_state = np.asarray(weights, dtype=float).reshape(len(weights), -1, k)
            if below is None:
                result[name] = by_parents @ by_state.sum(axis=2).T
            else:
                contracted = below[:, :1] * (by_parents @ by_state[:, :, 0].T)
                for a in range(1, k):
                    contracted += below[:, a:a + 1] * (by_parents @ by_state[:, :, a].T)
                result[name] = contracted
    reach[name] = by_parents @ table.reshape(-1, k)


def _pass_down(core: Core, found: Findings, name: str, likelihood: Mapping[str, np.ndarray], reach: dict,
               needed: set, wanted: Mapping, result: dict, n: int) -> None:
    """From what reaches an absorbed node's evidence to its absorbed children's CPTs."""
    base = reach[name] * np.exp(-found.below_log.get(name, np.zeros(n)))[:, None]
    direct = likelihood.get(name)
    if direct is not None:
        base = base * np.asarray(direct, dtype=float)
    kids = core.absorbed_children[name]
    present = [kid for kid in kids if kid in found.messages]
    left_out = dict(zip(present, _products_leaving_one_out(base, [found.messages[kid] for kid in present])))
    for kid in kids:
        if kid not in needed:
            continue
        if kid in left_out:
            outside = left_out[kid]
        else:
            outside = base
            for other in present:
                outside = outside * found.messages[other]
        _record(core, found, kid, outside, reach, wanted, result, n)
