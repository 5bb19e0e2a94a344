"""scoring.py: the one evidence dispatcher, the pattern cache, invalid cells, pass-through columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescramp import EvidenceError, InputError
from bayescramp.evidence import BatchEvidence, encode_column
from bayescramp.reference import oracle_posterior
from bayescramp.scoring import (
    PatternCache,
    as_evidence,
    cell_problems,
    invalid_counts,
    score_evidence,
    score_frame,
    target_columns,
)


def test_as_evidence_takes_a_case_a_table_or_evidence(tiny_model):
    network = tiny_model.network
    case = as_evidence(network, {"symptom": "yes"})
    assert case.n_rows == 1 and case.case == {"symptom": "yes"}
    table = as_evidence(network, pd.DataFrame({"symptom": ["yes", None]}, index=["p", "q"]))
    assert table.n_rows == 2 and table.case is None and list(table.index) == ["p", "q"]
    assert as_evidence(network, table) is table


def test_as_evidence_refuses_unreadable_cells_and_unknown_nodes(tiny_model):
    with pytest.raises(InputError, match=r"data, row 1, column 'symptom': got 'often'"):
        as_evidence(tiny_model.network, pd.DataFrame({"symptom": ["yes", "often"]}))
    with pytest.raises(EvidenceError, match="evidence names unknown node 'zinc'"):
        as_evidence(tiny_model.network, {"zinc": "yes"})
    with pytest.raises(InputError, match="column 0 \\(int\\) is not named by text"):
        as_evidence(tiny_model.network, pd.DataFrame({0: ["yes"]}), caller="explain")


def test_score_frame_matches_the_hand_solution(tiny_model):
    # P(x_deficiency = present | symptom = yes) = 0.1045 / 0.1855 (tests/conftest.py)
    scored = score_frame(tiny_model.network, pd.DataFrame({"symptom": ["yes", None]}), targets=["x_deficiency"])
    assert scored["p_x_deficiency"].iloc[0] == pytest.approx(0.1045 / 0.1855, abs=1e-12)
    assert scored["p_x_deficiency"].iloc[1] == pytest.approx(0.19, abs=1e-12)
    assert scored["evidence_probability"].tolist() == pytest.approx([0.1855, 1.0])


def test_score_frame_matches_pgmpy_on_a_small_cohort(default_model):
    cohort = default_model.simulate(30, rng=5, missing=0.3)
    targets = default_model.default_targets
    scored = score_frame(default_model.network, cohort, targets=targets)
    pgmpy_model = default_model.to_pgmpy()
    for r in range(len(cohort)):
        evidence = {k: v for k, v in cohort.iloc[r].items() if isinstance(v, str)}
        expected = oracle_posterior(pgmpy_model, evidence, targets)
        for name, node, k in target_columns(default_model.network, targets):
            assert scored[name].iloc[r] == pytest.approx(expected[node][k], abs=1e-9)


def test_chunked_scoring_equals_one_chunk_and_keeps_the_index(default_model):
    cohort = default_model.simulate(40, rng=3, missing=0.2)
    cohort.index = pd.Index([f"id{k}" for k in range(len(cohort))], name="person")
    whole = score_frame(default_model.network, cohort)
    pieces = score_frame(default_model.network, cohort, chunk_size=7)
    pd.testing.assert_frame_equal(whole, pieces)
    assert whole.index.equals(cohort.index)


def test_flagged_rows_carry_their_reason_and_no_posterior(tiny_model):
    scored = score_frame(tiny_model.network, pd.DataFrame({"symptom": ["yes", "often", "no"]}), on_invalid="flag")
    assert scored["status"].tolist()[0] == "ok"
    assert scored["status"].iloc[1].startswith("invalid: column 'symptom' got 'often'; expected")
    assert np.isnan(scored.filter(like="p_").iloc[1]).all()
    assert np.isnan(scored["evidence_probability"].iloc[1])


def test_impossible_rows_are_flagged_not_raised(default_model):
    frame = pd.DataFrame({"leg_cramps": ["no", "yes"], "cramp_timing": ["night", "night"]})
    scored = score_frame(default_model.network, frame)
    assert scored["status"].tolist() == ["impossible_evidence", "ok"]
    assert scored["evidence_probability"].iloc[0] == 0.0


def test_a_passthrough_column_may_not_be_overwritten(tiny_model):
    frame = pd.DataFrame({"status": ["x"], "symptom": ["yes"]})
    with pytest.raises(InputError, match="input column 'status' would be overwritten by an output column"):
        score_frame(tiny_model.network, frame)


def test_on_invalid_must_be_error_or_flag(tiny_model):
    with pytest.raises(InputError, match="on_invalid: got 'skip'; expected \"error\" or \"flag\""):
        score_frame(tiny_model.network, pd.DataFrame({"symptom": ["yes"]}), on_invalid="skip")


def test_pattern_cache_propagates_each_pattern_once_across_chunks(tiny_model):
    column = encode_column(["yes", "no", "yes", None, "no"] * 4, "symptom", ("no", "yes"))   # period 5
    evidence = BatchEvidence.from_columns([column])
    cache = PatternCache(tiny_model.network, evidence.nodes, evidence.alphabets, ["x_deficiency"])
    first, _, _ = cache.evaluate(evidence.rows(0, 10))
    second, _, _ = cache.evaluate(evidence.rows(10, 20))
    assert cache.n_propagated == 3                      # yes, no, blank
    np.testing.assert_array_equal(first, second)


def test_pattern_cache_refuses_evidence_on_other_nodes(tiny_model):
    cache = PatternCache(tiny_model.network, ("symptom",), (BatchEvidence.from_case(
        tiny_model.network.states, {"symptom": "yes"}).alphabets[0],), ["x_deficiency"])
    with pytest.raises(InputError, match="PatternCache: evidence on nodes \\['medication'\\]"):
        cache.evaluate(BatchEvidence.from_case(tiny_model.network.states, {"medication": "drug"}))


def test_score_evidence_and_problem_listing_read_the_batch(tiny_model):
    evidence = BatchEvidence.from_columns([encode_column(["yes", "?", "?", "no"], "symptom", ("no", "yes"))])
    scored = score_evidence(tiny_model.network, evidence, ["x_deficiency"])
    assert scored.invalid.tolist() == [False, True, True, False]
    assert len(set(scored.status[1:3])) == 1            # one reason per distinct bad value
    listed, n_bad = cell_problems(evidence, source="f.csv", row_label=lambda r: f"line {r + 2}")
    assert n_bad == 2 and listed[0].startswith("f.csv, line 3, column 'symptom': got '?'")
    assert invalid_counts(evidence) == {"symptom": 2}
