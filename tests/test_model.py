"""The Model facade: posterior API, evidence forms, parameters, errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    oracle_evidence = {"diuretic": np.array([0, 1, 1, 0, 0.0]), "fatigue": np.array([0.2, 0.8]), "leg_cramps": "yes"}
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
    with pytest.raises(EvidenceError, match="unknown node 'sodium'; expected one of sex, age_group"):
        default_model.posterior({}, targets=["sodium"])


def test_parameters_table_lists_every_free_number(default_model):
    table = default_model.parameters()
    assert list(table.columns) == ["id", "node", "parents", "state", "kind", "value", "low", "high", "source",
                                   "basis", "note"]
    assert table["id"].is_unique
    assert set(table["kind"]) == {"table", "leak", "link"}
    row = table.set_index("id").loc["link(potassium_deficiency<-diuretic=thiazide)"]
    assert (row["node"], row["kind"], row["parents"]) == ("potassium_deficiency", "link", "diuretic=thiazide")
    row = table.set_index("id").loc["P(diuretic=thiazide|age_group=40_64)"]
    assert (row["node"], row["kind"], row["state"], row["parents"]) == ("diuretic", "table", "thiazide",
                                                                        "age_group=40_64")


def test_with_parameters_covaries_the_row(tiny_model):
    changed = tiny_model.with_parameters({"P(medication=drug)": 0.5})
    assert changed.marginals()["medication"]["drug"] == pytest.approx(0.5)
    assert tiny_model.marginals()["medication"]["drug"] == pytest.approx(0.3)
    with pytest.raises(bayescramp.SpecError, match="unknown parameter id 'P\\(medication=pill\\)'"):
        tiny_model.with_parameters({"P(medication=pill)": 0.5})


def test_with_parameters_proportional_covariation_in_three_state_rows(default_model):
    key = "P(diuretic=thiazide|age_group=40_64)"
    changed = default_model.with_parameters({key: 0.3})
    before = default_model.posterior({"age_group": "40_64"})["diuretic"]
    after = changed.posterior({"age_group": "40_64"})["diuretic"]
    assert after["thiazide"] == pytest.approx(0.3)
    scale = 0.7 / (1 - before["thiazide"])
    for state in ("none", "loop", "potassium_sparing", "thiazide_potassium_sparing"):
        assert after[state] == pytest.approx(before[state] * scale, abs=1e-12)


def test_score_dataframe_keeps_rows_order_and_passthrough(default_model):
    frame = pd.DataFrame({"person": ["a", "b", "c"], "leg_cramps": ["yes", None, "n"],
                          "diuretic": ["thiazide", "", "none"]})
    scored = default_model.score(frame)
    assert list(scored["person"]) == ["a", "b", "c"]
    n_targets = len(default_model.default_targets)
    assert list(scored.columns[:1 + n_targets]) == ["person"] + [f"p_{n}" for n in default_model.default_targets]
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
        "p_diuretic__none", "p_diuretic__thiazide", "p_diuretic__loop", "p_diuretic__potassium_sparing",
        "p_diuretic__thiazide_potassium_sparing", "p_anemia"]


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
    assert repr(default_model).startswith("Model('default', 25 nodes,")
    assert "P(e) =" in repr(default_model.posterior({"leg_cramps": "yes"}))


def test_simulate_imported_networks_observes_roots_and_leaves():
    from .conftest import DATA

    asia = bayescramp.load_model(DATA / "asia.bif.gz")
    cohort = asia.simulate(100, rng=1, truth=True)
    assert len(cohort) == 100
    assert asia.evidence_nodes == [n for n in asia.nodes if n in {"asia", "smoke", "xray", "dysp"}]
    assert set(cohort.columns) == set(asia.nodes)


# ---- the input's index comes back on every per-row result (issue 10) -------------------------

def _indexed_frames():
    """The same five people under every kind of index a pandas user may hand us."""
    frame = pd.DataFrame({"person": ["a", "b", "c", "d", "e"],
                          "leg_cramps": ["yes", None, "no", "yes", "no"],
                          "diuretic": ["thiazide", "none", "", "loop", "none"],
                          "fatigue": ["no", "yes", None, "yes", "no"]})
    indexes = {
        "custom non-monotonic": pd.Index([40, 10, 30, 20, 0]),
        "duplicate": pd.Index([7, 7, 3, 3, 7]),
        "named strings": pd.Index(["p5", "p1", "p4", "p2", "p3"], name="person_id"),
        "multiindex": pd.MultiIndex.from_tuples([("x", 2), ("x", 1), ("y", 1), ("y", 2), ("x", 3)],
                                                names=["site", "visit"]),
        "datetime": pd.DatetimeIndex(["2024-03-01", "2024-01-01", "2024-02-01", "2024-01-15", "2024-05-01"],
                                     name="day"),
        "float": pd.Index([0.5, 2.5, 1.5, -1.0, 9.0]),
    }
    return {name: frame.set_axis(index, axis=0) for name, index in indexes.items()}


INDEXED = _indexed_frames()


@pytest.mark.parametrize("kind", list(INDEXED))
def test_score_keeps_the_input_index(default_model, kind):
    frame = INDEXED[kind]
    scored = default_model.score(frame)
    pd.testing.assert_index_equal(scored.index, frame.index)
    plain = default_model.score(frame.reset_index(drop=True))
    np.testing.assert_array_equal(scored["p_potassium_deficiency"].to_numpy(),
                                  plain["p_potassium_deficiency"].to_numpy())


@pytest.mark.parametrize("kind", list(INDEXED))
def test_score_with_interval_keeps_the_input_index(default_model, kind):
    frame = INDEXED[kind]
    scored = default_model.score(frame, interval=0.9, n_draws=20, rng=1)
    pd.testing.assert_index_equal(scored.index, frame.index)
    assert list(scored.columns[1:4]) == ["p_vitamin_d_deficiency", "p_vitamin_d_deficiency_lower",
                                         "p_vitamin_d_deficiency_upper"]


def test_assigning_a_score_column_to_a_sorted_frame_keeps_each_person_their_own(default_model):
    cohort = default_model.simulate(300, rng=3, missing=0.2)
    expected = default_model.score(cohort)["p_potassium_deficiency"]
    shuffled = cohort.sort_values(["diuretic", "leg_cramps"], na_position="first")
    shuffled["p"] = default_model.score(shuffled)["p_potassium_deficiency"]
    np.testing.assert_array_equal(shuffled["p"].sort_index().to_numpy(), expected.to_numpy())


def test_score_of_an_empty_frame_keeps_its_index_type(default_model):
    frame = INDEXED["named strings"].iloc[:0]
    scored = default_model.score(frame)
    assert len(scored) == 0 and scored.index.name == "person_id"


def test_score_of_a_frame_without_evidence_columns_keeps_the_index(default_model):
    frame = INDEXED["multiindex"][["person"]]
    scored = default_model.score(frame)
    pd.testing.assert_index_equal(scored.index, frame.index)
    prior = default_model.marginals()["iron_deficiency"]["present"]
    np.testing.assert_allclose(scored["p_iron_deficiency"], prior, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["range", "strings", "duplicates", "multi"]))
def test_shuffled_scores_align_with_unshuffled_by_index(default_model, seed, kind):
    cohort = default_model.simulate(60, rng=seed, missing=0.3)
    rng = np.random.default_rng(seed)
    if kind == "strings":
        cohort.index = pd.Index([f"r{k}" for k in rng.permutation(60)], name="rid")
    elif kind == "duplicates":
        cohort.index = pd.Index(rng.integers(0, 10, 60))
    elif kind == "multi":
        cohort.index = pd.MultiIndex.from_arrays([rng.integers(0, 3, 60), rng.permutation(60)])
    expected = default_model.score(cohort)
    shuffled = cohort.sample(frac=1, random_state=seed % 2**31)
    got = default_model.score(shuffled)
    pd.testing.assert_index_equal(got.index, shuffled.index)
    if kind == "duplicates":  # labels repeat: compare through the row positions
        order = pd.Series(np.arange(60), index=pd.RangeIndex(60)).sample(frac=1, random_state=seed % 2**31)
        np.testing.assert_array_equal(got["p_magnesium_deficiency"].to_numpy(),
                                      expected["p_magnesium_deficiency"].to_numpy()[order.to_numpy()])
    else:
        pd.testing.assert_series_equal(got["p_magnesium_deficiency"].loc[expected.index],
                                       expected["p_magnesium_deficiency"])


# ---- wrong arguments are one sentence, never a raw exception (issue 10) ---------------------

_FRAME = pd.DataFrame({"leg_cramps": ["yes", "no"]})


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.posterior(5), EvidenceError, "evidence: got int 5; expected a mapping node -> finding"),
    (lambda m: m.posterior("leg_cramps"), EvidenceError, "evidence: got str 'leg_cramps'; expected a mapping"),
    (lambda m: m.posterior({}, targets=5), bayescramp.InputError,
     "posterior: targets got 5 (int); expected a node name or a list of node names"),
    (lambda m: m.posterior({}, targets=[5]), bayescramp.InputError, "posterior: targets holds 5 (int)"),
    (lambda m: m.posterior({}, interval=0.9, n_draws=10, rng="x"), bayescramp.InputError,
     "rng: got 'x' (str); expected a numpy random Generator or a whole-number seed >= 0"),
    (lambda m: m.posterior({}, interval=0.9, n_draws=10, rng=-1), bayescramp.InputError, "rng: got -1 (int)"),
    (lambda m: m.score(_FRAME, targets=5), bayescramp.InputError, "score: targets got 5 (int)"),
    (lambda m: m.score(_FRAME, interval=0.9, n_draws=10, rng=2.5), bayescramp.InputError, "rng: got 2.5 (float)"),
    (lambda m: m.score(pd.DataFrame({0: ["x"], "leg_cramps": ["yes"]})), bayescramp.InputError,
     "score: column 0 (int) is not named by text; expected text column names"),
    (lambda m: m.score(pd.DataFrame([["yes", 1]], columns=pd.MultiIndex.from_tuples([("a", "leg_cramps"),
                                                                                    ("b", "id")]))),
     bayescramp.InputError, "score: the columns are a MultiIndex of 2 levels"),
    (lambda m: m.simulate(2.5), bayescramp.InputError, "simulate: n got 2.5; expected a non-negative whole number"),
    (lambda m: m.simulate(3, missing="a"), bayescramp.InputError,
     "simulate: missing got 'a' (str); expected a fraction in [0, 1]"),
    (lambda m: m.simulate(3, rng="x"), bayescramp.InputError, "rng: got 'x' (str)"),
    (lambda m: m.simulate(3, truth="yes"), bayescramp.InputError, "simulate: truth got 'yes' (str); expected True"),
    (lambda m: m.states(["a"]), EvidenceError, "unknown node ['a']; expected one of"),
    (lambda m: m.with_parameters(5), bayescramp.InputError, "with_parameters: got int; expected a mapping"),
    (lambda m: m.explain({"leg_cramps": "yes"}, targets=5), bayescramp.InputError, "explain: targets got 5 (int)"),
    (lambda m: m.explain({"leg_cramps": "yes"}, order=5), bayescramp.InputError, "explain: order got 5 (int)"),
    (lambda m: m.explain({"leg_cramps": "yes"}, order=["sodium", "leg_cramps"]), bayescramp.InputError,
     "order: unknown node 'sodium'"),
    (lambda m: m.explain(_FRAME, codebook="no_such_codebook.toml"), bayescramp.InputError,
     "no_such_codebook.toml: no such codebook file"),
    (lambda m: m.explain(pd.DataFrame({1: ["yes"]})), bayescramp.InputError, "column 1 (int) is not named by text"),
    (lambda m: m.most_probable({}, targets=5), bayescramp.InputError, "most_probable: targets got 5 (int)"),
    (lambda m: m.sensitivity({}, parameters=5), bayescramp.InputError,
     "sensitivity: parameters got 5 (int); expected parameter ids or node names"),
    (lambda m: m.sensitivity(pd.DataFrame({2: ["yes"]})), bayescramp.InputError, "sensitivity: column 2 (int)"),
    (lambda m: m.export(5), bayescramp.InputError, "export: path got 5 (int); expected a file path"),
    (lambda m: bayescramp.load_model(5), bayescramp.InputError, "load_model: paths got 5 (int)"),
    (lambda m: bayescramp.load_model(None), bayescramp.InputError, "load_model: paths got None (NoneType)"),
    (lambda m: bayescramp.Model(5), bayescramp.InputError, "Model: got int; expected a Spec"),
])
def test_wrong_arguments_are_one_sentence(default_model, call, error, message):
    with pytest.raises(error) as caught:
        call(default_model)
    assert message in str(caught.value)
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize("value", [np.float32(0.9), np.float64(0.9), 0.9])
def test_numpy_scalars_are_accepted_where_numbers_are(default_model, value):
    posterior = default_model.posterior({"leg_cramps": "yes"}, interval=value, n_draws=20, rng=np.int64(1))
    assert posterior.intervals is not None
    tuned = default_model.tune({"leg_cramps": "yes"}, targets="potassium_deficiency=present", threshold=value)
    assert "0.9" in tuned["goal"].iloc[0]
    cohort = default_model.simulate(np.int64(5), rng=np.uint8(3), missing=np.float32(0.5), truth=np.True_)
    assert len(cohort) == 5


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
    assert len(model.tune(case, targets=target, threshold=0.5)) == len(table)
    explanation = model.explain(case)
    assert set(explanation["target"]) <= set(model.default_targets)
    best = model.most_probable(cohort.head(6))
    assert list(best.columns) == model.default_targets + ["probability", "status"]
    report = validate(model, n=400, rng=4)
    assert set(report.metrics["target"]) == set(model.default_targets)
    some_id = model.parameters()["id"].iloc[0]
    changed = model.with_parameters({some_id: 0.5})
    comparison = compare({"as read": model, "changed": changed}, cohort)
    assert set(comparison.shifts["scenario"]) == {"changed"}
