# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Learning from a cohort: the priors updated by data
#
# The priors are expert numbers with ranges. A cohort can update them: `Model.fit` combines each
# number's prior (its value and range, read as pseudo-observations) with the data, by a closed-form
# Bayesian update where every cell is observed and by EM where cells are blank or whole nodes are
# hidden (a survey does not measure serum magnesium). This notebook:
#
# 1. simulates a cohort from a "true" population that differs from the default priors;
# 2. fits the default model to it with 20% blank answers and **every deficiency hidden**;
# 3. compares prior, learned and true numbers, and reads the identifiability warnings;
# 4. adds laboratory values for a tenth of the people and fits again;
# 5. shows what the learned model changes in a few people's posteriors;
# 6. writes the learned numbers as an overlay with its provenance, and loads it back.
#
# `BAYESCRAMP_NOTEBOOK_SMALL=1` runs it small (the test suite does); the full run uses 200,000 people.

# %%
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Image

import bayescramp
from bayescramp.learning import FitWarning
from bayescramp.plotting import plot_fit

SMALL = os.environ.get("BAYESCRAMP_NOTEBOOK_SMALL") == "1"
N_PEOPLE = 10_000 if SMALL else 200_000
MAX_ITER = 15 if SMALL else 300
RESTARTS = 1 if SMALL else 2
output = Path(tempfile.mkdtemp(prefix="bayescramp-learning-"))
model = bayescramp.load_model()
model

# %% [markdown]
# ## A population that differs from the priors
# The "truth" is the default model with a few numbers changed, some inside their plausible range
# and some outside it: more thiazide users at 65 and over, more hypomagnesaemia from other causes
# (its leak), more vitamin D deficiency at 40–64, and more idiopathic leg cramps.

# %%
changes = {
    "P(diuretic=thiazide|age_group=65_plus)": 0.30,                 # range [0.18, 0.28]
    "leak(magnesium_deficiency)": 0.04,                             # range [0.008, 0.03]
    "P(vitamin_d_deficiency=present|age_group=40_64)": 0.35,
    "leak(leg_cramps)": 0.38,                                       # range [0.15, 0.35]
    "link(leg_cramps<-diuretic=thiazide)": 0.26,                    # range [0.086, 0.18]
}
truth = model.with_parameters(changes)
prior_values = model.parameters().set_index("id")
pd.DataFrame({"prior": prior_values.loc[list(changes), "value"], "low": prior_values.loc[list(changes), "low"],
              "high": prior_values.loc[list(changes), "high"], "truth": pd.Series(changes)})

# %% [markdown]
# The cohort: the survey columns (diuretic, symptoms, cramp timing) with 20% of answers blank;
# the deficiency and anaemia columns are dropped, so the fit never sees them.

# %%
people = truth.simulate(N_PEOPLE, rng=2026, missing=0.2, truth=True)
hidden = [n for n in model.nodes if n not in model.evidence_nodes]
survey = people.drop(columns=hidden)
survey_file = output / "cohort.parquet"
survey.to_parquet(survey_file)
print(f"{len(survey):,} people; observed columns: {', '.join(survey.columns)}; hidden: {', '.join(hidden)}")

# %% [markdown]
# ## Fit: EM with blanks and hidden deficiencies
# Each distinct answer pattern is propagated once per EM iteration (no loop over people). The
# warnings are part of the result: they say which numbers the survey cannot inform.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", FitWarning)
    fitted = model.fit(survey_file, max_iter=MAX_ITER, n_restarts=RESTARTS, rng=1)
for warning in caught:
    print(f"{type(warning.message).__name__}: {warning.message}\n")
print(fitted.summary())

# %% [markdown]
# The objective EM maximises (log-likelihood plus the priors' pseudo-counts) never decreases:

# %%
trace = fitted.log_likelihood_trace
assert (trace.groupby("restart")["objective"].diff().dropna() >= -1e-9 * trace["objective"].abs().max()).all()
trace[trace["chosen"]].tail()

# %% [markdown]
# ## Prior, learned, truth
# The report has one row per parameter. `information_share` is the share of the information a
# fully observed family would give that the survey columns carry: 1 for the diuretic (observed),
# small for the deficiencies (hidden).

# %%
report = fitted.report.set_index("id")
true_values = truth.parameters().set_index("id")["value"]
comparison = report[["prior", "fitted", "lower", "upper", "information_share", "status"]].assign(
    truth=true_values)
comparison.loc[list(changes)].round(4)

# %%
free = comparison[comparison["status"].isin(["fitted", "not_identifiable"])]
inside = (free["lower"] <= free["truth"]) & (free["truth"] <= free["upper"])
print(f"truth inside the fitted 95% interval for {inside.mean():.0%} of {len(free)} fitted parameters "
      f"({inside[free['status'] == 'fitted'].mean():.0%} of the identifiable ones)")
free.loc[~inside, ["prior", "fitted", "lower", "upper", "truth", "status"]].round(4)

# %%
figure = plot_fit(fitted.report, truth=true_values, parameters=list(changes) + [
    "link(leg_cramps<-diuretic=loop)", "P(iron_deficiency=present|sex=female,age_group=18_39)",
    "link(fatigue<-anemia=present)"],
    title="survey only: prior (grey), learned (red) and true (x) values")
figure.savefig(output / "fit_survey.png", dpi=90)
Image(filename=output / "fit_survey.png")

# %% [markdown]
# The survey pins down what it observes (thiazide use, the leak and the thiazide link of leg
# cramps) and moves them to the truth, even outside the prior range. What it does not observe —
# how common each deficiency is — stays close to the prior and is flagged **not identifiable**:
# many combinations of prevalences and symptom links produce the same answers, so the data cannot
# choose between them. Those fitted values should be read as the prior's, not as findings.
#
# ## With laboratory values for one person in ten
# A cohort where a tenth of the people had blood tests (the deficiency and anaemia columns filled
# in for them) makes the deficiency numbers identifiable.

# %%
with_labs = people.copy()
no_labs = np.random.default_rng(3).random(len(people)) >= 0.1
with_labs.loc[no_labs, hidden] = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", FitWarning)
    fitted_labs = model.fit(with_labs, max_iter=MAX_ITER, n_restarts=RESTARTS, rng=1)
print(fitted_labs.summary())
report_labs = fitted_labs.report.set_index("id")
pd.DataFrame({"survey only": report["information_share"], "with labs": report_labs["information_share"],
              "truth": true_values, "fit (labs)": report_labs["fitted"], "lower": report_labs["lower"],
              "upper": report_labs["upper"]}).loc[list(changes)].round(4)

# %%
figure = plot_fit(fitted_labs.report, truth=true_values, top=15,
                  title="survey + labs for 10%: the 15 numbers that moved most")
figure.savefig(output / "fit_labs.png", dpi=90)
Image(filename=output / "fit_labs.png")

# %% [markdown]
# ## What the learned model changes for a few people

# %%
cases = {
    "thiazide, night cramps": {"diuretic": "thiazide", "cramp_timing": "night"},
    "no diuretic, cramps, weakness": {"diuretic": "none", "leg_cramps": "yes", "muscle_weakness": "yes"},
    "fatigue, pale skin": {"fatigue": "yes", "pale_skin": "yes"},
}
models = {"prior": model, "learned (survey)": fitted.model, "learned (labs)": fitted_labs.model, "truth": truth}
rows = []
for case_name, case in cases.items():
    for model_name, candidate in models.items():
        posterior = candidate.posterior(case, targets=model.default_targets)
        rows.append({"case": case_name, "model": model_name,
                     **{d.removesuffix("_deficiency"): posterior[d]["present"] for d in model.default_targets}})
pd.DataFrame(rows).set_index(["case", "model"]).round(3)

# %% [markdown]
# ## The learned numbers as an overlay
# `save_overlay` writes every changed number with its fitted value, its interval as `range`,
# `basis = "fitted"` and the data's provenance (file name, SHA-256, rows, iterations,
# log-likelihood, date). Loading it on top of the default gives exactly the learned model.

# %%
overlay = fitted_labs.save_overlay(output / "learned.toml")
print("\n".join(overlay.read_text().splitlines()[:12]))
reloaded = bayescramp.load_model("default", overlay)
assert (reloaded.parameters()["value"].to_numpy() == fitted_labs.model.parameters()["value"].to_numpy()).all()
