"""The inference engine, in parts: graph work, junction trees and their passes, the core fast path.

The public face is :mod:`bayescramp.engine`; the modules here are its implementation:

* :mod:`~bayescramp.inference.graph` — min-fill elimination and the junction tree it implies;
* :mod:`~bayescramp.inference.tree` — a junction tree's potentials and the batched passes over
  it (sum-product, derivatives with a CPT left out, max-product);
* :mod:`~bayescramp.inference.core` — the core fast path for findings hanging off a core;
* :mod:`~bayescramp.inference.network` — compiled networks and the entry points.

numpy only (evidence arrives as :class:`bayescramp.evidence.BatchEvidence`): no pgmpy, no pandas.
"""
