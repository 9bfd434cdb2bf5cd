"""Shared fixtures: the shared recorded speech (skipped with a reason when absent), temp dirs."""

import os
import subprocess
from pathlib import Path

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


DIGITS_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits"
_DIGITS_NEEDED = ("exp/mono/final.mdl", "exp/mono/tree", "exp/mono/ali.1.gz", "exp/mono/graph/HCLG.npz",
                  "data/train/cmvn.scp", "data/test/feats.scp", "data/test/cmvn.scp", "data/lang/phones.txt")


@pytest.fixture(scope="session")
def digits_system(fsdd_dir, request, tmp_path_factory):
    """The digits recipe's speaker-independent monophone system (stages 0-4), read-only.

    Built with the recipe itself (~25 s of CPU) into pytest's cache dir, under a hash of the code,
    recipe and lexicon that make it (tests/digits_build.py), and reused by later sessions only while
    those are unchanged: tests never run on outputs of older code. Without pytest's cache
    (`-p no:cacheprovider`) it is built into a temp dir once per session.
    """
    from digits_build import build_key, cached_build

    def build(work):
        out = subprocess.run(["bash", str(DIGITS_RECIPE / "run.sh"), "--corpus", str(fsdd_dir.parent), "--nj", "2",
                              "--stop-stage", "4", "--dir", str(work)], capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            pytest.fail("building the digits mono system failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])

    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("digits_system") if cache is not None else tmp_path_factory.mktemp("digits_system")
    return cached_build(root, build_key(DIGITS_RECIPE.parents[1], fsdd_dir), build, _DIGITS_NEEDED)
