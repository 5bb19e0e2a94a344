"""Sensitivity functions, tuning, tornado and the sensitivity CLI.

The oracle is brute force: change one parameter with ``with_parameters`` (which co-varies
the rest of its row proportionally), recompile and propagate again.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayescramp
from bayescramp import SpecError
from bayescramp.cli import main
from bayescramp.engine import compile_spec, propagate
from bayescramp.evidence import BatchEvidence, finding_likelihood
from bayescramp.sensitivity import cd_distance, parameter_effects, sensitivity_functions
from bayescramp.spec import probability_table, with_parameters

OVERLAYS = [(), ("default", "seed_claims"), ("default", "older_adults")]
CASE = {"leg_cramps": "yes", "diuretic": "thiazide"}


def random_cases(model, rng, n_rows):
    """Evidence of random hard, set and soft findings on random nodes (blank = all ones)."""
    likelihood = {node: np.ones((n_rows, len(model.states(node)))) for node in model.nodes}
    for r in range(n_rows):
        for node in model.nodes:
            if rng.random() > 0.45:
                continue
            states = list(model.states(node))
            kind = rng.random()
            if kind < 0.6:
                value = states[rng.integers(len(states))]
            elif kind < 0.75 and len(states) > 2:
                value = [states[i] for i in rng.choice(len(states), 2, replace=False)]
            else:
                value = dict(zip(states, rng.uniform(0.05, 1.0, len(states))))
            likelihood[node][r] = finding_likelihood(node, states, value)
    return BatchEvidence.from_likelihoods(likelihood)


def brute_force_posterior(spec, parameter_id, theta, likelihood, target):
    network = compile_spec(with_parameters(spec, {parameter_id: theta}))
    node, state = target
    result = propagate(network, likelihood, targets=[node])
    return result.marginals[node][:, network.states[node].index(state)]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=["default", "seed_claims", "older_adults"])
def test_sensitivity_function_matches_brute_force_with_parameters(overlay, rng):
    model = bayescramp.load_model(*overlay)
    likelihood = random_cases(model, rng, 10)
    # a deficiency, a child-of-a-table target, a noisy-OR child and a root (often observed too)
    targets = [("potassium_deficiency", "present"), ("cramp_timing", "day"), ("leg_cramps", "yes"),
               ("diuretic", "loop")]
    for target in targets:
        functions = sensitivity_functions(model.spec, model.network, likelihood, targets=target)
        for j, effect in enumerate(functions.effects):
            thetas = [0.0, 1.0, effect.high, float(rng.uniform())]
            for theta in thetas:
                expected = brute_force_posterior(model.spec, effect.id, theta, likelihood, target)
                got = functions.evaluate(np.full(len(functions.effects), theta))[:, j]
                both_nan = np.isnan(expected) & np.isnan(got)
                assert np.array_equal(np.isnan(expected), np.isnan(got)), (effect.id, theta)
                assert np.allclose(got[~both_nan], expected[~both_nan], rtol=0, atol=1e-9), (target, effect.id, theta)


def test_sensitivity_function_of_tiny_network_by_hand(tiny_model):
    # symptom = yes, link l of symptom <- x_deficiency (conftest): P(yes | present) = 1 - 0.9 (1 - l)
    #   P(present, e)(l) = 0.19 (0.1 + 0.9 l) = 0.019 + 0.171 l
    #   P(e)(l)          = 0.019 + 0.171 l + 0.81 * 0.1 = 0.1 + 0.171 l
    table = tiny_model.sensitivity({"symptom": "yes"}, targets=("x_deficiency", "present")).set_index("id")
    row = table.loc["link(symptom<-x_deficiency=present)"]
    assert row["alpha"] == pytest.approx(0.171, abs=1e-12)
    assert row["beta"] == pytest.approx(0.019, abs=1e-12)
    assert row["gamma"] == pytest.approx(0.171, abs=1e-12)
    assert row["delta"] == pytest.approx(0.1, abs=1e-12)
    assert row["posterior"] == pytest.approx(0.1045 / 0.1855, abs=1e-12)
    # f'(l) = (αδ − βγ) / (γl + δ)² = (0.0171 − 0.003249) / 0.1855²
    assert row["sensitivity_value"] == pytest.approx((0.0171 - 0.003249) / 0.1855 ** 2, abs=1e-12)
    assert row["posterior_at_low"] == pytest.approx((0.019 + 0.171 * 0.3) / (0.1 + 0.171 * 0.3), abs=1e-12)
    assert row["posterior_at_high"] == pytest.approx((0.019 + 0.171 * 0.7) / (0.1 + 0.171 * 0.7), abs=1e-12)
    assert row["swing"] == pytest.approx(row["posterior_at_high"] - row["posterior_at_low"], abs=1e-15)


def test_sensitivity_value_is_the_derivative(default_model):
    states = default_model.network.states
    functions = sensitivity_functions(default_model.spec, default_model.network,
                                      BatchEvidence.from_case(states, CASE))
    value = functions.value
    step = 1e-6
    numeric = (functions.evaluate(value + step) - functions.evaluate(value - step)) / (2 * step)
    inside = (value > step) & (value < 1 - step)
    assert np.allclose(functions.derivative(value)[0, inside], numeric[0, inside], atol=1e-6)


def test_table_has_the_documented_columns_sorted_by_swing(default_model):
    table = default_model.sensitivity(CASE)
    assert table.columns.tolist() == ["id", "node", "configuration", "value", "low", "high", "alpha", "beta", "gamma",
                                      "delta", "posterior", "sensitivity_value", "posterior_at_low",
                                      "posterior_at_high", "swing"]
    assert len(table) == len(default_model.parameters())
    assert table["swing"].is_monotonic_decreasing
    assert np.allclose(table["posterior"], default_model.posterior(CASE)["potassium_deficiency"]["present"])
    # alpha..delta are absolute: P(y, e) and P(e) at the current value
    pe = default_model.posterior(CASE).evidence_probability
    assert np.allclose(table["gamma"] * table["value"] + table["delta"], pe, rtol=1e-12)
    assert np.allclose((table["alpha"] * table["value"] + table["beta"]) / pe, table["posterior"], rtol=1e-12)


def test_parameters_select_ids_and_nodes(default_model):
    table = default_model.sensitivity(CASE, parameters=["leak(leg_cramps)", "diuretic"])
    parameters = default_model.parameters()
    expected = ["leak(leg_cramps)"] + parameters.loc[parameters["node"] == "diuretic", "id"].tolist()
    assert sorted(table["id"]) == sorted(expected)
    with pytest.raises(bayescramp.InputError, match="unknown parameter id or node 'nope'"):
        default_model.sensitivity(CASE, parameters=["nope"])


@pytest.mark.parametrize("target, message", [
    (("no_such_node", "present"), "unknown node 'no_such_node'"),
    ("potassium_deficiency=maybe", "unknown state 'maybe'"),
    ("diuretic", "expected node=state"),
    (["potassium_deficiency=present", "iron_deficiency=present"], "one posterior at a time"),
])
def test_bad_target_is_one_sentence(default_model, target, message):
    with pytest.raises(bayescramp.InputError, match=message):
        default_model.sensitivity(CASE, targets=target)


def test_impossible_evidence_is_reported(tiny_model):
    never_drug = bayescramp.Model(with_parameters(tiny_model.spec, {"P(medication=drug)": 0.0}))
    with pytest.raises(bayescramp.EvidenceError, match="probability zero"):
        never_drug.sensitivity({"medication": "drug"}, targets=("x_deficiency", "present"))


def test_cohort_rows_equal_single_cases_and_mean_averages_them(default_model):
    cohort = default_model.simulate(40, rng=3, missing=0.3)
    rows = default_model.sensitivity(cohort, summary="rows")
    assert len(rows) == 40 * len(default_model.parameters())
    for r in (0, 17, 39):
        case = {k: v for k, v in cohort.iloc[r].items() if v is not None and not pd.isna(v)}
        single = default_model.sensitivity(case).set_index("id")
        mine = rows[rows["row"] == r].set_index("id").loc[single.index]
        for column in ("alpha", "beta", "gamma", "delta", "posterior", "swing", "sensitivity_value"):
            assert np.allclose(mine[column], single[column], rtol=1e-12, atol=1e-15), column
    mean = default_model.sensitivity(cohort).set_index("id")
    by_id = rows.groupby("id")[["swing", "posterior_at_high", "sensitivity_value"]].mean()
    assert np.allclose(mean.loc[by_id.index, "swing"], by_id["swing"], rtol=1e-12)
    assert np.allclose(mean.loc[by_id.index, "posterior_at_high"], by_id["posterior_at_high"], rtol=1e-12)
    assert (mean["n_rows"] == 40).all()
    assert np.allclose(mean.loc[by_id.index, "swing_max"], rows.groupby("id")["swing"].max())


def test_cohort_with_bad_cell_names_row_and_column(default_model):
    frame = pd.DataFrame({"leg_cramps": ["yes", "sometimes"]})
    with pytest.raises(bayescramp.InputError, match=r"row 1, column 'leg_cramps': got 'sometimes'"):
        default_model.sensitivity(frame)
    with pytest.raises(bayescramp.InputError, match="summary"):
        default_model.sensitivity(frame.iloc[:1], summary="median")


@settings(max_examples=25, deadline=None)
@given(theta=st.floats(0.0, 1.0), row=st.integers(0, 5))
def test_sensitivity_function_is_a_monotone_probability(default_model, theta, row):
    rng = np.random.default_rng(row)
    likelihood = random_cases(default_model, rng, 1)
    functions = sensitivity_functions(default_model.spec, default_model.network, likelihood)
    if functions.impossible[0]:
        return
    at = functions.evaluate(np.full(len(functions.effects), theta))[0]
    ends = functions.evaluate(np.array([[0.0], [1.0]]))
    ok = ~np.isnan(at) & ~np.isnan(ends).any(axis=0)
    assert ((at[ok] >= -1e-12) & (at[ok] <= 1 + 1e-12)).all()
    low, high = np.minimum(ends[0], ends[1]), np.maximum(ends[0], ends[1])
    assert ((at[ok] >= low[ok] - 1e-9) & (at[ok] <= high[ok] + 1e-9)).all()


def test_with_parameters_sets_several_entries_of_one_row(default_model):
    # regression: setting two entries of one row used to rescale the first by the second's co-variation
    spec = with_parameters(default_model.spec, {"P(diuretic=thiazide|age_group=40_64)": 0.2,
                                                "P(diuretic=loop|age_group=40_64)": 0.1})
    before, after = probability_table(default_model.spec, "diuretic"), probability_table(spec, "diuretic")
    row = default_model.states("age_group").index("40_64")
    table = after[row]
    assert table[1] == pytest.approx(0.2) and table[2] == pytest.approx(0.1)
    # the rest (none = remainder, potassium_sparing, thiazide_potassium_sparing) shares 0.7 in its old proportions
    rest = before[row][[0, 3, 4]]
    assert table[[0, 3, 4]] == pytest.approx(rest * 0.7 / rest.sum())
    assert table.sum() == pytest.approx(1.0)
    assert np.array_equal(np.delete(after, row, axis=0), np.delete(before, row, axis=0))
    with pytest.raises(SpecError, match="sum to 1.1"):
        with_parameters(default_model.spec, {"P(diuretic=thiazide|age_group=40_64)": 0.6,
                                             "P(diuretic=loop|age_group=40_64)": 0.5})


def test_parameter_effect_reproduces_with_parameters_tables(default_model):
    spec = default_model.spec
    for effect in parameter_effects(spec, default_model.network):
        theta = 0.5 * (effect.low + effect.high) + 0.01
        theta = min(theta, 1.0)
        expected = probability_table(with_parameters(spec, {effect.id: theta}), effect.node)
        assert np.allclose(effect.table(theta), expected, atol=1e-14), effect.id


# ----------------------------------------------------------------------------------------- tuning

def test_tune_reaches_the_threshold_exactly(default_model):
    table = default_model.tune(CASE, targets=("potassium_deficiency", "present"), threshold=0.2)
    reached = table[table["achievable"]]
    assert len(reached) >= 3
    for row in reached.itertuples():
        changed = default_model.with_parameters({row.id: row.new_value})
        assert changed.posterior(CASE)["potassium_deficiency"]["present"] == pytest.approx(0.2, abs=1e-9)
    assert reached["cd_distance"].is_monotonic_increasing
    unreachable = table[~table["achievable"]]
    assert unreachable["new_value"].isna().all()
    assert unreachable["note"].str.contains("no value of .* in \\[0, 1\\] meets", regex=True).all()


def test_tune_cd_distance_of_a_table_entry_is_the_logit_change(default_model):
    # a table entry (a noisy-OR link changes several CPT entries by different ratios)
    parameter = "P(iron_deficiency=present|sex=female,age_group=18_39)"
    case = {"sex": "female", "age_group": "18_39", "pale_skin": "yes"}
    row = default_model.tune(case, targets="iron_deficiency=present", threshold=0.5, parameters=[parameter]).iloc[0]
    assert row["achievable"] and row["value"] == default_model.parameters().set_index("id").loc[parameter, "value"]

    def logit(p):
        return math.log(p / (1 - p))

    assert row["cd_distance"] == pytest.approx(abs(logit(row["new_value"]) - logit(row["value"])), rel=1e-12)


def test_tune_against_a_rival_finds_where_the_ranking_flips(default_model):
    table = default_model.tune(CASE, targets="potassium_deficiency=present",
                               threshold=("magnesium_deficiency", "present"))
    row = table.iloc[0]
    assert row["achievable"]
    changed = default_model.with_parameters({row["id"]: row["new_value"]}).posterior(CASE)
    assert changed["potassium_deficiency"]["present"] == pytest.approx(changed["magnesium_deficiency"]["present"],
                                                                       abs=1e-9)


def test_tune_rejects_bad_threshold_and_cohorts(default_model):
    with pytest.raises(bayescramp.InputError, match="threshold got 1.5"):
        default_model.tune(CASE, targets="potassium_deficiency=present", threshold=1.5)
    with pytest.raises(bayescramp.InputError, match="one case"):
        default_model.tune(pd.DataFrame({"leg_cramps": ["yes"]}), targets="potassium_deficiency=present", threshold=0.5)


def test_cd_distance_counts_zero_entries():
    assert cd_distance(np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])) == pytest.approx(math.log(3))
    assert cd_distance(np.array([1.0, 0.0]), np.array([0.9, 0.1])) == math.inf


# --------------------------------------------------------------------------------- tornado and CLI

def test_plot_tornado_writes_a_png(default_model, tmp_path):
    from bayescramp.plotting import plot_tornado

    table = default_model.sensitivity(CASE)
    figure = plot_tornado(table, top=6)
    path = tmp_path / "tornado.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert len(labels) == 6
    # the largest swing on top, its id in words
    top = table.iloc[0]["id"].replace("_", " ").replace("|", " | ").replace(",", ", ")
    assert " ".join(labels[-1].split()).startswith(" ".join(top.split()))


def test_plot_tornado_rejects_a_rows_table(default_model):
    from bayescramp.plotting import plot_tornado

    rows = default_model.sensitivity(default_model.simulate(3, rng=0), summary="rows")
    with pytest.raises(bayescramp.InputError, match="cohort rows"):
        plot_tornado(rows)


def test_cli_sensitivity_table_json_and_plot(tmp_path, capsys):
    assert main(["sensitivity", "--evidence", "leg_cramps=yes", "diuretic=thiazide", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "link(potassium_deficiency<-diuretic=thiazide)" in out
    plot = tmp_path / "tornado.png"
    assert main(["sensitivity", "--evidence", "leg_cramps=yes", "--target", "magnesium_deficiency=present",
                 "--top", "4", "--json", "--plot", str(plot)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["target"] == "magnesium_deficiency=present"
    assert len(payload["parameters"]) == 4
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_sensitivity_errors_are_one_sentence(capsys):
    assert main(["sensitivity", "--target", "potassium_deficiency=often"]) == 1
    assert "unknown state 'often'" in capsys.readouterr().err
    assert main(["sensitivity", "--plot", "out.gif"]) == 1
    assert "--plot out.gif" in capsys.readouterr().err
    assert main(["sensitivity", "--help"]) == 0


@pytest.mark.parametrize("overlay", OVERLAYS, ids=["default", "seed_claims", "older_adults"])
def test_core_path_and_junction_tree_give_the_same_coefficients(overlay, rng):
    model = bayescramp.load_model(*overlay)
    assert model.network.core is not None
    likelihood = random_cases(model, rng, 30)
    for target in [("potassium_deficiency", "present"), ("cramp_timing", "night"), ("fatigue", "yes")]:
        fast = sensitivity_functions(model.spec, model.network, likelihood, targets=target)
        slow = sensitivity_functions(model.spec, model.network, likelihood, targets=target, method="junction_tree")
        assert np.array_equal(fast.impossible, slow.impossible)
        ok = ~fast.impossible
        for name in ("alpha", "beta", "gamma", "delta"):     # impossible rows too (absolute there)
            assert np.allclose(getattr(fast, name), getattr(slow, name), rtol=1e-9, atol=1e-12), name
        assert np.allclose(fast.posterior[ok], slow.posterior[ok], atol=1e-12)
        assert np.allclose(fast.log_evidence_probability[ok], slow.log_evidence_probability[ok], atol=1e-9)


@pytest.mark.parametrize("index", [
    pd.Index([12, 4, 8, 0], name="pid"),
    pd.Index(["a", "b", "a", "b"]),
    pd.MultiIndex.from_tuples([("x", 2), ("y", 1), ("x", 1), ("y", 0)], names=["site", "visit"]),
], ids=["named non-monotonic", "duplicate", "multiindex"])
def test_cohort_rows_carry_the_input_index(default_model, index):
    cohort = default_model.simulate(4, rng=8, missing=0.2).set_axis(index, axis=0)
    parameters = ["diuretic", "potassium_deficiency"]
    rows = default_model.sensitivity(cohort, summary="rows", parameters=parameters)
    n_params = len(rows) // 4
    pd.testing.assert_index_equal(rows.index, index.repeat(n_params))
    assert rows["row"].tolist() == list(np.repeat(np.arange(4), n_params))
    for position in range(4):
        case = {k: v for k, v in cohort.iloc[position].items() if v is not None and not pd.isna(v)}
        single = default_model.sensitivity(case, parameters=parameters).set_index("id")
        mine = rows.iloc[position * n_params:(position + 1) * n_params].set_index("id").loc[single.index]
        assert np.allclose(mine["posterior"], single["posterior"], rtol=1e-12)
