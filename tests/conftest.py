"""Shared fixtures: the shared recorded speech (skipped with a reason when absent), temp dirs."""

import os

import numpy as np
import pytest

from kaldilite.utils import data_root


@pytest.fixture(scope="session")
def shared_data():
    """Path to the shared data root (`KALDILITE_DATA` or ../shared/data); skips when absent."""
    root = data_root()
    if root is None:
        pytest.skip("shared recorded speech not found: set KALDILITE_DATA or put it in ../shared/data")
    return root


@pytest.fixture(scope="session")
def fsdd_dir(shared_data):
    path = shared_data / "fsdd" / "recordings"
    if not path.is_dir():
        pytest.skip(f"FSDD recordings not found under {shared_data}")
    return path


@pytest.fixture(scope="session")
def speech_commands_dir(shared_data):
    path = shared_data / "speech_commands"
    if not path.is_dir():
        pytest.skip(f"Speech Commands subset not found under {shared_data}")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_report_header(config):
    root = data_root()
    return f"kaldilite shared data: {root if root else 'absent (data tests will skip)'}; CI={os.environ.get('CI', '')}"
