"""A junction tree with its clique potentials, and the batched passes over it.

* :func:`sum_product` — one collect and one distribute pass (Shafer–Shenoy) over a batch of
  rows. Every message is rescaled per row and its log scale kept, message by message, so
  both ``P(e)`` and the scale reaching any clique are exact in log space.
* :func:`left_out_families` — for a node ``X``, ``∂P(e)/∂P(x | u)``: the family of ``X``
  read from its clique with ``X``'s own CPT (and per-row factor) left out. Nothing is divided
  by a CPT entry, so zero entries are exact.
* :func:`max_product` — marginal MAP: sum out every node not asked for, maximise over the
  asked-for nodes, then trace the maximising states back down the tree.

The batch (rows, or rows x parameter draws) is the leading axes of every array: a clique
potential is ``[*batch, *clique cards]``, with batch axes of length 1 where it is shared (a
CPT shared by every row, a drawn CPT shared by every evidence pattern).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .._errors import SpecError
from ..spec import MAX_TABLE_ENTRIES, size_error
from .graph import JunctionTree, junction_tree

__all__ = ["Tree", "build_tree", "Pass", "sum_product", "cpt_products", "left_out_families", "max_product",
           "TIE_TOLERANCE", "configurations"]

#: Largest 0/1 or weight matrix a clique table is summed through (larger: sums over its axes).
_WEIGHTS_LIMIT = 1 << 12
#: In max-product, values within this relative distance (in log terms) of the best are a tie.
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Tree:
    """A network's junction tree with the product of each clique's CPTs.

    Attributes
    ----------
    names : tuple of str
        Nodes, parents before children; node ``i`` is ``names[i]``.
    cards : tuple of int
    parents : dict
    tables : dict
        Node -> CPD ``[*parent_cards, n_states]``.
    junction : JunctionTree
    static : list of ndarray
        Per clique, the product of the CPTs assigned to it, ``[1, *clique cards]``.
    assigned : list of tuple of str
        Per clique, the nodes whose CPT (and evidence) it holds.
    """

    names: tuple[str, ...]
    cards: tuple[int, ...]
    parents: Mapping[str, tuple[str, ...]]
    tables: Mapping[str, np.ndarray]
    junction: JunctionTree
    static: list[np.ndarray]
    assigned: list[tuple[str, ...]]
    leaving_out: dict = field(default_factory=dict, repr=False, compare=False)   # (clique, node) -> CPTs but it

    def static_without(self, c: int, name: str) -> np.ndarray:
        """The product of clique ``c``'s CPTs except ``name``'s, ``[1, *clique cards]`` (computed once)."""
        key = (c, name)
        if key not in self.leaving_out:
            clique = self.junction.cliques[c]
            potential = np.ones((1,) + tuple(self.cards[v] for v in clique))
            for other in self.assigned[c]:
                if other != name:
                    potential = potential * into_clique(self.tables[other][None], self.family_axes[other], clique,
                                                        self.cards)
            self.leaving_out[key] = potential
        return self.leaving_out[key]

    def family_weights(self, c: int, name: str) -> np.ndarray:
        """``[clique configs, family configs]``: the other CPTs of clique ``c``, summed onto ``name``'s family.

        A clique table times this matrix is the table's sum onto the family ``[*parents, node]``
        weighted by every CPT of the clique but ``name``'s: one matrix product per derivative.
        """
        key = (c, name, "weights")
        if key not in self.leaving_out:
            clique = self.junction.cliques[c]
            grid = configurations([self.cards[v] for v in clique])
            family = self.family_axes[name]
            cell = np.ravel_multi_index(tuple(grid[clique.index(v)] for v in family),
                                        tuple(self.cards[v] for v in family))
            weights = np.zeros((grid.shape[1], math.prod(self.cards[v] for v in family)))
            weights[np.arange(grid.shape[1]), cell] = self.static_without(c, name).reshape(-1)
            self.leaving_out[key] = weights
        return self.leaving_out[key]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Node name -> position."""
        return {name: i for i, name in enumerate(self.names)}

    @functools.cached_property
    def family_axes(self) -> dict[str, list[int]]:
        """Node -> positions of its CPT's axes: parents in order, then the node."""
        index = self.index
        return {name: [index[p] for p in self.parents[name]] + [index[name]] for name in self.names}

    @functools.cached_property
    def clique_of(self) -> dict[str, int]:
        """Node -> the clique holding its family (its CPT and its evidence go there)."""
        return {name: self.junction.family_clique[i] for i, name in enumerate(self.names)}

    @functools.cached_property
    def evidence_clique(self) -> dict[str, int]:
        """Node -> the smallest clique holding it (where its evidence is multiplied in)."""
        sizes = [math.prod(self.cards[v] for v in clique) for clique in self.junction.cliques]
        best: dict[int, int] = {}
        for c, clique in enumerate(self.junction.cliques):
            for v in clique:
                if v not in best or sizes[c] < sizes[best[v]]:
                    best[v] = c
        return {name: best[i] for i, name in enumerate(self.names)}

    @functools.cached_property
    def largest_clique(self) -> int:
        """Entries of the largest clique table."""
        return max((math.prod(self.cards[v] for v in clique) for clique in self.junction.cliques), default=1)


def build_tree(names: Sequence[str], cards: Sequence[int], parents: Mapping[str, Sequence[str]],
               tables: Mapping[str, np.ndarray], *, last: Sequence[str] = ()) -> Tree:
    """Triangulate, build the junction tree, and multiply each clique's CPTs.

    Raises
    ------
    SpecError
        When a clique would have more than :data:`~bayescramp.spec.MAX_TABLE_ENTRIES` entries
        (before anything of that size is allocated).
    """
    index = {name: i for i, name in enumerate(names)}
    families = [[index[p] for p in parents[name]] + [index[name]] for name in names]
    junction = junction_tree(families, cards, last=[index[n] for n in last])
    for clique in junction.cliques:
        n_entries = math.prod(cards[v] for v in clique)
        if n_entries > MAX_TABLE_ENTRIES:
            shown = ", ".join(names[v] for v in clique[:8])
            shown += f" and {len(clique) - 8} more" if len(clique) > 8 else ""
            raise SpecError(size_error("network", f"the junction tree's clique over {shown}", n_entries))
    assigned: list[list[str]] = [[] for _ in junction.cliques]
    for i, name in enumerate(names):
        assigned[junction.family_clique[i]].append(name)
    static = []
    for c, clique in enumerate(junction.cliques):
        potential = np.ones((1,) + tuple(cards[v] for v in clique))
        for name in assigned[c]:
            potential = potential * into_clique(np.asarray(tables[name], dtype=float)[None], families[index[name]],
                                                clique, cards)
        static.append(potential)
    return Tree(names=tuple(names), cards=tuple(cards), parents={n: tuple(parents[n]) for n in names},
                tables={n: np.asarray(tables[n], dtype=float) for n in names}, junction=junction, static=static,
                assigned=[tuple(a) for a in assigned])


def into_clique(array: np.ndarray, axes: Sequence[int], clique: Sequence[int], cards: Sequence[int],
                n_batch: int = 1) -> np.ndarray:
    """Reshape ``array[*batch, *axes]`` to broadcast against ``[*batch, *clique]`` (clique sorted)."""
    order = sorted(range(len(axes)), key=lambda k: axes[k])
    array = np.transpose(array, list(range(n_batch)) + [k + n_batch for k in order])
    present = set(axes)
    return array.reshape(array.shape[:n_batch] + tuple(cards[v] if v in present else 1 for v in clique))


def configurations(cards: Sequence[int]) -> np.ndarray:
    """All configurations ``[n_vars, prod(cards)]`` in C order (last variable fastest)."""
    return np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=int)


def _flat(array: np.ndarray, n_batch: int) -> np.ndarray:
    """``array[*batch, *table]`` as ``[*batch, n_table_entries]``."""
    return array.reshape(array.shape[:n_batch] + (-1,))


def _normalise(array: np.ndarray, batch: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(array / batch-item totals, log totals [*batch], zero items [*batch])``; zero items are left as they are."""
    n_batch = len(batch)
    totals = _flat(array, n_batch).sum(axis=-1)
    zero = totals <= 0
    safe = np.where(zero, 1.0, totals)
    normalised = array / safe.reshape(safe.shape + (1,) * (array.ndim - n_batch))
    return normalised, np.broadcast_to(np.log(safe), batch), np.broadcast_to(zero, batch)


def _size(nodes: Sequence[int], cards: Sequence[int]) -> int:
    return math.prod(cards[v] for v in nodes)


def _sum_axes(array: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Sum ``array`` over ``axes``, an axis of a few states as a sum of its slices.

    numpy's reduction over several short, scattered axes walks memory in tiny strides; adding
    the slices of one axis at a time halves (or more) the data per step with plain array
    additions, several times faster, and rounds the same for any number of rows.
    """
    for axis in sorted(axes, reverse=True):
        size = array.shape[axis]
        if size > 8:
            array = array.sum(axis=axis)
            continue
        at = (slice(None),) * axis
        total = array[at + (0,)]
        if size > 1:
            total = total + array[at + (1,)]
            for j in range(2, size):
                total += array[at + (j,)]
        array = total
    return array


def _sum_to(product: np.ndarray, source: tuple[int, ...], keep: tuple[int, ...], batch: tuple[int, ...],
            cards: Sequence[int]) -> np.ndarray:
    """Sum ``product`` (over the sorted nodes ``source``) down to the sorted nodes ``keep``: ``[*batch, *keep]``."""
    n_batch = len(batch)
    return _sum_axes(product, [k + n_batch for k, v in enumerate(source) if v not in keep])


def _message(product: np.ndarray, source: tuple[int, ...], target: tuple[int, ...],
             separator: tuple[int, ...], batch: tuple[int, ...],
             cards: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``product`` to ``separator``, rescale it per batch item, shape it for ``target``: (message, log, zero)."""
    message, log_scale, zero = _normalise(_sum_to(product, source, separator, batch, cards), batch)
    n_batch = len(batch)
    shape = message.shape[:n_batch] + tuple(cards[v] if v in separator else 1 for v in target)
    return message.reshape(shape), log_scale, zero


def _products_leaving_one_out(base: np.ndarray, others: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``base * prod(others except others[i])`` for each ``i`` (prefix and suffix products when there are many)."""
    if len(others) <= 3:
        products = []
        for i in range(len(others)):
            product = base
            for j, other in enumerate(others):
                if j != i:
                    product = product * other
            products.append(product)
        return products
    prefix = [base]
    for other in others[:-1]:
        prefix.append(prefix[-1] * other)
    products = [prefix[-1]]
    suffix = others[-1]
    for i in range(len(others) - 2, -1, -1):
        products.append(prefix[i] * suffix)
        suffix = suffix * others[i]
    return products[::-1]


@dataclass
class Pass:
    """One batched sum-product pass: normalised potentials and messages, with their log scales.

    ``upward[c]`` is the message clique ``c`` sends its parent, ``downward[c]`` the one it
    receives; each was divided by its total per batch item, whose log is in ``upward_log`` /
    ``downward_log``. ``potential_log[c]`` is the log of the total each per-item clique
    potential was divided by. ``batch`` is the shape of the batch (rows, or rows x draws).
    """

    tree: Tree
    batch: tuple[int, ...]
    likelihood: Mapping[str, np.ndarray]
    tables: Mapping[str, np.ndarray]
    factors: Mapping[str, np.ndarray]
    potentials: list[np.ndarray]
    potential_log: list[np.ndarray]
    upward: list[np.ndarray | None]
    upward_log: list[np.ndarray]
    downward: list[np.ndarray | None]
    downward_log: list[np.ndarray]
    log_evidence_probability: np.ndarray
    impossible: np.ndarray
    partial: dict = field(default_factory=dict)   # clique -> (belief but one child's message, child)

    def incoming(self, c: int) -> np.ndarray | None:
        """Product of the (normalised) messages clique ``c`` receives, or None if it receives none."""
        product = self.downward[c]
        for child in self.tree.junction.children[c]:
            product = self.upward[child] if product is None else product * self.upward[child]
        return product

    def belief(self, c: int) -> np.ndarray:
        """Clique ``c``'s potential times its incoming messages, ``[*batch, *clique]`` (unnormalised)."""
        if c in self.partial:
            # the passes already built the product of all but one child's message
            product, child = self.partial[c]
            product = product if child is None else product * self.upward[child]
        else:
            incoming = self.incoming(c)
            product = self.potentials[c] if incoming is None else self.potentials[c] * incoming
        return np.broadcast_to(product, self.batch + product.shape[len(self.batch):])

    def clique_logs(self) -> list[np.ndarray]:
        """Per clique, the log of the scale its belief was divided by: belief × exp(log) is ``P(clique, e)``."""
        junction = self.tree.junction
        logs: list[np.ndarray] = [np.zeros(self.batch)] * len(junction.cliques)
        root = junction.collect_order[-1]
        logs[root] = sum(self.potential_log) + sum(self.upward_log[c] for c in junction.collect_order[:-1])
        for c in reversed(junction.collect_order):
            for child in junction.children[c]:
                logs[child] = logs[c] - self.upward_log[child] + self.downward_log[child]
        return logs


def _evidence_by_clique(tree: Tree, *sources: Mapping[str, np.ndarray]) -> list[list[tuple[str, np.ndarray, str]]]:
    """Per clique, the likelihoods and factors it holds.

    A likelihood (``kind="evidence"``) goes to the smallest clique holding its node, a factor
    (``"factor"``) to its node's family clique.
    """
    by_clique: list[list[tuple[str, np.ndarray, str]]] = [[] for _ in tree.junction.cliques]
    for kind, source in zip(("evidence", "factor"), sources):
        homes = tree.evidence_clique if kind == "evidence" else tree.clique_of
        for name, values in source.items():
            by_clique[homes[name]].append((name, np.asarray(values, dtype=float), kind))
    return by_clique


def cpt_products(tree: Tree, tables: Mapping[str, np.ndarray], n_batch: int) -> list[np.ndarray | None]:
    """Per clique, the product of its CPTs with per-item ``tables`` replacing some (None: no table replaced).

    Computed once, it serves every block of a batch that shares the tables (parameter draws).
    """
    return [_cpt_product(tree, c, tables, n_batch) if any(name in tables for name in tree.assigned[c]) else None
            for c in range(len(tree.junction.cliques))]


def _cpt_product(tree: Tree, c: int, tables: Mapping[str, np.ndarray], n_batch: int,
                 leave_out: str | None = None) -> np.ndarray:
    clique = tree.junction.cliques[c]
    potential = np.ones((1,) * n_batch + tuple(tree.cards[v] for v in clique))
    for name in tree.assigned[c]:
        if name != leave_out:
            table = tables[name] if name in tables else tree.tables[name].reshape((1,) * n_batch
                                                                                + tree.tables[name].shape)
            potential = potential * into_clique(table, tree.family_axes[name], clique, tree.cards, n_batch)
    return potential


def _potential(tree: Tree, c: int, inputs: Sequence[tuple[str, np.ndarray, str]], tables: Mapping[str, np.ndarray],
               n_batch: int, leave_out: str | None = None, products: Sequence[np.ndarray | None] | None = None
               ) -> np.ndarray:
    """Clique ``c``'s potential: its CPTs (per-item ``tables`` replacing some), evidence and factors.

    ``leave_out`` drops one node's CPT and factor (its evidence stays); ``products`` are the
    CPT products of :func:`cpt_products` for these tables, when already computed.
    """
    shape = tuple(tree.cards[v] for v in tree.junction.cliques[c])
    if not any(name in tables for name in tree.assigned[c]):
        static = tree.static[c] if leave_out is None else tree.static_without(c, leave_out)
        potential = static.reshape((1,) * n_batch + shape)
    elif products is not None and leave_out is None:
        potential = products[c]
    else:
        potential = _cpt_product(tree, c, tables, n_batch, leave_out)
    clique = tree.junction.cliques[c]
    for name, values, kind in inputs:
        if kind == "evidence":
            potential = potential * into_clique(values, [tree.index[name]], clique, tree.cards, n_batch)
        elif name != leave_out:
            potential = potential * into_clique(values, tree.family_axes[name], clique, tree.cards, n_batch)
    return potential


def sum_product(tree: Tree, likelihood: Mapping[str, np.ndarray], batch: int | tuple[int, ...], *,
                tables: Mapping[str, np.ndarray] | None = None, factors: Mapping[str, np.ndarray] | None = None,
                distribute: bool | Sequence[str] = True,
                products: Sequence[np.ndarray | None] | None = None) -> Pass:
    """Collect (and, with ``distribute``, distribute) over a batch.

    Parameters
    ----------
    tree : Tree
    likelihood : mapping
        Node -> ``[*batch, n_states]`` evidence likelihood (batch axes may be 1: shared).
    batch : int or tuple of int
        Number of rows, or the batch shape (e.g. rows x parameter draws).
    tables : mapping, optional
        Per-item CPDs ``[*batch, *parent_cards, n_states]`` (axes may be 1) replacing the compiled ones.
    factors : mapping, optional
        Per-item factors ``[*batch, *parent_cards, n_states]`` multiplied into a node's family.
    distribute : bool or sequence of str
        Also send messages from the root back down (needed for marginals and derivatives): to
        every clique, or only towards the cliques holding the families of the nodes named.
    products : list, optional
        :func:`cpt_products` of ``tables``, when the caller computed them once for many batches.
    """
    batch = (batch,) if isinstance(batch, (int, np.integer)) else tuple(batch)
    n_batch = len(batch)
    tables = tables or {}
    factors = factors or {}
    junction = tree.junction
    n_cliques = len(junction.cliques)
    impossible = np.zeros(batch, dtype=bool)
    # each finding is divided by its largest entry (its log kept with its clique), so a potential
    # stays in range however small the likelihoods are, without normalising whole clique tables
    scaled, potential_log = {}, [np.zeros(batch) for _ in range(n_cliques)]
    for name, values in likelihood.items():
        values = np.asarray(values, dtype=float)
        top = values.max(axis=-1)
        impossible |= np.broadcast_to(top <= 0, batch)
        top = np.where(top > 0, top, 1.0)
        scaled[name] = values / top[..., None]
        potential_log[tree.evidence_clique[name]] = potential_log[tree.evidence_clique[name]] + np.log(top)
    inputs = _evidence_by_clique(tree, scaled, factors)
    potentials = [_potential(tree, c, inputs[c], tables, n_batch, products=products) for c in range(n_cliques)]
    upward: list[np.ndarray | None] = [None] * n_cliques
    upward_log: list[np.ndarray] = [np.zeros(batch)] * n_cliques
    partial: dict[int, tuple[np.ndarray, int | None]] = {}   # a clique's belief but for one child's message
    log_pe = sum(potential_log) if potential_log else np.zeros(batch)
    for c in junction.collect_order:
        product = potentials[c]
        for child in junction.children[c]:
            product = product * upward[child]
        parent = junction.tree_parent[c]
        if parent < 0:
            partial[c] = (product, None)
            total = _flat(product, n_batch).sum(axis=-1)
            impossible |= np.broadcast_to(total <= 0, batch)
            log_pe = log_pe + np.log(np.where(total > 0, total, 1.0))
            continue
        upward[c], upward_log[c], zero = _message(product, junction.cliques[c], junction.cliques[parent],
                                                  junction.separators[c], batch, tree.cards)
        impossible |= zero
        log_pe = log_pe + upward_log[c]
    downward: list[np.ndarray | None] = [None] * n_cliques
    downward_log: list[np.ndarray] = [np.zeros(batch)] * n_cliques
    towards = _cliques_towards(tree, distribute)
    for c in reversed(junction.collect_order):
        kids = [child for child in junction.children[c] if child in towards]
        if not kids:
            continue
        base = potentials[c] if downward[c] is None else potentials[c] * downward[c]
        for other in junction.children[c]:
            if other not in towards:
                base = base * upward[other]
        products = _products_leaving_one_out(base, [upward[child] for child in kids])
        partial[c] = (products[0], kids[0])
        for child, product in zip(kids, products):
            downward[child], downward_log[child], _ = _message(product, junction.cliques[c], junction.cliques[child],
                                                               junction.separators[child], batch, tree.cards)
    return Pass(tree=tree, batch=batch, likelihood=likelihood, tables=tables, factors=factors,
                potentials=potentials, potential_log=potential_log, upward=upward, upward_log=upward_log,
                downward=downward, downward_log=downward_log,
                log_evidence_probability=np.where(impossible, -np.inf, np.broadcast_to(log_pe, batch)),
                impossible=impossible, partial=partial)


def _cliques_towards(tree: Tree, distribute: bool | Sequence[str]) -> set[int]:
    """Cliques a distribute pass must reach: all, none, or those holding some nodes' families (and their ancestors)."""
    junction = tree.junction
    if distribute is True:
        return set(range(len(junction.cliques)))
    towards: set[int] = set()
    for name in distribute or ():
        c = tree.clique_of[name]
        while c >= 0 and c not in towards:
            towards.add(c)
            c = junction.tree_parent[c]
    return towards


def marginals(state: Pass, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Posterior marginals ``[*batch, n_states]`` of ``names`` (NaN where the evidence is impossible)."""
    tree = state.tree
    by_clique: dict[int, list[str]] = {}
    for name in names:
        by_clique.setdefault(tree.clique_of[name], []).append(name)
    result = {}
    for c, here in by_clique.items():
        clique = tree.junction.cliques[c]
        read = _read_marginals(state.belief(c), clique, [tree.index[n] for n in here], tree.cards, state.batch)
        for name, marginal in zip(here, read):
            total = marginal.sum(axis=-1, keepdims=True)
            marginal = marginal / np.where(total > 0, total, 1.0)
            marginal[state.impossible] = np.nan
            result[name] = marginal
    return result


def _read_marginals(belief: np.ndarray, clique: tuple[int, ...], nodes: list[int], cards: Sequence[int],
                    batch: tuple[int, ...]) -> list[np.ndarray]:
    """Unnormalised marginals ``[*batch, n_states]`` of ``nodes`` from a clique belief.

    The other nodes of the clique are summed out once for all of them.
    """
    kept = tuple(sorted(nodes))
    reduced = _sum_to(belief, clique, kept, batch, cards)
    if len(nodes) == 1:
        return [reduced.reshape(batch + (cards[nodes[0]],))]
    if _size(kept, cards) * sum(cards[v] for v in nodes) > _WEIGHTS_LIMIT:
        return [_sum_to(reduced, kept, (v,), batch, cards).reshape(batch + (cards[v],)) for v in nodes]
    # one product with a 0/1 indicator reads every node's marginal from the reduced table
    read = _flat(np.broadcast_to(reduced, batch + reduced.shape[len(batch):]), len(batch)) @ _indicator(
        kept, tuple(nodes), tuple(cards[v] for v in kept))
    offsets = np.cumsum([0] + [cards[v] for v in nodes])
    return [read[..., offsets[k]:offsets[k + 1]] for k in range(len(nodes))]


@functools.lru_cache(maxsize=1024)
def _indicator(clique: tuple[int, ...], nodes: tuple[int, ...], clique_cards: tuple[int, ...]) -> np.ndarray:
    """0/1 ``[n_clique_configs, sum of node cards]``: which state each node takes in each configuration."""
    grid = configurations(list(clique_cards))
    cards = dict(zip(clique, clique_cards))
    indicator = np.zeros((grid.shape[1], sum(cards[v] for v in nodes)))
    offset = 0
    for v in nodes:
        indicator[np.arange(grid.shape[1]), offset + grid[clique.index(v)]] = 1.0
        offset += cards[v]
    return indicator


def _family(product: np.ndarray, tree: Tree, c: int, name: str, batch: tuple[int, ...]) -> np.ndarray:
    """Sum a clique table down to ``name``'s family, as ``[*batch, *parent_cards, n_states]``."""
    n_batch = len(batch)
    clique = tree.junction.cliques[c]
    axes_nodes = tree.family_axes[name]
    keep = tuple(sorted(axes_nodes))
    summed = np.broadcast_to(_sum_to(product, clique, keep, batch, tree.cards),
                             batch + tuple(tree.cards[v] for v in keep))
    return np.transpose(summed, list(range(n_batch)) + [keep.index(v) + n_batch for v in axes_nodes])


def families(state: Pass, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Family posteriors ``P(parents, node | e)`` as ``[*batch, *parent_cards, n_states]`` (NaN if impossible)."""
    tree = state.tree
    n_batch = len(state.batch)
    result = {}
    for name in names:
        c = tree.clique_of[name]
        belief = state.belief(c)
        totals = _flat(belief, n_batch).sum(axis=-1)
        family = np.array(_family(belief, tree, c, name, state.batch))
        family /= np.where(totals > 0, totals, 1.0).reshape(totals.shape + (1,) * (family.ndim - n_batch))
        family[state.impossible] = np.nan
        result[name] = family
    return result


def left_out_families(state: Pass, names: Sequence[str], reference: np.ndarray) -> dict[str, np.ndarray]:
    """``∂P/∂(CPT entry) × exp(-reference)`` for every CPT entry of ``names``, ``[*batch, *table shape]``.

    ``P`` is the probability this pass computed (``exp(log_evidence_probability)``), a
    multilinear function of each node's CPT: the derivative is the node's family read from its
    clique with the node's own CPT and per-item factor left out. ``reference`` (per batch item,
    e.g. ``log P(e)``) keeps the result in range; items where ``P`` is 0 still get exact derivatives.
    """
    tree = state.tree
    n_batch = len(state.batch)
    logs = state.clique_logs()
    inputs = _evidence_by_clique(tree, state.likelihood, state.factors)
    by_clique: dict[int, list[str]] = {}
    for name in names:
        by_clique.setdefault(tree.clique_of[name], []).append(name)
    result = {}
    cache: dict[tuple[int, str | None], np.ndarray | None] = {}

    def rest(c: int, name: str, incoming: np.ndarray | None) -> np.ndarray | None:
        """Messages times clique ``c``'s evidence and factors except ``name``'s (shared by nodes without a factor)."""
        owners = {owner for owner, _, kind in inputs[c] if kind == "factor"}
        key = (c, name if name in owners else None)
        if key not in cache:
            product = incoming
            for owner, values, kind in inputs[c]:
                if kind == "evidence" or owner != key[1]:
                    shaped = into_clique(values, [tree.index[owner]] if kind == "evidence" else tree.family_axes[owner],
                                         tree.junction.cliques[c], tree.cards, n_batch)
                    product = shaped if product is None else product * shaped
            cache[key] = product
        return cache[key]

    for c, here in by_clique.items():
        incoming = state.incoming(c)
        scale = np.exp(logs[c] - state.potential_log[c] - reference)
        clique = tree.junction.cliques[c]
        per_row = any(name in state.tables for name in tree.assigned[c])
        for name in here:
            # a small family: one product with a [clique, family] weight matrix; a large one: multiply and sum
            if per_row or tree.tables[name].size * len(tree.static[c].reshape(-1)) > _WEIGHTS_LIMIT:
                product = _potential(tree, c, inputs[c], state.tables, n_batch, leave_out=name)
                if incoming is not None:
                    product = product * incoming
                family = _family(product, tree, c, name, state.batch)
            else:
                # the evidence and the other factors times the messages, then one product with the other CPTs
                product = rest(c, name, incoming)
                shape = state.batch + tuple(tree.cards[v] for v in clique)
                product = np.ones((1,) * n_batch + shape[n_batch:]) if product is None else product
                flat = np.broadcast_to(product, shape).reshape(state.batch + (-1,))
                family = (flat @ tree.family_weights(c, name)).reshape(state.batch + tree.tables[name].shape)
            result[name] = family * scale.reshape(scale.shape + (1,) * (family.ndim - n_batch))
    return result


def max_product(tree: Tree, likelihood: Mapping[str, np.ndarray], over: Sequence[str],
                n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The most probable joint states of ``over`` (the rest summed out) per row, and ``log P(states, e)``.

    ``tree`` must have been built with ``last=over``, so that each message sums out the nodes
    not in ``over`` before it maximises over those in ``over``. The states are traced back from
    the root in ``over`` order; among configurations within :data:`TIE_TOLERANCE` of the best,
    each clique takes the first in the order of ``over`` (states in declared order), which
    gives the first configuration in ``itertools.product`` order.

    Returns
    -------
    states : ndarray of int ``[n_rows, len(over)]``
    log_joint : ndarray ``[n_rows]``
        ``-inf`` where the evidence is impossible.
    """
    junction = tree.junction
    rank = {tree.index[name]: k for k, name in enumerate(over)}
    inputs = _evidence_by_clique(tree, likelihood, {})
    upward: list[np.ndarray | None] = [None] * len(junction.cliques)
    choices: dict[int, tuple[tuple[int, ...], tuple[int, ...], np.ndarray]] = {}
    log_joint = np.zeros(n_rows)
    for c in junction.collect_order:
        product = _potential(tree, c, inputs[c], {}, 1)
        for child in junction.children[c]:
            product = product * upward[child]
        message, choice, log_top = _max_message(tree, c, np.broadcast_to(product, (n_rows,) + product.shape[1:]),
                                                rank)
        if choice is not None:
            choices[c] = choice
        log_joint += log_top
        parent = junction.tree_parent[c]
        if parent < 0:
            log_joint = np.where(message.reshape(n_rows) > 0, log_joint, -np.inf)
        else:
            upward[c] = message.reshape((n_rows,) + tuple(tree.cards[v] if v in junction.separators[c] else 1
                                                          for v in junction.cliques[parent]))
    chosen = _trace_back(tree, choices, n_rows)
    return chosen[:, [tree.index[name] for name in over]], log_joint


def _max_message(tree: Tree, c: int, product: np.ndarray, rank: Mapping[int, int]):
    """Clique ``c``'s max-product message: sum out its eliminated nodes not in ``over``, maximise the others.

    Returns the message (rescaled per row, over the separator), the choice made for each
    separator configuration (``(separator, maxed nodes, [rows, n_separator_configs])``, or
    None when nothing was maximised) and the log of the rescaling.
    """
    junction = tree.junction
    cards = tree.cards
    n_rows = product.shape[0]
    clique, separator = junction.cliques[c], junction.separators[c]
    maxed = tuple(sorted((v for v in junction.eliminated[c] if v in rank), key=rank.__getitem__))
    kept = tuple(v for v in clique if v in separator or v in maxed)
    product = _sum_to(product, clique, kept, (n_rows,), cards)
    choice = None
    if maxed:
        order = [kept.index(v) + 1 for v in separator] + [kept.index(v) + 1 for v in maxed]
        flat = np.transpose(product, [0] + order).reshape(n_rows, _size(separator, cards), -1)
        best = flat.max(axis=2)
        tied = flat >= (best * math.exp(-TIE_TOLERANCE))[:, :, None]
        choice = (separator, maxed, np.argmax(tied, axis=2))
        product = best.reshape((n_rows,) + tuple(cards[v] for v in separator))
    top = product.reshape(n_rows, -1).max(axis=1)
    top = np.where(top > 0, top, 1.0)
    return product / top.reshape((-1,) + (1,) * (product.ndim - 1)), choice, np.log(top)


def _trace_back(tree: Tree, choices: Mapping[int, tuple], n_rows: int) -> np.ndarray:
    """The maximising states of every maximised node, ``[n_rows, n_nodes]``, decided from the root down."""
    cards = tree.cards
    chosen = np.zeros((n_rows, len(cards)), dtype=np.int64)
    rows = np.arange(n_rows)
    for c in reversed(tree.junction.collect_order):
        if c not in choices:
            continue
        separator, maxed, choice = choices[c]
        at = np.ravel_multi_index(tuple(chosen[:, v] for v in separator), tuple(cards[v] for v in separator)) \
            if separator else np.zeros(n_rows, dtype=np.int64)
        states = np.unravel_index(choice[rows, at], tuple(cards[v] for v in maxed))
        for v, values in zip(maxed, states):
            chosen[:, v] = values
    return chosen
