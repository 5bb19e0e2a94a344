"""Dask: score_dask and `score --engine dask` give the local numbers."""

import sys

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import bayescramp
from bayescramp import InputError, load_codebook, score_file
from bayescramp.cli import main
from bayescramp.distributed import score_dask_file
from bayescramp.survey import example_paths

SURVEY, CODEBOOK = example_paths()
NUMBERS = slice(2, -1)


@pytest.fixture(scope="module")
def example_frame():
    return pd.read_csv(SURVEY, dtype=str, keep_default_na=False, nrows=4000)


@pytest.fixture(scope="module")
def local_scores(default_model, example_frame):
    return default_model.score(example_frame, codebook=load_codebook(CODEBOOK))


def test_score_dask_equals_model_score(example_frame, local_scores):
    ddf = dd.from_pandas(example_frame, npartitions=3)
    scored = bayescramp.score_dask(ddf, codebook=CODEBOOK)
    assert list(scored.columns) == list(local_scores.columns)
    computed = scored.compute(scheduler="sync")
    assert computed.dtypes.to_dict() == scored._meta.dtypes.to_dict()
    assert computed["SEQN"].tolist() == local_scores["SEQN"].tolist()
    np.testing.assert_allclose(computed.iloc[:, NUMBERS].to_numpy(float),
                               local_scores.iloc[:, NUMBERS].to_numpy(float), rtol=1e-12, atol=1e-14)


def test_bad_cell_in_a_partition_names_partition_and_row(example_frame):
    frame = example_frame.copy()
    frame.loc[2500, "BCQ020"] = "5"
    scored = bayescramp.score_dask(dd.from_pandas(frame, npartitions=2), codebook=CODEBOOK)
    with pytest.raises(InputError, match=r"partition 1, row \d+, column 'BCQ020': got '5'"):
        scored.compute(scheduler="sync")
    flagged = bayescramp.score_dask(dd.from_pandas(frame, npartitions=2), codebook=CODEBOOK, on_invalid="flag")
    assert flagged.compute(scheduler="sync")["status"].str.startswith("invalid").sum() == 1


def test_score_dask_wants_a_dask_dataframe(example_frame):
    with pytest.raises(InputError, match="expected a dask DataFrame"):
        bayescramp.score_dask(example_frame)


@pytest.mark.slow
def test_local_cluster_file_scoring_equals_score_file(tmp_path, example_frame):
    survey = tmp_path / "survey.csv"
    example_frame.to_csv(survey, index=False)
    score_file(survey, tmp_path / "local.csv", codebook=CODEBOOK, progress=False)
    local = pd.read_csv(tmp_path / "local.csv")
    summary = score_dask_file(survey, tmp_path / "dask.parquet", codebook=CODEBOOK, progress=False)
    assert summary.n_rows == summary.n_ok == len(example_frame)
    parts = pd.read_parquet(tmp_path / "dask.parquet")
    assert (tmp_path / "dask.parquet").is_dir()
    assert parts["SEQN"].astype(int).tolist() == local["SEQN"].tolist()
    np.testing.assert_allclose(parts.iloc[:, NUMBERS].to_numpy(float), local.iloc[:, NUMBERS].to_numpy(float),
                               rtol=1e-12, atol=1e-14)
    # the command line, reading the Parquet parts back and writing one CSV
    assert main(["score", str(tmp_path / "local.csv"), "-o", str(tmp_path / "again.csv"), "--engine", "dask",
                 "--quiet", "--id-column", "SEQN", "--targets", "anemia"]) == 1  # scored output holds no evidence
    assert main(["score", str(survey), "-o", str(tmp_path / "cli.csv"), "--engine", "dask", "--quiet",
                 "--codebook", str(CODEBOOK)]) == 0
    via_cli = pd.read_csv(tmp_path / "cli.csv")
    np.testing.assert_allclose(via_cli.iloc[:, NUMBERS].to_numpy(float), local.iloc[:, NUMBERS].to_numpy(float),
                               rtol=1e-12, atol=1e-14)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.csv", "dask.parquet", "local.csv", "survey.csv"]


def test_missing_dask_is_one_sentence(monkeypatch, tmp_path, capsys):
    import builtins

    from bayescramp.cli import main

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith("dask.") or name == "distributed":
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "bayescramp.distributed", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_dask)
    survey = tmp_path / "s.csv"
    survey.write_text("leg_cramps\nyes\n")
    assert main(["score", str(survey), "-o", str(tmp_path / "o.parquet"), "--engine", "dask", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "--engine dask: No module named" in err and "expected dask installed" in err and "Traceback" not in err


def test_score_dask_keeps_the_input_index(default_model):
    frame = pd.DataFrame({"fatigue": ["yes", "no", None, "y", "no", "yes"],
                          "leg_cramps": ["no", "yes", "yes", None, "no", "yes"]},
                         index=pd.Index([50, 10, 40, 20, 30, 0], name="pid"))
    ddf = dd.from_pandas(frame, npartitions=2, sort=False)
    scored = bayescramp.score_dask(ddf).compute(scheduler="sync")
    pd.testing.assert_index_equal(scored.index, frame.index)
    pd.testing.assert_frame_equal(scored, default_model.score(frame), check_exact=False, atol=1e-12, rtol=0)
