"""Evidence values to likelihoods (bayescramp.evidence): one case's evidence, code matching, the blank rule."""

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import EvidenceError
from bayescramp.evidence import case_evidence, impossible_evidence_error

IMPOSSIBLE = {"leg_cramps": "no", "cramp_timing": "night"}


# ---- conflicting evidence --------------------------------------------------------------------

@pytest.mark.parametrize("pairs", [
    [("leg_cramps", "yes"), ("leg_cramps", "no")],
    [("diuretic", "thiazide"), ("diuretic", ["thiazide", "loop"])],
    [("fatigue", {"yes": 0.8, "no": 0.2}), ("fatigue", {"yes": 0.2, "no": 0.8})],
    [("fatigue", "yes"), ("fatigue", None)],
], ids=["two states", "state and set", "two likelihoods", "state and blank"])
def test_a_node_given_twice_differently_is_refused(pairs):
    with pytest.raises(EvidenceError, match=r"evidence: node '\w+' is given twice, as .* and as .*; expected one "
                                            r"finding per node"):
        case_evidence(pairs)


def test_a_node_given_twice_the_same_is_kept_once():
    assert case_evidence([("leg_cramps", "yes"), ("fatigue", "no"), ("leg_cramps", "yes")]) == {
        "leg_cramps": "yes", "fatigue": "no"}


@pytest.mark.parametrize("method", ["posterior", "explain", "most_probable", "sensitivity", "tune"])
def test_every_case_api_refuses_conflicting_pairs(default_model, method):
    pairs = [("leg_cramps", "yes"), ("diuretic", "none"), ("leg_cramps", "no")]
    call = getattr(default_model, method)
    args = (pairs, "potassium_deficiency=present", 0.5) if method == "tune" else (pairs,)
    with pytest.raises(EvidenceError, match="node 'leg_cramps' is given twice, as 'yes' and as 'no'"):
        call(*args)


@pytest.mark.parametrize("evidence, message", [
    (5, "got int 5; expected a mapping node -> finding"),
    ("leg_cramps", "got str 'leg_cramps'; expected a mapping node -> finding"),
    ([("leg_cramps", "yes", "no")], "got list"),
    ({5: "yes"}, "got node name 5 \\(int\\); expected node names as text"),
    (pd.DataFrame({"leg_cramps": ["yes"]}), "got a DataFrame; expected one case"),
])
def test_evidence_of_another_kind_is_one_sentence(evidence, message):
    with pytest.raises(EvidenceError, match=message):
        case_evidence(evidence)


def test_a_table_row_is_a_case_and_its_blank_cells_are_no_finding(default_model):
    row = pd.DataFrame({"leg_cramps": ["yes"], "fatigue": [np.nan], "diuretic": [""], "nausea": [None]}).iloc[0]
    assert case_evidence(row) == {"leg_cramps": "yes", "fatigue": None, "diuretic": None, "nausea": None}
    got = default_model.posterior(row)["potassium_deficiency"]["present"]
    assert got == pytest.approx(default_model.posterior({"leg_cramps": "yes"})["potassium_deficiency"]["present"],
                                abs=1e-15)


# ---- impossible evidence ---------------------------------------------------------------------

def test_impossible_evidence_sentence_names_the_findings():
    error = impossible_evidence_error(IMPOSSIBLE)
    assert isinstance(error, EvidenceError)
    assert str(error).startswith("evidence leg_cramps='no', cramp_timing='night': has probability zero")


@pytest.mark.parametrize("call", [
    lambda m, e: m.posterior(e),
    lambda m, e: m.posterior(e, interval=0.9, n_draws=20, rng=1),
    lambda m, e: m.explain(e),
    lambda m, e: m.most_probable(e),
    lambda m, e: m.sensitivity(e),
    lambda m, e: m.tune(e, "potassium_deficiency=present", 0.5),
], ids=["posterior", "posterior interval", "explain", "most_probable", "sensitivity", "tune"])
@pytest.mark.parametrize("evidence", [
    IMPOSSIBLE,
    {"leg_cramps": {"no": 1.0}, "cramp_timing": ["day", "night"]},
    [("cramp_timing", "day"), ("leg_cramps", "no")],
], ids=["hard", "soft and set", "pairs"])
def test_impossible_case_is_refused_by_every_case_api(default_model, call, evidence):
    with pytest.raises(EvidenceError, match=r"has probability zero under the model \(impossible evidence\)"):
        call(default_model, evidence)


@pytest.mark.parametrize("call, n_lines", [
    (lambda m, t: m.score(t), 1),
    (lambda m, t: m.score(t, interval=0.9, n_draws=20, rng=1), 1),
    (lambda m, t: m.explain(t, target="potassium_deficiency"), 2),
    (lambda m, t: m.most_probable(t), 1),
    (lambda m, t: m.sensitivity(t, summary="rows", parameters=["diuretic"]), 3),
], ids=["score", "score interval", "explain", "most_probable", "sensitivity rows"])
def test_impossible_rows_of_a_table_get_a_status_and_neighbours_are_kept(default_model, call, n_lines):
    table = pd.DataFrame({"leg_cramps": ["yes", "no", "no"], "cramp_timing": ["night", "night", None]},
                         index=pd.Index(["a", "b", "c"], name="pid"))
    result = call(default_model, table)
    status = result["status"]
    assert (status.loc[["b"]] == "impossible_evidence").all() and len(status.loc[["b"]]) == n_lines
    assert (status.loc[["a", "c"]] == "ok").all()
    numbers = result.select_dtypes("number").drop(columns=["row", "order"], errors="ignore")
    assert numbers.loc[["a", "c"]].notna().any(axis=1).all()
    # never a row of NaN without a status saying why
    assert (status[numbers.isna().all(axis=1)] != "ok").all()


def test_impact_plot_of_an_impossible_row_is_refused(default_model):
    from bayescramp.plotting import plot_evidence_impact

    table = default_model.explain(pd.DataFrame(IMPOSSIBLE, index=[0]))
    with pytest.raises(EvidenceError, match="impossible_evidence"):
        plot_evidence_impact(table)


def test_sensitivity_mean_counts_only_possible_rows(default_model):
    table = pd.DataFrame({"leg_cramps": ["yes", "no"], "cramp_timing": ["night", "night"]})
    mean = default_model.sensitivity(table, parameters=["diuretic"])
    assert (mean["n_rows"] == 1).all()
    single = default_model.sensitivity({"leg_cramps": "yes", "cramp_timing": "night"}, parameters=["diuretic"])
    np.testing.assert_allclose(mean.set_index("id")["swing"], single.set_index("id")["swing"], rtol=1e-12)


def test_bayescramp_exports_the_evidence_error():
    assert issubclass(bayescramp.EvidenceError, ValueError)
