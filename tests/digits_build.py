"""The digits system test fixture's cache: builds keyed by a hash of the code that makes them.

tests/conftest.py's `digits_system` builds the digits recipe's mono system once and reuses it in later
sessions only while everything the build reads is unchanged (imported by name: a test file must not
import `conftest`). Before, a developer's recipes/digits/work_independent was reused whatever code had
built it, so tests passed in a working tree on outputs of older code and failed on a fresh clone.
"""

import contextlib
import hashlib
import os
import shutil
import sys

import numpy as np

# Everything a digits system build reads besides the corpus: the package, the recipe and its helpers,
# the lexicon (repository-relative glob patterns).
BUILD_INPUTS = ("kaldilite/**/*.py", "recipes/digits/run.sh", "recipes/digits/cmd.sh", "recipes/digits/conf/*",
                "recipes/utils/*", "lang/en/*")
BUILDS_KEPT = 3  # builds for other states of the code kept beside the current one (other sessions may read them)
MARKER = ".built"


def build_key(repo, corpus):
    """A hash of the build's inputs under `repo` (BUILD_INPUTS: paths and contents), the corpus path and
    the Python and numpy versions: equal keys, equal builds."""
    digest = hashlib.sha256(f"{sys.version}\0{np.__version__}\0{corpus}\0".encode())
    for pattern in BUILD_INPUTS:
        for path in sorted(repo.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _exclusive(lock_path):
    """An exclusive lock on `lock_path`: sessions sharing a checkout build one at a time."""
    import fcntl

    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_build(root, key, build, needed=()):
    """ROOT/KEY/work_independent, made by ``build(work_dir)`` unless a completed build of that key is
    there (its marker written, the `needed` paths present). A new build first removes an interrupted
    one of its key and all but the BUILDS_KEPT most recently used builds of other keys."""
    root.mkdir(parents=True, exist_ok=True)
    work = root / key / "work_independent"
    with _exclusive(root / "build.lock"):
        if (work / MARKER).is_file() and all((work / path).exists() for path in needed):
            os.utime(root / key)  # recently used: the last to go when old builds are removed
            return work
        shutil.rmtree(root / key, ignore_errors=True)
        others = sorted((p for p in root.iterdir() if p.is_dir() and p.name != key), key=lambda p: p.stat().st_mtime)
        for stale in others[:max(0, len(others) - BUILDS_KEPT)]:
            shutil.rmtree(stale, ignore_errors=True)
        build(work)
        (work / MARKER).write_text(key + "\n")
    return work
