"""simulate.py: forward sampling draws each node from its CPD row given its sampled parents."""

from __future__ import annotations

import numpy as np
import pytest

from bayescramp.engine import compile_network
from bayescramp.simulate import sample_codes


def test_samples_have_one_valid_state_index_per_row(default_model, rng):
    draws = sample_codes(default_model.network, 500, rng)
    assert set(draws) == set(default_model.nodes)
    for node, codes in draws.items():
        assert codes.shape == (500,)
        assert codes.min() >= 0 and codes.max() < len(default_model.states(node))


def test_same_generator_seed_gives_the_same_cohort(default_model):
    first = sample_codes(default_model.network, 200, np.random.default_rng(7))
    again = sample_codes(default_model.network, 200, np.random.default_rng(7))
    for node in first:
        np.testing.assert_array_equal(first[node], again[node])


def test_frequencies_match_the_tiny_network_by_hand(tiny_model):
    # P(drug) = 0.3, P(present) = 0.19, P(symptom = yes) = 0.1855 (tests/conftest.py)
    n_rows = 200_000
    draws = sample_codes(tiny_model.network, n_rows, np.random.default_rng(11))
    for node, k, expected in [("medication", 1, 0.3), ("x_deficiency", 1, 0.19), ("symptom", 1, 0.1855)]:
        share = float((draws[node] == k).mean())
        # 5 standard errors of a binomial share: fails by chance about once in 3 million runs
        assert share == pytest.approx(expected, abs=5 * np.sqrt(expected * (1 - expected) / n_rows))


def test_conditional_rows_are_followed():
    states = {"a": ("x", "y"), "b": ("no", "yes")}
    parents = {"a": (), "b": ("a",)}
    tables = {"a": np.array([0.5, 0.5]), "b": np.array([[1.0, 0.0], [0.0, 1.0]])}   # b copies a
    draws = sample_codes(compile_network(states, parents, tables), 1000, np.random.default_rng(0))
    np.testing.assert_array_equal(draws["a"], draws["b"])


def test_zero_probability_states_are_never_drawn():
    states = {"a": ("never", "always", "also_never")}
    tables = {"a": np.array([0.0, 1.0, 0.0])}
    draws = sample_codes(compile_network(states, {"a": ()}, tables), 1000, np.random.default_rng(1))
    assert (draws["a"] == 1).all()
