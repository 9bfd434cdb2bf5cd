"""Constants and audio helpers shared by the online tests (imported by name: a test file must
not import `conftest`, whose module name every test folder shares)."""

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MFCC_CONF = REPO / "recipes" / "digits" / "conf" / "mfcc.conf"
RATE = 8000
COMMANDS = ("zero", "one", "two", "three", "four", "six", "seven", "eight")
FILLERS = ("five", "nine")  # out-of-vocabulary words the grammar knows as fillers


def fsdd(fsdd_dir, name):
    from kaldilite.io.audio import read_audio

    return read_audio(str(fsdd_dir / f"{name}.wav"))


def pause(seconds, seed=0):
    """Room silence: low-level noise (the FSDD recordings' floor is a few tens of 16-bit units)."""
    return np.random.default_rng(seed).normal(0.0, 3.0, int(seconds * RATE)).astype(np.float32)
