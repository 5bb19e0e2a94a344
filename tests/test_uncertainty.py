"""Parameter distributions, joint draws and credible intervals."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import bayescramp
from bayescramp import SpecError
from bayescramp.engine import compile_spec
from bayescramp.evidence import BatchEvidence
from bayescramp.sensitivity import sensitivity_functions
from bayescramp.spec import NoisyOrCPD, Parameter, TableCPD, TableRow, parameters_by_id
from bayescramp.uncertainty import (
    beta_parameters,
    case_intervals,
    draw_tables,
    parameter_distributions,
    posterior_intervals,
)

CASE = {"leg_cramps": "yes", "diuretic": "thiazide"}


def _map_parameters(spec, change):
    """A copy of ``spec`` with ``change(parameter)`` applied to every parameter."""
    nodes = {}
    for name, node in spec.nodes.items():
        if isinstance(node.cpd, TableCPD):
            rows = tuple(TableRow(when=row.when, location=row.location,
                                  probability={s: (None if p is None else change(p))
                                               for s, p in row.probability.items()})
                         for row in node.cpd.rows)
            nodes[name] = replace(node, cpd=TableCPD(rows=rows))
        else:
            nodes[name] = replace(node, cpd=NoisyOrCPD(leak=change(node.cpd.leak), links={
                parent: {s: change(q) for s, q in by_state.items()} for parent, by_state in node.cpd.links.items()}))
    return replace(spec, nodes=nodes)


def _only_uncertain(spec, parameter_id):
    return _map_parameters(spec, lambda p: p if p.id == parameter_id else replace(p, low=p.value, high=p.value))


@pytest.fixture(scope="module")
def distributions():
    return parameter_distributions(bayescramp.load_model().spec).set_index("id")


@pytest.mark.parametrize("parameter_id", list(parameters_by_id(bayescramp.load_model().spec)))
def test_beta_has_the_value_as_mean_and_the_range_as_central_95_interval(parameter_id, distributions):
    parameter = parameters_by_id(bayescramp.load_model().spec)[parameter_id][1]
    shapes = beta_parameters(parameter)
    if parameter.low == parameter.high:
        assert shapes is None
        return
    a, b = shapes
    if 0 < parameter.value < 1:
        assert a / (a + b) == pytest.approx(parameter.value, rel=1e-9)
        lower, upper = stats.beta.ppf([0.025, 0.975], a, b)
        # matched in width; exact unless even the widest Beta of that mean is narrower than the range
        widest = distributions.loc[parameter_id]
        assert upper - lower == pytest.approx(min(parameter.high - parameter.low, widest["upper"] - widest["lower"]),
                                              abs=1e-6)
    else:
        # value 0: mode at 0, the range's top at the 97.5% quantile
        assert a == 1.0
        assert stats.beta.ppf(0.975, a, b) == pytest.approx(parameter.high, rel=1e-9)


def test_distribution_override_and_its_errors(tmp_path):
    good = tmp_path / "override.toml"
    good.write_text('[parameters]\n"P(diuretic=thiazide|age_group=40_64)" = { value = 0.09, range = [0.06, 0.12], '
                    'basis = "evidence", '
                    'source = "B3", distribution = { kind = "beta", alpha = 9.0, beta = 91.0 } }\n'
                    '"P(diuretic=loop|age_group=40_64)" = { value = 0.03, range = [0.02, 0.05], basis = "evidence", '
                    'source = "B6", '
                    'distribution = { kind = "fixed" } }\n')
    spec = bayescramp.load_model("default", good).spec
    table = parameter_distributions(spec).set_index("id")
    assert table.loc["P(diuretic=thiazide|age_group=40_64)", ["alpha", "beta"]].tolist() == [9.0, 91.0]
    assert table.loc["P(diuretic=thiazide|age_group=40_64)", "source"] == "override"
    assert table.loc["P(diuretic=loop|age_group=40_64)", "kind"] == "fixed"
    bad = tmp_path / "bad.toml"
    bad.write_text('[parameters]\n"P(diuretic=thiazide|age_group=40_64)" = { value = 0.09, range = [0.06, 0.12], '
                    'basis = "evidence", '
                   'source = "B3", distribution = { kind = "beta", alpha = -1.0, beta = 91.0 } }\n')
    with pytest.raises(SpecError, match=r"bad.toml.*distribution.alpha: got -1.0; expected \{ kind = \"beta\""):
        parameter_distributions(bayescramp.load_model("default", bad).spec)
    with pytest.raises(SpecError, match="kind: got 'normal'"):
        beta_parameters(Parameter("p", 0.2, 0.1, 0.3, distribution={"kind": "normal"}))


def test_drawn_tables_are_normalised_reproducible_and_keep_fixed_entries(default_model):
    spec, network = default_model.spec, default_model.network
    first = draw_tables(spec, network, 300, rng=7)
    again = draw_tables(spec, network, 300, rng=7)
    other = draw_tables(spec, network, 300, rng=8)
    for node, table in first.items():
        assert table.shape == (300,) + network.tables[node].shape
        assert np.allclose(table.sum(axis=-1), 1.0)
        assert (table >= 0).all()
        assert np.array_equal(table, again[node])
    assert not np.array_equal(first["diuretic"], other["diuretic"])
    # structural zeros (range [0, 0]) stay zero in every draw
    assert (first["cramp_timing"][:, 0, 1:] == 0).all()
    # the draws centre on the configured values
    assert first["diuretic"].mean(axis=0) == pytest.approx(network.tables["diuretic"], abs=0.005)


def test_interval_equals_the_point_posterior_when_nothing_is_uncertain(default_model):
    fixed = _map_parameters(default_model.spec, lambda p: replace(p, low=p.value, high=p.value))
    model = bayescramp.Model(fixed)
    result = model.posterior(CASE, targets=["potassium_deficiency"], interval=0.9, n_draws=5, rng=0)
    bounds = result.intervals["potassium_deficiency"]
    assert np.allclose(bounds["lower"], result["potassium_deficiency"])
    assert np.allclose(bounds["upper"], result["potassium_deficiency"])


def test_one_uncertain_parameter_maps_through_its_sensitivity_function(default_model):
    # f is monotone in the parameter, so the posterior's quantiles are f of the parameter's quantiles
    parameter_id = "link(potassium_deficiency<-diuretic=thiazide)"
    spec = _only_uncertain(default_model.spec, parameter_id)
    network = compile_spec(spec)
    evidence = BatchEvidence.from_case(network.states, CASE)
    bounds = case_intervals(spec, network, evidence, ["potassium_deficiency"], interval=0.9, n_draws=4000, rng=1)
    a, b = beta_parameters(parameters_by_id(spec)[parameter_id][1])
    functions = sensitivity_functions(spec, network, evidence, targets=("potassium_deficiency", "present"),
                                      parameters=[parameter_id])
    expected = functions.evaluate(stats.beta.ppf([[0.05], [0.95]], a, b))[:, 0]
    got = bounds["potassium_deficiency"].loc["present"]
    assert got["lower"] == pytest.approx(expected[0], abs=0.004)
    assert got["upper"] == pytest.approx(expected[1], abs=0.004)


def test_score_interval_columns_follow_their_posterior_and_match_single_cases(default_model):
    cohort = pd.DataFrame({"id": [1, 2, 3], "leg_cramps": ["yes", "no", "yes"], "diuretic": ["thiazide", None, None]})
    scored = default_model.score(cohort, targets=["potassium_deficiency", "magnesium_deficiency"], interval=0.8,
                                 n_draws=200, rng=5)
    assert scored.columns.tolist()[:7] == ["id", "p_potassium_deficiency", "p_potassium_deficiency_lower",
                                           "p_potassium_deficiency_upper", "p_magnesium_deficiency",
                                           "p_magnesium_deficiency_lower", "p_magnesium_deficiency_upper"]
    single = default_model.posterior(CASE, targets=["potassium_deficiency"], interval=0.8, n_draws=200, rng=5)
    bounds = single.intervals["potassium_deficiency"].loc["present"]
    assert scored.loc[0, "p_potassium_deficiency_lower"] == pytest.approx(bounds["lower"], rel=1e-12)
    assert scored.loc[0, "p_potassium_deficiency_upper"] == pytest.approx(bounds["upper"], rel=1e-12)
    assert (scored["p_potassium_deficiency_lower"] <= scored["p_potassium_deficiency_upper"]).all()
    plain = default_model.score(cohort, targets=["potassium_deficiency", "magnesium_deficiency"])
    assert "p_potassium_deficiency_lower" not in plain.columns


def test_invalid_rows_get_no_interval(default_model):
    cohort = pd.DataFrame({"leg_cramps": ["yes", "sometimes"]})
    scored = default_model.score(cohort, on_invalid="flag", interval=0.9, n_draws=20, rng=0)
    assert np.isnan(scored.loc[1, "p_potassium_deficiency_lower"])
    assert not np.isnan(scored.loc[0, "p_potassium_deficiency_lower"])


@pytest.mark.parametrize("interval", [0, 1, 1.5, "0.9"])
def test_bad_interval_is_one_sentence(default_model, interval):
    with pytest.raises(bayescramp.InputError, match="interval: got"):
        default_model.posterior(CASE, interval=interval, n_draws=5, rng=0)


def test_bad_n_draws(default_model):
    with pytest.raises(bayescramp.InputError, match="n_draws: got 0"):
        default_model.posterior(CASE, interval=0.9, n_draws=0)


def test_chunking_does_not_change_the_bounds(default_model):
    network = default_model.network
    tables = draw_tables(default_model.spec, network, 50, rng=2)
    likelihood = BatchEvidence.from_likelihoods({"leg_cramps": np.array([[0, 1.0], [1.0, 0], [1, 1.0]]),
                                                 "fatigue": np.array([[0, 1.0]] * 3)})
    whole = posterior_intervals(network, likelihood, tables, ["iron_deficiency"], chunk_rows=10_000)
    pieces = posterior_intervals(network, likelihood, tables, ["iron_deficiency"], chunk_rows=50, progress=False)
    assert np.array_equal(whole["iron_deficiency"][0], pieces["iron_deficiency"][0])
    assert np.array_equal(whole["iron_deficiency"][1], pieces["iron_deficiency"][1])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_interval_brackets_the_point_posterior(default_model, seed):
    case = default_model.simulate(1, rng=seed).iloc[0].to_dict()
    result = default_model.posterior(case, targets=default_model.default_targets, interval=0.9, n_draws=300, rng=seed)
    for node in default_model.default_targets:
        bounds = result.intervals[node]
        assert (bounds["lower"] <= bounds["upper"]).all()
        assert ((bounds["lower"] >= 0) & (bounds["upper"] <= 1)).all()
        assert (bounds["lower"] <= result[node] + 1e-12).all() and (result[node] <= bounds["upper"] + 1e-12).all()


def test_pre_drawn_tables_make_chunks_agree_with_the_whole(default_model):
    from bayescramp.uncertainty import score_intervals

    cohort = default_model.simulate(60, rng=4, missing=0.2)
    tables = draw_tables(default_model.spec, default_model.network, 80, rng=9)
    whole = score_intervals(default_model.spec, default_model.network, cohort, tables=tables)
    parts = pd.concat([score_intervals(default_model.spec, default_model.network, part, tables=tables)
                       for part in (cohort.iloc[:25], cohort.iloc[25:])], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    same_seed = default_model.score(cohort, interval=0.9, n_draws=80, rng=9)
    assert np.allclose(same_seed["p_iron_deficiency_lower"], whole["p_iron_deficiency_lower"])
