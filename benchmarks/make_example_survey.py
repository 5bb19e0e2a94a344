"""Regenerate the bundled example survey, ``bayescramp/data/example_survey.csv``.

20,000 people simulated from the default model (fixed seed), coded NHANES style as
``bayescramp/data/example_codebook.toml`` describes: SEQN ids, the design columns (interview
weight WTINT2YR, masked variance PSU SDMVPSU and stratum SDMVSTRA; never used in scoring, used
by ``bayescramp prevalence``), RIAGENDR sex (1 = male, 2 = female) and RIDAGEYR age in years
(top-coded at 80, as NHANES does; both always answered), KIQ022 "ever told you had weak or
failing kidneys" (simulated as if self-report matched stage 3-5 CKD, which in real surveys it
mostly does not), BCQ010 diuretic class (0-4), BCQ110 proton-pump inhibitor use, SLQ160 leg
cramps while trying to sleep (0-4), and BCQ020-BCQ100 yes/no symptoms (1 = Yes, 2 = No);
about 8% of the other answers are missing (blank or "."), 1% refused (7 or 77) and 1% don't
know (9 or 99). Dietary magnesium is not simulated (no dietary recall in the example), so
``low_magnesium_intake`` is marginalised for everyone.

The design (:func:`simulate_design`) imitates NHANES's masked variance units: 15 strata
(codes 134-148) of 2 PSUs each, drawn with replacement in the variance sense.

- **Clustering.** Each PSU has a random effect ``u ~ Normal(0, 0.5)``; a person joins PSU
  ``j`` with probability proportional to ``size_j * exp(u_j * s)``, ``s`` their standardised
  count of deficiencies (``size_j`` uniform 0.7-1.3). PSUs thus differ in how many people with
  deficiencies they hold, as real areas do, and posteriors cluster by PSU (design effects > 1).
- **Weights.** A group is oversampled 2.5-fold (as NHANES oversamples older adults and some
  ethnic groups): here 60% of people aged 65 and over and 25% of the others, at random. A person's weight is
  ``1 / relative selection probability`` times a stratum factor (uniform 0.8-1.25, unequal
  stratum populations) times a non-response adjustment (log-normal, sd 0.25), scaled so that
  the weights add up to 255 million (about the US adult population), rounded to cents.

Run from the repository root: ``python benchmarks/make_example_survey.py`` (or import
:func:`make_example_survey` to write another size elsewhere). The output is identical
on every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import bayescramp
from bayescramp.tabular import write_table

SEED = 20260415
N_ROWS = 20_000
SYMPTOM_COLUMNS = {
    "muscle_spasms": "BCQ020", "muscle_weakness": "BCQ030", "fatigue": "BCQ040", "neck_back_pain": "BCQ050",
    "pale_skin": "BCQ060", "nausea": "BCQ070", "loss_of_appetite": "BCQ080", "abnormal_heart_rhythm": "BCQ090",
    "seizures": "BCQ100",
}
DIURETIC_CODES = {"none": 0, "thiazide": 1, "loop": 2, "potassium_sparing": 3, "thiazide_potassium_sparing": 4}
YES_NO_COLUMNS = {"chronic_kidney_disease": "KIQ022", "ppi_use": "BCQ110"}
AGE_RANGES = {"18_39": (18, 39), "40_64": (40, 64), "65_plus": (65, 89)}   # 65+: drawn to 89, top-coded at 80
N_STRATA, PSUS_PER_STRATUM, FIRST_STRATUM = 15, 2, 134
POPULATION = 255_000_000
OVERSAMPLING = 2.5
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "bayescramp" / "data" / "example_survey.csv"


def _slq160(leg_cramps: np.ndarray, timing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NHANES SLQ160 answers consistent with the simulated cramps and their timing.

    No cramps: 0 (never). Mostly daytime cramps: 0 (60%) or 1 (rarely). Mostly night
    cramps: 1-4 with probabilities 0.3, 0.3, 0.25, 0.15.
    """
    answer = np.zeros(len(timing), dtype=np.int64)
    day = timing == "day"
    answer[day] = (rng.random(int(day.sum())) < 0.4).astype(np.int64)
    night = timing == "night"
    answer[night] = rng.choice([1, 2, 3, 4], size=int(night.sum()), p=[0.3, 0.3, 0.25, 0.15])
    assert not ((leg_cramps == "no") & (answer > 0)).any()
    return answer


def _code_missing(codes: np.ndarray, rng: np.random.Generator, *, two_digit: bool = False) -> np.ndarray:
    """Codes as text with 8% missing (half blank, half "." as SAS exports print it), 1% refused, 1% don't know."""
    text = codes.astype(str).astype(object)
    draw = rng.random(len(codes))
    text[draw < 0.04] = ""
    text[(draw >= 0.04) & (draw < 0.08)] = "."
    text[(draw >= 0.08) & (draw < 0.09)] = "77" if two_digit else "7"
    text[(draw >= 0.09) & (draw < 0.10)] = "99" if two_digit else "9"
    return text


def simulate_design(oversampled: np.ndarray, cluster_score: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """NHANES-like design columns: ``WTINT2YR``, ``SDMVPSU`` (1, 2) and ``SDMVSTRA`` (134-148).

    Parameters
    ----------
    oversampled : ndarray of bool ``[n_rows]``
        People sampled ``OVERSAMPLING`` times more often than the rest (their weight is smaller).
    cluster_score : ndarray of float ``[n_rows]``
        What clusters by PSU (standardised inside); PSUs with a larger random effect hold more
        people with a high score.
    rng : numpy Generator
    """
    n_rows = len(oversampled)
    n_psus = N_STRATA * PSUS_PER_STRATUM
    effect = rng.normal(0.0, 0.5, size=n_psus)
    size = rng.uniform(0.7, 1.3, size=n_psus)
    score = (cluster_score - cluster_score.mean()) / max(float(cluster_score.std()), 1e-12)
    # Gumbel-max: one categorical draw per person over the PSUs, vectorised
    logits = np.log(size)[None, :] + score[:, None] * effect[None, :] + rng.gumbel(size=(n_rows, n_psus))
    unit = np.argmax(logits, axis=1)
    stratum_factor = rng.uniform(0.8, 1.25, size=N_STRATA)
    weight = (np.where(oversampled, 1.0 / OVERSAMPLING, 1.0) * stratum_factor[unit // PSUS_PER_STRATUM]
              * rng.lognormal(0.0, 0.25, size=n_rows))
    weight *= POPULATION / weight.sum()
    return pd.DataFrame({"WTINT2YR": np.round(weight, 2), "SDMVPSU": unit % PSUS_PER_STRATUM + 1,
                         "SDMVSTRA": unit // PSUS_PER_STRATUM + FIRST_STRATUM})


def make_example_survey(n_rows: int = N_ROWS, *, seed: int = SEED) -> pd.DataFrame:
    """The example survey as a DataFrame (columns as text, as in the CSV file)."""
    rng = np.random.default_rng(seed)
    model = bayescramp.load_model()
    truth = model.simulate(n_rows, rng=rng, truth=True)
    frame = pd.DataFrame({"SEQN": np.arange(31_127, 31_127 + n_rows)})
    design_rng = np.random.default_rng([seed, 1])
    oversampled = design_rng.random(n_rows) < np.where(truth["age_group"].to_numpy() == "65_plus", 0.6, 0.25)
    deficiencies = sum((truth[node].to_numpy() == "present").astype(float) for node in model.default_targets)
    frame = pd.concat([frame, simulate_design(oversampled, deficiencies, design_rng)], axis=1)
    frame["RIAGENDR"] = np.where(truth["sex"].to_numpy() == "female", 2, 1)
    age_rng = np.random.default_rng([seed, 2])
    age = np.zeros(n_rows, dtype=np.int64)
    for group, (low, high) in AGE_RANGES.items():
        members = truth["age_group"].to_numpy() == group
        age[members] = age_rng.integers(low, high + 1, size=int(members.sum()))
    frame["RIDAGEYR"] = np.minimum(age, 80)
    for node, column in YES_NO_COLUMNS.items():
        frame[column] = _code_missing(np.where(truth[node].to_numpy() == "yes", 1, 2), age_rng)
    diuretic = truth["diuretic"].map(DIURETIC_CODES).to_numpy()
    frame["BCQ010"] = _code_missing(diuretic, rng, two_digit=True)
    slq160 = _slq160(truth["leg_cramps"].to_numpy(), truth["cramp_timing"].to_numpy(), rng)
    frame["SLQ160"] = _code_missing(slq160, rng)
    for node, column in SYMPTOM_COLUMNS.items():
        answers = np.where(truth[node].to_numpy() == "yes", 1, 2)
        frame[column] = _code_missing(answers, rng)
    return frame


def main(argv=None) -> int:
    """Write the example survey (``-n`` rows, fixed seed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=N_ROWS, help=f"rows (default {N_ROWS})")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="output .csv/.csv.gz/.parquet")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    frame = make_example_survey(args.n, seed=args.seed)
    write_table(frame, args.output)
    print(f"wrote {len(frame):,} rows to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
