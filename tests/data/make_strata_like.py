"""Write tests/data/strata_like.toml: a network shaped like the v2 default model, numbers made up.

It has the v2 roots (sex, age_group, ppi_use, chronic_kidney_disease, low_magnesium_intake,
low_calcium_intake), a latent general_symptom_burden parent of six symptoms, a five-state
diuretic, the six deficiencies, anaemia, ten symptoms and cramp timing: the core's whole joint
(122,880 configurations) is far above what enumerating it could afford, so the engine's core
path must work through a junction tree of the core. Numbers are random (seeded) and carry no
meaning. Run from the repository root: python tests/data/make_strata_like.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("strata_like.toml")
rng = np.random.default_rng(9)

STATES = {
    "sex": ["female", "male"], "age_group": ["18_39", "40_64", "65_plus"],
    "ppi_use": ["no", "yes"], "chronic_kidney_disease": ["no", "yes"], "low_magnesium_intake": ["no", "yes"],
    "low_calcium_intake": ["no", "yes"], "general_symptom_burden": ["low", "high"],
    "diuretic": ["none", "thiazide", "loop", "potassium_sparing", "thiazide_potassium_sparing"],
}
TABLES = {   # node -> parents, for explicit tables
    "sex": [], "age_group": [], "ppi_use": ["age_group"], "chronic_kidney_disease": ["age_group"],
    "low_magnesium_intake": ["sex"], "low_calcium_intake": ["sex", "age_group"], "general_symptom_burden": [],
    "diuretic": ["age_group", "chronic_kidney_disease"], "vitamin_d_deficiency": ["age_group"],
    "iron_deficiency": ["sex"], "choline_deficiency": [],
    "potassium_deficiency": ["diuretic", "magnesium_deficiency", "chronic_kidney_disease"],
    "anemia": ["iron_deficiency", "chronic_kidney_disease"], "cramp_timing": ["leg_cramps"],
}
NOISY_OR = {  # node -> parents, for leaky noisy-ORs
    "magnesium_deficiency": ["diuretic", "ppi_use", "low_magnesium_intake", "chronic_kidney_disease"],
    "calcium_deficiency": ["diuretic", "magnesium_deficiency", "vitamin_d_deficiency", "low_calcium_intake"],
    "leg_cramps": ["potassium_deficiency", "magnesium_deficiency", "calcium_deficiency", "vitamin_d_deficiency",
                   "choline_deficiency", "diuretic", "general_symptom_burden"],
    "muscle_spasms": ["calcium_deficiency", "magnesium_deficiency", "vitamin_d_deficiency", "general_symptom_burden"],
    "muscle_weakness": ["potassium_deficiency", "magnesium_deficiency", "calcium_deficiency", "vitamin_d_deficiency",
                        "general_symptom_burden"],
    "fatigue": ["vitamin_d_deficiency", "anemia", "iron_deficiency", "magnesium_deficiency", "potassium_deficiency",
                "calcium_deficiency", "general_symptom_burden"],
    "neck_back_pain": ["vitamin_d_deficiency", "calcium_deficiency", "general_symptom_burden"],
    "pale_skin": ["anemia"],
    "nausea": ["magnesium_deficiency", "calcium_deficiency", "general_symptom_burden"],
    "loss_of_appetite": ["magnesium_deficiency"],
    "abnormal_heart_rhythm": ["potassium_deficiency", "magnesium_deficiency"],
    "seizures": ["magnesium_deficiency", "calcium_deficiency"],
}
ORDER = ["sex", "age_group", "ppi_use", "chronic_kidney_disease", "low_magnesium_intake", "low_calcium_intake",
         "general_symptom_burden", "diuretic", "vitamin_d_deficiency", "iron_deficiency", "choline_deficiency",
         "magnesium_deficiency", "potassium_deficiency", "calcium_deficiency", "anemia", "leg_cramps", "muscle_spasms",
         "muscle_weakness", "fatigue", "neck_back_pain", "pale_skin", "nausea", "loss_of_appetite",
         "abnormal_heart_rhythm", "seizures", "cramp_timing"]


def states(node: str) -> list[str]:
    if node in STATES:
        return STATES[node]
    if node == "cramp_timing":
        return ["no_cramps", "day", "night"]
    return ["absent", "present"] if node.endswith("deficiency") or node == "anemia" else ["no", "yes"]


def number(value: float) -> str:
    low, high = max(0.0, value * 0.6), min(1.0, value * 1.5 + 0.005)
    return f'{{ value = {value:.4f}, range = [{low:.4f}, {high:.4f}], basis = "expert", source = "made up" }}'


def table_lines(node: str) -> list[str]:
    lines = [f"[nodes.{node}]", f"states = {states(node)}".replace("'", '"'),
             f"parents = {TABLES[node]}".replace("'", '"'), 'cpd = "table"']
    for config in itertools.product(*(states(p) for p in TABLES[node])):
        when = ", ".join(f'{p} = "{s}"' for p, s in zip(TABLES[node], config))
        lines.append(f"[[nodes.{node}.table]]")
        lines.append(f"when = {{ {when} }}")
        if node == "cramp_timing" and config == ("no",):
            lines += ['probability.no_cramps = { value = 1.0, range = [1.0, 1.0], basis = "structural", '
                      'source = "definition" }', 'probability.day = { value = 0.0, range = [0.0, 0.0], '
                      'basis = "structural", source = "definition" }', 'probability.night = "remainder"']
            continue
        own = states(node)
        if node == "cramp_timing":
            own = own[1:]
            lines.append('probability.no_cramps = { value = 0.0, range = [0.0, 0.0], basis = "structural", '
                         'source = "definition" }')
        shares = rng.dirichlet(np.ones(len(own)) * 2) * 0.9 + 0.1 / len(own)
        for state, share in zip(own[:-1], shares):
            lines.append(f"probability.{state} = {number(float(share))}")
        lines.append(f'probability.{own[-1]} = "remainder"')
    return lines


def noisy_or_lines(node: str) -> list[str]:
    lines = [f"[nodes.{node}]", f"states = {states(node)}".replace("'", '"'),
             f"parents = {NOISY_OR[node]}".replace("'", '"'), 'cpd = "noisy_or"',
             f"leak = {number(float(rng.uniform(0.02, 0.15)))}"]
    for parent in NOISY_OR[node]:
        for state in states(parent)[1:]:
            lines.append(f"links.{parent}.{state} = {number(float(rng.uniform(0.05, 0.6)))}")
    return lines


def main() -> None:
    observable = [n for n in ORDER if n in STATES and n != "general_symptom_burden"] + [
        n for n in ORDER if n in NOISY_OR and not n.endswith("deficiency")] + ["cramp_timing"]
    targets = [n for n in ORDER if n.endswith("deficiency")]
    text = [
        "# A network shaped like the v2 default model (made-up numbers): written by make_strata_like.py.",
        "[meta]", 'name = "strata_like"',
        'description = "v2-shaped test network: strata roots, a latent symptom burden, a five-state diuretic"',
        f"targets = {targets}".replace("'", '"'), 'positive_states = ["present", "yes"]',
        'sensitivity_target = "magnesium_deficiency=present"', f"observable = {observable}".replace("'", '"'), ""]
    for node in ORDER:
        text += (table_lines(node) if node in TABLES else noisy_or_lines(node)) + [""]
    OUT.write_text("\n".join(text))


if __name__ == "__main__":
    main()
