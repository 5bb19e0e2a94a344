"""Validation on simulated cohorts (bayescramp.validation) and `bayescramp validate`."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

import bayescramp
from bayescramp.cli import main
from bayescramp.validation import METRIC_COLUMNS, discrimination_and_calibration, reliability_table, write_report


@pytest.fixture(scope="module")
def same_priors():
    return bayescramp.validate(n=30000, rng=11, missing=0.1)


@pytest.fixture(scope="module")
def mismatched_priors():
    return bayescramp.validate(n=30000, rng=11, missing=0.1, truth_priors=["default", "older_adults"])


def test_same_priors_are_calibrated_within_sampling_error(same_priors):
    metrics = same_priors.metrics
    assert list(metrics.columns) == METRIC_COLUMNS
    assert list(metrics["target"]) == bayescramp.load_model().default_targets and (metrics["n"] == 30000).all()
    assert (np.abs(metrics["calibration_intercept"]) < 4 * metrics["intercept_se"]).all()
    slopes = metrics.dropna(subset=["slope_se"])
    assert len(slopes) == len(metrics)   # every default target's posterior varies between people
    assert (np.abs(slopes["calibration_slope"] - 1) < 4 * slopes["slope_se"]).all()
    assert (metrics["ece"] < 4 * metrics["ece_noise"]).all()
    assert np.allclose(metrics["mean_predicted"], metrics["prevalence"], atol=0.01)


def test_mismatched_priors_show_the_cost(same_priors, mismatched_priors):
    wrong = mismatched_priors.metrics.set_index("target")
    right = same_priors.metrics.set_index("target")
    # where the age column is answered, the default priors hold the 65+ stratum; where it is blank (10%) they
    # mix all adults, so vitamin D and iron posteriors spread too far between people (slope < 1)
    for target in ("vitamin_d_deficiency", "iron_deficiency"):
        assert wrong.loc[target, "calibration_slope"] < 1 - 5 * wrong.loc[target, "slope_se"]
        assert abs(right.loc[target, "calibration_slope"] - 1) < 4 * right.loc[target, "slope_se"]
    assert wrong.loc["vitamin_d_deficiency", "ece"] > 2 * right.loc["vitamin_d_deficiency", "ece"]
    assert "Slope < 1: posteriors too" in mismatched_priors.summary()


def test_auroc_equals_mann_whitney():
    rng = np.random.default_rng(5)
    truth = rng.random(400) < 0.3
    predicted = np.round(np.where(truth, rng.beta(3, 2, 400), rng.beta(2, 3, 400)), 2)   # rounded: ties
    expected = mannwhitneyu(predicted[truth], predicted[~truth]).statistic / (truth.sum() * (~truth).sum())
    assert discrimination_and_calibration(truth, predicted)["auroc"] == pytest.approx(expected, abs=1e-12)


def test_brier_and_ece_by_hand():
    truth = np.array([0, 0, 1, 1])
    predicted = np.array([0.1, 0.3, 0.6, 0.8])
    result = discrimination_and_calibration(truth, predicted, n_bins=2)
    assert result["brier"] == pytest.approx((0.01 + 0.09 + 0.16 + 0.04) / 4)
    assert result["auroc"] == 1.0
    # equal-mass bins {0.1, 0.3} and {0.6, 0.8}: |0.2 - 0| / 2 + |0.7 - 1| / 2
    assert result["ece"] == pytest.approx(0.25)


def test_calibration_recovers_a_known_miscalibration():
    rng = np.random.default_rng(8)
    p = rng.uniform(0.02, 0.6, 50000)
    logit = np.log(p / (1 - p))
    truth = rng.random(len(p)) < 1 / (1 + np.exp(-(0.5 + 0.7 * logit)))    # true slope 0.7, intercept 0.5 at slope 0.7
    result = discrimination_and_calibration(truth, p)
    assert result["calibration_slope"] == pytest.approx(0.7, abs=4 * result["slope_se"])


def test_reliability_bins():
    predicted = np.linspace(0.01, 0.99, 100)
    truth = np.zeros(100)
    mass = reliability_table(truth, predicted, n_bins=4)
    assert mass["n"].tolist() == [25, 25, 25, 25]
    width = reliability_table(truth, predicted, n_bins=4, binning="equal_width")
    assert width["high"].max() == pytest.approx(0.99) and (width["low"].diff().dropna() > 0).all()
    assert (mass["lower"] <= mass["observed_rate"]).all() and (mass["upper"] >= mass["observed_rate"]).all()


def test_same_seed_same_report():
    first = bayescramp.validate(n=2000, rng=3, missing=0.3)
    second = bayescramp.validate(n=2000, rng=3, missing=0.3)
    pd.testing.assert_frame_equal(first.metrics, second.metrics)


def test_bad_arguments_are_one_sentence():
    with pytest.raises(bayescramp.InputError, match="n got -5"):
        bayescramp.validate(n=-5)
    with pytest.raises(bayescramp.InputError, match="missing got 1.5"):
        bayescramp.validate(n=10, missing=1.5)
    with pytest.raises(bayescramp.InputError, match="binning got 'quantile'"):
        bayescramp.validate(n=10, binning="quantile")


def test_write_report(tmp_path, same_priors):
    out = write_report(same_priors, tmp_path / "report")
    assert pd.read_csv(out / "metrics.csv").shape == (len(same_priors.metrics), len(METRIC_COLUMNS))
    assert "| magnesium_deficiency |" in (out / "summary.md").read_text()
    assert not any(p.name.startswith(".") for p in out.iterdir())    # no temporary files left


def test_cli_validate_writes_a_report(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["validate", "--truth-priors", "default", "older_adults", "-n", "3000", "--seed", "2",
                 "--missing", "0.2", "-o", str(out)])
    assert code == 0
    assert "scored with: default.toml" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "reliability.csv", "reliability.png",
                                                     "summary.md"]
    assert "reliability.png" in (out / "summary.md").read_text()


def test_cli_validate_missing_parent_is_exit_1(tmp_path, capsys):
    assert main(["validate", "-n", "100", "-o", str(tmp_path / "no" / "report")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    ({"missing": "a"}, "validate: missing got 'a' (str); expected a fraction in [0, 1)"),
    ({"missing": 1.0}, "validate: missing got 1.0 (float); expected a fraction in [0, 1)"),
    ({"rng": "x"}, "rng: got 'x' (str); expected a numpy random Generator or a whole-number seed >= 0"),
    ({"rng": -1}, "rng: got -1 (int)"),
])
def test_wrong_missing_and_rng_are_one_sentence(options, message):
    with pytest.raises(bayescramp.InputError) as caught:
        bayescramp.validate(n=10, **options)
    assert message in str(caught.value)


# --- weights ----------------------------------------------------------------------------------------------------

def test_weighted_auroc_is_the_weighted_share_of_correctly_ordered_pairs(rng):
    truth = rng.random(60) < 0.4
    predicted = np.round(rng.random(60), 1)                          # ties on purpose
    weights = rng.uniform(0.1, 5.0, 60)
    pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
    pairs = sum(weights[i] * weights[j] * ((predicted[i] > predicted[j]) + 0.5 * (predicted[i] == predicted[j]))
                for i in pos for j in neg)
    expected = pairs / (weights[pos].sum() * weights[neg].sum())
    result = discrimination_and_calibration(truth, predicted, weights=weights)
    assert result["auroc"] == pytest.approx(expected, rel=1e-12)
    assert result["brier"] == pytest.approx(np.average((predicted - truth) ** 2, weights=weights), rel=1e-12)
    assert result["prevalence"] == pytest.approx(np.average(truth, weights=weights), rel=1e-12)


def test_whole_number_weights_equal_repeating_the_rows(rng):
    truth = rng.random(300) < 0.3
    predicted = np.clip(truth * 0.3 + rng.random(300) * 0.6, 0.01, 0.99)
    counts = rng.integers(1, 4, 300)
    weighted = discrimination_and_calibration(truth, predicted, weights=counts.astype(float), binning="equal_width")
    repeated = discrimination_and_calibration(np.repeat(truth, counts), np.repeat(predicted, counts),
                                              binning="equal_width")
    for key in ("prevalence", "mean_predicted", "auroc", "brier", "brier_skill", "ece"):
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-9), key
    unit = discrimination_and_calibration(truth, predicted, weights=np.ones(300))
    plain = discrimination_and_calibration(truth, predicted)
    for key in ("auroc", "brier", "calibration_intercept", "calibration_slope", "slope_se", "ece", "ece_noise"):
        assert unit[key] == pytest.approx(plain[key], rel=1e-9), key


def test_validate_with_weights_reports_weighted_metrics():
    weights = np.random.default_rng(4).uniform(0.5, 2.0, 2000)
    report = bayescramp.validate(n=2000, rng=1, weights=weights)
    plain = bayescramp.validate(n=2000, rng=1)
    assert report.settings["weighted"] and not plain.settings["weighted"]
    assert not np.allclose(report.metrics["brier"], plain.metrics["brier"])
    with pytest.raises(bayescramp.InputError, match=r"validate: weights have shape \(3,\); expected one per person"):
        bayescramp.validate(n=10, weights=[1.0, 2.0, 3.0])
