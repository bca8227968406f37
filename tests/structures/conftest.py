"""Fixtures for the structure tests: small cells built in code, one CPU thread for the MLIP."""

from __future__ import annotations

import pytest


@pytest.fixture
def single_thread():
    """One torch and one BLAS thread while a test runs.

    On a shared 2-core machine CHGNet with two torch threads and scipy's BLAS (used by ASE's
    FrechetCellFilter for 3x3 matrix functions) ran 5-10x slower than with one thread each.
    """
    import threadpoolctl
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chgnet():
    """The CHGNet 0.3.0 calculator (weights bundled with chgnet; loaded once per session)."""
    from ctaflow.engines.calculators import chgnet_calculator

    return chgnet_calculator()
