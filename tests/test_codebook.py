"""Codebooks: TOML format, named code sets, sets and likelihoods, and their error messages."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayescramp
from bayescramp import Codebook, InputError, load_codebook
from bayescramp.evidence import encode_codes
from bayescramp.survey import example_paths

from .conftest import DATA

_, EXAMPLE_CODEBOOK = example_paths()


def write(tmp_path, text, name="book.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_codebook_loads_with_ids_and_kept_weights():
    book = load_codebook(EXAMPLE_CODEBOOK)
    assert book.id_columns == ["SEQN"]
    assert book.keep_columns == ["WTINT2YR"]
    assert "SLQ160" in book.columns
    assert {e.node for e in book.entries if e.column == "SLQ160"} == {"leg_cramps", "cramp_timing"}


@pytest.mark.parametrize("slq160, evidence", [
    (0, {"cramp_timing": ["no_cramps", "day"]}),            # never at night: no finding on leg_cramps
    (1, {"leg_cramps": "yes", "cramp_timing": ["day", "night"]}),
    (2, {"leg_cramps": "yes", "cramp_timing": ["day", "night"]}),
    (4, {"leg_cramps": "yes", "cramp_timing": "night"}),
    (9, {}),                                                  # don't know: no finding on either node
])
def test_slq160_informs_two_nodes_as_the_codebook_says(default_model, slq160, evidence):
    book = load_codebook(EXAMPLE_CODEBOOK)
    frame = pd.DataFrame({"SEQN": [1], "WTINT2YR": [1.0], **{column: ["."] for column in book.columns}})
    frame["SLQ160"], frame["BCQ020"] = slq160, 1
    scored = default_model.score(frame, codebook=book, targets=["magnesium_deficiency"])
    expected = default_model.posterior({**evidence, "muscle_spasms": "yes"}, targets=["magnesium_deficiency"])
    assert scored["p_magnesium_deficiency"][0] == pytest.approx(expected["magnesium_deficiency"]["present"], abs=1e-12)
    assert list(scored.columns[:2]) == ["SEQN", "WTINT2YR"]


def test_nhanes_and_brfss_codings_of_the_same_answers_give_the_same_posteriors(default_model, rng):
    answers = rng.choice(["yes", "no", "dont_know", "refused", "missing"], size=(200, 3), p=[.3, .4, .1, .1, .1])
    nhanes = {"yes": "1", "no": "2", "refused": "7", "dont_know": "9", "missing": "."}
    brfss = {"yes": "1", "no": "2", "dont_know": "7", "refused": "9", "missing": ""}
    plain = {"yes": "yes", "no": "no", "dont_know": None, "refused": None, "missing": None}
    nodes = ["fatigue", "muscle_weakness", "pale_skin"]
    columns = ["Q1", "Q2", "Q3"]

    def book(code_set):
        return Codebook.from_dict({"nodes": {n: {"column": c, "code_set": code_set} for n, c in zip(nodes, columns)}})

    def frame(coding, names):
        return pd.DataFrame({name: [coding[a] for a in answers[:, j]] for j, name in enumerate(names)})

    by_nhanes = default_model.score(frame(nhanes, columns), codebook=book("nhanes_yes_no"))
    by_brfss = default_model.score(frame(brfss, columns), codebook=book("brfss_yes_no"))
    by_name = default_model.score(frame(plain, nodes))
    numbers = [c for c in by_name.columns if c.startswith("p_")] + ["log_evidence_probability"]
    np.testing.assert_allclose(by_nhanes[numbers], by_brfss[numbers], rtol=0, atol=1e-12)
    np.testing.assert_allclose(by_nhanes[numbers], by_name[numbers], rtol=0, atol=1e-12)


def test_codes_may_map_to_a_likelihood_and_match_by_value(default_model):
    book = Codebook.from_dict({"nodes": {"fatigue": {"column": "TIRED", "codes": {
        "1": "yes", "2": "no", "3": {"yes": 0.8, "no": 0.2}}}}})
    scored = default_model.score(pd.DataFrame({"TIRED": [3.0, "3", " 1 "]}), codebook=book, targets=["anemia"])
    soft = default_model.posterior({"fatigue": {"yes": 0.8, "no": 0.2}}, targets=["anemia"])
    hard = default_model.posterior({"fatigue": "yes"}, targets=["anemia"])
    assert scored["p_anemia"].tolist() == pytest.approx([soft["anemia"]["present"]] * 2 + [hard["anemia"]["present"]])


def test_yes_no_code_set_maps_onto_absent_present_nodes(default_model):
    book = Codebook.from_dict({"nodes": {"iron_deficiency": {"column": "FE", "code_set": "yes_no"}}})
    scored = default_model.score(pd.DataFrame({"FE": ["Y", "false"]}), codebook=book, targets=["anemia"])
    present = default_model.posterior({"iron_deficiency": "present"}, targets=["anemia"])["anemia"]["present"]
    assert scored["p_anemia"][0] == pytest.approx(present)


@pytest.mark.parametrize("text, expected", [
    ('[nodes.fatigue]\ncolumn = "X"\ncode_set = "nhanes_yesno"\n',
     ["book.toml, nodes.fatigue.code_set", "unknown code set 'nhanes_yesno'", "did you mean 'nhanes_yes_no'"]),
    ('[nodes.fatigue]\ncolumn = "X"\ncodes = { 1 = "yes" }\nunobserved = [1]\n',
     ["book.toml, nodes.fatigue", "code '1' is mapped twice"]),
    ('[nodes.fatigue]\ncolumn = "X"\ncodes = { "1" = "yes", "1.0" = "no" }\n',
     ["book.toml, nodes.fatigue.codes.1.0", "mapped twice"]),
    ('[nodes.fatigue]\ncolumn = "X"\ncode_set = "nhanes_yes_no"\nunobserved = [9]\n',
     ["book.toml, nodes.fatigue", "code '9' is mapped twice"]),
    ('[nodes.fatigue]\ncolumn = "X"\n', ["book.toml, nodes.fatigue", "neither codes nor code_set"]),
    ('[nodes.fatigue]\ncolum = "X"\ncode_set = "yes_no"\n',
     ["book.toml, nodes.fatigue.colum", "did you mean 'column'"]),
    ('[nodes.fatigue]\ncolumn = "X"\ncode_set = "yes_no"\nmap = { maybe = "yes" }\n',
     ["book.toml, nodes.fatigue.map.maybe", "not a label of code set 'yes_no'"]),
    ('[code_sets.yes_no]\ncodes = { 1 = "yes" }\n[nodes.fatigue]\ncolumn = "X"\ncode_set = "yes_no"\n',
     ["book.toml, code_sets.yes_no", "built-in code set"]),
    ('[nodes.fatigue]\ncolumn = "X"\ncode_set = "yes_no"\n[nodes.fatigue]\ncolumn = "Y"\ncode_set = "yes_no"\n',
     ["book.toml: not valid TOML", "mapped twice"]),
    ("", ["book.toml, nodes", "no node is mapped"]),
])
def test_codebook_errors_name_the_file_and_key_path(tmp_path, text, expected):
    with pytest.raises(InputError) as error:
        load_codebook(write(tmp_path, text))
    for part in expected:
        assert part in str(error.value)


@pytest.mark.parametrize("text, expected", [
    ('[nodes.fatige]\ncolumn = "X"\ncode_set = "yes_no"\n',
     ["book.toml, nodes.fatige", "no node 'fatige'", "did you mean 'fatigue'"]),
    ('[nodes.cramp_timing]\ncolumn = "X"\ncodes = { 1 = "noon" }\n',
     ["book.toml, nodes.cramp_timing.codes.1", "'noon' is not a state of cramp_timing", "no_cramps, day, night"]),
    ('[nodes.cramp_timing]\ncolumn = "X"\ncodes = { 1 = ["day", "dusk"] }\n',
     ["book.toml, nodes.cramp_timing.codes.1", "unknown state 'dusk'"]),
    ('[nodes.leg_cramps]\ncolumn = "X"\ncode_set = "nhanes_frequency_0_4"\n',
     ["book.toml, nodes.leg_cramps.code_set", "'never' is not a state of leg_cramps"]),
])
def test_codebook_errors_against_the_model_name_the_key_path(tmp_path, default_model, text, expected):
    book = load_codebook(write(tmp_path, text))
    with pytest.raises(InputError) as error:
        default_model.score(pd.DataFrame({"X": [1]}), codebook=book)
    for part in expected:
        assert part in str(error.value)


def test_missing_codebook_file_is_named(tmp_path):
    with pytest.raises(InputError, match="no such codebook file"):
        load_codebook(tmp_path / "absent.toml")


def test_model_score_accepts_a_codebook_path(default_model):
    survey, _ = example_paths()
    frame = pd.read_csv(survey, dtype=str, keep_default_na=False, nrows=50)
    scored = default_model.score(frame, codebook=str(EXAMPLE_CODEBOOK))
    assert len(scored) == 50 and (scored["status"] == "ok").all()
    assert bayescramp.load_codebook is load_codebook


# --- numeric columns mapped by intervals -------------------------------------------------

POTASSIUM = """
[nodes.potassium_deficiency]
column = "K"
units = "mmol/L"
intervals = [ { state = "present", high = 3.5 }, { state = "absent", low = 3.5, high = 8 } ]
unobserved = [".", 7777]
"""


def _reference_index(value, intervals, closed, unobserved):
    """A plain Python interval lookup: the state index, unobserved for NaN, None when in no interval."""
    if value != value:
        return unobserved
    for low, high, index in intervals:
        above = low is None or (low <= value if closed == "left" else low < value)
        below = high is None or (value < high if closed == "left" else value <= high)
        if above and below:
            return index
    return None


@settings(max_examples=200, deadline=None)
@given(bounds=st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=6,
                       unique=True),
       stretches=st.lists(st.integers(-1, 3), min_size=7, max_size=7),
       closed=st.sampled_from(["left", "right"]),
       extra=st.lists(st.floats(-2e6, 2e6, allow_subnormal=False) | st.just(float("nan")), max_size=30),
       data=st.data())
def test_interval_encoder_matches_a_plain_python_reference(default_model, bounds, stretches, closed, extra, data):
    states = default_model.states("diuretic")
    bounds = sorted(bounds)
    edges = [None, *bounds, None]
    intervals = [(edges[j], edges[j + 1], stretches[j] % len(states)) for j in range(len(bounds) + 1)
                 if stretches[j] >= 0]
    if not intervals:
        intervals = [(None, bounds[0], 0)]
    book = Codebook.from_dict({"nodes": {"diuretic": {"column": "D", "closed": closed, "intervals": [
        {"state": states[index], **({} if low is None else {"low": low}), **({} if high is None else {"high": high})}
        for low, high, index in intervals]}}})
    code_map = book.code_maps(default_model.network, ["D"])[0]
    values = extra + data.draw(st.lists(st.sampled_from(bounds), max_size=10))
    expected = [_reference_index(v, intervals, closed, code_map.alphabet.unobserved) for v in values]
    as_numbers = encode_codes(np.array(values, dtype=float), code_map)
    as_text = encode_codes(pa.array([b"" if v != v else repr(v).encode() for v in values], type=pa.binary()),
                           code_map)
    for encoded in (as_numbers, as_text):
        bad = [k for k, e in enumerate(expected) if e is None]
        assert encoded.bad_rows.tolist() == bad
        assert [c for k, c in enumerate(encoded.codes.tolist()) if k not in bad] == [e for e in expected
                                                                                     if e is not None]


@pytest.mark.parametrize("cells", [
    ["3.4", "3.5", "", ".", "7777", "", " 4.1 "],              # CSV text (the text "nan" is a code: invalid)
    [3.4, 3.5, np.nan, np.nan, 7777.0, np.nan, 4.1],            # numbers
])
def test_interval_column_maps_numbers_codes_and_blanks(default_model, tmp_path, cells):
    book = load_codebook(write(tmp_path, POTASSIUM))
    scored = default_model.score(pd.DataFrame({"K": cells}), codebook=book, targets=["magnesium_deficiency"])
    low = default_model.posterior({"potassium_deficiency": "present"}, targets=["magnesium_deficiency"])
    normal = default_model.posterior({"potassium_deficiency": "absent"}, targets=["magnesium_deficiency"])
    prior = default_model.posterior({}, targets=["magnesium_deficiency"])
    expected = [low, normal, prior, prior, prior, prior, normal]
    assert scored["p_magnesium_deficiency"].tolist() == pytest.approx(
        [e["magnesium_deficiency"]["present"] for e in expected], abs=1e-12)


def test_explicit_codes_take_precedence_over_intervals(default_model):
    book = Codebook.from_dict({"nodes": {"potassium_deficiency": {
        "column": "K", "intervals": [{"state": "present", "high": 3.5}, {"state": "absent", "low": 3.5}],
        "unobserved": [9999], "codes": {"3": "absent"}}}})
    scored = default_model.score(pd.DataFrame({"K": [9999, 3, 3.0001, 2.9]}), codebook=book,
                                 targets=["magnesium_deficiency"])
    p = {state: default_model.posterior({"potassium_deficiency": state} if state else {},
                                        targets=["magnesium_deficiency"])["magnesium_deficiency"]["present"]
         for state in ["present", "absent", None]}
    assert scored["p_magnesium_deficiency"].tolist() == pytest.approx([p[None], p["absent"], p["present"],
                                                                       p["present"]], abs=1e-12)


def test_value_outside_every_interval_is_an_error_naming_row_column_value_and_intervals(default_model, tmp_path):
    book = load_codebook(write(tmp_path, POTASSIUM))
    with pytest.raises(InputError) as error:
        default_model.score(pd.DataFrame({"K": ["4.0", "9.5", "high"]}), codebook=book)
    message = str(error.value)
    for part in ["row 1, column 'K': got '9.5'; expected a number (mmol/L) in (-inf, 3.5) (present); [3.5, 8) "
                 "(absent); or ., 7777, blank (no finding) [book.toml, nodes.potassium_deficiency]",
                 "row 2, column 'K': got 'high'"]:
        assert part in message


def test_values_outside_every_interval_are_flagged_per_row(default_model, tmp_path):
    book = load_codebook(write(tmp_path, POTASSIUM))
    scored = default_model.score(pd.DataFrame({"K": [4.0, 9.5, "high", np.inf, 3.0]}), codebook=book,
                                 on_invalid="flag")
    assert scored["status"].tolist()[0] == "ok" and scored["status"].tolist()[4] == "ok"
    # a column mixing numbers and text is matched as text
    assert [s.startswith("invalid: column 'K' got '9.5'; expected a number (mmol/L)") for s in scored["status"]] \
        == [False, True, False, False, False]
    assert scored["status"][2].startswith("invalid: column 'K' got 'high'")
    assert scored["status"][3].startswith("invalid: column 'K' got 'inf'")
    assert scored.filter(like="p_").iloc[1:4].isna().all().all()


def test_interval_codebook_scores_csv_parquet_and_dask_like_a_frame(default_model, tmp_path, rng):
    book = load_codebook(write(tmp_path, POTASSIUM))
    potassium = np.round(rng.normal(4.0, 0.5, 500), 1)
    frame = pd.DataFrame({"ID": np.arange(500), "K": np.where(rng.random(500) < 0.1, np.nan, potassium)})
    expected = default_model.score(frame, codebook=book)
    frame.to_csv(tmp_path / "k.csv", index=False)
    frame.to_parquet(tmp_path / "k.parquet")
    for name in ["k.csv", "k.parquet"]:
        bayescramp.score_file(tmp_path / name, tmp_path / f"{name}.out.parquet", codebook=book, progress=False)
        scored = pd.read_parquet(tmp_path / f"{name}.out.parquet")
        np.testing.assert_allclose(scored.filter(like="p_").to_numpy(), expected.filter(like="p_").to_numpy(),
                                   rtol=0, atol=1e-12)
    dask_dataframe = pytest.importorskip("dask.dataframe")
    by_dask = bayescramp.score_dask(dask_dataframe.from_pandas(frame, npartitions=3), codebook=book)
    np.testing.assert_allclose(by_dask.compute(scheduler="sync").filter(like="p_").to_numpy(),
                               expected.filter(like="p_").to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("intervals, extra, expected", [
    ('[ { state = "present", high = 3.6 }, { state = "absent", low = 3.5 } ]', "",
     ["book.toml, nodes.potassium_deficiency.intervals[1]", "[3.5, inf) overlaps intervals[0] (-inf, 3.6)"]),
    ('[ { state = "present", low = 3, high = 3 } ]', "",
     ["book.toml, nodes.potassium_deficiency.intervals[0]", "low = 3 is not below high = 3"]),
    ('[ { state = "present", high = "3.5" } ]', "",
     ["book.toml, nodes.potassium_deficiency.intervals[0].high", "got '3.5'; expected a finite number"]),
    ('[ { state = "present", high = true } ]', "", ["intervals[0].high", "got True"]),
    ('[ { state = "present", high = nan } ]', "", ["intervals[0].high", "got nan"]),
    ('[ { state = "present", hi = 3.5 } ]', "", ["intervals[0].hi", "did you mean 'high'"]),
    ('[ { low = 3.5 } ]', "", ["intervals[0]", "has no state"]),
    ('[ { state = "present" } ]', "", ["intervals[0]", "has neither low nor high"]),
    ('[]', "", ["nodes.potassium_deficiency.intervals", "expected a non-empty list"]),
    ('[ { state = "present", high = 3.5 } ]', 'closed = "both"',
     ["nodes.potassium_deficiency.closed", "got 'both'"]),
    ('[ { state = "present", high = 3.5 } ]', 'code_set = "nhanes_yes_no"',
     ["nodes.potassium_deficiency", "has both code_set ('nhanes_yes_no') and intervals"]),
])
def test_interval_errors_name_the_file_and_key(tmp_path, intervals, extra, expected):
    text = f'[nodes.potassium_deficiency]\ncolumn = "K"\nintervals = {intervals}\n{extra}\n'
    with pytest.raises(InputError) as error:
        load_codebook(write(tmp_path, text))
    for part in expected:
        assert part in str(error.value)


def test_closed_and_units_need_intervals(tmp_path):
    with pytest.raises(InputError, match=r"nodes.fatigue.units: applies to intervals only"):
        load_codebook(write(tmp_path, '[nodes.fatigue]\ncolumn = "X"\ncode_set = "yes_no"\nunits = "days"\n'))


def test_gaps_load_and_right_closed_intervals_include_the_high_end(default_model):
    book = Codebook.from_dict({"nodes": {"potassium_deficiency": {"column": "K", "closed": "right", "intervals": [
        {"state": "present", "high": 3.4}, {"state": "absent", "low": 3.5}]}}})
    encoded, _ = book.encoder()(default_model.network, pd.DataFrame({"K": [3.4, 3.45, 3.5, 3.6]}))
    assert encoded[0].codes.tolist()[::2] == [1, encoded[0].alphabet.unobserved]
    assert encoded[0].codes[3] == 0 and encoded[0].bad_rows.tolist() == [1, 2]


def test_unknown_interval_state_is_named_with_its_key_path(default_model, tmp_path):
    book = load_codebook(write(tmp_path, '[nodes.potassium_deficiency]\ncolumn = "K"\nintervals = [ { state = '
                                         '"present", high = 3.5 }, { state = "normal", low = 3.5 } ]\n'))
    with pytest.raises(InputError) as error:
        default_model.score(pd.DataFrame({"K": [4]}), codebook=book)
    assert "book.toml, nodes.potassium_deficiency.intervals[1].state: 'normal' is not a state of " \
           "potassium_deficiency" in str(error.value)


# --- survey design columns -----------------------------------------------------------------

def test_design_table_is_parsed_and_its_columns_pass_through(default_model):
    book = Codebook.from_dict({"codebook": {"id_columns": ["ID"]},
                               "design": {"weights": "W", "strata": "S", "psu": "P", "fpc": "F"},
                               "nodes": {"fatigue": {"column": "TIRED", "code_set": "yes_no"}}})
    assert book.design == {"weights": "W", "strata": "S", "psu": "P", "fpc": "F"}
    assert book.keep_columns == []
    frame = pd.DataFrame({"ID": [1], "W": [2.5], "S": [3], "P": [1], "F": [100], "TIRED": ["yes"], "X": [0]})
    scored = default_model.score(frame, codebook=book)
    assert list(scored.columns[:5]) == ["ID", "W", "S", "P", "F"] and "X" not in scored
    # design columns pass through when the data has them; scoring never needs them
    scored = default_model.score(frame.drop(columns=["S", "F"]), codebook=book)
    assert list(scored.columns[:3]) == ["ID", "W", "P"]


@pytest.mark.parametrize("design, expected", [
    ('weight = "W"', ["book.toml, design.weight", "unknown key", "did you mean 'weights'"]),
    ("weights = 3", ["book.toml, design.weights", "got 3; expected the name of the survey's weights column"]),
    ('psu = "TIRED"', ["book.toml, design.psu", "column 'TIRED' is also mapped to node fatigue"]),
])
def test_design_errors_name_the_file_and_key(tmp_path, design, expected):
    text = f'[design]\n{design}\n[nodes.fatigue]\ncolumn = "TIRED"\ncode_set = "yes_no"\n'
    with pytest.raises(InputError) as error:
        load_codebook(write(tmp_path, text))
    for part in expected:
        assert part in str(error.value)


# --- the shipped NHANES and BRFSS codebooks ---------------------------------------------------

NHANES_DESIGN = {"SEQN": [1, 2, 3], "WTINT2YR": [1e4, 2e4, 3e4], "WTMEC2YR": [1.1e4, 2.1e4, 3.1e4],
                 "SDMVSTRA": [134, 135, 136], "SDMVPSU": [1, 2, 1]}


@pytest.fixture(scope="module")
def strata_model():
    return bayescramp.load_model(DATA / "strata.toml")


@pytest.mark.parametrize("name, design", [
    ("nhanes", {"weights": "WTMEC2YR", "strata": "SDMVSTRA", "psu": "SDMVPSU"}),
    ("brfss", {"weights": "_LLCPWT", "strata": "_STSTR", "psu": "_PSU"}),
    ("example", {"weights": "WTINT2YR", "strata": "SDMVSTRA", "psu": "SDMVPSU"}),
])
def test_shipped_codebooks_load_by_name_with_their_design(name, design):
    book = load_codebook(name)
    assert book.design == design
    assert book.source == f"{name}_codebook.toml"


def test_nhanes_codebook_scores_as_the_evidence_it_stands_for(strata_model):
    frame = pd.DataFrame({**NHANES_DESIGN,
                          "RIAGENDR": [2, 1, 2], "RIDAGEYR": [25, 80, 40],
                          "LBXSKSI": [3.2, 3.5, np.nan], "LBXSCA": [9.0, 8.49, 8.5],
                          "LBXFER": [12.0, 30.0, 29.9], "LBXVIDMS": [40.0, 50.0, 120.0],
                          "KIQ022": [2, 9, 1], "SLQ160": [3, 0, 7], "DPQ040": [3, 1, 2]})
    evidence = [
        {"sex": "female", "age_group": "18_39", "potassium_deficiency": "present", "calcium_deficiency": "absent",
         "iron_deficiency": "present", "vitamin_d_deficiency": "present", "chronic_kidney_disease": "no",
         "leg_cramps": "yes", "cramp_timing": "night", "fatigue": "yes"},
        {"sex": "male", "age_group": "65_plus", "potassium_deficiency": "absent", "calcium_deficiency": "present",
         "iron_deficiency": "absent", "vitamin_d_deficiency": "absent", "cramp_timing": ["no_cramps", "day"],
         "fatigue": "no"},
        {"sex": "female", "age_group": "40_64", "calcium_deficiency": "absent", "iron_deficiency": "present",
         "vitamin_d_deficiency": "absent", "chronic_kidney_disease": "yes", "fatigue": "yes"},
    ]
    scored = strata_model.score(frame, codebook="nhanes", targets=["magnesium_deficiency", "diuretic"])
    assert list(scored.columns[:5]) == ["SEQN", "WTINT2YR", "WTMEC2YR", "SDMVSTRA", "SDMVPSU"]
    for row, case in enumerate(evidence):
        expected = strata_model.posterior(case, targets=["magnesium_deficiency", "diuretic"])
        assert scored["p_magnesium_deficiency"][row] == pytest.approx(
            expected["magnesium_deficiency"]["present"], abs=1e-12)
        assert scored["p_diuretic__loop"][row] == pytest.approx(expected["diuretic"]["loop"], abs=1e-12)


def test_nhanes_codebook_rejects_children_with_the_age_intervals(strata_model):
    frame = pd.DataFrame({**NHANES_DESIGN, "RIAGENDR": [2, 1, 2], "RIDAGEYR": [25, 12, 80]})
    with pytest.raises(InputError) as error:
        strata_model.score(frame, codebook="nhanes")
    assert ("row 1, column 'RIDAGEYR': got 12; expected a number (years) in [18, 40) (18_39); [40, 65) (40_64); "
            "[65, inf) (65_plus); or ., blank (no finding) [nhanes_codebook.toml, nodes.age_group]") in str(error.value)


def test_brfss_codebook_scores_as_the_evidence_it_stands_for(strata_model):
    frame = pd.DataFrame({"_STATE": [1, 1, 2], "SEQNO": [2022000001, 2022000002, 2022000001],
                          "_LLCPWT": [500.0, 800.0, 650.0], "_STSTR": [11011, 11012, 21011], "_PSU": [1, 2, 3],
                          "SEXVAR": [2, 1, 2], "_AGE80": [18, 64, 80], "CHCKDNY2": [1, 7, 2]})
    evidence = [{"sex": "female", "age_group": "18_39", "chronic_kidney_disease": "yes"},
                {"sex": "male", "age_group": "40_64"},
                {"sex": "female", "age_group": "65_plus", "chronic_kidney_disease": "no"}]
    scored = strata_model.score(frame, codebook="brfss", targets=["iron_deficiency"])
    assert list(scored.columns[:5]) == ["_STATE", "SEQNO", "_LLCPWT", "_STSTR", "_PSU"]
    assert scored["p_iron_deficiency"].tolist() == pytest.approx(
        [strata_model.posterior(e, targets=["iron_deficiency"])["iron_deficiency"]["present"] for e in evidence],
        abs=1e-12)


def test_entry_for_a_node_the_model_lacks_is_skipped_unless_its_column_is_in_the_data(tiny_model):
    book = Codebook.from_dict({"nodes": {"symptom": {"column": "S", "code_set": "yes_no"},
                                         "sex": {"column": "RIAGENDR", "codes": {"1": "male", "2": "female"}}}})
    scored = tiny_model.score(pd.DataFrame({"S": ["yes"]}), codebook=book, targets=["x_deficiency"])
    assert scored["p_x_deficiency"][0] == pytest.approx(0.563342318, abs=1e-9)  # tests/conftest.py
    with pytest.raises(InputError) as error:
        tiny_model.score(pd.DataFrame({"S": ["yes"], "RIAGENDR": [1]}), codebook=book)
    assert "codebook, nodes.sex: the model has no node 'sex' (its column 'RIAGENDR' is in data)" in str(error.value)


@pytest.mark.parametrize("name", ["nhanes", "brfss"])
def test_shipped_codebooks_work_with_the_default_model(default_model, name):
    # every node a shipped codebook maps is a node of the default model, and a full row scores
    book = load_codebook(name)
    network = default_model.network
    values = {"RIAGENDR": 2, "RIDAGEYR": 50, "LBXSKSI": 3.1, "LBXSCA": 9.2, "LBXFER": 25.0, "LBXVIDMS": 60.0,
              "KIQ022": 2, "SLQ160": 4, "DPQ040": 0, "SEXVAR": 1, "_AGE80": 70, "CHCKDNY2": 1}
    passthrough = {column: [1] for column in [*book.id_columns, *book.keep_columns]}
    assert not [entry.node for entry in book.entries if entry.node not in network.states]
    frame = pd.DataFrame({**passthrough, **{entry.column: [values[entry.column]] for entry in book.entries}})
    scored = default_model.score(frame, codebook=book)
    assert scored["status"].tolist() == ["ok"]


def test_cli_finds_a_shipped_codebook_by_name(tmp_path):
    from bayescramp.cli import main

    frame = pd.DataFrame({**NHANES_DESIGN, "RIAGENDR": [1, 2, 2], "RIDAGEYR": [33, 47, 80],
                          "LBXSKSI": ["3.1", ".", ""], "LBXFER": ["45", "12", "8"]})
    frame.to_csv(tmp_path / "labs.csv", index=False)
    assert main(["score", str(tmp_path / "labs.csv"), "--codebook", "nhanes", "-o", str(tmp_path / "out.csv"),
                 "--priors", str(DATA / "strata.toml"), "--quiet"]) == 0
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored.columns[:5]) == list(NHANES_DESIGN) and (scored["status"] == "ok").all()


@pytest.mark.parametrize("node", ["potassium_deficiency", "iron_deficiency", "vitamin_d_deficiency"])
def test_nhanes_lab_cut_offs_are_those_of_the_node_descriptions(default_model, node):
    entry = next(e for e in load_codebook("nhanes").entries if e.node == node)
    (cut_off,) = {interval.high for interval in entry.intervals if interval.state == "present"}
    assert {interval.low for interval in entry.intervals if interval.state == "absent"} == {cut_off}
    description = default_model.spec.nodes[node].description
    assert f"below {cut_off:g} {entry.units}" in description


def test_serum_magnesium_maps_by_the_cut_off_the_nhanes_codebook_documents(default_model):
    book = Codebook.from_dict({"nodes": {"magnesium_deficiency": {"column": "MG", "units": "mmol/L", "intervals": [
        {"state": "present", "high": 0.70}, {"state": "absent", "low": 0.70}]}}})
    encoded, _ = book.encoder()(default_model.network, pd.DataFrame({"MG": ["0.69", "0.70", "0.85", ""]}))
    assert encoded[0].codes.tolist() == [1, 0, 0, encoded[0].alphabet.unobserved]
    assert "0.70" in default_model.spec.nodes["magnesium_deficiency"].description  # "below about 0.70-0.75 mmol/L"
