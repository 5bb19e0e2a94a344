"""Shared fixtures.

The tiny network (tests/data/tiny.toml), solved by hand:

    medication: P(drug) = 0.3
    x_deficiency: P(present | none) = 0.1, P(present | drug) = 0.4
        P(present) = 0.7 * 0.1 + 0.3 * 0.4 = 0.19
    symptom: noisy-OR, leak 0.1, link 0.5
        P(yes | present) = 1 - 0.9 * 0.5 = 0.55;  P(yes | absent) = 0.1
        P(symptom = yes) = 0.19 * 0.55 + 0.81 * 0.1 = 0.1855

    Given symptom = yes:
        P(present | yes) = 0.19 * 0.55 / 0.1855 = 0.1045 / 0.1855 = 0.563342318...
        P(yes | drug) = 0.4 * 0.55 + 0.6 * 0.1 = 0.28
        P(drug | yes) = 0.3 * 0.28 / 0.1855 = 0.084 / 0.1855 = 0.452830188...
"""

from pathlib import Path

import numpy as np
import pytest

import bayescramp

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def tiny_model():
    return bayescramp.load_model(DATA / "tiny.toml")


@pytest.fixture(scope="session")
def default_model():
    return bayescramp.load_model()
