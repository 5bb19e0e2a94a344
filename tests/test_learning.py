"""Learning from cohorts (bayescramp.learning, Model.fit, `bayescramp fit`).

Oracles: pgmpy's MaximumLikelihoodEstimator and BayesianEstimator (BDeu, Dirichlet) for table
CPDs on complete data; scipy.optimize's maximum of the noisy-OR likelihood for leaks and links;
a simulated truth for EM with blanks and hidden nodes. Properties: EM never lowers its objective,
the overlay round-trips, uninformed parameters keep their priors.
"""

import math
import shutil
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize

import bayescramp
from bayescramp._errors import InputError
from bayescramp.cli import main
from bayescramp.learning import (
    FitWarning,
    ImpossibleRowsWarning,
    NotIdentifiableWarning,
    UninformedParameterWarning,
    count_patterns,
    fit,
)
from bayescramp.spec import Node, NoisyOrCPD, Parameter, Spec, TableCPD, TableRow, table_parameter_id

from .conftest import DATA


def _quiet_fit(model, data, **options):
    """Fit with the fit warnings silenced (tests that are not about them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return model.fit(data, **options)


@pytest.fixture(scope="module")
def alarm():
    return bayescramp.load_model(DATA / "alarm.bif.gz")


@pytest.fixture(scope="module")
def default_cohort(default_model):
    """Every node observed: the complete-data case."""
    return default_model.simulate(40_000, rng=11, truth=True)


@pytest.fixture(scope="module")
def alarm_cohort(alarm):
    return alarm.simulate(20_000, rng=12, truth=True)


# ---------------------------------------------------------------------------------------------
# complete data: tables equal pgmpy's estimators


def _pgmpy_estimator(kind, model, data):
    states = {n: list(model.states(n)) for n in model.nodes}
    network = model.to_pgmpy()
    # pgmpy 1.1 deprecates these estimators (FutureWarning) in favour of pgmpy.parameter_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.estimators import BayesianEstimator, MaximumLikelihoodEstimator

        estimator = MaximumLikelihoodEstimator if kind == "mle" else BayesianEstimator
        return estimator(network, data[model.nodes], state_names=states)


def _estimate(estimator, node, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return estimator.estimate_cpd(node, **options)


def _as_ours(cpd, model, node):
    """A pgmpy TabularCPD (parents sorted, our state order) as our [*parents, k] array."""
    variables = list(cpd.variables)
    values = np.asarray(cpd.get_values()).reshape([len(cpd.state_names[v]) for v in variables])
    assert all(list(cpd.state_names[v]) == list(model.states(v)) for v in variables)
    parents = list(model.network.parents[node])
    return np.transpose(values, [variables.index(p) for p in parents] + [0])


def _as_pgmpy(table, model, node):
    """Our [*parents, k] array as pgmpy's [k, prod(sorted parent cards)] layout."""
    parents = list(model.network.parents[node])
    order = sorted(parents)
    return np.transpose(table, [len(parents)] + [parents.index(p) for p in order]).reshape(table.shape[-1], -1)


def _configuration_counts(model, data, node):
    parents = list(model.network.parents[node])
    shape = [len(model.states(p)) for p in parents]
    if not parents:
        return np.array(len(data), dtype=float)
    codes = [pd.Categorical(data[p], categories=model.states(p)).codes for p in parents]
    return np.bincount(np.ravel_multi_index(codes, shape), minlength=int(np.prod(shape))).reshape(shape)


def _table_nodes(model):
    return [n for n in model.nodes if model.spec.nodes[n].cpd.kind == "table"]


@pytest.mark.parametrize("network", ["alarm", "default"])
def test_complete_data_tables_match_pgmpy_maximum_likelihood(network, alarm, alarm_cohort, default_model,
                                                             default_cohort):
    model, data = (alarm, alarm_cohort) if network == "alarm" else (default_model, default_cohort)
    result = _quiet_fit(model, data, prior_strength=0)
    estimator = _pgmpy_estimator("mle", model, data)
    for node in _table_nodes(model):
        ours = result.model.network.tables[node]
        theirs = _as_ours(_estimate(estimator, node), model, node)
        seen = _configuration_counts(model, data, node) > 0
        assert np.abs(ours[seen] - theirs[seen]).max() <= 1e-9, node
        # a parent configuration no row holds keeps its prior row (pgmpy fills it uniformly)
        assert np.array_equal(ours[~seen], model.network.tables[node][~seen]), node


@pytest.mark.parametrize("network", ["alarm", "default"])
@pytest.mark.parametrize("strength", [1.0, 25.0])
def test_complete_data_tables_match_pgmpy_dirichlet(network, strength, alarm, alarm_cohort, default_model,
                                                    default_cohort):
    model, data = (alarm, alarm_cohort) if network == "alarm" else (default_model, default_cohort)
    result = _quiet_fit(model, data, prior_strength=strength)
    estimator = _pgmpy_estimator("bayes", model, data)
    for node in _table_nodes(model):
        pseudo_counts = strength * _as_pgmpy(model.network.tables[node], model, node)
        cpd = _estimate(estimator, node, prior_type="dirichlet", pseudo_counts=pseudo_counts)
        ours = result.model.network.tables[node]
        assert np.abs(ours - _as_ours(cpd, model, node)).max() <= 1e-9, node


def _uniform(model):
    """The model with every table entry 1/k (so a BDeu prior is N pseudo-observations at these values)."""
    values = {}
    for parameter in model.parameters().itertuples():
        if parameter.kind == "table":
            values[parameter.id] = 1.0 / len(model.states(parameter.node))
    return model.with_parameters(values)


@pytest.mark.parametrize("network", ["alarm", "default"])
def test_complete_data_tables_match_pgmpy_bdeu(network, alarm, alarm_cohort, default_model, default_cohort):
    model, data = (alarm, alarm_cohort) if network == "alarm" else (default_model, default_cohort)
    uniform = _uniform(model)
    equivalent_sample_size = 10.0
    # BDeu: ess / (q k) per entry = (ess / q) pseudo-observations at the uniform values
    strength = {n: equivalent_sample_size / max(1, int(np.prod(uniform.network.tables[n].shape[:-1])))
                for n in _table_nodes(uniform)}
    result = _quiet_fit(uniform, data, prior_strength=strength)
    estimator = _pgmpy_estimator("bayes", uniform, data)
    for node in _table_nodes(uniform):
        cpd = _estimate(estimator, node, prior_type="BDeu", equivalent_sample_size=equivalent_sample_size)
        ours = result.model.network.tables[node]
        assert np.abs(ours - _as_ours(cpd, uniform, node)).max() <= 1e-9, node


# ---------------------------------------------------------------------------------------------
# complete data: noisy-ORs equal the maximum of their likelihood found by scipy.optimize


def _noisy_or_maximum(model, data, node):
    """(ids, λ) maximising the noisy-OR likelihood of ``node`` on complete ``data`` (L-BFGS-B)."""
    spec = model.spec
    cpd = spec.nodes[node].cpd
    ids, columns, start = [cpd.leak.id], [np.ones(len(data))], [cpd.leak.value]
    for parent in spec.nodes[node].parents:
        for state, link in cpd.links[parent].items():
            if link.low == link.high:  # a fixed link (e.g. a protective effect omitted, 0): fit keeps it
                continue
            ids.append(link.id)
            columns.append((data[parent] == state).to_numpy(dtype=float))
            start.append(max(link.value, 0.01))
    activity = np.column_stack(columns)
    on = (data[node] == spec.nodes[node].states[1]).to_numpy()
    key, inverse = np.unique(np.column_stack([activity, on]), axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel()).astype(float)
    acts, x_on = key[:, :-1], key[:, -1] == 1

    def negative_log_likelihood(values):
        log_off = acts @ np.log1p(-values)
        off, p_on = np.exp(log_off), -np.expm1(log_off)
        value = -(weights * np.where(x_on, np.log(p_on), log_off)).sum()
        d_log = np.where(x_on, -off / p_on, 1.0)
        gradient = ((weights * d_log)[:, None] * acts / (1.0 - values)).sum(axis=0)
        return value, gradient

    found = optimize.minimize(negative_log_likelihood, np.array(start), jac=True, method="L-BFGS-B",
                              bounds=[(1e-12, 1.0 - 1e-12)] * len(ids),
                              options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 10_000, "maxcor": 30})
    return ids, found.x


def test_complete_data_noisy_or_matches_scipy_maximum(default_model):
    data = default_model.simulate(100_000, rng=5, truth=True)
    result = _quiet_fit(default_model, data, prior_strength=0)
    fitted = result.report.set_index("id")["fitted"]
    noisy = [n for n in default_model.nodes if default_model.spec.nodes[n].cpd.kind == "noisy_or"]
    assert noisy
    for node in noisy:
        ids, values = _noisy_or_maximum(default_model, data, node)
        assert np.abs(fitted[ids].to_numpy() - values).max() <= 1e-6, node
    assert (result.report.loc[result.report["kind"] != "table", "kind"].isin(["leak", "link"])).all()
    assert all(result.model.spec.nodes[n].cpd.kind == "noisy_or" for n in noisy)


def test_complete_data_is_one_closed_form_update_without_restarts(tiny_model):
    data = tiny_model.simulate(5_000, rng=3, truth=True)
    result = tiny_model.fit(data, n_restarts=4, rng=1)
    trace = result.log_likelihood_trace
    assert trace["restart"].nunique() == 1 and result.provenance["converged"]
    assert result.provenance["iterations"] <= 2


def test_prior_pseudo_counts_come_from_the_credible_interval_beta(tiny_model):
    from bayescramp.uncertainty import beta_parameters

    data = pd.DataFrame({"medication": ["drug"] * 30 + ["none"] * 70})
    with pytest.warns(UninformedParameterWarning):
        result = tiny_model.fit(data)
    parameter = tiny_model.spec.nodes["medication"].cpd.rows[0].probability["drug"]
    a, b = beta_parameters(parameter)
    row = result.report.set_index("id").loc["P(medication=drug)"]
    assert row["prior_count"] == pytest.approx(a + b, rel=1e-12)
    assert row["fitted"] == pytest.approx((30 + a) / (100 + a + b), rel=1e-12)
    assert row["lower"] < row["fitted"] < row["upper"]


# ---------------------------------------------------------------------------------------------
# EM with blanks and hidden nodes


def _perturbed(model, rng):
    """A 'true' population: every free number moved to a random point of its range."""
    values = {}
    for parameter in model.parameters().itertuples():
        if parameter.high > parameter.low:
            values[parameter.id] = float(rng.uniform(parameter.low, parameter.high))
    rows = {}
    for parameter in model.parameters().itertuples():
        if parameter.kind == "table" and parameter.id in values:
            rows.setdefault((parameter.node, parameter.parents), []).append(parameter.id)
    for ids in rows.values():
        total = sum(values[i] for i in ids)
        if total > 0.95:
            for i in ids:
                values[i] *= 0.95 / total
    return model.with_parameters(values)


def test_em_recovers_a_simulated_truth_inside_its_intervals(default_model):
    # n = 200,000 runs in benchmarks/bench_learning.py and notebooks/learning.py; the suite uses 10,000
    rng = np.random.default_rng(2026)
    truth = _perturbed(default_model, rng)
    cohort = truth.simulate(10_000, rng=rng, missing=0.2, truth=True)
    hidden = [n for n in default_model.nodes if n not in default_model.evidence_nodes]
    assert "magnesium_deficiency" in hidden
    result = _quiet_fit(default_model, cohort.drop(columns=hidden), max_iter=15, n_restarts=1, rng=1)
    report = result.report.set_index("id")
    fitted = report[report["status"].isin(["fitted", "not_identifiable"])]
    truth_values = truth.parameters().set_index("id")["value"][fitted.index]
    inside = (fitted["lower"] - 1e-12 <= truth_values) & (truth_values <= fitted["upper"] + 1e-12)
    assert inside.mean() >= 0.8, fitted.loc[~inside, ["fitted", "lower", "upper"]].assign(truth=truth_values)
    # what the survey observes directly is learned tightly and correctly
    diuretic = [i for i in fitted.index if i.startswith("P(diuretic=")]
    # 12 diuretic rows (4 states x 3 age groups) at 95% intervals: one or two outside is chance
    assert len(diuretic) == 12 and inside[diuretic].mean() >= 0.75
    assert (fitted.loc[diuretic, "information_share"] > 0.5).all()


def test_em_objective_trace_is_monotone_and_the_best_restart_is_kept(default_model):
    cohort = default_model.simulate(1_500, rng=4, missing=0.3)
    result = _quiet_fit(default_model, cohort, max_iter=6, tol=0.0, n_restarts=3, rng=2)
    trace = result.log_likelihood_trace
    for _, run in trace.groupby("restart"):
        objective = run["objective"].to_numpy()
        assert (np.diff(objective) >= -1e-9 * np.abs(objective[1:])).all()
    finals = trace.groupby("restart")["objective"].last()
    assert trace.loc[trace["chosen"], "restart"].iloc[0] == finals.idxmax()
    assert result.provenance["objective"] == pytest.approx(finals.max())
    assert np.allclose(trace["objective"], trace["log_likelihood"] + trace["prior_term"])


def _random_spec(seed: int) -> Spec:
    """A random network of 3-5 nodes: tables (2-3 states) and binary noisy-ORs, parents among earlier nodes."""
    rng = np.random.default_rng(seed)
    n_nodes = int(rng.integers(3, 6))
    nodes: dict[str, Node] = {}
    for i in range(n_nodes):
        name = f"n{i}"
        parents = tuple(f"n{j}" for j in sorted(rng.choice(i, size=min(i, int(rng.integers(0, 3))), replace=False)))
        noisy = bool(parents) and rng.random() < 0.5
        states = ("off", "on") if noisy else tuple(f"s{k}" for k in range(int(rng.integers(2, 4))))

        def parameter(identifier, value):
            width = float(rng.uniform(0.02, 0.3))
            return Parameter(identifier, float(value), max(0.0, value - width), min(1.0, value + width),
                             basis="expert", source="random")

        if noisy:
            leak = parameter(f"leak({name})", rng.uniform(0.02, 0.4))
            links = {p: {s: parameter(f"link({name}<-{p}={s})", rng.uniform(0.1, 0.9)) for s in nodes[p].states[1:]}
                     for p in parents}
            cpd = NoisyOrCPD(leak=leak, links=links)
        else:
            rows = []
            for when in np.ndindex(*[len(nodes[p].states) for p in parents]):
                configuration = tuple(nodes[p].states[k] for p, k in zip(parents, when))
                shares = rng.dirichlet(np.full(len(states), 2.0))
                probability = {s: parameter(table_parameter_id(name, s, parents, configuration), shares[k])
                               for k, s in enumerate(states[1:], start=1)}
                probability[states[0]] = None
                rows.append(TableRow(when=configuration, probability=probability))
            cpd = TableCPD(rows=tuple(rows))
        nodes[name] = Node(name=name, states=states, parents=parents, cpd=cpd)
    return Spec(nodes=nodes, meta={"name": f"random{seed}"})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), strength=st.sampled_from(["ranges", 0.0, 5.0]),
       missing=st.floats(0.0, 0.6), hide=st.booleans())
def test_em_objective_never_decreases(seed, strength, missing, hide):
    model = bayescramp.Model(_random_spec(seed))
    rng = np.random.default_rng(seed)
    cohort = model.simulate(400, rng=rng, missing=missing, truth=True)
    mask = rng.random(cohort.shape) < missing
    cohort = cohort.mask(mask)
    if hide:
        cohort = cohort.drop(columns=[model.nodes[int(rng.integers(len(model.nodes)))]])
    if cohort.shape[1] == 0:
        return
    result = _quiet_fit(model, cohort, prior_strength=strength, max_iter=12, tol=0.0, n_restarts=2, rng=seed)
    for _, run in result.log_likelihood_trace.groupby("restart"):
        objective = run["objective"].to_numpy()
        assert np.isfinite(objective).all()
        assert (np.diff(objective) >= -1e-9 * (1.0 + np.abs(objective[1:]))).all()


def test_noisy_or_kind_and_structural_zeros_are_kept(default_model):
    cohort = default_model.simulate(5_000, rng=8, missing=0.2)
    result = _quiet_fit(default_model, cohort, max_iter=5, n_restarts=1)
    for name, node in default_model.spec.nodes.items():
        assert result.model.spec.nodes[name].cpd.kind == node.cpd.kind
    fixed = result.report[result.report["status"] == "fixed"]
    assert len(fixed) and (fixed["fitted"] == fixed["prior"]).all()
    timing = result.model.network.tables["cramp_timing"]
    assert timing[0, 1] == 0.0 and timing[0, 2] == 0.0 and timing[1, 0] == 0.0


# ---------------------------------------------------------------------------------------------
# uninformed and non-identifiable parameters


def test_a_parameter_no_row_informs_stays_at_its_prior(tiny_model):
    data = pd.DataFrame({"medication": ["drug", "none", "none", None]})
    with pytest.warns(UninformedParameterWarning, match="informed by no row"):
        result = tiny_model.fit(data)
    report = result.report.set_index("id")
    uninformed = report[report["node"].isin(["x_deficiency", "symptom"])]
    assert (uninformed["status"] == "uninformed").all()
    assert (uninformed["fitted"] == uninformed["prior"]).all()
    assert (uninformed["expected_count"] == 0).all()
    assert (uninformed["lower"] == uninformed["prior_low"]).all()
    before = tiny_model.parameters().set_index("id")
    after = result.model.parameters().set_index("id")
    assert (after.loc[uninformed.index, "value"] == before.loc[uninformed.index, "value"]).all()
    assert report.loc["P(medication=drug)", "status"] == "fitted"


def test_a_parent_configuration_no_row_holds_stays_at_its_prior(default_model):
    cohort = default_model.simulate(20_000, rng=9, truth=True)
    cohort = cohort[(cohort["diuretic"] != "loop") & (cohort["age_group"] != "65_plus")]
    with pytest.warns(UninformedParameterWarning):
        result = default_model.fit(cohort)
    report = result.report.set_index("id")
    older = report[report["parents"].str.contains("age_group=65_plus") & (report["kind"] == "table")]
    assert len(older) and (older["status"] == "uninformed").all()
    assert (older["fitted"] == older["prior"]).all()
    loop_links = report[report.index.str.contains("<-diuretic=loop")]
    assert len(loop_links) and (loop_links["status"] == "uninformed").all()
    assert (loop_links["fitted"] == loop_links["prior"]).all()


def test_a_hidden_cause_with_one_symptom_is_flagged_not_identifiable(tiny_model):
    cohort = tiny_model.simulate(5_000, rng=3, truth=True).drop(columns=["x_deficiency"])
    with pytest.warns(NotIdentifiableWarning, match="not identifiable"):
        result = tiny_model.fit(cohort, rng=1)
    report = result.report.set_index("id")
    assert report.loc["P(x_deficiency=present|medication=none)", "status"] == "not_identifiable"
    assert report.loc["P(x_deficiency=present|medication=none)", "information_share"] < 0.01
    assert report.loc["P(medication=drug)", "status"] == "fitted"
    assert report.loc["P(medication=drug)", "information_share"] == 1.0


def test_a_hidden_cause_with_three_symptoms_is_identifiable(tmp_path):
    # a two-class latent class model with three indicators is identifiable: its intervals come from the
    # observed information, which matches a numerical Hessian (checked while writing the module)
    model = bayescramp.load_model(DATA / "tiny.toml")
    spec = model.spec
    nodes = dict(spec.nodes)
    for name in ("symptom_b", "symptom_c"):
        nodes[name] = replace(spec.nodes["symptom"], name=name, cpd=replace(
            spec.nodes["symptom"].cpd, leak=replace(spec.nodes["symptom"].cpd.leak, id=f"leak({name})"),
            links={"x_deficiency": {"present": replace(spec.nodes["symptom"].cpd.links["x_deficiency"]["present"],
                                                       id=f"link({name}<-x_deficiency=present)")}}))
    model = bayescramp.Model(replace(spec, nodes=nodes))
    cohort = model.simulate(40_000, rng=5, truth=True).drop(columns=["x_deficiency"])
    result = model.fit(cohort, prior_strength=0, rng=1, tol=1e-10, max_iter=3000)
    report = result.report.set_index("id")
    assert (report["status"] == "fitted").all()
    assert (report["information_share"] > 0.02).all()
    truth = model.parameters().set_index("id")["value"]
    assert ((report["lower"] <= truth) & (truth <= report["upper"])).mean() >= 0.8


def test_an_imported_network_has_no_ranges_so_only_a_number_learns_it(alarm, alarm_cohort):
    with pytest.warns(FitWarning, match="every parameter is fixed"):
        result = alarm.fit(alarm_cohort.head(500))
    assert (result.report["status"] == "fixed").all()
    assert all(np.array_equal(result.model.network.tables[n], alarm.network.tables[n]) for n in alarm.nodes)


def test_impossible_rows_are_left_out_with_a_warning(default_model):
    cohort = default_model.simulate(2_000, rng=2, truth=True)
    cohort.loc[:4, "leg_cramps"] = "no"
    cohort.loc[:4, "cramp_timing"] = "night"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = default_model.fit(cohort)
    impossible = [w for w in caught if issubclass(w.category, ImpossibleRowsWarning)]
    assert len(impossible) == 1 and "5 row(s) hold evidence" in str(impossible[0].message)
    assert result.provenance["n_rows_impossible"] == 5
    assert result.provenance["n_rows"] == 1_995


# ---------------------------------------------------------------------------------------------
# the overlay


def test_overlay_round_trips_exactly(tmp_path):
    # priors beside the overlay: meta.base may name a file in the overlay's own folder
    shutil.copy(DATA / "tiny.toml", tmp_path / "tiny.toml")
    tiny_model = bayescramp.load_model(tmp_path / "tiny.toml")
    cohort = tiny_model.simulate(3_000, rng=6, missing=0.2, truth=True)
    result = _quiet_fit(tiny_model, cohort, rng=1)
    path = result.save_overlay(tmp_path / "learned.toml")
    loaded = bayescramp.load_model(tmp_path / "tiny.toml", path)
    ours = result.model.parameters().set_index("id")
    theirs = loaded.parameters().set_index("id")
    for column in ("value", "low", "high", "basis", "source", "note"):
        assert (ours[column] == theirs[column]).all(), column
    for name in tiny_model.nodes:
        assert np.array_equal(loaded.network.tables[name], result.model.network.tables[name])
    # the overlay names its base, so it also loads alone
    alone = bayescramp.load_model(path)
    assert (alone.parameters().set_index("id")["value"] == ours["value"]).all()


def test_overlay_of_priors_in_another_folder_names_no_base(tiny_model, tmp_path):
    result = _quiet_fit(tiny_model, tiny_model.simulate(500, rng=6, truth=True), rng=1)
    path = result.save_overlay(tmp_path / "learned.toml")
    text = path.read_text()
    assert "\nbase = " not in text  # meta.base may not name a file in another folder
    assert "load_model('tiny', 'learned.toml')" in text
    loaded = bayescramp.load_model(DATA / "tiny.toml", path)
    assert np.array_equal(loaded.network.tables["symptom"], result.model.network.tables["symptom"])


def test_overlay_holds_fitted_values_intervals_and_provenance(default_model, tmp_path):
    import tomllib

    cohort = default_model.simulate(5_000, rng=7, missing=0.1)
    data = tmp_path / "cohort.csv"
    cohort.to_csv(data, index=False)
    result = _quiet_fit(default_model, data, max_iter=4, tol=0.0, n_restarts=1)
    path = result.save_overlay(tmp_path / "learned.toml")
    document = tomllib.loads(path.read_text())
    meta = document["meta"]
    import hashlib

    assert meta["fitted_data"] == "cohort.csv"
    assert meta["fitted_data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert meta["fitted_rows"] == "5000" and meta["fitted_iterations"] == "4"
    assert float(meta["fitted_log_likelihood"]) == result.provenance["log_likelihood"]
    assert meta["base"] == "default" and "default.toml" in meta["fitted_priors"]
    report = result.report.set_index("id")
    changed = report[report["fitted"] != report["prior"]]
    assert set(document["parameters"]) == set(changed.index)
    for parameter_id, entry in document["parameters"].items():
        assert entry["basis"] == "fitted" and "cohort.csv" in entry["source"]
        assert entry["value"] == report.loc[parameter_id, "fitted"]
        assert entry["range"][0] <= entry["value"] <= entry["range"][1]
        if "distribution" in entry:
            a, b = entry["distribution"]["alpha"], entry["distribution"]["beta"]
            assert a / (a + b) == pytest.approx(entry["value"], rel=1e-9)
    assert "sha256" in path.read_text().splitlines()[1]
    loaded = bayescramp.load_model("default", path)
    assert loaded.spec.meta["name"].endswith("learned")


def test_overlay_needs_a_toml_name(tiny_model, tmp_path):
    result = _quiet_fit(tiny_model, tiny_model.simulate(200, rng=1, truth=True))
    with pytest.raises(InputError, match=r"\.toml"):
        result.save_overlay(tmp_path / "learned.txt")
    assert not (tmp_path / "learned.txt").exists()


# ---------------------------------------------------------------------------------------------
# data in


def test_file_is_streamed_in_chunks_to_the_same_patterns(default_model, tmp_path):
    cohort = default_model.simulate(3_000, rng=1, missing=0.2)
    path = tmp_path / "cohort.parquet"
    cohort.to_parquet(path)
    whole = count_patterns(default_model.network, cohort)
    streamed = count_patterns(default_model.network, path, chunk_size=217)
    assert np.array_equal(whole.patterns, streamed.patterns)
    assert np.array_equal(whole.counts, streamed.counts)
    assert streamed.n_rows == 3_000 and streamed.source == "cohort.parquet"


def test_codebook_surveys_fit(default_model):
    from bayescramp.survey import example_paths

    survey, codebook = example_paths()
    result = _quiet_fit(default_model, survey, codebook=codebook, max_iter=3, n_restarts=1)
    assert result.provenance["n_rows"] == 20_000
    assert result.provenance["data"] == "example_survey.csv"


def test_bad_cells_are_one_error_naming_row_and_column(tiny_model, tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"medication": ["drug", "sometimes", "none"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"bad.csv, line 3, column 'medication': got 'sometimes'"):
        tiny_model.fit(path)


@pytest.mark.parametrize("options, message", [
    ({"prior_strength": -1}, "prior_strength"),
    ({"prior_strength": "wide"}, "prior_strength"),
    ({"prior_strength": {"nope": 1}}, "unknown node"),
    ({"max_iter": -1}, "max_iter"),
    ({"tol": float("nan")}, "tol"),
    ({"n_restarts": 0}, "n_restarts"),
    ({"interval": 1.0}, "interval"),
])
def test_bad_options_are_one_sentence(tiny_model, options, message):
    with pytest.raises(InputError, match=message):
        tiny_model.fit(pd.DataFrame({"medication": ["drug"]}), **options)


def test_data_must_be_a_table_or_a_file(tiny_model):
    with pytest.raises(InputError, match="expected a pandas DataFrame or the path"):
        tiny_model.fit([["drug"]])
    with pytest.raises(InputError, match="no column informs the model"):
        tiny_model.fit(pd.DataFrame({"other": [1, 2]}))


def test_fit_function_works_on_a_spec_without_a_model_type(tiny_model):
    result = fit(tiny_model.spec, tiny_model.network, tiny_model.simulate(300, rng=1, truth=True), prior_strength=0)
    assert math.isfinite(result.provenance["log_likelihood"])
    with pytest.raises(InputError, match="Model type"):
        result.model


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_fit_writes_an_overlay_and_lists_the_largest_changes(tmp_path, capsys):
    data = tmp_path / "cohort.csv"
    bayescramp.load_model(DATA / "tiny.toml").simulate(2_000, rng=1, truth=True).to_csv(data, index=False)
    output = tmp_path / "learned.toml"
    code = main(["fit", str(data), "-o", str(output), "--priors", str(DATA / "tiny.toml"), "--seed", "1",
                 "--restarts", "2", "--max-iter", "50", "--top", "3", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "largest changes" in out and f"wrote {output}" in out
    assert len([line for line in out.splitlines() if line.startswith(("P(", "leak(", "link("))]) == 3
    loaded = bayescramp.load_model(DATA / "tiny.toml", output)
    assert (loaded.parameters()["basis"] == "fitted").all()


def test_cli_fit_prints_warnings_and_bad_input_as_one_sentence(tmp_path, capsys):
    data = tmp_path / "cohort.csv"
    pd.DataFrame({"medication": ["drug", "none"]}).to_csv(data, index=False)
    code = main(["fit", str(data), "-o", str(tmp_path / "learned.toml"), "--priors", str(DATA / "tiny.toml"),
                 "--quiet", "--prior-strength", "0"])
    captured = capsys.readouterr()
    assert code == 0
    assert "bayescramp: warning: 4 parameter(s) are informed by no row" in captured.err
    assert main(["fit", str(data), "-o", str(tmp_path / "learned.txt"), "--priors", str(DATA / "tiny.toml")]) == 1
    assert main(["fit", str(data), "-o", str(tmp_path / "x.toml"), "--priors", str(DATA / "tiny.toml"),
                 "--prior-strength", "lots"]) == 1
    err = capsys.readouterr().err
    assert "bayescramp: error: -o" in err and "--prior-strength: got 'lots'" in err
    assert not (tmp_path / "x.toml").exists()
