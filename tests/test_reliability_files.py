"""Nothing lost, nothing silent, for files and the command line (issue 10).

Each class of failure found by the hostile pass has its cases here, run through the command
line (``main([...])``) with both engines where both apply: the input is never overwritten,
the output is complete or absent, temporaries of killed runs are found and removed, and every
error is one sentence with the same text from either engine.
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from bayescramp.cli import main

ENGINES = ["local", "dask"]
SURVEY_TEXT = "id,leg_cramps,fatigue\n1,yes,no\n2,no,\n3,,yes\n"


def score(*argv):
    return main(["score", *map(str, argv), "--quiet"])


def only_error_lines(err: str) -> list[str]:
    """stderr as lines; each must be one 'bayescramp: error:' sentence (no traceback, no worker noise)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "expected an error message"
    assert all(line.startswith("bayescramp: error: ") for line in lines), err
    return lines


# -- 1. the input is never overwritten ---------------------------------------------------------------------------

def _same_file_spellings(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (input, output) pairs naming the same file; run with tmp_path/"sub" as the working directory."""
    sub = tmp_path / "sub"
    os.symlink(sub / "x.csv", sub / "link.csv")
    os.link(sub / "x.csv", sub / "hard.csv")
    os.symlink(sub, tmp_path / "alias")
    return {
        "same name": ("x.csv", "x.csv"),
        "dot slash": ("x.csv", "./x.csv"),
        "dot dot": ("x.csv", "../sub/x.csv"),
        "absolute": ("x.csv", str(sub / "x.csv")),
        "symlink": ("x.csv", "link.csv"),
        "symlink as input": ("link.csv", "x.csv"),
        "hard link": ("x.csv", "hard.csv"),
        "other case": ("x.csv", "X.CSV"),
        "symlinked folder": ("x.csv", str(tmp_path / "alias" / "x.csv")),
    }


SPELLINGS = ["same name", "dot slash", "dot dot", "absolute", "symlink", "symlink as input", "hard link", "other case",
             "symlinked folder"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_input_is_never_overwritten_whatever_the_spelling(tmp_path, monkeypatch, capsys, engine, spelling):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "x.csv").write_text(SURVEY_TEXT)
    source, output = _same_file_spellings(tmp_path)[spelling]
    monkeypatch.chdir(sub)
    assert score(source, "-o", output, "--engine", engine) == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert "the input is never overwritten" in line and f"{Path(output)}: is the input file" in line
    assert (sub / "x.csv").read_text() == SURVEY_TEXT
    assert sorted(p.name for p in sub.iterdir()) == ["hard.csv", "link.csv", "x.csv"]


@pytest.mark.parametrize("engine", ENGINES)
def test_gzip_input_is_not_overwritten_by_a_csv_gz_output_of_another_case(tmp_path, monkeypatch, capsys, engine):
    import gzip

    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(SURVEY_TEXT.encode()))
    before = (tmp_path / "x.csv.gz").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert score("x.csv.gz", "-o", "X.Csv.Gz", "--engine", engine) == 1
    assert "is the input file" in capsys.readouterr().err
    assert (tmp_path / "x.csv.gz").read_bytes() == before


def test_dask_parquet_folder_is_not_replaced_by_its_own_output(tmp_path, capsys):
    folder = tmp_path / "cohort.parquet"
    folder.mkdir()
    pd.DataFrame({"fatigue": ["yes", "no"]}).to_parquet(folder / "part.0.parquet")
    assert score(folder, "-o", tmp_path / "COHORT.parquet", "--engine", "dask") == 1
    assert "is the input file" in capsys.readouterr().err
    assert (folder / "part.0.parquet").is_file()


def test_dask_output_folder_holding_the_input_is_refused(tmp_path, capsys):
    folder = tmp_path / "out.parquet"
    folder.mkdir()
    (folder / "survey.csv").write_text(SURVEY_TEXT)
    assert score(folder / "survey.csv", "-o", folder, "--engine", "dask") == 1
    assert "is a folder holding the input" in capsys.readouterr().err
    assert (folder / "survey.csv").read_text() == SURVEY_TEXT


def test_dask_output_inside_the_input_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"fatigue": ["yes", "no"]}).to_parquet(folder / "part.0.parquet")
    assert score(folder, "-o", folder / "scores.parquet", "--engine", "dask") == 1
    assert "is inside the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["part.0.parquet"]


def test_dask_glob_matching_the_output_is_refused(tmp_path, capsys):
    for k in range(2):
        (tmp_path / f"part-{k}.csv").write_text(SURVEY_TEXT)
    assert score(tmp_path / "part-*.csv", "-o", tmp_path / "part-1.csv", "--engine", "dask") == 1
    assert "part-1.csv: is the input file" in capsys.readouterr().err
    assert (tmp_path / "part-1.csv").read_text() == SURVEY_TEXT
