"""Every plot renders to a PNG (bayescramp.plotting); the layout puts parents left of children."""

import sys

import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import plotting
from bayescramp.cli import main
from bayescramp.validation import validate

CASE = {"diuretic": "thiazide", "cramp_timing": "night", "muscle_weakness": "yes", "fatigue": "no"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(figure, path):
    figure.savefig(path, format="png", dpi=60)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5000


def test_import_bayescramp_does_not_import_matplotlib():
    import subprocess

    code = "import sys, bayescramp; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_layout_puts_parents_in_earlier_layers(default_model):
    layout = plotting.layered_layout(default_model.nodes, default_model.network.parents)
    assert set(layout) == set(default_model.nodes)
    for node in default_model.nodes:
        for parent in default_model.network.parents[node]:
            assert layout[parent][0] < layout[node][0]
    positions = [(layer, position) for layer, position in layout.values()]
    assert len(set(positions)) == len(positions)


def test_network_plot(default_model, tmp_path):
    figure = plotting.plot_network(default_model.network, probabilities=default_model.posterior(CASE), evidence=CASE)
    texts = {t.get_text() for t in figure.axes[0].texts}
    assert "diuretic\n= thiazide" in texts
    assert any(t.startswith("magnesium deficiency\n") for t in texts)
    _render(figure, tmp_path / "network.png")


def test_case_plot_with_intervals(default_model, tmp_path):
    posterior, prior = default_model.posterior(CASE), default_model.marginals()
    targets = default_model.default_targets
    figure = plotting.plot_case({t: posterior[t]["present"] for t in targets},
                                {t: prior[t]["present"] for t in targets},
                                lower={t: 0.8 * posterior[t]["present"] for t in targets},
                                upper={t: min(1.0, 1.2 * posterior[t]["present"]) for t in targets})
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    largest = max(targets, key=lambda t: posterior[t]["present"])
    assert labels[-1] == largest.replace("_", " ") and len(labels) == len(targets)    # largest posterior on top
    _render(figure, tmp_path / "case.png")


def test_cohort_plot(default_model, tmp_path):
    scored = default_model.score(default_model.simulate(500, rng=1, missing=0.2))
    figure = plotting.plot_cohort(scored)
    assert len(figure.axes) == 6
    assert figure.axes[0].get_title().startswith("vitamin d deficiency (mean ")
    _render(figure, tmp_path / "cohort.png")


def test_evidence_impact_plot(default_model, tmp_path):
    table = default_model.explain(CASE, targets=["magnesium_deficiency", "potassium_deficiency", "iron_deficiency"])
    figure = plotting.plot_evidence_impact(table)
    widths = [patch.get_width() for patch in figure.axes[0].patches]
    expected = table[table["target"] == "magnesium_deficiency"]["weight"]
    assert np.allclose(sorted(widths), sorted(expected))
    _render(figure, tmp_path / "impact.png")


def test_reliability_plot(tmp_path):
    report = validate(n=3000, rng=4)
    figure = plotting.plot_reliability(report.reliability, metrics=report.metrics)
    assert len(figure.axes) == 6
    _render(figure, tmp_path / "reliability.png")


def test_cohort_plot_without_p_columns_is_an_error():
    with pytest.raises(ValueError, match="expected p_<node> columns"):
        plotting.plot_cohort(pd.DataFrame({"id": [1, 2]}))


def test_impact_plot_of_several_rows_is_an_error(default_model):
    table = default_model.explain(default_model.simulate(5, rng=2))
    with pytest.raises(ValueError, match="expected one case"):
        plotting.plot_evidence_impact(table)


@pytest.mark.parametrize("kind", ["network", "case", "impact"])
def test_cli_plot_case_kinds(tmp_path, kind, capsys):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, "--evidence", "diuretic=thiazide", "cramp_timing=night", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_plot_cohort(default_model, tmp_path):
    scored = tmp_path / "scored.csv"
    default_model.score(default_model.simulate(300, rng=3)).to_csv(scored, index=False)
    out = tmp_path / "cohort.png"
    assert main(["plot", "cohort", str(scored), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_cli_plot_bad_suffix_writes_nothing(tmp_path, capsys):
    assert main(["plot", "network", "-o", str(tmp_path / "net.jpg")]) == 1
    assert "expected a name ending in .png" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_plot_case_with_credible_intervals(tmp_path):
    out = tmp_path / "case.png"
    assert main(["plot", "case", "--evidence", "diuretic=thiazide", "--interval", "0.9", "--draws", "100",
                 "--seed", "1", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_cohort_plot_with_weights_shows_the_weighted_mean(default_model):
    scored = default_model.score(default_model.simulate(200, rng=1, missing=0.2))
    weights = np.linspace(0.1, 10.0, 200)
    figure = plotting.plot_cohort(scored, columns=["p_iron_deficiency"], weights=weights)
    mean = np.average(scored["p_iron_deficiency"], weights=weights)
    assert f"weighted mean {mean:.3f}" in figure.axes[0].get_title()
    assert figure.axes[0].get_ylabel() == "people (sum of weights)"
    with pytest.raises(plotting.InputError, match="weights have shape"):
        plotting.plot_cohort(scored, weights=[1.0, 2.0])


def test_prevalence_forest_plot(tmp_path):
    import matplotlib

    from bayescramp.prevalence import prevalence

    frame = pd.DataFrame({"p_a": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3], "p_b": [0.3] * 6, "status": "ok",
                          "sex": ["f", "m", "f", "m", "f", None], "age": ["old", "old", "young", "young", "old", "y"]})
    table = prevalence(frame, by=["sex", "sex*age"])
    figure = plotting.plot_prevalence(table)
    assert [ax.get_title() for ax in figure.axes] == ["a", "b"]
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels[:4] == ["all", "sex=f", "sex=m", "sex=(missing)"] and "sex=f, age=old" in labels
    figure.savefig(tmp_path / "forest.png")
    axes = matplotlib.figure.Figure().add_subplot()
    assert plotting.plot_prevalence(table, targets="b", ax=axes) is axes.figure
    with pytest.raises(plotting.InputError, match="ax holds 1 Axes; expected 2, one per panel"):
        plotting.plot_prevalence(table, ax=axes)
    pair = matplotlib.figure.Figure().subplots(1, 2)
    assert plotting.plot_prevalence(table, ax=pair) is pair[0].figure
    assert [ax.get_title() for ax in pair] == ["a", "b"]
    with pytest.raises(plotting.InputError, match="target 'c' is not in the table"):
        plotting.plot_prevalence(table, targets=["c"])


def test_cli_plot_cohort_with_weights(default_model, tmp_path, capsys):
    scored = default_model.score(default_model.simulate(100, rng=2)).assign(w=np.linspace(1.0, 3.0, 100))
    scored.to_csv(tmp_path / "scored.csv", index=False)
    assert main(["plot", "cohort", str(tmp_path / "scored.csv"), "--weights", "w", "-o", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    assert main(["plot", "cohort", str(tmp_path / "scored.csv"), "--weights", "nope", "-o",
                 str(tmp_path / "d.png")]) == 1
    assert "no column 'nope' for weights" in capsys.readouterr().err


def test_fit_plot_draws_prior_fitted_and_truth(tiny_model):
    import warnings

    from bayescramp.learning import FitWarning

    cohort = tiny_model.simulate(2_000, rng=1, truth=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        result = tiny_model.fit(cohort)
    truth = tiny_model.parameters().set_index("id")["value"]
    figure = plotting.plot_fit(result.report, truth=truth, top=3)
    ax = figure.axes[0]
    assert len(ax.get_yticklabels()) == 3
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"prior range", "fitted interval", "truth"}
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, 2)
    assert plotting.plot_fit(result.report, parameters=["P(medication=drug)"], ax=axes[1]) is axes[1].figure
    with pytest.raises(bayescramp.InputError, match="does not hold"):
        plotting.plot_fit(result.report, parameters=["nope"])
