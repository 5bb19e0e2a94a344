"""`bayescramp score`: the README's main command, its options, errors, start-up and atomic output."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescramp.cli import main

ROOT = Path(__file__).parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_example_prints_a_one_line_summary_and_where_the_output_went(tmp_path, capsys):
    output = tmp_path / "example_scores.csv"
    assert main(["score", "--example", "-o", str(output), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("scored 20,000 rows of example_survey.csv")
    assert "20,000 ok" in out[0] and out[0].endswith(f"wrote {output.resolve()}")
    scored = pd.read_csv(output)
    assert list(scored.columns[:2]) == ["SEQN", "WTINT2YR"] and len(scored) == 20_000


def test_options_reach_score_file(tmp_path, capsys):
    survey = tmp_path / "survey.csv"
    survey.write_text("id,w,fatigue,pale_skin\n1,3,yes,maybe\n2,4,no,no\n")
    code = main(["score", str(survey), "-o", str(tmp_path / "out.parquet"), "--id-column", "id", "--keep-columns",
                 "w", "--targets", "anemia", "iron_deficiency", "--on-invalid", "flag", "--chunk-size", "1",
                 "--quiet", "--priors", "default"])
    assert code == 0
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert list(scored.columns) == ["id", "w", "p_anemia", "p_iron_deficiency", "evidence_probability",
                                    "log_evidence_probability", "status"]
    assert scored["status"].tolist()[1] == "ok" and scored["status"][0].startswith("invalid: column 'pale_skin'")
    assert "1 flagged invalid (pale_skin: 1)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, code, expected", [
    (["score", "missing.csv", "-o", "out.csv"], 1, "missing.csv: no such input file"),
    (["score", "-o", "out.csv"], 2, "no INPUT given"),
    (["score", "x.csv", "--example", "-o", "out.csv"], 2, "got INPUT 'x.csv' and --example"),
    (["score", "--example", "-o", "out.csv", "--scheduler", "tcp://h:8786"], 2, "--scheduler was given without"),
    (["score", "--example", "-o", "out.csv", "--engine", "dask", "--interval", "0.9"], 2,
     "--interval and --explain work with --engine local only"),
    (["score", "--example", "-o", "out.csv", "--codebook", "none.toml"], 1, "none.toml: no such codebook file"),
    (["score", "--example", "-o", "out.csv", "--chunk-size", "0"], 2,
     "argument --chunk-size: got '0'; expected a whole number of at least 1"),
    (["score", "--example", "-o", "out.csv", "--seed", "-1"], 2,
     "argument --seed: got '-1'; expected a whole number of at least 0"),
    (["score", "--example", "-o", "out.csv", "--draws", "many"], 2, "argument --draws: got 'many'"),
    (["simulate", "-n", "-5", "-o", "out.csv"], 2, "argument -n: got '-5'"),
    (["simulate", "-n", "5", "-o", "out.csv", "--seed", "-1"], 2, "argument --seed: got '-1'"),
    (["score", "--example", "-o", "out.csv", "--targets", "zinc"], 1, "targets: unknown node 'zinc'"),
])
def test_errors_are_one_sentence_without_traceback(tmp_path, monkeypatch, capsys, argv, code, expected):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "bayescramp: error: " in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_bad_cells_exit_1_and_write_nothing(tmp_path, capsys):
    survey = tmp_path / "survey.csv"
    survey.write_text("fatigue\nyes\noften\n")
    assert main(["score", str(survey), "-o", str(tmp_path / "out.csv"), "--quiet"]) == 1
    assert "survey.csv, line 3, column 'fatigue': got 'often'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.csv"]


def test_help(capsys):
    assert main(["score", "--help"]) == 0
    assert "--on-invalid" in capsys.readouterr().out


def test_startup_imports_neither_pgmpy_matplotlib_nor_dask(tmp_path):
    script = ("import sys, bayescramp\n"
              "from bayescramp.cli import main\n"
              f"assert main(['score', '--example', '-o', r'{tmp_path / 'out.csv'}', '--quiet']) == 0\n"
              "heavy = {'pgmpy', 'matplotlib', 'dask', 'distributed'}\n"
              "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
              "print('heavy:', heavy)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_console_run_end_to_end(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bayescramp", "score", "--example", "-o", "s.parquet"],
                            capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {(tmp_path / 's.parquet').resolve()}" in result.stdout and (tmp_path / "s.parquet").is_file()


@pytest.fixture(scope="module")
def slow_survey(tmp_path_factory):
    """Rows with (nearly) all-distinct evidence patterns: a few seconds of engine work."""
    from bayescramp import load_model

    model = load_model()
    rng = np.random.default_rng(3)
    n_rows = 150_000
    columns = {}
    for node in model.evidence_nodes:
        states = np.array(list(model.states(node)) + [""], dtype=object)
        columns[node] = states[rng.integers(0, len(states), n_rows)]
    path = tmp_path_factory.mktemp("slow") / "survey.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_leaves_nothing_at_output(tmp_path, slow_survey, kill):
    output = tmp_path / "out.csv"
    process = subprocess.Popen([sys.executable, "-m", "bayescramp", "score", str(slow_survey), "-o", str(output),
                                "--quiet", "--chunk-size", "5000"], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.csv.*.partial")):  # the run has started writing
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(kill)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert not output.exists()
    if kill == signal.SIGTERM:  # unwinds like Ctrl-C: the temporary file is removed too
        assert list(tmp_path.iterdir()) == []


def test_score_interval_and_explain_columns(tmp_path, default_model):
    from bayescramp.explain import top_findings
    from bayescramp.uncertainty import add_interval_columns, draw_tables, score_intervals

    survey = tmp_path / "survey.csv"
    default_model.simulate(150, rng=1, missing=0.2).to_csv(survey, index=False)
    out = tmp_path / "scored.csv"
    assert main(["score", str(survey), "-o", str(out), "--interval", "0.8", "--draws", "40", "--seed", "5",
                 "--explain", "--quiet", "--chunk-size", "60"]) == 0
    scored = pd.read_csv(out)
    frame = pd.read_csv(survey)
    # the same draws, scored in one go from a DataFrame, give the same bounds
    tables = draw_tables(default_model.spec, default_model.network, 40, 5)
    expected = add_interval_columns(default_model.score(frame),
                                    score_intervals(default_model.spec, default_model.network, frame, interval=0.8,
                                                    tables=tables))
    for column in [c for c in expected.columns if c.startswith("p_")]:
        np.testing.assert_allclose(scored[column], expected[column], atol=1e-12)
    assert list(scored.columns[:3]) == ["p_vitamin_d_deficiency", "p_vitamin_d_deficiency_lower",
                                        "p_vitamin_d_deficiency_upper"]
    assert (scored["p_potassium_deficiency_lower"] <= scored["p_potassium_deficiency_upper"]).all()
    top = top_findings(default_model.network, frame)
    for column in top.columns:
        assert scored[column].astype(object).fillna("").tolist() == top[column].astype(object).fillna("").tolist()


@pytest.mark.parametrize("argv, message", [
    (["--interval", "1.5"], "interval: got 1.5; expected a probability between 0 and 1"),
])
def test_score_interval_and_explain_option_errors(tmp_path, capsys, default_model, argv, message):
    survey = tmp_path / "survey.csv"
    default_model.simulate(5, rng=1).to_csv(survey, index=False)
    assert main(["score", str(survey), "-o", str(tmp_path / "out.csv"), "--quiet", *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
