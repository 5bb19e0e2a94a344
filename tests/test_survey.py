"""score_file: streaming CSV/Parquet scoring, bad input, atomic output."""

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bayescramp
from bayescramp import InputError, load_codebook, score_file, survey
from bayescramp.survey import example_paths

SURVEY, CODEBOOK = example_paths()
NUMBERS = slice(2, -1)  # the p_ columns, evidence_probability, log_evidence_probability of example scores


def leftovers(folder):
    """Files a failed run must not leave: the output or its temporary."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".out", "out")))


def fails(tmp_path, content, expected, *, name="survey.csv", output="out.csv", **options):
    """Write ``content``, score it, assert the error mentions every ``expected`` part and nothing is written."""
    source = tmp_path / name
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as error:
        score_file(source, tmp_path / output, progress=False, **options)
    message = str(error.value)
    for part in expected:
        assert part in message, message
    assert leftovers(tmp_path) == []
    return message


@pytest.fixture(scope="module")
def example_frame():
    return pd.read_csv(SURVEY, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def example_scores(default_model, example_frame):
    return default_model.score(example_frame, codebook=load_codebook(CODEBOOK))


def test_example_survey_is_bundled_with_ids_weights_blanks_and_refusals(example_frame):
    assert len(example_frame) == 20_000
    assert list(example_frame.columns[:2]) == ["SEQN", "WTINT2YR"]
    assert example_frame["SEQN"].is_unique
    cells = example_frame.iloc[:, 2:].to_numpy().ravel()
    assert {"", ".", "7", "9"} <= set(cells)


@pytest.mark.parametrize("output", ["out.csv", "out.csv.gz", "out.parquet"])
def test_csv_parquet_and_dataframe_give_the_same_numbers(tmp_path, example_scores, output):
    summary = score_file(SURVEY, tmp_path / output, codebook=CODEBOOK, progress=False)
    assert summary.n_rows == summary.n_ok == 20_000
    frame = pd.read_parquet(tmp_path / output) if output.endswith("parquet") else pd.read_csv(tmp_path / output)
    assert list(frame.columns) == list(example_scores.columns)
    assert frame["SEQN"].astype(int).tolist() == example_scores["SEQN"].astype(int).tolist()
    np.testing.assert_allclose(frame.iloc[:, NUMBERS].to_numpy(float),
                               example_scores.iloc[:, NUMBERS].to_numpy(float), rtol=1e-12, atol=1e-14)


def test_parquet_input_with_numeric_codes_matches_csv_input(tmp_path, example_frame, example_scores):
    typed = example_frame.replace({"": np.nan, ".": np.nan}).astype(float)
    typed.to_parquet(tmp_path / "survey.parquet")
    score_file(tmp_path / "survey.parquet", tmp_path / "out.parquet", codebook=CODEBOOK, progress=False)
    frame = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(frame.iloc[:, NUMBERS].to_numpy(float),
                               example_scores.iloc[:, NUMBERS].to_numpy(float), rtol=1e-12, atol=1e-14)
    assert frame["SEQN"].dtype == float  # Parquet pass-through columns keep their type


@pytest.mark.parametrize("chunk_size", [1, 7, 333])
def test_rows_spanning_chunk_boundaries_keep_their_order_and_scores(tmp_path, default_model, chunk_size):
    cohort = default_model.simulate(1000, rng=5, missing=0.2)
    cohort.insert(0, "id", np.arange(1000) * 3)
    cohort.to_csv(tmp_path / "survey.csv", index=False)
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.csv", chunk_size=chunk_size, progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    expected = default_model.score(cohort)
    assert summary.n_rows == 1000
    assert scored["id"].tolist() == cohort["id"].tolist()
    np.testing.assert_allclose(scored.iloc[:, 1:-1].to_numpy(float), expected.iloc[:, 1:-1].to_numpy(float),
                               rtol=1e-12, atol=1e-14)
    assert summary.n_patterns == len(cohort.drop(columns="id").drop_duplicates())


def test_bom_crlf_and_quoted_fields_are_read(tmp_path, default_model):
    content = ('\ufeffid,"note, quoted",fatigue,diuretic\r\n'
               '1,"a ""b"", c",yes,thiazide\r\n'
               '2,,no,\r\n')
    (tmp_path / "survey.csv").write_bytes(content.encode("utf-8"))
    score_file(tmp_path / "survey.csv", tmp_path / "out.csv", progress=False)
    scored = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(scored.columns[:2]) == ["id", "note, quoted"]
    assert scored["note, quoted"].tolist() == ['a "b", c', ""]
    expected = default_model.posterior({"fatigue": "yes", "diuretic": "thiazide"})
    assert scored["p_magnesium_deficiency"][0] == pytest.approx(expected["magnesium_deficiency"]["present"], abs=1e-12)


def test_header_only_gives_an_empty_output_with_the_header(tmp_path):
    (tmp_path / "survey.csv").write_text("id,fatigue\n")
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.csv", progress=False)
    assert summary.n_rows == 0
    header = (tmp_path / "out.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].startswith('"id","p_vitamin_d_deficiency"')


def test_unknown_codes_are_listed_with_file_row_column_value_and_expectation(tmp_path):
    rows = "".join(f"{i},{'sometimes' if i % 2 else 'yes'}\n" for i in range(60))
    message = fails(tmp_path, "id,fatigue\n" + rows, [
        "survey.csv, line 3, column 'fatigue': got 'sometimes'; expected no, yes",
        "... and 10 more invalid cell(s)",
        "--on-invalid flag"])
    assert message.count("got 'sometimes'") == 20


def test_codes_are_checked_across_chunks_and_count_every_bad_cell(tmp_path):
    rows = "".join(f"{i},{'x' if i in (5, 950) else 'no'}\n" for i in range(1000))
    fails(tmp_path, "id,fatigue\n" + rows, ["line 7, column 'fatigue'", "line 952, column 'fatigue'"], chunk_size=100)


@pytest.mark.parametrize("cells, expected", [
    ("yes", "column 'BCQ020': got 'yes'; expected 1 (yes); 2 (no); 7, 9, 77, 99, ., blank (no finding)"),
    ("3", "column 'BCQ020': got '3'; expected 1 (yes)"),
])
def test_code_of_the_wrong_kind_in_a_coded_column(tmp_path, cells, expected):
    book = tmp_path / "book.toml"
    book.write_text('[nodes.muscle_spasms]\ncolumn = "BCQ020"\ncode_set = "nhanes_yes_no"\n')
    fails(tmp_path, f"SEQN,BCQ020\n1,1\n2,{cells}\n", ["survey.csv, line 3", expected], codebook=book)


def test_number_in_a_state_name_column(tmp_path):
    fails(tmp_path, "id,diuretic\n1,none\n2,3\n",
          ["survey.csv, line 3, column 'diuretic': got '3'; expected none, thiazide, loop, potassium_sparing"])


def test_flag_writes_every_row_and_flags_bad_ones(tmp_path):
    (tmp_path / "survey.csv").write_text("id,fatigue,leg_cramps,cramp_timing\n1,yes,,\n2,maybe,,\n3,no,no,night\n")
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.csv", on_invalid="flag", progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["id"].tolist() == [1, 2, 3]
    assert scored["status"][0] == "ok"
    assert scored["status"][1].startswith("invalid: column 'fatigue' got 'maybe'; expected no, yes")
    assert scored["status"][2] == "impossible_evidence"
    assert scored.loc[1:, "p_iron_deficiency"].isna().all()
    assert (summary.n_ok, summary.n_invalid, summary.n_impossible) == (1, 1, 1)
    assert summary.invalid_by_column == {"fatigue": 1}
    assert "1 flagged invalid (fatigue: 1)" in str(summary) and "1 impossible evidence" in str(summary)


def test_duplicate_column_names(tmp_path):
    fails(tmp_path, "id,fatigue,fatigue\n1,yes,no\n", ["column 'fatigue' appears more than once"])


def test_a_node_mapped_twice_in_a_codebook(tmp_path):
    book = tmp_path / "book.toml"
    book.write_text('[nodes.fatigue]\ncolumn = "A"\ncode_set = "yes_no"\n[nodes.fatigue]\ncolumn = "B"\n'
                    'code_set = "yes_no"\n')
    fails(tmp_path, "A,B\n1,1\n", ["book.toml: not valid TOML", "mapped twice"], codebook=book)


def test_no_column_informs_the_model(tmp_path):
    fails(tmp_path, "id,age,gender\n1,40,f\n", ["no column informs the model", "columns seen: id, age, gender",
                                            "--codebook FILE"])


def test_codebook_columns_absent_from_the_file(tmp_path):
    fails(tmp_path, "id,age\n1,40\n", ["none of the columns example_codebook.toml maps", "columns seen: id, age"],
          codebook=CODEBOOK)


def test_empty_file(tmp_path):
    fails(tmp_path, "", ["survey.csv: the file is empty; expected a header row"])


def test_ragged_rows_are_listed_with_their_row_numbers(tmp_path):
    fails(tmp_path, "id,fatigue\n1,yes\n2,no,extra\n3\n4,no\n",
          ["survey.csv, line 3: has 3 fields; expected 2", "survey.csv, line 4: has 1 fields"])


def test_bytes_that_are_not_utf8_in_an_evidence_column(tmp_path):
    fails(tmp_path, b"id,fatigue\n1,yes\n2,caf\xe9\n",
          ["survey.csv, line 3, column 'fatigue': got b'caf\\xe9' (not UTF-8 text)"])


def test_bytes_that_are_not_utf8_in_a_passed_through_column(tmp_path):
    fails(tmp_path, b"name,fatigue\nab,yes\nd\xe9f,no\n",
          ["survey.csv, line 3, column 'name'", "not UTF-8 text"])


def test_header_that_is_not_utf8(tmp_path):
    fails(tmp_path, b"id,fat\xffigue\n1,yes\n", ["line 1 (the header)", "not UTF-8"])


def test_missing_input_file(tmp_path):
    fails(tmp_path, None, ["absent.csv: no such input file"], name="absent.csv")


def test_output_folder_that_does_not_exist(tmp_path):
    (tmp_path / "survey.csv").write_text("fatigue\nyes\n")
    with pytest.raises(InputError, match="the output folder .* does not exist"):
        score_file(tmp_path / "survey.csv", tmp_path / "nowhere" / "out.csv", progress=False)


def test_unreadable_parquet(tmp_path):
    fails(tmp_path, "fatigue\nyes\n", ["survey.parquet: cannot be read as Parquet"], name="survey.parquet")


def test_unknown_output_format(tmp_path):
    fails(tmp_path, "fatigue\nyes\n", ["out.xlsx: unknown table format"], output="out.xlsx")


def test_pass_through_column_named_like_an_output_column(tmp_path):
    fails(tmp_path, "status,fatigue\na,yes\n", ["column 'status' would be overwritten"])


def test_id_and_keep_columns_choose_what_passes_through(tmp_path):
    (tmp_path / "survey.csv").write_text("id,w,x,fatigue\n1,2.5,z,yes\n")
    score_file(tmp_path / "survey.csv", tmp_path / "out.csv", id_columns="id", keep_columns=["w"],
               targets=["anemia"], progress=False)
    assert list(pd.read_csv(tmp_path / "out.csv").columns) == ["id", "w", "p_anemia", "evidence_probability",
                                                               "log_evidence_probability", "status"]
    (tmp_path / "out.csv").unlink()
    fails(tmp_path, "id,fatigue\n1,yes\n", ["has no column 'SEQN' to pass through"], id_columns=["SEQN"])


def test_gzip_csv_input(tmp_path):
    with gzip.open(tmp_path / "survey.csv.gz", "wt") as handle:
        handle.write("fatigue\nyes\nno\n")
    assert score_file(tmp_path / "survey.csv.gz", tmp_path / "out.parquet", progress=False).n_rows == 2
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 2


def test_nested_parquet_column_is_the_wrong_type(tmp_path):
    pq.write_table(pa.table({"fatigue": pa.array([["yes"], ["no"]])}), tmp_path / "survey.parquet")
    with pytest.raises(bayescramp.BayescrampError, match="survey.parquet: column 'fatigue' holds list<"):
        score_file(tmp_path / "survey.parquet", tmp_path / "out.csv", progress=False)
    assert leftovers(tmp_path) == []


def test_arrow_backed_and_chunked_pandas_columns_are_encoded(default_model):
    chunked = pa.chunked_array([["yes", None], ["no", "y"]])
    frame = pd.DataFrame({"fatigue": pd.Series(chunked, dtype=pd.ArrowDtype(pa.string()))})
    plain = pd.DataFrame({"fatigue": ["yes", None, "no", "y"]})
    np.testing.assert_array_equal(default_model.score(frame)["p_iron_deficiency"],
                                  default_model.score(plain)["p_iron_deficiency"])


# -- any CSV Python's csv module reads is read the same, wherever the reader's blocks fall ---------------------

CSV_COLUMNS = ["id", "note", "leg_cramps", "fatigue"]
NOTE_TEXT = st.text(alphabet='ab ,"\n\ré', max_size=12)
ANSWERS = st.sampled_from(["yes", "no", "", "Y", "No", "TRUE"])


def csv_text(rows, *, terminator="\n", blank_after=(), final_newline=True) -> str:
    """CSV as Python's csv module writes it (fields quoted where needed), with blank lines after some records."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    lines = []
    for k, row in enumerate([CSV_COLUMNS, *rows]):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        lines.append(buffer.getvalue() + terminator * blank_after.count(k))
    text = "".join(lines)
    return text if final_newline else text[:len(text) - len(terminator)] if text.endswith(terminator) else text


def read_with_python_csv(text: str) -> pd.DataFrame:
    records = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    return pd.DataFrame(records[1:], columns=records[0], dtype=object)


def assert_read_like_python_csv(text: str, tmp_path, model, monkeypatch, block_size: int) -> None:
    monkeypatch.setattr(survey, "CSV_BLOCK_SIZE", block_size)
    (tmp_path / "survey.csv").write_bytes(text.encode("utf-8"))
    output = tmp_path / "out.csv"
    summary = score_file(tmp_path / "survey.csv", output, progress=False)
    expected = model.score(read_with_python_csv(text))
    scored = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert summary.n_rows == len(expected)
    assert scored["id"].tolist() == expected["id"].tolist()
    assert scored["note"].tolist() == expected["note"].tolist()
    np.testing.assert_allclose(scored["p_magnesium_deficiency"].astype(float),
                               expected["p_magnesium_deficiency"].astype(float), rtol=1e-12)
    output.unlink()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 10 ** 6).map(str), NOTE_TEXT, ANSWERS, ANSWERS), max_size=8),
       terminator=st.sampled_from(["\n", "\r\n", "\r"]), blanks=st.lists(st.integers(0, 8), max_size=3),
       final_newline=st.booleans(), block_size=st.integers(8, 80))
def test_any_csv_python_reads_is_read_the_same_at_any_block_size(tmp_path, default_model, monkeypatch, rows,
                                                                 terminator, blanks, final_newline, block_size):
    text = csv_text([list(row) for row in rows], terminator=terminator, blank_after=blanks,
                    final_newline=final_newline)
    # csv.writer leaves a lone \r unquoted when the line terminator is \n: then the file is not the table written
    assume([row for row in csv.reader(io.StringIO(text, newline="")) if row][1:] == [list(row) for row in rows])
    assert_read_like_python_csv(text, tmp_path, default_model, monkeypatch, block_size)


@pytest.mark.parametrize("shift", range(-3, 4))
@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r\n\n", "\r\r\n"])
def test_quoted_line_break_at_and_around_a_block_boundary(tmp_path, default_model, monkeypatch, shift, line_break):
    block_size = 64
    head = "id,note,leg_cramps,fatigue\n"
    filler = "".join(f"{k},x,no,yes\n" for k in range(3))
    pad = "p" * (block_size + shift - len(filler) - len('9,"'))
    text = head + filler + f'9,"{pad}{line_break}second, line",yes,\n' + "".join(f"{k},y,,no\n" for k in range(5))
    # blocks are counted from the first row (the header is read apart)
    assert text.index(line_break, len(head) + len(filler)) - len(head) == block_size + shift
    assert_read_like_python_csv(text, tmp_path, default_model, monkeypatch, block_size)


@pytest.mark.parametrize("raw", ['1,a"b,yes,no\n', '1,"ab"c,yes,no\n', '1, "ab",yes,no\n', '1,"a""b",,\n',
                                 '1,"",yes,no\n', '1,"x\n\ny",yes,no\n'])
def test_quotes_inside_fields_are_read_as_python_reads_them(tmp_path, default_model, monkeypatch, raw):
    assert_read_like_python_csv("id,note,leg_cramps,fatigue\n" + raw + "2,z,no,\n", tmp_path, default_model,
                                monkeypatch, 16)


@pytest.mark.slow
@pytest.mark.parametrize("boundary", [1 << 20, 2 << 20])
def test_quoted_line_break_at_the_real_block_boundaries(tmp_path, default_model, boundary):
    head = "id,note,leg_cramps,fatigue\n"
    row = "1234567,x,no,yes\n"
    n_filler = boundary // len(row) - 1
    filler = row * n_filler
    pad = "p" * (boundary - len(filler) - len('9,"'))
    text = head + filler + f'9,"{pad}\nsecond line",yes,\n' + "8,y,,no\n"
    assert text.index("\n", len(head) + len(filler)) - len(head) == boundary
    (tmp_path / "survey.csv").write_text(text)
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.parquet", progress=False)
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.n_rows == n_filler + 2
    assert scored["note"].iloc[-2] == pad + "\nsecond line"
    expected = default_model.posterior({"leg_cramps": "yes"})["magnesium_deficiency"]["present"]
    assert scored["p_magnesium_deficiency"].iloc[-2] == pytest.approx(expected, abs=1e-12)


def test_header_longer_than_a_block(tmp_path, monkeypatch):
    names = [f"column_{k:05d}" for k in range(8000)]  # about 100 KiB of header
    (tmp_path / "survey.csv").write_text(",".join([*names, "fatigue"]) + "\n" + ",".join(["1"] * 8000) + ",yes\n")
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.parquet", progress=False,
                         keep_columns=names[:2])
    assert summary.n_rows == 1
    assert list(pd.read_parquet(tmp_path / "out.parquet").columns[:2]) == names[:2]


@pytest.mark.parametrize("block_size", [64, 1 << 20])
def test_row_longer_than_a_block(tmp_path, monkeypatch, block_size):
    monkeypatch.setattr(survey, "CSV_BLOCK_SIZE", block_size)
    long_note = "n" * (block_size * 2 + 7)
    (tmp_path / "survey.csv").write_text(f"id,note,fatigue\n1,short,no\n2,{long_note},yes\n3,\"{long_note}\n\",\n")
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.parquet", progress=False)
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.n_rows == 3 and scored["id"].tolist() == ["1", "2", "3"]
    assert scored["note"].tolist() == ["short", long_note, long_note + "\n"]


@pytest.mark.parametrize("content", ["id,fatigue", "id,fatigue\r\n", "\n\nid,fatigue\n\n", "\ufeffid,fatigue"])
def test_header_only_files_give_an_output_with_the_header(tmp_path, content):
    (tmp_path / "survey.csv").write_text(content, encoding="utf-8")
    summary = score_file(tmp_path / "survey.csv", tmp_path / "out.csv", progress=False)
    assert summary.n_rows == 0
    assert (tmp_path / "out.csv").read_text().startswith('"id","p_vitamin_d_deficiency"')


def test_ragged_row_holding_bytes_that_are_not_utf8(tmp_path):
    fails(tmp_path, b"id,fatigue\n1,yes\n2,caf\xe9,extra\n3,no\n", ["survey.csv, line 3: has 3 fields; expected 2"])
