"""pgmpy bridge: the exported network is checked, round-trips through BIF and XMLBIF, imports work."""

import numpy as np
import pytest

import bayescramp
from bayescramp.reference import oracle_posterior, read_network

from .conftest import DATA

CASES = [{"leg_cramps": "yes", "diuretic": "thiazide"}, {"fatigue": "yes", "pale_skin": "yes"}, {}]


def test_to_pgmpy_passes_check_model(default_model):
    network = default_model.to_pgmpy()
    assert network.check_model()
    assert sorted(network.nodes()) == sorted(default_model.nodes)


@pytest.mark.parametrize("suffix", [".bif", ".xmlbif"])
def test_export_round_trips_through_pgmpy_readers(default_model, tmp_path, suffix):
    path = default_model.export(tmp_path / f"model{suffix}")
    reloaded = bayescramp.load_model(path)
    assert sorted(reloaded.nodes) == sorted(default_model.nodes)
    for evidence in CASES:
        a, b = default_model.posterior(evidence), reloaded.posterior(evidence)
        for node in a:
            np.testing.assert_allclose(a[node].to_numpy(), b[node].to_numpy(), atol=1e-9)
    assert not list(tmp_path.glob(".*tmp"))


def test_export_rejects_unknown_format_and_missing_folder(default_model, tmp_path):
    with pytest.raises(bayescramp.InputError, match=r"model\.net: unknown network format '\.net'; expected \.bif"):
        default_model.export(tmp_path / "model.net")
    with pytest.raises(bayescramp.InputError, match="does not exist"):
        default_model.export(tmp_path / "missing" / "model.bif")


def test_from_pgmpy_equals_the_original(default_model):
    copy = bayescramp.Model.from_pgmpy(default_model.to_pgmpy())
    for evidence in CASES:
        a, b = default_model.posterior(evidence), copy.posterior(evidence)
        for node in a:
            np.testing.assert_allclose(a[node].to_numpy(), b[node].to_numpy(), atol=1e-12)


def test_read_network_imports_standard_networks():
    model = bayescramp.load_model(DATA / "asia.bif.gz")
    assert len(model.nodes) == 8
    assert model.parameters()["basis"].eq("imported").all()
    expected = oracle_posterior(model.to_pgmpy(), {"xray": "yes"}, ["lung"])
    assert model.posterior({"xray": "yes"})["lung"].to_numpy() == pytest.approx(expected["lung"], abs=1e-12)


def test_unreadable_network_is_one_sentence(tmp_path):
    bad = tmp_path / "broken.bif"
    bad.write_text("network broken { this is not bif")
    with pytest.raises(bayescramp.InputError, match=r"broken\.bif: pgmpy could not read it as BIF"):
        read_network(bad)
    with pytest.raises(bayescramp.InputError, match=r"nothere\.bif: no such network file"):
        read_network(tmp_path / "nothere.bif")


# ---- network files: rows that are not distributions, broken files (issue 10) -------------------

def _bif(first_row="0.9, 0.1", second_row="0.2, 0.8", root="0.3, 0.7"):
    return f"""network unknown {{
}}
variable a {{
  type discrete [ 2 ] {{ yes, no }};
}}
variable b {{
  type discrete [ 2 ] {{ yes, no }};
}}
probability ( a ) {{
  table {root};
}}
probability ( b | a ) {{
  (yes) {first_row};
  (no) {second_row};
}}
"""


@pytest.mark.parametrize("first_row, total", [("0.9, 1.71", "2.61"), ("0.25, 0.25", "0.5"), ("0.3, 0.69", "0.99")])
def test_a_cpd_row_not_summing_to_one_is_refused_naming_node_and_parents(tmp_path, first_row, total):
    path = tmp_path / "rows.bif"
    path.write_text(_bif(first_row=first_row))
    with pytest.raises(bayescramp.SpecError) as caught:
        bayescramp.load_model(path)
    assert caught.value.problems == [
        f"rows.bif, node 'b' given a=yes: the probabilities of yes, no sum to {total}; expected 1 within 0.001 (fix "
        "the file: each row of a CPD is a distribution)."]


def test_every_bad_row_is_listed_root_rows_too(tmp_path):
    path = tmp_path / "rows.bif"
    path.write_text(_bif(first_row="0.5, 0.4", second_row="0.6, 0.6", root="0.3, 0.3"))
    with pytest.raises(bayescramp.SpecError) as caught:
        read_network(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("rows.bif, node 'a': the probabilities of yes, no sum to 0.6;")
    assert problems[2].startswith("rows.bif, node 'b' given a=no: the probabilities of yes, no sum to 1.2;")


def test_a_negative_entry_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "negative.bif"
    path.write_text(_bif(first_row="1.2, -0.2"))
    with pytest.raises(bayescramp.InputError, match=r"negative\.bif: pgmpy could not read it as BIF \(ValueError: "
                                                   r"CPD values must be non-negative\.\); expected a valid network"):
        read_network(path)


def test_rows_within_the_tolerance_are_rescaled_exactly(tmp_path):
    path = tmp_path / "rounded.bif"
    path.write_text(_bif(first_row="0.9004, 0.1", root="0.3333, 0.6666"))
    model = bayescramp.load_model(path)
    assert model.marginals()["a"]["yes"] == pytest.approx(0.3333 / 0.9999, abs=1e-15)


def test_from_pgmpy_refuses_a_bad_row_too(default_model):
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    network = DiscreteBayesianNetwork([("a", "b")])
    network.add_cpds(TabularCPD("a", 2, [[0.5], [0.5]]), TabularCPD("b", 2, [[0.5, 0.2], [0.0, 0.8]], ["a"], [2]))
    with pytest.raises(bayescramp.SpecError, match=r"node 'b' given a=0: the probabilities of 0, 1 sum to 0.5"):
        bayescramp.Model.from_pgmpy(network)


def test_a_truncated_gzip_network_is_one_sentence(tmp_path):
    data = (DATA / "alarm.bif.gz").read_bytes()
    for cut in (len(data) // 2, len(data) - 4, 20):
        path = tmp_path / "alarm.bif.gz"
        path.write_bytes(data[:cut])
        with pytest.raises(bayescramp.InputError, match=r"alarm\.bif\.gz: the gzip data ends early \(the file is "
                                                       r"truncated\); expected a \.bif or \.xmlbif network file"):
            read_network(path)


@pytest.mark.parametrize("name, content, message", [
    ("plain.bif.gz", b"network x {}", "named .gz but not gzip-compressed"),
    ("corrupt.bif.gz", b"\x1f\x8b\x08\x00garbagegarbagegarbage", "the gzip data is corrupt"),
    ("latin1.bif", _bif().replace("unknown", "r\xe9seau").encode("latin-1"), "is not UTF-8 text"),
])
def test_a_broken_network_file_is_one_sentence(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(bayescramp.InputError, match=message):
        read_network(path)


def test_a_gzip_network_without_gz_in_its_name_is_read_by_content(tmp_path):
    path = tmp_path / "asia.bif"
    path.write_bytes((DATA / "asia.bif.gz").read_bytes())
    assert len(read_network(path).nodes) == 8


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null"])
def test_a_network_path_that_is_a_device_is_refused_before_reading(tmp_path, target):
    path = tmp_path / "device.bif"
    path.symlink_to(target)
    with pytest.raises(bayescramp.InputError, match="is a character device, not a regular file"):
        read_network(path)


def test_cli_truncated_network_is_not_an_internal_error(tmp_path, capsys):
    from bayescramp.cli import main

    path = tmp_path / "asia.bif.gz"
    path.write_bytes((DATA / "asia.bif.gz").read_bytes()[:100])
    assert main(["query", "--priors", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err and "truncated" in err
