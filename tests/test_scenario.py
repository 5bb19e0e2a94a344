"""compare(): one cohort under several prior sets."""

import numpy as np
import pandas as pd
import pytest

import bayescramp


@pytest.fixture(scope="module")
def cohort():
    # no age column: the older_adults scenario then reads as "if these people were 65 or over"
    return bayescramp.load_model().simulate(300, rng=11, missing=0.1).drop(columns=["age_group"])


def test_shifts_are_differences_of_the_scored_posteriors(default_model, cohort):
    result = bayescramp.compare({"default": default_model, "older_adults": "older_adults",
                                 "seed_claims": ("default", "seed_claims")}, cohort)
    assert result.baseline == "default"
    assert sorted(result.scores) == ["default", "older_adults", "seed_claims"]
    base = result.scores["default"]
    for name in ("older_adults", "seed_claims"):
        other = result.scores[name]
        for column in ("p_potassium_deficiency", "p_magnesium_deficiency"):
            row = result.shifts[(result.shifts["scenario"] == name) & (result.shifts["target"] == column)].iloc[0]
            shift = other[column] - base[column]
            assert row["mean_shift"] == pytest.approx(shift.mean(), rel=1e-12)
            assert row["shift_q50"] == pytest.approx(shift.quantile(0.5), rel=1e-12)
            assert row["max_abs_shift"] == pytest.approx(shift.abs().max(), rel=1e-12)
    # the folk overlay moves rankings; each listed change is a real one
    summary = result.ranking_summary.set_index("scenario")
    assert summary.loc["seed_claims", "n_rows"] == len(cohort)
    changes = result.ranking_changes
    assert (changes.groupby("scenario").size() == summary["n_ranking_changed"][changes["scenario"].unique()]).all()
    for change in changes[changes["top_changed"]].head(5).itertuples():
        before = base.loc[change.row, [c for c in base.columns if c.startswith("p_")]].astype(float)
        after = result.scores[change.scenario].loc[change.row, before.index].astype(float)
        assert before.idxmax() == f"p_{change.baseline_top}" and after.idxmax() == f"p_{change.scenario_top}"


def test_identical_models_shift_nothing(default_model, cohort):
    result = bayescramp.compare([default_model, bayescramp.load_model("default", "default")], cohort.head(50))
    assert np.allclose(result.shifts["mean_abs_shift"], 0.0)
    assert result.ranking_summary["n_ranking_changed"].tolist() == [0]
    assert result.ranking_changes.empty


def test_compare_errors_are_one_sentence(default_model, cohort):
    with pytest.raises(bayescramp.InputError, match="at least two"):
        bayescramp.compare({"default": default_model}, cohort)
    with pytest.raises(bayescramp.InputError, match="has no node 'nope'"):
        bayescramp.compare({"a": default_model, "b": "older_adults"}, cohort, targets=["nope"])
    with pytest.raises(bayescramp.InputError, match="data got list"):
        bayescramp.compare({"a": default_model, "b": "older_adults"}, [1, 2])
    with pytest.raises(bayescramp.InputError, match="quantile 2"):
        bayescramp.compare({"a": default_model, "b": "older_adults"}, cohort, quantiles=[2])


def test_targets_and_quantiles_shape_the_report(default_model, cohort):
    result = bayescramp.compare({"a": default_model, "b": "seed_claims"}, cohort.head(40),
                                targets=["calcium_deficiency"], quantiles=[0.1, 0.9])
    assert result.shifts.columns.tolist() == ["scenario", "target", "baseline_mean", "scenario_mean", "mean_shift",
                                              "mean_abs_shift", "max_abs_shift", "shift_q10", "shift_q90"]
    assert result.shifts["target"].tolist() == ["p_calcium_deficiency"]
    # one target: the ranking cannot change
    assert result.ranking_summary["n_ranking_changed"].tolist() == [0]
    assert isinstance(result.scores["b"], pd.DataFrame)


def test_compare_scores_and_ranking_changes_keep_the_input_index(default_model, cohort):
    labelled = cohort.set_axis(pd.Index([f"id{k}" for k in range(len(cohort))][::-1], name="person"), axis=0)
    shuffled = labelled.sample(frac=1, random_state=4)
    result = bayescramp.compare({"default": default_model, "folk": "seed_claims"}, shuffled)
    for scored in result.scores.values():
        pd.testing.assert_index_equal(scored.index, shuffled.index)
    changes = result.ranking_changes
    assert len(changes) > 0 and changes.index.name == "person"
    assert list(changes.index) == list(shuffled.index[changes["row"].to_numpy()])


@pytest.mark.parametrize("options, message", [
    ({"targets": 5}, "compare: targets got 5 (int)"),
    ({"quantiles": 5}, "compare: quantiles got 5; expected a list of numbers in [0, 1]"),
    ({"quantiles": [np.float32(0.5), "x"]}, "compare: quantile 'x'; expected numbers in [0, 1]"),
])
def test_compare_wrong_arguments_are_one_sentence(default_model, cohort, options, message):
    with pytest.raises(bayescramp.InputError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        bayescramp.compare({"a": default_model, "b": default_model}, cohort, **options)


def test_weights_give_population_means_and_whole_numbers_equal_repeated_rows(default_model, cohort):
    counts = np.random.default_rng(2).integers(1, 4, len(cohort))
    weighted = bayescramp.compare({"default": default_model, "older": "older_adults"}, cohort,
                                  weights=counts.astype(float), quantiles=(0.5,))
    repeated = bayescramp.compare({"default": default_model, "older": "older_adults"},
                                  cohort.loc[cohort.index.repeat(counts)].reset_index(drop=True), quantiles=(0.5,))
    for column in ("baseline_mean", "scenario_mean", "mean_shift", "mean_abs_shift", "max_abs_shift"):
        np.testing.assert_allclose(weighted.shifts[column], repeated.shifts[column], rtol=1e-9)
    assert weighted.ranking_summary["share_ranking_changed"].iloc[0] == pytest.approx(
        repeated.ranking_summary["share_ranking_changed"].iloc[0])
    assert weighted.ranking_summary["n_rows"].iloc[0] == len(cohort)
    with pytest.raises(bayescramp.InputError, match="compare: no column 'w' for weights"):
        bayescramp.compare({"default": default_model, "older": "older_adults"}, cohort, weights="w")


def test_a_negative_weight_is_named_by_column_and_row(default_model):
    cohort = default_model.simulate(10, rng=1).assign(w=1.0)
    cohort.loc[cohort.index[3], "w"] = -1.0
    with pytest.raises(bayescramp.InputError,
                       match=r"compare: 'w' at row 3 is -1\.0; expected a finite weight >= 0 on every row\."):
        bayescramp.compare({"default": default_model, "older": "older_adults"}, cohort, weights="w")
