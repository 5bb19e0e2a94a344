"""The batched junction-tree engine against pgmpy VariableElimination, brute force and invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayescramp
from bayescramp.engine import compile_network, cpt_derivatives, propagate, propagate_codes, propagate_draws
from bayescramp.evidence import Alphabet, BatchEvidence
from bayescramp.reference import oracle_posterior, read_network

from .conftest import DATA

OVERLAYS = [(), ("older_adults",), ("seed_claims",), ("older_adults", "seed_claims")]


def as_batch(likelihood, n_rows=None):
    """Likelihood arrays as the engine's evidence."""
    return BatchEvidence.from_likelihoods(likelihood, n_rows=n_rows)


def coded(nodes, codes, alphabets):
    """Rows of codes into per-node alphabets (arrays ``[n_codes, n_states]``) as the engine's evidence."""
    codes = np.asarray(codes)
    return BatchEvidence(n_rows=codes.shape[0], nodes=tuple(nodes), codes=codes,
                         alphabets=tuple(Alphabet(vectors=np.asarray(a, dtype=float), labels=()) for a in alphabets))


def random_evidence(model, rng, n_rows, *, p_observed=0.5):
    """Random hard, set and soft findings on random subsets of nodes; None = blank."""
    rows = []
    for _ in range(n_rows):
        row = {}
        for node in model.nodes:
            if rng.random() > p_observed:
                continue
            states = list(model.states(node))
            kind = rng.random()
            if kind < 0.6:
                row[node] = states[rng.integers(len(states))]
            elif kind < 0.8 and len(states) > 2:
                k = rng.integers(2, len(states))
                row[node] = [states[i] for i in rng.choice(len(states), k, replace=False)]
            else:
                row[node] = dict(zip(states, rng.uniform(0.05, 1.0, len(states))))
        rows.append(row)
    return rows


def likelihood_arrays(model, rows):
    from bayescramp.evidence import finding_likelihood

    arrays = {node: np.ones((len(rows), len(model.states(node)))) for node in model.nodes}
    for r, row in enumerate(rows):
        for node, value in row.items():
            arrays[node][r] = finding_likelihood(node, list(model.states(node)), value)
    return arrays


def as_oracle_evidence(model, row):
    from bayescramp.evidence import finding_likelihood

    return {node: value if isinstance(value, str) else finding_likelihood(node, list(model.states(node)), value)
            for node, value in row.items()}


def assert_matches_pgmpy(model, rows, *, atol=1e-9, n_targets=None, rng=None):
    """Compare every row with pgmpy (all unobserved nodes, or ``n_targets`` random ones per row)."""
    pgmpy_model = model.to_pgmpy()
    arrays = likelihood_arrays(model, rows)
    # every node through the junction tree; the default targets through the enumerated core
    # when the network has one (both paths are checked against the oracle)
    result = propagate(model.network, as_batch(arrays))
    by_targets = propagate(model.network, as_batch(arrays), targets=model.default_targets)
    assert (by_targets.impossible == result.impossible).all()
    n_compared = 0
    for r, row in enumerate(rows):
        if result.impossible[r]:
            continue
        targets = [n for n in model.nodes if not isinstance(row.get(n), str)]
        if n_targets is not None and len(targets) > n_targets:
            targets = list(rng.choice(targets, n_targets, replace=False))
        unobserved_targets = [n for n in model.default_targets if not isinstance(row.get(n), str)]
        expected = oracle_posterior(pgmpy_model, as_oracle_evidence(model, row),
                                    list(dict.fromkeys(targets + unobserved_targets)))
        for node in model.default_targets:
            if isinstance(row.get(node), str):
                expected[node] = (np.array(model.states(node)) == row[node]).astype(float)
        for node in targets:
            np.testing.assert_allclose(result.marginals[node][r], expected[node], atol=atol, rtol=0,
                                       err_msg=f"row {r} node {node} evidence {row}")
        for node in model.default_targets:
            np.testing.assert_allclose(by_targets.marginals[node][r], expected[node], atol=atol, rtol=0,
                                       err_msg=f"row {r} node {node} (default targets) evidence {row}")
        n_compared += 1
    return n_compared


@pytest.mark.slow   # hundreds of rows, each a pgmpy query
@pytest.mark.parametrize("overlays", OVERLAYS, ids=lambda o: "+".join(("default",) + o))
def test_batch_posterior_matches_pgmpy(overlays, rng):
    model = bayescramp.load_model("default", *overlays)
    n_rows = 500
    n_compared = assert_matches_pgmpy(model, random_evidence(model, rng, n_rows, p_observed=0.35))
    assert n_compared > 0.5 * n_rows


@pytest.mark.slow   # hundreds of rows, each a pgmpy query
@pytest.mark.parametrize("network", ["asia", "alarm", "child", "sachs"])
def test_batch_posterior_matches_pgmpy_on_standard_networks(network, rng):
    model = bayescramp.Model(read_network(DATA / f"{network}.bif.gz"))
    n_rows = 200
    n_compared = assert_matches_pgmpy(model, random_evidence(model, rng, n_rows, p_observed=0.25),
                                      n_targets=4, rng=rng)
    assert n_compared > 0.3 * n_rows


def test_single_posterior_matches_pgmpy(default_model):
    evidence = {"leg_cramps": "yes", "diuretic": "thiazide"}
    result = default_model.posterior(evidence)
    expected = oracle_posterior(default_model.to_pgmpy(), evidence, list(result))
    for node in result:
        np.testing.assert_allclose(result[node].to_numpy(), expected[node], atol=1e-12)


def test_tiny_network_matches_hand_solution(tiny_model):
    result = tiny_model.posterior({"symptom": "yes"})
    assert result.evidence_probability == pytest.approx(0.1855, abs=1e-12)
    assert result["x_deficiency"]["present"] == pytest.approx(0.1045 / 0.1855, abs=1e-12)
    assert result["medication"]["drug"] == pytest.approx(0.084 / 0.1855, abs=1e-12)


def _random_network(rng, n_nodes):
    names = [f"v{i}" for i in range(n_nodes)]
    states = {n: tuple(f"s{k}" for k in range(rng.integers(2, 4))) for n in names}
    parents = {}
    for i, name in enumerate(names):
        k = int(min(i, rng.integers(0, 4)))
        parents[name] = tuple(rng.choice(names[:i], k, replace=False)) if k else ()
    tables = {}
    for name in names:
        table = rng.random([len(states[p]) for p in parents[name]] + [len(states[name])])
        tables[name] = table / table.sum(axis=-1, keepdims=True)
    return names, states, parents, tables


def _brute_force(names, states, parents, tables, likelihood, r):
    joint = np.ones([len(states[n]) for n in names])
    axes = list(range(len(names)))
    for i, name in enumerate(names):
        joint = np.einsum(joint, axes, tables[name], [names.index(p) for p in parents[name]] + [i], axes)
    for name, values in likelihood.items():
        shape = [1] * len(names)
        shape[names.index(name)] = len(states[name])
        joint = joint * values[r].reshape(shape)
    return joint


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_match_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    names, states, parents, tables = _random_network(rng, 9)
    network = compile_network(states, parents, tables)
    likelihood = {n: rng.random((20, len(states[n]))) for n in names[::2]}
    result = propagate(network, as_batch(likelihood))
    for r in range(20):
        joint = _brute_force(names, states, parents, tables, likelihood, r)
        assert result.log_evidence_probability[r] == pytest.approx(np.log(joint.sum()), abs=1e-10)
        for i, name in enumerate(names):
            marginal = joint.sum(axis=tuple(k for k in range(len(names)) if k != i)) / joint.sum()
            np.testing.assert_allclose(result.marginals[name][r], marginal, atol=1e-12)


def test_family_posteriors_match_brute_force():
    rng = np.random.default_rng(7)
    names, states, parents, tables = _random_network(rng, 8)
    network = compile_network(states, parents, tables)
    likelihood = {n: rng.random((5, len(states[n]))) for n in names[1::2]}
    result = propagate(network, as_batch(likelihood), families=names)
    for r in range(5):
        joint = _brute_force(names, states, parents, tables, likelihood, r)
        joint = joint / joint.sum()
        for i, name in enumerate(names):
            family = [names.index(p) for p in parents[name]] + [i]
            expected = joint.sum(axis=tuple(k for k in range(len(names)) if k not in family))
            # brute force keeps sorted axis order; the engine returns [*parents, node]
            order = sorted(family)
            expected = np.transpose(expected, [order.index(v) for v in family])
            np.testing.assert_allclose(result.families[name][r], expected, atol=1e-12)


def test_impossible_rows_are_flagged_and_neighbours_scored(default_model):
    likelihood = {
        "leg_cramps": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        "cramp_timing": np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),
    }
    result = propagate(default_model.network, as_batch(likelihood))
    assert result.impossible.tolist() == [True, False, False]
    assert result.log_evidence_probability[0] == -np.inf
    assert np.isnan(result.marginals["magnesium_deficiency"][0]).all()
    alone = default_model.posterior({"leg_cramps": "yes", "cramp_timing": "night"})
    np.testing.assert_allclose(result.marginals["magnesium_deficiency"][1],
                               alone["magnesium_deficiency"].to_numpy(), atol=1e-12)
    prior = default_model.marginals()["magnesium_deficiency"].to_numpy()
    np.testing.assert_allclose(result.marginals["magnesium_deficiency"][2], prior, atol=1e-12)


def test_impossible_evidence_raises_naming_the_findings(default_model):
    with pytest.raises(bayescramp.EvidenceError, match=r"leg_cramps='no'.*cramp_timing='night'.*probability zero"):
        default_model.posterior({"leg_cramps": "no", "cramp_timing": "night"})


def test_tiny_evidence_probability_keeps_posteriors_exact(default_model, rng):
    """Scaling every finding's likelihood by 1e-40 drives P(e) far below 1e-300 but changes no posterior."""
    rows = random_evidence(default_model, rng, 50, p_observed=1.0)
    arrays = likelihood_arrays(default_model, rows)
    observed = {n: a for n, a in arrays.items()}
    small = {n: a * 1e-40 for n, a in observed.items()}
    reference = propagate(default_model.network, as_batch(observed))
    scaled = propagate(default_model.network, as_batch(small))
    ok = ~reference.impossible
    assert ok.any()
    assert (scaled.log_evidence_probability[ok] < np.log(1e-300)).all()
    np.testing.assert_allclose(scaled.log_evidence_probability[ok],
                               reference.log_evidence_probability[ok] + len(observed) * np.log(1e-40), rtol=1e-12)
    for node in default_model.nodes:
        np.testing.assert_allclose(scaled.marginals[node][ok], reference.marginals[node][ok], atol=1e-12)


def test_propagate_codes_scores_each_pattern_like_propagate(default_model, rng):
    nodes = ["leg_cramps", "diuretic", "fatigue"]
    alphabets = [np.vstack([np.eye(len(default_model.states(n))), np.ones((1, len(default_model.states(n))))])
                 for n in nodes]
    codes = np.column_stack([rng.integers(0, len(a), 500) for a in alphabets])
    by_codes = propagate_codes(default_model.network, coded(nodes, codes, alphabets), chunk_size=7)
    direct = propagate(default_model.network,
                       as_batch({n: a[codes[:, j]] for j, (n, a) in enumerate(zip(nodes, alphabets))}))
    for node in default_model.nodes:
        np.testing.assert_allclose(by_codes.marginals[node], direct.marginals[node], atol=1e-12)
    np.testing.assert_allclose(by_codes.log_evidence_probability, direct.log_evidence_probability, atol=1e-12)


def test_per_row_tables_override_the_compiled_cpds(tiny_model):
    table = tiny_model.network.tables["medication"]
    other = np.array([0.5, 0.5])
    tables = {"medication": np.stack([table, other])}
    likelihood = {"symptom": np.array([[0.0, 1.0], [0.0, 1.0]])}
    result = propagate(tiny_model.network, as_batch(likelihood), tables=tables)
    assert result.marginals["medication"][0][1] == pytest.approx(0.084 / 0.1855, abs=1e-12)
    # with P(drug) = 0.5: P(yes | none) = 0.1 * 0.55 + 0.9 * 0.1 = 0.145, so
    # P(drug | yes) = 0.5 * 0.28 / (0.5 * 0.28 + 0.5 * 0.145)
    assert result.marginals["medication"][1][1] == pytest.approx(0.14 / (0.14 + 0.0725), abs=1e-12)


def test_disconnected_networks_work():
    states = {"a": ("x", "y"), "b": ("x", "y")}
    parents = {"a": (), "b": ()}
    tables = {"a": np.array([0.2, 0.8]), "b": np.array([0.6, 0.4])}
    network = compile_network(states, parents, tables)
    result = propagate(network, as_batch({"a": np.array([[1.0, 0.0]]), "b": np.array([[0.0, 1.0]])}))
    assert result.log_evidence_probability[0] == pytest.approx(np.log(0.2 * 0.4))


# --- properties ------------------------------------------------------------------------------------

_DEFAULT = bayescramp.load_model()
_OBSERVABLE = _DEFAULT.evidence_nodes


@st.composite
def coded_cohorts(draw):
    n_rows = draw(st.integers(1, 40))
    nodes = draw(st.lists(st.sampled_from(_OBSERVABLE), min_size=1, max_size=6, unique=True))
    codes = np.column_stack([
        draw(st.lists(st.integers(0, len(_DEFAULT.states(n))), min_size=n_rows, max_size=n_rows)) for n in nodes])
    return nodes, codes


def _alphabets(nodes):
    return [np.vstack([np.eye(len(_DEFAULT.states(n))), np.ones((1, len(_DEFAULT.states(n))))]) for n in nodes]


@settings(max_examples=40, deadline=None)
@given(coded_cohorts())
def test_posteriors_sum_to_one_and_rows_are_preserved(cohort):
    nodes, codes = cohort
    result = propagate_codes(_DEFAULT.network, coded(nodes, codes, _alphabets(nodes)))
    assert result.log_evidence_probability.shape == (codes.shape[0],)
    ok = ~result.impossible
    for node in _DEFAULT.nodes:
        assert result.marginals[node].shape[0] == codes.shape[0]
        np.testing.assert_allclose(result.marginals[node][ok].sum(axis=1), 1.0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(coded_cohorts(), st.randoms(use_true_random=False))
def test_shuffling_rows_shuffles_the_output(cohort, random):
    nodes, codes = cohort
    order = list(range(codes.shape[0]))
    random.shuffle(order)
    result = propagate_codes(_DEFAULT.network, coded(nodes, codes, _alphabets(nodes)))
    shuffled = propagate_codes(_DEFAULT.network, coded(nodes, codes[order], _alphabets(nodes)))
    for node in _DEFAULT.default_targets:
        np.testing.assert_allclose(shuffled.marginals[node], result.marginals[node][order], atol=1e-13)


@settings(max_examples=25, deadline=None)
@given(coded_cohorts())
def test_batch_equals_row_by_row(cohort):
    nodes, codes = cohort
    alphabets = _alphabets(nodes)
    batch = propagate_codes(_DEFAULT.network, coded(nodes, codes, alphabets))
    for r in range(codes.shape[0]):
        row = {n: a[codes[r:r + 1, j]] for j, (n, a) in enumerate(zip(nodes, alphabets))}
        single = propagate(_DEFAULT.network, as_batch(row))
        for node in _DEFAULT.default_targets:
            np.testing.assert_allclose(batch.marginals[node][r], single.marginals[node][0], atol=1e-12)


def test_all_blank_rows_give_the_prior_marginals():
    nodes = list(_OBSERVABLE)
    alphabets = _alphabets(nodes)
    codes = np.array([[len(_DEFAULT.states(n)) for n in nodes]] * 3)
    result = propagate_codes(_DEFAULT.network, coded(nodes, codes, alphabets))
    prior = _DEFAULT.marginals()
    for node in _DEFAULT.nodes:
        np.testing.assert_allclose(result.marginals[node], np.tile(prior[node].to_numpy(), (3, 1)), atol=1e-12)
    np.testing.assert_allclose(result.log_evidence_probability, 0.0, atol=1e-12)


def test_marginals_match_enumeration_of_the_tiny_network(tiny_model):
    prior = tiny_model.marginals()
    assert prior["x_deficiency"]["present"] == pytest.approx(0.19)
    assert prior["symptom"]["yes"] == pytest.approx(0.1855)
    total = sum(prior["medication"][s] for s in tiny_model.states("medication"))
    assert total == pytest.approx(1.0)


def test_propagate_codes_with_too_many_columns_for_one_integer_key(rng):
    model = bayescramp.load_model(DATA / "alarm.bif.gz")
    nodes = model.nodes
    alphabets = [np.vstack([np.eye(len(model.states(n))), np.ones((1, len(model.states(n))))]) for n in nodes]
    # mostly blank so most rows are possible; rows repeat so deduplication matters
    base = np.column_stack([np.where(rng.random(40) < 0.9, len(a) - 1, rng.integers(0, len(a) - 1, 40))
                            for a in alphabets])
    codes = base[rng.integers(0, 40, 300)]
    assert np.prod([float(len(a)) for a in alphabets]) > 2.0 ** 62
    by_codes = propagate_codes(model.network, coded(nodes, codes, alphabets))
    direct = propagate(model.network, as_batch({n: a[codes[:, j]] for j, (n, a) in enumerate(zip(nodes, alphabets))}))
    np.testing.assert_array_equal(by_codes.impossible, direct.impossible)
    for node in nodes:
        np.testing.assert_allclose(by_codes.marginals[node], direct.marginals[node], atol=1e-12)


@pytest.mark.parametrize("observed", [["potassium_deficiency"], ["fatigue", "diuretic"], ["pale_skin"],
                                      ["cramp_timing"], ["magnesium_deficiency", "seizures"], []])
def test_core_path_equals_junction_tree_for_sparse_evidence(default_model, rng, observed):
    likelihood = {n: rng.random((7, len(default_model.states(n)))) for n in observed}
    core = propagate(default_model.network, as_batch(likelihood, n_rows=7), targets=default_model.default_targets)
    tree = propagate(default_model.network, as_batch(likelihood, n_rows=7))
    for node in default_model.default_targets:
        np.testing.assert_allclose(core.marginals[node], tree.marginals[node], atol=1e-12)
    np.testing.assert_allclose(core.log_evidence_probability, tree.log_evidence_probability, atol=1e-12)


def test_no_targets_still_gives_evidence_probability(default_model):
    result = propagate(default_model.network, as_batch({"leg_cramps": np.array([[0.0, 1.0]])}), targets=[])
    assert result.marginals == {}
    assert np.exp(result.log_evidence_probability[0]) == pytest.approx(default_model.marginals()["leg_cramps"]["yes"])


@pytest.mark.parametrize("observed", [["leg_cramps", "cramp_timing", "fatigue", "diuretic"], ["cramp_timing"],
                                      ["potassium_deficiency", "pale_skin"], []])
def test_per_row_tables_give_the_same_answer_on_both_paths(default_model, observed):
    from bayescramp.uncertainty import draw_tables

    n_rows = 60
    rng = np.random.default_rng(11)
    tables = draw_tables(default_model.spec, default_model.network, n_rows, rng)
    likelihood = {n: rng.random((n_rows, len(default_model.states(n)))) for n in observed}
    core = propagate(default_model.network, as_batch(likelihood, n_rows=n_rows), targets=default_model.default_targets,
                     tables=tables)
    tree = propagate(default_model.network, as_batch(likelihood, n_rows=n_rows), tables=tables, families=["diuretic"])
    for node in default_model.default_targets:
        np.testing.assert_allclose(core.marginals[node], tree.marginals[node], atol=1e-12)
    np.testing.assert_allclose(core.log_evidence_probability, tree.log_evidence_probability, atol=1e-12)
    # and row r equals the model with draw r's tables, solved on its own
    r = 17
    alone = compile_network(default_model.network.states, default_model.network.parents,
                            {n: t[r] for n, t in tables.items()})
    single = propagate(alone, as_batch({n: v[r:r + 1] for n, v in likelihood.items()}, n_rows=1))
    for node in default_model.default_targets:
        np.testing.assert_allclose(core.marginals[node][r], single.marginals[node][0], atol=1e-12)


# --- the v2-shaped network: both paths against pgmpy -------------------------------------------------


def test_strata_like_network_matches_pgmpy_on_both_paths(rng):
    # the core's whole joint is 122,880 configurations: the core path runs a junction tree of the core
    model = bayescramp.load_model(DATA / "strata_like.toml")
    assert model.network.core is not None
    n_rows = 60
    n_compared = assert_matches_pgmpy(model, random_evidence(model, rng, n_rows, p_observed=0.3), n_targets=3,
                                      rng=rng)
    assert n_compared > 0.5 * n_rows


def test_evidence_refuses_row_counts_that_differ(default_model):
    # checked once, where the evidence is built: the message names the node and both counts
    with pytest.raises(bayescramp.InputError, match="evidence: likelihood of node 'fatigue' has 3 rows; expected 2 "
                                                    "rows, as the likelihood of node 'leg_cramps' has"):
        as_batch({"leg_cramps": np.ones((2, 2)), "fatigue": np.ones((3, 2))})
    with pytest.raises(bayescramp.InputError, match="node 'leg_cramps' has 2 rows; expected 5 rows, as n_rows is"):
        as_batch({"leg_cramps": np.ones((2, 2))}, n_rows=5)
    with pytest.raises(bayescramp.InputError, match=r"row counts differ \(.*tables\['diuretic'\] has 3"):
        table = default_model.network.tables["diuretic"]
        propagate(default_model.network, as_batch({"leg_cramps": np.ones((2, 2))}),
                  tables={"diuretic": np.broadcast_to(table, (3, *table.shape))})
    with pytest.raises(bayescramp.InputError, match="targets: unknown node 'zinc'"):
        propagate(default_model.network, as_batch({}, n_rows=1), targets=["zinc"])


def test_engine_refuses_a_likelihood_with_the_wrong_number_of_states(default_model):
    n_states = len(default_model.states("diuretic"))
    wrong = {"diuretic": np.ones((1, n_states - 1))}
    message = rf"likelihood\['diuretic'\]: got an array of shape \(1, {n_states - 1}\); expected \[n_rows, {n_states}\]"
    with pytest.raises(bayescramp.InputError, match=message):
        propagate(default_model.network, as_batch(wrong))
    with pytest.raises(bayescramp.InputError, match=message):
        cpt_derivatives(default_model.network, as_batch(wrong), ["diuretic"])
    shape = default_model.network.tables["diuretic"].shape
    with pytest.raises(bayescramp.InputError, match=r"tables\['diuretic'\]: got an array of shape \(2, 4\); "
                                                    rf"expected \[n_draws, {shape[0]}, {shape[1]}\]"):
        propagate_draws(default_model.network, as_batch({}, n_rows=1), {"diuretic": np.ones((2, 4)) / 4},
                        targets=["diuretic"])


# --- derivatives of P(e) and P(y, e) with respect to every CPT entry ---------------------------------

NETWORKS = ["default", "strata_like", "asia", "alarm", "child"]


def _load(name):
    if name == "default":
        return bayescramp.load_model()
    if name == "strata_like":
        return bayescramp.load_model(DATA / "strata_like.toml")
    return bayescramp.Model(read_network(DATA / f"{name}.bif.gz"))


def _evidence_probability_by_pgmpy(pgmpy_model, evidence):
    """P(e) for hard evidence by the chain rule over pgmpy VariableElimination posteriors."""
    probability, given = 1.0, {}
    for node, state in evidence.items():
        posterior = oracle_posterior(pgmpy_model, given, [node])[node]
        states = list(pgmpy_model.get_cpds(node).state_names[node])
        probability *= posterior[states.index(state)]
        given[node] = state
    return probability


@pytest.mark.parametrize("name", NETWORKS)
def test_cpt_derivatives_match_pgmpy_with_the_parameter_moved(name, rng):
    model = _load(name)
    row = model.simulate(1, rng=rng).iloc[0]
    evidence = {node: row[node] for node in list(row.index)[:4]}
    target_node = next(n for n in model.default_targets if n not in evidence)
    target = (target_node, model.states(target_node)[1])
    likelihood = {n: (np.array(model.states(n)) == s).astype(float)[None] for n, s in evidence.items()}
    nodes = list(rng.choice(model.nodes, 3, replace=False)) + [target_node]
    derivatives = cpt_derivatives(model.network, as_batch(likelihood), nodes, target=target)
    pgmpy_model = model.to_pgmpy()
    p_e = _evidence_probability_by_pgmpy(pgmpy_model, evidence)
    assert np.exp(derivatives.log_evidence_probability[0]) == pytest.approx(p_e, rel=1e-9)
    for node in nodes:
        table = model.network.tables[node]
        column = tuple(int(rng.integers(c)) for c in table.shape[:-1])
        a, b = np.argsort(table[column])[::-1][:2]       # move mass from the largest entry to the next
        delta = 0.5 * table[column + (a,)]
        changed = model.to_pgmpy()
        cpd = changed.get_cpds(node)
        values = cpd.values.copy()                       # [n_states, *parent_cards]
        values[(a,) + column] -= delta
        values[(b,) + column] += delta
        cpd.values = values
        expected_e = _evidence_probability_by_pgmpy(changed, evidence)
        expected_ye = expected_e * oracle_posterior(changed, evidence, [target[0]])[target[0]][1]
        g = derivatives.evidence[node][0]
        g_y = derivatives.joint[node][0]
        got_e = p_e * (1 + delta * (g[column + (b,)] - g[column + (a,)]))
        got_ye = p_e * (derivatives.posterior[0] + delta * (g_y[column + (b,)] - g_y[column + (a,)]))
        assert got_e == pytest.approx(expected_e, rel=1e-9, abs=1e-15), node
        assert got_ye == pytest.approx(expected_ye, rel=1e-9, abs=1e-15), node


def _random_network_with_zeros(rng, n_nodes):
    names, states, parents, tables = _random_network(rng, n_nodes)
    for name in names[::3]:
        table = tables[name]
        table[rng.random(table.shape) < 0.25] = 0.0
        table[..., 0] += (table.sum(axis=-1) == 0)     # keep every row a distribution
        tables[name] = table / table.sum(axis=-1, keepdims=True)
    return names, states, parents, tables


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("core", [True, False], ids=["core_path", "junction_tree"])
def test_cpt_derivatives_equal_finite_differences_even_at_zero_entries(seed, core):
    rng = np.random.default_rng(seed)
    names, states, parents, tables = _random_network_with_zeros(rng, 9)
    # a root state of probability 0, observed on two rows: impossible evidence that a change
    # of the root's table makes possible (a stratum left out of a population)
    root = names[0]
    assert not parents[root]
    tables[root] = np.concatenate([[0.0], tables[root][1:] + tables[root][0] / (len(tables[root]) - 1)])
    network = compile_network(states, parents, tables, enumerate_core=core)
    likelihood = {n: rng.random((6, len(states[n]))) * (rng.random((6, 1)) < 0.8) for n in names[1::2]}
    alive = np.flatnonzero(np.all([values.any(axis=1) for values in likelihood.values()], axis=0))
    likelihood[root] = np.ones((6, len(states[root])))
    likelihood[root][alive[:2], 1:] = 0.0
    target = (names[2], states[names[2]][0])
    derivatives = cpt_derivatives(network, as_batch(likelihood), names, target=target)
    base = propagate(network, as_batch(likelihood), targets=[target[0]])
    p_e = np.exp(base.log_evidence_probability)
    assert np.array_equal(derivatives.impossible, base.impossible)
    ok = ~base.impossible
    assert ok.any() and not ok.all()
    # divided by P(e), but absolute where P(e) = 0 (a changed entry can make such evidence possible)
    scale = np.where(ok, p_e, 1.0)
    for name in names:
        for cell in np.ndindex(tables[name].shape):
            moved = dict(tables)
            moved[name] = tables[name].copy()
            moved[name][cell] += 1e-3                     # P(e) is linear in each entry: exact difference
            after = propagate(compile_network(states, parents, moved, enumerate_core=False), as_batch(likelihood),
                              targets=[target[0]])
            p_after = np.exp(after.log_evidence_probability)
            numeric = (p_after - p_e) / 1e-3
            numeric_y = (p_after * np.nan_to_num(after.marginals[target[0]][:, 0])
                         - p_e * np.nan_to_num(base.marginals[target[0]][:, 0])) / 1e-3
            np.testing.assert_allclose(derivatives.evidence[name][(slice(None),) + cell] * scale,
                                       numeric, rtol=1e-6, atol=1e-12, err_msg=f"{name}{cell}")
            np.testing.assert_allclose(derivatives.joint[name][(slice(None),) + cell] * scale,
                                       numeric_y, rtol=1e-6, atol=1e-12, err_msg=f"{name}{cell} target")
    assert (derivatives.evidence[root][~ok][:, 0] > 0).any()


# --- max-product ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["asia", "child", "strata_like"])
def test_most_probable_matches_pgmpy_map_query(name, rng):
    from bayescramp.reference import oracle_map

    model = _load(name)
    pgmpy_model = model.to_pgmpy()
    for _ in range(3):
        row = model.simulate(1, rng=rng).iloc[0]
        evidence = {node: row[node] for node in rng.choice(model.evidence_nodes, 3, replace=False)}
        over = [n for n in rng.choice(model.nodes, 4, replace=False) if n not in evidence]
        best = model.most_probable(evidence, targets=over).iloc[0]
        assert best[over].to_dict() == oracle_map(pgmpy_model, evidence, over)


# --- rows x draws --------------------------------------------------------------------------------------


@pytest.mark.parametrize("observed", [["leg_cramps", "cramp_timing", "diuretic"], ["potassium_deficiency"], []])
def test_propagate_draws_equals_each_draw_compiled_alone(default_model, observed):
    from bayescramp.engine import propagate_draws
    from bayescramp.uncertainty import draw_tables

    rng = np.random.default_rng(3)
    tables = draw_tables(default_model.spec, default_model.network, 7, rng)
    likelihood = {n: rng.random((5, len(default_model.states(n)))) for n in observed}
    targets = default_model.default_targets + ["fatigue"]
    result = propagate_draws(default_model.network, as_batch(likelihood, n_rows=5), tables, targets=targets)
    for d in (0, 4):
        alone = compile_network(default_model.network.states, default_model.network.parents,
                                {**default_model.network.tables, **{n: t[d] for n, t in tables.items()}})
        single = propagate(alone, as_batch(likelihood, n_rows=5), targets=targets)
        for node in targets:
            np.testing.assert_allclose(result.marginals[node][:, d], single.marginals[node], atol=1e-12)
        np.testing.assert_allclose(result.log_evidence_probability[:, d], single.log_evidence_probability,
                                   atol=1e-10)
