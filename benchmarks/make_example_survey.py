"""Regenerate the bundled example survey, ``bayescramp/data/example_survey.csv``.

20,000 people simulated from the default model (fixed seed), coded NHANES style as
``bayescramp/data/example_codebook.toml`` describes: SEQN ids, an interview weight
WTINT2YR (never used in scoring), BCQ010 diuretic class (0-3), SLQ160 leg cramps while
trying to sleep (0-4), and BCQ020-BCQ100 yes/no symptoms (1 = Yes, 2 = No); about 8% of
answers are missing (blank or "."), 1% refused (7 or 77) and 1% don't know (9 or 99).

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
DIURETIC_CODES = {"none": 0, "thiazide": 1, "loop": 2, "potassium_sparing": 3}
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


def make_example_survey(n_rows: int = N_ROWS, *, seed: int = SEED) -> pd.DataFrame:
    """The example survey as a DataFrame (columns as text, as in the CSV file)."""
    rng = np.random.default_rng(seed)
    model = bayescramp.load_model()
    truth = model.simulate(n_rows, rng=rng, truth=True)
    frame = pd.DataFrame({"SEQN": np.arange(31_127, 31_127 + n_rows)})
    frame["WTINT2YR"] = np.round(rng.lognormal(mean=np.log(15_000), sigma=0.6, size=n_rows), 2)
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
