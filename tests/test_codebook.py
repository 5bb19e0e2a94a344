"""Codebooks: TOML format, named code sets, sets and likelihoods, and their error messages."""

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import Codebook, InputError, load_codebook
from bayescramp.survey import example_paths

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
