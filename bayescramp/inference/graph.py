"""Graph work behind compilation: min-fill elimination, the junction tree it implies, absorbed nodes.

Nothing here touches probabilities; nodes are integer positions (parents before children).
Every algorithm is iterative (no recursion grows with the network's depth) and near-linear in
the size of a sparse graph.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = ["JunctionTree", "junction_tree", "absorbed_nodes", "children_of"]


@dataclass(frozen=True)
class JunctionTree:
    """A junction tree built from an elimination order.

    Attributes
    ----------
    cliques : list of tuple of int
        Sorted node positions of each clique.
    tree_parent : list of int
        Parent clique of each clique; -1 for the root (the last clique).
    collect_order : list of int
        Cliques with every child before its parent (the root last).
    children : list of list of int
    separators : list of tuple of int
        Nodes shared by a clique and its parent (empty for the root, and where disconnected
        parts of the network are joined).
    eliminated : list of tuple of int
        The nodes summed (or maximised) out in the message a clique sends to its parent:
        the clique minus its separator. Every node is eliminated in exactly one clique.
    family_clique : list of int
        The clique holding each node's family (node and parents).
    """

    cliques: list[tuple[int, ...]]
    tree_parent: list[int]
    collect_order: list[int]
    children: list[list[int]]
    separators: list[tuple[int, ...]]
    eliminated: list[tuple[int, ...]]
    family_clique: list[int]


def junction_tree(families: Sequence[Sequence[int]], cards: Sequence[int], *,
                  last: Sequence[int] = ()) -> JunctionTree:
    """The junction tree of a min-fill triangulation of the moral graph.

    Parameters
    ----------
    families : sequence of sequence of int
        Each node's family (its parents and itself); the moral graph joins each family.
    cards : sequence of int
        Number of states of each node.
    last : sequence of int
        Nodes eliminated after all others, in the reverse of the order given (so the first
        of them ends up in the root clique). Max-product over these nodes with the rest
        summed out is then exact (marginal MAP): every message sums out only nodes not in
        ``last`` before it maximises out nodes of ``last``.

    Examples
    --------
    >>> tree = junction_tree([(0,), (0, 1), (1, 2)], [2, 2, 2])
    >>> tree.cliques, tree.tree_parent, tree.separators
    ([(0, 1), (1, 2)], [1, -1], [(1,), ()])
    """
    n_nodes = len(cards)
    neighbours: list[set[int]] = [set() for _ in range(n_nodes)]
    for family in families:
        for a in family:
            neighbours[a].update(v for v in family if v != a)
    order, eliminated_with = _eliminate(neighbours, cards, last)
    return _tree_from_elimination(order, eliminated_with, families)


def _fill(v: int, neighbours: list[set[int]]) -> int:
    """Edges missing among ``v``'s neighbours (the fill-in its elimination adds)."""
    around = neighbours[v]
    return sum(1 for a in around for b in around if a < b and b not in neighbours[a])


def _eliminate(neighbours: list[set[int]], cards: Sequence[int],
               last: Sequence[int]) -> tuple[list[int], list[tuple[int, ...]]]:
    """Min-fill elimination (ties: smaller table, then lower position), ``last`` forced to the end.

    Fill counts live in a heap and are recomputed only for the nodes an elimination can
    change: the eliminated node's neighbours, and nodes adjacent to both ends of a fill edge.
    """
    forced = set(last)
    version = [0] * len(neighbours)
    alive = [True] * len(neighbours)

    def key(v: int) -> tuple:
        return _fill(v, neighbours), math.prod(cards[u] for u in neighbours[v]) * cards[v], v, version[v]

    heap = [key(v) for v in range(len(neighbours)) if v not in forced]
    heapq.heapify(heap)
    order: list[int] = []
    eliminated_with: list[tuple[int, ...]] = []

    def eliminate(v: int) -> set[int]:
        around = neighbours[v]
        order.append(v)
        eliminated_with.append(tuple(sorted(around)))
        touched = set(around)
        for a in around:
            for b in around:
                if a < b and b not in neighbours[a]:
                    neighbours[a].add(b)
                    neighbours[b].add(a)
                    touched |= neighbours[a] & neighbours[b]
        for a in around:
            neighbours[a].discard(v)
        alive[v] = False
        return touched

    while heap:
        *_, v, seen_version = heapq.heappop(heap)
        if not alive[v] or seen_version != version[v]:
            continue
        for u in eliminate(v):
            if alive[u] and u not in forced:
                version[u] += 1
                heapq.heappush(heap, key(u))
    for v in reversed(list(last)):
        eliminate(v)
    return order, eliminated_with


def _tree_from_elimination(order: list[int], eliminated_with: list[tuple[int, ...]],
                           families: Sequence[Sequence[int]]) -> JunctionTree:
    """Cliques ``{v} + neighbours(v)`` of the elimination, non-maximal ones merged, as a tree.

    A clique's parent is the clique of the first-eliminated of its other nodes. A clique that
    equals a child's clique minus the child's node is not maximal and merges into that child.
    Disconnected parts hang off the last root through empty separators.
    """
    position = {v: i for i, v in enumerate(order)}
    others = dict(zip(order, eliminated_with))
    parent_node = {v: min(others[v], key=position.__getitem__) if others[v] else -1 for v in order}
    representative, top = _merge_non_maximal(order, others, parent_node)
    groups = sorted(top, key=lambda r: position[top[r]])
    clique_of = {r: c for c, r in enumerate(groups)}
    root = len(groups) - 1
    tree_parent, separators = [], []
    for r in groups:
        p = parent_node[top[r]]
        tree_parent.append(clique_of[representative[p]] if p >= 0 else (-1 if clique_of[r] == root else root))
        separators.append(others[top[r]] if p >= 0 else ())
    cliques = [tuple(sorted((r,) + others[r])) for r in groups]
    children: list[list[int]] = [[] for _ in groups]
    for c, p in enumerate(tree_parent):
        if p >= 0:
            children[p].append(c)
    eliminated = [tuple(v for v in clique if v not in set(separator)) for clique, separator in zip(cliques, separators)]
    family_clique = [clique_of[representative[min(family, key=position.__getitem__)]] for family in families]
    return JunctionTree(cliques=cliques, tree_parent=tree_parent, collect_order=list(range(len(groups))),
                        children=children, separators=separators, eliminated=eliminated,
                        family_clique=family_clique)


def _merge_non_maximal(order: list[int], others: Mapping[int, tuple[int, ...]],
                       parent_node: Mapping[int, int]) -> tuple[dict[int, int], dict[int, int]]:
    """Merge each non-maximal elimination clique into the child that contains it.

    Returns each node's representative (the node whose clique holds the merged group) and,
    per representative, the group's top node (the one whose parent lies outside the group).
    """
    merged_into: dict[int, int] = {}
    for v in order:
        p = parent_node[v]
        if p >= 0 and p not in merged_into and len(others[p]) + 1 == len(others[v]):
            merged_into[p] = v
    representative: dict[int, int] = {}
    for v in order:
        representative[v] = representative[merged_into[v]] if v in merged_into else v
    top: dict[int, int] = {}
    for v in order:
        if merged_into.get(parent_node[v]) != v:
            top[representative[v]] = v
    return representative, top


def children_of(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Node -> its children, in ``names`` order."""
    children: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for parent in parents[name]:
            children[parent].append(name)
    return children


def absorbed_nodes(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> set[str]:
    """Nodes that hang off the core of a network.

    Each has parents, and all its children are absorbed and have it as their only parent (the
    symptoms and cramp timing of the default model). ``names`` must list parents before children.

    Examples
    --------
    >>> sorted(absorbed_nodes(["a", "b", "c"], {"a": (), "b": ("a",), "c": ("b",)}))
    ['b', 'c']
    """
    children = children_of(names, parents)
    absorbed: set[str] = set()
    for name in reversed(names):
        if parents[name] and all(c in absorbed and tuple(parents[c]) == (name,) for c in children[name]):
            absorbed.add(name)
    return absorbed
