"""Retractions, weights of evidence, data conflict and top findings (bayescramp.explain)."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

import bayescramp
from bayescramp.cli import main
from bayescramp.explain import EXPLAIN_COLUMNS, explain, top_findings

CASES = [
    {"diuretic": "thiazide", "cramp_timing": "night", "muscle_weakness": "yes", "fatigue": "no"},
    {"leg_cramps": "yes", "abnormal_heart_rhythm": "yes", "seizures": "no", "pale_skin": "yes"},
    {"diuretic": ["thiazide", "loop"], "muscle_spasms": {"yes": 0.8, "no": 0.2}, "nausea": "yes"},
    {"cramp_timing": "day"},
]


def _without(evidence, node):
    return {k: v for k, v in evidence.items() if k != node}


@pytest.mark.parametrize("evidence", CASES)
def test_retracted_posterior_equals_fresh_posterior(default_model, evidence):
    table = default_model.explain(evidence)
    assert set(table["finding"]) == set(evidence)
    for row in table.itertuples():
        fresh = default_model.posterior(_without(evidence, row.finding), targets=[row.target])
        assert row.posterior_without == pytest.approx(fresh[row.target][row.state], abs=1e-9)
        full = default_model.posterior(evidence, targets=[row.target])
        assert row.posterior == pytest.approx(full[row.target][row.state], abs=1e-9)
        assert row.prior == pytest.approx(default_model.marginals()[row.target][row.state], abs=1e-9)


@pytest.mark.parametrize("evidence", CASES)
def test_weights_add_up_to_the_posterior_log_odds(default_model, evidence):
    table = default_model.explain(evidence)
    for (target, state), group in table.groupby(["target", "state"], sort=False):
        prior, posterior = group["prior"].iloc[0], group["posterior"].iloc[0]
        assert logit(prior) + group["weight"].sum() == pytest.approx(logit(posterior), abs=1e-9)


def test_weights_are_sequential_in_node_order(default_model):
    evidence = CASES[0]
    table = default_model.explain(evidence, targets="magnesium_deficiency")
    order = [n for n in default_model.nodes if n in evidence]
    assert table["finding"].tolist() == order
    assert table["order"].tolist() == list(range(1, len(order) + 1))
    for k, row in enumerate(table.itertuples()):
        before = {n: evidence[n] for n in order[:k]}
        after = {n: evidence[n] for n in order[:k + 1]}
        p_before = default_model.posterior(before)["magnesium_deficiency"]["present"]
        p_after = default_model.posterior(after)["magnesium_deficiency"]["present"]
        assert row.weight == pytest.approx(logit(p_after) - logit(p_before), abs=1e-9)
        assert row.weight_given_rest == pytest.approx(logit(row.posterior) - logit(row.posterior_without), abs=1e-12)
        assert row.change == pytest.approx(row.posterior - row.posterior_without, abs=1e-15)


def test_custom_order_changes_weights_but_not_their_sum(default_model):
    evidence = CASES[0]
    forward = default_model.explain(evidence, targets="potassium_deficiency")
    backward = default_model.explain(evidence, targets="potassium_deficiency", order=list(reversed(list(evidence))))
    assert backward["finding"].tolist() == list(reversed(list(evidence)))
    assert forward["weight"].sum() == pytest.approx(backward["weight"].sum(), abs=1e-9)
    assert not np.allclose(forward.set_index("finding")["weight"], backward.set_index("finding")["weight"])


def test_order_missing_an_observed_node_is_an_error(default_model):
    with pytest.raises(bayescramp.InputError, match="order: node 'fatigue'"):
        default_model.explain(CASES[0], order=["diuretic", "cramp_timing", "muscle_weakness"])


@pytest.mark.parametrize("evidence", CASES)
def test_conflict_is_log_of_marginals_over_joint(default_model, evidence):
    table = default_model.explain(evidence)
    marginals = default_model.marginals()
    expected = -default_model.posterior(evidence).log_evidence_probability
    for node, value in evidence.items():
        states = default_model.states(node)
        likelihood = np.zeros(len(states))
        if isinstance(value, str):
            likelihood[states.index(value)] = 1
        elif isinstance(value, dict):
            for state, weight in value.items():
                likelihood[states.index(state)] = weight
        else:
            for state in value:
                likelihood[states.index(state)] = 1
        expected += np.log(likelihood @ marginals[node].to_numpy())
    assert np.allclose(table["conflict"], expected, atol=1e-9)


def test_tiny_network_by_hand(tiny_model):
    # symptom = yes alone: prior 0.19, posterior 0.563342... (conftest); the weight is log LR = log(0.55 / 0.1)
    table = tiny_model.explain({"symptom": "yes"}, targets="x_deficiency")
    row = table.iloc[0]
    assert row.prior == pytest.approx(0.19, abs=1e-12)
    assert row.posterior == pytest.approx(0.1045 / 0.1855, abs=1e-12)
    assert row.posterior_without == pytest.approx(0.19, abs=1e-12)
    assert row.weight == pytest.approx(np.log(0.55 / 0.1), abs=1e-12)
    assert row.conflict == pytest.approx(0.0, abs=1e-12)


def test_table_equals_case_by_case(default_model, rng):
    cohort = default_model.simulate(40, rng=rng, missing=0.4)
    cohort.index = [f"p{i}" for i in range(len(cohort))]
    table = default_model.explain(cohort)
    assert list(table.columns) == ["row"] + EXPLAIN_COLUMNS
    for label in ["p0", "p7", "p23", "p39"]:
        case = {k: v for k, v in cohort.loc[label].items() if v is not None and v == v}
        expected = default_model.explain(case)
        got = table[table["row"] == label].drop(columns="row").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, atol=1e-12, rtol=0)


def test_no_findings_gives_an_empty_table(default_model):
    assert default_model.explain({}).empty
    assert list(default_model.explain(pd.DataFrame({"fatigue": [None, None]})).columns) == ["row"] + EXPLAIN_COLUMNS


def test_observed_target_is_left_out_by_default(default_model):
    table = default_model.explain({"magnesium_deficiency": "present", "fatigue": "yes"})
    assert "magnesium_deficiency" not in set(table["target"])
    assert "magnesium_deficiency" in set(table["finding"])


def test_impossible_evidence_gives_nan(default_model):
    table = default_model.explain(pd.DataFrame({"leg_cramps": ["no", "yes"], "cramp_timing": ["night", "night"]}))
    assert table.loc[table["row"] == 0, "posterior"].isna().all()
    assert table.loc[table["row"] == 1, "posterior"].notna().all()


def test_bad_cell_is_one_clear_sentence(default_model):
    with pytest.raises(bayescramp.InputError, match=r"row 1, column 'fatigue': got 'sometimes'"):
        default_model.explain(pd.DataFrame({"fatigue": ["yes", "sometimes"]}))


def test_top_findings_match_the_largest_change(default_model, rng):
    cohort = default_model.simulate(60, rng=rng, missing=0.3)
    top = top_findings(default_model.network, cohort)
    table = explain(default_model.network, cohort)
    assert len(top) == len(cohort)
    for target in default_model.default_targets:
        column = top[f"top_finding_{target}"]
        part = table[table["target"] == target].reset_index(drop=True)
        best = part.loc[part.groupby("row")["change"].idxmax()].set_index("row")
        for row in range(len(cohort)):
            if row in best.index and best.loc[row, "change"] > 1e-12:
                assert column[row] == best.loc[row, "finding"]
            else:
                assert pd.isna(column[row])


def test_cli_explain_prints_a_ranked_table(capsys):
    code = main(["explain", "--evidence", "diuretic=thiazide", "cramp_timing=night", "muscle_weakness=yes",
                 "--targets", "potassium_deficiency"])
    out = capsys.readouterr().out
    assert code == 0
    assert "potassium_deficiency" in out and "diuretic=thiazide" in out and "conflict" in out
    lines = [line for line in out.splitlines() if line.strip().startswith(("diuretic=", "cramp_timing=", "muscle_"))]
    changes = [float(line.split()[2]) for line in lines]
    assert changes == sorted(changes, key=abs, reverse=True)


def test_cli_explain_bad_evidence_is_exit_1(capsys):
    assert main(["explain", "--evidence", "fatigue=often"]) == 1
    assert "fatigue='often'" in capsys.readouterr().err


# ---- the input's index comes back (issue 10) ----------------------------------------------

def _labelled_cohort(model, index):
    cohort = model.simulate(len(index), rng=5, missing=0.3)
    cohort.index = index
    return cohort


@pytest.mark.parametrize("index", [
    pd.Index([9, 3, 7, 1, 5, 0], name="pid"),
    pd.Index([2, 2, 1, 1, 2, 1]),
    pd.MultiIndex.from_tuples([("b", 1), ("a", 2), ("a", 1), ("c", 9), ("b", 0), ("c", 1)], names=["site", "n"]),
], ids=["named non-monotonic", "duplicate", "multiindex"])
def test_explain_table_index_holds_each_rows_input_index(default_model, index):
    cohort = _labelled_cohort(default_model, index)
    table = default_model.explain(cohort, targets="potassium_deficiency")
    assert table.index.names == index.names and table.index.nlevels == index.nlevels
    for position in range(len(cohort)):
        case = {k: v for k, v in cohort.iloc[position].items() if v is not None and v == v}
        expected = default_model.explain(case, targets="potassium_deficiency")
        # lines come in input-row order, so the position's lines are the next len(expected) lines
        start = sum(len({k for k, v in cohort.iloc[p].items() if v is not None and v == v})
                    for p in range(position))
        got = table.iloc[start:start + len(expected)]
        assert all(label == index[position] for label in got.index)
        np.testing.assert_allclose(got["posterior"].to_numpy(), expected["posterior"].to_numpy(), atol=1e-12)


def test_explain_of_a_table_without_findings_keeps_the_index_type(default_model):
    frame = pd.DataFrame({"fatigue": [None, None]}, index=pd.Index(["a", "b"], name="pid"))
    table = default_model.explain(frame)
    assert table.empty and table.index.name == "pid"


def test_top_findings_keep_a_multiindex(default_model):
    index = pd.MultiIndex.from_tuples([("x", 2), ("x", 1)], names=["site", "visit"])
    frame = pd.DataFrame({"diuretic": ["thiazide", "none"], "cramp_timing": ["night", None]}, index=index)
    top = top_findings(default_model.network, frame, targets="potassium_deficiency")
    pd.testing.assert_index_equal(top.index, index)
