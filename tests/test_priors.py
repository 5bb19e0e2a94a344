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




# ---- order of an explicit list, and meta.base (issue 10) --------------------------------------

REPLACED_SYMPTOM = """
[nodes.symptom]
states = ["no", "yes"]
parents = ["cause"]
cpd = "noisy_or"
leak = { value = 0.3, range = [0.2, 0.4], basis = "expert", source = "R1" }
links.cause.present = { value = 0.9, range = [0.8, 1.0], basis = "expert", source = "R2" }
"""

LEAK_OVERRIDE = """
[parameters]
"leak(symptom)" = { value = 0.15, range = [0.1, 0.2], basis = "expert", source = "O1" }
"""


def test_overlay_listed_before_its_base_is_refused_in_one_sentence():
    problems = problems_of("older_adults", "default")
    assert problems == [problems[0]] and problems[0].startswith(
        "older_adults.toml: overlays default.toml (its meta.base), which is listed after it; files apply in the "
        "order given")
    assert "expected default.toml first" in problems[0]


def test_cli_priors_in_the_wrong_order_exit_1(capsys):
    from bayescramp.cli import main

    assert main(["query", "--evidence", "leg_cramps=yes", "--priors", "older_adults", "default"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "listed after it" in err


def test_later_files_override_earlier_ones_in_the_order_given():
    again = parameters_by_id(load_spec("default", "older_adults", "default"))
    assert again == parameters_by_id(load_spec("default"))
    assert parameters_by_id(load_spec("older_adults")) == parameters_by_id(load_spec("default", "older_adults"))


def test_a_node_replaced_later_supersedes_an_earlier_override(tmp_path):
    base = write(tmp_path, GOOD, "base.toml")
    override = write(tmp_path, LEAK_OVERRIDE, "override.toml")
    replace_node = write(tmp_path, REPLACED_SYMPTOM, "replace.toml")
    replaced_last = parameters_by_id(load_spec(base, override, replace_node))["leak(symptom)"][1]
    assert (replaced_last.value, replaced_last.source) == (0.3, "R1")
    override_last = parameters_by_id(load_spec(base, replace_node, override))["leak(symptom)"][1]
    assert (override_last.value, override_last.source) == (0.15, "O1")


def test_an_override_of_a_node_defined_only_later_is_an_error(tmp_path):
    override = write(tmp_path, LEAK_OVERRIDE, "override.toml")
    base = write(tmp_path, GOOD, "base.toml")
    problems = problems_of(override, base)
    assert problems[0].startswith('override.toml, parameters."leak(symptom)": no earlier file defines this '
                                  'parameter id')


def _overlay(tmp_path, name, base):
    return write(tmp_path, f'[meta]\nbase = {base}\n{LEAK_OVERRIDE}', name)


def test_a_cycle_of_bases_is_named(tmp_path):
    first = _overlay(tmp_path, "a.toml", '"b.toml"')
    _overlay(tmp_path, "b.toml", '"c.toml"')
    _overlay(tmp_path, "c.toml", '"a.toml"')
    assert problems_of(first) == ["a.toml, meta.base: the bases form a cycle (a.toml -> b.toml -> c.toml -> a.toml); "
                                  "expected a chain of bases that ends at a file without meta.base (such as "
                                  "default.toml)."]


def test_an_overlay_naming_itself_as_base_is_a_cycle(tmp_path):
    problems = problems_of(_overlay(tmp_path, "self.toml", '"self.toml"'))
    assert "cycle (self.toml -> self.toml)" in problems[0]


@pytest.mark.parametrize("base, message", [
    ('""', "self.toml, meta.base: got ''; expected the name of a bundled prior file"),
    ('"   "', "self.toml, meta.base: got '   '; expected the name of a bundled prior file"),
    ("5", "self.toml, meta.base: got 5; expected the name of a bundled prior file"),
    ('"../../../../etc/passwd"', "self.toml, meta.base: got '../../../../etc/passwd', a path; expected the name"),
    ('"/dev/zero"', "self.toml, meta.base: got '/dev/zero', a path; expected"),
    ('"/proc/self/fd/0"', "self.toml, meta.base: got '/proc/self/fd/0', a path; expected"),
    ('"..\\\\default.toml"', "a path; expected"),
    ('"nowhere.toml"', "self.toml, meta.base: got 'nowhere.toml', which is neither a file in"),
])
def test_a_bad_base_is_one_sentence_naming_what_is_allowed(tmp_path, base, message):
    problems = problems_of(_overlay(tmp_path, "self.toml", base))
    assert len(problems) == 1 and message in problems[0]
    assert f"bundled prior file ({', '.join(bundled_priors())})" in problems[0] or "a path" in problems[0]


def test_a_base_beside_the_overlay_or_bundled_by_name_loads(tmp_path):
    write(tmp_path, GOOD, "mybase.toml")
    beside = parameters_by_id(load_spec(_overlay(tmp_path, "o1.toml", '"mybase.toml"')))["leak(symptom)"][1]
    assert beside.value == 0.15
    bundled = write(tmp_path, '[meta]\nbase = "default"\n[parameters]\n'
                              '"P(diuretic=thiazide|age_group=40_64)" = { value = 0.2, range = [0.1, 0.3], '
                              'basis = "expert", source = "x" }', "o2.toml")
    assert parameters_by_id(load_spec(bundled))["P(diuretic=thiazide|age_group=40_64)"][1].value == 0.2


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null"])
def test_a_base_beside_the_overlay_that_is_a_device_is_refused_before_reading(tmp_path, target):
    (tmp_path / "device.toml").symlink_to(target)
    problems = problems_of(_overlay(tmp_path, "o.toml", '"device.toml"'))
    assert len(problems) == 1
    assert "is a character device, not a regular file; expected a .toml prior file" in problems[0]


def test_a_pipe_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    assert "is a pipe, not a regular file" in problems_of(fifo)[0]
    assert "is a pipe, not a regular file" in problems_of(_overlay(tmp_path, "o.toml", '"pipe.toml"'))[0]


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    assert "folder.toml: is a folder, not a regular file" in problems_of(tmp_path / "folder.toml")[0]


def test_priors_check_on_stdin_refuses_at_once():
    import subprocess
    import sys

    # stdin is a pipe nobody writes to: reading it would block forever
    done = subprocess.run([sys.executable, "-m", "bayescramp", "priors", "check", "/dev/stdin"],
                          stdin=subprocess.PIPE, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "is a pipe, not a regular file; expected a .toml prior file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    from bayescramp._regular_file import read_regular_file

    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(SpecError, match="big.toml: larger than 1,000 bytes"):
        read_regular_file(big, what="a .toml prior file", error=SpecError, max_bytes=1000)
    assert read_regular_file(big, what="x", error=SpecError, max_bytes=2000) == b"#" * 2000


def test_a_prior_file_that_is_not_utf8_is_one_sentence(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(GOOD.replace("A1", "caf\xe9").encode("latin-1"))
    problems = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith("latin1.toml: byte ") and "is not UTF-8 text" in problems[0]
