"""One public vocabulary (README "API conventions"): targets=, rng=, codebook= path or object, path=, ax=.

Every renamed keyword keeps working for one release: the old spelling warns with a
DeprecationWarning naming the new one and gives the same result. Model is a facade: each
method is one delegation to a function module.
"""

import ast
import inspect
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import explain as explain_module
from bayescramp import plotting
from bayescramp import sensitivity as sensitivity_module
from bayescramp._arguments import REMOVED_IN, renamed
from bayescramp.codebook import load_codebook, resolve_codebook
from bayescramp.engine import propagate
from bayescramp.evidence import BatchEvidence
from bayescramp.survey import check_file, example_paths, score_file

CASE = {"leg_cramps": "yes", "diuretic": "thiazide", "cramp_timing": "night"}
SURVEY, CODEBOOK = example_paths()


def _same(new, old):
    if isinstance(new, pd.DataFrame):
        pd.testing.assert_frame_equal(new, old)
    elif isinstance(new, bayescramp.ValidationReport):
        pd.testing.assert_frame_equal(new.metrics, old.metrics)
    else:
        assert new == old


# (name, the call with the new spelling, the call with the old spelling, the old spelling in the warning)
RENAMED = [
    ("Model.explain target=",
     lambda m: m.explain(CASE, targets="potassium_deficiency"),
     lambda m: m.explain(CASE, target="potassium_deficiency"), "target="),
    ("Model.most_probable over=",
     lambda m: m.most_probable(CASE, targets=["iron_deficiency", "anemia"]),
     lambda m: m.most_probable(CASE, over=["iron_deficiency", "anemia"]), "over="),
    ("Model.sensitivity target=",
     lambda m: m.sensitivity(CASE, targets="magnesium_deficiency=present", parameters=["diuretic"]),
     lambda m: m.sensitivity(CASE, target="magnesium_deficiency=present", parameters=["diuretic"]), "target="),
    ("Model.sensitivity positional target",
     lambda m: m.sensitivity(CASE, targets=("magnesium_deficiency", "present"), parameters=["diuretic"]),
     lambda m: m.sensitivity(CASE, ("magnesium_deficiency", "present"), parameters=["diuretic"]),
     "passing targets by position"),
    ("Model.tune target=",
     lambda m: m.tune(CASE, targets="potassium_deficiency=present", threshold=0.5, parameters=["diuretic"]),
     lambda m: m.tune(CASE, target="potassium_deficiency=present", threshold=0.5, parameters=["diuretic"]), "target="),
    ("Model.tune positional target and threshold",
     lambda m: m.tune(CASE, targets="potassium_deficiency=present", threshold=0.5, parameters=["diuretic"]),
     lambda m: m.tune(CASE, "potassium_deficiency=present", 0.5, parameters=["diuretic"]),
     "passing targets and threshold by position"),
    ("explain.explain target=",
     lambda m: explain_module.explain(m.network, CASE, targets="iron_deficiency"),
     lambda m: explain_module.explain(m.network, CASE, target="iron_deficiency"), "target="),
    ("explain.top_findings target=",
     lambda m: explain_module.top_findings(m.network, pd.DataFrame([CASE]), targets="iron_deficiency"),
     lambda m: explain_module.top_findings(m.network, pd.DataFrame([CASE]), target="iron_deficiency"), "target="),
    ("explain.most_probable over=",
     lambda m: explain_module.most_probable(m.network, CASE, targets="anemia"),
     lambda m: explain_module.most_probable(m.network, CASE, over="anemia"), "over="),
    ("sensitivity.sensitivity target=",
     lambda m: sensitivity_module.sensitivity(m.spec, m.network, CASE, targets="anemia=present", parameters=["anemia"]),
     lambda m: sensitivity_module.sensitivity(m.spec, m.network, CASE, target="anemia=present", parameters=["anemia"]),
     "target="),
    ("sensitivity.tune positional target and threshold",
     lambda m: sensitivity_module.tune(m.spec, m.network, CASE, targets="anemia=present", threshold=0.3,
                                       parameters=["anemia"]),
     lambda m: sensitivity_module.tune(m.spec, m.network, CASE, "anemia=present", 0.3, parameters=["anemia"]),
     "passing targets and threshold by position"),
    ("sensitivity.sensitivity_functions target=",
     lambda m: sensitivity_module.sensitivity_functions(
         m.spec, m.network, BatchEvidence.from_case(m.network.states, CASE),
                                                        targets="anemia=present", parameters=["anemia"]).alpha.tolist(),
     lambda m: sensitivity_module.sensitivity_functions(
         m.spec, m.network, BatchEvidence.from_case(m.network.states, CASE),
                                                        target="anemia=present", parameters=["anemia"]).alpha.tolist(),
     "target="),
    ("validate seed=",
     lambda m: bayescramp.validate(m, n=300, rng=5),
     lambda m: bayescramp.validate(m, n=300, seed=5), "seed="),
]


@pytest.mark.parametrize("name, new, old, spelling", RENAMED, ids=[r[0] for r in RENAMED])
def test_old_spelling_warns_and_gives_the_same_result(default_model, name, new, old, spelling):
    expected = new(default_model)
    with pytest.warns(DeprecationWarning, match=f"{spelling}.* will be removed in {REMOVED_IN}; use"):
        result = old(default_model)
    _same(expected, result)


def test_old_spelling_of_score_file_and_check_file_warns_and_gives_the_same_result(tmp_path):
    score_file(SURVEY, tmp_path / "new.csv", codebook=CODEBOOK, progress=False)
    with pytest.warns(DeprecationWarning, match="score_file: input= is deprecated .* use path= instead"):
        score_file(input=SURVEY, output=tmp_path / "old.csv", codebook=CODEBOOK, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "new.csv"), pd.read_csv(tmp_path / "old.csv"))
    with pytest.warns(DeprecationWarning, match="check_file: input= is deprecated"):
        assert check_file(input=SURVEY, codebook=CODEBOOK, read_rows=False) == check_file(path=SURVEY,
                                                                                         codebook=CODEBOOK,
                                                                                         read_rows=False)


def test_old_spelling_of_score_dask_file_warns_and_means_the_same(tmp_path):
    pytest.importorskip("dask")
    from bayescramp.distributed import score_dask_file

    missing = tmp_path / "part-*.csv"
    with pytest.raises(bayescramp.InputError, match="matches no file") as new:
        score_dask_file(path=missing, output=tmp_path / "out.csv", progress=False)
    with pytest.warns(DeprecationWarning, match="score_dask_file: input= is deprecated .* use path= instead"):
        with pytest.raises(bayescramp.InputError, match="matches no file") as old:
            score_dask_file(input=missing, output=tmp_path / "out.csv", progress=False)
    assert str(new.value) == str(old.value)


def test_old_spelling_of_plot_evidence_impact_warns_and_draws_the_same():
    table = bayescramp.load_model().explain(CASE, targets=["iron_deficiency", "anemia"])
    figure = plotting.plot_evidence_impact(table, targets="anemia")
    with pytest.warns(DeprecationWarning, match="plot_evidence_impact: target= is deprecated"):
        old = plotting.plot_evidence_impact(table, target="anemia")
    assert [ax.get_title() for ax in old.axes] == [ax.get_title() for ax in figure.axes]


def test_renamed_refuses_both_spellings_and_extra_positionals():
    @renamed(seed="rng", positional=("rng",))
    def draw(n, *, rng=None):
        return n, rng

    with pytest.raises(bayescramp.InputError, match="draw: got both seed= and rng=; expected only rng="):
        draw(1, seed=2, rng=3)
    with pytest.raises(bayescramp.InputError, match="draw: got 3 positional arguments; expected at most 2"):
        draw(1, 2, 3)
    with pytest.raises(bayescramp.InputError, match="draw: got rng both by position and as rng="):
        draw(1, 2, rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert draw(1, rng=4) == (1, 4)
    assert inspect.signature(draw).parameters["rng"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("method", ["explain", "most_probable", "sensitivity", "tune"])
def test_targets_take_a_string_or_a_sequence(default_model, method):
    call = getattr(default_model, method)
    extra = {"threshold": 0.5, "parameters": ["diuretic"]} if method == "tune" else {}
    extra = {"parameters": ["diuretic"]} if method == "sensitivity" else extra
    if method in ("sensitivity", "tune"):
        # one posterior: "node=state", a node with a positive state, or a list holding one of them
        by_text = call(CASE, targets="potassium_deficiency", **extra)
        by_list = call(CASE, targets=["potassium_deficiency=present"], **extra)
    else:
        by_text = call(CASE, targets="potassium_deficiency")
        by_list = call(CASE, targets=["potassium_deficiency"])
    pd.testing.assert_frame_equal(by_text, by_list)


def test_targets_are_keyword_only_on_every_method():
    for name in ("posterior", "score", "prevalence", "explain", "most_probable", "sensitivity", "tune"):
        parameter = inspect.signature(getattr(bayescramp.Model, name)).parameters["targets"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
    for function in (bayescramp.validate, bayescramp.prevalence, bayescramp.compare, explain_module.explain,
                     explain_module.most_probable, explain_module.top_findings, sensitivity_module.sensitivity,
                     sensitivity_module.tune, plotting.plot_evidence_impact, plotting.plot_prevalence):
        assert inspect.signature(function).parameters["targets"].kind is inspect.Parameter.KEYWORD_ONLY


def test_no_public_function_takes_seed_or_random_state_or_input():
    import bayescramp.distributed
    import bayescramp.validation

    modules = [bayescramp.model, bayescramp.validation, bayescramp.survey, bayescramp.distributed, explain_module,
               sensitivity_module, plotting, bayescramp.prevalence, bayescramp.scenario]
    for module in modules:
        for name in getattr(module, "__all__", ()):
            item = getattr(module, name)
            # a class's methods (a dataclass's fields are attributes, not arguments)
            members = ([m for n, m in inspect.getmembers(item, inspect.isfunction) if not n.startswith("_")]
                       if inspect.isclass(item) else [item])
            for member in members:
                if callable(member) and member is not sensitivity_module.parse_target:  # parses one target value
                    names = set(inspect.signature(member).parameters)
                    assert not names & {"seed", "random_state", "input", "target", "over"}, (module.__name__, name)


def test_codebook_as_path_or_object_gives_the_same_tables(default_model):
    survey = pd.read_csv(SURVEY, nrows=30)
    survey.index = pd.Index([f"person {k}" for k in range(30)], name="who")
    book = load_codebook(CODEBOOK)
    for call in (lambda cb: default_model.explain(survey, targets="iron_deficiency", codebook=cb),
                 lambda cb: default_model.most_probable(survey, targets=["iron_deficiency", "anemia"], codebook=cb),
                 lambda cb: default_model.sensitivity(survey, targets="anemia=present", summary="rows",
                                                      parameters=["anemia"], codebook=cb),
                 lambda cb: default_model.score(survey, targets="anemia", codebook=cb)):
        by_path, by_object = call(str(CODEBOOK)), call(book)
        pd.testing.assert_frame_equal(by_path, by_object)
        assert set(by_path.index) <= set(survey.index)
    rows = default_model.most_probable(survey, targets="anemia", codebook=CODEBOOK)
    assert rows.index.equals(survey.index)


def test_sensitivity_of_a_coded_cohort_reads_it_as_score_does(default_model):
    survey = pd.read_csv(SURVEY, nrows=40)
    rows = default_model.sensitivity(survey, targets="iron_deficiency", summary="rows", parameters=["anemia"],
                                     codebook=CODEBOOK)
    scored = default_model.score(survey, targets="iron_deficiency", codebook=CODEBOOK)
    first = rows[rows["id"] == rows["id"].iloc[0]]
    assert first.index.equals(survey.index)
    np.testing.assert_allclose(first["posterior"].to_numpy(), scored["p_iron_deficiency"].to_numpy(), rtol=1e-9)


def test_resolve_codebook_refuses_other_things_in_one_sentence():
    with pytest.raises(bayescramp.InputError, match="codebook: got int; expected a Codebook"):
        resolve_codebook(5)


def _plots(model):
    """Each plot function with arguments, and its number of panels."""
    case = {"leg_cramps": "yes", "diuretic": "thiazide"}
    posterior = model.posterior(case)
    explanation = model.explain(case, targets=["potassium_deficiency", "magnesium_deficiency"])
    scored = pd.DataFrame({"p_a": [0.1, 0.3, 0.2], "p_b": [0.5, 0.6, 0.9], "status": "ok"})
    reliability = pd.DataFrame({"target": ["a", "a", "b"], "mean_predicted": [0.1, 0.5, 0.3],
                                "observed_rate": [0.12, 0.45, 0.3], "lower": [0.08, 0.4, 0.2],
                                "upper": [0.16, 0.5, 0.4], "n": [100, 100, 50]})
    prevalence = pd.DataFrame({"target": ["a", "b"], "group": ["all", "all"], "estimate": [0.2, 0.3],
                               "lower": [0.1, 0.2], "upper": [0.3, 0.4]})
    report = pd.DataFrame({"id": ["P(a=yes)"], "prior": [0.2], "prior_low": [0.1], "prior_high": [0.3],
                           "fitted": [0.25], "lower": [0.22], "upper": [0.28], "status": ["fitted"]})
    return [
        (lambda ax: plotting.plot_network(model.network, probabilities=posterior, evidence=case, ax=ax), 1),
        (lambda ax: plotting.plot_case({"a": 0.3, "b": 0.1}, {"a": 0.1, "b": 0.1}, ax=ax), 1),
        (lambda ax: plotting.plot_cohort(scored, ax=ax), 2),
        (lambda ax: plotting.plot_prevalence(prevalence, ax=ax), 2),
        (lambda ax: plotting.plot_evidence_impact(explanation, ax=ax), 2),
        (lambda ax: plotting.plot_reliability(reliability, ax=ax), 2),
        (lambda ax: plotting.plot_tornado(model.sensitivity(case, parameters=["diuretic"]), top=3, ax=ax), 1),
        (lambda ax: plotting.plot_fit(report, ax=ax), 1),
    ]


def test_every_plot_draws_into_given_axes_and_returns_their_figure(default_model):
    from matplotlib.figure import Figure

    for draw, n_panels in _plots(default_model):
        own = draw(None)
        assert isinstance(own, Figure)
        figure = Figure()
        axes = figure.subplots(1, n_panels, squeeze=False).ravel()
        given = axes[0] if n_panels == 1 else axes
        assert draw(given) is figure
        assert all(ax.has_data() or ax.texts for ax in axes)
        assert len([ax for ax in figure.axes if ax.get_label() != "<colorbar>"]) == n_panels
        if n_panels > 1:
            with pytest.raises(bayescramp.InputError, match=f"ax holds 1 Axes; expected {n_panels}, one per panel"):
                draw(Figure().add_subplot())


def test_every_plot_function_takes_ax():
    for name in plotting.__all__:
        if name.startswith("plot_"):
            assert "ax" in inspect.signature(getattr(plotting, name)).parameters, name


def test_plot_refuses_what_is_not_axes_in_one_sentence():
    with pytest.raises(bayescramp.InputError, match="plot_case: ax holds a str; expected a matplotlib Axes"):
        plotting.plot_case({"a": 0.3}, {"a": 0.1}, ax="left")


def test_model_methods_are_one_delegation_each():
    source = textwrap.dedent(inspect.getsource(bayescramp.Model))
    (model_class,) = ast.parse(source).body
    for function in model_class.body:
        if not isinstance(function, ast.FunctionDef) or function.name == "__init__":
            continue
        body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        body = [s for s in body if not isinstance(s, ast.ImportFrom)]
        assert len(body) == 1 and isinstance(body[0], ast.Return), function.name


def test_per_row_results_keep_the_input_index(default_model):
    cohort = default_model.simulate(12, rng=3, missing=0.2)
    cohort.index = pd.MultiIndex.from_product([["a", "b", "c"], [2, 1, 0, 5]], names=["site", "person"])
    for result in (default_model.score(cohort, targets="anemia"),
                   default_model.most_probable(cohort, targets="anemia"),
                   explain_module.top_findings(default_model.network, cohort, targets="anemia")):
        assert result.index.equals(cohort.index)
    rows = default_model.sensitivity(cohort, targets="anemia=present", parameters=["anemia"], summary="rows")
    assert rows.index.unique().equals(cohort.index)


def test_simulate_cohort_blanks_only_evidence(default_model):
    from bayescramp.simulate import simulate_cohort

    cohort = simulate_cohort(default_model.network, 200, rng=1, missing=0.5, truth=True)
    evidence = default_model.evidence_nodes
    assert list(cohort.columns[:len(evidence)]) == evidence
    assert cohort[evidence].isna().any().all()
    assert not cohort.drop(columns=evidence).isna().any().any()
    pd.testing.assert_frame_equal(cohort, default_model.simulate(200, rng=1, missing=0.5, truth=True))


def test_posterior_facade_matches_the_engine(default_model):
    from bayescramp.posterior import case_posterior

    result = case_posterior(default_model.spec, default_model.network, CASE, targets="anemia")
    engine = propagate(default_model.network, BatchEvidence.from_case(default_model.network.states, CASE))
    np.testing.assert_allclose(result["anemia"].to_numpy(), engine.marginals["anemia"][0], rtol=0, atol=1e-12)
    assert result.to_frame()["prior"].notna().all()
