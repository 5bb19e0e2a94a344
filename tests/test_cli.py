"""The command line, in-process (main([...])) and a few end-to-end subprocess runs."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from bayescramp import load_model
from bayescramp.cli import main

from .conftest import DATA


def test_query_prints_a_table_sorted_by_posterior(capsys):
    assert main(["query", "--evidence", "leg_cramps=yes", "diuretic=thiazide"]) == 0
    out = capsys.readouterr().out
    targets = load_model().default_targets
    header = next(i for i, line in enumerate(out.splitlines()) if line.split()[:1] == ["node"])
    rows = [line.split() for line in out.splitlines()[header + 1:header + 1 + len(targets)]]
    # the model's default targets first, by posterior; the other nodes follow
    assert sorted(row[0] for row in rows) == sorted(targets)
    posteriors = [float(row[2]) for row in rows]
    assert posteriors == sorted(posteriors, reverse=True)
    assert "posterior" in out and "prior" in out


def test_query_json_has_posterior_and_prior(capsys):
    assert main(["query", "--evidence", "fatigue=yes:0.8,no:0.2", "diuretic=thiazide|loop", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["evidence"] == {"fatigue": {"yes": 0.8, "no": 0.2}, "diuretic": ["thiazide", "loop"]}
    assert set(payload["posterior"]) == set(payload["prior"])
    assert sum(payload["posterior"]["iron_deficiency"].values()) == pytest.approx(1.0)


def test_query_with_overlay(capsys):
    assert main(["query", "--evidence", "leg_cramps=yes", "--priors", "default", "older_adults", "--json"]) == 0
    older = json.loads(capsys.readouterr().out)["posterior"]["magnesium_deficiency"]["present"]
    assert main(["query", "--evidence", "leg_cramps=yes", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)["posterior"]["magnesium_deficiency"]["present"]
    assert older > default


@pytest.mark.parametrize("argv, code, message", [
    (["query", "--evidence", "leg_cramps"], 1, "--evidence 'leg_cramps': expected node=state"),
    (["query", "--evidence", "leg_cramps=often"], 1, "unknown state; expected one of no, yes"),
    (["query", "--evidence", "sodium=low"], 1, "unknown node 'sodium'"),
    (["query", "--evidence", "leg_cramps=no", "cramp_timing=night"], 1, "probability zero"),
    (["query", "--priors", "nope.toml"], 1, "nope.toml: no such prior file"),
    (["query", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["export"], 2, "the following arguments are required: -o/--output"),
])
def test_errors_are_one_line_with_exit_codes(capsys, argv, code, message):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_priors_check_reports_counts_and_published_prevalence(capsys):
    assert main(["priors", "check"]) == 0
    out = capsys.readouterr().out
    assert "default.toml: valid. 25 nodes," in out and "expert judgement" in out
    assert "potassium_deficiency" in out and "A1, A2, A3" in out


def test_priors_check_on_a_bad_file_lists_problems(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[nodes.a]\nstates = ["x"]\ncpd = "table"\n[[nodes.a.table]]\nwhen = {}\n'
                   'probability.x = { value = 2.0, range = [0, 1], basis = "expert", source = "s" }\n')
    assert main(["priors", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml, nodes.a.states: got only 'x'; expected at least two states." in err
    assert "value: got 2.0; expected a probability in [0, 1]." in err


def test_priors_check_lists_parameters(capsys):
    assert main(["priors", "check", str(DATA / "tiny.toml"), "--parameters"]) == 0
    assert "link(symptom<-x_deficiency=present)" in capsys.readouterr().out


def test_export_writes_bif(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "model.bif")]) == 0
    assert (tmp_path / "model.bif").read_text().startswith("network")


@pytest.mark.parametrize("name", ["cohort.csv", "cohort.csv.gz", "cohort.parquet"])
def test_simulate_writes_each_format(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["simulate", "-n", "500", "-o", str(out), "--seed", "3", "--missing", "0.2", "--truth"]) == 0
    frame = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    assert len(frame) == 500 and "potassium_deficiency" in frame.columns
    assert "wrote 500 rows" in capsys.readouterr().out


def test_simulate_rejects_unknown_extension(tmp_path, capsys):
    assert main(["simulate", "-n", "5", "-o", str(tmp_path / "x.xlsx")]) == 1
    assert "unknown table format; expected a name ending in .csv, .csv.gz or .parquet" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["query"], ["priors", "check"], ["export"], ["simulate"]])
def test_help_on_every_subcommand(capsys, command):
    assert main(command + ["--help"]) == 0
    assert "usage: bayescramp" in capsys.readouterr().out


def test_console_script_end_to_end(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bayescramp", "query", "--evidence", "leg_cramps=yes", "--json"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "magnesium_deficiency" in json.loads(result.stdout)["posterior"]
    bad = subprocess.run([sys.executable, "-m", "bayescramp", "query", "--evidence", "x=y"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("bayescramp: error:") and "Traceback" not in bad.stderr


def test_unwritable_output_is_one_sentence(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    target = folder / "model.bif"
    target.mkdir()  # a folder where the file should go: replacing it fails with an OSError
    assert main(["export", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bayescramp: error:") and "Traceback" not in err


# ---- conflicting and impossible evidence: one refusal everywhere (issue 10) -------------------

@pytest.mark.parametrize("command", [
    ["query"], ["explain"], ["sensitivity"], ["plot", "network", "-o", "{out}"], ["plot", "case", "-o", "{out}"],
    ["plot", "impact", "-o", "{out}"],
])
@pytest.mark.parametrize("findings", [
    ["leg_cramps=yes", "leg_cramps=no"],
    ["diuretic=thiazide", "fatigue=yes", "diuretic=thiazide|loop"],
    ["fatigue=yes:0.8,no:0.2", "fatigue=yes:0.5,no:0.5"],
], ids=["state twice", "state then set", "two likelihoods"])
def test_a_node_given_twice_differently_is_refused(tmp_path, capsys, command, findings):
    out = tmp_path / "picture.png"
    argv = [part.format(out=out) for part in command]
    assert main(argv[:1 + (command[0] == "plot")] + ["--evidence", *findings] + argv[1 + (command[0] == "plot"):]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is given twice" in err and "expected one finding per node" in err
    assert "Traceback" not in err and not out.exists()


def test_a_node_given_twice_with_the_same_finding_is_one_finding(capsys):
    assert main(["query", "--evidence", "leg_cramps=yes", "leg_cramps=yes", "--json"]) == 0
    twice = json.loads(capsys.readouterr().out)
    assert main(["query", "--evidence", "leg_cramps=yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["posterior"] == twice["posterior"]


@pytest.mark.parametrize("command", [
    ["query"], ["explain"], ["sensitivity"], ["plot", "network"], ["plot", "case"], ["plot", "impact"],
    ["plot", "case", "--interval", "0.9", "--draws", "20"],
])
def test_impossible_evidence_is_one_refusal_in_every_command(tmp_path, capsys, command):
    out = tmp_path / "picture.png"
    argv = command + ["--evidence", "leg_cramps=no", "cramp_timing=night"]
    if command[0] == "plot":
        argv += ["-o", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("bayescramp: error: evidence leg_cramps='no', cramp_timing='night': has probability zero")
    assert err.count("\n") == 1 and "NaN" not in err and not out.exists()
