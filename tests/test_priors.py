"""Prior files: loading, overlays, and one clear sentence per problem (file and key path)."""

import re
import textwrap

import numpy as np
import pytest

import bayescramp
from bayescramp import SpecError
from bayescramp.priors import bundled_path, bundled_priors, load_spec
from bayescramp.spec import ROW_SUM_TOLERANCE, parameters_by_id

GOOD = """
[nodes.cause]
states = ["absent", "present"]
cpd = "table"
[[nodes.cause.table]]
when = {}
probability.present = { value = 0.2, range = [0.1, 0.3], basis = "evidence", source = "A1" }
probability.absent = "remainder"

[nodes.symptom]
states = ["no", "yes"]
parents = ["cause"]
cpd = "noisy_or"
leak = { value = 0.1, range = [0.05, 0.2], basis = "expert", source = "C1" }
links.cause.present = { value = 0.5, range = [0.3, 0.7], basis = "expert", source = "C2" }
"""


def write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(*paths):
    with pytest.raises(SpecError) as caught:
        load_spec(*paths)
    return caught.value.problems


def test_good_file_loads(tmp_path):
    spec = load_spec(write(tmp_path, GOOD, "good.toml"))
    assert list(spec.nodes) == ["cause", "symptom"]
    assert parameters_by_id(spec)["leak(symptom)"][1].value == 0.1


@pytest.mark.parametrize("old, new, expected", [
    ("value = 0.2, range = [0.1, 0.3]", "value = 1.5, range = [0.1, 0.3]",
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.value: got 1\.5; expected a probability in \[0, 1\]"),
    ("value = 0.2, range = [0.1, 0.3]", "value = nan, range = [0.1, 0.3]",
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.value: got nan; expected a number in \[0, 1\]"),
    ("value = 0.2, range = [0.1, 0.3]", "value = 0.2, range = [0.25, 0.3]",
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.value: got 0\.2, outside its own range"),
    ("value = 0.2, range = [0.1, 0.3]", "value = 0.2, range = [0.3, 0.1]",
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.range: got \[0\.3, 0\.1\]; expected low <= high"),
    ('parents = ["cause"]', 'parents = ["kause"]',
     r"bad\.toml, nodes\.symptom\.parents: unknown parent 'kause'; expected one of the nodes cause, symptom"),
    ('cpd = "noisy_or"', 'cpd = "noisy_max"',
     r"bad\.toml, nodes\.symptom\.cpd: got 'noisy_max'; expected \"table\" or \"noisy_or\" \(unknown CPD kind\)"),
    ("value = 0.2, range", 'value = "0.2", range',
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.value: got '0\.2' \(str\); expected a number"),
    ('states = ["no", "yes"]', "states = []",
     r"bad\.toml, nodes\.symptom\.states: got an empty list; expected at least two states"),
    ('states = ["no", "yes"]', 'states = ["no", "no"]',
     r"bad\.toml, nodes\.symptom\.states: state 'no' appears more than once; expected distinct states"),
    ('states = ["no", "yes"]', 'states = "no, yes"',
     r"bad\.toml, nodes\.symptom\.states: got 'no, yes'; expected a list of strings"),
    ('probability.absent = "remainder"', 'probability.absent = { value = 0.7, range = [0.7, 0.7], '
                                         'basis = "expert", source = "x" }',
     r"bad\.toml, nodes\.cause\.table\[0\]\.probability: the row sums to 0\.9; "
     rf"expected 1 within {ROW_SUM_TOLERANCE:g}"),
    ('source = "A1"', 'source = ""', r"bad\.toml, nodes\.cause\.table\[0\]\.probability\.present\.source: got ''"),
    ("basis = \"evidence\"", "basis = \"hunch\"",
     r"probability\.present\.basis: got 'hunch'; expected one of evidence, derived, expert"),
])
def test_each_problem_names_file_key_value_and_expectation(tmp_path, old, new, expected):
    assert old in GOOD
    problems = problems_of(write(tmp_path, GOOD.replace(old, new)))
    assert any(re.search(expected, p) for p in problems), problems


def test_missing_and_duplicate_parent_configurations(tmp_path):
    text = GOOD + """
    [nodes.sign]
    states = ["no", "yes"]
    parents = ["cause"]
    cpd = "table"
    [[nodes.sign.table]]
    when = { cause = "absent" }
    probability.yes = { value = 0.1, range = [0.1, 0.1], basis = "expert", source = "x" }
    probability.no = "remainder"
    [[nodes.sign.table]]
    when = { cause = "absent" }
    probability.yes = { value = 0.2, range = [0.2, 0.2], basis = "expert", source = "x" }
    probability.no = "remainder"
    """
    problems = problems_of(write(tmp_path, text))
    assert any("bad.toml, nodes.sign.table[1].when: duplicate parent configuration {cause = absent}" in p
               for p in problems), problems
    assert any("bad.toml, nodes.sign.table: no row for parent configuration {cause = present}" in p
               for p in problems), problems


def test_positional_configurations_are_rejected(tmp_path):
    text = GOOD.replace('[[nodes.cause.table]]\nwhen = {}', '[[nodes.cause.table]]\nwhen = { other = "x" }')
    problems = problems_of(write(tmp_path, text))
    assert any("nodes.cause.table[0].when.other: 'other' is not a parent of 'cause'" in p for p in problems)


def test_cycle_is_named(tmp_path):
    text = GOOD.replace("""[nodes.cause]
states = ["absent", "present"]
cpd = "table"
[[nodes.cause.table]]
when = {}""", """[nodes.cause]
states = ["absent", "present"]
parents = ["symptom"]
cpd = "table"
[[nodes.cause.table]]
when = { symptom = "no" }""")
    problems = problems_of(write(tmp_path, text))
    assert any("the network has a cycle" in p and "cause -> symptom -> cause" in p or
               "symptom -> cause -> symptom" in p for p in problems), problems


def test_duplicate_node_is_a_toml_error_with_line(tmp_path):
    text = GOOD + '\n[nodes.cause]\nstates = ["a", "b"]\n'
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith("bad.toml: TOML syntax error:")
    assert "line" in problems[0] and "declared twice is a duplicate" in problems[0]


def test_toml_syntax_error_names_the_line(tmp_path):
    problems = problems_of(write(tmp_path, "[nodes.cause\nstates = 1\n"))
    assert problems[0].startswith("bad.toml: TOML syntax error:") and "line 1" in problems[0]


def test_all_problems_are_listed_together(tmp_path):
    text = GOOD.replace("value = 0.2, range = [0.1, 0.3]", "value = 1.5, range = [0.1, 0.3]").replace(
        "value = 0.5, range = [0.3, 0.7]", "value = 0.5, range = [0.7, 0.3]")
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2
    assert "\n" in str(SpecError(problems))


def test_unknown_keys_are_reported(tmp_path):
    problems = problems_of(write(tmp_path, GOOD.replace("value = 0.1, range", "valeu = 0.1, value = 0.1, range")))
    assert any("leak.valeu: unknown key; expected one of" in p for p in problems)


def test_noisy_or_needs_a_link_per_parent_and_two_states(tmp_path):
    problems = problems_of(write(tmp_path, GOOD.replace(
        'links.cause.present = { value = 0.5, range = [0.3, 0.7], basis = "expert", source = "C2" }', "")))
    assert any("nodes.symptom.links: no link for parent 'cause'" in p for p in problems)
    problems = problems_of(write(tmp_path, GOOD.replace("links.cause.present", "links.cause.absent")))
    assert any("'absent' is the reference (inactive) state of 'cause'" in p for p in problems)


def test_overlay_overrides_a_parameter_by_id(tmp_path):
    base = write(tmp_path, GOOD, "base.toml")
    overlay = write(tmp_path, """
    [parameters]
    "P(cause=present)" = { value = 0.25, range = [0.2, 0.3], basis = "evidence", source = "A9" }
    """, "overlay.toml")
    spec = load_spec(base, overlay)
    parameter = parameters_by_id(spec)["P(cause=present)"][1]
    assert (parameter.value, parameter.source) == (0.25, "A9")
    assert "overlay.toml" in parameter.location


def test_overlay_with_unknown_id_names_file_and_suggests(tmp_path):
    base = write(tmp_path, GOOD, "base.toml")
    overlay = write(tmp_path, """
    [parameters]
    "P(cause=presnt)" = { value = 0.25, range = [0.2, 0.3], basis = "evidence", source = "A9" }
    """, "overlay.toml")
    problems = problems_of(base, overlay)
    assert 'overlay.toml, parameters."P(cause=presnt)": no earlier file defines this parameter id' in problems[0]
    assert "did you mean P(cause=present)?" in problems[0]


def test_overlay_can_add_and_replace_nodes(tmp_path):
    base = write(tmp_path, GOOD, "base.toml")
    overlay = write(tmp_path, """
    [nodes.symptom]
    states = ["no", "yes"]
    parents = ["cause"]
    cpd = "table"
    [[nodes.symptom.table]]
    when = { cause = "absent" }
    probability.yes = { value = 0.0, range = [0.0, 0.0], basis = "expert", source = "x" }
    probability.no = "remainder"
    [[nodes.symptom.table]]
    when = { cause = "present" }
    probability.yes = { value = 1.0, range = [1.0, 1.0], basis = "expert", source = "x" }
    probability.no = "remainder"
    """, "overlay.toml")
    model = bayescramp.Model(load_spec(base, overlay))
    assert model.posterior({"symptom": "yes"})["cause"]["present"] == pytest.approx(1.0)


def test_missing_file_is_one_sentence():
    problems = problems_of("no/such/file.toml")
    assert problems == ["no/such/file.toml: no such prior file; expected a path to a .toml file or one of the "
                        f"bundled names {', '.join(bundled_priors())}."]


def test_bundled_files_load_alone_and_as_overlays():
    assert {"default", "older_adults", "seed_claims"} <= set(bundled_priors())
    default = load_spec()
    older = load_spec(bundled_path("default.toml"), bundled_path("older_adults.toml"))
    assert len(default.nodes) == 19 == len(older.nodes)
    thiazide_default = parameters_by_id(default)["P(diuretic=thiazide)"][1].value
    thiazide_older = parameters_by_id(older)["P(diuretic=thiazide)"][1].value
    assert thiazide_older > thiazide_default


def test_every_default_number_has_source_range_and_basis():
    for parameter_id, (_, parameter) in parameters_by_id(load_spec()).items():
        assert parameter.source, parameter_id
        assert parameter.low <= parameter.value <= parameter.high, parameter_id
        assert parameter.basis in ("evidence", "derived", "expert", "structural"), parameter_id


def test_default_timing_carries_no_diagnostic_weight_but_seed_claims_does():
    default = bayescramp.load_model()
    night = default.posterior({"leg_cramps": "yes", "cramp_timing": "night"})
    day = default.posterior({"leg_cramps": "yes", "cramp_timing": "day"})
    for node in default.default_targets:
        np.testing.assert_allclose(night[node].to_numpy(), day[node].to_numpy(), atol=1e-12)
    folk = bayescramp.load_model("default", "seed_claims")
    night = folk.posterior({"leg_cramps": "yes", "cramp_timing": "night"})
    day = folk.posterior({"leg_cramps": "yes", "cramp_timing": "day"})
    assert day["calcium_deficiency"]["present"] > night["calcium_deficiency"]["present"]
    assert night["magnesium_deficiency"]["present"] > day["magnesium_deficiency"]["present"]


def test_default_marginals_fall_inside_published_ranges():
    model = bayescramp.load_model()
    marginals = model.marginals()
    for node, entry in model.spec.published_prevalence.items():
        assert entry.low <= marginals[node][entry.state] <= entry.high, node
