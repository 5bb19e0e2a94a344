"""Nothing lost, nothing silent, for files and the command line (issue 10).

Each class of failure found by the hostile pass has its cases here, run through the command
line (``main([...])``) with both engines where both apply: the input is never overwritten,
the output is complete or absent, temporaries of killed runs are found and removed, and every
error is one sentence with the same text from either engine.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayescramp
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


# -- 2. column names: matched ignoring case and surrounding spaces; near misses reported ------------------------

EXACT = pd.DataFrame({"id": [1, 2, 3], "leg_cramps": ["yes", "no", ""], "fatigue": ["no", "", "yes"]})


def test_spaced_and_capitalised_node_columns_are_evidence(default_model):
    spelled = EXACT.rename(columns={"leg_cramps": " leg_cramps", "fatigue": "Fatigue"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = default_model.score(spelled)
    expected = default_model.score(EXACT)
    assert list(scored.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(scored, expected)
    assert scored["p_magnesium_deficiency"].nunique() == 3  # the findings were used


@pytest.mark.parametrize("engine", ENGINES)
def test_spaced_and_capitalised_node_columns_are_evidence_in_files(tmp_path, capsys, engine, default_model):
    (tmp_path / "survey.csv").write_text('id, leg_cramps,FATIGUE \n1,yes,no\n2,no,\n3,,yes\n')
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine) == 0
    assert "not used" not in capsys.readouterr().out
    scored = pd.read_csv(tmp_path / "out.csv")
    expected = default_model.score(EXACT)
    assert list(scored.columns) == list(expected.columns)
    np.testing.assert_allclose(scored["p_magnesium_deficiency"], expected["p_magnesium_deficiency"], rtol=1e-12)


NEAR_MISSES = {"leg cramp": "node leg_cramps", "fatigue_2": "node fatigue", "Anaemia": "node anemia",
               "had-muscle-spasms": "node muscle_spasms"}


def test_near_miss_columns_warn_in_the_api_and_can_be_refused_or_ignored(default_model):
    frame = pd.DataFrame({"id": [1], "leg_cramps": ["yes"], **{name: ["yes"] for name in NEAR_MISSES}})
    with pytest.warns(bayescramp.UnmatchedColumnsWarning) as caught:
        scored = default_model.score(frame)
    [warning] = caught
    for name, like in NEAR_MISSES.items():
        assert f"{name!r} (like {like})" in str(warning.message)
    assert "'id'" not in str(warning.message)
    assert list(scored.columns[:5]) == ["id", *NEAR_MISSES]  # passed through, as before
    with pytest.raises(bayescramp.InputError) as error:
        default_model.score(frame, unmatched="error")
    assert len(error.value.problems) == len(NEAR_MISSES)
    assert "column 'leg cramp' looks like node leg_cramps but is not used as evidence" in str(error.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default_model.score(frame, unmatched="ignore")
    with pytest.raises(bayescramp.InputError, match="unmatched: got 'loud'; expected one of warn, error, ignore"):
        default_model.score(frame, unmatched="loud")


def test_near_miss_columns_warn_in_score_file_and_are_listed_in_the_summary(tmp_path):
    (tmp_path / "survey.csv").write_text("id,leg_cramps,leg cramp,fatigue_2\n1,yes,no,yes\n")
    with pytest.warns(bayescramp.UnmatchedColumnsWarning, match="2 column"):
        summary = bayescramp.score_file(tmp_path / "survey.csv", tmp_path / "out.csv", progress=False)
    assert summary.unmatched_columns == {"leg cramp": "node leg_cramps", "fatigue_2": "node fatigue"}
    assert "\nnot used: 2 column(s) that look like evidence: 'leg cramp' (like node leg_cramps)" in str(summary)


@pytest.mark.parametrize("engine", ENGINES)
def test_near_miss_columns_are_a_summary_line_or_an_error_on_the_command_line(tmp_path, capsys, engine):
    (tmp_path / "survey.csv").write_text("id,leg_cramps,fatigue_2\n1,yes,yes\n2,no,no\n")
    out = tmp_path / "out.csv"
    assert score(tmp_path / "survey.csv", "-o", out, "--engine", engine) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # not a Python warning: a line of the summary
    lines = captured.out.splitlines()
    assert lines[0].startswith("scored 2 rows") and lines[1].startswith("not used: 1 column(s)")
    assert "'fatigue_2' (like node fatigue)" in lines[1]
    out.unlink()
    assert score(tmp_path / "survey.csv", "-o", out, "--engine", engine, "--unmatched", "error") == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert "column 'fatigue_2' looks like node fatigue but is not used as evidence" in line
    assert not out.exists()
    assert score(tmp_path / "survey.csv", "-o", out, "--engine", engine, "--unmatched", "ignore") == 0
    assert "not used" not in capsys.readouterr().out


@pytest.mark.parametrize("engine", ENGINES)
def test_two_columns_matching_one_node_is_an_error_naming_both(tmp_path, capsys, engine, default_model):
    (tmp_path / "survey.csv").write_text("id,fatigue,Fatigue \n1,yes,no\n")
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine) == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert "columns 'fatigue', 'Fatigue ' all match 'fatigue'" in line
    with pytest.raises(bayescramp.InputError, match="columns 'fatigue', 'FATIGUE' all match 'fatigue'"):
        default_model.score(pd.DataFrame({"fatigue": ["yes"], "FATIGUE": ["no"]}))


def test_codebook_columns_and_id_columns_match_ignoring_case_and_spaces(tmp_path, default_model):
    book = tmp_path / "book.toml"
    book.write_text('[codebook]\nid_columns = ["seqn"]\n[nodes.muscle_spasms]\ncolumn = "BCQ020"\n'
                    'code_set = "nhanes_yes_no"\n')
    frame = pd.DataFrame({"SEQN": [7, 8], " bcq020": ["1", "2"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = default_model.score(frame, codebook=book)
    assert list(scored.columns[:1]) == ["SEQN"]
    expected = default_model.score(pd.DataFrame({"muscle_spasms": ["yes", "no"]}))
    np.testing.assert_allclose(scored["p_calcium_deficiency"], expected["p_calcium_deficiency"], rtol=1e-12)


def test_a_node_column_the_codebook_does_not_map_is_reported(tmp_path, default_model):
    book = tmp_path / "book.toml"
    book.write_text('[nodes.muscle_spasms]\ncolumn = "BCQ020"\ncode_set = "nhanes_yes_no"\n')
    frame = pd.DataFrame({"BCQ020": ["1"], "fatigue": ["yes"], "bcq_020_note": ["x"]})
    with pytest.warns(bayescramp.UnmatchedColumnsWarning) as caught:
        default_model.score(frame, codebook=book)
    assert "'fatigue' (like node fatigue)" in str(caught[0].message)
    assert "bcq_020_note" not in str(caught[0].message)  # codebook columns match by letters only, not by part


def test_explain_and_score_dask_use_the_same_matching(default_model):
    import dask.dataframe as dd

    spelled = pd.DataFrame({"Leg_Cramps ": ["yes"], "fatigue": ["no"]})
    plain = pd.DataFrame({"leg_cramps": ["yes"], "fatigue": ["no"]})
    assert default_model.explain(spelled)["finding"].tolist() == default_model.explain(plain)["finding"].tolist()
    with pytest.warns(bayescramp.UnmatchedColumnsWarning, match="'fatigues' \\(like node fatigue\\)"):
        lazy = bayescramp.score_dask(dd.from_pandas(spelled.assign(fatigues="x"), npartitions=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, when the graph was built; never from the partitions
        computed = lazy.compute(scheduler="sync")
    np.testing.assert_allclose(computed["p_magnesium_deficiency"], default_model.score(plain)["p_magnesium_deficiency"])


# -- 4. compression found from the content, formats from names in any case -----------------------------------------

def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode(), mtime=0)   # no timestamp: the same bytes (and test ids) every run


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name, content", [
    ("survey.csv", _gzip(SURVEY_TEXT)),           # gzip named .csv
    ("SURVEY.CSV.GZ", _gzip(SURVEY_TEXT)),        # upper case
    ("Survey.Csv", SURVEY_TEXT.encode()),          # mixed case, plain
    ("survey.csv.gz", SURVEY_TEXT.encode()),      # plain text named .csv.gz
], ids=["gzip-named-csv", "gzip-upper-case", "plain-mixed-case", "plain-named-gz"])
def test_compression_is_found_from_the_content(tmp_path, capsys, default_model, engine, name, content):
    (tmp_path / name).write_bytes(content)
    assert score(tmp_path / name, "-o", tmp_path / "out.csv", "--engine", engine) == 0
    scored = pd.read_csv(tmp_path / "out.csv")
    expected = default_model.score(EXACT)
    assert scored["id"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(scored["p_magnesium_deficiency"], expected["p_magnesium_deficiency"], rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("output", ["OUT.CSV.GZ", "Out.Csv.Gz", "OUT.PARQUET"])
def test_output_format_is_chosen_from_the_name_in_any_case(tmp_path, engine, output):
    (tmp_path / "survey.csv").write_text(SURVEY_TEXT)
    assert score(tmp_path / "survey.csv", "-o", tmp_path / output, "--engine", engine) == 0
    written = tmp_path / output
    if output.lower().endswith(".parquet"):
        assert len(pd.read_parquet(written)) == 3
    else:
        assert written.read_bytes()[:2] == b"\x1f\x8b"
        assert len(pd.read_csv(written, compression="gzip")) == 3


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("content, expected", [
    (__import__("bz2").compress(SURVEY_TEXT.encode()), "survey.csv: is bzip2-compressed; expected CSV text, plain or "
                                                       "gzip-compressed"),
    (b"PAR1" + bytes(20), "survey.csv: holds Parquet data, not CSV text; expected CSV (or rename the file to "
                          "survey.parquet)"),
    (_gzip(SURVEY_TEXT)[:25], "survey.csv: cannot be read as CSV"),  # a truncated gzip file
])
def test_other_content_is_one_sentence(tmp_path, capsys, engine, content, expected):
    (tmp_path / "survey.csv").write_bytes(content)
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine) == 1
    lines = only_error_lines(capsys.readouterr().err)
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.csv"]


# -- 6. the same one-sentence messages from both engines; no traceback, no worker noise --------------------------

def _parquet_with_duplicate_columns(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(["yes"]), pa.array(["no"])], names=["fatigue", "fatigue"]), path)


def _parquet_with(column, path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2], "extra": column, "fatigue": ["yes", "no"]}), path)


SAME_MESSAGE_CASES = {
    "empty file": ("survey.csv", b""),
    "blank lines only": ("survey.csv", b"\n\n\r\n"),
    "ragged rows": ("survey.csv", b"id,fatigue\n1,yes\n\n2,no,extra\n3\n4,no\n"),
    "ragged row not UTF-8": ("survey.csv", b"id,fatigue\n1,yes\n2,caf\xe9,extra\n"),
    "id not UTF-8": ("survey.csv", b"id,fatigue\nab,yes\nd\xe9f,no\n"),
    "header not UTF-8": ("survey.csv", b"id,fat\xffigue\n1,yes\n"),
    "bad cell after a quoted line break": ("survey.csv", b'id,note,fatigue\n1,"a\nb",yes\n\n2,c,often\n'),
    "evidence not UTF-8": ("survey.csv", b"id,fatigue\n1,yes\n2,caf\xe9\n"),
    "no evidence column": ("survey.csv", b"id,weight\n1,2\n"),
    "duplicate columns": ("survey.csv", b"id,fatigue,fatigue\n1,yes,no\n"),
    "duplicate Parquet columns": ("survey.parquet", _parquet_with_duplicate_columns),
    "Parquet struct column to CSV": ("survey.parquet", lambda path: _parquet_with([{"a": 1}, {"a": 2}], path)),
    "Parquet list column to CSV": ("survey.parquet", lambda path: _parquet_with([[1], [2, 3]], path)),
    "missing file": ("absent.csv", None),
}


@pytest.mark.parametrize("case", list(SAME_MESSAGE_CASES))
def test_both_engines_give_the_same_one_sentence_messages(tmp_path, capsys, case):
    name, content = SAME_MESSAGE_CASES[case]
    source = tmp_path / name
    if callable(content):
        content(source)
    elif content is not None:
        source.write_bytes(content)
    messages = {}
    for engine in ENGINES:
        assert score(source, "-o", tmp_path / "out.csv", "--engine", engine) == 1, engine
        messages[engine] = only_error_lines(capsys.readouterr().err)
        assert not (tmp_path / "out.csv").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert messages["dask"] == messages["local"]


def test_line_numbers_count_the_header_blank_lines_and_line_breaks_in_quoted_fields(tmp_path, capsys):
    rows = ['1,"two\nlines",yes', "", "2,x,no", "\r", '3,"three\r\nlines\nhere",often', "4,y,sometimes"]
    (tmp_path / "survey.csv").write_bytes(("id,note,fatigue\n" + "\n".join(rows) + "\n").encode())
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv") == 1
    err = capsys.readouterr().err
    # line 1 the header; 2-3 row 1; 4 blank; 5 row 2; 6 blank (CR LF); 7-9 row 3; 10 row 4
    assert "survey.csv, line 7, column 'fatigue': got 'often'" in err
    assert "survey.csv, line 10, column 'fatigue': got 'sometimes'" in err


@pytest.mark.parametrize("engine", ENGINES)
def test_flagged_bytes_that_are_not_utf8_give_the_same_output_from_both_engines(tmp_path, engine):
    (tmp_path / "survey.csv").write_bytes(b"id,fatigue\n1,yes\n2,caf\xe9\n3,\n")
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine, "--on-invalid", "flag") == 0
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["status"][1] == ("invalid: column 'fatigue' got b'caf\\xe9' (not UTF-8 text); expected no, yes, "
                                   "or yes/no, y/n, true/false, 1/0 (any case), or blank for no finding")
    assert scored["status"][[0, 2]].tolist() == ["ok", "ok"]


def test_dask_empty_folder_and_glob_matching_nothing(tmp_path, capsys):
    (tmp_path / "parts").mkdir()
    assert score(tmp_path / "parts", "-o", tmp_path / "out.csv", "--engine", "dask") == 1
    assert "parts: is a folder holding no Parquet parts (*.parquet)" in only_error_lines(capsys.readouterr().err)[0]
    assert score(tmp_path / "part-*.csv", "-o", tmp_path / "out.csv", "--engine", "dask") == 1
    assert "part-*.csv: matches no file" in only_error_lines(capsys.readouterr().err)[0]


def test_dask_parts_with_different_columns(tmp_path, capsys):
    (tmp_path / "part-1.csv").write_text("id,fatigue\n1,yes\n")
    (tmp_path / "part-2.csv").write_text("id,leg_cramps\n2,no\n")
    assert score(tmp_path / "part-*.csv", "-o", tmp_path / "out.csv", "--engine", "dask") == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert "part-2.csv: has columns id, leg_cramps, but" in line and "expected every part to have the same" in line


def test_dask_bad_cell_in_the_second_part_names_its_file_and_line(tmp_path, capsys):
    (tmp_path / "part-1.csv").write_text("id,fatigue\n1,yes\n")
    (tmp_path / "part-2.csv").write_text("id,fatigue\n2,no\n3,often\n")
    assert score(tmp_path / "part-*.csv", "-o", tmp_path / "out.csv", "--engine", "dask") == 1
    lines = only_error_lines(capsys.readouterr().err)
    assert f"{tmp_path / 'part-2.csv'}, line 3, column 'fatigue': got 'often'" in lines[0]


def test_dask_reads_a_quoted_line_break_across_its_block_boundary(tmp_path, monkeypatch, default_model):
    from bayescramp import distributed

    monkeypatch.setattr(distributed, "DASK_CSV_BLOCK_SIZE", 40)
    rows = "".join(f'{k},"note {k}\nsecond line {k}",{"yes" if k % 2 else "no"}\n' for k in range(12))
    (tmp_path / "survey.csv").write_text("id,note,fatigue\n" + rows)
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.parquet", "--engine", "dask") == 0
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert scored["id"].astype(int).tolist() == list(range(12))
    assert scored["note"].tolist() == [f"note {k}\nsecond line {k}" for k in range(12)]


def test_usage_errors_exit_2(tmp_path, capsys):
    (tmp_path / "survey.csv").write_text(SURVEY_TEXT)
    out = tmp_path / "out.csv"
    for argv in (["-o", out], [tmp_path / "survey.csv", "--example", "-o", out],
                 [tmp_path / "survey.csv", "-o", out, "--scheduler", "tcp://127.0.0.1:1"],
                 [tmp_path / "survey.csv", "-o", out, "--seed", "-1"],
                 [tmp_path / "survey.csv", "-o", out, "--unmatched", "sometimes"]):
        assert score(*argv) == 2
        err = capsys.readouterr().err
        assert "bayescramp: error: " in err and "Traceback" not in err
    assert not out.exists()


def test_plot_cohort_on_files_it_cannot_read_is_one_sentence(tmp_path, capsys):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "ragged.csv").write_text("p_x,status\n0.5,ok,extra\n")
    (tmp_path / "zipped.csv").write_bytes(_gzip("p_anemia,status\n0.5,ok\n0.25,ok\n"))
    assert main(["plot", "cohort", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "c.png")]) == 1
    assert "empty.csv: the file is empty" in only_error_lines(capsys.readouterr().err)[0]
    assert main(["plot", "cohort", str(tmp_path / "ragged.csv"), "-o", str(tmp_path / "c.png")]) == 1
    assert "ragged.csv, line 2: has 3 fields; expected 2" in only_error_lines(capsys.readouterr().err)[0]
    assert main(["plot", "cohort", str(tmp_path / "zipped.csv"), "-o", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").is_file()


# -- 5. signals and kills: nothing at OUTPUT unless complete; temporaries removed or found later -------------------

ROOT = Path(__file__).parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def slow_folder(tmp_path_factory):
    """A survey with (nearly) all-distinct evidence patterns: seconds of engine work, so a run can be stopped."""
    model = bayescramp.load_model()
    rng = np.random.default_rng(3)
    n_rows = 150_000
    columns = {}
    for node in model.evidence_nodes:
        states = np.array(list(model.states(node)) + [""], dtype=object)
        columns[node] = states[rng.integers(0, len(states), n_rows)]
    folder = tmp_path_factory.mktemp("signals")
    pd.DataFrame(columns).to_csv(folder / "survey.csv", index=False)
    return folder


def start_and_stop(folder: Path, output: str, stop: int, *extra: str) -> tuple[int, str]:
    """Start `bayescramp score`, wait until its temporary output exists, send `stop`; return (exit code, stderr)."""
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "bayescramp", "score", str(folder / "survey.csv"), "-o",
                                str(folder / output), "--quiet", "--chunk-size", "5000", *extra],
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pattern = f".{output}.bayescramp-{process.pid}-*.partial"
    deadline = time.monotonic() + 120  # a bound on the wait, not a timing assertion
    while not list(folder.glob(pattern)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.02)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert stop == signal.SIGKILL or process.returncode == 128 + stop, err
    return process.returncode, err.decode()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "survey.csv")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"])
def test_catchable_signals_stop_a_run_cleanly(slow_folder, name):
    import signal

    stop = getattr(signal, name)
    _, err = start_and_stop(slow_folder, "out.csv", stop)
    assert err == f"bayescramp: stopped by {name}; no output was written (temporary files removed).\n"
    assert leftovers(slow_folder) == []


@pytest.mark.slow
@pytest.mark.parametrize("name, output", [("SIGTERM", "out.parquet"), ("SIGHUP", "out.csv")])
def test_catchable_signals_stop_a_dask_run_cleanly(slow_folder, name, output):
    import signal

    _, err = start_and_stop(slow_folder, output, getattr(signal, name), "--engine", "dask")
    assert err == f"bayescramp: stopped by {name}; no output was written (temporary files removed).\n"
    assert leftovers(slow_folder) == []  # no .partial folder of parts either


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_kill_9_leaves_no_output_and_its_temporaries_are_found_later(slow_folder, capsys, engine):
    import signal

    output = "out.parquet" if engine == "dask" else "out.csv"
    start_and_stop(slow_folder, output, signal.SIGKILL, "--engine", engine)
    left = leftovers(slow_folder)
    assert left and all(name.startswith(f".{output}.bayescramp-") and name.endswith(".partial") for name in left)
    assert not (slow_folder / output).exists()  # never a file at OUTPUT unless complete
    assert main(["clean", str(slow_folder)]) == 0
    assert f"removed {len(left)} temporary file(s) of stopped runs" in capsys.readouterr().out
    assert leftovers(slow_folder) == []


@pytest.mark.slow
def test_a_later_run_in_the_folder_removes_the_temporaries_of_a_killed_one(slow_folder, tmp_path):
    import signal

    start_and_stop(slow_folder, "out.csv", signal.SIGKILL)
    assert leftovers(slow_folder)
    (slow_folder / "small.csv").write_text(SURVEY_TEXT)
    try:
        assert score(slow_folder / "small.csv", "-o", slow_folder / "other.csv") == 0
        assert leftovers(slow_folder) == ["other.csv", "small.csv"]
    finally:
        for name in ("small.csv", "other.csv"):
            (slow_folder / name).unlink(missing_ok=True)


def test_clean_keeps_temporaries_of_running_processes_and_other_hosts(tmp_path, capsys):
    from bayescramp.tabular import _HOST

    mine = tmp_path / f".out.csv.bayescramp-{os.getpid()}-{_HOST}-abcd1234.partial"
    other_host = tmp_path / ".out.csv.bayescramp-1-someotherhost-abcd1234.partial"
    stale = tmp_path / f".out.csv.bayescramp-{_dead_pid()}-{_HOST}-abcd1234.partial"
    unrelated = tmp_path / ".notes.partial"
    for path in (mine, other_host, stale, unrelated):
        path.write_text("x")
    assert main(["clean", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 temporary file(s) of stopped runs in {tmp_path}: {stale.name}" in out
    assert "kept 2 of running processes or other hosts" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other_host.name, unrelated.name])
    assert main(["clean", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such folder" in capsys.readouterr().err


def _dead_pid() -> int:
    """The id of a process that has ended."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- 7. messages name what the user wrote; counts per column -------------------------------------------------------

def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: read-only for a normal user, /sys for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not os.path.isdir("/sys") or os.access("/sys", os.W_OK) and _can_create_in("/sys"):
        pytest.skip("no folder this (root) process cannot write in")
    return Path("/sys")


def _can_create_in(folder: str) -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_an_unwritable_output_folder_is_named_not_the_temporary(tmp_path, capsys, engine, output):
    (tmp_path / "survey.csv").write_text(SURVEY_TEXT)
    target = _unwritable_folder(tmp_path) / output
    assert score(tmp_path / "survey.csv", "-o", target, "--engine", engine) == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert line.startswith(f"bayescramp: error: {target}: cannot be written (") and ".partial" not in line


@pytest.mark.parametrize("engine", ENGINES)
def test_an_existing_folder_at_a_csv_output_is_named(tmp_path, capsys, engine):
    (tmp_path / "survey.csv").write_text(SURVEY_TEXT)
    (tmp_path / "out.csv").mkdir()
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine) == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert f"{tmp_path / 'out.csv'}: is an existing folder; expected a file name for the output" in line
    assert ".partial" not in line and leftovers(tmp_path) == ["out.csv"]


def test_other_commands_name_their_output_too(tmp_path, capsys):
    (tmp_path / "net.png").mkdir()
    assert main(["plot", "network", "-o", str(tmp_path / "net.png")]) == 1
    assert f"{tmp_path / 'net.png'}: is an existing folder" in only_error_lines(capsys.readouterr().err)[0]
    target = _unwritable_folder(tmp_path) / "cohort.csv"
    assert main(["simulate", "-n", "10", "-o", str(target)]) == 1
    [line] = only_error_lines(capsys.readouterr().err)
    assert line.startswith(f"bayescramp: error: {target}: cannot be written (") and ".partial" not in line


@pytest.mark.parametrize("engine", ENGINES)
def test_a_row_bad_in_two_columns_counts_under_both(tmp_path, capsys, engine):
    (tmp_path / "survey.csv").write_text("id,fatigue,pale_skin,leg_cramps\n1,often,maybe,yes\n2,often,no,\n"
                                         "3,yes,no,no\n4,no,no,sometimes\n")
    assert score(tmp_path / "survey.csv", "-o", tmp_path / "out.csv", "--engine", engine, "--on-invalid",
                 "flag") == 0
    out = capsys.readouterr().out
    assert "1 ok, 0 impossible evidence, 3 flagged invalid (" in out
    counts = out.split("flagged invalid (")[1].split(")")[0]
    assert sorted(counts.split(", ")) == ["fatigue: 2", "leg_cramps: 1", "pale_skin: 1"]
