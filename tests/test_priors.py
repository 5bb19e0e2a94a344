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
    both = GOOD.replace('links.cause.present = { value = 0.5, range = [0.3, 0.7], basis = "expert", source = "C2" }',
                        'links.cause.present = { value = 0.5, range = [0.3, 0.7], basis = "expert", source = "C2" }\n'
                        'links.cause.absent = { value = 0.1, range = [0.0, 0.2], basis = "expert", source = "C2" }')
    problems = problems_of(write(tmp_path, both))
    assert any("nodes.symptom.links.cause: every state of 'cause' has a link; expected at least one state without a "
               "link (the reference state" in p for p in problems)


def test_a_link_may_sit_on_the_first_state_making_the_other_the_reference(tmp_path):
    # the risk is higher with the cause absent: absent takes the link, present is the reference state
    spec = load_spec(write(tmp_path, GOOD.replace("links.cause.present", "links.cause.absent"), "good.toml"))
    model = bayescramp.Model(spec)
    on_absent = model.posterior({"cause": "absent"}, targets=["symptom"])["symptom"]["yes"]
    on_present = model.posterior({"cause": "present"}, targets=["symptom"])["symptom"]["yes"]
    assert on_present == pytest.approx(0.1)                    # the leak
    assert on_absent == pytest.approx(1 - 0.9 * 0.5)


PUBLISHED = """
[published_prevalence]
cause = { state = "present", value = 0.2, range = [0.1, 0.3], source = "A1" }

[[published_conditional]]
node = "cause"
state = "present"
given = { symptom = "yes" }
value = 0.6
range = [0.5, 0.7]
source = "X1"

[published_asymptomatic]
cause = { value = 0.5, range = [0.4, 0.6], source = "C2", note = "half silent" }
"""


def test_published_figures_are_read_and_checked(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "\n[meta]\nsymptoms = [\"symptom\"]\n" + PUBLISHED, "good.toml"))
    (conditional,) = spec.published_conditional
    assert conditional.given == {"symptom": "yes"} and (conditional.low, conditional.high) == (0.5, 0.7)
    assert spec.published_asymptomatic["cause"].note == "half silent"
    from bayescramp.spec import silent_share

    assert silent_share(spec, "cause") == pytest.approx(1 - 0.5)


@pytest.mark.parametrize("old, new, expected", [
    ('given = { symptom = "yes" }', 'given = { symptom = "maybe" }',
     r"published_conditional\[0\]\.given\.symptom: got 'maybe'; expected one of no, yes"),
    ('node = "cause"', 'node = "kause"', r"published_conditional\[0\]\.node: unknown node 'kause'"),
    ("value = 0.6", "value = 1.6", r"published_conditional\[0\]\.value: got 1\.6; expected a number in \[0, 1\]"),
    ("range = [0.4, 0.6]", "range = [0.6, 0.4]",
     r"published_asymptomatic\.cause\.range: got \[0\.6, 0\.4\]; expected \[low, high\]"),
    ('note = "half silent"', 'nota = "half silent"', r"published_asymptomatic\.cause\.nota: unknown key"),
])
def test_bad_published_figures_are_one_sentence_each(tmp_path, old, new, expected):
    problems = problems_of(write(tmp_path, GOOD + PUBLISHED.replace(old, new)))
    assert any(re.search(expected, p) for p in problems), problems


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
    assert list(default.nodes) == list(older.nodes)
    assert parameters_by_id(older)["P(age_group=18_39)"][1].value == 0.0
    marginal = bayescramp.Model(older).marginals()["age_group"]
    assert marginal["65_plus"] == pytest.approx(1.0)


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


@pytest.mark.parametrize("files", [(), ("older_adults",)])
def test_marginals_strata_and_silent_shares_fall_inside_published_ranges(files):
    """Issue 9's definition of done: every marginal, stratum figure and joint check inside its range."""
    from bayescramp.spec import silent_share

    model = bayescramp.load_model(*files)
    marginals = model.marginals()
    for node, entry in model.spec.published_prevalence.items():
        assert entry.low <= marginals[node][entry.state] <= entry.high, node
    checked = 0
    for entry in model.spec.published_conditional:
        if any(float(marginals[n][s]) == 0.0 for n, s in entry.given.items()):
            continue   # a stratum the overlay rules out
        value = float(model.posterior(entry.given, targets=[entry.node])[entry.node][entry.state])
        assert entry.low <= value <= entry.high, (entry.node, entry.given, value)
        checked += 1
    assert checked >= 5
    assert len(model.spec.published_asymptomatic) == 5
    for node, entry in model.spec.published_asymptomatic.items():
        assert entry.low <= silent_share(model.spec, node) <= entry.high, node


def test_folk_claims_fail_the_joint_check():
    from bayescramp.spec import silent_share

    folk = bayescramp.load_model("seed_claims")
    outside = [node for node, entry in folk.spec.published_asymptomatic.items()
               if not entry.low <= silent_share(folk.spec, node) <= entry.high]
    assert {"calcium_deficiency", "magnesium_deficiency"} <= set(outside)


def test_priors_check_prints_strata_and_joint_checks(capsys):
    from bayescramp.cli import main

    assert main(["priors", "check"]) == 0
    out = capsys.readouterr().out
    assert "iron_deficiency=present | sex=female, age_group=18_39" in out
    assert "joint check: share of people with the deficiency who have none of the symptoms it causes" in out
    assert " NO " not in out
    assert main(["priors", "check", "older_adults"]) == 0
    assert "(condition impossible under this model)" in capsys.readouterr().out
