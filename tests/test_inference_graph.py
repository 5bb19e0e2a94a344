"""Compilation at scale: junction trees are valid, deep and wide networks compile, oversized tables are refused.

The oracles are brute force (the running-intersection property checked directly) and closed
forms (a chain's posterior by matrix powers).
"""

import itertools

import numpy as np
import pytest

import bayescramp
from bayescramp import SpecError
from bayescramp.engine import compile_network, cpt_derivatives, most_probable, propagate
from bayescramp.evidence import BatchEvidence
from bayescramp.inference.graph import junction_tree
from bayescramp.spec import (
    MAX_TABLE_ENTRIES,
    Node,
    NoisyOrCPD,
    Parameter,
    Spec,
    TableCPD,
    TableRow,
    find_cycle,
    leak_parameter_id,
    link_parameter_id,
    table_parameter_id,
    topological_order,
)


def _parameter(parameter_id, value):
    return Parameter(parameter_id, value, value, value, basis="structural", source="test")


def _root(name, states, probabilities):
    row = TableRow(when=(), probability={s: _parameter(table_parameter_id(name, s, (), ()), p)
                                         for s, p in zip(states[:-1], probabilities[:-1])} | {states[-1]: None})
    return Node(name, tuple(states), (), TableCPD((row,)))


def _binary_child(name, parent, parent_states, p_no):
    rows = tuple(TableRow(when=(s,), probability={"no": _parameter(table_parameter_id(name, "no", (parent,), (s,)), p),
                                                  "yes": None}) for s, p in zip(parent_states, p_no))
    return Node(name, ("no", "yes"), (parent,), TableCPD(rows))


def _chain(n_nodes, stay=0.999, switch=0.002):
    """v0 -> v1 -> ... with P(v_i = no | v_{i-1} = no) = stay, P(no | yes) = switch."""
    nodes = {"v0": _root("v0", ["no", "yes"], [0.3, 0.7])}
    for i in range(1, n_nodes):
        nodes[f"v{i}"] = _binary_child(f"v{i}", f"v{i - 1}", ["no", "yes"], [stay, switch])
    return Spec(nodes)


def _chain_posterior_of_root(n_nodes, stay=0.999, switch=0.002):
    transition = np.array([[stay, 1 - stay], [switch, 1 - switch]])
    likelihood = np.array([0.0, 1.0])            # the last node observed "yes"
    for _ in range(n_nodes - 1):
        likelihood = transition @ likelihood
    joint = np.array([0.3, 0.7]) * likelihood
    return joint / joint.sum(), joint.sum()


def _check_running_intersection(tree, families):
    cliques = [set(c) for c in tree.cliques]
    # every family inside its clique
    for i, family in enumerate(families):
        assert set(family) <= cliques[tree.family_clique[i]]
    # the cliques holding a node form a connected subtree
    for node in set(itertools.chain.from_iterable(families)):
        holding = {c for c, clique in enumerate(cliques) if node in clique}
        tops = [c for c in holding if tree.tree_parent[c] not in holding]
        assert len(tops) == 1, node
    # separators are the intersections with the parent; eliminated = clique minus separator
    for c, parent in enumerate(tree.tree_parent):
        if parent >= 0:
            assert set(tree.separators[c]) <= cliques[c] & cliques[parent]
        assert set(tree.eliminated[c]) == cliques[c] - set(tree.separators[c])
    assert sorted(itertools.chain.from_iterable(tree.eliminated)) == sorted(set(itertools.chain(*families)))
    assert tree.collect_order[-1] == [c for c, p in enumerate(tree.tree_parent) if p < 0][0]


@pytest.mark.parametrize("seed", range(8))
def test_junction_tree_has_the_running_intersection_property(seed):
    rng = np.random.default_rng(seed)
    n_nodes = 25
    families = []
    for i in range(n_nodes):
        k = int(min(i, rng.integers(0, 4)))
        families.append(tuple(rng.choice(i, k, replace=False)) + (i,) if k else (i,))
    cards = list(rng.integers(2, 4, n_nodes))
    _check_running_intersection(junction_tree(families, cards), families)
    last = list(rng.choice(n_nodes, 5, replace=False))
    constrained = junction_tree(families, cards, last=last)
    _check_running_intersection(constrained, families)
    # with `last` eliminated last, a clique that eliminates one of them eliminates nothing else first:
    # every node eliminated in a clique below the one eliminating `last[-1]`... is not in `last` unless
    # all later-eliminated nodes of its clique's separator are in `last` too
    for c, eliminated in enumerate(constrained.eliminated):
        if any(v in last for v in eliminated):
            assert all(v in last for v in constrained.separators[c])


def test_a_3000_node_chain_compiles_and_answers_exactly():
    n_nodes = 3000
    model = bayescramp.Model(_chain(n_nodes))
    expected, evidence_probability = _chain_posterior_of_root(n_nodes)
    result = model.posterior({f"v{n_nodes - 1}": "yes"}, targets=["v0"])
    np.testing.assert_allclose(result["v0"].to_numpy(), expected, atol=1e-12)
    assert result.evidence_probability == pytest.approx(evidence_probability, rel=1e-10)
    # the general junction tree too (every node a target)
    last_yes = BatchEvidence.from_likelihoods({f"v{n_nodes - 1}": np.array([[0.0, 1.0]])})
    every = propagate(model.network, last_yes)
    np.testing.assert_allclose(every.marginals["v0"][0], expected, atol=1e-12)


def test_a_1100_node_chain_needs_no_recursion():
    n_nodes = 1100
    spec = _chain(n_nodes)
    assert topological_order(spec)[-1] == f"v{n_nodes - 1}"
    assert find_cycle(spec) is None
    model = bayescramp.Model(spec)
    expected, _ = _chain_posterior_of_root(n_nodes)
    np.testing.assert_allclose(model.posterior({f"v{n_nodes - 1}": "yes"})["v0"].to_numpy(), expected, atol=1e-12)
    last_yes = BatchEvidence.from_likelihoods({f"v{n_nodes - 1}": np.array([[0.0, 1.0]])})
    derivatives = cpt_derivatives(model.network, last_yes, ["v1", "v1099"], target=("v0", "yes"))
    # P(e) is linear in each CPT: derivative . table = P(e) (divided by P(e): 1)
    for name in ("v1", "v1099"):
        assert (derivatives.evidence[name][0] * model.network.tables[name]).sum() == pytest.approx(1.0, abs=1e-12)
    best = most_probable(model.network, last_yes, ["v0", "v550"])
    assert best.states.tolist() == [[1, 1]]


def test_a_cycle_through_a_long_chain_is_found():
    nodes = dict(_chain(1500).nodes)
    nodes["v0"] = _binary_child("v0", "v1499", ["no", "yes"], [0.5, 0.5])
    cycle = find_cycle(Spec(nodes))
    assert cycle[0] == cycle[-1] and len(cycle) == 1501
    with pytest.raises(SpecError, match="cycle"):
        bayescramp.Model(Spec(nodes))


def test_topological_order_keeps_the_sweep_order():
    # sweep 1 through the definition order skips c (its parent is not placed yet), places b, then a;
    # sweep 2 places c
    nodes = {"c": _binary_child("c", "b", ["no", "yes"], [0.5, 0.5]), "b": _root("b", ["no", "yes"], [0.5, 0.5]),
             "a": _binary_child("a", "b", ["no", "yes"], [0.5, 0.5])}
    assert topological_order(Spec(nodes)) == ["b", "a", "c"]


def test_a_noisy_or_with_34_parents_is_refused_before_allocating():
    parents = [f"cause_{i}" for i in range(34)]
    nodes = {p: _root(p, ["absent", "present"], [0.9, 0.1]) for p in parents}
    nodes["symptom"] = Node("symptom", ("no", "yes"), tuple(parents), NoisyOrCPD(
        leak=_parameter(leak_parameter_id("symptom"), 0.05),
        links={p: {"present": _parameter(link_parameter_id("symptom", p, "present"), 0.3)} for p in parents}),
        location="big.toml, nodes.symptom")
    with pytest.raises(SpecError) as error:
        bayescramp.Model(Spec(nodes))
    message = str(error.value)
    assert "big.toml, nodes.symptom: its table over 34 parent(s) and 2 states has 34,359,738,368 entries" in message
    assert "256 GiB" in message and f"{MAX_TABLE_ENTRIES:,}" in message


def test_a_junction_tree_clique_too_large_is_refused_naming_its_nodes():
    # every pair of 26 roots shares a child: the moral graph joins them all into one 2^26 clique
    roots = [f"r{i}" for i in range(26)]
    states = {r: ("a", "b") for r in roots}
    parents = {r: () for r in roots}
    tables = {r: np.array([0.5, 0.5]) for r in roots}
    for i, j in itertools.combinations(range(26), 2):
        name = f"c{i}_{j}"
        states[name], parents[name], tables[name] = ("a", "b"), (roots[i], roots[j]), np.full((2, 2, 2), 0.5)
    with pytest.raises(SpecError, match=r"network: the junction tree's clique over r\d+, .* and 18 more has "
                                         r"67,108,864 entries \(512 MiB as float64\); expected at most 33,554,432"):
        compile_network(states, parents, tables)


def test_a_node_with_200000_states_is_linear():
    k = 200_000
    states = {"big": tuple(f"s{i}" for i in range(k)), "child": ("no", "yes")}
    p_yes = np.linspace(0.01, 0.99, k)
    tables = {"big": np.full(k, 1.0 / k), "child": np.stack([1 - p_yes, p_yes], axis=1)}
    network = compile_network(states, {"big": (), "child": ("big",)}, tables)
    child_yes = BatchEvidence.from_likelihoods({"child": np.array([[0.0, 1.0]])})
    result = propagate(network, child_yes)
    np.testing.assert_allclose(result.marginals["big"][0], p_yes / p_yes.sum(), rtol=1e-10)
    best = most_probable(network, child_yes, ["big"])
    assert best.states.tolist() == [[k - 1]]
    derivatives = cpt_derivatives(network, child_yes, ["big"], target=("big", "s7"))
    np.testing.assert_allclose(derivatives.evidence["big"][0], p_yes / p_yes.mean(), rtol=1e-10)
    # and a spec with such a node validates and compiles (its duplicate-state check is linear too)
    spec = Spec({"big": _root("big", list(states["big"]), [1.0 / k] * k)})
    assert bayescramp.Model(spec).posterior({}, targets=["big"])["big"].iloc[0] == pytest.approx(1.0 / k)
