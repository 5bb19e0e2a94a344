"""spec.py: validation (one sentence per problem, naming file and key), silent_share, probability_table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bayescramp import SpecError
from bayescramp.priors import load_spec
from bayescramp.spec import (
    ROW_SUM_TOLERANCE,
    probability_table,
    silent_share,
    validate,
    with_parameters,
)

from .conftest import DATA

TINY = (DATA / "tiny.toml").read_text(encoding="utf-8")
P = 'basis = "expert", source = "test"'


def _message(tmp_path, text: str) -> str:
    """What load_spec (which validates) says about a priors file with ``text``."""
    path = tmp_path / "model.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    return str(raised.value)


ROOT = f"""
[nodes.a]
states = ["no", "yes"]
cpd = "table"
[[nodes.a.table]]
when = {{}}
probability.yes = {{ value = 0.3, range = [0.2, 0.4], {P} }}
probability.no = "remainder"
"""


@pytest.mark.parametrize("text, expected", [
    (ROOT.replace('states = ["no", "yes"]', 'states = ["only"]').replace("probability.yes", "probability.only")
     .replace('probability.no = "remainder"', ""),
     "model.toml, nodes.a.states: got only 'only'; expected at least two states."),
    (ROOT.replace('states = ["no", "yes"]', 'states = ["no", "no"]').replace("probability.yes", "probability.no")
     .replace('probability.no = "remainder"', ""),
     "nodes.a.states: state 'no' appears more than once; expected distinct states."),
    (ROOT.replace("value = 0.3", "value = 1.5").replace("[0.2, 0.4]", "[0.2, 1.6]"),
     "expected a probability in [0, 1]."),
    (ROOT.replace("[0.2, 0.4]", "[0.5, 0.6]"),
     "probability.yes.value: got 0.3, outside its own range [0.5, 0.6]"),
    (ROOT.replace('probability.no = "remainder"', f'probability.no = {{ value = 0.5, range = [0.4, 0.6], {P} }}'),
     "nodes.a.table[0].probability: the row sums to 0.8; expected 1 within"),
    (ROOT.replace("value = 0.3", "value = 1.0").replace("[0.2, 0.4]", "[0.2, 1.0]")
     .replace('probability.no = "remainder"', f'probability.no = {{ value = 0.5, range = [0.4, 0.6], {P} }}'),
     "the row sums to 1.5; expected 1 within"),
    (ROOT.replace('probability.no = "remainder"', ""),
     "nodes.a.table[0].probability: no entry for state(s) no; expected every state, one of which may be "
     "\"remainder\"."),
    (ROOT.replace('probability.no = "remainder"', 'probability.no = "remainder"\nprobability.maybe = "remainder"'),
     "nodes.a.table[0].probability.maybe: unknown state 'maybe'; expected one of no, yes."),
    (ROOT.replace('basis = "expert"', 'basis = "hunch"'),
     "probability.yes.basis: got 'hunch'; expected one of"),
])
def test_each_validation_problem_is_one_sentence_naming_file_and_key(tmp_path, text, expected):
    assert expected in _message(tmp_path, text)


@pytest.mark.parametrize("parents, expected", [
    (("zinc",), "nodes.symptom.parents: unknown parent 'zinc'; expected one of the nodes medication, x_deficiency, "
                "symptom."),
    (("symptom",), "nodes.symptom.parents: 'symptom' is its own parent; expected other nodes."),
    (("x_deficiency", "x_deficiency"), "nodes.symptom.parents: 'x_deficiency' is listed twice; expected distinct "
                                       "parents."),
])
def test_validate_names_each_parent_problem(parents, expected):
    spec = load_spec(DATA / "tiny.toml")
    broken = replace(spec, nodes={**spec.nodes, "symptom": replace(spec.nodes["symptom"], parents=parents)})
    assert any(expected in problem for problem in validate(broken)), validate(broken)


def test_validate_names_a_node_that_is_not_an_identifier():
    spec = load_spec(DATA / "tiny.toml")
    broken = replace(spec, nodes={**spec.nodes, "medication": replace(spec.nodes["medication"], name="my drug")})
    assert any("node name 'my drug' is not an identifier; expected letters, digits and underscores." in problem
               for problem in validate(broken))


def test_a_cycle_is_reported_along_its_path(tmp_path):
    text = f"""
[nodes.a]
states = ["no", "yes"]
parents = ["b"]
cpd = "noisy_or"
leak = {{ value = 0.1, range = [0.0, 0.2], {P} }}
links.b.yes = {{ value = 0.5, range = [0.4, 0.6], {P} }}
[nodes.b]
states = ["no", "yes"]
parents = ["a"]
cpd = "noisy_or"
leak = {{ value = 0.1, range = [0.0, 0.2], {P} }}
links.a.yes = {{ value = 0.5, range = [0.4, 0.6], {P} }}
"""
    message = _message(tmp_path, text)
    assert "the network has a cycle" in message
    assert "a -> b -> a" in message or "b -> a -> b" in message


def test_noisy_or_problems_name_the_link(tmp_path):
    text = ROOT + f"""
[nodes.s]
states = ["no", "yes"]
parents = ["a"]
cpd = "noisy_or"
leak = {{ value = 0.1, range = [0.0, 0.2], {P} }}
links.a.maybe = {{ value = 0.5, range = [0.4, 0.6], {P} }}
"""
    message = _message(tmp_path, text)
    assert "nodes.s.links.a.maybe: unknown state 'maybe' of 'a'; expected one of no, yes" in message


def test_a_missing_parent_configuration_is_named(tmp_path):
    text = TINY.replace('''[[nodes.x_deficiency.table]]
when = { medication = "drug" }
probability.present = { value = 0.4, range = [0.3, 0.5], basis = "expert", source = "test" }
probability.absent = "remainder"
''', "")
    expected = ("nodes.x_deficiency.table: no row for parent configuration {medication = drug}; expected one row "
                "per configuration of the parents.")
    assert expected in _message(tmp_path, text)


def test_the_tiny_model_validates_and_every_problem_is_listed_at_once(tmp_path):
    assert validate(load_spec(DATA / "tiny.toml")) == []
    broken = ROOT.replace('basis = "expert"', 'basis = "hunch"').replace("[0.2, 0.4]", "[0.5, 0.6]")
    message = _message(tmp_path, broken)
    assert "basis" in message and "outside its own range" in message


def test_row_sum_tolerance_is_tight():
    assert 0 < ROW_SUM_TOLERANCE <= 1e-6


# --- silent_share -------------------------------------------------------------------------------------------


def test_silent_share_of_the_tiny_network_is_one_minus_its_link():
    spec = load_spec(DATA / "tiny.toml")
    assert not spec.meta.get("symptoms") and not spec.meta.get("observable")
    assert silent_share(spec, "x_deficiency") == 1.0                  # no symptom nodes named: nothing to miss
    with_symptom = replace(spec, meta={**spec.meta, "symptoms": ("symptom",)})
    assert silent_share(with_symptom, "x_deficiency") == pytest.approx(1 - 0.5)    # 1 - link
    assert silent_share(with_symptom, "x_deficiency", "absent") == 1.0            # no link from "absent"
    observable = replace(spec, meta={**spec.meta, "observable": ("medication", "symptom")})
    assert silent_share(observable, "x_deficiency") == pytest.approx(0.5)         # observable is the fallback


def test_silent_share_is_the_product_over_symptom_links():
    spec = load_spec()
    node = "calcium_deficiency"
    symptoms = spec.meta.get("symptoms") or spec.meta.get("observable", ())
    links = [spec.nodes[s].cpd.links[node]["present"].value for s in symptoms
             if hasattr(spec.nodes[s].cpd, "links") and "present" in spec.nodes[s].cpd.links.get(node, {})]
    assert links, "the default model links calcium deficiency to some symptom"
    assert silent_share(spec, node) == pytest.approx(float(np.prod([1 - v for v in links])), abs=1e-15)


# --- probability_table ----------------------------------------------------------------------------------------


def test_probability_table_of_the_tiny_network_by_hand():
    spec = load_spec(DATA / "tiny.toml")
    np.testing.assert_allclose(probability_table(spec, "medication"), [0.7, 0.3])
    np.testing.assert_allclose(probability_table(spec, "x_deficiency"), [[0.9, 0.1], [0.6, 0.4]])
    # noisy-OR: P(no | absent) = 1 - leak, P(no | present) = (1 - leak)(1 - link)
    np.testing.assert_allclose(probability_table(spec, "symptom"), [[0.9, 0.1], [0.45, 0.55]])


def test_probability_table_broadcasts_over_arrays_of_values():
    spec = load_spec(DATA / "tiny.toml")
    link = "link(symptom<-x_deficiency=present)"
    values = np.array([0.0, 0.5, 1.0])
    tables = probability_table(spec, "symptom", {link: values})
    assert tables.shape == (3, 2, 2)
    np.testing.assert_allclose(tables[:, 1, 1], 1 - 0.9 * (1 - values))
    for k, value in enumerate(values):
        one = probability_table(with_parameters(spec, {link: float(value)}), "symptom")
        np.testing.assert_allclose(tables[k], one, atol=1e-15)


def test_probability_table_with_scalar_values_has_one_leading_row_and_ignores_other_nodes():
    spec = load_spec(DATA / "tiny.toml")
    table = probability_table(spec, "medication", {"P(medication=drug)": 0.25, "leak(symptom)": 0.3})
    assert table.shape == (1, 2)
    np.testing.assert_allclose(table[0], [0.75, 0.25])


def test_probability_table_rows_sum_to_one_on_the_default_model():
    spec = load_spec()
    for name in spec.nodes:
        np.testing.assert_allclose(probability_table(spec, name).sum(axis=-1), 1.0, atol=1e-12)
