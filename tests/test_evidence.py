"""bayescramp.evidence: one case's evidence, code matching, the blank rule, and the batch type BatchEvidence."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import EvidenceError, InputError
from bayescramp.evidence import BatchEvidence, canonical_code, case_evidence, encode_column, impossible_evidence_error

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
    options = {"targets": "potassium_deficiency=present", "threshold": 0.5} if method == "tune" else {}
    with pytest.raises(EvidenceError, match="node 'leg_cramps' is given twice, as 'yes' and as 'no'"):
        call(pairs, **options)


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
    lambda m, e: m.tune(e, targets="potassium_deficiency=present", threshold=0.5),
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
    (lambda m, t: m.explain(t, targets="potassium_deficiency"), 2),
    (lambda m, t: m.most_probable(t), 1),
    (lambda m, t: m.sensitivity(t, summary="rows", parameters=["leak(leg_cramps)"]), 1),
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


# ---- numbers of every kind: numpy scalars, Decimal (issue 10) ----------------------------------

@pytest.mark.parametrize("weight", [np.float32(0.8), np.float64(0.8), np.float16(0.8), Decimal("0.8"),
                                    Fraction(4, 5)], ids=["float32", "float64", "float16", "Decimal", "Fraction"])
def test_soft_evidence_weights_may_be_any_real_number(default_model, weight):
    got = default_model.posterior({"fatigue": {"yes": weight, "no": np.int64(1) - weight}})
    expected = default_model.posterior({"fatigue": {"yes": float(weight), "no": 1 - float(weight)}})
    assert got["iron_deficiency"]["present"] == pytest.approx(expected["iron_deficiency"]["present"], abs=1e-15)


@pytest.mark.parametrize("weight", [np.True_, True, "0.8", np.float32("nan"), Decimal("-1"), Decimal("Infinity")])
def test_soft_evidence_weights_that_are_not_finite_numbers_are_refused(default_model, weight):
    with pytest.raises(EvidenceError, match="likelihood of 'yes' is .*; expected a finite non-negative number"):
        default_model.posterior({"fatigue": {"yes": weight, "no": 0.2}})


def test_a_set_may_be_a_numpy_array(default_model):
    got = default_model.posterior({"diuretic": np.array(["thiazide", "loop"])})
    expected = default_model.posterior({"diuretic": ["thiazide", "loop"]})
    assert got["potassium_deficiency"]["present"] == expected["potassium_deficiency"]["present"]


@pytest.mark.parametrize("value, code", [
    (Decimal("1"), "1"), (Decimal("1.00"), "1"), (Decimal("2.50"), "2.5"), (Decimal("-0"), "0"),
    (Decimal("NaN"), ""), (pd.NA, ""), (pd.NaT, ""), (np.float32(2.0), "2"), (np.int8(7), "7"),
    (Decimal("123456789012345678901"), "123456789012345678901"),
])
def test_canonical_code_matches_numbers_by_value(value, code):
    assert canonical_code(value) == code


CODEBOOK = """
[nodes.muscle_spasms]
column = "BCQ020"
code_set = "nhanes_yes_no"

[nodes.diuretic]
column = "BCQ010"
codes = { 0 = "none", 1 = "thiazide", 2 = "loop", 3 = "potassium_sparing" }
unobserved = [99]
"""


def test_decimal_codes_match_by_value_from_a_frame_and_from_parquet(default_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "codebook.toml").write_text(CODEBOOK)
    codebook = bayescramp.load_codebook(tmp_path / "codebook.toml")
    table = pa.table({"SEQN": [1, 2, 3],
                      "BCQ020": pa.array([Decimal("1.0"), Decimal("2.0"), Decimal("7.0")], pa.decimal128(5, 1)),
                      "BCQ010": pa.array([Decimal("1"), Decimal("0"), Decimal("99")], pa.decimal128(5, 0))})
    plain = pd.DataFrame({"SEQN": [1, 2, 3], "BCQ020": [1, 2, 7], "BCQ010": [1, 0, 99]})
    expected = default_model.score(plain, codebook=codebook)
    from_frame = default_model.score(table.to_pandas(), codebook=codebook)
    pd.testing.assert_frame_equal(from_frame, expected)
    pq.write_table(table, tmp_path / "survey.parquet")
    bayescramp.score_file(tmp_path / "survey.parquet", tmp_path / "scores.csv", codebook=codebook, progress=False)
    from_file = pd.read_csv(tmp_path / "scores.csv")
    np.testing.assert_allclose(from_file["p_magnesium_deficiency"], expected["p_magnesium_deficiency"], rtol=1e-12)


def test_decimal_state_codes_without_a_codebook(default_model):
    frame = pd.DataFrame({"leg_cramps": [Decimal("1"), Decimal("0.0"), None]})
    expected = default_model.score(pd.DataFrame({"leg_cramps": ["yes", "no", None]}))
    pd.testing.assert_frame_equal(default_model.score(frame), expected)


# ---- one rule for "no finding": only an empty cell (issue 10) -----------------------------------

MISSING_TEXTS = ["NaN", "nan", "NA", "null", "None", "N/A", " NaN "]
EMPTY_CELLS = [None, np.nan, "", "   ", pd.NA]

RULE_CODEBOOK = """
[nodes.leg_cramps]
column = "{column}"
code_set = "yes_no"
{extra}
"""


def _route(default_model, tmp_path, route, cells, extra=""):
    """Score ``cells`` of leg_cramps through one route; return the status column."""
    column = "leg_cramps" if "plain" in route else "LC"
    frame = pd.DataFrame({"id": range(len(cells)), column: pd.Series(cells, dtype=object)})
    codebook = None
    if "codebook" in route:
        (tmp_path / "cb.toml").write_text(RULE_CODEBOOK.format(column=column, extra=extra))
        codebook = bayescramp.load_codebook(tmp_path / "cb.toml")
    if route.startswith("frame"):
        return default_model.score(frame, codebook=codebook, on_invalid="flag")["status"]
    path = tmp_path / "survey.csv"
    # written by hand so the text reaches the file exactly as given (None and NaN as empty fields)
    lines = ["id," + column] + [f"{k},{'' if c is None or c is pd.NA or c != c else c}" for k, c in enumerate(cells)]
    path.write_text("\n".join(lines) + "\n")
    bayescramp.score_file(path, tmp_path / "out.csv", codebook=codebook, on_invalid="flag", progress=False)
    return pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["status"]


ROUTES = ["frame plain", "frame codebook", "csv plain", "csv codebook"]


@pytest.mark.parametrize("route", ROUTES)
def test_text_that_spells_a_missing_value_is_invalid_on_every_route(default_model, tmp_path, route):
    status = _route(default_model, tmp_path, route, ["yes"] + MISSING_TEXTS)
    assert status.iloc[0] == "ok"
    assert status.iloc[1:].str.startswith("invalid: column").all(), status.tolist()


@pytest.mark.parametrize("route", ROUTES)
def test_empty_cells_are_no_finding_on_every_route(default_model, tmp_path, route):
    status = _route(default_model, tmp_path, route, ["no"] + EMPTY_CELLS)
    assert (status == "ok").all(), status.tolist()


@pytest.mark.parametrize("route", ["frame codebook", "csv codebook"])
def test_a_codebook_may_map_missing_texts_to_no_finding(default_model, tmp_path, route):
    status = _route(default_model, tmp_path, route, ["yes", "NA", "NaN"], extra='unobserved = ["NA", "NaN"]')
    assert (status == "ok").all(), status.tolist()


def test_the_error_for_missing_text_says_what_to_do(default_model):
    with pytest.raises(bayescramp.InputError) as caught:
        default_model.score(pd.DataFrame({"leg_cramps": ["yes", "NA"]}))
    message = caught.value.problems[0]
    assert message.startswith("data, row 1, column 'leg_cramps': got 'NA' (text, not an empty cell: only an empty "
                              "cell means no finding; leave it blank or map it in a codebook, e.g. unobserved = "
                              "['NA']); expected no, yes")


def test_missing_texts_in_a_parquet_string_column_are_invalid_and_float_nan_is_blank(default_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"leg_cramps": pa.array(["yes", "NaN", None, "NA"]),
                      "fatigue": pa.array([1.0, float("nan"), 0.0, None])})
    pq.write_table(table, tmp_path / "s.parquet")
    bayescramp.score_file(tmp_path / "s.parquet", tmp_path / "o.parquet", on_invalid="flag", progress=False)
    status = pd.read_parquet(tmp_path / "o.parquet")["status"].tolist()
    assert status[0] == "ok" and status[2] == "ok"
    assert status[1].startswith("invalid: column 'leg_cramps' got 'NaN'")
    assert status[3].startswith("invalid: column 'leg_cramps' got 'NA'")


def test_a_missing_text_in_a_single_case_is_an_unknown_state(default_model):
    with pytest.raises(EvidenceError, match="evidence leg_cramps='NaN': unknown state"):
        default_model.posterior({"leg_cramps": "NaN"})
    assert default_model.posterior({"leg_cramps": float("nan")}).evidence == {"leg_cramps": None}


# --- BatchEvidence: one type, one constructor per input form, the row count checked once ---------------------


def test_every_constructor_gives_the_same_likelihood_for_the_same_findings(tiny_model):
    states = tiny_model.network.states
    by_case = BatchEvidence.from_case(states, {"symptom": "yes", "medication": None})
    by_likelihood = BatchEvidence.from_likelihoods({"symptom": np.array([[0.0, 1.0]])})
    by_columns = BatchEvidence.from_columns([encode_column(["yes"], "symptom", ("no", "yes"))])
    by_frame = BatchEvidence.from_frame(tiny_model.network, pd.DataFrame({"symptom": ["yes"]}),
                                        encoder=lambda network, data: ([encode_column(data["symptom"], "symptom",
                                                                                      ("no", "yes"))], []))
    for evidence in (by_case, by_likelihood, by_columns, by_frame):
        assert evidence.n_rows == 1 and evidence.nodes == ("symptom",)
        np.testing.assert_array_equal(evidence.likelihood()["symptom"], [[0.0, 1.0]])


@pytest.mark.parametrize("build, message", [
    (lambda: BatchEvidence.from_likelihoods({"a": np.ones((2, 2)), "b": np.ones((3, 2))}),
     "evidence: likelihood of node 'b' has 3 rows; expected 2 rows, as the likelihood of node 'a' has"),
    (lambda: BatchEvidence.from_likelihoods({"a": np.ones((2, 2))}, n_rows=4),
     "evidence: likelihood of node 'a' has 2 rows; expected 4 rows, as n_rows is"),
    (lambda: BatchEvidence.from_likelihoods({}),
     "evidence: no node is observed; expected n_rows"),
    (lambda: BatchEvidence.from_likelihoods({"a": np.ones(2)}),
     "evidence: likelihood of node 'a' has shape \\(2,\\); expected a 2-D array"),
    (lambda: BatchEvidence.from_columns([encode_column(["yes"], "a", ("no", "yes")),
                                         encode_column(["yes", "no"], "b", ("no", "yes"))]),
     "evidence: column for node 'b' has 2 rows; expected 1 rows"),
])
def test_a_row_count_mismatch_names_the_node_and_both_counts(build, message):
    with pytest.raises(InputError, match=message):
        build()


def test_distinct_rows_and_their_inverse_rebuild_the_batch():
    evidence = BatchEvidence.from_columns([encode_column(["yes", "no", "yes", None], "fatigue", ("no", "yes")),
                                           encode_column(["a", "a", "a", "b"], "timing", ("a", "b"))])
    patterns, inverse = evidence.distinct()
    assert patterns.n_rows == 3
    np.testing.assert_array_equal(patterns.codes[inverse], evidence.codes)
    for node, values in patterns.likelihood().items():
        np.testing.assert_array_equal(values[inverse], evidence.likelihood()[node])


def test_no_observed_node_is_one_empty_pattern():
    evidence = BatchEvidence.from_likelihoods({}, n_rows=3)
    patterns, inverse = evidence.distinct()
    assert patterns.n_rows == 1 and inverse.tolist() == [0, 0, 0] and patterns.likelihood() == {}


def test_rows_keeps_the_unreadable_cells_of_its_slice():
    evidence = BatchEvidence.from_columns([encode_column(["yes", "?", "no", "??"], "fatigue", ("no", "yes"))],
                                          index=pd.Index(["p", "q", "r", "s"]))
    assert evidence.invalid.tolist() == [False, True, False, True]
    tail = evidence.rows(2, 4)
    assert tail.n_rows == 2 and list(tail.index) == ["r", "s"]
    assert tail.invalid.tolist() == [False, True] and tail.columns[0].bad_values.tolist() == ["??"]


def test_with_unobserved_adds_a_no_finding_code_where_missing():
    evidence = BatchEvidence.from_likelihoods({"a": np.array([[0.2, 1.0], [1.0, 0.0]])})
    assert evidence.unobserved.tolist() == [-1]
    extended = evidence.with_unobserved()
    assert extended.unobserved.tolist() == [2]
    np.testing.assert_array_equal(extended.likelihood()["a"], evidence.likelihood()["a"])


def test_a_case_keeps_its_findings_for_messages_and_labels_its_codes(tiny_model):
    evidence = BatchEvidence.from_case(tiny_model.network.states,
                                       {"symptom": {"no": 0.5, "yes": 1}, "medication": ["none", "drug"]})
    assert evidence.case == {"symptom": {"no": 0.5, "yes": 1}, "medication": ["none", "drug"]}
    assert [a.labels[0] for a in evidence.alphabets] == ["no:0.5,yes:1", "none|drug"]
