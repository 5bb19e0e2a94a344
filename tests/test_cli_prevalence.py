"""`bayescramp prevalence`: scored or survey input, design options, outputs and errors (in process)."""

import pandas as pd
import pytest

from bayescramp import load_codebook, load_model
from bayescramp.cli import main
from bayescramp.prevalence import prevalence
from bayescramp.survey import example_paths

SURVEY, CODEBOOK = example_paths()
DESIGN = ["--weights", "WTINT2YR", "--strata", "SDMVSTRA", "--psu", "SDMVPSU"]


@pytest.fixture(scope="module")
def example_table():
    survey = pd.read_csv(SURVEY, dtype=str)
    return load_model().prevalence(survey, codebook=CODEBOOK, weights="WTINT2YR", strata="SDMVSTRA", psu="SDMVPSU",
                                   by=["BCQ010"])


def test_survey_file_is_scored_then_estimated(tmp_path, capsys, example_table):
    output = tmp_path / "prevalence.csv"
    code = main(["prevalence", str(SURVEY), "--codebook", str(CODEBOOK), *DESIGN, "--by", "BCQ010", "-o", str(output),
                 "--plot", str(tmp_path / "forest.png")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("example_survey.csv: 20,000 rows (20,000 ok), scored; design: weights WTINT2YR, strata "
                          "SDMVSTRA, psu SDMVPSU; 15 strata, 30 PSUs, df 15")
    assert "\npotassium_deficiency\n" in out and "BCQ010=(missing)" in out
    written = pd.read_csv(output)
    assert len(written) == len(example_table)
    pd.testing.assert_series_equal(written["estimate"], example_table["estimate"], check_exact=False, rtol=1e-12)
    assert (tmp_path / "forest.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest.png", "prevalence.csv"]


def test_scored_file_is_used_as_is(tmp_path, capsys, example_table):
    scores = load_model().score(pd.read_csv(SURVEY, dtype=str), codebook=load_codebook(CODEBOOK))
    survey = pd.read_csv(SURVEY, dtype=str)
    scored = pd.concat([scores, survey[[c for c in ["SDMVSTRA", "SDMVPSU", "BCQ010"] if c not in scores]]], axis=1)
    path = tmp_path / "scores.parquet"
    scored.to_parquet(path)
    assert main(["prevalence", str(path), *DESIGN, "--by", "BCQ010", "--targets", "iron_deficiency",
                 "-o", str(tmp_path / "out.parquet")]) == 0
    assert "rows (20,000 ok); design" in capsys.readouterr().out
    written = pd.read_parquet(tmp_path / "out.parquet")
    expected = example_table[example_table["target"] == "iron_deficiency"].reset_index(drop=True)
    pd.testing.assert_series_equal(written["se"], expected["se"], check_exact=False, rtol=1e-12)


def test_crosses_lonely_psu_and_level_reach_the_estimator(tmp_path, capsys):
    path = tmp_path / "scores.csv"
    frame = pd.DataFrame({"p_a": [0.1, 0.4, 0.3, 0.2, 0.6], "status": "ok", "s": [1, 1, 2, 2, 3],
                          "u": [1, 2, 1, 2, 1], "sex": list("fmfmf"), "age": list("oyoyy")})
    frame.to_csv(path, index=False)
    assert main(["prevalence", str(path), "--strata", "s", "--psu", "u", "--by", "sex*age", "--lonely-psu",
                 "adjust", "--level", "0.9", "-o", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "sex=f, age=o" in out and "90% CI" in out and "(1 lonely strata)" in out
    expected = prevalence(frame, strata="s", psu="u", by=["sex*age"], lonely_psu="adjust", level=0.9)
    pd.testing.assert_series_equal(pd.read_csv(tmp_path / "t.csv")["upper"], expected["upper"], check_exact=False)


@pytest.mark.parametrize("argv, message", [
    (["--weights", "nope"], "scores.csv: no column 'nope' for weights; expected one of"),
    (["--strata", "s", "--psu", "u"], "scores.csv, column 's': stratum '3' has one PSU"),
    (["--weights", "w"], "scores.csv, row 4, column 'w': got a missing value; expected a sampling weight"),
    (["--interval", "0.9"], "is a scored table; --interval needs the survey file"),
    (["-o", "out.txt"], "out.txt: unknown table format"),
])
def test_errors_are_one_sentence_and_write_nothing(tmp_path, capsys, argv, message):
    path = tmp_path / "scores.csv"
    pd.DataFrame({"p_a": [0.1, 0.4, 0.3], "status": "ok", "s": [1, 1, 3], "u": [1, 2, 1],
                  "w": [1.0, 2.0, None]}).to_csv(path, index=False)
    assert main(["prevalence", str(path), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_help_describes_the_design_options(capsys):
    assert main(["prevalence", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--weights", "--strata", "--psu", "--fpc", "--by", "--lonely-psu", "--interval", "--plot"):
        assert option in out
