"""Conditioning on hard findings (cut edges, one core per mask) against pgmpy VE and the junction tree."""

import numpy as np
import pytest

import bayescramp
from bayescramp.engine import compile_network, propagate, propagate_codes
from bayescramp.inference.condition import MASK_MIN_ROWS, cut_candidates, plan_masks
from bayescramp.reference import oracle_posterior, read_network

from .conftest import DATA
from .test_engine import as_batch, coded

NETWORKS = ["default", "asia", "alarm", "child"]


def _load(name):
    if name == "default":
        return bayescramp.load_model()
    return bayescramp.Model(read_network(DATA / f"{name}.bif.gz"))


def _candidates(model):
    network = model.network
    return cut_candidates(network.core, network.names, network.parents, network.names)


def masked_evidence(model, rng, n_blocks, *, n_rows=MASK_MIN_ROWS + 8):
    """Blocks of rows that share one random mask of hard findings on the cut candidates.

    Every other node is left blank, observed hard, observed as a set of states or given a soft
    likelihood, at random (so rows of a block still differ). Returns likelihood arrays for every
    node and, per row, the hard findings (node -> state index) for the oracle.
    """
    network = model.network
    candidates = _candidates(model)
    arrays = {name: np.ones((n_blocks * n_rows, len(network.states[name]))) for name in network.names}
    hard_rows = [dict() for _ in range(n_blocks * n_rows)]
    for block in range(n_blocks):
        mask = []
        while not 0 < len(mask) < len(candidates):   # a proper subset: cutting every node may leave no core
            mask = [name for name in candidates if rng.random() < 0.6]
        for r in range(block * n_rows, (block + 1) * n_rows):
            for name in network.names:
                k = len(network.states[name])
                if name in mask:
                    state = int(rng.integers(k))
                    arrays[name][r] = np.eye(k)[state] * rng.uniform(0.2, 1.0)   # one positive entry
                    hard_rows[r][name] = state
                elif name not in candidates and rng.random() < 0.3:
                    kind = rng.random()
                    if kind < 0.5:
                        state = int(rng.integers(k))
                        arrays[name][r] = np.eye(k)[state]
                        hard_rows[r][name] = state
                    else:
                        arrays[name][r] = rng.uniform(0.05, 1.0, k)   # soft
                elif name in candidates and rng.random() < 0.2:
                    arrays[name][r] = rng.uniform(0.05, 1.0, k)   # soft evidence on a candidate: not cut
    return arrays, hard_rows


def _uses_conditioned_cores(model, arrays, targets):
    network = model.network
    n_rows = len(next(iter(arrays.values())))
    plans = plan_masks(network.variants, network.core, network.names, network.states, network.parents,
                       network.tables, arrays, targets, n_rows)
    return any(plan.conditioned.hard for plan in plans)


@pytest.mark.parametrize("name", NETWORKS)
def test_conditioned_cores_match_pgmpy(name, rng):
    model = _load(name)
    network = model.network
    arrays, hard_rows = masked_evidence(model, rng, 4)
    targets = list(network.core.nodes)
    assert _uses_conditioned_cores(model, arrays, targets)
    result = propagate(network, as_batch(arrays), targets=targets)
    pgmpy_model = model.to_pgmpy()
    n_rows = len(hard_rows)
    n_compared = 0
    for r in rng.choice(n_rows, 12, replace=False):
        evidence = {node: arrays[node][r] for node in network.names if not np.all(arrays[node][r] == 1.0)}
        if result.impossible[r]:
            continue
        oracle_evidence = {node: (network.states[node][hard_rows[r][node]]
                                  if node in hard_rows[r] and np.count_nonzero(value) == 1 and value.max() == 1.0
                                  else value) for node, value in evidence.items()}
        wanted = [t for t in targets if not isinstance(oracle_evidence.get(t), str)][:6]
        expected = oracle_posterior(pgmpy_model, oracle_evidence, wanted)
        for node in wanted:
            np.testing.assert_allclose(result.marginals[node][r], expected[node], atol=1e-9, rtol=0,
                                       err_msg=f"{name}: row {r} node {node}")
        for node, state in hard_rows[r].items():
            if node in targets:
                np.testing.assert_array_equal(result.marginals[node][r], np.eye(len(network.states[node]))[state])
        n_compared += 1
    assert n_compared >= 6


@pytest.mark.parametrize("name", NETWORKS)
def test_conditioned_cores_equal_the_junction_tree_on_every_row(name, rng):
    model = _load(name)
    network = model.network
    arrays, _ = masked_evidence(model, rng, 6)
    targets = list(network.core.nodes)
    tree_only = compile_network(network.states, network.parents, network.tables, enumerate_core=False)
    fast = propagate(network, as_batch(arrays), targets=targets)
    slow = propagate(tree_only, as_batch(arrays), targets=targets)
    np.testing.assert_array_equal(fast.impossible, slow.impossible)
    np.testing.assert_allclose(fast.log_evidence_probability, slow.log_evidence_probability, atol=1e-9, rtol=1e-12)
    for node in targets:
        np.testing.assert_allclose(fast.marginals[node], slow.marginals[node], atol=1e-12, rtol=0)


def test_impossible_hard_findings_on_cut_nodes_are_flagged(rng):
    # a random network with zero CPT entries: hard parents make some children's findings impossible
    model = _load("default")
    network = model.network
    tables = {name: table.copy() for name, table in network.tables.items()}
    # magnesium deficiency impossible for loop-diuretic users, whatever else
    loop = network.states["diuretic"].index("loop")
    axis = network.parents["magnesium_deficiency"].index("diuretic")
    index = [slice(None)] * tables["magnesium_deficiency"].ndim
    index[axis] = loop
    tables["magnesium_deficiency"][tuple(index)] = [0.0, 1.0]
    zeroed = compile_network(network.states, network.parents, tables)
    tree_only = compile_network(network.states, network.parents, tables, enumerate_core=False)
    arrays, _ = masked_evidence(model, rng, 3)
    n_rows = len(arrays["diuretic"])
    arrays["diuretic"][:] = np.eye(5)[loop]
    arrays["magnesium_deficiency"][: n_rows // 2] = [1.0, 0.0]   # absent: impossible on these rows
    targets = list(network.core.nodes)
    fast = propagate(zeroed, as_batch(arrays), targets=targets)
    slow = propagate(tree_only, as_batch(arrays), targets=targets)
    assert fast.impossible[: n_rows // 2].all()
    np.testing.assert_array_equal(fast.impossible, slow.impossible)
    assert np.isneginf(fast.log_evidence_probability[fast.impossible]).all()
    for node in targets:
        assert np.isnan(fast.marginals[node][fast.impossible]).all()
        np.testing.assert_allclose(fast.marginals[node], slow.marginals[node], atol=1e-12, rtol=0)


def test_per_row_tables_on_conditioned_cores_equal_the_junction_tree(rng):
    from bayescramp.uncertainty import draw_tables

    model = _load("default")
    network = model.network
    arrays, _ = masked_evidence(model, rng, 3)
    n_rows = len(arrays["diuretic"])
    tables = draw_tables(model.spec, network, n_rows, rng)
    targets = list(model.default_targets)
    assert _uses_conditioned_cores(model, arrays, targets)
    fast = propagate(network, as_batch(arrays), targets=targets, tables=tables)
    slow = propagate(network, as_batch(arrays), tables=tables, families=["diuretic"])   # families: the junction tree
    np.testing.assert_allclose(fast.log_evidence_probability, slow.log_evidence_probability, atol=1e-9, rtol=1e-12)
    for node in targets:
        np.testing.assert_allclose(fast.marginals[node], slow.marginals[node], atol=1e-12, rtol=0)


def test_propagate_codes_grouped_by_mask_keeps_input_order(rng):
    model = _load("default")
    network = model.network
    nodes = [n for n in network.names if n != "general_symptom_burden"]
    alphabets = [np.vstack([np.eye(len(network.states[n])), np.ones(len(network.states[n]))]) for n in nodes]
    codes = np.column_stack([rng.integers(len(a), size=600) for a in alphabets])
    by_codes = propagate_codes(network, coded(nodes, codes, alphabets), targets=model.default_targets, chunk_size=100)
    direct = propagate(network, as_batch({n: alphabets[j][codes[:, j]] for j, n in enumerate(nodes)}),
                       targets=model.default_targets)
    np.testing.assert_array_equal(by_codes.impossible, direct.impossible)
    np.testing.assert_allclose(by_codes.log_evidence_probability, direct.log_evidence_probability, atol=1e-12)
    for node in model.default_targets:
        np.testing.assert_allclose(by_codes.marginals[node], direct.marginals[node], atol=1e-12)
