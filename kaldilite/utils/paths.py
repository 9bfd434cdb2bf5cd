"""Where the shared recorded speech lives: `KALDILITE_DATA`, else `../shared/data` near the repo."""

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_root():
    """Return the shared data directory as a Path, or None when it is not on this machine."""
    env = os.environ.get("KALDILITE_DATA")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    for candidate in (_REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None
