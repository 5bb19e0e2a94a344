"""Most probable explanation (bayescramp.explain.most_probable) against pgmpy map_query and brute force."""

import itertools

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp.evidence import BatchEvidence
from bayescramp.reference import oracle_map, to_pgmpy

DEFICIENCIES = ["vitamin_d_deficiency", "iron_deficiency", "choline_deficiency", "magnesium_deficiency",
                "potassium_deficiency", "calcium_deficiency"]

CASES = [
    ({}, DEFICIENCIES),
    ({"diuretic": "thiazide", "cramp_timing": "night", "muscle_weakness": "yes", "abnormal_heart_rhythm": "yes"},
     DEFICIENCIES),
    ({"pale_skin": "yes", "fatigue": "yes", "muscle_weakness": "yes", "seizures": "yes", "nausea": "yes"},
     DEFICIENCIES),
    ({"leg_cramps": "yes", "muscle_spasms": "yes", "neck_back_pain": "yes"}, DEFICIENCIES),
    ({"diuretic": "loop", "seizures": "yes", "abnormal_heart_rhythm": "yes", "loss_of_appetite": "yes"},
     ["magnesium_deficiency", "potassium_deficiency", "anemia", "leg_cramps"]),
    ({"fatigue": "yes"}, ["diuretic", "anemia"]),
]


@pytest.fixture(scope="module")
def pgmpy_default():
    return to_pgmpy(bayescramp.load_model().spec)


@pytest.mark.parametrize("evidence, over", CASES)
def test_most_probable_matches_pgmpy(default_model, pgmpy_default, evidence, over):
    best = default_model.most_probable(evidence, targets=over).iloc[0]
    assert best[over].to_dict() == oracle_map(pgmpy_default, evidence, over)


def test_most_probable_matches_pgmpy_on_tiny(tiny_model):
    network = to_pgmpy(tiny_model.spec)
    for evidence, over in [({}, ["medication", "x_deficiency"]), ({"symptom": "yes"}, ["medication", "x_deficiency"]),
                           ({"symptom": "no"}, ["medication", "x_deficiency"]),
                           ({"symptom": "yes", "medication": "drug"}, ["x_deficiency"])]:
        best = tiny_model.most_probable(evidence, targets=over).iloc[0]
        assert best[over].to_dict() == oracle_map(network, evidence, over)


@pytest.mark.parametrize("evidence, over", CASES[1:4])
def test_probability_is_the_best_of_all_configurations(default_model, evidence, over):
    p_evidence = default_model.posterior(evidence).evidence_probability
    joint = {}
    for states in itertools.product(*(default_model.states(n) for n in over)):
        config = dict(zip(over, states))
        try:
            joint[states] = default_model.posterior({**evidence, **config}).evidence_probability / p_evidence
        except bayescramp.EvidenceError:
            joint[states] = 0.0
    assert sum(joint.values()) == pytest.approx(1.0, abs=1e-9)
    best = default_model.most_probable(evidence, targets=over).iloc[0]
    assert best["probability"] == pytest.approx(max(joint.values()), abs=1e-9)
    assert joint[tuple(best[over])] == pytest.approx(max(joint.values()), abs=1e-12)


def test_default_over_is_the_default_targets(default_model):
    best = default_model.most_probable({"fatigue": "yes"})
    assert list(best.columns) == list(default_model.default_targets) + ["probability", "status"]


def test_table_equals_case_by_case(default_model, rng):
    cohort = default_model.simulate(25, rng=rng, missing=0.3)
    table = default_model.most_probable(cohort)
    assert len(table) == len(cohort) and (table.index == cohort.index).all()
    for r in (0, 11, 24):
        case = {k: v for k, v in cohort.iloc[r].items() if isinstance(v, str)}
        single = default_model.most_probable(case).iloc[0]
        over = list(default_model.default_targets)
        assert table.iloc[r][over].tolist() == single[over].tolist()
        assert table.iloc[r]["probability"] == pytest.approx(single["probability"], abs=1e-12)


def test_evidence_on_an_over_node_is_respected(default_model):
    soft = default_model.most_probable({"magnesium_deficiency": "present", "fatigue": "yes"})
    assert soft.iloc[0]["magnesium_deficiency"] == "present"


def test_impossible_evidence_is_flagged(default_model):
    table = default_model.most_probable(pd.DataFrame({"leg_cramps": ["no", "yes"], "cramp_timing": ["night", "night"]}))
    assert table["status"].tolist() == ["impossible_evidence", "ok"]
    assert np.isnan(table["probability"].iloc[0]) and pd.isna(table["iron_deficiency"].iloc[0])


def test_ties_go_to_the_first_configuration():
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    network = DiscreteBayesianNetwork([("a", "b")])
    network.add_cpds(TabularCPD("a", 2, [[0.5], [0.5]], state_names={"a": ["off", "on"]}),
                     TabularCPD("b", 2, [[0.5, 0.5], [0.5, 0.5]], evidence=["a"], evidence_card=[2],
                                state_names={"b": ["off", "on"], "a": ["off", "on"]}))
    model = bayescramp.Model.from_pgmpy(network)
    best = model.most_probable({}, targets=["a", "b"]).iloc[0]
    assert (best["a"], best["b"], best["probability"]) == ("off", "off", pytest.approx(0.25))


def test_many_nodes_at_once_match_pgmpy(default_model, pgmpy_default):
    # 12,288 joint configurations (more than enumeration ever allowed): max-product does not enumerate them
    over = DEFICIENCIES + ["anemia", "diuretic", "fatigue", "seizures", "nausea", "cramp_timing"]
    evidence = {"leg_cramps": "yes", "pale_skin": "yes"}
    best = default_model.most_probable(evidence, targets=over).iloc[0]
    assert best[over].to_dict() == oracle_map(pgmpy_default, evidence, over)


@pytest.mark.parametrize("over", [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]])
def test_ties_across_cliques_go_to_the_first_configuration_in_the_order_given(over):
    # a -> b, a -> c, b and c deterministic copies of a in their first two states: every config with
    # b == c == a has probability 1/2 * 1/2 ... all tied; the first in product order over `over` wins
    from bayescramp.engine import compile_network

    states = {"a": ("x", "y"), "b": ("x", "y", "z"), "c": ("x", "y")}
    parents = {"a": (), "b": ("a",), "c": ("a",)}
    tables = {"a": np.array([0.5, 0.5]), "b": np.array([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]),
              "c": np.array([[0.5, 0.5], [0.5, 0.5]])}
    network = compile_network(states, parents, tables)
    result = bayescramp.engine.most_probable(network, BatchEvidence.from_likelihoods({}, n_rows=1), over)
    configurations = list(itertools.product(*(range(len(states[n])) for n in over)))
    joint = {}
    for configuration in configurations:
        value = dict(zip(over, configuration))
        joint[configuration] = (tables["a"][value["a"]] * tables["b"][value["a"], value["b"]]
                                * tables["c"][value["a"], value["c"]])
    best = max(joint.values())
    first = next(c for c in configurations if joint[c] == best)
    assert tuple(result.states[0]) == first
    assert np.exp(result.log_joint[0]) == pytest.approx(best)


def test_unknown_target_node_is_an_error(default_model):
    with pytest.raises(bayescramp.InputError, match="targets: unknown node 'zinc'"):
        default_model.most_probable({}, targets=["zinc"])


@pytest.mark.parametrize("index", [
    pd.Index([30, 10, 20], name="pid"),
    pd.Index(["a", "a", "b"]),
    pd.MultiIndex.from_tuples([(2, "x"), (1, "y"), (1, "x")], names=["visit", "arm"]),
], ids=["named non-monotonic", "duplicate", "multiindex"])
def test_most_probable_keeps_the_input_index(default_model, index):
    frame = pd.DataFrame({"pale_skin": ["yes", None, "no"], "diuretic": ["none", "thiazide", "loop"]}, index=index)
    table = default_model.most_probable(frame, targets=["iron_deficiency", "magnesium_deficiency"])
    pd.testing.assert_index_equal(table.index, index)
    for position in range(3):
        case = {k: v for k, v in frame.iloc[position].items() if v is not None and v == v}
        expected = default_model.most_probable(case, targets=["iron_deficiency", "magnesium_deficiency"]).iloc[0]
        assert table.iloc[position]["probability"] == pytest.approx(expected["probability"], abs=1e-12)
