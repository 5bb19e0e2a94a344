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
# # A cohort: simulate, score a survey file, look at the distributions, validate
#
# Set `BAYESCRAMP_NOTEBOOK_SMALL=1` to run everything on small sizes (the test suite does).

# %%
import os
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown

import bayescramp
from bayescramp.explain import top_findings
from bayescramp.plotting import plot_cohort, plot_reliability
from bayescramp.validation import write_report

SMALL = os.environ.get("BAYESCRAMP_NOTEBOOK_SMALL") == "1"
N_PEOPLE = 2_000 if SMALL else 200_000
N_VALIDATION = 5_000 if SMALL else 100_000
output = Path(tempfile.mkdtemp(prefix="bayescramp_cohort_"))
model = bayescramp.load_model()

# %% [markdown]
# ## Simulate a cohort
# Forward sampling from the model: the survey columns (diuretic, symptoms, cramp timing),
# 10% of cells left blank, and the hidden truth kept aside for later.

# %%
cohort = model.simulate(N_PEOPLE, rng=2026, missing=0.1, truth=True)
survey = cohort[model.evidence_nodes]
survey.to_csv(output / "simulated_survey.csv", index=False)
survey.head()

# %% [markdown]
# ## Score survey files
# First the simulated file (its columns are named like the model's nodes, so no codebook is
# needed), then the bundled NHANES-style example survey, whose columns and codes are mapped
# to nodes and states by its codebook.

# %%
summary = bayescramp.score_file(output / "simulated_survey.csv", output / "simulated_scored.csv", model=model,
                                progress=False)
print(summary)
scored = pd.read_csv(output / "simulated_scored.csv")
scored.head()

# %%
data = resources.files("bayescramp") / "data"
codebook = bayescramp.load_codebook(Path(str(data / "example_codebook.toml")))
print(bayescramp.score_file(Path(str(data / "example_survey.csv")), output / "example_scored.csv", model=model,
                            codebook=codebook, progress=False))
example_scored = pd.read_csv(output / "example_scored.csv")
example_scored.head()

# %% [markdown]
# The mean posterior estimates each deficiency's prevalence; here the hidden truth is known.

# %%
pd.DataFrame({"mean posterior": [scored[f"p_{t}"].mean() for t in model.default_targets],
              "true prevalence": [(cohort[t] == "present").mean() for t in model.default_targets]},
             index=model.default_targets).round(4)

# %% [markdown]
# ## Distribution of each deficiency's posterior

# %%
plot_cohort(scored, title=f"simulated cohort ({len(scored)} people)").savefig(output / "cohort.png")
Image(filename=output / "cohort.png")

# %%
plot_cohort(example_scored, title="bundled example survey").savefig(output / "example.png")
Image(filename=output / "example.png")

# %% [markdown]
# ## Who is flagged, and why
# The finding that raised each person's magnesium posterior most (retracting it lowers the
# posterior most), and the most probable joint explanation for the ten highest scorers.

# %%
top = top_findings(model.network, survey, targets="magnesium_deficiency")
top["top_finding_magnesium_deficiency"].value_counts(dropna=False)

# %%
highest = scored["p_magnesium_deficiency"].nlargest(10).index
model.most_probable(survey.loc[highest]).join(scored.loc[highest, ["p_magnesium_deficiency"]])

# %% [markdown]
# ## Validation against the hidden truth
# Scored with the priors it was simulated from, the cohort is calibrated by construction: the
# report should show sampling error only. Simulated from the older-adult priors but scored
# with the default ones, it shows what scoring a population with the wrong priors costs.

# %%
same = bayescramp.validate(model, n=N_VALIDATION, rng=1, missing=0.1)
same.metrics.round(4)

# %%
older = bayescramp.validate(model, truth_priors=["default", "older_adults"], n=N_VALIDATION, rng=1, missing=0.1)
report = write_report(older, output / "older_adults_report",
                      figure=plot_reliability(older.reliability, metrics=older.metrics,
                                              title="truth: older adults; scored with the default priors"))
Markdown(older.summary())

# %%
Image(filename=report / "reliability.png")
