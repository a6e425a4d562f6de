"""Shared test configuration: hypothesis profiles and a seeded rng fixture.

Profiles (choose with REFRL_HYPOTHESIS_PROFILE): ``dev`` (default, quick),
``ci`` (the CI run: derandomized so that CI is reproducible), ``thorough``.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("REFRL_HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
