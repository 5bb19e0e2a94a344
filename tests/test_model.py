"""The Model facade: posterior API, evidence forms, parameters, errors."""

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import EvidenceError
from bayescramp.reference import oracle_posterior

from .conftest import DATA


def test_posterior_answers_the_motivating_question(default_model):
    result = default_model.posterior({"leg_cramps": "yes", "diuretic": "thiazide"})
    prior = default_model.marginals()
    assert result["potassium_deficiency"]["present"] > prior["potassium_deficiency"]["present"]
    assert 0.0 < result.evidence_probability < 1.0
    assert set(default_model.default_targets) <= set(result)
    assert "leg_cramps" not in result and "diuretic" not in result


def test_set_and_soft_evidence_match_pgmpy(default_model):
    evidence = {"diuretic": ["thiazide", "loop"], "fatigue": {"yes": 0.8, "no": 0.2}, "leg_cramps": "yes"}
    result = default_model.posterior(evidence)
    oracle_evidence = {"diuretic": np.array([0, 1, 1, 0.0]), "fatigue": np.array([0.2, 0.8]), "leg_cramps": "yes"}
    expected = oracle_posterior(default_model.to_pgmpy(), oracle_evidence, list(result))
    for node in result:
        np.testing.assert_allclose(result[node].to_numpy(), expected[node], atol=1e-12)


def test_to_frame_is_tidy_with_priors(default_model):
    frame = default_model.posterior({"leg_cramps": "yes"}, targets=["magnesium_deficiency"]).to_frame()
    assert list(frame.columns) == ["node", "state", "probability", "prior"]
    assert frame["probability"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("evidence, message", [
    ({"leg_cramp": "yes"}, "unknown node 'leg_cramp'; expected one of"),
    ({"leg_cramps": "sometimes"}, "evidence leg_cramps='sometimes': unknown state; expected one of no, yes"),
    ({"diuretic": ["thiazide", "statin"]}, "unknown state 'statin' in the set"),
    ({"fatigue": {"yes": -1.0}}, "likelihood of 'yes' is -1.0; expected a finite non-negative number"),
    ({"fatigue": {"yes": 0.0, "no": 0.0}}, "zero for every state"),
    ({"fatigue": 3}, "got a int; expected a state name"),
])
def test_bad_evidence_is_one_clear_sentence(default_model, evidence, message):
    with pytest.raises(EvidenceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        default_model.posterior(evidence)


def test_unknown_target_lists_valid_nodes(default_model):
    with pytest.raises(EvidenceError, match="unknown node 'sodium'; expected one of diuretic"):
        default_model.posterior({}, targets=["sodium"])


def test_parameters_table_lists_every_free_number(default_model):
    table = default_model.parameters()
    assert list(table.columns) == ["id", "node", "parents", "state", "kind", "value", "low", "high", "source",
                                   "basis", "note"]
    assert table["id"].is_unique
    assert set(table["kind"]) == {"table", "leak", "link"}
    row = table.set_index("id").loc["P(potassium_deficiency=present|diuretic=thiazide,magnesium_deficiency=absent)"]
    assert (row["node"], row["state"], row["parents"]) == (
        "potassium_deficiency", "present", "diuretic=thiazide,magnesium_deficiency=absent")


def test_with_parameters_covaries_the_row(tiny_model):
    changed = tiny_model.with_parameters({"P(medication=drug)": 0.5})
    assert changed.marginals()["medication"]["drug"] == pytest.approx(0.5)
    assert tiny_model.marginals()["medication"]["drug"] == pytest.approx(0.3)
    with pytest.raises(bayescramp.SpecError, match="unknown parameter id 'P\\(medication=pill\\)'"):
        tiny_model.with_parameters({"P(medication=pill)": 0.5})


def test_with_parameters_proportional_covariation_in_three_state_rows(default_model):
    key = "P(diuretic=thiazide)"
    changed = default_model.with_parameters({key: 0.3})
    before = default_model.marginals()["diuretic"]
    after = changed.marginals()["diuretic"]
    assert after["thiazide"] == pytest.approx(0.3)
    scale = 0.7 / (1 - before["thiazide"])
    for state in ("none", "loop", "potassium_sparing"):
        assert after[state] == pytest.approx(before[state] * scale, abs=1e-12)


def test_score_dataframe_keeps_rows_order_and_passthrough(default_model):
    frame = pd.DataFrame({"person": ["a", "b", "c"], "leg_cramps": ["yes", None, "n"],
                          "diuretic": ["thiazide", "", "none"]})
    scored = default_model.score(frame)
    assert list(scored["person"]) == ["a", "b", "c"]
    assert list(scored.columns[:7]) == ["person"] + [f"p_{n}" for n in default_model.default_targets]
    first = default_model.posterior({"leg_cramps": "yes", "diuretic": "thiazide"})
    assert scored.loc[0, "p_potassium_deficiency"] == pytest.approx(first["potassium_deficiency"]["present"],
                                                                    abs=1e-12)
    assert scored.loc[1, "p_iron_deficiency"] == pytest.approx(default_model.marginals()["iron_deficiency"]["present"])
    assert list(scored["status"]) == ["ok", "ok", "ok"]


def test_score_unknown_state_names_row_column_value_and_states(default_model):
    frame = pd.DataFrame({"leg_cramps": ["yes", "sometimes"]})
    with pytest.raises(bayescramp.InputError, match=r"row 1, column 'leg_cramps': got 'sometimes'; expected no, yes"):
        default_model.score(frame)


def test_score_flags_impossible_rows_without_losing_neighbours(default_model):
    frame = pd.DataFrame({"leg_cramps": ["no", "yes"], "cramp_timing": ["night", "night"]})
    scored = default_model.score(frame)
    assert list(scored["status"]) == ["impossible_evidence", "ok"]
    assert scored.loc[0, "evidence_probability"] == 0.0
    assert np.isnan(scored.loc[0, "p_magnesium_deficiency"])
    assert 0 < scored.loc[1, "p_magnesium_deficiency"] < 1


def test_score_targets_without_present_state_get_one_column_per_state(default_model):
    scored = default_model.score(pd.DataFrame({"leg_cramps": ["yes"]}), targets=["diuretic", "anemia"])
    assert [c for c in scored.columns if c.startswith("p_")] == [
        "p_diuretic__none", "p_diuretic__thiazide", "p_diuretic__loop", "p_diuretic__potassium_sparing", "p_anemia"]


def test_simulated_marginals_match_the_model(default_model, rng):
    n = 200_000
    cohort = default_model.simulate(n, rng=rng, truth=True)
    marginals = default_model.marginals()
    for node in default_model.nodes:
        for state in default_model.states(node):
            p = marginals[node][state]
            observed = (cohort[node] == state).mean()
            # five binomial standard errors
            assert abs(observed - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (node, state)


def test_simulate_blanks_a_fraction_and_hides_truth(default_model, rng):
    cohort = default_model.simulate(20_000, rng=rng, missing=0.3)
    assert list(cohort.columns) == default_model.evidence_nodes
    assert "leg_cramps" in cohort.columns and "potassium_deficiency" not in cohort.columns
    assert cohort.isna().to_numpy().mean() == pytest.approx(0.3, abs=0.01)
    same = default_model.simulate(50, rng=7)
    again = default_model.simulate(50, rng=7)
    pd.testing.assert_frame_equal(same, again)


def test_repr_is_informative(default_model):
    assert repr(default_model).startswith("Model('default', 19 nodes,")
    assert "P(e) =" in repr(default_model.posterior({"leg_cramps": "yes"}))


def test_simulate_imported_networks_observes_roots_and_leaves():
    from .conftest import DATA

    asia = bayescramp.load_model(DATA / "asia.bif.gz")
    cohort = asia.simulate(100, rng=1, truth=True)
    assert len(cohort) == 100
    assert asia.evidence_nodes == [n for n in asia.nodes if n in {"asia", "smoke", "xray", "dysp"}]
    assert set(cohort.columns) == set(asia.nodes)


@pytest.mark.parametrize("network", ["asia", "alarm", "child"])
def test_every_analysis_runs_on_standard_networks(network, tmp_path):
    """Networks without a [meta] table (BIF files) get sensible defaults from the one accessor."""
    from bayescramp.scenario import compare
    from bayescramp.validation import validate

    model = bayescramp.load_model(DATA / f"{network}.bif.gz")
    info = model.network.info
    assert model.evidence_nodes and model.default_targets
    assert not set(model.evidence_nodes) & set(model.default_targets)
    cohort = model.simulate(40, rng=1, missing=0.3)
    assert list(cohort.columns) == model.evidence_nodes
    assert len(model.simulate(5, rng=2, truth=True).columns) == len(model.nodes)
    scored = model.score(cohort)
    assert (scored["status"] == "ok").mean() > 0.5
    assert [c for c in scored.columns if c.startswith("p_")]
    case = {k: v for k, v in cohort.iloc[0].items() if pd.notna(v)}
    posterior = model.posterior(case, interval=0.9, n_draws=20, rng=3)
    assert set(posterior.intervals) == set(posterior)
    intervals = model.score(cohort.head(5), interval=0.9, n_draws=20, rng=3)
    assert any(c.endswith("_lower") for c in intervals.columns)
    target = info.default_sensitivity_target()
    assert target[0] in model.default_targets
    table = model.sensitivity(case)
    assert len(table) == len(model.parameters()) and table["posterior"].notna().all()
    assert len(model.sensitivity(cohort.head(8), summary="rows")) == 8 * len(table)
    assert len(model.tune(case, target, 0.5)) == len(table)
    explanation = model.explain(case)
    assert set(explanation["target"]) <= set(model.default_targets)
    best = model.most_probable(cohort.head(6))
    assert list(best.columns) == model.default_targets + ["probability", "status"]
    report = validate(model, n=400, seed=4)
    assert set(report.metrics["target"]) == set(model.default_targets)
    some_id = model.parameters()["id"].iloc[0]
    changed = model.with_parameters({some_id: 0.5})
    comparison = compare({"as read": model, "changed": changed}, cohort)
    assert set(comparison.shifts["scenario"]) == {"changed"}
