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
