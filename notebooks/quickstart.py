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
# # Quickstart: one person, from findings to an explained posterior
#
# One person on a thiazide diuretic reports leg cramps mostly at night and muscle weakness,
# and no fatigue. What does the model say about each deficiency, and why?
#
# bayescramp is not a diagnostic device: the posteriors are only as good as the priors in
# `priors/`, which are worth reading.

# %%
import os
import tempfile
from pathlib import Path

from IPython.display import Image
from scipy.special import logit

import bayescramp
from bayescramp.plotting import plot_case, plot_evidence_impact, plot_network

SMALL = os.environ.get("BAYESCRAMP_NOTEBOOK_SMALL") == "1"
model = bayescramp.load_model()
model

# %% [markdown]
# ## Posterior
# Evidence is a mapping node -> state. A set of states (`["thiazide", "loop"]`) or a
# likelihood (`{"yes": 0.8, "no": 0.2}`) works too.

# %%
evidence = {"diuretic": "thiazide", "cramp_timing": "night", "muscle_weakness": "yes", "fatigue": "no"}
posterior = model.posterior(evidence)
table = posterior.to_frame()
table[table["state"] == "present"].sort_values("probability", ascending=False)

# %% [markdown]
# ## Why? Retractions and weights of evidence
# `posterior_without` is the posterior with that one finding retracted; `weight` is its weight
# of evidence in natural-log units. Findings enter in the model's node order (diuretic first,
# cramp timing last), so prior log-odds + weights = posterior log-odds exactly; a different
# order would split the same total differently. `weight_given_rest` is the order-free
# log-likelihood ratio of a finding given all the others.

# %%
explanation = model.explain(evidence, targets=["potassium_deficiency", "magnesium_deficiency"])
explanation[["target", "finding", "value", "prior", "posterior", "posterior_without", "weight", "weight_given_rest"]]

# %%
for target, group in explanation.groupby("target"):
    prior, posterior_p = group["prior"].iloc[0], group["posterior"].iloc[0]
    print(f"{target}: logit(prior) {logit(prior):+.3f} + weights {group['weight'].sum():+.3f} "
          f"= {logit(prior) + group['weight'].sum():+.3f}; logit(posterior) {logit(posterior_p):+.3f}")
print(f"data conflict: {explanation['conflict'].iloc[0]:+.3f} (positive would mean the findings pull apart)")

# %% [markdown]
# ## The most probable joint explanation
# The single most likely combination of all six deficiencies, and its probability given the evidence.

# %%
model.most_probable(evidence)

# %% [markdown]
# ## Pictures
# The plotting functions return matplotlib figures (no GUI needed); here they are saved as
# PNG files in a temporary folder and shown from there.

# %%
output = Path(tempfile.mkdtemp(prefix="bayescramp_quickstart_"))
network_figure = plot_network(model.network, probabilities=posterior, evidence=evidence,
                              title="one person on a thiazide with night cramps")
network_figure.savefig(output / "network.png")
Image(filename=output / "network.png")

# %%
targets = model.default_targets
prior = model.marginals()
# 90% credible intervals over the parameters' published ranges (few draws when run small)
uncertain = model.posterior(evidence, targets=targets, interval=0.9, n_draws=200 if SMALL else 2000, rng=1)
case_figure = plot_case({t: posterior[t]["present"] for t in targets}, {t: prior[t]["present"] for t in targets},
                        lower={t: uncertain.intervals[t].loc["present", "lower"] for t in targets},
                        upper={t: uncertain.intervals[t].loc["present", "upper"] for t in targets})
case_figure.savefig(output / "case.png")
Image(filename=output / "case.png")

# %%
impact_figure = plot_evidence_impact(explanation)
impact_figure.savefig(output / "impact.png")
Image(filename=output / "impact.png")

# %% [markdown]
# ## Export the model as BIF
# Readable by pgmpy, pyAgrum, GeNIe and SamIam.

# %%
bif = model.export(output / "bayescramp.bif")
print(bif.read_text().splitlines()[0])
sorted(p.name for p in output.iterdir())
