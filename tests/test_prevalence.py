"""Population prevalence from complex surveys, checked against samplics, a loop-based reference and R values."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayescramp
from bayescramp import InputError, load_codebook
from bayescramp.engine import propagate
from bayescramp.evidence import BatchEvidence
from bayescramp.prevalence import LONELY_PSU_RULES, prevalence
from bayescramp.survey import example_paths
from bayescramp.uncertainty import draw_tables

with warnings.catch_warnings():
    # samplics announces on import that it is archived (it still computes what we check)
    warnings.simplefilter("ignore", FutureWarning)
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam, SinglePSUEst

SURVEY, CODEBOOK = example_paths()
DESIGN = {"weights": "WTINT2YR", "strata": "SDMVSTRA", "psu": "SDMVPSU"}


def samplics_means(y, weights, strata, psu, domain, *, single_psu=SinglePSUEst.error, fpc=1.0, alpha=0.05):
    """samplics' Taylor estimates of a mean per domain: {domain: (estimate, se, lower, upper)} and df."""
    estimator = TaylorEstimator(PopParam.mean, alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.estimate(np.asarray(y, dtype=float), np.asarray(weights, dtype=float), stratum=np.asarray(strata),
                           psu=np.asarray(psu), domain=np.asarray(domain), single_psu=single_psu, fpc=fpc)
    found = {str(d): (estimator.point_est[d], estimator.stderror[d], estimator.lower_ci[d], estimator.upper_ci[d])
             for d in estimator.point_est}
    return found, estimator.degree_of_freedom


def domain_labels(frame, columns, ok):
    """One samplics domain per (subgroup, ok) pair: the rows that are not ok form domains we ignore."""
    if not columns:
        label = pd.Series("all", index=frame.index)
    else:
        label = frame[list(columns)].astype(str).agg("|".join, axis=1)
    return np.where(ok, label, "not-ok|" + label)


def our_label(row, columns):
    return "|".join(str(row[c]) for c in columns) if columns else "all"


# --- a straightforward (loop-based, test-only) implementation of R survey's formulas -------------------------

def loop_reference(y, w, ok, strata, psu, group, *, lonely="fail", population=None):
    """{group: (estimate, variance, deff)} by loops over groups, strata and PSUs (R survey's svymean/svyby)."""
    n = len(y)
    strata_ids = sorted(set(strata))
    psus = {h: sorted({psu[i] for i in range(n) if strata[i] == h}) for h in strata_ids}
    n_psu = sum(len(v) for v in psus.values())
    lonely_strata = [h for h in strata_ids if len(psus[h]) == 1]
    out = {}
    for g in sorted(set(group), key=str):
        inside = [bool(ok[i]) and group[i] == g for i in range(n)]
        total_weight = sum(w[i] for i in range(n) if inside[i])
        if total_weight <= 0:
            continue
        estimate = sum(w[i] * y[i] for i in range(n) if inside[i]) / total_weight
        z = [w[i] * (y[i] - estimate) / total_weight if inside[i] else 0.0 for i in range(n)]
        totals = {(h, j): sum(z[i] for i in range(n) if strata[i] == h and psu[i] == j)
                  for h in strata_ids for j in psus[h]}
        grand = sum(totals.values()) / n_psu
        variance = 0.0
        for h in strata_ids:
            n_h = len(psus[h])
            factor = 1.0 if population is None else 1.0 - n_h / population[h]
            stratum_totals = [totals[(h, j)] for j in psus[h]]
            if n_h == 1:
                if lonely == "adjust":
                    variance += factor * (stratum_totals[0] - grand) ** 2
                continue
            mean = sum(stratum_totals) / n_h
            variance += factor * n_h / (n_h - 1) * sum((t - mean) ** 2 for t in stratum_totals)
        if lonely == "average" and lonely_strata:
            n_kept = len(strata_ids) - len(lonely_strata)
            variance = variance * len(strata_ids) / n_kept if n_kept else math.nan
        count = sum(inside)
        spread = sum(w[i] * (y[i] - estimate) ** 2 for i in range(n) if inside[i])
        deff = math.nan
        if spread <= 1e-18 * total_weight:
            deff = None  # the posteriors of the group are (nearly) all equal: deff is 0 / 0, rounding decides
        elif count > 1 and total_weight > count:
            s2 = count / (count - 1) * spread / total_weight
            deff = variance / (s2 * (total_weight - count) / (total_weight * count))
        out[g] = (estimate, variance, deff)
    return out


# --- the example survey ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_survey():
    return pd.read_csv(SURVEY, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def example_scores(default_model, example_survey):
    scores = default_model.score(example_survey, codebook=load_codebook(CODEBOOK))
    extra = [c for c in ["SDMVPSU", "SDMVSTRA", "BCQ010", "BCQ040"] if c not in scores]
    return pd.concat([scores, example_survey[extra]], axis=1)


@pytest.mark.parametrize("by", [(), ("BCQ010",), ("BCQ010", "BCQ040")])
def test_example_survey_matches_samplics(example_scores, by):
    table = prevalence(example_scores, **DESIGN, by=[by] if by else None)
    ok = example_scores["status"].eq("ok").to_numpy()
    domains = domain_labels(example_scores, by, ok)
    rows = table[table["group"] == ("*".join(by) if by else "all")]
    columns = [c for c in example_scores.columns if c.startswith("p_")]
    for column in columns[:2] if len(by) > 1 else columns:          # samplics takes ~3 s per target on the cross
        expected, df = samplics_means(example_scores[column].fillna(0.5), example_scores["WTINT2YR"],
                                      example_scores["SDMVSTRA"], example_scores["SDMVPSU"], domains)
        mine = rows[rows["target"] == column.removeprefix("p_")]
        assert len(mine) == len([d for d in expected if not d.startswith("not-ok")])
        for _, row in mine.iterrows():
            estimate, se, lower, upper = expected[our_label(row, by)]
            assert row["estimate"] == pytest.approx(estimate, abs=1e-12)
            assert row["se"] == pytest.approx(se, rel=1e-9, abs=1e-13)
            assert row["lower"] == pytest.approx(lower, abs=1e-9)
            assert row["upper"] == pytest.approx(upper, abs=1e-9)
            assert row["df"] == df == 30 - 15


def test_example_survey_weights_and_clustering_matter(example_scores):
    """The bundled design is not decoration: weights move the estimate, PSUs inflate the variance."""
    table = prevalence(example_scores, **DESIGN)
    unweighted = prevalence(example_scores)
    assert (table["deff"] > 1.0).any()
    assert not np.allclose(table["estimate"], unweighted["estimate"], rtol=1e-3)
    assert table["sum_weights"].iloc[0] == pytest.approx(pd.to_numeric(example_scores["WTINT2YR"]).sum())


def test_model_prevalence_scores_then_estimates_with_design_columns_from_the_data(default_model, example_survey,
                                                                                 example_scores):
    table = default_model.prevalence(example_survey, codebook=CODEBOOK, **DESIGN, by=["BCQ010"])
    expected = prevalence(example_scores, **DESIGN, by=["BCQ010"])
    pd.testing.assert_frame_equal(table, expected)


# --- R survey values on a hand-computable design --------------------------------------------------------------

# Three strata: stratum 1 has PSUs 11 (two people) and 12; stratum 2 a single PSU 21 (lonely);
# stratum 3 PSUs 31, 32, 33. Values from R survey 4.5 (svydesign(ids=~psu, strata=~strata,
# weights=~w, nest=TRUE), options(survey.lonely.psu = "adjust"), svymean / svyby), as quoted by
# public test suites of other survey packages; the hand computation is ours.
TOY = pd.DataFrame({"strata": [1, 1, 1, 2, 2, 3, 3, 3, 3], "psu": [11, 11, 12, 21, 21, 31, 32, 33, 33],
                    "w": [1.0, 2.0, 1.5, 1.0, 0.5, 2.0, 1.0, 1.0, 0.5], "y": [3, 5, 4, 10, 8, 1, 2, 6, 4],
                    "g": ["a", "a", "a", "a", "a", "a", "b", "b", "b"]})


def toy_scores(frame):
    # prevalence takes probabilities: y / 10 scales the mean and its SE by 1/10
    return frame.assign(p_y=frame["y"] / 10.0, status="ok")


def test_hand_computed_design_equals_r_survey_with_adjust():
    # mean = 45 / 10.5 = 30/7; z_i = w_i (y_i - 30/7) / 10.5, PSU totals in units of 1/73.5:
    # stratum 1: 1, -3 -> 2/1 (10 - 4/2) = 16; stratum 2 (lonely, centred at the grand mean 0): 53^2 = 2809;
    # stratum 3: -46, -16, 11 -> 3/2 (2493 - 51^2/3) = 2439; V = 5264 / 73.5^2
    row = prevalence(toy_scores(TOY), weights="w", strata="strata", psu="psu", lonely_psu="adjust").iloc[0]
    assert row["estimate"] * 10 == pytest.approx(30 / 7, abs=1e-12)
    assert row["se"] * 10 == pytest.approx(math.sqrt(5264) / 73.5, rel=1e-12)
    assert row["se"] * 10 == pytest.approx(0.987121477399568, rel=1e-12)             # R
    assert row["df"] == 3 and row["n"] == 9 and row["sum_weights"] == 10.5


def test_hand_computed_domain_keeps_every_design_psu():
    # domain b: mean 4; PSU totals -0.8 (32), 0.8 (33) and 0 for PSU 31, outside the domain:
    # V = 3/2 (0.64 + 0.64 + 0) = 1.92 (subsetting first would give 2/1 * 1.28 = 2.56)
    table = prevalence(toy_scores(TOY), weights="w", strata="strata", psu="psu", by="g", lonely_psu="adjust")
    row = table[table["g"] == "b"].iloc[0]
    assert row["estimate"] * 10 == pytest.approx(4.0)
    assert row["se"] * 10 == pytest.approx(math.sqrt(1.92), rel=1e-12)
    assert row["se"] * 10 == pytest.approx(1.385640646055102, rel=1e-12)            # R
    subset = prevalence(toy_scores(TOY[TOY["g"] == "b"]), weights="w", strata="strata", psu="psu")
    assert subset["se"].iloc[0] * 10 == pytest.approx(math.sqrt(2.56), rel=1e-12)


def test_hand_computed_two_lonely_strata_equal_r_survey():
    # PSU 11 dropped: strata 1 (PSU 12) and 2 (PSU 21) are both lonely; R gives SE 1.382900869482269
    frame = TOY[TOY["psu"] != 11]
    row = prevalence(toy_scores(frame), weights="w", strata="strata", psu="psu", lonely_psu="adjust").iloc[0]
    assert row["estimate"] * 10 == pytest.approx(32 / 7.5, rel=1e-12)
    assert row["se"] * 10 == pytest.approx(1.382900869482269, rel=1e-9)


def test_rows_that_are_not_ok_stay_in_the_design():
    # status other than ok on both rows of PSU 11: stratum 1 keeps its two PSUs (no lonely stratum
    # appears), as R's svymean(na.rm = TRUE) keeps them; the rows are counted in n_excluded
    scores = toy_scores(TOY)
    scores.loc[scores["psu"] == 11, "status"] = "impossible_evidence"
    scores.loc[scores["psu"] == 11, "p_y"] = np.nan
    table = prevalence(scores, weights="w", strata="strata", psu="psu", lonely_psu="certainty")
    row = table.iloc[0]
    assert (row["n"], row["n_excluded"]) == (7, 2)
    reference = loop_reference(scores["p_y"].fillna(0).tolist(), scores["w"].tolist(),
                               scores["status"].eq("ok").tolist(), scores["strata"].tolist(), scores["psu"].tolist(),
                               ["all"] * 9, lonely="certainty")["all"]
    assert row["se"] == pytest.approx(math.sqrt(reference[1]), rel=1e-12)
    assert table.attrs["statuses"] == {"ok": 7, "impossible_evidence": 2}


# --- random designs -------------------------------------------------------------------------------------------

@st.composite
def designs(draw, *, allow_lonely=True):
    n_strata = draw(st.integers(1, 4))
    rows = []
    for h in range(n_strata):
        n_psu = draw(st.integers(1 if allow_lonely else 2, 4))
        for j in range(n_psu):
            for _ in range(draw(st.integers(1, 4))):
                rows.append({"stratum": f"s{h}", "psu": j + 1,
                             "w": draw(st.floats(0.1, 50.0, allow_nan=False)),
                             # samplics divides by the estimate (its coefficient of variation): keep it above 0
                             "p_a": draw(st.floats(1e-6, 1.0, allow_nan=False)),
                             "p_b": draw(st.floats(1e-6, 1.0, allow_nan=False)),
                             "g": draw(st.sampled_from(["x", "y", "z"])),
                             "k": draw(st.sampled_from([1, 2])),
                             "status": draw(st.sampled_from(["ok", "ok", "ok", "impossible_evidence"]))})
    frame = pd.DataFrame(rows)
    frame.loc[frame["status"] != "ok", ["p_a", "p_b"]] = np.nan
    return frame


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compare_with_samplics(frame, lonely, single_psu, by):
    table = prevalence(frame, weights="w", strata="stratum", psu="psu", by=[by] if by else None, lonely_psu=lonely)
    ok = frame["status"].eq("ok").to_numpy()
    domains = domain_labels(frame, by, ok)
    rows = table[table["group"] == ("*".join(by) if by else "all")]
    for column in ("p_a", "p_b"):
        # rows that are not ok form domains of their own, which we ignore (samplics divides by their mean)
        expected, df = samplics_means(frame[column].fillna(0.5), frame["w"], frame["stratum"], frame["psu"], domains,
                                      single_psu=single_psu)
        for _, row in rows[rows["target"] == column[2:]].iterrows():
            label = our_label(row, by)
            if row["n"] == 0:
                assert label not in expected and np.isnan(row["estimate"])
                continue
            estimate, se, _, _ = expected[label]
            assert row["estimate"] == pytest.approx(estimate, abs=1e-12)
            assert row["se"] == pytest.approx(se, rel=1e-9, abs=1e-13)
            assert row["df"] == df


@_SETTINGS
@given(frame=designs(allow_lonely=False), by=st.sampled_from([(), ("g",), ("g", "k")]))
def test_random_designs_match_samplics(frame, by):
    _compare_with_samplics(frame, "fail", SinglePSUEst.error, by)


@_SETTINGS
@given(frame=designs(), by=st.sampled_from([(), ("g",), ("g", "k")]), lonely=st.sampled_from(["certainty", "remove"]))
def test_random_designs_with_lonely_psus_match_samplics_skip(frame, by, lonely):
    _compare_with_samplics(frame, lonely, SinglePSUEst.skip, by)


@_SETTINGS
@given(frame=designs())
def test_lonely_psu_fail_errors_where_samplics_does(frame):
    counts = frame.groupby("stratum")["psu"].nunique()
    if (counts > 1).all():
        prevalence(frame, weights="w", strata="stratum", psu="psu")
        return
    with pytest.raises(ValueError, match="Only one PSU"):
        samplics_means(frame["p_a"].fillna(0.5), frame["w"], frame["stratum"], frame["psu"], frame["g"])
    with pytest.raises(InputError, match=f"stratum '{counts[counts == 1].index[0]}' has one PSU"):
        prevalence(frame, weights="w", strata="stratum", psu="psu")


@_SETTINGS
@given(frame=designs(), lonely=st.sampled_from(["adjust", "average", "certainty"]),
       by=st.sampled_from([(), ("g",), ("g", "k")]))
def test_random_designs_match_the_loop_reference_for_every_lonely_rule(frame, lonely, by):
    table = prevalence(frame, weights="w", strata="stratum", psu="psu", by=[by] if by else None, lonely_psu=lonely)
    rows = table[(table["group"] == ("*".join(by) if by else "all")) & (table["target"] == "a")]
    group = [our_label(row, by) for _, row in frame.iterrows()]
    reference = loop_reference(frame["p_a"].fillna(0.0).tolist(), frame["w"].tolist(),
                               frame["status"].eq("ok").tolist(),
                               frame["stratum"].tolist(), frame["psu"].tolist(), group, lonely=lonely)
    for _, row in rows.iterrows():
        label = our_label(row, by)
        if label not in reference:
            assert row["n"] == 0 or row["sum_weights"] == 0
            continue
        estimate, variance, deff = reference[label]
        assert row["estimate"] == pytest.approx(estimate, abs=1e-12)
        if np.isnan(variance):
            assert np.isnan(row["se"])
        else:
            assert row["se"] ** 2 == pytest.approx(variance, rel=1e-9, abs=1e-24)
        if deff is None:
            continue
        if np.isnan(deff):
            assert np.isnan(row["deff"])
        else:
            assert row["deff"] == pytest.approx(deff, rel=1e-9)


@_SETTINGS
@given(frame=designs(allow_lonely=False), fraction=st.floats(0.05, 0.9))
def test_finite_population_correction_matches_samplics_and_the_loop_reference(frame, fraction):
    n_psu = frame.groupby("stratum")["psu"].nunique()
    population = (n_psu / fraction).round().clip(lower=n_psu)            # population PSU counts per stratum
    frame = frame.assign(fpc=frame["stratum"].map(population))
    table = prevalence(frame, weights="w", strata="stratum", psu="psu", fpc="fpc")
    ok = frame["status"].eq("ok").to_numpy()
    factors = {h: 1.0 - n_psu[h] / population[h] for h in n_psu.index}
    expected, _ = samplics_means(frame["p_a"].fillna(0.5), frame["w"], frame["stratum"], frame["psu"],
                                 domain_labels(frame, (), ok), fpc=factors)
    row = table[table["target"] == "a"].iloc[0]
    if row["n"] == 0:
        return
    assert row["se"] == pytest.approx(expected["all"][1], rel=1e-9, abs=1e-13)
    reference = loop_reference(frame["p_a"].fillna(0.0).tolist(), frame["w"].tolist(), ok.tolist(),
                               frame["stratum"].tolist(), frame["psu"].tolist(), ["all"] * len(frame),
                               population=population.to_dict())
    assert row["se"] ** 2 == pytest.approx(reference["all"][1], rel=1e-9, abs=1e-24)


@_SETTINGS
@given(frame=designs(allow_lonely=False), scale=st.floats(0.01, 1000.0), seed=st.integers(0, 2 ** 16))
def test_estimates_do_not_depend_on_weight_scale_or_row_order(frame, scale, seed):
    base = prevalence(frame, weights="w", strata="stratum", psu="psu", by=["g"])
    order = np.random.default_rng(seed).permutation(len(frame))
    moved = prevalence(frame.iloc[order].assign(w=frame["w"].iloc[order] * scale), weights="w", strata="stratum",
                       psu="psu", by=["g"])
    for column in ("estimate", "se", "n", "n_excluded"):
        np.testing.assert_allclose(moved[column].to_numpy(float), base[column].to_numpy(float), rtol=1e-9,
                                   atol=1e-15)


def test_without_a_design_it_is_a_weighted_mean_with_every_row_its_own_psu():
    frame = pd.DataFrame({"p_a": [0.1, 0.5, 0.2, 0.9, 0.4], "status": "ok"})
    row = prevalence(frame).iloc[0]
    values = frame["p_a"].to_numpy()
    assert row["estimate"] == pytest.approx(values.mean())
    assert row["se"] == pytest.approx(values.std(ddof=1) / math.sqrt(5), rel=1e-12)
    assert row["df"] == 4
    assert np.isnan(row["deff"])                                         # sum of weights = n: no population


# --- groups ---------------------------------------------------------------------------------------------------

def test_by_gives_the_overall_row_then_each_column_and_cross():
    frame = pd.DataFrame({"p_a": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3], "status": "ok", "sex": ["f", "m", "f", "m", "f", None],
                          "age": ["old", "old", "young", "young", "old", "young"]})
    table = prevalence(frame, by=["sex", "age", "sex*age"])
    assert table["group"].tolist() == ["all", "sex", "sex", "sex", "age", "age"] + ["sex*age"] * 5
    assert table["n"].iloc[0] == 6 and table.loc[table["group"] == "sex", "n"].sum() == 6
    missing = table[(table["group"] == "sex") & table["sex"].isna()]
    assert missing["n"].tolist() == [1]                                  # a missing level is a subgroup of its own
    pd.testing.assert_frame_equal(prevalence(frame, by=[("sex", "age")]).iloc[1:].reset_index(drop=True),
                                  table[table["group"] == "sex*age"].reset_index(drop=True))


def test_targets_pick_nodes_and_leave_credible_bounds_out():
    frame = pd.DataFrame({"p_a": [0.1, 0.5], "p_a_lower": [0.0, 0.4], "p_a_upper": [0.2, 0.6],
                          "p_t__day": [0.3, 0.2], "p_t__night": [0.7, 0.8], "status": "ok"})
    assert prevalence(frame)["target"].tolist() == ["a", "t__day", "t__night"]
    assert prevalence(frame, targets=["t"])["target"].tolist() == ["t__day", "t__night"]


# --- parameter uncertainty ------------------------------------------------------------------------------------

def test_interval_adds_the_variance_across_parameter_draws_to_the_design_variance(default_model):
    cohort = default_model.simulate(300, rng=3, missing=0.3)
    rng = np.random.default_rng(5)
    cohort["stratum"] = rng.integers(0, 3, len(cohort))
    cohort["unit"] = rng.integers(0, 2, len(cohort))
    cohort["w"] = rng.uniform(1, 4, len(cohort))
    design = {"weights": "w", "strata": "stratum", "psu": "unit"}
    table = default_model.prevalence(cohort, **design, by=["diuretic"], targets=["iron_deficiency", "anemia"],
                                     interval=0.9, n_draws=4, rng=11)
    # independently: score each draw's tables row by row, estimate with the same design, combine
    tables = draw_tables(default_model.spec, default_model.network, 4, 11)
    states = default_model.network.states
    likelihood = {node: np.concatenate([BatchEvidence.from_case(states, {node: v}).likelihood()[node]
                                        if not pd.isna(v) else np.ones((1, len(states[node]))) for v in cohort[node]])
                  for node in default_model.evidence_nodes}
    per_draw = []
    for d in range(4):
        result = propagate(default_model.network, BatchEvidence.from_likelihoods(likelihood, n_rows=len(cohort)),
                           targets=["iron_deficiency", "anemia"],
                           tables={k: np.repeat(v[d:d + 1], len(cohort), axis=0) for k, v in tables.items()})
        scores = cohort.assign(p_iron_deficiency=result.marginals["iron_deficiency"][:, 1],
                               p_anemia=result.marginals["anemia"][:, 1], status="ok")
        per_draw.append(prevalence(scores, **design, by=["diuretic"]))
    estimates = np.column_stack([t["estimate"] for t in per_draw])
    variances = np.column_stack([t["se"] ** 2 for t in per_draw])
    total = variances.mean(axis=1) + estimates.var(axis=1, ddof=1)
    np.testing.assert_allclose(table["se_total"], np.sqrt(total), rtol=1e-9)
    np.testing.assert_allclose(table["se_parameter"], estimates.std(axis=1, ddof=1), rtol=1e-9)
    assert (table["se_total"] >= table["se_parameter"]).all()
    assert (table["lower_total"] <= table["lower"]).all() or (table["se_total"] >= table["se"]).any()


def test_interval_needs_the_model_and_the_evidence():
    with pytest.raises(InputError, match="interval: needs the model"):
        prevalence(pd.DataFrame({"p_a": [0.5, 0.2]}), interval=0.9)


# --- errors ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"w": [1.0, None, 2.0, 1.0]}, r"scores, row 1, column 'w': got a missing value; expected a sampling weight"),
    ({"w": [1.0, -1.0, 2.0, 1.0]}, r"scores, row 1, column 'w': got -1.0; expected a sampling weight"),
    ({"s": [1, None, 2, 2]}, r"scores, row 1, column 's': got a missing value; expected a stratum"),
    ({"u": [1, 2, None, 2]}, r"scores, row 2, column 'u': got a missing value; expected a primary sampling unit"),
    ({"u": [1, 1, 1, 2]}, r"column 's': stratum 1 has one PSU"),
    ({"p_a": [0.1, np.nan, 0.2, 0.3]}, r"row 1, column 'p_a': got nan on a row with status ok"),
])
def test_bad_design_values_are_one_sentence_naming_row_and_column(change, message):
    frame = pd.DataFrame({"p_a": [0.1, 0.2, 0.3, 0.4], "status": "ok", "w": [1.0, 2.0, 2.0, 1.0], "s": [1, 1, 2, 2],
                          "u": [1, 2, 1, 2]})
    for column, values in change.items():
        frame[column] = values
    with pytest.raises(InputError, match=message):
        prevalence(frame, weights="w", strata="s", psu="u")


@pytest.mark.parametrize("options, message", [
    ({"weights": "nope"}, r"scores: no column 'nope' for weights; expected one of p_a, status"),
    ({"lonely_psu": "skip"}, r"lonely_psu: got 'skip'; expected one of fail, certainty, remove, adjust, average"),
    ({"level": 95}, r"level: got 95; expected a probability"),
    ({"targets": ["b"]}, r"targets: 'b' has no p_ column in scores; expected some of a"),
    ({"by": [3]}, r"by: got 3; expected a column name"),
])
def test_bad_options_are_one_sentence(options, message):
    with pytest.raises(InputError, match=message):
        prevalence(pd.DataFrame({"p_a": [0.1, 0.2], "status": "ok"}), **options)


def test_fpc_must_be_constant_within_a_stratum():
    frame = pd.DataFrame({"p_a": [0.1, 0.2, 0.3, 0.4], "s": [1, 1, 2, 2], "u": [1, 2, 1, 2], "N": [10, 12, 10, 10]})
    with pytest.raises(InputError, match=r"column 'N': got values from 10 to 12 in stratum 1"):
        prevalence(frame, strata="s", psu="u", fpc="N")


def test_codebook_design_table_gives_the_default_columns():
    class Book:  # a codebook with a [design] table (parsed by the codebook module)
        design = {"weights": "w", "strata": "s", "psu": "u"}

    frame = pd.DataFrame({"p_a": [0.1, 0.2, 0.3, 0.4], "w": [1.0, 2.0, 2.0, 1.0], "s": [1, 1, 2, 2], "u": [1, 2, 1, 2]})
    from bayescramp.prevalence import design_columns

    assert design_columns(Book(), weights="other") == {"weights": "other", "strata": "s", "psu": "u", "fpc": None}
    explicit = prevalence(frame, weights="w", strata="s", psu="u")
    assert prevalence(frame, codebook=None, **design_columns(Book())).equals(explicit)


def test_lonely_psu_rules_are_listed():
    assert set(LONELY_PSU_RULES) == {"fail", "certainty", "remove", "adjust", "average"}


def test_prevalence_is_exported():
    assert bayescramp.prevalence is prevalence


def test_by_a_node_read_through_the_codebook_equals_by_its_raw_column():
    survey_path, codebook_path = example_paths()
    survey = pd.read_csv(survey_path, dtype=str).head(3000)
    model = bayescramp.load_model()
    design = dict(weights="WTINT2YR", strata="SDMVSTRA", psu="SDMVPSU", targets=["iron_deficiency"])
    by_node = model.prevalence(survey, codebook=codebook_path, by="sex", **design)
    by_code = model.prevalence(survey, codebook=codebook_path, by="RIAGENDR", **design)
    # RIAGENDR 1 = male, 2 = female (the NHANES codebook)
    for state, code in (("female", "2"), ("male", "1")):
        node_row = by_node[by_node["sex"] == state].iloc[0]
        code_row = by_code[by_code["RIAGENDR"] == code].iloc[0]
        assert node_row["estimate"] == pytest.approx(code_row["estimate"], abs=1e-12)
        assert node_row["se"] == pytest.approx(code_row["se"], abs=1e-12)
        assert node_row["n"] == code_row["n"]
