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
    bundled = write(tmp_path, '[meta]\nbase = "default"\n[parameters]\n"P(diuretic=thiazide)" = { value = 0.2, '
                              'range = [0.1, 0.3], basis = "expert", source = "x" }', "o2.toml")
    assert parameters_by_id(load_spec(bundled))["P(diuretic=thiazide)"][1].value == 0.2


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
