"""The README's clinical vignettes, read as a clinician would: their version-2 column is the model's answer."""

import re

import pytest

import bayescramp

from .conftest import ROOT

TARGETS = ["potassium_deficiency", "magnesium_deficiency", "calcium_deficiency", "vitamin_d_deficiency",
           "iron_deficiency"]
SYMPTOMS = ["leg_cramps", "muscle_spasms", "muscle_weakness", "fatigue", "neck_back_pain", "pale_skin", "nausea",
            "loss_of_appetite", "abnormal_heart_rhythm", "seizures"]
NON_SPECIFIC = ["leg_cramps", "muscle_spasms", "fatigue", "muscle_weakness", "neck_back_pain"]
VIGNETTES = {
    "no findings (prior)": {},
    "no symptoms (all ten answered no)": {s: "no" for s in SYMPTOMS},
    "one symptom: leg cramps": {"leg_cramps": "yes"},
    "five non-specific symptoms": {s: "yes" for s in NON_SPECIFIC},
    "all ten symptoms": {s: "yes" for s in SYMPTOMS},
    "thiazide + cramps + weakness": {"diuretic": "thiazide", "leg_cramps": "yes", "muscle_weakness": "yes"},
    "pale skin + fatigue, woman 18–39": {"pale_skin": "yes", "fatigue": "yes", "sex": "female",
                                          "age_group": "18_39"},
    "seizure": {"seizures": "yes"},
}


def readme_vignettes() -> dict[str, list[float]]:
    """Vignette name -> the version-2 posteriors printed in the README table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| vignette | potassium"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(re.search(r"→ ([0-9.]+)", cell).group(1)) for cell in cells[1:]]
    return rows


@pytest.fixture(scope="module")
def posteriors(default_model):
    return {name: [float(default_model.posterior(evidence, targets=TARGETS)[t]["present"]) for t in TARGETS]
            for name, evidence in VIGNETTES.items()}


def test_readme_vignette_table_matches_the_model(posteriors):
    printed = readme_vignettes()
    assert set(printed) == set(VIGNETTES)
    for name, values in printed.items():
        assert values == pytest.approx(posteriors[name], abs=5e-4), name


def test_several_non_specific_complaints_do_not_make_a_rare_deficiency_likely(posteriors):
    prior = posteriors["no findings (prior)"]
    for name in ("five non-specific symptoms", "all ten symptoms"):
        for target, value, before in zip(TARGETS, posteriors[name], prior):
            if before < 0.05:   # the rare electrolyte deficiencies
                assert value < 0.15, (name, target, value)


def test_no_symptoms_lowers_every_symptomatic_deficiency(posteriors):
    for value, prior in zip(posteriors["no symptoms (all ten answered no)"], posteriors["no findings (prior)"]):
        assert value < prior


def test_thiazide_with_cramps_and_weakness_points_to_potassium(posteriors):
    values = dict(zip(TARGETS, posteriors["thiazide + cramps + weakness"]))
    assert values["potassium_deficiency"] > max(values["magnesium_deficiency"], values["calcium_deficiency"])
    assert values["potassium_deficiency"] > 5 * posteriors["no findings (prior)"][0]


def test_pallor_and_fatigue_in_a_young_woman_point_to_iron(posteriors):
    values = dict(zip(TARGETS, posteriors["pale skin + fatigue, woman 18–39"]))
    assert values["iron_deficiency"] == max(values.values())
    assert values["iron_deficiency"] > 0.34   # above the stratum's prior (A22)


def test_a_seizure_raises_magnesium_and_calcium_only_a_little(posteriors):
    seizure = dict(zip(TARGETS, posteriors["seizure"]))
    prior = dict(zip(TARGETS, posteriors["no findings (prior)"]))
    for target in ("magnesium_deficiency", "calcium_deficiency"):
        assert prior[target] < seizure[target] < 3 * prior[target]


def test_strata_change_the_prior_as_the_evidence_file_says(default_model):
    def p(evidence, node):
        return float(default_model.posterior(evidence, targets=[node])[node]["present"])

    assert p({"sex": "female", "age_group": "18_39"}, "iron_deficiency") == pytest.approx(0.34)
    assert p({"sex": "male"}, "iron_deficiency") < 0.1
    assert p({"age_group": "18_39"}, "vitamin_d_deficiency") > p({"age_group": "65_plus"}, "vitamin_d_deficiency")
    assert p({"age_group": "65_plus"}, "magnesium_deficiency") > 2 * p({"age_group": "18_39"},
                                                                         "magnesium_deficiency")
    assert p({"sex": "female"}, "potassium_deficiency") > p({"sex": "male"}, "potassium_deficiency")


def test_choline_is_not_a_default_target_and_never_moves(default_model):
    assert "choline_deficiency" not in default_model.default_targets
    prior = float(default_model.marginals()["choline_deficiency"]["present"])
    for evidence in VIGNETTES.values():
        result = default_model.posterior(evidence, targets=["choline_deficiency"])
        assert float(result["choline_deficiency"]["present"]) == pytest.approx(prior, abs=1e-12)


def test_older_adults_overlay_equals_observing_the_65_plus_stratum(default_model):
    older = bayescramp.load_model("older_adults")
    for evidence in VIGNETTES.values():
        if evidence.get("age_group", "65_plus") != "65_plus":
            continue
        a = older.posterior(evidence, targets=TARGETS)
        b = default_model.posterior({**evidence, "age_group": "65_plus"}, targets=TARGETS)
        for target in TARGETS:
            assert float(a[target]["present"]) == pytest.approx(float(b[target]["present"]), abs=1e-12)
